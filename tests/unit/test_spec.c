/*
 * Pipeline specs: YAML and JSON describe the same pipeline the same way,
 * defaults match the database's, and every kind of mistake is reported with
 * FILE:LINE, the task and what is wrong — before the database sees it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "spec/spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char full_yaml[] =
	"# every field, in YAML\n"
	"name: shop@abc\n"
	"team: payments\n"
	"priority: -5\n"
	"revision: 1234567\n"
	"source: https://git.example.com/shop.git\n"
	"changed_paths: [services/cart/main.go, 'proto/a b.proto']\n"
	"tasks:\n"
	"  - name: build:proto\n"
	"    command: make proto\n"
	"  - name: build:cart\n"
	"    command: |\n"
	"      make -C services/cart\n"
	"      echo done\n"
	"    service: cart\n"
	"    kind: package\n"
	"    requires: [linux, docker]\n"
	"    os: linux\n"
	"    arch: amd64\n"
	"    cpu: 4\n"
	"    mem_mb: 4096\n"
	"    pool: docker-push\n"
	"    priority: 7\n"
	"    version: 2\n"
	"    cacheable: true\n"
	"    inputs: [services/cart/, go.sum]\n"
	"    outputs: [services/cart/bin/, services/cart/VERSION]\n"
	"    env:\n"
	"      GOFLAGS: -mod=vendor\n"
	"      CGO_ENABLED: \"0\"\n"
	"      PORT: 8080\n"
	"    run_if: always\n"
	"    only_if_changed: ^services/cart/\n"
	"    max_attempts: 5\n"
	"    timeout_s: 900\n"
	"    needs: [build:proto]\n"
	"  - name: test:cart\n"
	"    kind: test\n"
	"    command: make test\n"
	"    needs:\n"
	"      - build:cart\n"
	"      - {task: build:proto, kind: test}\n"
	"  - {name: lint, command: make lint, kind: lint}\n"
	"edges:\n"
	"  - {upstream: build:proto, downstream: lint, kind: runtime}\n"
	"  - upstream: test:cart\n"
	"    downstream: lint\n"
	"  - {upstream: build:cart, downstream: lint, kind: test}\n";

/* The same pipeline as JSON, tab-indented, with a surrogate pair escape. */
static const char full_json[] =
	"{\n"
	"\t\"name\": \"shop@abc\", \"team\": \"payments\", \"priority\": -5,\n"
	"\t\"revision\": \"1234567\", \"source\": \"https://git.example.com/shop.git\",\n"
	"\t\"changed_paths\": [\"services/cart/main.go\", \"proto/a b.proto\"],\n"
	"\t\"tasks\": [\n"
	"\t\t{\"name\": \"build:proto\", \"command\": \"make proto\"},\n"
	"\t\t{\n"
	"\t\t\t\"name\": \"build:cart\",\n"
	"\t\t\t\"command\": \"make -C services/cart\\necho done\\n\",\n"
	"\t\t\t\"service\": \"cart\", \"kind\": \"package\",\n"
	"\t\t\t\"requires\": [\"linux\", \"docker\"], \"os\": \"linux\", \"arch\": \"amd64\",\n"
	"\t\t\t\"cpu\": 4, \"mem_mb\": 4096, \"pool\": \"docker-push\", \"priority\": 7,\n"
	"\t\t\t\"version\": \"2\", \"cacheable\": true,\n"
	"\t\t\t\"inputs\": [\"services/cart/\", \"go.sum\"],\n"
	"\t\t\t\"outputs\": [\"services/cart/bin/\", \"services/cart/VERSION\"],\n"
	"\t\t\t\"env\": {\"GOFLAGS\": \"-mod=vendor\", \"CGO_ENABLED\": \"0\", \"PORT\": \"8080\"},\n"
	"\t\t\t\"run_if\": \"always\", \"only_if_changed\": \"^services/cart/\",\n"
	"\t\t\t\"max_attempts\": 5, \"timeout_s\": 900,\n"
	"\t\t\t\"needs\": [\"build:proto\"]\n"
	"\t\t},\n"
	"\t\t{\"name\": \"test:cart\", \"kind\": \"test\", \"command\": \"make test\",\n"
	"\t\t \"needs\": [\"build:cart\", {\"task\": \"build:proto\", \"kind\": \"test\"}]},\n"
	"\t\t{\"name\": \"lint\", \"command\": \"make lint\", \"kind\": \"lint\"}\n"
	"\t],\n"
	"\t\"edges\": [\n"
	"\t\t{\"upstream\": \"build:proto\", \"downstream\": \"lint\", \"kind\": \"runtime\"},\n"
	"\t\t{\"upstream\": \"test:cart\", \"downstream\": \"lint\"},\n"
	"\t\t{\"upstream\": \"build:cart\", \"downstream\": \"lint\", \"kind\": \"test\"}\n"
	"\t]\n"
	"}\n";

