/*
 * Pipeline specs: from the document tree (load.c) to struct ry_spec, with
 * every check the database makes at COMMIT done here first, each failure
 * naming FILE:LINE and the task.  Ranges mirror migrations/0001_init.sql.
 */
#include "spec/spec.h"
#include "spec/doc.h"
#include "spec/check.h"
#include "archive/archive.h"
#include "graph/graph.h"
#include "match/match.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_FILE_BYTES (64u << 20)	/* far beyond any real pipeline */

static const char *const task_kinds[] = { "build", "test", "deploy", "package", "lint",
	"publish", "other", NULL };
static const char *const run_ifs[] = { "on_success", "on_failure", "always", NULL };
static const char *const edge_kinds[] = { "build", "test", "runtime", NULL };

static const char *const top_keys[] = { "name", "team", "priority", "revision",
	"changed_paths", "tasks", "edges", "source", NULL };
static const char *const task_keys[] = { "name", "command", "service", "kind", "requires",
	"os", "arch", "cpu", "mem_mb", "pool", "priority", "version", "cacheable", "inputs",
	"outputs", "env", "run_if", "only_if_changed", "max_attempts", "timeout_s", "needs", "secrets", "image", NULL };
static const char *const edge_keys[] = { "upstream", "downstream", "kind", NULL };
static const char *const need_keys[] = { "task", "kind", NULL };

/* ---- small helpers ------------------------------------------------------- */

#define ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

/* railyard.tasks CHECK task_name_valid: ^[A-Za-z0-9_][A-Za-z0-9_.:/@+=-]{0,199}$ */
static bool task_name_valid(const char *s)
{
	size_t len = strlen(s);
	return len >= 1 && len <= 200 && strchr(ALNUM "_", s[0]) && s[0] &&
	       spec_only_chars(s + 1, ALNUM "_.:/@+=-");
}

/* railyard.pipelines CHECK pipeline_team_valid: ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$ */
static bool team_valid(const char *s)
{
	size_t len = strlen(s);
	return len >= 1 && len <= 63 && strchr(ALNUM, s[0]) && s[0] && spec_only_chars(s + 1, ALNUM "_.-");
}

/* railyard.valid_label(): ^[A-Za-z0-9_][A-Za-z0-9_.:+=@/-]{0,63}$ (requires, os, arch, pool) */
static bool label_valid(const char *s)
{
	size_t len = strlen(s);
	return len >= 1 && len <= 64 && strchr(ALNUM "_", s[0]) && s[0] &&
	       spec_only_chars(s + 1, ALNUM "_.:+=@/-");
}

#define LABEL_CHARS "letters, digits and _ . : + = @ / - (at most 64, no comma, blank, brace or quote)"

/* tasks_before_insert: env keys are ^[A-Za-z_][A-Za-z0-9_]*$ */
static bool env_name_valid(const char *s)
{
	return s[0] && strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_", s[0]) &&
	       spec_only_chars(s + 1, ALNUM "_");
}


/* ---- typed field readers ------------------------------------------------- */


/* inputs and outputs: paths relative to the task's tree (pkg/archive's
 * rule, and CHECK task_inputs_valid / task_outputs_valid); inputs may be
 * "." for the whole tree. */
static void check_paths(struct check *c, const struct spec_node *map, const char *key,
			const struct ry_strlist *paths, bool allow_dot)
{
	const struct spec_node *v = spec_map_get(map, key);
	for (size_t i = 0; i < paths->n; i++) {
		if (allow_dot && strcmp(paths->items[i], ".") == 0)
			continue;
		char *why = ry_archive_check_path(paths->items[i]);
		if (why) {
			const struct spec_node *e = v && v->type == SPEC_SEQ && i < v->n ? v->items[i] : v;
			spec_fail(c, e ? e->line : map->line, "%s item %zu: %s", key, i + 1, why);
			free(why);
		}
	}
}

