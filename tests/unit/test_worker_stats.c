/*
 * Unit tests for the worker's --stats figures (pkg/worker/stats.c): the
 * file is JSON whatever the agent is called, claim latencies are kept in
 * bounded memory however many claims there were, and nothing is recorded
 * unless --stats asked for it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "worker/stats.h"

static void json_whatever_the_name(void **state)
{
	(void)state;
	struct ry_worker_stats *s = ry_calloc(1, sizeof(*s));
	ry_worker_stats_init(s, true, 42);
	ry_worker_stats_claim(s, 1.5);
	s->tasks_reported = 7;
	const char *name = "we\"ird\\name\n";
	char *text = ry_worker_stats_json(s, name);
	json_error_t e;
	json_t *o = json_loads(text, 0, &e);
	if (!o)
		fail_msg("not JSON (%s): %s", e.text, text);
	assert_string_equal(json_string_value(json_object_get(o, "agent")), name);
	assert_int_equal(json_integer_value(json_object_get(o, "tasks_reported")), 7);
	assert_int_equal(json_integer_value(json_object_get(o, "claims")), 1);
	assert_true(json_real_value(json_object_get(o, "claim_ms_p99")) == 1.5);
	json_decref(o);
	free(text);
	free(s);
}

static void bounded_and_representative(void **state)
{
	(void)state;
	struct ry_worker_stats *s = ry_calloc(1, sizeof(*s));
	ry_worker_stats_init(s, true, 7);
	/* 100,000 claims, uniformly 0..99.999 ms: the reservoir keeps 4,096. */
	for (int i = 0; i < 100000; i++)
		ry_worker_stats_claim(s, (double)((i * 7919) % 100000) / 1000.0);
	assert_int_equal(s->claims, 100000);
	assert_true(s->claim_ms_max > 99.9);
	char *text = ry_worker_stats_json(s, "a");
	json_t *o = json_loads(text, 0, NULL);
	assert_non_null(o);
	double p50 = json_real_value(json_object_get(o, "claim_ms_p50"));
	double p99 = json_real_value(json_object_get(o, "claim_ms_p99"));
	/* A uniform sample of 4,096 puts these within a few percent. */
	if (p50 < 45 || p50 > 55 || p99 < 96 || p99 > 100)
		fail_msg("p50 %.2f, p99 %.2f from a uniform 0..100 ms", p50, p99);
	json_decref(o);
	free(text);
	free(s);
}

static void disabled_records_nothing(void **state)
{
	(void)state;
	struct ry_worker_stats *s = ry_calloc(1, sizeof(*s));
	ry_worker_stats_init(s, false, 1);
	for (int i = 0; i < 10; i++)
		ry_worker_stats_claim(s, 3.0);
	assert_int_equal(s->claims, 0);
	assert_true(s->claim_ms_max == 0);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(json_whatever_the_name),
		cmocka_unit_test(bounded_and_representative),
		cmocka_unit_test(disabled_records_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