static struct ry_spec *parse_ok(const char *source, const char *text)
{
	struct ry_strlist errors = { 0 };
	struct ry_spec *spec = ry_spec_parse(source, text, strlen(text), RY_SPEC_AUTO, &errors);
	for (size_t i = 0; i < errors.n; i++)
		print_error("unexpected: %s\n", errors.items[i]);
	assert_int_equal(errors.n, 0);
	assert_non_null(spec);
	ry_strlist_release(&errors);
	return spec;
}

static void assert_str_or_null(const char *a, const char *b)
{
	if (!a || !b)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void assert_lists_equal(const struct ry_strlist *a, const struct ry_strlist *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++)
		assert_string_equal(a->items[i], b->items[i]);
}

static void assert_specs_equal(const struct ry_spec *a, const struct ry_spec *b)
{
	assert_string_equal(a->name, b->name);
	assert_string_equal(a->team, b->team);
	assert_int_equal(a->priority, b->priority);
	assert_str_or_null(a->revision, b->revision);
	assert_str_or_null(a->origin, b->origin);
	assert_int_equal(a->has_changed_paths, b->has_changed_paths);
	assert_lists_equal(&a->changed_paths, &b->changed_paths);
	assert_int_equal(a->ntasks, b->ntasks);
	for (size_t i = 0; i < a->ntasks; i++) {
		const struct ry_spec_task *x = &a->tasks[i], *y = &b->tasks[i];
		assert_string_equal(x->name, y->name);
		assert_string_equal(x->command, y->command);
		assert_str_or_null(x->service, y->service);
		assert_string_equal(x->kind, y->kind);
		assert_lists_equal(&x->requires, &y->requires);
		assert_str_or_null(x->os, y->os);
		assert_str_or_null(x->arch, y->arch);
		assert_int_equal(x->cpu, y->cpu);
		assert_int_equal(x->mem_mb, y->mem_mb);
		assert_str_or_null(x->pool, y->pool);
		assert_int_equal(x->has_priority, y->has_priority);
		assert_int_equal(x->priority, y->priority);
		assert_string_equal(x->version, y->version);
		assert_int_equal(x->cacheable, y->cacheable);
		assert_lists_equal(&x->inputs, &y->inputs);
		assert_lists_equal(&x->outputs, &y->outputs);
		assert_int_equal(x->nenv, y->nenv);
		for (size_t k = 0; k < x->nenv; k++) {
			assert_string_equal(x->env[k].name, y->env[k].name);
			assert_string_equal(x->env[k].value, y->env[k].value);
		}
		assert_string_equal(x->run_if, y->run_if);
		assert_str_or_null(x->only_if_changed, y->only_if_changed);
		assert_int_equal(x->max_attempts, y->max_attempts);
		assert_int_equal(x->timeout_s, y->timeout_s);
	}
	assert_int_equal(a->nedges, b->nedges);
	for (size_t i = 0; i < a->nedges; i++) {
		assert_string_equal(a->edges[i].upstream, b->edges[i].upstream);
		assert_string_equal(a->edges[i].downstream, b->edges[i].downstream);
		assert_string_equal(a->edges[i].kind, b->edges[i].kind);
	}
	/* What goes to the database is then the same too. */
	char *ta = ry_spec_tasks_json(a), *tb = ry_spec_tasks_json(b);
	char *ea = ry_spec_edges_json(a), *eb = ry_spec_edges_json(b);
	assert_string_equal(ta, tb);
	assert_string_equal(ea, eb);
	free(ta);
	free(tb);
	free(ea);
	free(eb);
}

