/*
 * Unit tests for pkg/graph.  Requirements: a topological order puts every
 * upstream first; a cycle is found exactly when there is one, its path
 * follows real edges and is the one the database reports; upward rank and
 * the critical path are the longest weighted chains; reachability follows
 * edges in the asked direction; long cycles print short.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"

static struct ry_graph make(size_t n, size_t m, const size_t *up, const size_t *down)
{
	struct ry_graph g;
	assert_true(ry_graph_init(&g, n, m, up, down));
	return g;
}

static void test_init_refuses_unknown_vertices(void **state)
{
	(void)state;
	struct ry_graph g;
	size_t up[] = { 0 }, down[] = { 2 };
	assert_false(ry_graph_init(&g, 2, 1, up, down));
	assert_null(g.out);
	ry_graph_release(&g);
}

static void test_topo_order_puts_upstreams_first(void **state)
{
	(void)state;
	/* 4 -> 2 -> 0, 4 -> 1, 3 -> 1: listed out of order on purpose */
	size_t up[] = { 2, 4, 4, 3 }, down[] = { 0, 2, 1, 1 };
	struct ry_graph g = make(5, 4, up, down);
	size_t order[5], where[5];
	assert_int_equal(ry_graph_topo_order(&g, order), 5);
	for (size_t i = 0; i < 5; i++)
		where[order[i]] = i;
	for (size_t k = 0; k < 4; k++)
		assert_true(where[up[k]] < where[down[k]]);
	/* FIFO seeded in index order, as validate_pipeline does */
	assert_int_equal(order[0], 3);
	assert_int_equal(order[1], 4);
	ry_graph_release(&g);
}

/* Checks that c[0..len) is a cycle along g's edges. */
static void assert_is_cycle(const struct ry_graph *g, const size_t *c, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		size_t a = c[i], b = c[(i + 1) % len];
		bool edge = false;
		for (size_t k = g->out_start[a]; k < g->out_start[a + 1]; k++)
			edge |= g->out[k] == b;
		if (!edge)
			fail_msg("no edge %zu -> %zu in the reported cycle", a, b);
	}
}

static void test_cycles_are_found_with_their_path(void **state)
{
	(void)state;
	size_t *c = NULL;

	/* acyclic diamond: none */
	size_t du[] = { 0, 0, 1, 2 }, dd[] = { 1, 2, 3, 3 };
	struct ry_graph g = make(4, 4, du, dd);
	assert_int_equal(ry_graph_find_cycle(&g, &c), 0);
	assert_null(c);
	ry_graph_release(&g);

	/* 0 -> 1 -> 2 -> 0 below a root 3 -> 0: the cycle, not the root */
	size_t cu[] = { 0, 1, 2, 3 }, cd[] = { 1, 2, 0, 0 };
	g = make(4, 4, cu, cd);
	size_t len = ry_graph_find_cycle(&g, &c);
	assert_int_equal(len, 3);
	assert_is_cycle(&g, c, len);
	/* as the database prints it: walk up from task 0 (the lowest left),
	 * the repeat is 0, printed forward from there */
	assert_int_equal(c[0], 0);
	assert_int_equal(c[1], 1);
	assert_int_equal(c[2], 2);
	free(c);
	ry_graph_release(&g);

	/* self loop */
	size_t su[] = { 1 }, sd[] = { 1 };
	g = make(2, 1, su, sd);
	assert_int_equal(ry_graph_find_cycle(&g, &c), 1);
	assert_int_equal(c[0], 1);
	free(c);
	ry_graph_release(&g);
}

static void test_a_huge_ring_is_found_in_linear_time_and_prints_short(void **state)
{
	(void)state;
	enum { N = 200000 };
	size_t *up = malloc(N * sizeof(size_t)), *down = malloc(N * sizeof(size_t));
	char **names = malloc(N * sizeof(char *));
	for (size_t i = 0; i < N; i++) {
		up[i] = i;
		down[i] = (i + 1) % N;
		names[i] = ry_asprintf("t%zu", i);
	}
	struct ry_graph g = make(N, N, up, down);
	size_t *c = NULL, len = ry_graph_find_cycle(&g, &c);
	assert_int_equal(len, N);
	assert_is_cycle(&g, c, len);

	struct ry_buf b = RY_BUF_INIT;
	ry_graph_format_cycle(&b, (const char *const *)names, c, len);
	assert_string_equal(b.data, "t0 -> t1 -> t2 -> t3 -> ... -> t199997 -> t199998 -> "
				    "t199999 -> t0 (200000 tasks)");
	ry_buf_release(&b);
	free(c);
	ry_graph_release(&g);
	for (size_t i = 0; i < N; i++)
		free(names[i]);
	free(names);
	free(up);
	free(down);
}

static void test_short_cycles_print_whole(void **state)
{
	(void)state;
	const char *names[] = { "build:a", "build:b", "build:c" };
	size_t c[] = { 1, 2, 0 };
	struct ry_buf b = RY_BUF_INIT;
	ry_graph_format_cycle(&b, names, c, 3);
	assert_string_equal(b.data, "build:b -> build:c -> build:a -> build:b");
	ry_buf_release(&b);
}

