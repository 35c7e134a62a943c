/*
 * Unit tests for pkg/forecast/history: the JSON-lines format of `railyard
 * history import` — what a good line gives, and that every bad line is
 * refused with FILE:LINE and the field named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "forecast/history.h"

static bool parse(const char *text, struct ry_history *h, char **err)
{
	return ry_history_parse("runs.jsonl", text, strlen(text), h, err);
}

static void good_lines_give_runs(void **state)
{
	(void)state;
	struct ry_history h = { 0 };
	char *err = NULL;
	const char *text =
		"# comment\n"
		"\n"
		"{\"family\": \"shop\", \"task\": \"build:cart\", \"start\": \"2026-01-05T10:00:00Z\", "
		"\"end\": \"2026-01-05T10:03:12.5Z\", \"outcome\": \"success\", \"run\": 42, "
		"\"kind\": \"build\", \"service\": \"cart\", \"queued\": \"2026-01-05T11:59:00+02:00\", "
		"\"agent_class\": \"linux/x86_64/8c\"}\r\n"
		"{\"family\": \"shop\", \"task\": \"test:cart\", \"version\": \"2\", \"start\": 100, "
		"\"end\": 160.25, \"outcome\": \"failure\", \"host\": {\"os\": \"linux\", \"arch\": "
		"\"arm64\", \"cores\": 4, \"labels\": [\"gpu\", \"docker\", \"linux\", \"docker\"]}}";
	assert_true(parse(text, &h, &err));
	assert_int_equal(h.n, 2);
	struct ry_history_run *a = &h.runs[0], *b = &h.runs[1];
	assert_string_equal(a->family, "shop");
	assert_string_equal(a->task, "build:cart");
	assert_string_equal(a->version, "1");
	assert_string_equal(a->outcome, "succeeded");
	assert_string_equal(a->run_ref, "42");
	assert_string_equal(a->service, "cart");
	assert_string_equal(a->agent_class, "linux/x86_64/8c");
	assert_int_equal(a->line, 3);
	assert_true(a->has_queued);
	assert_true(a->finished - a->started > 192.49 && a->finished - a->started < 192.51);
	assert_true(a->started - a->queued > 59.9 && a->started - a->queued < 60.1);
	assert_string_equal(b->outcome, "failed");
	assert_string_equal(b->version, "2");
	assert_null(b->run_ref);
	assert_false(b->has_queued);
	assert_string_equal(b->agent_class, "linux/arm64/4c/docker,gpu");
	assert_true(b->finished - b->started > 60.24 && b->finished - b->started < 60.26);
	ry_history_release(&h);
}

static void times_in_rfc3339(void **state)
{
	(void)state;
	double t;
	assert_true(ry_history_parse_time("1970-01-01T00:00:00Z", &t));
	assert_true(t == 0);
	assert_true(ry_history_parse_time("2024-02-29 12:00:00+01:00", &t));
	assert_true(t == 1709204400);
	assert_true(ry_history_parse_time("2024-02-29T12:00:00.75-00:30", &t));
	assert_true(t == 1709209800.75);
	static const char *const bad[] = { "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z",
		"2024-01-01T24:00:00Z", "2024-01-01T00:00:00", "2024-01-01", "yesterday",
		"2024-01-01T00:00:00Zjunk", "2024-01-01T00:00:00+1", "1969-12-31T23:59:59Z" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(ry_history_parse_time(bad[i], &t));
}

/* Each bad line (preceded by a good one) and what the error must say. */
static void bad_lines_name_file_line_and_field(void **state)
{
	(void)state;
	static const char *const good =
		"{\"family\": \"f\", \"task\": \"t\", \"start\": 1, \"end\": 2, \"outcome\": \"succeeded\"}\n";
	static const struct {
		const char *line;
		const char *error;
	} cases[] = {
		{ "{\"family\": \"f\", \"task\": \"t\", \"start\": 1, \"end\": 2", "runs.jsonl:2: invalid JSON" },
		{ "[1, 2]", "runs.jsonl:2: each line must be a JSON object" },
		{ "{\"task\": \"t\", \"start\": 1, \"end\": 2, \"outcome\": \"failed\"}", "runs.jsonl:2: missing \"family\"" },
		{ "{\"family\": \"\", \"task\": \"t\", \"start\": 1, \"end\": 2, \"outcome\": \"failed\"}", "runs.jsonl:2: \"family\" must be a non-empty string" },
		{ "{\"family\": \"f\", \"task\": \"t\", \"start\": 3, \"end\": 2, \"outcome\": \"failed\"}", "runs.jsonl:2: \"end\" is before \"start\"" },
		{ "{\"family\": \"f\", \"task\": \"t\", \"start\": \"soon\", \"end\": 2, \"outcome\": \"failed\"}", "runs.jsonl:2: \"start\" must be an RFC 3339 time" },
		{ "{\"family\": \"f\", \"task\": \"t\", \"start\": 1, \"end\": 2, \"outcome\": \"maybe\"}", "runs.jsonl:2: \"outcome\" must be" },
		{ "{\"family\": \"f\", \"task\": \"t\", \"start\": 1, \"end\": 2, \"outcome\": \"failed\", \"x\": 1}", "runs.jsonl:2: unknown key \"x\"" },
		{ "{\"family\": \"f\", \"task\": \"t\", \"start\": 1, \"end\": 2, \"outcome\": \"failed\", \"kind\": \"fun\"}", "runs.jsonl:2: \"kind\" must be" },
		{ "{\"family\": \"f\", \"task\": \"t\", \"start\": 1, \"end\": 2, \"outcome\": \"failed\", \"host\": {\"os\": \"linux\"}}", "runs.jsonl:2: \"host\" needs" },
		{ "{\"family\": \"f\", \"task\": \"t\", \"start\": 1, \"end\": 2, \"outcome\": \"failed\", \"host\": {\"os\": \"l\", \"arch\": \"a\", \"cores\": 0}}", "runs.jsonl:2: \"host.cores\"" },
		{ "{\"family\": \"f\", \"task\": \"t\", \"start\": 1, \"end\": 2, \"outcome\": \"failed\", \"agent_class\": \"x\", \"host\": {}}", "runs.jsonl:2: give \"agent_class\" or \"host\"" },
		{ "{\"family\": \"f\", \"task\": \"t\", \"start\": 1, \"end\": 2, \"outcome\": \"failed\", \"queued\": 5}", "runs.jsonl:2: \"queued\" is after \"start\"" },
		{ "{\"family\": \"f\", \"family\": \"g\", \"task\": \"t\", \"start\": 1, \"end\": 2, \"outcome\": \"failed\"}", "runs.jsonl:2: invalid JSON" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ry_history h = { 0 };
		char *err = NULL;
		char *text = malloc(strlen(good) + strlen(cases[i].line) + 1);
		strcpy(text, good);
		strcat(text, cases[i].line);
		assert_false(parse(text, &h, &err));
		assert_non_null(err);
		if (strncmp(err, cases[i].error, strlen(cases[i].error)) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s...\"", i, err, cases[i].error);
		assert_int_equal(h.n, 1);	/* the good line before it */
		free(err);
		free(text);
		ry_history_release(&h);
	}
}

static void agent_class_matches_sql(void **state)
{
	(void)state;
	struct ry_strlist l = { 0 };
	char *c = ry_history_agent_class("linux", "x86_64", 8, &l);
	assert_string_equal(c, "linux/x86_64/8c");
	free(c);
	ry_strlist_add(&l, "x86_64");
	ry_strlist_add(&l, "ui-tests");
	ry_strlist_add(&l, "Docker");
	ry_strlist_add(&l, "linux");
	c = ry_history_agent_class("linux", "x86_64", 2, &l);
	assert_string_equal(c, "linux/x86_64/2c/Docker,ui-tests");	/* byte order, as COLLATE "C" */
	free(c);
	ry_strlist_release(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_lines_give_runs),
		cmocka_unit_test(times_in_rfc3339),
		cmocka_unit_test(bad_lines_name_file_line_and_field),
		cmocka_unit_test(agent_class_matches_sql),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