static void test_yaml_and_json_agree(void **state)
{
	(void)state;
	struct ry_spec *a = parse_ok("full.yaml", full_yaml);
	struct ry_spec *b = parse_ok("full.json", full_json);

	assert_specs_equal(a, b);
	/* And the values are the ones written, not defaults. */
	const struct ry_spec_task *t = ry_spec_find_task(a, "build:cart");
	assert_non_null(t);
	assert_string_equal(t->command, "make -C services/cart\necho done\n");
	assert_string_equal(t->kind, "package");
	assert_int_equal(t->cpu, 4);
	assert_int_equal(t->mem_mb, 4096);
	assert_true(t->has_priority);
	assert_int_equal(t->priority, 7);
	assert_string_equal(t->version, "2");
	assert_true(t->cacheable);
	assert_int_equal(t->nenv, 3);
	assert_string_equal(t->env[2].name, "PORT");
	assert_string_equal(t->env[2].value, "8080");
	assert_string_equal(a->revision, "1234567");
	assert_string_equal(a->origin, "https://git.example.com/shop.git");
	assert_int_equal(t->outputs.n, 2);
	assert_string_equal(t->outputs.items[0], "services/cart/bin/");
	assert_int_equal(a->priority, -5);
	assert_string_equal(a->changed_paths.items[1], "proto/a b.proto");
	/* needs become edges (upstream -> the task), before the edges list. */
	assert_int_equal(a->nedges, 6);
	assert_string_equal(a->edges[0].upstream, "build:proto");
	assert_string_equal(a->edges[0].downstream, "build:cart");
	assert_string_equal(a->edges[0].kind, "build");
	assert_string_equal(a->edges[2].kind, "test");
	assert_string_equal(a->edges[3].kind, "runtime");
	ry_spec_free(a);
	ry_spec_free(b);
}

/* The shipped examples are the same pipeline and are valid. */
static void test_examples_agree(void **state)
{
	(void)state;
	if (access("examples/shop.yaml", R_OK) != 0)
		skip();	/* not run from the repository root */
	struct ry_strlist errors = { 0 };
	struct ry_spec *a = ry_spec_parse_file("examples/shop.yaml", &errors);
	struct ry_spec *b = ry_spec_parse_file("examples/shop.json", &errors);
	for (size_t i = 0; i < errors.n; i++)
		print_error("unexpected: %s\n", errors.items[i]);
	assert_int_equal(errors.n, 0);
	assert_specs_equal(a, b);
	assert_true(a->ntasks >= 16);
	ry_spec_free(a);
	ry_spec_free(b);
	ry_strlist_release(&errors);
}

/* Unset fields take the defaults of railyard.tasks / railyard.pipelines. */
static void test_defaults(void **state)
{
	(void)state;
	struct ry_spec *s = parse_ok("min.yaml", "name: x\ntasks: [{name: a, command: make}]\n");
	const struct ry_spec_task *t = &s->tasks[0];
	assert_string_equal(s->team, "default");
	assert_int_equal(s->priority, 0);
	assert_null(s->revision);
	assert_false(s->has_changed_paths);
	assert_string_equal(t->kind, "build");
	assert_int_equal(t->cpu, 1);
	assert_int_equal(t->mem_mb, 256);
	assert_false(t->has_priority);
	assert_string_equal(t->version, "1");
	assert_false(t->cacheable);
	assert_string_equal(t->run_if, "on_success");
	assert_null(t->only_if_changed);
	assert_int_equal(t->max_attempts, 3);
	assert_int_equal(t->timeout_s, 3600);
	assert_null(t->service);
	assert_null(t->os);
	assert_int_equal(t->requires.n, 0);
	assert_int_equal(s->nedges, 0);
	char *json = ry_spec_tasks_json(s);
	/* Unset optional fields are left out: NULL in the database. */
	assert_null(strstr(json, "\"priority\""));
	assert_null(strstr(json, "\"os\""));
	assert_non_null(strstr(json, "\"env\":{}"));
	free(json);
	ry_spec_free(s);
}

/* Anchors, aliases and merge keys: shared task defaults in CI style. */
static void test_yaml_merge_keys(void **state)
{
	(void)state;
	struct ry_spec *s = parse_ok("merge.yaml",
		"name: x\n"
		"tasks:\n"
		"  - &go {name: build:a, command: go build, cpu: 4, env: {GOOS: linux}}\n"
		"  - <<: *go\n"
		"    name: build:b\n"
		"    cpu: 2\n"
		"  - <<: [*go, {timeout_s: 60, cpu: 8}]\n"
		"    name: build:c\n");
	assert_int_equal(s->ntasks, 3);
	assert_string_equal(s->tasks[1].command, "go build");
	assert_int_equal(s->tasks[1].cpu, 2);		/* its own value wins */
	assert_int_equal(s->tasks[2].cpu, 4);		/* the first source wins */
	assert_int_equal(s->tasks[2].timeout_s, 60);
	assert_string_equal(s->tasks[2].env[0].value, "linux");
	ry_spec_free(s);
}

/* ---- errors --------------------------------------------------------------- */

struct bad_case {
	const char *what;
	const char *source;	/* its extension picks the format */
	const char *text;
	const char *first_error;	/* the whole first message */
};

