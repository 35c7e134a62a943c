/*
 * The demo pipeline must look like a real microservice farm (enough
 * services, typed cross-service edges, placement that needs docker and gpu
 * agents, conditional tasks), be accepted by the spec parser, and its
 * commands must really depend on their upstreams' files: run in dependency
 * order they all pass, run out of order they fail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "demo/demo.h"
#include "spec/spec.h"

static struct ry_demo_pipeline *generate(const char *fail)
{
	struct ry_demo_pipeline *p = ry_calloc(1, sizeof(*p));
	char *err = NULL;
	bool ok = ry_demo_generate(p, "9f3c2e1", fail, &err);
	if (!ok)
		fail_msg("generate: %s", err);
	return p;
}

static void release(struct ry_demo_pipeline *p)
{
	ry_demo_release(p);
	free(p);
}

static const struct ry_demo_task *task(const struct ry_demo_pipeline *p, const char *name)
{
	long i = ry_demo_find(p, name);
	if (i < 0)
		fail_msg("no task %s", name);
	return &p->tasks[i];
}

static bool requires(const struct ry_demo_task *t, const char *label)
{
	return ry_strlist_has(&t->requires, label);
}

/* The kind of the edge upstream -> t, or NULL when there is none. */
static const char *edge(const struct ry_demo_pipeline *p, const struct ry_demo_task *t,
			const char *upstream)
{
	for (size_t k = 0; k < t->nneeds; k++)
		if (strcmp(p->tasks[t->needs[k].task].name, upstream) == 0)
			return t->needs[k].kind;
	return NULL;
}

static void test_shop_has_many_services_each_built_tested_deployed(void **state)
{
	(void)state;
	struct ry_demo_pipeline *p = generate(NULL);
	struct ry_strlist services = { 0 };
	size_t deploys = 0;

	assert_true(p->nservices >= 30);
	for (size_t i = 0; i < p->ntasks; i++) {
		const struct ry_demo_task *t = &p->tasks[i];
		if (strcmp(t->kind, "build") != 0)
			continue;
		ry_strlist_add(&services, t->service);
		char name[128];
		snprintf(name, sizeof(name), "test:%s", t->service);
		assert_true(ry_demo_find(p, name) > (long)i);
		snprintf(name, sizeof(name), "deploy:%s", t->service);
		if (strncmp(t->service, "lib", 3) == 0 || strcmp(t->service, "proto") == 0)
			assert_int_equal(ry_demo_find(p, name), -1);	/* libraries ship nothing */
		else if (ry_demo_find(p, name) > (long)i)
			deploys++;
	}
	assert_int_equal(services.n, p->nservices);
	assert_int_equal(deploys, p->nservices - 5);
	ry_strlist_release(&services);
	release(p);
}

static void test_names_are_unique_valid_and_upstreams_come_first(void **state)
{
	(void)state;
	struct ry_demo_pipeline *p = generate(NULL);
	for (size_t i = 0; i < p->ntasks; i++) {
		const char *n = p->tasks[i].name;
		/* railyard.tasks CHECK: ^[A-Za-z0-9_][A-Za-z0-9_.:/@+=-]{0,199}$ */
		assert_true(strlen(n) >= 1 && strlen(n) <= 200);
		assert_int_equal(strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					   "0123456789_.:/@+=-"), strlen(n));
		assert_int_equal(ry_demo_find(p, n), (long)i);
		for (size_t k = 0; k < p->tasks[i].nneeds; k++)
			assert_true(p->tasks[i].needs[k].task < i);
	}
	release(p);
}

static void test_edges_are_typed_across_services(void **state)
{
	(void)state;
	struct ry_demo_pipeline *p = generate(NULL);

	/* A build waits for the libraries it imports, not for other services. */
	assert_string_equal(edge(p, task(p, "build:cart"), "build:libdb"), "build");
	assert_string_equal(edge(p, task(p, "build:libhttp"), "build:libmetrics"), "build");
	assert_null(edge(p, task(p, "build:cart"), "build:pricing"));
	/* Integration tests wait for the builds they start: test edges. */
	assert_string_equal(edge(p, task(p, "test:checkout"), "build:cart"), "test");
	/* A deploy waits for the deploys of what it calls at runtime. */
	assert_string_equal(edge(p, task(p, "deploy:cart"), "deploy:auth"), "runtime");
	assert_string_equal(edge(p, task(p, "deploy:web-ui"), "deploy:gateway"), "runtime");
	/* ...and for its own tests (through the image when it ships one). */
	assert_non_null(edge(p, task(p, "deploy:cart"), "test:cart"));
	assert_non_null(edge(p, task(p, "deploy:gateway"), "package:gateway"));
	assert_non_null(edge(p, task(p, "package:gateway"), "test:gateway"));
	release(p);
}

