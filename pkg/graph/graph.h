/*
 * graph: the one copy of the DAG algorithms railyard needs — topological
 * order, a cycle's path, upward rank, the critical path and reachability —
 * over vertices 0..n-1 and edges up[k] -> down[k].  Pure and allocation-
 * only: spec validation, the demo, dependency planning and the
 * benchmarks all use it.  sql/10_submit.sql does the same at COMMIT in
 * PL/pgSQL and must agree with it (same cycle, same ranks).
 */
#ifndef RY_GRAPH_H
#define RY_GRAPH_H

#include "core/core.h"

/* Compressed adjacency both ways; neighbours listed in ascending index. */
struct ry_graph {
	size_t n;		/* vertices */
	size_t m;		/* edges */
	size_t *out_start;	/* n + 1: downstreams of v: out[out_start[v] ..] */
	size_t *out;
	size_t *in_start;	/* n + 1: upstreams of v: in[in_start[v] ..] */
	size_t *in;
};

/*
 * Builds g from m edges up[k] -> down[k].  Duplicate edges are kept (they
 * count twice in in-degrees, as the database's would not: callers reject
 * duplicates first).  Returns false, with g empty, when an index is >= n.
 */
bool ry_graph_init(struct ry_graph *g, size_t n, size_t m, const size_t *up,
		   const size_t *down) RY_MUST_CHECK;
void ry_graph_release(struct ry_graph *g);

/*
 * Kahn's algorithm with a FIFO queue seeded in index order.  Fills
 * order[0..k) and returns k: k == n when the graph is acyclic, else the
 * vertices left out all lie on or below a cycle.
 */
size_t ry_graph_topo_order(const struct ry_graph *g, size_t *order);

/*
 * A cycle, when there is one: *cycle (caller frees) holds c[0] -> c[1] ->
 * ... -> c[len-1] -> c[0] along edges; returns len, or 0 (and *cycle NULL)
 * when the graph is acyclic.  The same cycle pipeline_graph reports:
 * from the lowest-index vertex Kahn left over, walk to the lowest-index
 * upstream that is also left over until a vertex repeats.  Linear time.
 */
size_t ry_graph_find_cycle(const struct ry_graph *g, size_t **cycle) RY_MUST_CHECK;

/*
 * Upward rank (HEFT): rank[v] = weight[v] + max over downstreams of their
 * rank (0 without any).  Returns false on a cycle (rank untouched).
 */
bool ry_graph_upward_rank(const struct ry_graph *g, const double *weight,
			  double *rank) RY_MUST_CHECK;

/*
 * The heaviest chain of vertices: *path (caller frees) lists it from first
 * to last, *npath its length, *length the sum of its weights.  Among equal
 * chains the one through lower indexes wins.  Returns false (nothing
 * allocated) on a cycle; an empty graph gives an empty path.
 */
bool ry_graph_critical_path(const struct ry_graph *g, const double *weight, size_t **path,
			    size_t *npath, double *length) RY_MUST_CHECK;

enum ry_graph_direction {
	RY_GRAPH_DOWNSTREAM,	/* follow edges forward: what depends on the seeds */
	RY_GRAPH_UPSTREAM,	/* follow edges backward: what the seeds depend on */
};

/*
 * Marks every vertex reachable from the seeds (the seeds included) in
 * mark[0..n), which the caller zeroes or pre-marks; returns how many were
 * newly marked.  Works on cyclic graphs too.
 */
size_t ry_graph_reach(const struct ry_graph *g, const size_t *seeds, size_t nseeds,
		      enum ry_graph_direction dir, bool *mark);

/*
 * Appends a cycle to b as "a -> b -> c -> a".  Cycles longer than
 * RY_GRAPH_CYCLE_SHOWN names keep the first and last few names and say how
 * long they are: "a -> b -> c -> ... -> x -> y -> a (5000 tasks)", so a
 * huge ring gives a short message.  names[v] names vertex v.
 */
#define RY_GRAPH_CYCLE_SHOWN 8
void ry_graph_format_cycle(struct ry_buf *b, const char *const *names, const size_t *cycle,
			   size_t len);

#endif