static const struct bad_case bad_cases[] = {
	{ "unknown key", "t.yaml",
	  "name: x\ntasks:\n  - name: a\n    comand: make\n",
	  "t.yaml:4: task \"a\": unknown key \"comand\" (did you mean \"command\"?)" },
	{ "output leaving the tree", "t.yaml",
	  "name: x\ntasks:\n  - name: a\n    command: b\n    outputs: [dist, ../x]\n",
	  "t.yaml:5: task \"a\": outputs item 2: \"../x\" has a \"..\" component" },
	{ "absolute input", "t.yaml",
	  "name: x\ntasks:\n  - name: a\n    command: b\n    inputs:\n      - .\n      - /etc\n",
	  "t.yaml:7: task \"a\": inputs item 2: \"/etc\" is absolute: give a path relative to the tree" },
	{ "source like an option", "t.yaml",
	  "name: x\nsource: --upload-pack=touch /tmp/x\ntasks: [{name: a, command: b}]\n",
	  "t.yaml:2: source must be a repository path or URL, or a directory (at most 4096 "
	  "characters, not starting with -, no control characters)" },
	{ "unknown top-level key", "t.yaml",
	  "name: x\nteam: a\nprioritty: 3\ntasks: [{name: a, command: b}]\n",
	  "t.yaml:3: unknown key \"prioritty\" (did you mean \"priority\"?)" },
	{ "unknown key, nothing close", "t.yaml",
	  "name: x\ntasks: [{name: a, command: b, colour: red}]\n",
	  "t.yaml:2: task \"a\": unknown key \"colour\" (expected name, command, service, kind, "
	  "requires, os, arch, cpu, mem_mb, pool, priority, version, cacheable, inputs, outputs, env, "
	  "run_if, only_if_changed, max_attempts, timeout_s, needs, secrets or image)" },
	{ "unknown key in JSON", "t.json",
	  "{\n  \"name\": \"x\",\n  \"tasks\": [\n    {\"name\": \"a\",\n     \"comand\": \"b\"}\n  ]\n}\n",
	  "t.json:5: task \"a\": unknown key \"comand\" (did you mean \"command\"?)" },
	{ "wrong type: list for a string", "t.yaml",
	  "name: x\ntasks:\n  - name: a\n    command: [make, all]\n",
	  "t.yaml:4: task \"a\": command must be a string, not a list" },
	{ "wrong type: string for a number (JSON)", "t.json",
	  "{\"name\": \"x\",\n \"tasks\": [{\"name\": \"a\", \"command\": \"b\",\n   \"cpu\": \"2\"}]}",
	  "t.json:3: task \"a\": cpu must be an integer from 1 to 1024" },
	{ "wrong type: string for a bool", "t.yaml",
	  "name: x\ntasks:\n  - name: a\n    command: b\n    cacheable: yes\n",
	  "t.yaml:5: task \"a\": cacheable must be true or false" },
	{ "wrong type: tasks not a list", "t.yaml",
	  "name: x\ntasks:\n  a: {command: b}\n",
	  "t.yaml:3: tasks must be a list of tasks" },
	{ "cpu out of range", "shop.yaml",
	  "name: x\ntasks:\n  - name: build:cart\n    command: make\n    cpu: 2000\n",
	  "shop.yaml:5: task \"build:cart\": cpu must be an integer from 1 to 1024" },
	{ "cpu zero", "t.yaml",
	  "name: x\ntasks: [{name: a, command: b, cpu: 0}]\n",
	  "t.yaml:2: task \"a\": cpu must be an integer from 1 to 1024" },
	{ "cpu not whole", "t.json",
	  "{\"name\": \"x\", \"tasks\": [{\"name\": \"a\", \"command\": \"b\", \"cpu\": 1.5}]}",
	  "t.json:1: task \"a\": cpu must be an integer from 1 to 1024" },
	{ "cpu huge", "t.json",
	  "{\"name\": \"x\", \"tasks\": [{\"name\": \"a\", \"command\": \"b\", \"cpu\": 99999999999999999999999}]}",
	  "t.json:1: task \"a\": cpu must be an integer from 1 to 1024" },
	{ "mem_mb out of range", "t.yaml",
	  "name: x\ntasks: [{name: a, command: b, mem_mb: 16777217}]\n",
	  "t.yaml:2: task \"a\": mem_mb must be an integer from 1 to 16777216" },
	{ "task priority out of range", "t.yaml",
	  "name: x\ntasks: [{name: a, command: b, priority: -1001}]\n",
	  "t.yaml:2: task \"a\": priority must be an integer from -1000 to 1000" },
	{ "pipeline priority out of range", "t.yaml",
	  "name: x\npriority: 1001\ntasks: [{name: a, command: b}]\n",
	  "t.yaml:2: priority must be an integer from -1000 to 1000" },
	{ "max_attempts out of range", "t.yaml",
	  "name: x\ntasks: [{name: a, command: b, max_attempts: 101}]\n",
	  "t.yaml:2: task \"a\": max_attempts must be an integer from 1 to 100" },
	{ "timeout_s out of range", "t.yaml",
	  "name: x\ntasks: [{name: a, command: b, timeout_s: 604801}]\n",
	  "t.yaml:2: task \"a\": timeout_s must be an integer from 1 to 604800" },
	{ "duplicate task", "t.yaml",
	  "name: x\ntasks:\n  - name: a\n    command: b\n  - name: a\n    command: c\n",
	  "t.yaml:5: duplicate task \"a\" (first at line 3)" },
	{ "need of an unknown task", "t.yaml",
	  "name: x\ntasks:\n  - {name: build:cart, command: b}\n"
	  "  - name: test:cart\n    command: c\n    needs: [build:kart]\n",
	  "t.yaml:6: task \"test:cart\": needs unknown task \"build:kart\" (did you mean \"build:cart\"?)" },
	{ "need of an unknown task, long form", "t.yaml",
	  "name: x\ntasks:\n  - name: a\n    command: c\n    needs:\n      - {task: zz, kind: test}\n",
	  "t.yaml:6: task \"a\": needs unknown task \"zz\"" },
	{ "edge to an unknown task", "t.yaml",
	  "name: x\ntasks: [{name: a, command: b}]\nedges:\n  - {upstream: a, downstream: b}\n",
	  "t.yaml:4: edge a -> b: unknown task \"b\"" },
	{ "cycle", "t.yaml",
	  "name: x\ntasks:\n  - {name: a, command: x, needs: [c]}\n"
	  "  - {name: b, command: x, needs: [a]}\n  - {name: c, command: x, needs: [b]}\n",
	  "t.yaml:3: cycle: a -> b -> c -> a" },
	{ "cycle through edges", "t.json",
	  "{\"name\": \"x\",\n \"tasks\": [{\"name\": \"root\", \"command\": \"x\"},\n"
	  "  {\"name\": \"p\", \"command\": \"x\", \"needs\": [\"root\"]},\n"
	  "  {\"name\": \"q\", \"command\": \"x\", \"needs\": [\"p\"]}],\n"
	  " \"edges\": [{\"upstream\": \"q\", \"downstream\": \"p\", \"kind\": \"test\"}]}\n",
	  "t.json:3: cycle: p -> q -> p" },
	{ "needs itself", "t.yaml",
	  "name: x\ntasks:\n  - name: a\n    command: x\n    needs: [a]\n",
	  "t.yaml:5: cycle: a -> a" },
	{ "needs twice", "t.yaml",
	  "name: x\ntasks:\n  - {name: a, command: x}\n  - name: b\n    command: x\n"
	  "    needs:\n      - a\n      - {task: a, kind: test}\n",
	  "t.yaml:8: task \"b\": needs \"a\" twice (also at line 7)" },
	{ "bad need kind", "t.yaml",
	  "name: x\ntasks:\n  - {name: a, command: x}\n  - name: b\n    command: x\n"
	  "    needs: [{task: a, kind: deploy}]\n",
	  "t.yaml:6: task \"b\": kind must be one of build, test or runtime" },
	{ "label with a comma", "t.yaml",
	  "name: x\ntasks:\n  - name: a\n    command: x\n    requires: [linux, 'gpu,cuda']\n",
	  "t.yaml:5: task \"a\": label \"gpu,cuda\" in requires is invalid: use letters, digits and "
	  "_ . : + = @ / - (at most 64, no comma, blank, brace or quote)" },
	{ "label with a brace", "t.json",
	  "{\"name\": \"x\", \"tasks\": [{\"name\": \"a\", \"command\": \"x\", \"requires\": [\"a}\"]}]}",
	  "t.json:1: task \"a\": label \"a}\" in requires is invalid: use letters, digits and "
	  "_ . : + = @ / - (at most 64, no comma, blank, brace or quote)" },
	{ "empty os", "t.yaml",
	  "name: x\ntasks:\n  - name: a\n    command: x\n    os: ''\n",
	  "t.yaml:5: task \"a\": os must not be empty" },
	{ "arch with a blank", "t.yaml",
	  "name: x\ntasks:\n  - name: a\n    command: x\n    arch: x86 64\n",
	  "t.yaml:5: task \"a\": arch \"x86 64\" is invalid: use letters, digits and "
	  "_ . : + = @ / - (at most 64, no comma, blank, brace or quote)" },
	{ "pool with a quote", "t.yaml",
	  "name: x\ntasks:\n  - name: a\n    command: x\n    pool: 'a\"b'\n",
	  "t.yaml:5: task \"a\": pool \"a\"b\" is invalid: use letters, digits and "
	  "_ . : + = @ / - (at most 64, no comma, blank, brace or quote)" },
	{ "bad only_if_changed", "t.yaml",
	  "name: x\ntasks:\n  - name: a\n    command: x\n    only_if_changed: '^(services/'\n",
	  "t.yaml:5: task \"a\": only_if_changed is not a valid PCRE2 pattern: "
	  "missing closing parenthesis at offset 11" },
	{ "bad run_if", "t.yaml",
	  "name: x\ntasks:\n  - name: a\n    command: x\n    run_if: sometimes\n",
	  "t.yaml:5: task \"a\": run_if must be one of on_success, on_failure or always" },
	{ "bad kind", "t.yaml",
	  "name: x\ntasks: [{name: a, command: x, kind: bild}]\n",
	  "t.yaml:2: task \"a\": kind must be one of build, test, deploy, package, lint, publish or other" },
	{ "env with a bool value", "t.yaml",
	  "name: x\ntasks:\n  - name: a\n    command: x\n    env:\n      DEBUG: true\n",
	  "t.yaml:6: task \"a\": env \"DEBUG\" must be a string, not true (quote it: \"true\")" },
	{ "env with a mapping value (JSON)", "t.json",
	  "{\"name\": \"x\", \"tasks\": [{\"name\": \"a\", \"command\": \"x\",\n"
	  "  \"env\": {\"A\": \"1\",\n           \"B\": {\"c\": \"d\"}}}]}",
	  "t.json:3: task \"a\": env \"B\" must be a string, not a mapping" },
	{ "env with null", "t.yaml",
	  "name: x\ntasks:\n  - name: a\n    command: x\n    env: {A: ~}\n",
	  "t.yaml:5: task \"a\": env \"A\" must be a string, not null" },
	{ "env name invalid", "t.yaml",
	  "name: x\ntasks:\n  - name: a\n    command: x\n    env: {1A: b}\n",
	  "t.yaml:5: task \"a\": env name \"1A\" is invalid: use letters, digits and _, "
	  "not starting with a digit" },
	{ "empty tasks", "t.yaml",
	  "name: x\ntasks: []\n",
	  "t.yaml:2: tasks must not be empty" },
	{ "no tasks", "t.json",
	  "{\n  \"name\": \"x\"\n}\n",
	  "t.json:1: tasks is required" },
	{ "no name", "t.yaml",
	  "team: a\ntasks: [{name: a, command: b}]\n",
	  "t.yaml:1: name is required" },
	{ "task without command", "t.yaml",
	  "name: x\ntasks:\n  - name: a\n    kind: test\n",
	  "t.yaml:3: task \"a\": command is required" },
	{ "task with blank command", "t.yaml",
	  "name: x\ntasks:\n  - name: a\n    command: '  '\n",
	  "t.yaml:4: task \"a\": command must not be empty" },
	{ "task without name", "t.yaml",
	  "name: x\ntasks:\n  - {name: a, command: b}\n  - command: c\n",
	  "t.yaml:4: task #2: name is required" },
	{ "task name invalid", "t.yaml",
	  "name: x\ntasks:\n  - name: build cart\n    command: b\n",
	  "t.yaml:3: task #1: name \"build cart\" is invalid: use letters, digits and "
	  "_ . : / @ + = - (at most 200, not starting with punctuation other than _)" },
	{ "task not a mapping", "t.yaml",
	  "name: x\ntasks:\n  - build\n",
	  "t.yaml:3: task #1: a task must be a mapping with name and command" },
	{ "team invalid", "t.yaml",
	  "name: x\nteam: -ops\ntasks: [{name: a, command: b}]\n",
	  "t.yaml:2: team \"-ops\" is invalid: use letters, digits and _ . - (at most 63, "
	  "starting with a letter or digit)" },
	{ "label empty", "t.yaml",
	  "name: x\ntasks: [{name: a, command: b, requires: [linux, '']}]\n",
	  "t.yaml:2: task \"a\": requires item 2 must not be empty" },
	{ "NUL in a string", "t.yaml",
	  "name: x\ntasks: [{name: a, command: \"a\\0b\"}]\n",
	  "t.yaml:2: task \"a\": command must not contain a NUL character" },
	{ "YAML syntax", "t.yaml",
	  "name: x\ntasks:\n  - name: a\n    command: [b\n",
	  "t.yaml:5: invalid YAML: did not find expected ',' or ']' "
	  "(while parsing a flow sequence at line 4)" },
	{ "YAML duplicate key", "t.yaml",
	  "name: x\ntasks:\n  - name: a\n    command: b\n    command: c\n",
	  "t.yaml:5: duplicate key \"command\" (first at line 4)" },
	{ "YAML unknown alias", "t.yaml",
	  "name: x\ntasks: [*t]\n",
	  "t.yaml:2: unknown alias *t (or it is used inside its own anchor)" },
	{ "YAML second document", "t.yaml",
	  "name: x\ntasks: [{name: a, command: b}]\n---\nname: y\n",
	  "t.yaml:3: a spec is one YAML document, found a second one" },
	{ "empty file", "t.yaml", "# nothing\n",
	  "t.yaml:1: the spec is empty: expected a mapping with name and tasks" },
	{ "not a mapping", "t.yaml", "- a\n- b\n",
	  "t.yaml:1: the spec must be a mapping with name and tasks" },
	{ "JSON syntax: trailing comma", "t.json",
	  "{\n  \"name\": \"x\",\n  \"tasks\": [\n    {\"name\": \"a\", \"command\": \"b\"},\n  ]\n}\n",
	  "t.json:5: invalid JSON: unexpected token near ']'" },
	{ "JSON duplicate key", "t.json",
	  "{\n  \"name\": \"x\",\n  \"name\": \"y\"\n}\n",
	  "t.json:3: invalid JSON: duplicate object key near '\"name\"'" },
	{ "JSON detected by content", "<stdin>",
	  "  {\"name\": \"x\",\n   \"tasks\": [{\"name\": \"a\", \"command\": \"b\", \"cpu\": -1}]}",
	  "<stdin>:2: task \"a\": cpu must be an integer from 1 to 1024" },
};

