/*
 * Unit tests for pkg/ciimport: the mapping from GitHub Actions and GitLab
 * CI to railyard tasks, rule by rule, on the fixture workflows
 * (tests/fixtures/ci) and on small inline files; notes carry file:line;
 * malformed input fails with file:line; what is printed is a spec that
 * pkg/spec (and so `railyard submit`) loads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ciimport/ciimport.h"
#include "ciimport/internal.h"
#include "match/match.h"
#include "spec/spec.h"

#define GH "tests/fixtures/ci/github/ci.yml"
#define GL "tests/fixtures/ci/gitlab/.gitlab-ci.yml"

static char tmpdir[] = "/tmp/test_ciimport.XXXXXX";

static const char *write_file(const char *name, const char *text)
{
	static char path[512];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	char *slash = strrchr(path, '/');
	*slash = '\0';
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", path);
	assert_int_equal(system(cmd), 0);
	*slash = '/';
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static const struct ry_ci_task *task(const struct ry_ci_pipeline *p, const char *name)
{
	for (size_t i = 0; i < p->ntasks; i++)
		if (strcmp(p->tasks[i].name, name) == 0)
			return &p->tasks[i];
	fail_msg("no task %s", name);
	return NULL;
}

static bool has_task(const struct ry_ci_pipeline *p, const char *name)
{
	for (size_t i = 0; i < p->ntasks; i++)
		if (strcmp(p->tasks[i].name, name) == 0)
			return true;
	return false;
}

static char *joined(const struct ry_strlist *l)
{
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_add(&b, "", 0);
	for (size_t i = 0; i < l->n; i++)
		ry_buf_printf(&b, "%s%s", i ? " " : "", l->items[i]);
	return ry_buf_detach(&b);
}

static void expect_list(const struct ry_strlist *l, const char *want, const char *what)
{
	char *got = joined(l);
	if (strcmp(got, want) != 0)
		fail_msg("%s: got \"%s\", want \"%s\"", what, got, want);
	free(got);
}

static const char *env(const struct ry_ci_task *t, const char *name)
{
	return ci_task_getenv(t, name);
}

/* The note whose text has `text`; its place must be `where`. */
static void expect_note(const struct ry_ci_pipeline *p, const char *where, const char *text)
{
	for (size_t i = 0; i < p->nnotes; i++)
		if (strstr(p->notes[i].text, text)) {
			if (strcmp(p->notes[i].where, where) != 0)
				fail_msg("note \"%s\" is at %s, want %s", text, p->notes[i].where, where);
			return;
		}
	fail_msg("no note saying \"%s\"", text);
}

/* The rendered spec loads with pkg/spec, task for task. */
static void expect_loadable(const struct ry_ci_pipeline *p)
{
	char *err = NULL;
	char *yaml = ry_ci_render(p, &err);
	assert_non_null(yaml);
	struct ry_strlist errors = { 0 };
	struct ry_spec *spec = ry_spec_parse("converted", yaml, strlen(yaml), RY_SPEC_YAML, &errors);
	if (!spec)
		fail_msg("the converted spec does not load: %s\n%s", errors.items[0], yaml);
	assert_int_equal(spec->ntasks, p->ntasks);
	for (size_t i = 0; i < p->ntasks; i++) {
		assert_string_equal(spec->tasks[i].name, p->tasks[i].name);
		assert_string_equal(spec->tasks[i].command, p->tasks[i].command);
		assert_int_equal(spec->tasks[i].nenv, p->tasks[i].nenv);
		for (size_t e = 0; e < p->tasks[i].nenv; e++)
			assert_string_equal(spec->tasks[i].env[e].value, p->tasks[i].env[e].value);
	}
	ry_spec_free(spec);
	ry_strlist_release(&errors);
	free(yaml);
}

static bool matches(const char *pattern, const char *path)
{
	char *err = NULL;
	struct ry_match *m = ry_match_compile(pattern, &err);
	if (!m)
		fail_msg("%s: %s", pattern, err);
	bool hit = ry_match_test(m, path);
	ry_match_free(m);
	return hit;
}

