/*
 * Unit tests for the worker's task table (pkg/worker/tasks.c): every task
 * is on exactly one phase list, found by (id, attempt) whatever the table's
 * size, counted per phase, moved in O(1) keeping list order, and what
 * queued and running tasks hold is what capacity accounting sees.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "worker/tasks.h"

static struct ry_task *task(int64_t id, int attempt, int cpu, int mem)
{
	struct ry_task *t = ry_calloc(1, sizeof(*t));
	t->id = id;
	t->attempt = attempt;
	t->cpu = cpu;
	t->mem_mb = mem;
	return t;
}

static void free_task(struct ry_task *t)
{
	free(t);
}

/* The ids on a phase's list, in order, as "1 2 3". */
static char *ids(const struct ry_task_table *tt, enum ry_task_phase p)
{
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_puts(&b, "");
	for (struct ry_task *t = ry_task_table_first(tt, p); t; t = t->next)
		ry_buf_printf(&b, "%s%lld", b.len ? " " : "", (long long)t->id);
	return ry_buf_detach(&b);
}

static void assert_ids(const struct ry_task_table *tt, enum ry_task_phase p, const char *want)
{
	char *got = ids(tt, p);
	assert_string_equal(got, want);
	free(got);
}

static void phases_keep_order_and_counts(void **state)
{
	(void)state;
	struct ry_task_table tt;
	ry_task_table_init(&tt);
	struct ry_task *t[5];
	for (int i = 0; i < 5; i++) {
		t[i] = task(i + 1, 1, 1, 100);
		ry_task_table_add(&tt, t[i], RY_TASK_QUEUED);
	}
	assert_ids(&tt, RY_TASK_QUEUED, "1 2 3 4 5");
	ry_task_table_move(&tt, t[1], RY_TASK_RUNNING, false);
	ry_task_table_move(&tt, t[3], RY_TASK_RUNNING, false);
	assert_ids(&tt, RY_TASK_QUEUED, "1 3 5");
	assert_ids(&tt, RY_TASK_RUNNING, "2 4");
	ry_task_table_move(&tt, t[3], RY_TASK_DONE, false);
	ry_task_table_move(&tt, t[1], RY_TASK_DONE, false);
	assert_ids(&tt, RY_TASK_DONE, "4 2");
	/* A batch in flight goes back to the front, in its order. */
	ry_task_table_move(&tt, t[3], RY_TASK_SENDING, false);
	ry_task_table_move(&tt, t[1], RY_TASK_SENDING, false);
	ry_task_table_move(&tt, t[4], RY_TASK_DONE, false);
	ry_task_table_move(&tt, t[1], RY_TASK_DONE, true);
	ry_task_table_move(&tt, t[3], RY_TASK_DONE, true);
	assert_ids(&tt, RY_TASK_DONE, "4 2 5");
	assert_int_equal(ry_task_table_count(&tt, RY_TASK_QUEUED), 2);
	assert_int_equal(ry_task_table_count(&tt, RY_TASK_RUNNING), 0);
	assert_int_equal(ry_task_table_count(&tt, RY_TASK_DONE), 3);
	assert_int_equal(ry_task_table_count(&tt, RY_TASK_SENDING), 0);
	assert_int_equal(tt.n, 5);
	ry_task_table_remove(&tt, t[1]);
	free(t[1]);
	assert_ids(&tt, RY_TASK_DONE, "4 5");
	assert_int_equal(tt.n, 4);
	ry_task_table_release(&tt, free_task);
}

