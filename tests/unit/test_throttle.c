/*
 * Unit tests for pkg/throttle: the AIMD concurrency limit.  Requirements:
 * high pressure halves the limit (never below min_slots) at the first step;
 * low pressure raises it by one per interval only while it is in use and
 * never above slots; a steady moderate load does not move it; steps closer
 * than the interval change nothing; each source (PSI cpu, memory, io,
 * MemAvailable, runnable per core without PSI) counts; direction turns are
 * reported (the audit rows).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "throttle/throttle.h"

static struct ry_throttle make(int min, int max)
{
	struct ry_throttle_config c;
	struct ry_throttle t;
	ry_throttle_config_default(&c);
	c.min_slots = min;
	c.max_slots = max;
	c.interval_ms = 1000;
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
	int l = ry_throttle_step(t, &p, in_use, now, &changed, &tr, why, sizeof(why));
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
	assert_int_equal(step(&t, psi(95, 0, 0), 4, 999, NULL), 4);
	assert_int_equal(step(&t, psi(95, 0, 0), 4, 1000, NULL), 2);
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
		ry_throttle_step(&t, &p, 5, i * 1000, &changed, &turned, why, sizeof(why));
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(high_pressure_halves_down_to_min),
		cmocka_unit_test(low_pressure_adds_one_while_in_use),
		cmocka_unit_test(steps_closer_than_the_interval_do_nothing),
		cmocka_unit_test(moderate_load_does_not_oscillate),
		cmocka_unit_test(every_source_counts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