/* ---- GitHub Actions ------------------------------------------------------- */

static void github_fixture(void **state)
{
	(void)state;
	struct ry_ci_pipeline p;
	char *err = NULL;
	if (!ry_ci_import_github(GH, NULL, &p, &err))
		fail_msg("%s", err);
	assert_string_equal(p.name, "shop-ci");

	/* Matrix: 2x2 minus the exclude, the include that fits one, the one that fits none. */
	static const char *const names[] = { "lint", "build:1.21:debian", "build:1.22:debian",
		"build:1.22:alpine:true", "build:1.23:debian", "test", "deploy", "report" };
	assert_int_equal(p.ntasks, RY_ARRAY_SIZE(names));
	for (size_t i = 0; i < RY_ARRAY_SIZE(names); i++)
		assert_string_equal(p.tasks[i].name, names[i]);

	const struct ry_ci_task *lint = task(&p, "lint"), *b = task(&p, "build:1.22:alpine:true");
	assert_string_equal(lint->os, "linux");
	assert_int_equal(lint->timeout_s, 300);
	assert_null(strstr(lint->command, "actions/checkout"));
	assert_non_null(strstr(lint->command, "echo \"vet ok\" > lint.txt"));
	expect_note(&p, GH ":21", "uses actions/checkout@v4: actions run only on GitHub");

	/* runs-on [self-hosted, linux, x64, docker]: os, arch, label. */
	expect_list(&b->requires, "docker", "build requires");
	assert_string_equal(b->os, "linux");
	assert_string_equal(b->arch, "x86_64");
	expect_list(&b->needs, "lint", "build needs");
	assert_string_equal(env(b, "GO_VERSION"), "1.22");	/* ${{ matrix.go }} in job env */
	assert_string_equal(env(b, "GOFLAGS"), "-mod=vendor");	/* workflow env */
	assert_non_null(strstr(b->command, "export TARGET='alpine'"));	/* step env */
	assert_non_null(strstr(b->command, "(experimental=true)"));	/* include's extra key */
	assert_non_null(strstr(task(&p, "build:1.21:debian")->command, "(experimental=)"));
	assert_string_equal(b->file, GH);
	assert_int_equal(b->line, 24);

	const struct ry_ci_task *test = task(&p, "test");
	/* needs: [build] waits for every combination. */
	expect_list(&test->needs, "build:1.21:debian build:1.22:debian build:1.22:alpine:true "
		    "build:1.23:debian", "test needs");
	expect_list(&test->requires, "gpu", "test requires");
	assert_int_equal(test->timeout_s, 90);		/* 1.5 minutes */
	/* always() step: status tracked by hand, cleanup runs after a failure. */
	assert_non_null(strstr(test->command, "if true; then"));
	assert_non_null(strstr(test->command, "exit \"$status\""));
	assert_non_null(strstr(test->command, "bash --noprofile --norc -eo pipefail"));
	expect_note(&p, GH ":54", "${{ secrets.API_TOKEN }} is only known when GitHub runs");

	assert_null(task(&p, "deploy")->run_if);		/* main + push: if is true */
	assert_string_equal(task(&p, "report")->run_if, "on_failure");
	assert_false(has_task(&p, "release"));			/* not a tag */
	expect_note(&p, GH ":73", "job \"release\": if: startsWith");
	assert_false(has_task(&p, "publish-docs"));
	expect_note(&p, GH ":79", "reusable workflow ./.github/workflows/docs.yml");
	expect_note(&p, GH ":63", "job \"deploy\": environment");

	/* on.push.paths with a negation: only_if_changed on every task. */
	const char *only = lint->only_if_changed;
	assert_non_null(only);
	assert_true(matches(only, "services/cart/main.go"));
	assert_false(matches(only, "services/cart/README.md"));
	assert_false(matches(only, "docs/index.md"));
	expect_loadable(&p);
	ry_ci_pipeline_release(&p);

	/* A tag pipeline: release runs, deploy (main only) is left out, and so is release, which needs it. */
	struct ry_ci_options tag = { .tag = "v1.2.0" };
	assert_true(ry_ci_import_github(GH, &tag, &p, &err));
	assert_false(has_task(&p, "deploy"));
	assert_false(has_task(&p, "release"));
	expect_note(&p, GH ":72", "job \"release\" needs \"deploy\", which is left out");
	ry_ci_pipeline_release(&p);
}

