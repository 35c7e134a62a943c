/*
 * Unit tests for pkg/plan.  Requirements: a changed path belongs to the
 * service with the deepest root holding it (a Maven aggregator owns only
 * its pom.xml), shared build files affect the services using them, other
 * paths are listed as ignored; a leaf change plans that service alone; a
 * shared library's change plans every service that builds on it, by any
 * route, and nothing else; a test dependency reruns the dependent's tests
 * and stops there; runtime dependents get integration tests after the
 * deploys they need, and a runtime cycle orders no deploys; every service
 * says why it is in the plan with the evidence; templates come per
 * service, then per ecosystem, then built in, with placeholders quoted for
 * the shell; the plan is a valid spec whose only_if_changed patterns match
 * the change; a build cycle among the affected services is refused with
 * its path; nothing affected gives no spec.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "deps_check.h"
#include "match/match.h"
#include "plan/plan.h"
#include "spec/spec.h"

/* A Go monorepo with a shared library reached two ways, a test kit, a
 * compose file with a runtime cycle, a Maven aggregator and a go.work. */
#define REPO                                                                                      \
	{ "go.work", "go 1.22\nuse ./services/cart\n" },                                          \
	{ "libs/money/go.mod", "module shop/money\n" },                                           \
	{ "libs/testkit/go.mod", "module shop/testkit\n" },                                       \
	{ "services/cart/go.mod", "module shop/cart\nrequire shop/money v1\n" },                  \
	{ "services/checkout/go.mod",                                                             \
	  "module shop/checkout\nrequire shop/cart v1\nrequire shop/money v1\n" },                \
	{ "services/search/go.mod", "module shop/search\n" },                                     \
	{ "services/web/package.json", "{\"name\": \"web\", \"devDependencies\": {}}" },          \
	{ "services/reports/go.mod", "module shop/reports\n" },                                   \
	{ "services/reports/railyard-test.txt", "" },                                             \
	{ "java/pom.xml", "<project><groupId>g</groupId><artifactId>jparent</artifactId>"        \
			  "<packaging>pom</packaging></project>" },                                \
	{ "java/orders/pom.xml", "<project><parent><groupId>g</groupId><artifactId>jparent"      \
				 "</artifactId></parent><artifactId>orders</artifactId></project>" }, \
	{ "docker-compose.yml",                                                                   \
	  "services:\n"                                                                           \
	  "  web: {build: services/web, depends_on: [checkout]}\n"                                \
	  "  checkout: {build: services/checkout, environment: {CART_ADDR: 'cart:80'}}\n"        \
	  "  cart: {build: services/cart, depends_on: [checkout]}\n" }

static const char test_dep[] =
	"dependencies:\n"
	"  - {from: reports, to: testkit, kind: test}\n"
	"  - {from: search, to: reports, kind: test}\n";

struct planned {
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	struct ry_plan plan;
	struct ry_spec *spec;
};

/* Plans paths (NULL-terminated) over the fixture; fails on any error. */
static void plan_change(struct planned *p, const char *yaml, const char *const *paths)
{
	const struct ry_deps_file files[] = { REPO, { "railyard.yaml", yaml ? yaml : test_dep } };
	char *err = NULL;
	if (!ry_deps_scan_files(files, RY_ARRAY_SIZE(files), NULL, &p->g, &p->cfg, &err))
		fail_msg("scan: %s", err);
	struct ry_strlist changed = { 0 };
	for (size_t i = 0; paths[i]; i++)
		ry_strlist_add(&changed, paths[i]);
	struct ry_plan_options opt = { "shop", "0123456789abcdef", "/srv/checkouts/shop" };
	if (!ry_plan_make(&p->g, &p->cfg, &changed, &opt, &p->plan, &err))
		fail_msg("plan: %s", err);
	ry_strlist_release(&changed);
	p->spec = NULL;
	if (p->plan.spec) {
		struct ry_strlist errors = { 0 };
		p->spec = ry_spec_parse("plan", p->plan.spec, strlen(p->plan.spec), RY_SPEC_JSON, &errors);
		if (!p->spec)
			fail_msg("the plan is not a valid spec: %s\n%s", errors.items[0], p->plan.spec);
		ry_strlist_release(&errors);
	}
}

