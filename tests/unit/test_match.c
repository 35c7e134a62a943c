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

/* The three glob dialects on the cases where they differ, and where not. */
static void globs_by_dialect(void **state)
{
	(void)state;
	enum { B = RY_GLOB_BRACES, H = RY_GLOB_BRACES | RY_GLOB_GITHUB, G = RY_GLOB_GIT };
	static const struct {
		const char *glob;
		const char *path;
		unsigned flags;
		bool want;
	} cases[] = {
		/* every dialect */
		{ "*.c", "a.c", B, true }, { "*.c", "d/a.c", G, false },
		{ "**/x", "x", B, true }, { "**/x", "a/b/x", G, true },
		{ "a?c", "a/c", H, false }, { "[!ab].c", "c.c", G, true },
		{ "a\\*b", "a*b", B, true }, { "a\\*b", "axb", B, false },
		{ "a.b", "axb", G, false }, { "[x", "[x", G, true },
		/* braces: GitLab and GitHub only */
		{ "go.{mod,sum}", "go.sum", B, true }, { "go.{mod,sum}", "go.sum", G, false },
		{ "{a", "{a", B, true },
		/* GitHub: + repeats, ** spans directories anywhere */
		{ "ab+c", "abbc", H, true }, { "ab+c", "abbc", B, false }, { "ab+c", "ab+c", B, true },
		{ "src**.c", "src/a/b.c", H, true }, { "src**.c", "src/a/b.c", B, false },
		/* git: leading slash, directory suffixes */
		{ "/Makefile", "Makefile", G, true }, { "docs/", "docs/a/b", G, true },
		{ "docs/", "docs", G, false }, { "ci/**", "ci", G, true }, { "ci/**", "cix", G, false },
	};
	for (size_t i = 0; i < RY_ARRAY_SIZE(cases); i++)
		if (ry_glob_match(cases[i].glob, cases[i].path, cases[i].flags) != cases[i].want)
			fail_msg("%s on %s (flags %u): want %d", cases[i].glob, cases[i].path,
				 cases[i].flags, cases[i].want);

	struct ry_strlist list = { 0 };
	ry_strlist_add(&list, "a/*.c");
	ry_strlist_add(&list, "b.{h,c}");
	char *re = ry_globs_regex(list.items, list.n, RY_GLOB_BRACES);
	assert_string_equal(re, "^(?:a/[^/]*\\.c|b\\.(?:h|c))$");
	free(re);
	assert_null(ry_globs_regex(list.items, 0, 0));
	ry_strlist_release(&list);

	struct ry_buf b = RY_BUF_INIT;
	ry_regex_quote(&b, "a.b(c)");
	char *quoted = ry_buf_detach(&b);
	assert_string_equal(quoted, "a\\.b\\(c\\)");
	free(quoted);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(patterns_match_paths),
		cmocka_unit_test(a_runaway_pattern_is_an_error),
		cmocka_unit_test(bad_pattern_says_what_and_where),
		cmocka_unit_test(globs_by_dialect),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