struct inline_case {
	const char *yaml;
	const char *task;	/* the task to look at */
	const char *field;	/* run_if, only_if_changed, requires, command, timeout_s, missing */
	const char *want;	/* a substring of the field (for only_if_changed: a path it must match) */
};

static const struct inline_case gh_cases[] = {
	{ "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    if: always()\n    steps: [{run: x}]\n",
	  "a", "run_if", "always" },
	{ "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    if: ${{ success() || failure() }}\n    steps: [{run: x}]\n",
	  "a", "run_if", "always" },
	{ "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    if: ${{ !cancelled() && failure() }}\n    steps: [{run: x}]\n",
	  "a", "run_if", "on_failure" },
	{ "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    if: github.event_name == 'pull_request'\n    steps: [{run: x}]\n  b:\n    runs-on: ubuntu-latest\n    steps: [{run: y}]\n",
	  "a", "missing", "" },
	{ "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    if: contains(github.ref, 'main') && vars.DEPLOY == 'yes'\n    steps: [{run: x}]\n",
	  "a", "run_if", "" },	/* unknown vars: kept, on_success */
	{ "on:\n  push:\n    paths-ignore: ['docs/**', '**.md']\njobs:\n  a:\n    runs-on: linux\n    steps: [{run: x}]\n",
	  "a", "only_if_changed", "src/main.c" },
	{ "on: push\njobs:\n  a:\n    runs-on: [self-hosted, ARM64, gpu]\n    steps: [{run: x}]\n",
	  "a", "requires", "gpu" },
	{ "on: push\njobs:\n  a:\n    runs-on: {group: big, labels: [large]}\n    steps: [{run: x}]\n",
	  "a", "requires", "large" },
	{ "on: push\njobs:\n  a:\n    runs-on: linux\n    steps:\n      - run: make\n        working-directory: sub dir\n        timeout-minutes: 2\n        continue-on-error: true\n",
	  "a", "command", "timeout 120 bash -e <<'RAILYARD_EOF' || echo" },
	{ "on: push\njobs:\n  a:\n    runs-on: linux\n    steps:\n      - run: print(1)\n        shell: python\n",
	  "a", "command", "python3 - <<'RAILYARD_EOF'" },
	{ "on: push\njobs:\n  a:\n    runs-on: linux\n    steps:\n      - run: |\n          cat <<'RAILYARD_EOF'\n          RAILYARD_EOF\n",
	  "a", "command", "<<'RAILYARD_EOF_2'" },	/* a here-document inside the step survives */
	{ "on: push\njobs:\n  a:\n    runs-on: linux\n    strategy:\n      matrix:\n        include: [{n: one}, {n: two}]\n    steps:\n      - run: echo ${{ matrix.n }}\n",
	  "a:two", "command", "echo two" },
	{ "on: push\njobs:\n  a:\n    runs-on: linux\n    timeout-minutes: ${{ 3 }}\n    steps: [{run: x}]\n",
	  "a", "timeout_s", "180" },
	{ "on: push\njobs:\n  a:\n    runs-on: linux\n    steps:\n      - run: x\n      - run: cleanup\n        if: always()\n",
	  "a", "command", "if true; then" },
};

