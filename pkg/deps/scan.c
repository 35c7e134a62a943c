/*
 * The scan's phases in order (detect.h), the final merge of edges with
 * their evidence, the sort by name, and the graph's public helpers.
 */
#include "deps/detect.h"

#include <stdlib.h>
#include <string.h>

static const struct deps_detector *const detectors[DET_COUNT] = {
	[DET_ENV] = &deps_detector_env,
	[DET_GO] = &deps_detector_go,
	[DET_NODE] = &deps_detector_node,
	[DET_MAVEN] = &deps_detector_maven,
	[DET_GRADLE] = &deps_detector_gradle,
	[DET_DOTNET] = &deps_detector_dotnet,
	[DET_PYTHON] = &deps_detector_python,
	[DET_PROTO] = &deps_detector_proto,
	[DET_COMPOSE] = &deps_detector_compose,
	[DET_K8S] = &deps_detector_k8s,
	[DET_DOCKER] = &deps_detector_docker,
};

/* ---- merging and sorting ------------------------------------------------------------ */

static int cmp_found(const void *a, const void *b)
{
	const struct deps_found_edge *x = a, *y = b;
	if (x->from != y->from)
		return x->from < y->from ? -1 : 1;
	if (x->to != y->to)
		return x->to < y->to ? -1 : 1;
	if (x->kind != y->kind)
		return (int)x->kind - (int)y->kind;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void merge_edges(struct deps_ctx *c)
{
	if (c->nfound > 1)
		qsort(c->found, c->nfound, sizeof(*c->found), cmp_found);
	for (size_t i = 0; i < c->nfound; i++) {
		const struct deps_found_edge *f = &c->found[i];
		struct ry_deps_edge *e;
		if (i > 0 && f->from == f[-1].from && f->to == f[-1].to && f->kind == f[-1].kind) {
			e = &c->g->edges[c->g->nedges - 1];
			char *ev = ry_asprintf("%s:%d", f->file ? f->file : "?", f->line);
			bool same = e->file && f->file && strcmp(e->file, f->file) == 0 &&
				    e->line == f->line;
			if (!same && !ry_strlist_has(&e->more, ev))
				ry_strlist_add(&e->more, ev);
			free(ev);
			continue;
		}
		e = deps_append_edge(c->g);
		e->from = f->from;
		e->to = f->to;
		e->kind = f->kind;
		e->detector = ry_strdup(f->detector);
		e->file = f->file ? ry_strdup(f->file) : NULL;
		e->line = f->line;
	}
}

static void finish_paths(struct deps_ctx *c)
{
	struct deps_map seen = { 0 };
	struct ry_deps_graph *g = c->g;
	for (size_t i = 0; i < c->nfpaths; i++) {
		const struct deps_found_path *f = &c->fpaths[i];
		char *key = ry_asprintf("%zu\x1f%s", f->service, f->glob);
		bool dup = deps_map_get(&seen, key) != DEPS_NONE;
		deps_map_put(&seen, key, 1, false);
		free(key);
		if (dup)
			continue;
		g->paths = ry_realloc(g->paths, (g->npaths + 1) * sizeof(*g->paths));
		struct ry_deps_path *p = &g->paths[g->npaths++];
		p->glob = ry_strdup(f->glob);
		p->regex = ry_glob_regex(f->glob, RY_GLOB_GIT);
		p->service = f->service;
		p->why = ry_strdup(f->why);
		p->is_explicit = strstr(f->why, " shared") != NULL;
		p->deploy = f->deploy;
	}
	deps_map_release(&seen);
}

static const struct ry_deps_graph *sort_graph_g;

static int cmp_service_ix(const void *a, const void *b)
{
	const size_t *x = a, *y = b;
	return strcmp(sort_graph_g->services[*x].name, sort_graph_g->services[*y].name);
}

static int cmp_edge(const void *a, const void *b)
{
	const struct ry_deps_edge *x = a, *y = b;
	if (x->from != y->from)
		return x->from < y->from ? -1 : 1;
	if (x->to != y->to)
		return x->to < y->to ? -1 : 1;
	return (int)x->kind - (int)y->kind;
}

static int cmp_path(const void *a, const void *b)
{
	const struct ry_deps_path *x = a, *y = b;
	if (x->service != y->service)
		return x->service < y->service ? -1 : 1;
	return strcmp(x->glob, y->glob);
}

/* Services by name; edges and paths renumbered and sorted with them. */
static void sort_graph(struct ry_deps_graph *g)
{
	size_t n = g->nservices;
	size_t *order = ry_malloc((n ? n : 1) * sizeof(size_t));
	size_t *where = ry_malloc((n ? n : 1) * sizeof(size_t));
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	sort_graph_g = g;
	if (n > 1)
		qsort(order, n, sizeof(size_t), cmp_service_ix);
	sort_graph_g = NULL;
	struct ry_deps_service *sorted = ry_malloc((n ? n : 1) * sizeof(*sorted));
	for (size_t i = 0; i < n; i++) {
		sorted[i] = g->services[order[i]];
		where[order[i]] = i;
	}
	free(g->services);
	g->services = sorted;
	for (size_t i = 0; i < g->nedges; i++) {
		g->edges[i].from = where[g->edges[i].from];
		g->edges[i].to = where[g->edges[i].to];
	}
	for (size_t i = 0; i < g->npaths; i++)
		g->paths[i].service = where[g->paths[i].service];
	deps_sort_edges_paths(g);
	free(order);
	free(where);
}

void deps_sort_edges_paths(struct ry_deps_graph *g)
{
	if (g->nedges > 1)
		qsort(g->edges, g->nedges, sizeof(*g->edges), cmp_edge);
	if (g->npaths > 1)
		qsort(g->paths, g->npaths, sizeof(*g->paths), cmp_path);
}

/* Edges that touch an excluded service are no part of the graph. */
static void drop_excluded_edges(struct ry_deps_graph *g)
{
	size_t k = 0;
	for (size_t i = 0; i < g->nedges; i++) {
		struct ry_deps_edge *e = &g->edges[i];
		if (g->services[e->from].excluded || g->services[e->to].excluded) {
			free(e->detector);
			free(e->file);
			ry_strlist_release(&e->more);
			continue;
		}
		g->edges[k++] = *e;
	}
	g->nedges = k;
	k = 0;
	for (size_t i = 0; i < g->npaths; i++) {
		struct ry_deps_path *p = &g->paths[i];
		if (g->services[p->service].excluded) {
			free(p->glob);
			free(p->regex);
			free(p->why);
			continue;
		}
		g->paths[k++] = *p;
	}
	g->npaths = k;
}

/* ---- the scan ---------------------------------------------------------------------- */

void deps_scan(struct deps_source *src, const struct ry_strlist *files, const char *root_name,
	       const struct ry_deps_config *cfg, const struct ry_deps_config *extra,
	       struct ry_deps_graph *g)
{
	struct deps_ctx c = { .src = src, .g = g, .cfg = cfg, .root_name = root_name };
	struct ry_buf buf = RY_BUF_INIT;

	for (size_t i = 0; i < files->n; i++) {
		const char *path = files->items[i];
		const char *base = deps_basename(path);
		for (int d = 0; d < DET_COUNT; d++) {
			if (!detectors[d]->wants(path, base))
				continue;
			char *err = NULL;
			ry_buf_reset(&buf);
			if (!src->read(src, path, &buf, &err)) {
				deps_warn(&c, path, 0, "%s", err);
				free(err);
			} else {
				g->files_read++;
				detectors[d]->parse(&c, path, buf.data ? buf.data : "", buf.len);
			}
			break;
		}
	}
	ry_buf_release(&buf);

	for (int d = 0; d < DET_COUNT; d++)
		if (detectors[d]->declare)
			detectors[d]->declare(&c);
	deps_form_services(&c);
	deps_declare_services(&c, cfg);
	deps_declare_services(&c, extra);
	for (int d = 0; d < DET_COUNT; d++)
		if (detectors[d]->late)
			detectors[d]->late(&c);
	for (int d = 0; d < DET_COUNT; d++)
		if (detectors[d]->link)
			detectors[d]->link(&c);
	merge_edges(&c);
	deps_declare_edges(&c, cfg);
	deps_declare_edges(&c, extra);
	deps_declare_shared(&c, cfg);
	deps_declare_shared(&c, extra);
	finish_paths(&c);
	drop_excluded_edges(g);
	sort_graph(g);

	for (int d = 0; d < DET_COUNT; d++)
		detectors[d]->release(&c);
	for (size_t i = 0; i < c.ncands; i++)
		deps_cand_release(&c.cands[i]);
	free(c.cands);
	for (size_t i = 0; i < c.nfound; i++) {
		free(c.found[i].detector);
		free(c.found[i].file);
	}
	free(c.found);
	for (size_t i = 0; i < c.nfpaths; i++) {
		free(c.fpaths[i].glob);
		free(c.fpaths[i].why);
	}
	free(c.fpaths);
	deps_map_release(&c.roots);
	deps_map_release(&c.manifests);
	deps_map_release(&c.names);
	deps_map_release(&c.contexts);
	for (size_t i = 0; i < c.nctxlists; i++)
		ry_strlist_release(&c.ctxlists[i]);
	free(c.ctxlists);
	for (int ns = 0; ns < NS_COUNT; ns++)
		deps_map_release(&c.alias[ns]);
}

bool deps_skip_dir(const char *name)
{
	static const char *const skipped[] = { "node_modules", "vendor", "target", "bin", "obj",
		"__pycache__", "venv", "bower_components", "testdata", "Pods", NULL };
	if (name[0] == '.')
		return true;	/* .git, .venv, .idea, .railyard, ... */
	for (const char *const *s = skipped; *s; s++)
		if (strcmp(name, *s) == 0)
			return true;
	return false;
}

bool deps_wanted(const char *path)
{
	const char *base = deps_basename(path);
	for (int d = 0; d < DET_COUNT; d++)
		if (detectors[d]->wants(path, base))
			return true;
	return false;
}

void deps_filter_init(struct deps_filter *f, const struct ry_deps_config *cfg)
{
	memset(f, 0, sizeof(*f));
	if (!cfg || !cfg->ignore.n)
		return;
	f->m = ry_calloc(cfg->ignore.n, sizeof(*f->m));
	for (size_t i = 0; i < cfg->ignore.n; i++) {
		char *re = ry_glob_regex(cfg->ignore.items[i], RY_GLOB_GIT), *err = NULL;
		f->m[f->n] = ry_match_compile(re, &err);
		if (f->m[f->n])
			f->n++;
		free(err);
		free(re);
	}
}

bool deps_filter_hit(const struct deps_filter *f, const char *path)
{
	if (!f->n)
		return false;
	size_t len = strlen(path);
	char *bare = len > 1 && path[len - 1] == '/' ? ry_strndup(path, len - 1) : NULL;
	bool hit = false;
	for (size_t i = 0; i < f->n && !hit; i++)
		hit = ry_match_test(f->m[i], path) || (bare && ry_match_test(f->m[i], bare));
	free(bare);
	return hit;
}

void deps_filter_release(struct deps_filter *f)
{
	for (size_t i = 0; i < f->n; i++)
		ry_match_free(f->m[i]);
	free(f->m);
	memset(f, 0, sizeof(*f));
}

/* ---- the graph's public helpers ------------------------------------------------------ */

void ry_deps_graph_release(struct ry_deps_graph *g)
{
	for (size_t i = 0; i < g->nservices; i++) {
		struct ry_deps_service *s = &g->services[i];
		free(s->name);
		free(s->root);
		free(s->ecosystem);
		free(s->manifest);
		free(s->detector);
		free(s->team);
		free(s->deploy_file);
		free(s->deploy_name);
	}
	free(g->services);
	for (size_t i = 0; i < g->nedges; i++) {
		free(g->edges[i].detector);
		free(g->edges[i].file);
		ry_strlist_release(&g->edges[i].more);
	}
	free(g->edges);
	for (size_t i = 0; i < g->npaths; i++) {
		free(g->paths[i].glob);
		free(g->paths[i].regex);
		free(g->paths[i].why);
	}
	free(g->paths);
	ry_strlist_release(&g->warnings);
	ry_strlist_release(&g->notes);
	memset(g, 0, sizeof(*g));
}

long ry_deps_find_service(const struct ry_deps_graph *g, const char *name)
{
	size_t lo = 0, hi = g->nservices;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int d = strcmp(g->services[mid].name, name);
		if (d == 0)
			return (long)mid;
		if (d < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

bool ry_deps_edge_active(const struct ry_deps_graph *g, const struct ry_deps_edge *e)
{
	return !e->suppressed && !g->services[e->from].excluded && !g->services[e->to].excluded;
}

