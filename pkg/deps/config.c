/*
 * railyard.yaml: what people declare about a repository (docs/deps.md):
 * services, dependencies (added or suppressed), shared paths, paths to
 * ignore and the task templates `railyard plan` uses.  Read through
 * pkg/spec's line-numbered YAML tree; every problem is an error naming
 * railyard.yaml:LINE, and any error rejects the whole file.
 */
#include "deps/detect.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ERRORS 20

struct cfg_check {
	const char *source;
	struct ry_strlist *errors;
	size_t count;
};

static void cfail(struct cfg_check *k, int line, const char *fmt, ...) RY_PRINTF(3, 4);

static void cfail(struct cfg_check *k, int line, const char *fmt, ...)
{
	va_list ap;
	char msg[512];
	if (k->count++ >= MAX_ERRORS)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	char *full = ry_asprintf("%s:%d: %s", k->source, line, msg);
	ry_strlist_add(k->errors, full);
	free(full);
}

static void check_keys(struct cfg_check *k, const struct spec_node *map, const char *what,
		       const char *const *known)
{
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const char *key = map->items[i]->text;
		bool ok = false;
		for (const char *const *p = known; *p && !ok; p++)
			ok = strcmp(key, *p) == 0;
		if (!ok) {
			struct ry_buf b = RY_BUF_INIT;
			for (const char *const *p = known; *p; p++)
				ry_buf_printf(&b, "%s%s", p == known ? "" : ", ", *p);
			cfail(k, map->items[i]->line, "%s: unknown key \"%s\" (known: %s)", what, key,
			      b.data);
			ry_buf_release(&b);
		}
	}
}

/* A string value (numbers are taken as written); NULL and an error otherwise. */
static char *get_str(struct cfg_check *k, const struct spec_node *map, const char *key,
		     const char *what, bool required)
{
	const struct spec_node *v = spec_map_get(map, key);
	if (!v || v->type == SPEC_NULL) {
		if (required)
			cfail(k, map->line, "%s: %s is required", what, key);
		return NULL;
	}
	if (v->type != SPEC_STR && v->type != SPEC_INT && v->type != SPEC_FLOAT) {
		cfail(k, v->line, "%s: %s must be a string", what, key);
		return NULL;
	}
	if (strlen(v->text) != v->len || v->len == 0) {
		cfail(k, v->line, "%s: %s must be a non-empty string without NUL", what, key);
		return NULL;
	}
	return ry_strdup(v->text);
}

static bool get_bool(struct cfg_check *k, const struct spec_node *map, const char *key,
		     const char *what)
{
	const struct spec_node *v = spec_map_get(map, key);
	if (!v || v->type == SPEC_NULL)
		return false;
	if (v->type != SPEC_BOOL) {
		cfail(k, v->line, "%s: %s must be true or false", what, key);
		return false;
	}
	return strcmp(v->text, "true") == 0;
}

static int get_int(struct cfg_check *k, const struct spec_node *map, const char *key,
		   const char *what, long min, long max)
{
	const struct spec_node *v = spec_map_get(map, key);
	long n = 0;
	if (!v || v->type == SPEC_NULL)
		return 0;
	if (v->type != SPEC_INT || !ry_parse_long(v->text, min, max, &n)) {
		cfail(k, v->line, "%s: %s must be an integer from %ld to %ld", what, key, min, max);
		return 0;
	}
	return (int)n;
}

/* A list of strings, or one string taken as a list of one. */
static void get_list(struct cfg_check *k, const struct spec_node *map, const char *key,
		     const char *what, struct ry_strlist *out)
{
	const struct spec_node *v = spec_map_get(map, key);
	if (!v || v->type == SPEC_NULL)
		return;
	if (v->type == SPEC_STR) {
		ry_strlist_add(out, v->text);
		return;
	}
	if (v->type != SPEC_SEQ) {
		cfail(k, v->line, "%s: %s must be a list of strings", what, key);
		return;
	}
	for (size_t i = 0; i < v->n; i++) {
		const struct spec_node *e = v->items[i];
		if ((e->type != SPEC_STR && e->type != SPEC_INT) || !e->len ||
		    strlen(e->text) != e->len)
			cfail(k, e->line, "%s: %s must hold non-empty strings", what, key);
		else
			ry_strlist_add(out, e->text);
	}
}