static const char *field(const struct ry_ci_task *t, const char *f, char *buf, size_t len)
{
	if (strcmp(f, "run_if") == 0)
		return t->run_if ? t->run_if : "";
	if (strcmp(f, "only_if_changed") == 0)
		return t->only_if_changed ? t->only_if_changed : "";
	if (strcmp(f, "command") == 0)
		return t->command;
	if (strcmp(f, "timeout_s") == 0) {
		snprintf(buf, len, "%d", t->timeout_s);
		return buf;
	}
	char *j = joined(&t->requires);
	snprintf(buf, len, "%s", j);
	free(j);
	return buf;
}

static void check_case(const struct ry_ci_pipeline *p, const struct inline_case *c, size_t i)
{
	char buf[256];
	if (strcmp(c->field, "missing") == 0) {
		if (has_task(p, c->task))
			fail_msg("case %zu: task %s should be left out", i, c->task);
		return;
	}
	const char *got = field(task(p, c->task), c->field, buf, sizeof(buf));
	if (strcmp(c->field, "only_if_changed") == 0) {
		if (!*got || !matches(got, c->want) || matches(got, "docs/a.md") || matches(got, "x/README.md"))
			fail_msg("case %zu: only_if_changed %s", i, got);
	} else if (strcmp(c->field, "run_if") == 0 ? strcmp(got, c->want) != 0 : !strstr(got, c->want)) {
		fail_msg("case %zu: %s is \"%s\", want \"%s\"", i, c->field, got, c->want);
	}
}

static void github_rules(void **state)
{
	(void)state;
	for (size_t i = 0; i < RY_ARRAY_SIZE(gh_cases); i++) {
		struct ry_ci_pipeline p;
		char *err = NULL;
		const char *path = write_file("gh.yml", gh_cases[i].yaml);
		if (!ry_ci_import_github(path, NULL, &p, &err))
			fail_msg("case %zu: %s", i, err);
		check_case(&p, &gh_cases[i], i);
		expect_loadable(&p);
		ry_ci_pipeline_release(&p);
	}
}

struct bad_case {
	const char *yaml;
	const char *error;	/* with the file:line */
};

static const struct bad_case gh_bad[] = {
	{ "on: push\njobs:\n  a:\n    runs-on: linux\n    steps: [{run: x}]\n    needs: nope\n",
	  "gh.yml:6: job \"a\" needs unknown job \"nope\"" },
	{ "on: push\njobs:\n  a:\n    runs-on: linux\n    steps: [{run: x}]\n  b:\n    runs-on: linux\n    needs: [a, b]\n    steps: [{run: x}]\n",
	  "gh.yml:8: job \"b\" needs itself" },
	{ "on: push\njobs:\n  a:\n    runs-on: linux\n    steps:\n      - name: nothing\n",
	  "gh.yml:6: step 1 (nothing) has neither run nor uses" },
	{ "on: push\njobs:\n  a:\n    runs-on: linux\n    timeout-minutes: soon\n    steps: [{run: x}]\n",
	  "gh.yml:5: timeout-minutes must be a positive number" },
	{ "on: push\njobs:\n  a:\n    runs-on: linux\n    if: github.ref == \n    steps: [{run: x}]\n",
	  "gh.yml:5: if: invalid expression" },
	{ "on: push\njobs:\n  a:\n    runs-on: linux\n    steps: [{run: x}]\n  a:\n    runs-on: linux\n",
	  "gh.yml:6: duplicate key \"a\"" },
	{ "on: push\njobs:\n  a:\n    runs-on: linux\n    steps: [{run: \"x}]\n", "gh.yml:6: invalid YAML" },
	{ "on: push\njobs: {}\n", "gh.yml:2: a workflow needs \"jobs\"" },
	{ "jobs:\n  a:\n    runs-on: linux\n    steps: [{run: x}]\n", "gh.yml:1: a workflow needs \"on\"" },
	{ "on: push\njobs:\n  1a:\n    runs-on: linux\n    steps: [{run: x}]\n", "gh.yml:3: job id \"1a\"" },
	{ "on: push\njobs:\n  a:\n    runs-on: linux\n    strategy:\n      matrix:\n        n: 3\n    steps: [{run: x}]\n",
	  "gh.yml:7: matrix key \"n\" must be a list" },
	{ "on: push\njobs:\n  a:\n    runs-on: linux\n    steps: [{run: x}]\n    needs: b\n  b:\n    runs-on: linux\n    needs: a\n    steps: [{run: x}]\n",
	  NULL },	/* a cycle: the import succeeds, the spec refuses it (see below) */
};