static void get_env(struct check *c, const struct spec_node *map, struct ry_spec_task *t)
{
	const struct spec_node *v = spec_map_get(map, "env");
	if (!v || v->type == SPEC_NULL)
		return;
	if (v->type != SPEC_MAP) {
		spec_fail(c, v->line, "env must be a mapping of NAME: value");
		return;
	}
	t->env = ry_calloc(v->n / 2 + 1, sizeof(*t->env));
	for (size_t i = 0; i + 1 < v->n; i += 2) {
		const struct spec_node *k = v->items[i], *val = v->items[i + 1];
		if (!env_name_valid(k->text)) {
			spec_fail(c, k->line, "env name \"%s\" is invalid: use letters, digits and _, "
				 "not starting with a digit", k->text);
			continue;
		}
		char *what = ry_asprintf("env \"%s\"", k->text);
		const char *s = spec_as_string(c, val, what);
		free(what);
		if (!s)
			continue;
		t->env[t->nenv].name = ry_strdup(k->text);
		t->env[t->nenv].value = ry_strdup(s);
		t->nenv++;
	}
}

/* An optional label-like field (os, arch, pool): a string of label syntax. */
static void check_label(struct check *c, const struct spec_node *map, const char *key, char **out)
{
	if (spec_get_str(c, map, key, true, out) && *out && !label_valid(*out))
		spec_fail(c, spec_map_get(map, key)->line, "%s \"%s\" is invalid: use " LABEL_CHARS, key, *out);
}

/* What exec could not take: sizes as railyard.max_arg_bytes()/max_exec_bytes(). */
static void check_exec_size(struct check *c, const struct spec_node *map, const struct ry_spec_task *t)
{
	size_t total = t->command ? strlen(t->command) : 0;

	if (total > RY_SPEC_MAX_ARG_BYTES)
		spec_fail(c, spec_map_get(map, "command")->line,
			  "command is %zu bytes; max_arg_bytes is %d (the kernel's limit for one argument)",
			  total, RY_SPEC_MAX_ARG_BYTES);
	for (size_t i = 0; i < t->nenv; i++) {
		size_t len = strlen(t->env[i].name) + 1 + strlen(t->env[i].value);
		if (len > RY_SPEC_MAX_ARG_BYTES)
			spec_fail(c, spec_map_get(map, "env")->line,
				  "env entry \"%s\" is %zu bytes as NAME=value; max_arg_bytes is %d (the kernel's "
				  "limit for one string)", t->env[i].name, len, RY_SPEC_MAX_ARG_BYTES);
		total += len + 1;
	}
	if (total > RY_SPEC_MAX_EXEC_BYTES)
		spec_fail(c, map->line, "command and env are %zu bytes together; max_exec_bytes is %d",
			  total, RY_SPEC_MAX_EXEC_BYTES);
}

/* railyard.secrets_valid: a relative path whose components start with a
 * letter, digit or _ (so never . or ..), at most 255 characters. */
static bool secret_file_valid(const char *s)
{
	if (!*s || strlen(s) > 255)
		return false;
	for (const char *c = s; *c; c++) {
		if (c == s || c[-1] == '/') {
			if (!strchr(ALNUM "_", *c) || !*c)
				return false;
		} else if (!strchr(ALNUM "_.-/", *c)) {
			return false;
		}
	}
	return s[strlen(s) - 1] != '/';
}

/* secrets: {NAME: file}: env values the worker reads from files on the agent. */
static void get_secrets(struct check *c, const struct spec_node *map, struct ry_spec_task *t)
{
	const struct spec_node *v = spec_map_get(map, "secrets");
	if (!v || v->type == SPEC_NULL)
		return;
	if (v->type != SPEC_MAP) {
		spec_fail(c, v->line, "secrets must be a mapping of NAME: file");
		return;
	}
	t->secrets = ry_calloc(v->n / 2 + 1, sizeof(*t->secrets));
	for (size_t i = 0; i + 1 < v->n; i += 2) {
		const struct spec_node *k = v->items[i], *val = v->items[i + 1];
		if (!env_name_valid(k->text)) {
			spec_fail(c, k->line, "secret name \"%s\" is invalid: use letters, digits and _, "
				 "not starting with a digit", k->text);
			continue;
		}
		for (size_t e = 0; e < t->nenv; e++)
			if (strcmp(t->env[e].name, k->text) == 0)
				spec_fail(c, k->line, "\"%s\" is both in env and in secrets", k->text);
		char *what = ry_asprintf("secret \"%s\"", k->text);
		const char *s = spec_as_string(c, val, what);
		free(what);
		if (!s)
			continue;
		if (!secret_file_valid(s)) {
			spec_fail(c, val->line, "secret \"%s\": \"%s\" must be a file name relative to the "
				 "agent's secrets_dir (no leading /, no . or .. parts)", k->text, s);
			continue;
		}
		t->secrets[t->nsecrets].name = ry_strdup(k->text);
		t->secrets[t->nsecrets].value = ry_strdup(s);
		t->nsecrets++;
	}
}