static void test_bad_specs(void **state)
{
	(void)state;
	int failures = 0;

	for (size_t i = 0; i < RY_ARRAY_SIZE(bad_cases); i++) {
		const struct bad_case *bc = &bad_cases[i];
		struct ry_strlist errors = { 0 };
		struct ry_spec *s = ry_spec_parse(bc->source, bc->text, strlen(bc->text),
						  RY_SPEC_AUTO, &errors);
		if (s || errors.n == 0 || strcmp(errors.items[0], bc->first_error) != 0) {
			print_error("case \"%s\":\n  want: %s\n  got:  %s%s\n", bc->what,
				    bc->first_error, errors.n ? errors.items[0] : "(no error)",
				    s ? " (and a spec)" : "");
			failures++;
		}
		ry_spec_free(s);
		ry_strlist_release(&errors);
	}
	assert_int_equal(failures, 0);
}

/* All problems are reported at once, in line order, at most 20 of them. */
/* A YAML spec of one task with a command of n bytes and env entries. */
static char *one_task_yaml(size_t command_bytes, size_t nenv, size_t env_value_bytes)
{
	size_t cap = 256 + command_bytes + nenv * (env_value_bytes + 32);
	char *y = malloc(cap);
	size_t len = (size_t)snprintf(y, cap, "name: x\ntasks:\n  - name: a\n    command: ");
	memset(y + len, 'c', command_bytes);
	len += command_bytes;
	len += (size_t)snprintf(y + len, cap - len, "\n    env:\n");
	for (size_t i = 0; i < nenv; i++) {
		len += (size_t)snprintf(y + len, cap - len, "      K%zu: ", i);
		memset(y + len, 'v', env_value_bytes);
		len += env_value_bytes;
		y[len++] = '\n';
	}
	y[len] = '\0';
	return y;
}