static void test_placement_needs_docker_and_gpu_agents(void **state)
{
	(void)state;
	struct ry_demo_pipeline *p = generate(NULL);
	size_t docker = 0, gpu = 0;
	for (size_t i = 0; i < p->ntasks; i++) {
		const struct ry_demo_task *t = &p->tasks[i];
		assert_true(requires(t, "linux"));
		if (requires(t, "docker")) {
			docker++;
			assert_string_equal(t->kind, "package");
		}
		if (requires(t, "gpu")) {
			gpu++;
			assert_string_equal(t->name, "test:ml-ranker");
		}
	}
	assert_true(docker >= 2);
	assert_int_equal(gpu, 1);
	release(p);
}

/* Marks every ancestor of task to (and to itself) in seen. */
static void mark_ancestors(const struct ry_demo_pipeline *p, size_t to, bool *seen)
{
	if (seen[to])
		return;
	seen[to] = true;
	for (size_t k = 0; k < p->tasks[to].nneeds; k++)
		mark_ancestors(p, p->tasks[to].needs[k].task, seen);
}

static void test_conditional_tasks_watch_the_whole_pipeline(void **state)
{
	(void)state;
	struct ry_demo_pipeline *p = generate(NULL);
	size_t notify = (size_t)ry_demo_find(p, "notify:on-failure");
	size_t report = (size_t)ry_demo_find(p, "report:release");
	size_t lint = 0;
	bool *before_notify = ry_calloc(p->ntasks, sizeof(bool));
	bool *before_report = ry_calloc(p->ntasks, sizeof(bool));

	mark_ancestors(p, notify, before_notify);
	mark_ancestors(p, report, before_report);

	assert_string_equal(p->tasks[notify].run_if, "on_failure");
	assert_string_equal(p->tasks[report].run_if, "always");
	assert_string_equal(task(p, "publish:docs")->only_if_changed, "^docs/");
	for (size_t i = 0; i < p->ntasks; i++) {
		if (strcmp(p->tasks[i].kind, "lint") == 0)
			lint++;
		if (i == notify || i == report)
			continue;
		/* Any failure anywhere must be able to trigger the notification. */
		assert_true(before_notify[i]);
		assert_true(before_report[i]);
	}
	free(before_notify);
	free(before_report);
	assert_int_equal(lint, 1);
	/* The changed paths leave no docs change, so publish:docs is skipped. */
	for (size_t i = 0; i < p->changed_paths.n; i++)
		assert_true(strncmp(p->changed_paths.items[i], "docs/", 5) != 0);
	release(p);
}

static void test_sleeps_are_deterministic_per_service_and_bounded(void **state)
{
	(void)state;
	struct ry_demo_pipeline *p = generate(NULL);
	unsigned lo = 100000, hi = 0;
	for (size_t i = 0; i < p->ntasks; i++) {
		const struct ry_demo_task *t = &p->tasks[i];
		char needle[32];
		assert_in_range(t->sleep_ms, 200, 1500);
		snprintf(needle, sizeof(needle), "sleep %u.%03u", t->sleep_ms / 1000, t->sleep_ms % 1000);
		assert_non_null(strstr(t->command, needle));
		if (strcmp(t->kind, "build") == 0) {
			assert_int_equal(t->sleep_ms, ry_demo_sleep_ms(t->service));
			lo = t->sleep_ms < lo ? t->sleep_ms : lo;
			hi = t->sleep_ms > hi ? t->sleep_ms : hi;
		}
	}
	assert_int_equal(ry_demo_sleep_ms("cart"), ry_demo_sleep_ms("cart"));
	assert_true(hi - lo >= 500);	/* services differ: the schedule has a shape */
	release(p);
}

static void test_json_is_what_the_spec_parser_accepts(void **state)
{
	(void)state;
	struct ry_demo_pipeline *p = generate(NULL);
	char *text = ry_demo_to_json(p);
	json_error_t jerr;
	json_t *root = json_loads(text, 0, &jerr);
	if (!root)
		fail_msg("invalid json at line %d: %s", jerr.line, jerr.text);

	json_t *tasks = json_object_get(root, "tasks");
	assert_int_equal(json_array_size(tasks), p->ntasks);
	size_t nedges = 0;
	for (size_t i = 0; i < p->ntasks; i++) {
		json_t *t = json_array_get(tasks, i);
		assert_string_equal(json_string_value(json_object_get(t, "name")), p->tasks[i].name);
		/* Commands are full of quotes and backslashes: they must survive. */
		assert_string_equal(json_string_value(json_object_get(t, "command")),
				    p->tasks[i].command);
		nedges += json_array_size(json_object_get(t, "needs"));
	}
	json_decref(root);

	struct ry_strlist errors = { 0 };
	struct ry_spec *spec = ry_spec_parse("demo.json", text, strlen(text), RY_SPEC_JSON, &errors);
	if (!spec)
		fail_msg("spec parser rejects the demo: %s", errors.n ? errors.items[0] : "?");
	assert_int_equal(spec->ntasks, p->ntasks);
	assert_int_equal(spec->nedges, nedges);
	const struct ry_spec_task *deploy = ry_spec_find_task(spec, "deploy:cart");
	assert_non_null(deploy);
	assert_int_equal(deploy->nenv, 1);
	assert_string_equal(deploy->env[0].name, "DEPLOY_ENV");
	size_t runtime = 0;
	for (size_t k = 0; k < spec->nedges; k++)
		if (strcmp(spec->edges[k].kind, "runtime") == 0)
			runtime++;
	assert_true(runtime >= 20);
	ry_spec_free(spec);
	ry_strlist_release(&errors);
	free(text);
	release(p);
}