static void planned_release(struct planned *p)
{
	ry_spec_free(p->spec);
	ry_plan_release(&p->plan);
	release(&p->g, &p->cfg);
}

/* The planned services' names, space separated, in order. */
static char *planned_names(const struct planned *p)
{
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_puts(&b, "");
	for (size_t i = 0; i < p->plan.n; i++)
		ry_buf_printf(&b, "%s%s", i ? " " : "", p->g.services[p->plan.svcs[i].service].name);
	return ry_buf_detach(&b);
}

static void assert_services(const struct planned *p, const char *want)
{
	char *got = planned_names(p);
	if (strcmp(got, want) != 0)
		fail_msg("planned services: \"%s\", expected \"%s\"", got, want);
	free(got);
}

static const char *reason(const struct planned *p, const char *name)
{
	for (size_t i = 0; i < p->plan.n; i++)
		if (!strcmp(p->g.services[p->plan.svcs[i].service].name, name))
			return p->plan.svcs[i].reason;
	fail_msg("%s is not planned", name);
	return NULL;
}

static bool has_task(const struct planned *p, const char *name)
{
	return p->spec && ry_spec_find_task(p->spec, name) != NULL;
}

static bool has_edge(const struct planned *p, const char *up, const char *down, const char *kind)
{
	for (size_t i = 0; p->spec && i < p->spec->nedges; i++)
		if (!strcmp(p->spec->edges[i].upstream, up) && !strcmp(p->spec->edges[i].downstream, down) &&
		    !strcmp(p->spec->edges[i].kind, kind))
			return true;
	return false;
}

/* Every task's only_if_changed matches one of the changed paths. */
static void assert_patterns_match(const struct planned *p)
{
	for (size_t i = 0; p->spec && i < p->spec->ntasks; i++) {
		const struct ry_spec_task *t = &p->spec->tasks[i];
		if (!t->only_if_changed)
			continue;
		char *err = NULL;
		struct ry_match *m = ry_match_compile(t->only_if_changed, &err);
		assert_non_null(m);
		if (!ry_match_any(m, p->spec->changed_paths.items, p->spec->changed_paths.n))
			fail_msg("%s: only_if_changed %s matches no changed path", t->name,
				 t->only_if_changed);
		ry_match_free(m);
	}
}

static void a_leaf_change_plans_one_service(void **state)
{
	(void)state;
	struct planned p;
	plan_change(&p, NULL, (const char *const[]){ "services/search/main.go", "README.md", NULL });
	assert_services(&p, "search");
	assert_string_equal(reason(&p, "search"), "changed: services/search/main.go");
	assert_int_equal(p.plan.unowned.n, 1);
	assert_string_equal(p.plan.unowned.items[0], "README.md");
	assert_int_equal(p.spec->ntasks, 2);
	const struct ry_spec_task *b = ry_spec_find_task(p.spec, "build:search");
	assert_non_null(b);
	assert_string_equal(b->command, "cd services/search && go build ./...");
	assert_true(b->cacheable);
	assert_string_equal(b->inputs.items[0], "services/search");
	assert_true(has_edge(&p, "build:search", "test:search", "build"));
	assert_string_equal(p.spec->name, "shop@0123456789ab");
	assert_string_equal(p.spec->revision, "0123456789abcdef");
	assert_string_equal(p.spec->origin, "/srv/checkouts/shop");	/* the tasks' tree */
	assert_patterns_match(&p);
	planned_release(&p);
}

