/*
 * Unit tests for pkg/match (only_if_changed): patterns match paths as
 * PCRE2 does, a bad pattern says what and where, and a pattern that
 * backtracks without end is stopped by its limits and reported as an
 * error — never as "no match" — quickly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "match/match.h"

struct match_case {
	const char *pattern;
	const char *path;
	bool want;
};

static const struct match_case matches[] = {
	{ "^services/cart/", "services/cart/main.go", true },
	{ "^services/cart/", "services/cartography/x.go", false },
	{ "^services/cart/", "lib/services/cart/x.go", false },
	{ "\\.proto$", "api/v1/cart.proto", true },
	{ "\\.proto$", "api/v1/cart.proto.bak", false },
	{ "(?i)readme", "docs/README.md", true },
	{ "^(services|libs)/(?!legacy/)", "libs/common/a.c", true },
	{ "^(services|libs)/(?!legacy/)", "libs/legacy/a.c", false },
	{ "caf\\x{e9}", "docs/caf\xc3\xa9.md", true },	/* UTF-8 paths */
};

static void patterns_match_paths(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(matches) / sizeof(matches[0]); i++) {
		char *err = NULL;
		struct ry_match *m = ry_match_compile(matches[i].pattern, &err);
		if (!m)
			fail_msg("%s: %s", matches[i].pattern, err);
		int rc = ry_match_run(m, matches[i].path, &err);
		if (rc != (matches[i].want ? 1 : 0))
			fail_msg("%s on %s: got %d, want %d", matches[i].pattern, matches[i].path,
				 rc, matches[i].want);
		ry_match_free(m);
	}
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The example: the first alternative backtracks exponentially
 * before the second could match. */
static void a_runaway_pattern_is_an_error(void **state)
{
	(void)state;
	char *err = NULL;
	char path[128];
	memset(path, 'x', 60);
	strcpy(path + 60, "/z");
	struct ry_match *m = ry_match_compile("(x+x+)+y|z", &err);
	assert_non_null(m);
	double t0 = now_ms();
	assert_int_equal(ry_match_run(m, path, &err), -1);
	double took = now_ms() - t0;
	assert_string_equal(err, "match limit exceeded");
	free(err);
	err = NULL;
	/* The default limit keeps one match within milliseconds. */
	if (took > 50)
		fail_msg("the limited match took %.1f ms", took);
	/* A tighter limit is honoured. */
	ry_match_set_limits(m, 1000, RY_MATCH_DEPTH_DEFAULT);
	assert_int_equal(ry_match_run(m, path, &err), -1);
	free(err);
	err = NULL;
	/* The same pattern on a harmless path still answers. */
	assert_int_equal(ry_match_run(m, "docs/z", &err), 1);
	assert_int_equal(ry_match_run(m, "docs/a", &err), 0);
	/* The boolean forms say no when they cannot tell (documented). */
	assert_false(ry_match_test(m, path));
	assert_true(ry_match_test(m, "docs/z"));
	char *paths[] = { path, (char *)"docs/a", (char *)"docs/z" };
	assert_true(ry_match_any(m, paths, 3));
	assert_false(ry_match_any(m, paths, 2));
	ry_match_free(m);
}

static void bad_pattern_says_what_and_where(void **state)
{
	(void)state;
	char *err = NULL;
	assert_null(ry_match_compile("services/(cart", &err));
	assert_non_null(strstr(err, "missing closing parenthesis"));
	assert_non_null(strstr(err, "at offset 14"));
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(patterns_match_paths),
		cmocka_unit_test(a_runaway_pattern_is_an_error),
		cmocka_unit_test(bad_pattern_says_what_and_where),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
