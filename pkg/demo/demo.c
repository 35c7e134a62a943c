/*
 * demo: the shop pipeline.  The commands really do
 * small work: builds write an artifact into $RAILYARD_PIPELINE_DIR and check
 * the artifacts of the libraries they compile against, tests check their
 * artifact, deploys check that their runtime dependencies are deployed and
 * write a manifest.  A task started out of dependency order therefore fails
 * instead of passing quietly.
 */
#include "demo/demo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	DEMO_LIB = 1 << 0,	/* shared library: built and tested, never deployed */
	DEMO_IMAGE = 1 << 1,	/* ships as a container image built on a docker agent */
	DEMO_GPU = 1 << 2,	/* its tests need a gpu */
};

struct demo_service {
	const char *name;
	const char *imports;	/* libraries its build compiles against */
	const char *test_uses;	/* other services' builds its integration tests start */
	const char *runtime;	/* services that must be deployed before it */
	unsigned flags;
};

/* Listed so that everything a row names comes earlier. */
static const struct demo_service services[] = {
	{ "proto",           "",                            "",              "", DEMO_LIB },
	{ "libcommon",       "",                            "",              "", DEMO_LIB },
	{ "libmetrics",      "libcommon",                   "",              "", DEMO_LIB },
	{ "libdb",           "libcommon",                   "",              "", DEMO_LIB },
	{ "libhttp",         "libcommon libmetrics",        "",              "", DEMO_LIB },
	{ "sessions",        "libcommon libdb",             "",              "", 0 },
	{ "auth",            "proto libdb libhttp",         "sessions",      "sessions", 0 },
	{ "users",           "proto libdb libhttp",         "",              "auth", 0 },
	{ "catalog",         "proto libdb libhttp",         "",              "", 0 },
	{ "media",           "libhttp",                     "",              "", 0 },
	{ "feature-flags",   "libcommon libhttp",           "",              "", 0 },
	{ "pricing",         "proto libcommon",             "",              "catalog", 0 },
	{ "inventory",       "proto libdb",                 "",              "catalog", 0 },
	{ "ml-ranker",       "proto libcommon",             "",              "", DEMO_GPU },
	{ "search",          "proto libhttp",               "catalog",       "catalog ml-ranker", 0 },
	{ "recommendations", "proto libhttp",               "",              "catalog ml-ranker users", 0 },
	{ "reviews",         "proto libdb libhttp",         "",              "users catalog", 0 },
	{ "wishlist",        "proto libdb",                 "",              "users catalog", 0 },
	{ "loyalty",         "proto libdb",                 "",              "users", 0 },
	{ "promotions",      "proto libdb",                 "",              "pricing loyalty", 0 },
	{ "tax",             "proto libcommon",             "",              "", 0 },
	{ "ledger",          "proto libdb",                 "",              "", 0 },
	{ "fraud",           "proto libcommon libmetrics",  "",              "users", 0 },
	{ "payments",        "proto libdb libhttp",         "ledger",        "fraud ledger", 0 },
	{ "shipping",        "proto libhttp",               "",              "inventory", 0 },
	{ "orders",          "proto libdb",                 "",              "inventory ledger", 0 },
	{ "email",           "libcommon",                   "",              "", 0 },
	{ "notifications",   "proto libhttp",               "",              "users email", 0 },
	{ "cart",            "proto libdb libhttp",         "pricing",       "pricing inventory promotions auth", 0 },
	{ "checkout",        "proto libhttp",               "cart payments", "cart payments shipping tax orders notifications", DEMO_IMAGE },
	{ "analytics",       "proto libmetrics",            "",              "", 0 },
	{ "admin",           "proto libhttp",               "",              "catalog users orders", 0 },
	{ "gateway",         "proto libhttp libmetrics",    "",              "auth catalog search cart checkout users recommendations reviews wishlist media feature-flags", DEMO_IMAGE },
	{ "web-ui",          "proto",                       "",              "gateway", DEMO_IMAGE },
	{ "mobile-bff",      "proto libhttp",               "",              "gateway", 0 },
};

/* Spread names over durations, the same on every run and platform. */
static uint32_t fnv1a(const char *s)
{
	return (uint32_t)ry_fnv1a64(s, strlen(s));
}

unsigned ry_demo_sleep_ms(const char *service)
{
	return 200 + fnv1a(service) % 1301;
}