static void github_malformed(void **state)
{
	(void)state;
	for (size_t i = 0; i < RY_ARRAY_SIZE(gh_bad); i++) {
		struct ry_ci_pipeline p;
		char *err = NULL;
		const char *path = write_file("gh.yml", gh_bad[i].yaml);
		bool ok = ry_ci_import_github(path, NULL, &p, &err);
		if (!gh_bad[i].error) {
			/* The cycle is reported by the spec's own check, with its path. */
			assert_true(ok);
			char *yaml = ry_ci_render(&p, &err);
			struct ry_strlist errors = { 0 };
			assert_null(ry_spec_parse("x", yaml, strlen(yaml), RY_SPEC_YAML, &errors));
			assert_non_null(strstr(errors.items[0], "cycle: "));
			ry_strlist_release(&errors);
			free(yaml);
			ry_ci_pipeline_release(&p);
			continue;
		}
		if (ok)
			fail_msg("case %zu accepted; want %s", i, gh_bad[i].error);
		if (!strstr(err, gh_bad[i].error))
			fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, gh_bad[i].error);
		free(err);
		ry_ci_pipeline_release(&p);
	}
}

/* ---- GitLab CI ------------------------------------------------------------ */

static void gitlab_fixture(void **state)
{
	(void)state;
	struct ry_ci_pipeline p;
	char *err = NULL;
	const char *paths[] = { GL };
	if (!ry_ci_import_gitlab(paths, 1, NULL, &p, &err))
		fail_msg("%s", err);

	const struct ry_ci_task *build = task(&p, "build"), *lint = task(&p, "lint");
	/* The merge key << brought tags and variables. */
	expect_list(&build->requires, "linux docker", "build tags");
	assert_string_equal(env(build, "GOFLAGS"), "-mod=vendor");
	/* Global variables, expanded; expand: false kept as written. */
	assert_string_equal(env(build, "IMAGE_TAG"), "shop-main");
	assert_string_equal(env(build, "RAW"), "$NOT_EXPANDED");
	assert_string_equal(env(build, "CI_COMMIT_BRANCH"), "main");
	/* default: before_script and timeout. */
	assert_non_null(strstr(build->command, "echo \"setup for $CI_JOB_NAME\"\necho \"building"));
	assert_int_equal(build->timeout_s, 600);
	/* rules: changes -> only_if_changed, anchored globs. */
	assert_true(matches(build->only_if_changed, "services/cart/main.go"));
	assert_true(matches(build->only_if_changed, "go.sum"));
	assert_false(matches(build->only_if_changed, "services/cart/README.md"));
	assert_false(matches(build->only_if_changed, "x/go.mod"));
	assert_int_equal(build->needs.n, 0);

	assert_int_equal(lint->timeout_s, 5400);	/* 1h 30m */
	expect_note(&p, GL ":45", "job \"lint\": allow_failure");

	/* parallel: matrix, extends from an included file, !reference. */
	static const char *const tests[] = { "test:1.21:pg", "test:1.22:pg", "test:1.22:mysql" };
	for (size_t i = 0; i < 3; i++) {
		const struct ry_ci_task *t = task(&p, tests[i]);
		expect_list(&t->needs, "build lint", "test needs (the previous stage)");
		assert_int_equal(t->timeout_s, 1200);	/* the template's 20 minutes */
		assert_string_equal(env(t, "TEST_FLAGS"), "-race");
		assert_non_null(strstr(t->command, "echo \"setup from template\""));
		assert_non_null(strstr(t->command, "echo \"test done: $CI_JOB_STATUS\""));
		assert_non_null(strstr(t->command, "|| status=$?"));
	}
	assert_string_equal(env(task(&p, "test:1.22:mysql"), "DB"), "mysql");
	assert_string_equal(env(task(&p, "test:1.21:pg"), "CI_NODE_TOTAL"), "3");
	expect_note(&p, "tests/fixtures/ci/gitlab/ci/templates.yml:7", "job \"test\": image");

	/* needs with parallel: matrix picks one instance; optional needs on a missing job drop. */
	const struct ry_ci_task *integ = task(&p, "integration");
	expect_list(&integ->needs, "test:1.22:pg", "integration needs");
	expect_list(&integ->requires, "gpu", "integration tags");
	assert_false(has_task(&p, "docs"));
	expect_note(&p, GL ":78", "job \"docs\": its rules/only/except leave it out");

	/* The included deploy job: rules on the branch, resource_group as a pool. */
	const struct ry_ci_task *deploy = task(&p, "deploy");
	assert_string_equal(deploy->pool, "production");
	assert_string_equal(deploy->file, "tests/fixtures/ci/gitlab/ci/deploy.yml");
	expect_list(&deploy->needs, "test:1.21:pg test:1.22:pg test:1.22:mysql integration", "deploy needs");
	assert_false(has_task(&p, "manual-approve"));
	expect_note(&p, GL ":94", "when: manual");

	assert_string_equal(task(&p, "notify-failure")->run_if, "on_failure");
	expect_list(&task(&p, "notify-failure")->needs, "deploy", "notify needs");
	assert_string_equal(task(&p, "cleanup")->run_if, "always");
	expect_list(&task(&p, "cleanup")->needs, "notify-failure", ".post needs");
	expect_note(&p, GL ":6", "include remote: https://example.com/shared.yml");
	expect_note(&p, GL ":7", "include template: Security/SAST.gitlab-ci.yml");
	expect_loadable(&p);
	ry_ci_pipeline_release(&p);

	/* On a release branch deploy is manual: left out. */
	struct ry_ci_options rel = { .branch = "release/2.0" };
	assert_true(ry_ci_import_gitlab(paths, 1, &rel, &p, &err));
	assert_false(has_task(&p, "deploy"));
	expect_list(&task(&p, "notify-failure")->needs, "test:1.21:pg test:1.22:pg test:1.22:mysql integration",
		    "notify needs without deploy (the nearest non-empty stage)");
	ry_ci_pipeline_release(&p);

	/* A scheduled pipeline brings docs in. */
	struct ry_ci_options sched = { .event = "schedule" };
	assert_true(ry_ci_import_gitlab(paths, 1, &sched, &p, &err));
	assert_true(has_task(&p, "docs"));
	expect_list(&task(&p, "integration")->needs, "test:1.22:pg docs", "integration needs docs");
	ry_ci_pipeline_release(&p);
}