/* ---- the pipeline -------------------------------------------------------- */

static void add_edge(struct ry_spec *spec, const char *up, const char *down, const char *kind,
		     int line)
{
	if (spec->nedges == spec->edges_cap) {
		/* Doubling: a 20,000-task chain must not copy the list per edge. */
		spec->edges_cap = spec->edges_cap ? 2 * spec->edges_cap : 16;
		spec->edges = ry_realloc(spec->edges, spec->edges_cap * sizeof(*spec->edges));
	}
	struct ry_spec_edge *e = &spec->edges[spec->nedges++];
	e->upstream = ry_strdup(up);
	e->downstream = ry_strdup(down);
	e->kind = ry_strdup(kind);
	e->line = line;
}

static void read_needs(struct check *c, struct ry_spec *spec, const struct spec_node *task,
		       const char *name)
{
	const struct spec_node *v = spec_map_get(task, "needs");
	if (!v || v->type == SPEC_NULL)
		return;
	if (v->type != SPEC_SEQ) {
		spec_fail(c, v->line, "needs must be a list of task names or of {task: NAME, kind: KIND}");
		return;
	}
	for (size_t i = 0; i < v->n; i++) {
		const struct spec_node *e = v->items[i];
		char *up = NULL, *kind = NULL;
		if (e->type == SPEC_MAP) {
			spec_check_keys(c, e, need_keys);
			if (spec_get_required_str(c, e, e->line, "task", &up) &&
			    spec_get_choice(c, e, "kind", edge_kinds, &kind) && name)
				add_edge(spec, up, name, kind ? kind : "build", e->line);
		} else {
			const char *s = spec_as_string(c, e, "needs item");
			if (s && name)
				add_edge(spec, s, name, "build", e->line);
		}
		free(up);
		free(kind);
	}
}


/* image: a container image reference (registry/name:tag or @digest), as
 * the tasks_image_valid check of migrations/0009_outbox.sql allows. */
static void get_image(struct check *c, const struct spec_node *n, struct ry_spec_task *t)
{
	if (!spec_get_str(c, n, "image", true, &t->image) || !t->image)
		return;
	const char *s = t->image;
	bool ok = strlen(s) <= 500 && isalnum((unsigned char)s[0]);
	for (; ok && *s; s++)
		ok = isalnum((unsigned char)*s) || strchr("._/:@+-", *s);
	if (!ok)
		spec_fail(c, spec_map_get(n, "image")->line,
			  "image \"%s\" is invalid: use a reference such as debian:bookworm or "
			  "registry.example.com/team/tool@sha256:... (letters, digits and . _ / : @ + -)",
			  t->image);
}