/* Whether parsing yaml fails with exactly one message containing want. */
static void assert_refused_with(const char *yaml, const char *want)
{
	struct ry_strlist errors = { 0 };
	struct ry_spec *spec = ry_spec_parse("t.yaml", yaml, strlen(yaml), RY_SPEC_YAML, &errors);
	assert_null(spec);
	assert_int_equal(errors.n, 1);
	if (!strstr(errors.items[0], want))
		fail_msg("expected \"%s\" in: %s", want, errors.items[0]);
	ry_strlist_release(&errors);
}

/* What exec cannot take is refused as the database refuses it. */
static void test_exec_limits(void **state)
{
	(void)state;
	struct ry_strlist errors = { 0 };
	char *y = one_task_yaml(RY_SPEC_MAX_ARG_BYTES, 0, 0);
	struct ry_spec *spec = ry_spec_parse("t.yaml", y, strlen(y), RY_SPEC_YAML, &errors);
	assert_non_null(spec);	/* exactly at the limit: fine */
	ry_spec_free(spec);
	ry_strlist_release(&errors);
	free(y);

	y = one_task_yaml(RY_SPEC_MAX_ARG_BYTES + 1, 0, 0);
	assert_refused_with(y, "t.yaml:4: task \"a\": command is 131072 bytes; max_arg_bytes is 131071");
	free(y);
	y = one_task_yaml(1, 1, RY_SPEC_MAX_ARG_BYTES - 2);	/* "K0=" + value = 131072 */
	assert_refused_with(y, "env entry \"K0\" is 131072 bytes as NAME=value; max_arg_bytes is 131071");
	free(y);
	y = one_task_yaml(1, 11, 100000);
	assert_refused_with(y, "command and env are 1100046 bytes together; max_exec_bytes is 1048576");
	free(y);
}