static const struct inline_case gl_cases[] = {
	{ "a:\n  script: x\n  only: [main]\nb:\n  script: y\n  only: [tags]\n", "b", "missing", "" },
	{ "a:\n  script: x\n  only:\n    refs: [branches]\n    changes: ['src/**/*']\n", "a", "only_if_changed", "src/main.c" },
	{ "a:\n  script: x\n  except: [main]\nb:\n  script: y\n", "a", "missing", "" },
	{ "a:\n  script: x\n  only: ['/^ma/']\n", "a", "command", "x" },
	{ "a:\n  script: x\n  rules:\n    - if: '$CI_COMMIT_BRANCH =~ /^feat/'\n    - when: always\n", "a", "run_if", "always" },
	{ "a:\n  script: x\n  rules:\n    - if: $CI_MERGE_REQUEST_IID\nb:\n  script: y\n", "a", "missing", "" },
	{ "a:\n  script: x\n  rules:\n    - exists: [Dockerfile]\nb:\n  script: y\n", "a", "missing", "" },
	{ "a:\n  script: x\n  rules:\n    - exists: ['**/*.yml']\n", "a", "command", "x" },
	{ "a:\n  script: x\n  rules:\n    - if: $PROJECT_SETTING == \"on\"\n", "a", "command", "x" },	/* unknown: kept */
	{ "a:\n  script: x\n  parallel: 2\n", "a:2", "command", "x" },
	{ "a:\n  script: x\n  timeout: 3 hours\n", "a", "timeout_s", "10800" },
	{ "a:\n  script: [x, [y, [z]]]\n", "a", "command", "x\ny\nz\n" },
	{ "a:\n  script: x\n  tags: [$RUNNER]\n  variables: {RUNNER: big}\n", "a", "requires", "big" },
	{ "variables: {V: g}\na:\n  script: echo $V\n  inherit: {variables: false}\n", "a", "command", "echo $V" },
	{ ".t: {script: [from-template], tags: [t1]}\n.u: {extends: .t, tags: [u1]}\na:\n  extends: [.u]\n",
	  "a", "requires", "u1" },
	{ ".t: {script: [from-template]}\na:\n  extends: .t\n", "a", "command", "from-template" },
	{ "a:\n  script: x\n  when: manual\nb:\n  script: y\n", "a", "missing", "" },
	{ "a:\n  trigger: other/project\nb:\n  script: y\n", "a", "missing", "" },
	{ "stages: [one, two]\na: {stage: one, script: x}\nb: {stage: two, script: y}\n", "b", "command", "y" },
};