/* Service names: what task names allow after "build:". */
static bool name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 150)
		return false;
	for (const char *p = s; *p; p++)
		if (!(isalnum((unsigned char)*p) || strchr("_.:/@+=-", *p)))
			return false;
	return true;
}

static char *get_name(struct cfg_check *k, const struct spec_node *map, const char *key,
		      const char *what)
{
	char *s = get_str(k, map, key, what, true);
	if (s && !name_valid(s)) {
		cfail(k, spec_map_get(map, key)->line,
		      "%s: %s \"%s\" is not a service name (letters, digits and _ . : / @ + = -, "
		      "at most 150)", what, key, s);
		free(s);
		s = NULL;
	}
	return s;
}

static char *get_dir(struct cfg_check *k, const struct spec_node *map, const char *key,
		     const char *what)
{
	char *raw = get_str(k, map, key, what, false);
	if (!raw)
		return NULL;
	char *norm = ry_deps_path_normalize(raw);
	if (!norm)
		cfail(k, spec_map_get(map, key)->line,
		      "%s: %s \"%s\" must be a directory inside the repository, relative to it",
		      what, key, raw);
	free(raw);
	return norm;
}

static const struct spec_node *get_seq(struct cfg_check *k, const struct spec_node *root,
				       const char *key)
{
	const struct spec_node *v = spec_map_get(root, key);
	if (!v || v->type == SPEC_NULL)
		return NULL;
	if (v->type != SPEC_SEQ) {
		cfail(k, v->line, "%s must be a list", key);
		return NULL;
	}
	return v;
}

static void read_services(struct cfg_check *k, struct ry_deps_config *cfg,
			  const struct spec_node *seq)
{
	static const char *const keys[] = { "name", "root", "ecosystem", "team", "exclude", NULL };
	cfg->services = ry_calloc(seq->n + 1, sizeof(*cfg->services));
	for (size_t i = 0; i < seq->n; i++) {
		const struct spec_node *m = seq->items[i];
		if (m->type != SPEC_MAP) {
			cfail(k, m->line, "services: each item must be a mapping with a name");
			continue;
		}
		check_keys(k, m, "service", keys);
		struct ry_deps_decl_service *d = &cfg->services[cfg->nservices];
		d->line = m->line;
		d->name = get_name(k, m, "name", "service");
		d->root = get_dir(k, m, "root", "service");
		d->ecosystem = get_str(k, m, "ecosystem", "service", false);
		d->team = get_str(k, m, "team", "service", false);
		d->exclude = get_bool(k, m, "exclude", "service");
		for (size_t j = 0; d->name && j < cfg->nservices; j++)
			if (cfg->services[j].name && strcmp(cfg->services[j].name, d->name) == 0)
				cfail(k, m->line, "service \"%s\" is declared twice (first at line %d)",
				      d->name, cfg->services[j].line);
		cfg->nservices++;
	}
}

static void read_edges(struct cfg_check *k, struct ry_deps_config *cfg, const struct spec_node *seq)
{
	static const char *const keys[] = { "from", "to", "kind", "suppress", NULL };
	cfg->edges = ry_calloc(seq->n + 1, sizeof(*cfg->edges));
	for (size_t i = 0; i < seq->n; i++) {
		const struct spec_node *m = seq->items[i];
		if (m->type != SPEC_MAP) {
			cfail(k, m->line, "dependencies: each item must be a mapping {from, to, kind}");
			continue;
		}
		check_keys(k, m, "dependency", keys);
		struct ry_deps_decl_edge *d = &cfg->edges[cfg->nedges++];
		d->line = m->line;
		d->from = get_name(k, m, "from", "dependency");
		d->to = get_name(k, m, "to", "dependency");
		char *kind = get_str(k, m, "kind", "dependency", false);
		d->kind = RY_DEPS_BUILD;
		if (kind && !ry_deps_kind_parse(kind, &d->kind))
			cfail(k, spec_map_get(m, "kind")->line,
			      "dependency: kind \"%s\" is not build, test or runtime", kind);
		free(kind);
		d->suppress = get_bool(k, m, "suppress", "dependency");
		if (d->from && d->to && strcmp(d->from, d->to) == 0)
			cfail(k, m->line, "dependency: %s cannot depend on itself", d->from);
	}
}

