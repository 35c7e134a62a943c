/*
 * Unit tests for railyard.yaml (pkg/deps config.c).  Requirements: every
 * mistake is an error naming railyard.yaml:LINE and what is wrong, and any
 * error rejects the whole file (a scan then fails rather than half-apply
 * it); an empty file is an empty configuration; templates accept a
 * command, a mapping with task settings, or null (no such task).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "deps_check.h"

struct bad_case {
	const char *yaml;
	const char *error;	/* the start of the first message */
};

static const struct bad_case bad[] = {
	{ "servics: []\n", "railyard.yaml:1: railyard.yaml: unknown key \"servics\"" },
	{ "services:\n  - {name: a, rot: x}\n", "railyard.yaml:2: service: unknown key \"rot\"" },
	{ "services:\n  - root: x\n", "railyard.yaml:2: service: name is required" },
	{ "services:\n  - {name: a, root: ../up}\n", "railyard.yaml:2: service: root \"../up\" must be" },
	{ "services:\n  - {name: a, root: /abs}\n", "railyard.yaml:2: service: root \"/abs\" must be" },
	{ "services:\n  - {name: 'a b'}\n", "railyard.yaml:2: service: name \"a b\" is not a service" },
	{ "services:\n  - {name: a}\n  - {name: a}\n", "railyard.yaml:3: service \"a\" is declared twice" },
	{ "services: {a: 1}\n", "railyard.yaml:1: services must be a list" },
	{ "dependencies:\n  - {from: a, to: b, kind: deploy}\n",
	  "railyard.yaml:2: dependency: kind \"deploy\" is not build, test or runtime" },
	{ "dependencies:\n  - {from: a, to: a}\n", "railyard.yaml:2: dependency: a cannot depend on itself" },
	{ "dependencies:\n  - {from: a, to: b, suppress: yes}\n",
	  "railyard.yaml:2: dependency: suppress must be true or false" },
	{ "shared:\n  - {paths: [Makefile]}\n", "railyard.yaml:2: shared: affects is required" },
	{ "templates:\n  ecosystems:\n    go: {build: 12}\n",
	  "railyard.yaml:3: templates: ecosystems: go.build: a command" },
	{ "templates:\n  ecosystems:\n    go:\n      build: {command: x, cpu: 0}\n",
	  "railyard.yaml:4: templates: ecosystems: go.build: cpu must be an integer from 1 to 1024" },
	{ "templates:\n  services:\n    cart: {deploy: {cmd: x}}\n",
	  "railyard.yaml:3: templates: services: cart.deploy: unknown key \"cmd\"" },
	{ "templates:\n  servces: {}\n", "railyard.yaml:2: templates: unknown key \"servces\"" },
	{ "team: [a]\n", "railyard.yaml:1: railyard.yaml: team must be a string" },
	{ "- a\n- b\n", "railyard.yaml:1: railyard.yaml must be a mapping" },
	{ "services: [\n", "railyard.yaml:2: invalid YAML" },
	{ "a: 1\na: 2\n", "railyard.yaml:2: duplicate key \"a\"" },
};

static void mistakes_are_errors_with_lines(void **state)
{
	(void)state;
	for (size_t i = 0; i < RY_ARRAY_SIZE(bad); i++) {
		struct ry_deps_config cfg;
		struct ry_strlist errors = { 0 };
		if (ry_deps_config_parse(&cfg, "railyard.yaml", bad[i].yaml, strlen(bad[i].yaml), &errors))
			fail_msg("accepted: %s", bad[i].yaml);
		assert_true(errors.n >= 1);
		if (strncmp(errors.items[0], bad[i].error, strlen(bad[i].error)) != 0)
			fail_msg("for %s\ngot:      %s\nexpected: %s...", bad[i].yaml, errors.items[0],
				 bad[i].error);
		assert_int_equal(cfg.nservices, 0);	/* nothing kept */
		ry_strlist_release(&errors);
		ry_deps_config_release(&cfg);
	}
}

static void a_scan_with_a_bad_file_fails_whole(void **state)
{
	(void)state;
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	char *err = NULL;
	const struct ry_deps_file files[] = {
		{ "railyard.yaml", "services:\n  - {name: x, bogus: 1}\n" },
		{ "a/go.mod", "module a\n" },
	};
	assert_false(ry_deps_scan_files(files, 2, NULL, &g, &cfg, &err));
	assert_non_null(strstr(err, "railyard.yaml:2: service: unknown key \"bogus\""));
	free(err);
	release(&g, &cfg);
}

static void templates_and_empty_files(void **state)
{
	(void)state;
	static const char yaml[] =
		"templates:\n"
		"  ecosystems:\n"
		"    go:\n"
		"      build: make -C {root}\n"
		"      deploy:\n"
		"        command: ./deploy {name}\n"
		"        requires: [linux, docker]\n"
		"        pool: docker-push\n"
		"        timeout_s: 600\n"
		"  services:\n"
		"    cart:\n"
		"      test: null\n";
	struct ry_deps_config cfg;
	struct ry_strlist errors = { 0 };
	assert_true(ry_deps_config_parse(&cfg, "railyard.yaml", yaml, strlen(yaml), &errors));
	assert_int_equal(cfg.nby_ecosystem, 1);
	const struct ry_deps_template *go = &cfg.by_ecosystem[0];
	assert_string_equal(go->key, "go");
	assert_string_equal(go->task[RY_DEPS_TASK_BUILD].command, "make -C {root}");
	assert_false(go->task[RY_DEPS_TASK_TEST].set);
	assert_string_equal(go->task[RY_DEPS_TASK_DEPLOY].pool, "docker-push");
	assert_int_equal(go->task[RY_DEPS_TASK_DEPLOY].timeout_s, 600);
	assert_int_equal(go->task[RY_DEPS_TASK_DEPLOY].requires.n, 2);
	assert_true(cfg.by_service[0].task[RY_DEPS_TASK_TEST].set);
	assert_null(cfg.by_service[0].task[RY_DEPS_TASK_TEST].command);
	ry_deps_config_release(&cfg);

	const char *empties[] = { "", "# nothing\n", "---\n", "~\n" };
	for (size_t i = 0; i < RY_ARRAY_SIZE(empties); i++) {
		assert_true(ry_deps_config_parse(&cfg, "railyard.yaml", empties[i],
						 strlen(empties[i]), &errors));
		ry_deps_config_release(&cfg);
	}
	assert_int_equal(errors.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(mistakes_are_errors_with_lines),
		cmocka_unit_test(a_scan_with_a_bad_file_fails_whole),
		cmocka_unit_test(templates_and_empty_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