static void read_task(struct check *c, struct ry_spec *spec, const struct spec_node *n,
		      struct ry_spec_task *t)
{
	t->line = n->line;
	t->kind = ry_strdup("build");
	t->cpu = 1;
	t->mem_mb = 256;
	t->version = ry_strdup("1");
	t->run_if = ry_strdup("on_success");
	t->max_attempts = 3;
	t->timeout_s = 3600;
	if (n->type != SPEC_MAP) {
		spec_fail(c, n->line, "a task must be a mapping with name and command");
		return;
	}
	if (spec_get_required_str(c, n, n->line, "name", &t->name)) {
		if (task_name_valid(t->name)) {
			c->task = t->name;
		} else {
			spec_fail(c, spec_map_get(n, "name")->line,
				  "name \"%s\" is invalid: use letters, digits and _ . : / @ + = - "
				  "(at most 200, not starting with punctuation other than _)", t->name);
			free(t->name);
			t->name = NULL;
		}
	}
	spec_check_keys(c, n, task_keys);
	(void)spec_get_required_str(c, n, n->line, "command", &t->command);
	(void)spec_get_str(c, n, "service", true, &t->service);
	(void)spec_get_choice(c, n, "kind", task_kinds, &t->kind);
	get_image(c, n, t);
	if (spec_get_list(c, n, "requires", &t->requires, NULL))
		for (size_t i = 0; i < t->requires.n; i++)
			if (!label_valid(t->requires.items[i]))
				spec_fail(c, spec_map_get(n, "requires")->line,
					  "label \"%s\" in requires is invalid: use " LABEL_CHARS,
					  t->requires.items[i]);
	check_label(c, n, "os", &t->os);
	check_label(c, n, "arch", &t->arch);
	(void)spec_get_int(c, n, "cpu", 1, 1024, &t->cpu, NULL);
	(void)spec_get_int(c, n, "mem_mb", 1, 16777216, &t->mem_mb, NULL);
	check_label(c, n, "pool", &t->pool);
	(void)spec_get_int(c, n, "priority", -1000, 1000, &t->priority, &t->has_priority);
	(void)spec_get_str(c, n, "version", true, &t->version);
	(void)spec_get_bool(c, n, "cacheable", &t->cacheable);
	(void)spec_get_list(c, n, "inputs", &t->inputs, NULL);
	check_paths(c, n, "inputs", &t->inputs, true);
	(void)spec_get_list(c, n, "outputs", &t->outputs, NULL);
	check_paths(c, n, "outputs", &t->outputs, false);
	get_env(c, n, t);
	check_exec_size(c, n, t);
	get_secrets(c, n, t);
	(void)spec_get_choice(c, n, "run_if", run_ifs, &t->run_if);
	if (spec_get_str(c, n, "only_if_changed", true, &t->only_if_changed) && t->only_if_changed) {
		char *err = NULL;
		struct ry_match *m = ry_match_compile(t->only_if_changed, &err);
		if (!m) {
			spec_fail(c, spec_map_get(n, "only_if_changed")->line,
				  "only_if_changed is not a valid PCRE2 pattern: %s", err);
			free(err);
		}
		ry_match_free(m);
	}
	(void)spec_get_int(c, n, "max_attempts", 1, 100, &t->max_attempts, NULL);
	(void)spec_get_int(c, n, "timeout_s", 1, 604800, &t->timeout_s, NULL);
	/* Only agents with a container runtime can run an image. */
	if (t->image && !ry_strlist_has(&t->requires, "container"))
		ry_strlist_add(&t->requires, "container");
	read_needs(c, spec, n, c->task);
}

static void read_edges(struct check *c, struct ry_spec *spec, const struct spec_node *v)
{
	if (!v || v->type == SPEC_NULL)
		return;
	if (v->type != SPEC_SEQ) {
		spec_fail(c, v->line, "edges must be a list of {upstream, downstream, kind}");
		return;
	}
	for (size_t i = 0; i < v->n; i++) {
		const struct spec_node *e = v->items[i];
		char *up = NULL, *down = NULL, *kind = NULL;
		if (e->type != SPEC_MAP) {
			spec_fail(c, e->line, "an edge must be a mapping {upstream, downstream, kind}");
			continue;
		}
		spec_check_keys(c, e, edge_keys);
		bool ok = spec_get_required_str(c, e, e->line, "upstream", &up);
		ok = spec_get_required_str(c, e, e->line, "downstream", &down) && ok;
		ok = spec_get_choice(c, e, "kind", edge_kinds, &kind) && ok;
		if (ok)
			add_edge(spec, up, down, kind ? kind : "build", e->line);
		free(up);
		free(down);
		free(kind);
	}
}