/* A share of the build time, never below the 200 ms floor. */
static unsigned scaled_ms(const char *service, unsigned percent)
{
	unsigned ms = ry_demo_sleep_ms(service) * percent / 100;
	return ms < 200 ? 200 : ms;
}

static void json_str(struct ry_buf *b, const char *s)
{
	ry_buf_putc(b, '"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		switch (c) {
		case '"': ry_buf_puts(b, "\\\""); break;
		case '\\': ry_buf_puts(b, "\\\\"); break;
		case '\n': ry_buf_puts(b, "\\n"); break;
		case '\t': ry_buf_puts(b, "\\t"); break;
		default:
			if (c < 0x20)
				ry_buf_printf(b, "\\u%04x", c);
			else
				ry_buf_putc(b, (char)c);
		}
	}
	ry_buf_putc(b, '"');
}

long ry_demo_find(const struct ry_demo_pipeline *p, const char *name)
{
	for (size_t i = 0; i < p->ntasks; i++)
		if (strcmp(p->tasks[i].name, name) == 0)
			return (long)i;
	return -1;
}

/* Appends a task with the defaults every demo task shares; returns its index. */
static size_t add_task(struct ry_demo_pipeline *p, const char *kind, const char *service,
		       const char *name, unsigned sleep_ms, char *command)
{
	if (p->ntasks == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 64;
		p->tasks = ry_realloc(p->tasks, p->cap * sizeof(*p->tasks));
	}
	struct ry_demo_task *t = &p->tasks[p->ntasks];
	memset(t, 0, sizeof(*t));
	t->name = ry_strdup(name);
	t->service = service;
	t->kind = kind;
	t->command = command;
	t->cpu = 1;
	t->mem_mb = 256;
	t->timeout_s = 120;
	t->sleep_ms = sleep_ms;
	ry_strlist_add(&t->requires, "linux");
	return p->ntasks++;
}

static bool add_need(struct ry_demo_pipeline *p, size_t task, const char *upstream,
		     const char *kind, char **err)
{
	long up = ry_demo_find(p, upstream);
	if (up < 0 || (size_t)up >= task) {
		*err = ry_asprintf("demo pipeline: %s needs %s, which is not defined before it",
				   p->tasks[task].name, upstream);
		return false;
	}
	struct ry_demo_task *t = &p->tasks[task];
	t->needs = ry_realloc(t->needs, (t->nneeds + 1) * sizeof(*t->needs));
	t->needs[t->nneeds].task = (size_t)up;
	t->needs[t->nneeds].kind = kind;
	t->nneeds++;
	return true;
}

/* One need per word of list: PREFIX:word. */
static bool add_needs(struct ry_demo_pipeline *p, size_t task, const char *prefix,
		      const char *list, const char *kind, char **err)
{
	struct ry_strlist words = { 0 };
	bool ok = true;
	ry_strlist_split(&words, list, ' ');
	for (size_t i = 0; ok && i < words.n; i++) {
		char *name = ry_asprintf("%s:%s", prefix, words.items[i]);
		ok = add_need(p, task, name, kind, err);
		free(name);
	}
	ry_strlist_release(&words);
	return ok;
}

/* Shell that fails unless $d/<word><suffix> exists and is non-empty for each word. */
static void add_checks(struct ry_buf *b, const char *words, const char *suffix,
		       const char *missing)
{
	if (!*words)
		return;
	ry_buf_printf(b, "for dep in %s; do [ -s \"$d/$dep%s\" ] || "
		      "{ echo \"error: $dep%s is missing: %s\" >&2; exit 1; }; done; ",
		      words, suffix, suffix, missing);
}

static void add_sleep(struct ry_buf *b, unsigned ms)
{
	ry_buf_printf(b, "sleep %u.%03u; ", ms / 1000, ms % 1000);
}

static char *build_command(const struct demo_service *s, unsigned ms)
{
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_puts(&b, "set -eu; d=\"$RAILYARD_PIPELINE_DIR\"; ");
	add_checks(&b, s->imports, ".artifact", "build:$dep has not run");
	if (*s->imports)
		ry_buf_printf(&b, "echo \"compiling %s against %s\"; ", s->name, s->imports);
	else
		ry_buf_printf(&b, "echo \"compiling %s\"; ", s->name);
	add_sleep(&b, ms);
	ry_buf_printf(&b, "printf 'service=%s\\nrevision=%%s\\nsource_date_epoch=%%s\\n' "
		      "\"$RAILYARD_REVISION\" \"$SOURCE_DATE_EPOCH\" >\"$d/%s.artifact\"; "
		      "echo \"wrote %s.artifact\"",
		      s->name, s->name, s->name);
	return ry_buf_detach(&b);
}

