/*
 * Unit tests for pkg/db/pgarray: the one PostgreSQL array text codec.
 * Literals built here must parse back to what went in, whatever the
 * characters; text[] values from the server parse into their elements.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "db/pgarray.h"

/* ---- building ---- */

struct build_case {
	const char *items[5];	/* NULL-terminated */
	const char *expect;
};

static const struct build_case build_cases[] = {
	{ { NULL }, "{}" },
	{ { "a", NULL }, "{\"a\"}" },
	{ { "a", "b", NULL }, "{\"a\",\"b\"}" },
	{ { "", NULL }, "{\"\"}" },				/* empty, not an empty array */
	{ { "NULL", NULL }, "{\"NULL\"}" },			/* the string, not SQL NULL */
	{ { "say \"hi\"", NULL }, "{\"say \\\"hi\\\"\"}" },	/* quotes escaped */
	{ { "C:\\dir", NULL }, "{\"C:\\\\dir\"}" },		/* backslash escaped */
	{ { "a,b", "{x}", NULL }, "{\"a,b\",\"{x}\"}" },	/* delimiters quoted */
	{ { " pad ", NULL }, "{\" pad \"}" },			/* spaces kept */
	{ { "\\\"", NULL }, "{\"\\\\\\\"\"}" },			/* backslash then quote */
};

static void strlist_literals(void **state)
{
	(void)state;
	for (size_t i = 0; i < RY_ARRAY_SIZE(build_cases); i++) {
		const struct build_case *c = &build_cases[i];
		struct ry_strlist l = { 0 };
		for (size_t k = 0; c->items[k]; k++)
			ry_strlist_add(&l, c->items[k]);
		char *got = ry_strlist_to_pg_array(&l);
		if (strcmp(got, c->expect) != 0)
			fail_msg("case %zu: got %s, want %s", i, got, c->expect);
		free(got);
		ry_strlist_release(&l);
	}
}

static void mixed_elements(void **state)
{
	(void)state;
	struct ry_pgarray a = { RY_BUF_INIT, 0 };
	ry_pgarray_add_int(&a, -42);
	ry_pgarray_add_null(&a);
	ry_pgarray_add_str(&a, NULL);
	ry_pgarray_add_double(&a, 0.1);
	ry_pgarray_add_str(&a, "x\"y");
	char *s = ry_pgarray_finish(&a);
	assert_string_equal(s, "{-42,NULL,NULL,0.10000000000000001,\"x\\\"y\"}");
	free(s);
	/* One element, appended in place to a buffer of the caller's. */
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_puts(&b, "(");
	ry_buf_add_pg_array_elem(&b, "x\"y");
	ry_buf_puts(&b, ")");
	assert_string_equal(b.data, "(\"x\\\"y\")");
	ry_buf_release(&b);
	/* Finished arrays start over empty. */
	s = ry_pgarray_finish(&a);
	assert_string_equal(s, "{}");
	free(s);
}

/* ---- parsing ---- */

struct parse_case {
	const char *text;
	bool ok;
	size_t n;
	const char *items[4];
};

static const struct parse_case parse_cases[] = {
	{ "{}", true, 0, { NULL } },
	{ "{a,b}", true, 2, { "a", "b" } },
	{ "{\"a b\",\"c,d\",\"e\\\"f\",\"g\\\\h\"}", true, 4, { "a b", "c,d", "e\"f", "g\\h" } },
	{ "{x,NULL,\"NULL\"}", true, 2, { "x", "NULL" } },
	{ "{\"K=V=W\",PATH=/bin}", true, 2, { "K=V=W", "PATH=/bin" } },
	{ "a,b", false, 0, { NULL } },
	{ "{\"open", false, 0, { NULL } },
	{ "", false, 0, { NULL } },
	{ "{a", false, 0, { NULL } },
};

static void text_arrays_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < RY_ARRAY_SIZE(parse_cases); i++) {
		struct ry_strlist l = { 0 };
		bool ok = ry_db_parse_text_array(parse_cases[i].text, &l);
		if (ok != parse_cases[i].ok)
			fail_msg("%s: ok %d", parse_cases[i].text, ok);
		if (ok) {
			assert_int_equal(l.n, parse_cases[i].n);
			for (size_t k = 0; k < l.n; k++)
				assert_string_equal(l.items[k], parse_cases[i].items[k]);
		}
		ry_strlist_release(&l);
	}
}

static void round_trip(void **state)
{
	(void)state;
	struct ry_strlist in = { 0 }, out = { 0 };
	const char *items[] = { "plain", "with space", "quote\"d", "back\\slash", "{braces}", "",
				"NULL", "a,b", "\xc3\xa9t\xc3\xa9" };
	for (size_t i = 0; i < RY_ARRAY_SIZE(items); i++)
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
		cmocka_unit_test(strlist_literals),
		cmocka_unit_test(mixed_elements),
		cmocka_unit_test(text_arrays_parse),
		cmocka_unit_test(round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