static void read_pipeline(struct check *c, struct ry_spec *spec, const struct spec_node *root,
			  size_t *nneeds)
{
	if (!root) {
		spec_fail(c, 1, "the spec is empty: expected a mapping with name and tasks");
		return;
	}
	if (root->type != SPEC_MAP) {
		spec_fail(c, root->line, "the spec must be a mapping with name and tasks");
		return;
	}
	spec_check_keys(c, root, top_keys);
	spec->team = ry_strdup("default");
	if (spec_get_required_str(c, root, root->line, "name", &spec->name) &&
	    spec_utf8_chars(spec->name) > 200)
		spec_fail(c, spec_map_get(root, "name")->line, "name must be at most 200 characters");
	if (spec_get_str(c, root, "team", false, &spec->team) && !team_valid(spec->team))
		spec_fail(c, spec_map_get(root, "team")->line,
			  "team \"%s\" is invalid: use letters, digits and _ . - (at most 63, "
			  "starting with a letter or digit)", spec->team);
	(void)spec_get_int(c, root, "priority", -1000, 1000, &spec->priority, NULL);
	(void)spec_get_str(c, root, "revision", true, &spec->revision);
	if (spec_get_str(c, root, "source", true, &spec->origin) && spec->origin) {
		/* CHECK pipeline_source_valid: no option-like or control characters */
		const char *o = spec->origin;
		bool ctrl = false;
		for (const char *p = o; *p; p++)
			ctrl = ctrl || (unsigned char)*p < 0x20 || *p == 0x7f;
		if (o[0] == '-' || ctrl || strlen(o) > 4096)
			spec_fail(c, spec_map_get(root, "source")->line,
				  "source must be a repository path or URL, or a directory (at most 4096 "
				  "characters, not starting with -, no control characters)");
	}
	(void)spec_get_list(c, root, "changed_paths", &spec->changed_paths, &spec->has_changed_paths);

	const struct spec_node *tasks = spec_map_get(root, "tasks");
	if (!tasks || tasks->type == SPEC_NULL) {
		spec_fail(c, tasks ? tasks->line : root->line, "tasks is required");
	} else if (tasks->type != SPEC_SEQ) {
		spec_fail(c, tasks->line, "tasks must be a list of tasks");
	} else if (tasks->n == 0) {
		spec_fail(c, tasks->line, "tasks must not be empty");
	} else {
		spec->tasks = ry_calloc(tasks->n, sizeof(*spec->tasks));
		spec->ntasks = tasks->n;
		for (size_t i = 0; i < tasks->n; i++) {
			c->task = NULL;
			c->task_no = i + 1;
			read_task(c, spec, tasks->items[i], &spec->tasks[i]);
		}
		c->task = NULL;
		c->task_no = 0;
	}
	*nneeds = spec->nedges;
	read_edges(c, spec, spec_map_get(root, "edges"));
}

/* ---- the graph ----------------------------------------------------------- */

struct name_ix {
	const char *name;
	size_t task;
};

static int cmp_name_ix(const void *a, const void *b)
{
	const struct name_ix *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : (x->task > y->task) - (x->task < y->task);
}

static long lookup(const struct name_ix *ix, size_t n, const char *name)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(ix[mid].name, name);
		if (c == 0)
			return (long)ix[mid].task;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

struct edge_ix {
	size_t up;
	size_t down;
	size_t edge;
};

static int cmp3(size_t a1, size_t b1, size_t a2, size_t b2, size_t a3, size_t b3)
{
	if (a1 != b1)
		return a1 < b1 ? -1 : 1;
	if (a2 != b2)
		return a2 < b2 ? -1 : 1;
	return (a3 > b3) - (a3 < b3);
}

/* By upstream, then downstream: the database's edge order. */
static int cmp_edge_ix(const void *a, const void *b)
{
	const struct edge_ix *x = a, *y = b;
	return cmp3(x->up, y->up, x->down, y->down, x->edge, y->edge);
}

/*
 * Reports a cycle the way railyard.pipeline_graph does (pkg/graph finds
 * the same one: the walk upstream from the first task Kahn's algorithm
 * leaves over), so the message is the same whether C or the database finds
 * it, and as short for a ring of 20,000 tasks as for one of three.
 */
