/*
 * Unit tests for pkg/sched: which of the locked candidates an agent takes.
 * Requirements: priority order is kept; nothing taken exceeds free slots,
 * cpu or memory; a task too big to fit does not block smaller ones after it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sched/sched.h"

struct choose_case {
	const char *what;
	struct ry_sched_capacity cap;
	struct ry_sched_candidate c[6];
	size_t n;
	size_t want[6];
	size_t nwant;
};

static const struct choose_case cases[] = {
	{ "nothing offered, nothing taken", { 4, 4, 4096 }, { { 0 } }, 0, { 0 }, 0 },
	{ "all fit: taken in the order given", { 4, 8, 4096 },
	  { { 10, 1, 100 }, { 11, 1, 100 }, { 12, 1, 100 } }, 3, { 0, 1, 2 }, 3 },
	{ "slots cap the count", { 2, 8, 4096 },
	  { { 10, 1, 100 }, { 11, 1, 100 }, { 12, 1, 100 } }, 3, { 0, 1 }, 2 },
	{ "cpu: a big task is passed over, smaller ones behind it still go", { 4, 3, 4096 },
	  { { 10, 2, 100 }, { 11, 2, 100 }, { 12, 1, 100 } }, 3, { 0, 2 }, 2 },
	{ "memory is a limit of its own", { 4, 8, 1000 },
	  { { 10, 1, 800 }, { 11, 1, 300 }, { 12, 1, 200 } }, 3, { 0, 2 }, 2 },
	{ "exact fit is a fit", { 1, 2, 512 }, { { 10, 2, 512 } }, 1, { 0 }, 1 },
	{ "no free slot takes nothing", { 0, 8, 4096 }, { { 10, 1, 1 } }, 1, { 0 }, 0 },
};

static void choose_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct choose_case *tc = &cases[i];
		size_t got[6] = { 0 };
		size_t k = ry_sched_choose(&tc->cap, tc->c, tc->n, got);
		if (k != tc->nwant)
			fail_msg("%s: took %zu, want %zu", tc->what, k, tc->nwant);
		for (size_t j = 0; j < k; j++)
			if (got[j] != tc->want[j])
				fail_msg("%s: pick %zu is #%zu, want #%zu", tc->what, j, got[j], tc->want[j]);
	}
}

static void never_exceeds_capacity(void **state)
{
	(void)state;
	struct ry_sched_candidate c[64];
	size_t got[64];
	for (int i = 0; i < 64; i++)
		c[i] = (struct ry_sched_candidate){ i, 1 + i % 5, 64 * (1 + i % 7) };
	struct ry_sched_capacity cap = { 20, 30, 2000 };
	size_t k = ry_sched_choose(&cap, c, 64, got);
	int cpu = 0;
	long mem = 0;
	for (size_t j = 0; j < k; j++) {
		cpu += c[got[j]].cpu;
		mem += c[got[j]].mem_mb;
		if (j)
			assert_true(got[j] > got[j - 1]);	/* order kept */
	}
	assert_true(k <= 20);
	assert_true(cpu <= 30);
	assert_true(mem <= 2000);
	assert_true(k > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(choose_table),
		cmocka_unit_test(never_exceeds_capacity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