/* A ring of 20,000 tasks: found at once, reported in one short line. */
static void test_huge_ring_gives_a_short_message(void **state)
{
	(void)state;
	struct ry_buf b = RY_BUF_INIT;
	int n = 20000;
	ry_buf_puts(&b, "name: ring\ntasks:\n");
	for (int i = 1; i <= n; i++)
		ry_buf_printf(&b, "  - {name: r%d, command: x, needs: [r%d]}\n", i, i == 1 ? n : i - 1);
	int64_t t0 = ry_now_ms();
	assert_refused_with(b.data, "t.yaml:3: cycle: r1 -> r2 -> r3 -> r4 -> ... -> r19998 -> r19999 -> "
			    "r20000 -> r1 (20000 tasks)");
	/* Linear: well under a second even on a loaded machine. */
	assert_true(ry_now_ms() - t0 < 5000);
	ry_buf_release(&b);
}

static void test_errors_sorted_and_capped(void **state)
{
	(void)state;
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_puts(&b, "name: x\ntasks:\n");
	for (int i = 0; i < 30; i++)
		ry_buf_printf(&b, "  - {name: t%d, command: x, cpu: 0, needs: [nope%d]}\n", i, i);
	ry_buf_puts(&b, "colour: red\n");
	struct ry_strlist errors = { 0 };
	struct ry_spec *s = ry_spec_parse("many.yaml", b.data, b.len, RY_SPEC_YAML, &errors);
	assert_null(s);
	assert_int_equal(errors.n, 21);
	assert_string_equal(errors.items[0], "many.yaml:3: task \"t0\": cpu must be an integer from 1 to 1024");
	assert_string_equal(errors.items[1], "many.yaml:3: task \"t0\": needs unknown task \"nope0\"");
	assert_string_equal(errors.items[20], "many.yaml: 41 more errors not shown");
	ry_strlist_release(&errors);
	ry_buf_release(&b);
}