static char *test_command(const struct demo_service *s, unsigned ms, bool fail)
{
	struct ry_buf b = RY_BUF_INIT;
	unsigned ntests = 5 + fnv1a(s->name) % 60;
	char *deps = *s->test_uses ? ry_asprintf("%s %s", s->name, s->test_uses)
				   : ry_strdup(s->name);

	ry_buf_puts(&b, "set -eu; d=\"$RAILYARD_PIPELINE_DIR\"; ");
	add_checks(&b, deps, ".artifact", "build:$dep has not run");
	ry_buf_printf(&b, "read -r first <\"$d/%s.artifact\"; [ \"$first\" = \"service=%s\" ] || "
		      "{ echo \"error: %s.artifact is not the artifact of %s\" >&2; exit 1; }; ",
		      s->name, s->name, s->name, s->name);
	if (*s->test_uses)
		ry_buf_printf(&b, "echo \"running %u tests of %s, integration against %s\"; ",
			      ntests, s->name, s->test_uses);
	else if (s->flags & DEMO_GPU)
		ry_buf_printf(&b, "echo \"running %u model evaluation tests of %s on the gpu\"; ",
			      ntests, s->name);
	else
		ry_buf_printf(&b, "echo \"running %u tests of %s\"; ", ntests, s->name);
	add_sleep(&b, ms);
	if (fail)
		ry_buf_printf(&b, "echo \"%s: %u passed, 1 failed (TestTotalsIncludeTax)\" >&2; exit 1",
			      s->name, ntests - 1);
	else
		ry_buf_printf(&b, "echo \"%s: %u passed\"", s->name, ntests);
	free(deps);
	return ry_buf_detach(&b);
}

static char *package_command(const struct demo_service *s, unsigned ms)
{
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_puts(&b, "set -eu; d=\"$RAILYARD_PIPELINE_DIR\"; ");
	add_checks(&b, s->name, ".artifact", "build:$dep has not run");
	ry_buf_printf(&b, "echo \"docker build -t registry.shop.example/%s:$RAILYARD_REVISION\"; ",
		      s->name);
	add_sleep(&b, ms);
	ry_buf_printf(&b, "printf 'registry.shop.example/%s:%%s\\n' \"$RAILYARD_REVISION\" "
		      ">\"$d/%s.image\"; echo \"pushed registry.shop.example/%s:$RAILYARD_REVISION\"",
		      s->name, s->name, s->name);
	return ry_buf_detach(&b);
}

static char *deploy_command(const struct demo_service *s, unsigned ms)
{
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_puts(&b, "set -eu; d=\"$RAILYARD_PIPELINE_DIR\"; ");
	add_checks(&b, s->runtime, ".manifest", "deploy:$dep has not run");
	if (s->flags & DEMO_IMAGE)
		add_checks(&b, s->name, ".image", "package:$dep has not run");
	else
		add_checks(&b, s->name, ".artifact", "build:$dep has not run");
	ry_buf_printf(&b, "echo \"deploying %s@$RAILYARD_REVISION to $DEPLOY_ENV\"; ", s->name);
	add_sleep(&b, ms);
	ry_buf_printf(&b, "printf 'service: %s\\nrevision: %%s\\nenvironment: %%s\\n' "
		      "\"$RAILYARD_REVISION\" \"$DEPLOY_ENV\" >\"$d/%s.manifest\"; "
		      "echo \"%s is live in $DEPLOY_ENV\"",
		      s->name, s->name, s->name);
	return ry_buf_detach(&b);
}

/* A service's own task, named KIND:SERVICE. */
static size_t add_service_task(struct ry_demo_pipeline *p, const char *kind,
			       const struct demo_service *s, unsigned sleep_ms, char *command)
{
	char *name = ry_asprintf("%s:%s", kind, s->name);
	size_t t = add_task(p, kind, s->name, name, sleep_ms, command);
	free(name);
	return t;
}

