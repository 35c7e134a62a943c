/*
 * A graph from stored rows (deps.h, "a graph from stored rows"): what
 * `railyard plan` loads instead of scanning again when the manifests have
 * not changed since the last stored scan.
 */
#include "deps/detect.h"

#include <stdlib.h>
#include <string.h>

static char *dup_or_null(const char *s)
{
	return s ? ry_strdup(s) : NULL;
}

void ry_deps_graph_add_service(struct ry_deps_graph *g, const struct ry_deps_service *s)
{
	/* where it goes in name order: at the end when rows come sorted */
	size_t lo = 0, hi = g->nservices;
	if (hi == 0 || strcmp(g->services[hi - 1].name, s->name) < 0) {
		lo = hi;
	} else {
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (strcmp(g->services[mid].name, s->name) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
	}
	g->services = ry_realloc(g->services, (g->nservices + 1) * sizeof(*g->services));
	memmove(g->services + lo + 1, g->services + lo, (g->nservices - lo) * sizeof(*g->services));
	g->nservices++;
	struct ry_deps_service *d = &g->services[lo];
	*d = *s;
	d->name = ry_strdup(s->name);
	d->root = dup_or_null(s->root);
	d->ecosystem = ry_strdup(s->ecosystem ? s->ecosystem : "other");
	d->manifest = dup_or_null(s->manifest);
	d->detector = dup_or_null(s->detector);
	d->team = dup_or_null(s->team);
	d->deploy_file = dup_or_null(s->deploy_file);
	d->deploy_name = dup_or_null(s->deploy_name);
}

bool ry_deps_graph_add_edge(struct ry_deps_graph *g, const char *from, const char *to,
			    const struct ry_deps_edge *e)
{
	long f = ry_deps_find_service(g, from), t = ry_deps_find_service(g, to);
	if (f < 0 || t < 0 || f == t)
		return false;
	struct ry_deps_edge *d = deps_append_edge(g);
	d->from = (size_t)f;
	d->to = (size_t)t;
	d->kind = e->kind;
	d->is_explicit = e->is_explicit;
	d->suppressed = e->suppressed;
	d->detector = dup_or_null(e->detector);
	d->file = dup_or_null(e->file);
	d->line = e->line;
	for (size_t i = 0; i < e->more.n; i++)
		ry_strlist_add(&d->more, e->more.items[i]);
	return true;
}

bool ry_deps_graph_add_path(struct ry_deps_graph *g, const char *service,
			    const struct ry_deps_path *p)
{
	long s = ry_deps_find_service(g, service);
	if (s < 0 || !p->glob)
		return false;
	g->paths = ry_realloc(g->paths, (g->npaths + 1) * sizeof(*g->paths));
	struct ry_deps_path *d = &g->paths[g->npaths++];
	*d = *p;
	d->service = (size_t)s;
	d->glob = ry_strdup(p->glob);
	d->regex = p->regex ? ry_strdup(p->regex) : ry_glob_regex(p->glob, RY_GLOB_GIT);
	d->why = ry_strdup(p->why ? p->why : "shared");
	return true;
}

void ry_deps_graph_finish(struct ry_deps_graph *g)
{
	deps_sort_edges_paths(g);
}