static void gitlab_rules(void **state)
{
	(void)state;
	write_file("gl/Makefile.yml", "x: 1\n");
	for (size_t i = 0; i < RY_ARRAY_SIZE(gl_cases); i++) {
		struct ry_ci_pipeline p;
		char *err = NULL;
		const char *path = write_file("gl/.gitlab-ci.yml", gl_cases[i].yaml);
		const char *paths[] = { path };
		if (!ry_ci_import_gitlab(paths, 1, NULL, &p, &err))
			fail_msg("case %zu: %s", i, err);
		check_case(&p, &gl_cases[i], i);
		expect_loadable(&p);
		ry_ci_pipeline_release(&p);
	}
}

static const struct bad_case gl_bad[] = {
	{ "a:\n  stage: nowhere\n  script: x\n", ".gitlab-ci.yml:2: job \"a\": stage \"nowhere\" is not in stages" },
	{ "a:\n  image: x\n", ".gitlab-ci.yml:2: job \"a\" has no script" },
	{ "a:\n  script: x\n  needs: [b]\n", ".gitlab-ci.yml:3: job \"a\" needs unknown job \"b\"" },
	{ "a:\n  extends: .missing\n  script: x\n", ".gitlab-ci.yml:2: \"a\" extends unknown job \".missing\"" },
	{ ".a: {extends: .b}\n.b: {extends: .a}\nc: {extends: .a, script: x}\n", "extends nested more than 10 levels" },
	{ "a:\n  script: !reference [.nope, script]\n", ".gitlab-ci.yml:2: !reference: .nope not found" },
	{ "include: ../outside.yml\na: {script: x}\n", ".gitlab-ci.yml:1: include ../outside.yml: outside the repository" },
	{ "include: {local: missing.yml}\na: {script: x}\n", ".gitlab-ci.yml:1: include missing.yml: No such file" },
	{ "a:\n  script: x\n  timeout: soon\n", ".gitlab-ci.yml:3: timeout: \"soon\" is not a duration" },
	{ "a:\n  script: x\n  rules:\n    - if: $A == \n", ".gitlab-ci.yml:4: if: invalid expression" },
	{ "a:\n  script: x\n  parallel: 0\n", ".gitlab-ci.yml:3: parallel must be 1 to 200" },
	{ "a:\n  script: x\n  when: sometimes\n", "job \"a\": unknown when: sometimes" },
	{ "a:\n  script: x\n  variables: [A, B]\n", ".gitlab-ci.yml:3: variables must be a mapping" },
	{ "- a\n- b\n", ".gitlab-ci.yml:1: a GitLab CI file is a mapping" },
	{ "a: {script: x}\nb: *nope\n", ".gitlab-ci.yml:2: unknown alias *nope" },
};