static bool add_service(struct ry_demo_pipeline *p, const struct demo_service *s, bool fail,
			char **err)
{
	size_t t;

	t = add_service_task(p, "build", s, scaled_ms(s->name, 100),
			     build_command(s, scaled_ms(s->name, 100)));
	if (!add_needs(p, t, "build", s->imports, "build", err))
		return false;

	t = add_service_task(p, "test", s, scaled_ms(s->name, 70),
			     test_command(s, scaled_ms(s->name, 70), fail));
	if (s->flags & DEMO_GPU) {
		ry_strlist_add(&p->tasks[t].requires, "gpu");
		p->tasks[t].mem_mb = 1024;
	}
	if (!add_needs(p, t, "build", s->name, "build", err) ||
	    !add_needs(p, t, "build", s->test_uses, "test", err))
		return false;
	if (s->flags & DEMO_LIB)
		return true;

	const char *before_deploy = "test";
	if (s->flags & DEMO_IMAGE) {
		t = add_service_task(p, "package", s, scaled_ms(s->name, 60),
				     package_command(s, scaled_ms(s->name, 60)));
		ry_strlist_add(&p->tasks[t].requires, "docker");
		p->tasks[t].mem_mb = 512;
		if (!add_needs(p, t, "test", s->name, "build", err))
			return false;
		before_deploy = "package";
	}

	t = add_service_task(p, "deploy", s, scaled_ms(s->name, 40),
			     deploy_command(s, scaled_ms(s->name, 40)));
	p->tasks[t].env_name = "DEPLOY_ENV";
	p->tasks[t].env_value = "staging";
	return add_needs(p, t, before_deploy, s->name, "build", err) &&
	       add_needs(p, t, "deploy", s->runtime, "runtime", err);
}

/* The tasks around the services: a lint, a conditional docs publish, and
 * the two that close the pipeline (release report always, notify on failure). */
static bool add_extras(struct ry_demo_pipeline *p, char **err)
{
	add_task(p, "lint", "proto", "lint:proto", 300, ry_strdup(
		"set -eu; echo \"buf lint: checking 14 .proto files\"; sleep 0.300; "
		"echo \"buf lint: 0 problems\" | tee \"$RAILYARD_PIPELINE_DIR/proto.lint\""));

	size_t t = add_task(p, "publish", "docs", "publish:docs", 200, ry_strdup(
		"set -eu; echo \"publishing the developer docs for $RAILYARD_REVISION\"; sleep 0.200"));
	p->tasks[t].only_if_changed = "^docs/";

	/* Both closing tasks hang below every sink, so they see every outcome. */
	bool *has_downstream = ry_calloc(p->ntasks, sizeof(bool));
	for (size_t i = 0; i < p->ntasks; i++)
		for (size_t k = 0; k < p->tasks[i].nneeds; k++)
			has_downstream[p->tasks[i].needs[k].task] = true;
	size_t nsinks = p->ntasks;

	size_t report = add_task(p, "other", "release", "report:release", 200, ry_strdup(
		"set -u; d=\"$RAILYARD_PIPELINE_DIR\"; n=0; "
		"for m in \"$d\"/*.manifest; do [ -e \"$m\" ] && n=$((n + 1)); done; "
		"echo \"release $RAILYARD_REVISION: $n services deployed\" | tee \"$d/release.txt\"; "
		"sleep 0.200"));
	p->tasks[report].run_if = "always";
	size_t notify = add_task(p, "other", "release", "notify:on-failure", 200, ry_strdup(
		"echo \"pipeline $RAILYARD_PIPELINE_ID ($RAILYARD_REVISION) failed: paging #shop-oncall\"; "
		"sleep 0.200"));
	p->tasks[notify].run_if = "on_failure";

	bool ok = true;
	for (size_t i = 0; ok && i < nsinks; i++)
		if (!has_downstream[i])
			ok = add_need(p, report, p->tasks[i].name, "build", err) &&
			     add_need(p, notify, p->tasks[i].name, "build", err);
	free(has_downstream);
	return ok;
}

bool ry_demo_generate(struct ry_demo_pipeline *p, const char *revision,
		      const char *fail_service, char **err)
{
	bool fail_known = !fail_service;

	p->revision = ry_strdup(revision);
	p->name = ry_asprintf("shop@%s", revision);
	ry_strlist_add(&p->changed_paths, "services/cart/handler.go");
	ry_strlist_add(&p->changed_paths, "services/checkout/flow.go");
	ry_strlist_add(&p->changed_paths, "libs/proto/shop.proto");
	for (size_t i = 0; i < RY_ARRAY_SIZE(services); i++)
		if (fail_service && strcmp(services[i].name, fail_service) == 0)
			fail_known = true;
	if (!fail_known) {
		*err = ry_asprintf("unknown service '%s' (try cart, payments or ml-ranker)",
				   fail_service);
		return false;
	}
	for (size_t i = 0; i < RY_ARRAY_SIZE(services); i++) {
		bool fail = fail_service && strcmp(services[i].name, fail_service) == 0;
		if (!add_service(p, &services[i], fail, err))
			return false;
	}
	p->nservices = RY_ARRAY_SIZE(services);
	return add_extras(p, err);
}