static void a_shared_library_plans_its_dependents_and_nothing_else(void **state)
{
	(void)state;
	struct planned p;
	plan_change(&p, NULL, (const char *const[]){ "libs/money/rates.go", NULL });
	/* checkout builds on money directly and through cart: planned once */
	assert_services(&p, "cart checkout money web");
	assert_string_equal(reason(&p, "cart"),
			    "build dependency on money (services/cart/go.mod:2), money changed: "
			    "libs/money/rates.go");
	assert_string_equal(reason(&p, "checkout"),
			    "build dependency on money (services/checkout/go.mod:3), money changed: "
			    "libs/money/rates.go");
	assert_true(has_edge(&p, "build:money", "build:cart", "build"));
	assert_true(has_edge(&p, "build:cart", "build:checkout", "build"));
	assert_true(has_edge(&p, "build:money", "build:checkout", "build"));
	/* web only runs checkout: its integration tests, after checkout's deploy */
	assert_int_equal(p.plan.svcs[3].why, RY_PLAN_RUNTIME);
	assert_false(has_task(&p, "build:web"));
	assert_true(has_task(&p, "integration:web"));
	assert_true(has_edge(&p, "deploy:checkout", "integration:web", "runtime"));
	/* cart <-> checkout is a runtime cycle: warned, no deploy ordered inside it */
	assert_int_equal(p.plan.warnings.n, 1);
	assert_non_null(strstr(p.plan.warnings.items[0], "runtime cycle"));
	assert_false(has_edge(&p, "deploy:checkout", "deploy:cart", "runtime"));
	assert_false(has_edge(&p, "deploy:cart", "deploy:checkout", "runtime"));
	/* typed edges, no stage barrier: cart's tests wait for cart's build only */
	assert_true(has_edge(&p, "build:cart", "test:cart", "build"));
	assert_false(has_edge(&p, "build:checkout", "test:cart", "build"));
	assert_patterns_match(&p);
	planned_release(&p);
}

static void a_test_dependency_reruns_tests_and_stops(void **state)
{
	(void)state;
	struct planned p;
	plan_change(&p, NULL, (const char *const[]){ "libs/testkit/fake.go", NULL });
	/* reports tests with testkit; search tests with reports, whose build did not change */
	assert_services(&p, "reports testkit");
	assert_int_equal(p.plan.svcs[0].why, RY_PLAN_TEST);
	assert_true(has_task(&p, "test:reports"));
	assert_false(has_task(&p, "deploy:reports"));
	assert_true(has_edge(&p, "build:testkit", "test:reports", "test"));
	assert_true(has_edge(&p, "build:reports", "test:reports", "build"));
	assert_patterns_match(&p);
	planned_release(&p);
}

static void ownership_shared_files_and_aggregators(void **state)
{
	(void)state;
	struct planned p;
	plan_change(&p, NULL, (const char *const[]){ "go.work", "java/pom.xml", "java/README", NULL });
	/* go.work: the module it uses; the aggregator's pom: it and its children */
	assert_services(&p, "cart checkout jparent orders web");
	assert_string_equal(reason(&p, "cart"), "go workspace file: go.work");
	assert_string_equal(reason(&p, "jparent"), "changed: java/pom.xml");
	assert_int_equal(p.plan.unowned.n, 1);	/* java/README: the aggregator does not own it */
	assert_string_equal(ry_spec_find_task(p.spec, "build:jparent")->command,
			    "mvn -B -q -N -f java/pom.xml install");
	assert_patterns_match(&p);
	planned_release(&p);

	/* the compose file only redeploys what it runs */
	plan_change(&p, NULL, (const char *const[]){ "docker-compose.yml", NULL });
	assert_services(&p, "cart checkout web");
	assert_false(has_task(&p, "build:cart"));
	assert_true(has_task(&p, "deploy:cart"));
	assert_true(has_task(&p, "deploy:web"));
	/* web runs after checkout (depends_on): its deploy waits for checkout's */
	assert_true(has_edge(&p, "deploy:checkout", "deploy:web", "runtime"));
	assert_patterns_match(&p);
	planned_release(&p);
}

static const char templates[] =
	"templates:\n"
	"  ecosystems:\n"
	"    go:\n"
	"      build: {command: 'make -C {root} NAME={name}', requires: [linux], cpu: 2}\n"
	"      test: null\n"
	"  services:\n"
	"    search:\n"
	"      build: build-search {manifest}\n";