static void test_missing_file(void **state)
{
	(void)state;
	struct ry_strlist errors = { 0 };
	struct ry_spec *s = ry_spec_parse_file("/nonexistent/x.yaml", &errors);
	assert_null(s);
	assert_int_equal(errors.n, 1);
	assert_string_equal(errors.items[0], "cannot read /nonexistent/x.yaml: No such file or directory");
	ry_strlist_release(&errors);
}

/* Special characters survive the trip to the database's JSON. */
static void test_tasks_json_escapes(void **state)
{
	(void)state;
	struct ry_spec *s = parse_ok("q.yaml",
		"name: x\ntasks:\n  - name: a\n    command: \"echo \\\"hi\\\"\\tthere\\\\ \\u00e9\"\n");
	char *json = ry_spec_tasks_json(s);
	assert_non_null(strstr(json, "\"command\":\"echo \\\"hi\\\"\\tthere\\\\ \xc3\xa9\""));
	free(json);
	ry_spec_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yaml_and_json_agree),
		cmocka_unit_test(test_examples_agree),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_yaml_merge_keys),
		cmocka_unit_test(test_bad_specs),
		cmocka_unit_test(test_errors_sorted_and_capped),
		cmocka_unit_test(test_exec_limits),
		cmocka_unit_test(test_huge_ring_gives_a_short_message),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_tasks_json_escapes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