static void found_by_id_and_attempt_at_any_size(void **state)
{
	(void)state;
	struct ry_task_table tt;
	ry_task_table_init(&tt);
	enum { N = 5000 };
	for (int i = 0; i < N; i++) {
		ry_task_table_add(&tt, task(1000 + i, 1, 1, 1), RY_TASK_RUNNING);
		ry_task_table_add(&tt, task(1000 + i, 2, 1, 1), RY_TASK_DONE);
	}
	assert_true(tt.nbuckets >= 2 * N);	/* it grew */
	for (int i = 0; i < N; i += 7) {
		struct ry_task *a = ry_task_table_find(&tt, 1000 + i, 1);
		struct ry_task *b = ry_task_table_find(&tt, 1000 + i, 2);
		assert_non_null(a);
		assert_non_null(b);
		assert_int_equal(a->phase, RY_TASK_RUNNING);
		assert_int_equal(b->phase, RY_TASK_DONE);
	}
	assert_null(ry_task_table_find(&tt, 1000, 3));
	assert_null(ry_task_table_find(&tt, 999, 1));
	struct ry_task *x = ry_task_table_find(&tt, 1500, 1);
	ry_task_table_remove(&tt, x);
	free(x);
	assert_null(ry_task_table_find(&tt, 1500, 1));
	assert_non_null(ry_task_table_find(&tt, 1500, 2));
	ry_task_table_release(&tt, free_task);
}

static void queued_and_running_hold_capacity(void **state)
{
	(void)state;
	struct ry_task_table tt;
	ry_task_table_init(&tt);
	struct ry_task *a = task(1, 1, 2, 512), *b = task(2, 1, 3, 1024);
	ry_task_table_add(&tt, a, RY_TASK_QUEUED);
	ry_task_table_add(&tt, b, RY_TASK_QUEUED);
	assert_int_equal(tt.held_slots, 2);
	assert_int_equal(tt.held_cpu, 5);
	assert_int_equal(tt.held_mem_mb, 1536);
	ry_task_table_move(&tt, a, RY_TASK_RUNNING, false);
	assert_int_equal(tt.held_cpu, 5);
	/* A finished task holds nothing while its result waits. */
	ry_task_table_move(&tt, a, RY_TASK_DONE, false);
	assert_int_equal(tt.held_slots, 1);
	assert_int_equal(tt.held_cpu, 3);
	assert_int_equal(tt.held_mem_mb, 1024);
	ry_task_table_move(&tt, a, RY_TASK_SENDING, false);
	ry_task_table_move(&tt, b, RY_TASK_RELEASE, false);
	assert_int_equal(tt.held_slots, 0);
	assert_int_equal(tt.held_cpu, 0);
	assert_int_equal(tt.held_mem_mb, 0);
	ry_task_table_remove(&tt, a);
	free(a);
	ry_task_table_release(&tt, free_task);
}

/* A task claimed ahead holds nothing while queued and is counted as
 * waiting for the next free capacity, until it takes a slot or leaves. */
static void claimed_ahead_waits_until_it_takes_a_slot(void **state)
{
	(void)state;
	struct ry_task_table tt;
	ry_task_table_init(&tt);
	struct ry_task *a = task(1, 1, 2, 512), *b = task(2, 1, 3, 1024);
	a->ahead = a->waits_slot = true;
	b->ahead = b->waits_slot = true;
	ry_task_table_add(&tt, a, RY_TASK_QUEUED);
	ry_task_table_add(&tt, b, RY_TASK_QUEUED);
	assert_int_equal(tt.held_slots, 0);
	assert_int_equal(tt.waiting_slots, 2);
	assert_int_equal(tt.waiting_cpu, 5);
	assert_int_equal(tt.waiting_mem_mb, 1536);
	ry_task_table_take_slot(&tt, a);
	assert_false(a->ahead || a->waits_slot);
	assert_int_equal(tt.held_slots, 1);
	assert_int_equal(tt.held_cpu, 2);
	assert_int_equal(tt.waiting_slots, 1);
	assert_int_equal(tt.waiting_cpu, 3);
	/* Handed back (or forgotten): it waits no more. */
	ry_task_table_move(&tt, b, RY_TASK_RELEASE, false);
	assert_int_equal(tt.waiting_slots, 0);
	assert_int_equal(tt.waiting_mem_mb, 0);
	ry_task_table_remove(&tt, a);
	free(a);
	assert_int_equal(tt.held_slots, 0);
	ry_task_table_release(&tt, free_task);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(phases_keep_order_and_counts),
		cmocka_unit_test(found_by_id_and_attempt_at_any_size),
		cmocka_unit_test(queued_and_running_hold_capacity),
		cmocka_unit_test(claimed_ahead_waits_until_it_takes_a_slot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
