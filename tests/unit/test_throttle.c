/*
 * Unit tests for pkg/throttle: the AIMD concurrency limit.  Requirements:
 * high pressure halves the limit (never below min_slots) at the first step;
 * low pressure raises it by one per interval only while it is in use and
 * never above slots; a steady moderate load does not move it; steps closer
 * than the interval change nothing; each source (PSI cpu, memory, io,
 * MemAvailable, runnable per core without PSI) counts; direction turns are
 * reported (the audit rows); slow start doubles from min_slots until the
 * first pressure; a raise admits only what fits in memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <string.h>

#include "throttle/throttle.h"

/* Without slow start: begins at max (slow start has its own tests). */
static struct ry_throttle make(int min, int max)
{
	struct ry_throttle_config c;
	struct ry_throttle t;
	ry_throttle_config_default(&c);
	c.min_slots = min;
	c.max_slots = max;
	c.interval_ms = 1000;
	c.slow_start = false;
	ry_throttle_init(&t, &c);
	return t;
}

static struct ry_pressure psi(double cpu, double mem, double io)
{
	struct ry_pressure p = { .have_psi = true, .cpu = cpu, .memory = mem, .io = io };
	return p;
}

static int step(struct ry_throttle *t, struct ry_pressure p, int in_use, int64_t now, bool *turned)
{
	bool changed, tr;
	char why[128];
	struct ry_throttle_load load = { .in_use = in_use };
	int l = ry_throttle_step(t, &p, &load, now, &changed, &tr, why, sizeof(why));
	if (turned)
		*turned = tr;
	return l;
}

static void high_pressure_halves_down_to_min(void **state)
{
	(void)state;
	struct ry_throttle t = make(2, 16);
	assert_int_equal(t.limit, 16);
	bool turned;
	assert_int_equal(step(&t, psi(95, 0, 0), 16, 0, &turned), 8);
	assert_true(turned);
	assert_int_equal(step(&t, psi(95, 0, 0), 8, 1000, &turned), 4);
	assert_false(turned);	/* still down: no new audit row */
	assert_int_equal(step(&t, psi(95, 0, 0), 4, 2000, NULL), 2);
	assert_int_equal(step(&t, psi(95, 0, 0), 2, 3000, NULL), 2);	/* min_slots */
	/* min 1 from 3: 1, then stays. */
	struct ry_throttle u = make(1, 3);
	assert_int_equal(step(&u, psi(0, 50, 0), 3, 0, NULL), 1);
	assert_int_equal(step(&u, psi(0, 50, 0), 1, 1000, NULL), 1);
}

static void low_pressure_adds_one_while_in_use(void **state)
{
	(void)state;
	struct ry_throttle t = make(1, 4);
	t.limit = 1;
	bool turned;
	assert_int_equal(step(&t, psi(5, 0, 0), 1, 0, &turned), 2);
	assert_true(turned);
	assert_int_equal(step(&t, psi(5, 0, 0), 2, 1000, &turned), 3);
	assert_false(turned);
	/* Not in use (1 of 3 held): no increase. */
	assert_int_equal(step(&t, psi(5, 0, 0), 1, 2000, NULL), 3);
	assert_int_equal(step(&t, psi(5, 0, 0), 3, 3000, NULL), 4);
	assert_int_equal(step(&t, psi(5, 0, 0), 4, 4000, NULL), 4);	/* slots */
	/* Down again: a turn. */
	assert_int_equal(step(&t, psi(5, 0, 90), 4, 5000, &turned), 2);
	assert_true(turned);
}

static void steps_closer_than_the_interval_do_nothing(void **state)
{
	(void)state;
	struct ry_throttle t = make(1, 8);
	assert_int_equal(step(&t, psi(95, 0, 0), 8, 0, NULL), 4);
	assert_int_equal(step(&t, psi(95, 0, 0), 4, 949, NULL), 4);
	/* A timer a little early (within 5 %) still steps. */
	assert_int_equal(step(&t, psi(95, 0, 0), 4, 997, NULL), 2);
}

/* A steady moderate load (between the thresholds) for many intervals:
 * the limit never moves, whatever it was. */
static void moderate_load_does_not_oscillate(void **state)
{
	(void)state;
	struct ry_throttle t = make(1, 8);
	t.limit = 5;
	int changes = 0;
	for (int i = 0; i < 100; i++) {
		bool changed, turned;
		char why[128];
		struct ry_pressure p = psi(45 + (i % 5), 0.5, 5);
		struct ry_throttle_load load = { .in_use = 5 };
		ry_throttle_step(&t, &p, &load, i * 1000, &changed, &turned, why, sizeof(why));
		changes += changed;
		if (i == 0)
			assert_non_null(strstr(why, "cpu some avg10"));
	}
	assert_int_equal(changes, 0);
	assert_int_equal(t.limit, 5);
}

