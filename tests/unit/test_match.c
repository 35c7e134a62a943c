/*
 * Unit tests for pkg/match (only_if_changed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

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
		if (ry_match_test(m, matches[i].path) != matches[i].want)
			fail_msg("%s on %s: want %d", matches[i].pattern, matches[i].path,
				 matches[i].want);
		ry_match_free(m);
	}
}

static void any_of_many_paths(void **state)
{
	(void)state;
	char *err = NULL;
	char *paths[] = { (char *)"README.md", (char *)"services/search/idx.go" };
	struct ry_match *m = ry_match_compile("^services/search/", &err);
	assert_non_null(m);
	assert_true(ry_match_any(m, paths, 2));
	assert_false(ry_match_any(m, paths, 1));
	assert_false(ry_match_any(m, paths, 0));
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
		cmocka_unit_test(any_of_many_paths),
		cmocka_unit_test(bad_pattern_says_what_and_where),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