static void gitlab_malformed(void **state)
{
	(void)state;
	write_file("outside.yml", "z: {script: x}\n");
	for (size_t i = 0; i < RY_ARRAY_SIZE(gl_bad); i++) {
		struct ry_ci_pipeline p;
		char *err = NULL;
		const char *path = write_file("gl/.gitlab-ci.yml", gl_bad[i].yaml);
		const char *paths[] = { path };
		if (ry_ci_import_gitlab(paths, 1, NULL, &p, &err))
			fail_msg("case %zu accepted; want %s", i, gl_bad[i].error);
		if (!strstr(err, gl_bad[i].error))
			fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, gl_bad[i].error);
		free(err);
		ry_ci_pipeline_release(&p);
	}
}

/* ---- shared pieces -------------------------------------------------------- */

static void globs(void **state)
{
	(void)state;
	static const struct {
		const char *glob;
		const char *path;
		bool want;
	} cases[] = {
		{ "*.go", "main.go", true }, { "*.go", "cmd/main.go", false },
		{ "**/*.go", "main.go", true }, { "**/*.go", "a/b/c.go", true },
		{ "src/**", "src/a/b", true }, { "src/**", "srcx/a", false },
		{ "docs/*.md", "docs/a.md", true }, { "docs/*.md", "docs/x/a.md", false },
		{ "go.{mod,sum}", "go.sum", true }, { "go.{mod,sum}", "go.work", false },
		{ "file?.txt", "file1.txt", true }, { "file?.txt", "file/.txt", false },
		{ "[abc].c", "b.c", true }, { "[!abc].c", "b.c", false }, { "[!abc].c", "d.c", true },
		{ "a+b", "a+b", true }, { "(x)|.y", "(x)|.y", true }, { "(x)|.y", "x", false },
	};
	for (size_t i = 0; i < RY_ARRAY_SIZE(cases); i++)
		if (ry_glob_match(cases[i].glob, cases[i].path, RY_GLOB_BRACES) != cases[i].want)
			fail_msg("%s on %s: want %d", cases[i].glob, cases[i].path, cases[i].want);
	/* GitHub's + repeats the character before it. */
	assert_true(ry_glob_match("ab+c", "abbbc", RY_GLOB_BRACES | RY_GLOB_GITHUB));
	assert_false(ry_glob_match("ab+c", "abbbc", RY_GLOB_BRACES));
}

static void names_are_valid_and_unique(void **state)
{
	(void)state;
	struct ry_ci_pipeline p;
	char *err = NULL;
	const char *path = write_file("names/.gitlab-ci.yml",
		"\"build job\": {script: x}\n\"build/job\": {script: x}\n\"build job!\": {script: x}\n"
		"\"-lead\": {script: x}\n");
	const char *paths[] = { path };
	assert_true(ry_ci_import_gitlab(paths, 1, NULL, &p, &err));
	assert_string_equal(p.tasks[0].name, "build_job");
	assert_string_equal(p.tasks[1].name, "build/job");
	assert_string_equal(p.tasks[2].name, "build_job_");
	assert_string_equal(p.tasks[3].name, "_lead");
	expect_loadable(&p);
	ry_ci_pipeline_release(&p);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(github_fixture),
		cmocka_unit_test(github_rules),
		cmocka_unit_test(github_malformed),
		cmocka_unit_test(gitlab_fixture),
		cmocka_unit_test(gitlab_rules),
		cmocka_unit_test(gitlab_malformed),
		cmocka_unit_test(globs),
		cmocka_unit_test(names_are_valid_and_unique),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