static void every_source_counts(void **state)
{
	(void)state;
	struct ry_throttle_config c;
	char why[128];
	ry_throttle_config_default(&c);
	struct ry_pressure p = psi(0, 0, 0);
	assert_int_equal(ry_throttle_judge(&c, &p, why, sizeof(why)), RY_PRESSURE_LOW);
	p = psi(0, 20, 0);
	assert_int_equal(ry_throttle_judge(&c, &p, why, sizeof(why)), RY_PRESSURE_HIGH);
	assert_string_equal(why, "memory some avg10 20.0 > 10");
	p = psi(0, 0, 60);
	assert_int_equal(ry_throttle_judge(&c, &p, why, sizeof(why)), RY_PRESSURE_HIGH);
	/* MemAvailable 5 % of total: high even without PSI. */
	p = (struct ry_pressure){ .have_mem = true, .mem_total_kb = 1000, .mem_available_kb = 50 };
	assert_int_equal(ry_throttle_judge(&c, &p, why, sizeof(why)), RY_PRESSURE_HIGH);
	assert_string_equal(why, "MemAvailable 5.0% < 10%");
	p.mem_available_kb = 150;
	assert_int_equal(ry_throttle_judge(&c, &p, why, sizeof(why)), RY_PRESSURE_MODERATE);
	/* The worker's memory cgroup beside the host: the worse counts. */
	p.have_memcg = true;
	p.memcg_total_kb = 100;
	p.memcg_available_kb = 5;
	assert_int_equal(ry_throttle_judge(&c, &p, why, sizeof(why)), RY_PRESSURE_HIGH);
	assert_string_equal(why, "memory cgroup available 5.0% < 10%");
	p.memcg_available_kb = 90;
	assert_int_equal(ry_throttle_judge(&c, &p, why, sizeof(why)), RY_PRESSURE_MODERATE);
	assert_string_equal(why, "MemAvailable 15.0% between 10% and 20%");
	p.have_memcg = false;
	p.mem_available_kb = 900;
	assert_int_equal(ry_throttle_judge(&c, &p, why, sizeof(why)), RY_PRESSURE_LOW);
	/* Runnable per core only where PSI is absent. */
	p = (struct ry_pressure){ .have_runnable = true, .runnable_per_core = 3 };
	assert_int_equal(ry_throttle_judge(&c, &p, why, sizeof(why)), RY_PRESSURE_HIGH);
	p.have_psi = true;
	assert_int_equal(ry_throttle_judge(&c, &p, why, sizeof(why)), RY_PRESSURE_LOW);
	/* Nothing known: low (the limit grows back to slots). */
	p = (struct ry_pressure){ 0 };
	assert_int_equal(ry_throttle_judge(&c, &p, why, sizeof(why)), RY_PRESSURE_LOW);
}

/* Slow start: from min_slots, doubling per interval while in use and
 * low, never past slots; the first moderate reading ends it (one slot per
 * interval from then on). */
static void slow_start_doubles_until_pressure(void **state)
{
	(void)state;
	struct ry_throttle t = make(1, 16);
	t.cfg.slow_start = true;
	ry_throttle_init(&t, &t.cfg);
	assert_int_equal(t.limit, 1);
	bool turned;
	assert_int_equal(step(&t, psi(5, 0, 0), 1, 0, &turned), 2);
	assert_true(turned);
	assert_int_equal(step(&t, psi(5, 0, 0), 2, 1000, NULL), 4);
	assert_int_equal(step(&t, psi(5, 0, 0), 3, 2000, NULL), 4);	/* not all in use */
	assert_int_equal(step(&t, psi(5, 0, 0), 4, 3000, NULL), 8);
	assert_int_equal(step(&t, psi(50, 0, 0), 8, 4000, NULL), 8);	/* moderate: ends it */
	assert_int_equal(step(&t, psi(5, 0, 0), 8, 5000, NULL), 9);
	assert_int_equal(step(&t, psi(5, 0, 0), 9, 6000, NULL), 10);
	/* Doubling stops at slots. */
	struct ry_throttle u = make(2, 6);
	u.cfg.slow_start = true;
	ry_throttle_init(&u, &u.cfg);
	assert_int_equal(u.limit, 2);
	assert_int_equal(step(&u, psi(5, 0, 0), 2, 0, NULL), 4);
	assert_int_equal(step(&u, psi(5, 0, 0), 4, 1000, NULL), 6);
	/* It begins at start_slots (the worker's: the host's cores), within
	 * min_slots..slots. */
	struct ry_throttle c = make(1, 16);
	c.cfg.slow_start = true;
	c.cfg.start_slots = 4;
	ry_throttle_init(&c, &c.cfg);
	assert_int_equal(c.limit, 4);
	assert_int_equal(step(&c, psi(5, 0, 0), 4, 0, NULL), 8);
	c.cfg.start_slots = 32;
	ry_throttle_init(&c, &c.cfg);
	assert_int_equal(c.limit, 16);
	c.cfg.min_slots = 6;
	c.cfg.start_slots = 2;
	ry_throttle_init(&c, &c.cfg);
	assert_int_equal(c.limit, 6);
	/* High pressure in slow start halves and ends it. */
	struct ry_throttle v = make(1, 64);
	v.cfg.slow_start = true;
	ry_throttle_init(&v, &v.cfg);
	v.limit = 16;
	assert_int_equal(step(&v, psi(95, 0, 0), 16, 0, NULL), 8);
	assert_int_equal(step(&v, psi(5, 0, 0), 8, 1000, NULL), 9);
}