static void json_need(struct ry_buf *b, const struct ry_demo_pipeline *p,
		      const struct ry_demo_need *n)
{
	/* Build edges in the short form, typed ones spelled out: both are valid. */
	if (strcmp(n->kind, "build") == 0) {
		json_str(b, p->tasks[n->task].name);
		return;
	}
	ry_buf_puts(b, "{\"task\": ");
	json_str(b, p->tasks[n->task].name);
	ry_buf_puts(b, ", \"kind\": ");
	json_str(b, n->kind);
	ry_buf_putc(b, '}');
}

char *ry_demo_to_json(const struct ry_demo_pipeline *p)
{
	struct ry_buf b = RY_BUF_INIT;

	ry_buf_puts(&b, "{\n  \"name\": ");
	json_str(&b, p->name);
	ry_buf_puts(&b, ",\n  \"team\": \"shop\",\n  \"priority\": 0,\n  \"revision\": ");
	json_str(&b, p->revision);
	ry_buf_puts(&b, ",\n  \"changed_paths\": [");
	for (size_t i = 0; i < p->changed_paths.n; i++) {
		ry_buf_puts(&b, i ? ", " : "");
		json_str(&b, p->changed_paths.items[i]);
	}
	ry_buf_puts(&b, "],\n  \"tasks\": [");
	for (size_t i = 0; i < p->ntasks; i++) {
		const struct ry_demo_task *t = &p->tasks[i];
		ry_buf_puts(&b, i ? ",\n    {" : "\n    {");
		ry_buf_puts(&b, "\n      \"name\": ");
		json_str(&b, t->name);
		ry_buf_puts(&b, ",\n      \"service\": ");
		json_str(&b, t->service);
		ry_buf_puts(&b, ",\n      \"kind\": ");
		json_str(&b, t->kind);
		ry_buf_puts(&b, ",\n      \"command\": ");
		json_str(&b, t->command);
		ry_buf_puts(&b, ",\n      \"requires\": [");
		for (size_t k = 0; k < t->requires.n; k++) {
			ry_buf_puts(&b, k ? ", " : "");
			json_str(&b, t->requires.items[k]);
		}
		ry_buf_printf(&b, "],\n      \"cpu\": %d,\n      \"mem_mb\": %d,\n      \"timeout_s\": %d",
			      t->cpu, t->mem_mb, t->timeout_s);
		if (t->env_name) {
			ry_buf_puts(&b, ",\n      \"env\": {");
			json_str(&b, t->env_name);
			ry_buf_puts(&b, ": ");
			json_str(&b, t->env_value);
			ry_buf_putc(&b, '}');
		}
		if (t->run_if) {
			ry_buf_puts(&b, ",\n      \"run_if\": ");
			json_str(&b, t->run_if);
		}
		if (t->only_if_changed) {
			ry_buf_puts(&b, ",\n      \"only_if_changed\": ");
			json_str(&b, t->only_if_changed);
		}
		ry_buf_puts(&b, ",\n      \"needs\": [");
		for (size_t k = 0; k < t->nneeds; k++) {
			ry_buf_puts(&b, k ? ", " : "");
			json_need(&b, p, &t->needs[k]);
		}
		ry_buf_puts(&b, "]\n    }");
	}
	ry_buf_puts(&b, "\n  ]\n}\n");
	return ry_buf_detach(&b);
}

void ry_demo_release(struct ry_demo_pipeline *p)
{
	for (size_t i = 0; i < p->ntasks; i++) {
		free(p->tasks[i].name);
		free(p->tasks[i].command);
		free(p->tasks[i].needs);
		ry_strlist_release(&p->tasks[i].requires);
	}
	free(p->tasks);
	free(p->name);
	free(p->revision);
	ry_strlist_release(&p->changed_paths);
	memset(p, 0, sizeof(*p));
}