static void test_unknown_failing_service_is_refused(void **state)
{
	(void)state;
	struct ry_demo_pipeline p = { 0 };
	char *err = NULL;
	assert_false(ry_demo_generate(&p, "abc", "no-such-service", &err));
	assert_non_null(strstr(err, "no-such-service"));
	free(err);
	ry_demo_release(&p);
}

/* Runs a task's command like a worker would (sleep made instant); exit code. */
static int run_task(const struct ry_demo_task *t, const char *dir)
{
	char *script = ry_asprintf("sleep() { :; }; %s", t->command);
	char *pdir = ry_asprintf("RAILYARD_PIPELINE_DIR=%s", dir);
	char *envval = ry_asprintf("%s=%s", t->env_name ? t->env_name : "UNUSED",
				   t->env_value ? t->env_value : "");
	const char *env[] = { "PATH=/usr/bin:/bin", "LC_ALL=C", "TZ=UTC", "SOURCE_DATE_EPOCH=0",
			"RAILYARD_REVISION=9f3c2e1", "RAILYARD_PIPELINE_ID=1", pdir, envval, NULL };
	const char *argv[] = { "/bin/sh", "-c", script, NULL };
	int status = -1;

	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		FILE *null = freopen("/dev/null", "w", stdout);
		FILE *null2 = freopen("/dev/null", "w", stderr);
		(void)null;
		(void)null2;
		execve(argv[0], (char *const *)argv, (char *const *)env);
		_exit(127);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	free(script);
	free(pdir);
	free(envval);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static char *scratch_dir(void)
{
	char *dir = ry_strdup("/tmp/test_demo.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return dir;
}

static void drop_dir(char *dir)
{
	nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

static void test_commands_pass_in_dependency_order(void **state)
{
	(void)state;
	struct ry_demo_pipeline *p = generate(NULL);
	char *dir = scratch_dir();
	for (size_t i = 0; i < p->ntasks; i++) {
		if (run_task(&p->tasks[i], dir) != 0)
			fail_msg("%s failed when run in order", p->tasks[i].name);
	}
	char *release_txt = ry_asprintf("%s/release.txt", dir);
	FILE *f = fopen(release_txt, "r");
	char line[256] = "";
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	char *want = ry_asprintf("release 9f3c2e1: %zu services deployed\n", p->nservices - 5);
	assert_string_equal(line, want);
	free(want);
	free(release_txt);
	drop_dir(dir);
	release(p);
}

static void test_commands_fail_out_of_dependency_order(void **state)
{
	(void)state;
	struct ry_demo_pipeline *p = generate(NULL);
	char *dir = scratch_dir();

	assert_int_not_equal(run_task(task(p, "test:cart"), dir), 0);	/* nothing built */
	/* build:cart needs the libraries first */
	assert_int_not_equal(run_task(task(p, "build:cart"), dir), 0);
	/* test:cart also starts pricing in its integration tests */
	const char *libs[] = { "build:proto", "build:libcommon", "build:libmetrics", "build:libdb",
			       "build:libhttp", "build:cart", "build:pricing", "test:cart" };
	for (size_t i = 0; i < RY_ARRAY_SIZE(libs); i++)
		assert_int_equal(run_task(task(p, libs[i]), dir), 0);
	/* tested, but what cart calls at runtime is not deployed */
	assert_int_not_equal(run_task(task(p, "deploy:cart"), dir), 0);
	drop_dir(dir);
	release(p);
}

static void test_failing_service_fails_its_tests_only(void **state)
{
	(void)state;
	struct ry_demo_pipeline *p = generate("libcommon");
	char *dir = scratch_dir();
	assert_int_equal(run_task(task(p, "build:libcommon"), dir), 0);
	assert_int_not_equal(run_task(task(p, "test:libcommon"), dir), 0);
	drop_dir(dir);
	release(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shop_has_many_services_each_built_tested_deployed),
		cmocka_unit_test(test_names_are_unique_valid_and_upstreams_come_first),
		cmocka_unit_test(test_edges_are_typed_across_services),
		cmocka_unit_test(test_placement_needs_docker_and_gpu_agents),
		cmocka_unit_test(test_conditional_tasks_watch_the_whole_pipeline),
		cmocka_unit_test(test_sleeps_are_deterministic_per_service_and_bounded),
		cmocka_unit_test(test_json_is_what_the_spec_parser_accepts),
		cmocka_unit_test(test_unknown_failing_service_is_refused),
		cmocka_unit_test(test_commands_pass_in_dependency_order),
		cmocka_unit_test(test_commands_fail_out_of_dependency_order),
		cmocka_unit_test(test_failing_service_fails_its_tests_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
