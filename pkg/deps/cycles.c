/*
 * Dependency cycles over pkg/graph: build and test edges together (an
 * error), runtime edges apart (a warning; deploys are not ordered along
 * them).  Each cycle is reported with the evidence of every edge.
 */
#include "deps/detect.h"
#include "graph/graph.h"

#include <stdlib.h>
#include <string.h>

/* ---- cycles ---------------------------------------------------------------------------- */

static bool kind_in(enum ry_deps_kind k, bool runtime)
{
	return runtime ? k == RY_DEPS_RUNTIME : k != RY_DEPS_RUNTIME;
}

/* The graph of active edges of one family, minus the edges marked in skip. */
static bool family_graph(const struct ry_deps_graph *g, bool runtime, const bool *skip,
			 const bool *among, struct ry_graph *out)
{
	size_t *up = ry_malloc((g->nedges + 1) * sizeof(size_t));
	size_t *down = ry_malloc((g->nedges + 1) * sizeof(size_t));
	size_t m = 0;
	for (size_t i = 0; i < g->nedges; i++) {
		const struct ry_deps_edge *e = &g->edges[i];
		if (!ry_deps_edge_active(g, e) || !kind_in(e->kind, runtime) || (skip && skip[i]) ||
		    (among && (!among[e->from] || !among[e->to])))
			continue;
		up[m] = e->from;
		down[m] = e->to;
		m++;
	}
	bool ok = ry_graph_init(out, g->nservices, m, up, down);
	free(up);
	free(down);
	return ok;
}

/* The first active edge of the family from a to b not yet skipped. */
static long edge_between(const struct ry_deps_graph *g, size_t a, size_t b, bool runtime,
			 const bool *skip)
{
	for (size_t i = 0; i < g->nedges; i++) {
		const struct ry_deps_edge *e = &g->edges[i];
		if (e->from == a && e->to == b && kind_in(e->kind, runtime) && !skip[i] &&
		    ry_deps_edge_active(g, e))
			return (long)i;
	}
	return -1;
}

static void add_evidence(struct ry_buf *b, const struct ry_deps_edge *e)
{
	ry_buf_printf(b, "%s, ", ry_deps_kind_name(e->kind));
	if (e->file)
		ry_buf_printf(b, "%s:%d", e->file, e->line);
	else
		ry_buf_puts(b, e->detector ? e->detector : "declared");
}

static size_t report_family(const struct ry_deps_graph *g, bool runtime, const bool *among,
			    struct ry_strlist *out, size_t max)
{
	bool *skip = ry_calloc(g->nedges + 1, sizeof(bool));
	const char **names = ry_malloc((g->nservices + 1) * sizeof(char *));
	size_t found = 0;
	for (size_t i = 0; i < g->nservices; i++)
		names[i] = g->services[i].name;
	while (found < max) {
		struct ry_graph gr;
		size_t *cycle = NULL, len = 0;
		if (!family_graph(g, runtime, skip, among, &gr))
			break;
		len = ry_graph_find_cycle(&gr, &cycle);
		ry_graph_release(&gr);
		if (!len)
			break;
		long *edges = ry_malloc(len * sizeof(long));
		bool whole = true;
		for (size_t i = 0; i < len; i++) {
			edges[i] = edge_between(g, cycle[i], cycle[(i + 1) % len], runtime, skip);
			whole &= edges[i] >= 0;
		}
		if (!whole) {	/* cannot happen: the cycle follows edges of the family */
			free(edges);
			free(cycle);
			break;
		}
		struct ry_buf b = RY_BUF_INIT;
		ry_buf_puts(&b, runtime ? "runtime cycle (deploys are not ordered along it): "
					: "cycle: ");
		ry_graph_format_cycle(&b, names, cycle, len);
		ry_buf_puts(&b, " (");
		add_evidence(&b, &g->edges[edges[len - 1]]);
		ry_buf_putc(&b, ')');
		for (size_t i = 0; i < len && i < 2 * RY_GRAPH_CYCLE_SHOWN; i++) {
			const struct ry_deps_edge *e = &g->edges[edges[i]];
			ry_buf_printf(&b, "\n  %s -> %s: ", names[e->from], names[e->to]);
			add_evidence(&b, e);
		}
		ry_strlist_add(out, b.data);
		ry_buf_release(&b);
		skip[edges[len - 1]] = true;	/* look for another cycle without this edge */
		found++;
		free(edges);
		free(cycle);
	}
	free(names);
	free(skip);
	return found;
}

size_t ry_deps_check_cycles(const struct ry_deps_graph *g, const bool *among,
			    struct ry_strlist *errors, struct ry_strlist *warnings, size_t max)
{
	if (warnings)
		(void)report_family(g, true, among, warnings, max);
	if (!errors)
		return 0;
	return report_family(g, false, among, errors, max);
}

void ry_deps_runtime_cycle_edges(const struct ry_deps_graph *g, bool *on_cycle)
{
	struct ry_graph gr;
	memset(on_cycle, 0, g->nedges * sizeof(bool));
	if (!family_graph(g, true, NULL, NULL, &gr))
		return;
	size_t *order = ry_malloc((g->nservices + 1) * sizeof(size_t));
	bool *placed = ry_calloc(g->nservices + 1, sizeof(bool));
	size_t k = ry_graph_topo_order(&gr, order);
	for (size_t i = 0; i < k; i++)
		placed[order[i]] = true;
	if (k < g->nservices) {
		bool *mark = ry_malloc((g->nservices + 1) * sizeof(bool));
		for (size_t i = 0; i < g->nedges; i++) {
			const struct ry_deps_edge *e = &g->edges[i];
			if (e->kind != RY_DEPS_RUNTIME || !ry_deps_edge_active(g, e) ||
			    placed[e->from] || placed[e->to])
				continue;
			/* u -> v lies on a cycle when v reaches u */
			memset(mark, 0, g->nservices * sizeof(bool));
			(void)ry_graph_reach(&gr, &e->to, 1, RY_GRAPH_DOWNSTREAM, mark);
			on_cycle[i] = mark[e->from];
		}
		free(mark);
	}
	free(placed);
	free(order);
	ry_graph_release(&gr);
}