static void read_shared(struct cfg_check *k, struct ry_deps_config *cfg, const struct spec_node *seq)
{
	static const char *const keys[] = { "paths", "affects", NULL };
	cfg->shared = ry_calloc(seq->n + 1, sizeof(*cfg->shared));
	for (size_t i = 0; i < seq->n; i++) {
		const struct spec_node *m = seq->items[i];
		if (m->type != SPEC_MAP) {
			cfail(k, m->line, "shared: each item must be a mapping {paths, affects}");
			continue;
		}
		check_keys(k, m, "shared", keys);
		struct ry_deps_decl_shared *d = &cfg->shared[cfg->nshared++];
		d->line = m->line;
		get_list(k, m, "paths", "shared", &d->globs);
		get_list(k, m, "affects", "shared", &d->affects);
		if (!d->globs.n)
			cfail(k, m->line, "shared: paths is required (globs)");
		if (!d->affects.n)
			cfail(k, m->line, "shared: affects is required (all, service names, "
					  "ecosystem:NAME)");
	}
}

static void read_task(struct cfg_check *k, const struct spec_node *v, const char *what,
		      struct ry_deps_task_template *t)
{
	static const char *const keys[] = { "command", "requires", "cpu", "mem_mb", "timeout_s",
		"pool", NULL };
	t->set = true;
	if (v->type == SPEC_NULL)
		return;	/* no such task */
	if (v->type == SPEC_STR) {
		if (!v->len || strlen(v->text) != v->len)
			cfail(k, v->line, "%s: the command must be a non-empty string", what);
		else
			t->command = ry_strdup(v->text);
		return;
	}
	if (v->type != SPEC_MAP) {
		cfail(k, v->line, "%s: a command, a mapping {command, requires, cpu, mem_mb, "
				  "timeout_s, pool}, or null for none", what);
		return;
	}
	check_keys(k, v, what, keys);
	t->command = get_str(k, v, "command", what, true);
	get_list(k, v, "requires", what, &t->requires);
	t->cpu = get_int(k, v, "cpu", what, 1, 1024);
	t->mem_mb = get_int(k, v, "mem_mb", what, 1, 16777216);
	t->timeout_s = get_int(k, v, "timeout_s", what, 1, 604800);
	t->pool = get_str(k, v, "pool", what, false);
}

static void read_template_set(struct cfg_check *k, const struct spec_node *map, const char *what,
			      struct ry_deps_template **out, size_t *nout)
{
	if (!map || map->type == SPEC_NULL)
		return;
	if (map->type != SPEC_MAP) {
		cfail(k, map->line, "templates: %s must be a mapping of templates", what);
		return;
	}
	static const char *const keys[] = { "build", "test", "deploy", "integration", NULL };
	*out = ry_calloc(map->n / 2 + 1, sizeof(**out));
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const struct spec_node *v = map->items[i + 1];
		struct ry_deps_template *t = &(*out)[(*nout)++];
		t->key = ry_strdup(map->items[i]->text);
		t->line = map->items[i]->line;
		char *where = ry_asprintf("templates: %s: %s", what, t->key);
		if (v->type != SPEC_MAP) {
			cfail(k, v->line, "%s must be a mapping {build, test, deploy, integration}", where);
		} else {
			check_keys(k, v, where, keys);
			for (int task = 0; task < RY_DEPS_NTASKS; task++) {
				const struct spec_node *tv = spec_map_get(v, keys[task]);
				if (tv) {
					char *w = ry_asprintf("%s.%s", where, keys[task]);
					read_task(k, tv, w, &t->task[task]);
					free(w);
				}
			}
		}
		free(where);
	}
}