static void find_cycle(struct check *c, const struct ry_spec *spec, const struct edge_ix *ex,
		       size_t m)
{
	size_t n = spec->ntasks;
	size_t *up = ry_malloc((m ? m : 1) * sizeof(size_t));
	size_t *down = ry_malloc((m ? m : 1) * sizeof(size_t));
	size_t *cycle = NULL, len = 0;
	struct ry_graph g;

	for (size_t k = 0; k < m; k++) {
		up[k] = ex[k].up;
		down[k] = ex[k].down;
	}
	/* The indexes come from the task table, so init cannot refuse them. */
	if (ry_graph_init(&g, n, m, up, down)) {
		len = ry_graph_find_cycle(&g, &cycle);
		ry_graph_release(&g);
	}
	if (len > 0) {
		const char **names = ry_malloc(n * sizeof(*names));
		struct ry_buf b = RY_BUF_INIT;
		for (size_t i = 0; i < n; i++)
			names[i] = spec->tasks[i].name;
		ry_graph_format_cycle(&b, names, cycle, len);
		spec_fail(c, spec->tasks[cycle[0]].line, "cycle: %s", b.data);
		ry_buf_release(&b);
		free(names);
	}
	free(cycle);
	free(down);
	free(up);
}

/* nneeds: edges[0, nneeds) came from tasks' needs, the rest from edges. */
static void check_graph(struct check *c, struct ry_spec *spec, size_t nneeds)
{
	size_t n = spec->ntasks, m = spec->nedges;
	struct name_ix *ix = ry_malloc((n ? n : 1) * sizeof(*ix));
	struct edge_ix *ex = ry_malloc((m ? m : 1) * sizeof(*ex));
	size_t nix = 0, nex = 0;

	for (size_t i = 0; i < n; i++) {
		if (!spec->tasks[i].name)
			continue;
		ix[nix].name = spec->tasks[i].name;
		ix[nix++].task = i;
	}
	qsort(ix, nix, sizeof(*ix), cmp_name_ix);
	for (size_t i = 1; i < nix; i++)
		if (strcmp(ix[i].name, ix[i - 1].name) == 0)
			spec_fail(c, spec->tasks[ix[i].task].line, "duplicate task \"%s\" (first at line %d)",
				  ix[i].name, spec->tasks[ix[i - 1].task].line);

	/* With a task unnamed, "unknown task" could be a false alarm. */
	for (size_t k = 0; k < m && nix == n; k++) {
		const struct ry_spec_edge *e = &spec->edges[k];
		long up = lookup(ix, nix, e->upstream), down = lookup(ix, nix, e->downstream);
		bool needs = k < nneeds;
		const char *miss = up < 0 ? e->upstream : e->downstream;
		if (up >= 0 && down >= 0) {
			ex[nex].up = (size_t)up;
			ex[nex].down = (size_t)down;
			ex[nex++].edge = k;
			if (up == down)
				spec_fail(c, e->line, "cycle: %s -> %s", e->upstream, e->downstream);
			continue;
		}
		const char *hint = NULL;
		size_t best = spec_typo_budget(miss) + 1;
		for (size_t i = 0; i < nix; i++) {
			size_t d = spec_levenshtein(miss, ix[i].name);
			if (d < best) {
				best = d;
				hint = ix[i].name;
			}
		}
		struct ry_buf b = RY_BUF_INIT;
		if (hint)
			ry_buf_printf(&b, " (did you mean \"%s\"?)", hint);
		if (needs) {
			c->task = e->downstream;
			spec_fail(c, e->line, "needs unknown task \"%s\"%s", miss, b.len ? b.data : "");
			c->task = NULL;
		} else {
			spec_fail(c, e->line, "edge %s -> %s: unknown task \"%s\"%s", e->upstream,
				  e->downstream, miss, b.len ? b.data : "");
		}
		ry_buf_release(&b);
	}

	qsort(ex, nex, sizeof(*ex), cmp_edge_ix);
	for (size_t k = 1; k < nex; k++) {
		if (ex[k].up != ex[k - 1].up || ex[k].down != ex[k - 1].down)
			continue;
		const struct ry_spec_edge *e = &spec->edges[ex[k].edge];
		int other = spec->edges[ex[k - 1].edge].line;
		if (ex[k].edge < nneeds) {
			c->task = e->downstream;
			spec_fail(c, e->line, "needs \"%s\" twice (also at line %d)", e->upstream, other);
			c->task = NULL;
		} else {
			spec_fail(c, e->line, "edge %s -> %s is given twice (also at line %d)",
				  e->upstream, e->downstream, other);
		}
	}
	/* A cycle is only meaningful once every task and edge is sound. */
	if (c->count == 0 && n > 0)
		find_cycle(c, spec, ex, nex);
	free(ix);
	free(ex);
}