/* Unreadable pressure: slow start ends at slots, once. */
static void blind_ends_slow_start_at_slots(void **state)
{
	(void)state;
	struct ry_throttle t = make(1, 8);
	t.cfg.slow_start = true;
	ry_throttle_init(&t, &t.cfg);
	bool turned;
	assert_true(ry_throttle_blind(&t, &turned));
	assert_true(turned);
	assert_int_equal(t.limit, 8);
	assert_false(ry_throttle_blind(&t, &turned));
	/* Without slow start it is already there: nothing moves. */
	struct ry_throttle u = make(1, 8);
	u.limit = 3;
	assert_false(ry_throttle_blind(&u, &turned));
	assert_int_equal(u.limit, 3);
}

/* A raise admits only what fits above the ok share of available memory,
 * each task at the largest measured peak, after the growth the running
 * tasks still have to make; then memory, not doubling, sets the pace. */
static void raises_fit_in_memory(void **state)
{
	(void)state;
	struct ry_throttle_config c;
	ry_throttle_config_default(&c);	/* ok at 20 % available */
	/* 1000 MB, 700 available: 500 above the 200 kept. */
	struct ry_pressure p = { .have_mem = true, .mem_total_kb = 1000 * 1024,
				 .mem_available_kb = 700 * 1024 };
	struct ry_throttle_load load = { .in_use = 2, .task_mem_kb = 160 * 1024 };
	assert_int_equal(ry_throttle_mem_room(&c, &p, &load), 3);
	load.growth_kb = 200 * 1024;	/* two tasks still 100 MB short each */
	assert_int_equal(ry_throttle_mem_room(&c, &p, &load), 1);
	load.growth_kb = 600 * 1024;
	assert_int_equal(ry_throttle_mem_room(&c, &p, &load), 0);
	/* Nothing measured, or no memory reading: memory does not limit. */
	load.task_mem_kb = 0;
	assert_int_equal(ry_throttle_mem_room(&c, &p, &load), INT_MAX);
	load.task_mem_kb = 160 * 1024;
	p.have_mem = false;
	assert_int_equal(ry_throttle_mem_room(&c, &p, &load), INT_MAX);
	/* The cgroup's room where it is the smaller: 400 MB limit, 300
	 * available, 80 kept: one task of 160. */
	load.growth_kb = 0;
	p.have_memcg = true;
	p.memcg_total_kb = 400 * 1024;
	p.memcg_available_kb = 300 * 1024;
	assert_int_equal(ry_throttle_mem_room(&c, &p, &load), 1);
	p.have_mem = true;	/* the host's 3 do not raise it */
	assert_int_equal(ry_throttle_mem_room(&c, &p, &load), 1);
	p.have_memcg = false;

	/* In slow start at 4 of 16 with room for 1 more: 5, not 8, and
	 * slow start is over. */
	struct ry_throttle t = make(1, 16);
	t.cfg.slow_start = true;
	ry_throttle_init(&t, &t.cfg);
	t.limit = 4;
	p = (struct ry_pressure){ .have_psi = true, .cpu = 5, .have_mem = true,
				  .mem_total_kb = 1000 * 1024, .mem_available_kb = 400 * 1024 };
	load = (struct ry_throttle_load){ .in_use = 4, .task_mem_kb = 160 * 1024 };
	bool changed, turned;
	char why[128];
	assert_int_equal(ry_throttle_step(&t, &p, &load, 0, &changed, &turned, why, sizeof(why)), 5);
	assert_string_equal(why, "memory: room for 1 more task of 160 MB above 20% available");
	assert_false(t.slow);
	/* No room: the limit holds (and says why), it does not fall. */
	p.mem_available_kb = 300 * 1024;
	load.in_use = 5;
	assert_int_equal(ry_throttle_step(&t, &p, &load, 1000, &changed, &turned, why, sizeof(why)), 5);
	assert_false(changed);
	assert_true(t.mem_bound);	/* the worker shows why it holds */
	assert_string_equal(why, "memory: room for 0 more tasks of 160 MB above 20% available");
	/* Memory frees: the next step raises, and the flag goes. */
	p.mem_available_kb = 900 * 1024;
	assert_int_equal(ry_throttle_step(&t, &p, &load, 2000, &changed, &turned, why, sizeof(why)), 6);
	assert_false(t.mem_bound);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(high_pressure_halves_down_to_min),
		cmocka_unit_test(low_pressure_adds_one_while_in_use),
		cmocka_unit_test(steps_closer_than_the_interval_do_nothing),
		cmocka_unit_test(moderate_load_does_not_oscillate),
		cmocka_unit_test(every_source_counts),
		cmocka_unit_test(slow_start_doubles_until_pressure),
		cmocka_unit_test(raises_fit_in_memory),
		cmocka_unit_test(blind_ends_slow_start_at_slots),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
