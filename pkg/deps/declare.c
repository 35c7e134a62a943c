/*
 * Declarations applied over a scan: services, edges and shared paths from
 * railyard.yaml, then from the database (explicit rows people inserted),
 * each later one winning.  An explicit edge replaces the detected one with
 * the same ends and kind (keeping its evidence among "more"); a suppressed
 * one stays in the graph marked, so it can be stored and shown.
 */
#include "deps/detect.h"

#include <stdlib.h>
#include <string.h>

/* ---- declarations ---------------------------------------------------------------- */

static void set_str(char **dst, const char *v)
{
	char *copy = v ? ry_strdup(v) : NULL;
	free(*dst);
	*dst = copy;
}

void deps_declare_services(struct deps_ctx *c, const struct ry_deps_config *cfg)
{
	if (!cfg)
		return;
	const char *src = cfg->source ? cfg->source : "railyard.yaml";
	for (size_t i = 0; i < cfg->nservices; i++) {
		const struct ry_deps_decl_service *d = &cfg->services[i];
		size_t s = deps_map_get(&c->names, d->name);
		if (s == DEPS_NONE && d->root)	/* the detected service at that root, renamed */
			s = deps_map_get(&c->roots, d->root);
		if (s == DEPS_NONE || s >= c->g->nservices) {
			char *name = deps_sanitize_name(d->name);
			s = deps_new_service(c, name, d->root, d->ecosystem ? d->ecosystem : "other",
					NULL, 0, src);
		}
		struct ry_deps_service *svc = &c->g->services[s];
		if (strcmp(svc->name, d->name) != 0) {
			deps_map_put(&c->names, svc->name, DEPS_NONE, false);
			set_str(&svc->name, d->name);
			deps_map_put(&c->names, svc->name, s, false);
			deps_alias(c, NS_HOST, svc->name, s);
		}
		if (d->root && (!svc->root || strcmp(svc->root, d->root) != 0)) {
			if (svc->root)
				deps_map_put(&c->roots, svc->root, DEPS_NONE, false);
			set_str(&svc->root, d->root);
			deps_map_put(&c->roots, svc->root, s, false);
			svc->owns_root = true;
		}
		if (d->ecosystem)
			set_str(&svc->ecosystem, d->ecosystem);
		if (d->team)
			set_str(&svc->team, d->team);
		set_str(&svc->detector, src);
		svc->is_explicit = true;
		svc->decl_line = d->line;
		svc->excluded = d->exclude;
		if (d->exclude && svc->root)
			deps_map_put(&c->roots, svc->root, DEPS_NONE, false);
	}
}

static long find_edge(const struct ry_deps_graph *g, size_t from, size_t to, enum ry_deps_kind k)
{
	for (size_t i = 0; i < g->nedges; i++)
		if (g->edges[i].from == from && g->edges[i].to == to && g->edges[i].kind == k)
			return (long)i;
	return -1;
}

struct ry_deps_edge *deps_append_edge(struct ry_deps_graph *g)
{
	g->edges = ry_realloc(g->edges, (g->nedges + 1) * sizeof(*g->edges));
	struct ry_deps_edge *e = &g->edges[g->nedges++];
	memset(e, 0, sizeof(*e));
	return e;
}

void deps_declare_edges(struct deps_ctx *c, const struct ry_deps_config *cfg)
{
	if (!cfg)
		return;
	const char *src = cfg->source ? cfg->source : "railyard.yaml";
	bool is_file = strcmp(src, "database") != 0;
	for (size_t i = 0; i < cfg->nedges; i++) {
		const struct ry_deps_decl_edge *d = &cfg->edges[i];
		size_t from = deps_usable(c, deps_map_get(&c->names, d->from));
		size_t to = deps_usable(c, deps_map_get(&c->names, d->to));
		if (from == DEPS_NONE || to == DEPS_NONE) {
			deps_warn(c, src, d->line, "dependency %s -> %s: no service named \"%s\"",
				  d->from, d->to, from == DEPS_NONE ? d->from : d->to);
			continue;
		}
		long at = find_edge(c->g, from, to, d->kind);
		struct ry_deps_edge *e;
		if (at >= 0) {
			e = &c->g->edges[at];
			if (e->file && !e->is_explicit) {	/* keep what detection found, first */
				char *ev = ry_asprintf("%s:%d", e->file, e->line);
				ry_strlist_add(&e->more, ev);
				free(ev);
				char *last = e->more.items[e->more.n - 1];
				memmove(e->more.items + 1, e->more.items,
					(e->more.n - 1) * sizeof(char *));
				e->more.items[0] = last;
			}
		} else {
			e = deps_append_edge(c->g);
			e->from = from;
			e->to = to;
			e->kind = d->kind;
		}
		e->is_explicit = true;
		e->suppressed = d->suppress;
		set_str(&e->detector, src);
		set_str(&e->file, is_file ? src : NULL);
		e->line = is_file ? d->line : 0;
	}
}

void deps_declare_shared(struct deps_ctx *c, const struct ry_deps_config *cfg)
{
	if (!cfg)
		return;
	const char *src = cfg->source ? cfg->source : "railyard.yaml";
	for (size_t i = 0; i < cfg->nshared; i++) {
		const struct ry_deps_decl_shared *d = &cfg->shared[i];
		char *why = d->line > 0 ? ry_asprintf("%s:%d shared", src, d->line)
					: ry_asprintf("%s shared", src);
		for (size_t a = 0; a < d->affects.n; a++) {
			const char *what = d->affects.items[a];
			bool all = strcmp(what, "all") == 0;
			bool eco = strncmp(what, "ecosystem:", 10) == 0;
			size_t hits = 0;
			for (size_t s = 0; s < c->g->nservices; s++) {
				const struct ry_deps_service *svc = &c->g->services[s];
				if (svc->excluded)
					continue;
				if (all || (eco && strcmp(svc->ecosystem, what + 10) == 0) ||
				    (!all && !eco && strcmp(svc->name, what) == 0)) {
					for (size_t k = 0; k < d->globs.n; k++)
						deps_shared(c, d->globs.items[k], s, why);
					hits++;
				}
			}
			if (!hits && !all)
				deps_warn(c, src, d->line, "shared paths: %s names no service", what);
		}
		free(why);
	}
}