/* ---- entry points -------------------------------------------------------- */

static bool has_suffix(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

static bool looks_json(const char *source, const char *data, size_t len)
{
	if (has_suffix(source, ".json"))
		return true;
	if (has_suffix(source, ".yaml") || has_suffix(source, ".yml"))
		return false;
	size_t i = 0;
	if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
		i = 3;
	while (i < len && strchr(" \t\r\n", data[i]) && data[i])
		i++;
	return i < len && (data[i] == '{' || data[i] == '[');
}

struct ry_spec *ry_spec_parse(const char *source, const char *data, size_t len,
			      enum ry_spec_format format, struct ry_strlist *errors)
{
	struct spec_doc doc = { 0 };
	struct check c = { .source = source };
	struct ry_spec *spec = NULL;
	int line = 1;
	size_t nneeds = 0;
	char *err = NULL;
	bool json = format == RY_SPEC_JSON || (format == RY_SPEC_AUTO && looks_json(source, data, len));

	if (!(json ? spec_load_json(&doc, data, len, &line, &err)
		   : spec_load_yaml(&doc, data, len, &line, &err))) {
		spec_fail(&c, line, "%s", err);
		free(err);
		goto out;
	}
	spec = ry_calloc(1, sizeof(*spec));
	spec->source = ry_strdup(source);
	read_pipeline(&c, spec, doc.root, &nneeds);
	check_graph(&c, spec, nneeds);
	if (c.count > 0) {
		ry_spec_free(spec);
		spec = NULL;
	}
out:
	spec_report(&c, errors);
	spec_doc_release(&doc);
	return spec;
}

struct ry_spec *ry_spec_parse_file(const char *path, struct ry_strlist *errors)
{
	bool is_stdin = strcmp(path, "-") == 0;
	const char *source = is_stdin ? "<stdin>" : path;
	FILE *f = is_stdin ? stdin : fopen(path, "rb");
	struct ry_buf b = RY_BUF_INIT;
	struct ry_spec *spec = NULL;
	char chunk[65536];
	size_t n;

	if (!f) {
		char *msg = ry_asprintf("cannot read %s: %s", source, strerror(errno));
		ry_strlist_add(errors, msg);
		free(msg);
		return NULL;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		ry_buf_add(&b, chunk, n);
		if (b.len > MAX_FILE_BYTES)
			break;
	}
	if (ferror(f) || b.len > MAX_FILE_BYTES) {
		char *msg = ferror(f) ? ry_asprintf("cannot read %s: %s", source, strerror(errno))
				      : ry_asprintf("cannot read %s: larger than %u MB", source,
						    MAX_FILE_BYTES >> 20);
		ry_strlist_add(errors, msg);
		free(msg);
	} else {
		spec = ry_spec_parse(source, b.data ? b.data : "", b.len, RY_SPEC_AUTO, errors);
	}
	if (!is_stdin)
		fclose(f);
	ry_buf_release(&b);
	return spec;
}

static void task_release(struct ry_spec_task *t)
{
	free(t->name);
	free(t->command);
	free(t->service);
	free(t->image);
	free(t->kind);
	ry_strlist_release(&t->requires);
	free(t->os);
	free(t->arch);
	free(t->pool);
	free(t->version);
	ry_strlist_release(&t->inputs);
	ry_strlist_release(&t->outputs);
	for (size_t i = 0; i < t->nenv; i++) {
		free(t->env[i].name);
		free(t->env[i].value);
	}
	free(t->env);
	for (size_t i = 0; i < t->nsecrets; i++) {
		free(t->secrets[i].name);
		free(t->secrets[i].value);
	}
	free(t->secrets);
	free(t->run_if);
	free(t->only_if_changed);
}

void ry_spec_free(struct ry_spec *spec)
{
	if (!spec)
		return;
	for (size_t i = 0; i < spec->ntasks; i++)
		task_release(&spec->tasks[i]);
	free(spec->tasks);
	for (size_t i = 0; i < spec->nedges; i++) {
		free(spec->edges[i].upstream);
		free(spec->edges[i].downstream);
		free(spec->edges[i].kind);
	}
	free(spec->edges);
	free(spec->source);
	free(spec->name);
	free(spec->team);
	free(spec->revision);
	free(spec->origin);
	ry_strlist_release(&spec->changed_paths);
	free(spec);
}

const struct ry_spec_task *ry_spec_find_task(const struct ry_spec *spec, const char *name)
{
	for (size_t i = 0; i < spec->ntasks; i++)
		if (strcmp(spec->tasks[i].name, name) == 0)
			return &spec->tasks[i];
	return NULL;
}

/* ---- JSON for the database ----------------------------------------------- */

static json_t *jstr(const char *s)
{
	/* Strings were checked to be UTF-8 without NUL, so this cannot fail. */
	return s ? json_string(s) : json_null();
}

static json_t *jlist(const struct ry_strlist *l)
{
	json_t *a = json_array();
	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(a, jstr(l->items[i]));
	return a;
}

/* A task's optional field: left out when unset, which jsonb_populate_record
 * reads as NULL too.  A smaller document to build, send and parse: most
 * tasks set few of them. */
static void set_optional(json_t *o, const char *key, json_t *v)
{
	if (json_is_null(v))
		json_decref(v);
	else
		json_object_set_new(o, key, v);
}

static char *dump(json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT);
	char *copy = ry_strdup(s ? s : "[]");
	free(s);
	json_decref(v);
	return copy;
}