static void test_upward_rank_is_weight_plus_heaviest_path_below(void **state)
{
	(void)state;
	/* 0 -> 1 -> 3, 0 -> 2 -> 3 */
	size_t up[] = { 0, 0, 1, 2 }, down[] = { 1, 2, 3, 3 };
	double w[] = { 1, 5, 2, 1 }, rank[4];
	struct ry_graph g = make(4, 4, up, down);
	assert_true(ry_graph_upward_rank(&g, w, rank));
	assert_true(rank[3] == 1 && rank[2] == 3 && rank[1] == 6 && rank[0] == 7);
	ry_graph_release(&g);

	size_t cu[] = { 0, 1 }, cd[] = { 1, 0 };
	g = make(2, 2, cu, cd);
	assert_false(ry_graph_upward_rank(&g, w, rank));
	ry_graph_release(&g);
}

struct cp_case {
	const char *what;
	size_t n;
	double dur[6];
	size_t nedges;
	size_t up[8];
	size_t down[8];
	bool ok;
	double length;
	size_t npath;
	size_t path[6];
};

static void test_critical_path_is_the_longest_chain(void **state)
{
	(void)state;
	static const struct cp_case cases[] = {
		{ "empty graph", 0, { 0 }, 0, { 0 }, { 0 }, true, 0, 0, { 0 } },
		{ "single task", 1, { 2.5 }, 0, { 0 }, { 0 }, true, 2.5, 1, { 0 } },
		{ "chain", 3, { 1, 2, 3 }, 2, { 0, 1 }, { 1, 2 }, true, 6, 3, { 0, 1, 2 } },
		{ "diamond takes the heavy side", 4, { 1, 1, 5, 1 }, 4,
		  { 0, 0, 1, 2 }, { 1, 2, 3, 3 }, true, 7, 3, { 0, 2, 3 } },
		{ "independent tasks: the longest alone", 3, { 1, 4, 2 }, 0, { 0 }, { 0 },
		  true, 4, 1, { 1 } },
		{ "tie goes to lower indexes", 4, { 1, 2, 2, 1 }, 4,
		  { 0, 0, 1, 2 }, { 1, 2, 3, 3 }, true, 4, 3, { 0, 1, 3 } },
		{ "edges listed out of order", 3, { 1, 1, 1 }, 2, { 1, 0 }, { 2, 1 },
		  true, 3, 3, { 0, 1, 2 } },
		{ "cycle", 3, { 1, 1, 1 }, 3, { 0, 1, 2 }, { 1, 2, 0 }, false, 0, 0, { 0 } },
		{ "self loop", 2, { 1, 1 }, 1, { 1 }, { 1 }, false, 0, 0, { 0 } },
	};
	for (size_t c = 0; c < RY_ARRAY_SIZE(cases); c++) {
		const struct cp_case *k = &cases[c];
		struct ry_graph g = make(k->n, k->nedges, k->up, k->down);
		size_t *path = NULL, npath = 99;
		double length = -1;
		bool ok = ry_graph_critical_path(&g, k->dur, &path, &npath, &length);
		ry_graph_release(&g);
		if (ok != k->ok)
			fail_msg("%s: returned %d", k->what, ok);
		if (!ok) {
			assert_null(path);
			continue;
		}
		if (npath != k->npath || length != k->length)
			fail_msg("%s: %zu tasks, %.2f long", k->what, npath, length);
		for (size_t i = 0; i < npath; i++)
			if (path[i] != k->path[i])
				fail_msg("%s: path[%zu] = %zu", k->what, i, path[i]);
		free(path);
	}
}

static void test_reach_follows_edges_in_the_asked_direction(void **state)
{
	(void)state;
	/* lib(0) -> svc(1) -> app(2); lib(0) -> other(3); 4 isolated; 2 -> 1 (cycle) */
	size_t up[] = { 0, 1, 0, 2 }, down[] = { 1, 2, 3, 1 };
	struct ry_graph g = make(5, 4, up, down);
	bool mark[5] = { 0 };
	size_t seed = 0;
	assert_int_equal(ry_graph_reach(&g, &seed, 1, RY_GRAPH_DOWNSTREAM, mark), 4);
	assert_true(mark[0] && mark[1] && mark[2] && mark[3] && !mark[4]);

	memset(mark, 0, sizeof(mark));
	seed = 2;
	assert_int_equal(ry_graph_reach(&g, &seed, 1, RY_GRAPH_UPSTREAM, mark), 3);
	assert_true(mark[0] && mark[1] && mark[2] && !mark[3] && !mark[4]);

	/* pre-marked vertices are neither counted nor walked through */
	memset(mark, 0, sizeof(mark));
	mark[1] = true;
	seed = 0;
	assert_int_equal(ry_graph_reach(&g, &seed, 1, RY_GRAPH_DOWNSTREAM, mark), 2);
	assert_false(mark[2]);
	ry_graph_release(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_refuses_unknown_vertices),
		cmocka_unit_test(test_topo_order_puts_upstreams_first),
		cmocka_unit_test(test_cycles_are_found_with_their_path),
		cmocka_unit_test(test_a_huge_ring_is_found_in_linear_time_and_prints_short),
		cmocka_unit_test(test_short_cycles_print_whole),
		cmocka_unit_test(test_upward_rank_is_weight_plus_heaviest_path_below),
		cmocka_unit_test(test_critical_path_is_the_longest_chain),
		cmocka_unit_test(test_reach_follows_edges_in_the_asked_direction),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