bool ry_deps_config_parse(struct ry_deps_config *cfg, const char *source, const char *data,
			  size_t len, struct ry_strlist *errors)
{
	static const char *const keys[] = { "team", "ignore", "services", "dependencies",
		"shared", "templates", NULL };
	static const char *const tkeys[] = { "ecosystems", "services", NULL };
	struct cfg_check k = { source, errors, 0 };
	struct spec_doc doc = { 0 };
	int line = 1;
	char *err = NULL;

	memset(cfg, 0, sizeof(*cfg));
	cfg->source = ry_strdup(source);
	if (!spec_load_yaml(&doc, data, len, &line, &err)) {
		cfail(&k, line, "%s", err);
		free(err);
		goto out;
	}
	const struct spec_node *root = doc.root;
	if (!root || root->type == SPEC_NULL)
		goto out;	/* empty: nothing declared */
	if (root->type != SPEC_MAP) {
		cfail(&k, root->line, "railyard.yaml must be a mapping (team, ignore, services, "
				      "dependencies, shared, templates)");
		goto out;
	}
	check_keys(&k, root, "railyard.yaml", keys);
	cfg->team = get_str(&k, root, "team", "railyard.yaml", false);
	get_list(&k, root, "ignore", "railyard.yaml", &cfg->ignore);
	const struct spec_node *seq;
	if ((seq = get_seq(&k, root, "services")) != NULL)
		read_services(&k, cfg, seq);
	if ((seq = get_seq(&k, root, "dependencies")) != NULL)
		read_edges(&k, cfg, seq);
	if ((seq = get_seq(&k, root, "shared")) != NULL)
		read_shared(&k, cfg, seq);
	const struct spec_node *t = spec_map_get(root, "templates");
	if (t && t->type == SPEC_MAP) {
		check_keys(&k, t, "templates", tkeys);
		read_template_set(&k, spec_map_get(t, "ecosystems"), "ecosystems",
				  &cfg->by_ecosystem, &cfg->nby_ecosystem);
		read_template_set(&k, spec_map_get(t, "services"), "services", &cfg->by_service,
				  &cfg->nby_service);
	} else if (t && t->type != SPEC_NULL) {
		cfail(&k, t->line, "templates must be a mapping {ecosystems, services}");
	}
out:
	spec_doc_release(&doc);
	if (k.count > MAX_ERRORS) {
		char *more = ry_asprintf("%s: %zu more errors", source, k.count - MAX_ERRORS);
		ry_strlist_add(errors, more);
		free(more);
	}
	if (k.count) {
		ry_deps_config_release(cfg);
		return false;
	}
	return true;
}

static void release_templates(struct ry_deps_template *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(t[i].key);
		for (int k = 0; k < RY_DEPS_NTASKS; k++) {
			free(t[i].task[k].command);
			free(t[i].task[k].pool);
			ry_strlist_release(&t[i].task[k].requires);
		}
	}
	free(t);
}

void ry_deps_config_release(struct ry_deps_config *cfg)
{
	free(cfg->source);
	free(cfg->team);
	ry_strlist_release(&cfg->ignore);
	for (size_t i = 0; i < cfg->nservices; i++) {
		free(cfg->services[i].name);
		free(cfg->services[i].root);
		free(cfg->services[i].ecosystem);
		free(cfg->services[i].team);
	}
	free(cfg->services);
	for (size_t i = 0; i < cfg->nedges; i++) {
		free(cfg->edges[i].from);
		free(cfg->edges[i].to);
	}
	free(cfg->edges);
	for (size_t i = 0; i < cfg->nshared; i++) {
		ry_strlist_release(&cfg->shared[i].globs);
		ry_strlist_release(&cfg->shared[i].affects);
	}
	free(cfg->shared);
	release_templates(cfg->by_ecosystem, cfg->nby_ecosystem);
	release_templates(cfg->by_service, cfg->nby_service);
	memset(cfg, 0, sizeof(*cfg));
}