char *ry_spec_tasks_json(const struct ry_spec *spec)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < spec->ntasks; i++) {
		const struct ry_spec_task *t = &spec->tasks[i];
		json_t *env = json_object();
		for (size_t k = 0; k < t->nenv; k++)
			json_object_set_new(env, t->env[k].name, jstr(t->env[k].value));
		json_t *o = json_object();
		json_object_set_new(o, "name", jstr(t->name));
		json_object_set_new(o, "service", jstr(t->service));
		set_optional(o, "image", jstr(t->image));
		json_object_set_new(o, "kind", jstr(t->kind));
		json_object_set_new(o, "command", jstr(t->command));
		json_object_set_new(o, "env", env);
		json_t *secrets = json_object();
		for (size_t k = 0; k < t->nsecrets; k++)
			json_object_set_new(secrets, t->secrets[k].name, jstr(t->secrets[k].value));
		json_object_set_new(o, "secrets", secrets);
		json_object_set_new(o, "requires", jlist(&t->requires));
		set_optional(o, "os", jstr(t->os));
		set_optional(o, "arch", jstr(t->arch));
		json_object_set_new(o, "cpu", json_integer(t->cpu));
		json_object_set_new(o, "mem_mb", json_integer(t->mem_mb));
		set_optional(o, "pool", jstr(t->pool));
		set_optional(o, "priority", t->has_priority ? json_integer(t->priority) : json_null());
		json_object_set_new(o, "version", jstr(t->version));
		json_object_set_new(o, "cacheable", json_boolean(t->cacheable));
		json_object_set_new(o, "inputs", jlist(&t->inputs));
		json_object_set_new(o, "outputs", jlist(&t->outputs));
		json_object_set_new(o, "run_if", jstr(t->run_if));
		set_optional(o, "only_if_changed", jstr(t->only_if_changed));
		json_object_set_new(o, "max_attempts", json_integer(t->max_attempts));
		json_object_set_new(o, "timeout_s", json_integer(t->timeout_s));
		json_array_append_new(arr, o);
	}
	return dump(arr);
}

char *ry_spec_edges_json(const struct ry_spec *spec)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < spec->nedges; i++) {
		const struct ry_spec_edge *e = &spec->edges[i];
		json_t *o = json_object();
		json_object_set_new(o, "upstream", jstr(e->upstream));
		json_object_set_new(o, "downstream", jstr(e->downstream));
		json_object_set_new(o, "kind", jstr(e->kind));
		json_array_append_new(arr, o);
	}
	return dump(arr);
}
