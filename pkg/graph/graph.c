/*
 * graph: DAG algorithms over compressed adjacency lists.  Every function
 * is linear in vertices + edges.
 */
#include "graph/graph.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Fills start[0..n] and adj so that adj[start[v] ..] lists to[k] for every
 * edge with from[k] == v, in ascending order of to[k] (counting sort). */
static void build_side(size_t n, size_t m, const size_t *from, const size_t *to,
		       size_t *start, size_t *adj)
{
	size_t *by_to = ry_malloc((m ? m : 1) * sizeof(size_t));
	size_t *to_start = ry_calloc(n + 1, sizeof(size_t));
	size_t *fill = ry_calloc(n + 1, sizeof(size_t));

	/* Order edges by to[], then place them by from[]: stable, so each
	 * vertex's list comes out sorted by the neighbour's index. */
	for (size_t k = 0; k < m; k++)
		to_start[to[k] + 1]++;
	for (size_t v = 0; v < n; v++)
		to_start[v + 1] += to_start[v];
	for (size_t k = 0; k < m; k++)
		by_to[to_start[to[k]] + fill[to[k]]++] = k;

	memset(start, 0, (n + 1) * sizeof(size_t));
	for (size_t k = 0; k < m; k++)
		start[from[k] + 1]++;
	for (size_t v = 0; v < n; v++)
		start[v + 1] += start[v];
	memset(fill, 0, (n + 1) * sizeof(size_t));
	for (size_t i = 0; i < m; i++) {
		size_t k = by_to[i];
		adj[start[from[k]] + fill[from[k]]++] = to[k];
	}
	free(fill);
	free(to_start);
	free(by_to);
}

bool ry_graph_init(struct ry_graph *g, size_t n, size_t m, const size_t *up, const size_t *down)
{
	memset(g, 0, sizeof(*g));
	for (size_t k = 0; k < m; k++)
		if (up[k] >= n || down[k] >= n)
			return false;
	g->n = n;
	g->m = m;
	g->out_start = ry_malloc((n + 1) * sizeof(size_t));
	g->in_start = ry_malloc((n + 1) * sizeof(size_t));
	g->out = ry_malloc((m ? m : 1) * sizeof(size_t));
	g->in = ry_malloc((m ? m : 1) * sizeof(size_t));
	build_side(n, m, up, down, g->out_start, g->out);
	build_side(n, m, down, up, g->in_start, g->in);
	return true;
}

void ry_graph_release(struct ry_graph *g)
{
	free(g->out_start);
	free(g->out);
	free(g->in_start);
	free(g->in);
	memset(g, 0, sizeof(*g));
}

/* Kahn's algorithm; indeg (n entries, may be NULL) keeps what is left. */
static size_t kahn(const struct ry_graph *g, size_t *order, size_t *indeg_out)
{
	size_t n = g->n, head = 0, tail = 0;
	size_t *indeg = indeg_out ? indeg_out : ry_malloc((n ? n : 1) * sizeof(size_t));

	for (size_t v = 0; v < n; v++) {
		indeg[v] = g->in_start[v + 1] - g->in_start[v];
		if (indeg[v] == 0)
			order[tail++] = v;
	}
	while (head < tail) {
		size_t v = order[head++];
		for (size_t k = g->out_start[v]; k < g->out_start[v + 1]; k++)
			if (--indeg[g->out[k]] == 0)
				order[tail++] = g->out[k];
	}
	if (!indeg_out)
		free(indeg);
	return tail;
}

size_t ry_graph_topo_order(const struct ry_graph *g, size_t *order)
{
	return kahn(g, order, NULL);
}

size_t ry_graph_find_cycle(const struct ry_graph *g, size_t **cycle)
{
	size_t n = g->n, len = 0, v = 0, found = 0;
	size_t *order = ry_malloc((n ? n : 1) * sizeof(size_t));
	size_t *left = ry_malloc((n ? n : 1) * sizeof(size_t));	/* 0: ordered by Kahn */

	*cycle = NULL;
	if (kahn(g, order, left) == n)
		goto out;
	/* Every vertex left has an upstream left: walking upstream must
	 * repeat a vertex, and the walk from that repeat is a cycle. */
	size_t *pos = ry_calloc(n, sizeof(size_t));	/* 1-based place in path */
	size_t *path = ry_malloc(n * sizeof(size_t));
	while (left[v] == 0)
		v++;
	while (pos[v] == 0) {
		path[len++] = v;
		pos[v] = len;
		size_t k = g->in_start[v];
		while (left[g->in[k]] == 0)
			k++;
		v = g->in[k];
	}
	/* path[pos[v]-1 .. len) runs upstream from v; reversed it runs forward. */
	found = len - pos[v] + 1;
	*cycle = ry_malloc(found * sizeof(size_t));
	(*cycle)[0] = v;
	for (size_t i = 1; i < found; i++)
		(*cycle)[i] = path[len - i];
	free(path);
	free(pos);
out:
	free(left);
	free(order);
	return found;
}

