/*
 * Unit tests for pkg/match (only_if_changed) and the PostgreSQL text[]
 * parser in pkg/db that feeds it the changed paths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "db/db.h"
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

struct array_case {
	const char *text;
	bool ok;
	size_t n;
	const char *items[4];
};

static const struct array_case arrays[] = {
	{ "{}", true, 0, { NULL } },
	{ "{a,b}", true, 2, { "a", "b" } },
	{ "{\"a b\",\"c,d\",\"e\\\"f\",\"g\\\\h\"}", true, 4, { "a b", "c,d", "e\"f", "g\\h" } },
	{ "{x,NULL,\"NULL\"}", true, 2, { "x", "NULL" } },
	{ "{\"K=V=W\",PATH=/bin}", true, 2, { "K=V=W", "PATH=/bin" } },
	{ "a,b", false, 0, { NULL } },
	{ "{\"open", false, 0, { NULL } },
};

static void pg_text_arrays_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) {
		struct ry_strlist l = { 0 };
		bool ok = ry_db_parse_text_array(arrays[i].text, &l);
		if (ok != arrays[i].ok)
			fail_msg("%s: ok %d", arrays[i].text, ok);
		if (ok) {
			assert_int_equal(l.n, arrays[i].n);
			for (size_t k = 0; k < l.n; k++)
				assert_string_equal(l.items[k], arrays[i].items[k]);
		}
		ry_strlist_release(&l);
	}
}

static void pg_array_round_trip(void **state)
{
	(void)state;
	struct ry_strlist in = { 0 }, out = { 0 };
	const char *items[] = { "plain", "with space", "quote\"d", "back\\slash", "{braces}", "" };
	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++)
		ry_strlist_add(&in, items[i]);
	char *text = ry_strlist_to_pg_array(&in);
	assert_true(ry_db_parse_text_array(text, &out));
	assert_int_equal(out.n, in.n);
	for (size_t i = 0; i < in.n; i++)
		assert_string_equal(out.items[i], in.items[i]);
	free(text);
	ry_strlist_release(&in);
	ry_strlist_release(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(patterns_match_paths),
		cmocka_unit_test(any_of_many_paths),
		cmocka_unit_test(bad_pattern_says_what_and_where),
		cmocka_unit_test(pg_text_arrays_parse),
		cmocka_unit_test(pg_array_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