static void templates_per_service_then_ecosystem(void **state)
{
	(void)state;
	struct planned p;
	plan_change(&p, templates, (const char *const[]){ "services/search/a", "services/cart/b", NULL });
	const struct ry_spec_task *cart = ry_spec_find_task(p.spec, "build:cart");
	assert_string_equal(cart->command, "make -C services/cart NAME=cart");
	assert_int_equal(cart->cpu, 2);
	assert_string_equal(cart->requires.items[0], "linux");
	assert_string_equal(ry_spec_find_task(p.spec, "build:search")->command,
			    "build-search services/search/go.mod");
	assert_false(has_task(&p, "test:cart"));	/* null: no such task */
	assert_true(has_edge(&p, "build:cart", "deploy:cart", "build"));
	planned_release(&p);
}

static void placeholders_are_quoted_for_the_shell(void **state)
{
	(void)state;
	const struct ry_deps_file files[] = {
		{ "odd dir/$(touch pwned)/go.mod", "module odd\n" },
	};
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	struct ry_plan plan;
	char *err = NULL;
	assert_true(ry_deps_scan_files(files, 1, NULL, &g, &cfg, &err));
	struct ry_strlist changed = { 0 };
	ry_strlist_add(&changed, "odd dir/$(touch pwned)/x.go");
	assert_true(ry_plan_make(&g, &cfg, &changed, NULL, &plan, &err));
	assert_non_null(strstr(plan.spec, "cd 'odd dir/$(touch pwned)' && go build"));
	ry_plan_release(&plan);
	ry_strlist_release(&changed);
	release(&g, &cfg);
}

static void cycles_and_bad_paths_are_refused(void **state)
{
	(void)state;
	static const char cycle[] =
		"dependencies:\n"
		"  - {from: money, to: checkout}\n";
	const struct ry_deps_file files[] = { REPO, { "railyard.yaml", cycle } };
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	struct ry_plan plan;
	char *err = NULL;
	assert_true(ry_deps_scan_files(files, RY_ARRAY_SIZE(files), NULL, &g, &cfg, &err));
	struct ry_strlist changed = { 0 };
	ry_strlist_add(&changed, "services/cart/x.go");
	assert_false(ry_plan_make(&g, &cfg, &changed, NULL, &plan, &err));
	assert_non_null(strstr(err, "cycle: cart -> money -> checkout -> cart (build, "
				    "services/checkout/go.mod:2)"));
	free(err);
	ry_plan_release(&plan);
	/* a change that does not reach the cycle plans as usual */
	ry_strlist_release(&changed);
	ry_strlist_add(&changed, "services/search/x.go");
	assert_true(ry_plan_make(&g, &cfg, &changed, NULL, &plan, &err));
	assert_int_equal(plan.n, 1);
	ry_plan_release(&plan);
	ry_strlist_release(&changed);

	const char *bad[] = { "/etc/passwd", "../outside", "a/../../b", "" };
	for (size_t i = 0; i < RY_ARRAY_SIZE(bad); i++) {
		ry_strlist_add(&changed, bad[i]);
		assert_false(ry_plan_make(&g, &cfg, &changed, NULL, &plan, &err));
		assert_non_null(strstr(err, "is not a path inside the repository"));
		free(err);
		ry_plan_release(&plan);
		ry_strlist_release(&changed);
	}
	release(&g, &cfg);
}

static void nothing_affected_gives_no_spec(void **state)
{
	(void)state;
	struct planned p;
	plan_change(&p, NULL, (const char *const[]){ "docs/intro.md", "LICENSE", NULL });
	assert_int_equal(p.plan.n, 0);
	assert_null(p.plan.spec);
	struct ry_buf b = RY_BUF_INIT;
	ry_plan_format(&p.plan, &p.g, &b);
	assert_non_null(strstr(b.data, "nothing to do: no service is affected by the 2 changed paths"));
	ry_buf_release(&b);
	planned_release(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_leaf_change_plans_one_service),
		cmocka_unit_test(a_shared_library_plans_its_dependents_and_nothing_else),
		cmocka_unit_test(a_test_dependency_reruns_tests_and_stops),
		cmocka_unit_test(ownership_shared_files_and_aggregators),
		cmocka_unit_test(templates_per_service_then_ecosystem),
		cmocka_unit_test(placeholders_are_quoted_for_the_shell),
		cmocka_unit_test(cycles_and_bad_paths_are_refused),
		cmocka_unit_test(nothing_affected_gives_no_spec),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