bool ry_graph_upward_rank(const struct ry_graph *g, const double *weight, double *rank)
{
	size_t n = g->n;
	size_t *order = ry_malloc((n ? n : 1) * sizeof(size_t));
	bool ok = kahn(g, order, NULL) == n;

	for (size_t i = n; ok && i-- > 0;) {
		size_t v = order[i];
		double below = 0;
		for (size_t k = g->out_start[v]; k < g->out_start[v + 1]; k++)
			if (rank[g->out[k]] > below)
				below = rank[g->out[k]];
		rank[v] = weight[v] + below;
	}
	free(order);
	return ok;
}

bool ry_graph_critical_path(const struct ry_graph *g, const double *weight, size_t **path,
			    size_t *npath, double *length)
{
	size_t n = g->n, best = 0;
	size_t *order = ry_malloc((n ? n : 1) * sizeof(size_t));
	size_t *pred = NULL;
	double *dist = NULL;
	bool ok = false;

	*path = NULL;
	*npath = 0;
	*length = 0;
	if (kahn(g, order, NULL) != n)
		goto out;
	ok = true;
	if (n == 0)
		goto out;
	dist = ry_calloc(n, sizeof(double));
	pred = ry_malloc(n * sizeof(size_t));
	for (size_t i = 0; i < n; i++) {
		size_t v = order[i];
		double longest = 0;
		pred[v] = SIZE_MAX;
		/* Upstreams come in ascending index: ties keep the lowest. */
		for (size_t k = g->in_start[v]; k < g->in_start[v + 1]; k++) {
			size_t u = g->in[k];
			if (pred[v] == SIZE_MAX || dist[u] > longest) {
				longest = dist[u];
				pred[v] = u;
			}
		}
		dist[v] = longest + weight[v];
	}
	for (size_t v = 1; v < n; v++)
		if (dist[v] > dist[best])
			best = v;
	size_t len = 0;
	for (size_t v = best; v != SIZE_MAX; v = pred[v])
		len++;
	*path = ry_malloc(len * sizeof(size_t));
	*npath = len;
	for (size_t v = best; v != SIZE_MAX; v = pred[v])
		(*path)[--len] = v;
	*length = dist[best];
out:
	free(pred);
	free(dist);
	free(order);
	return ok;
}

size_t ry_graph_reach(const struct ry_graph *g, const size_t *seeds, size_t nseeds,
		      enum ry_graph_direction dir, bool *mark)
{
	const size_t *start = dir == RY_GRAPH_DOWNSTREAM ? g->out_start : g->in_start;
	const size_t *adj = dir == RY_GRAPH_DOWNSTREAM ? g->out : g->in;
	size_t *stack = ry_malloc((g->n ? g->n : 1) * sizeof(size_t));
	size_t top = 0, marked = 0;

	for (size_t i = 0; i < nseeds; i++) {
		if (seeds[i] >= g->n || mark[seeds[i]])
			continue;
		mark[seeds[i]] = true;
		marked++;
		stack[top++] = seeds[i];
	}
	while (top > 0) {
		size_t v = stack[--top];
		for (size_t k = start[v]; k < start[v + 1]; k++) {
			size_t w = adj[k];
			if (!mark[w]) {
				mark[w] = true;
				marked++;
				stack[top++] = w;
			}
		}
	}
	free(stack);
	return marked;
}

void ry_graph_format_cycle(struct ry_buf *b, const char *const *names, const size_t *cycle,
			   size_t len)
{
	size_t head = len, tail = 0;

	if (len == 0)
		return;
	if (len > RY_GRAPH_CYCLE_SHOWN) {
		head = RY_GRAPH_CYCLE_SHOWN / 2;
		tail = RY_GRAPH_CYCLE_SHOWN - head - 1;
	}
	for (size_t i = 0; i < head; i++)
		ry_buf_printf(b, "%s -> ", names[cycle[i]]);
	if (head < len) {
		ry_buf_puts(b, "... -> ");
		for (size_t i = len - tail; i < len; i++)
			ry_buf_printf(b, "%s -> ", names[cycle[i]]);
	}
	ry_buf_puts(b, names[cycle[0]]);
	if (head < len)
		ry_buf_printf(b, " (%zu tasks)", len);
}
