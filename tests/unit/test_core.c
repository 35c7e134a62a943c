/*
 * Unit tests for pkg/core: the string buffer, string lists and their
 * PostgreSQL array rendering, and integer parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* ---- ry_buf ---- */

static void buf_empty_detach_is_empty_string(void **state)
{
	(void)state;
	struct ry_buf b = RY_BUF_INIT;
	char *s = ry_buf_detach(&b);
	assert_non_null(s);
	assert_string_equal(s, "");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	free(s);
}

static void buf_appends_keep_nul_and_length(void **state)
{
	(void)state;
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_puts(&b, "abc");
	ry_buf_putc(&b, '-');
	ry_buf_add(&b, "xyz123", 3);
	ry_buf_printf(&b, "%d:%s", 42, "q");
	assert_string_equal(b.data, "abc-xyz42:q");
	assert_int_equal(b.len, strlen("abc-xyz42:q"));
	assert_true(b.cap > b.len);
	ry_buf_release(&b);
	assert_null(b.data);
	assert_int_equal(b.cap, 0);
}

static void buf_add_binary_keeps_embedded_nul(void **state)
{
	(void)state;
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_add(&b, "a\0b", 3);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "a\0b", 4);	/* and the terminating NUL */
	ry_buf_release(&b);
}

static void buf_grows_past_many_doublings(void **state)
{
	(void)state;
	struct ry_buf b = RY_BUF_INIT;
	for (int i = 0; i < 10000; i++)
		ry_buf_putc(&b, (char)('a' + i % 26));
	assert_int_equal(b.len, 10000);
	assert_int_equal(strlen(b.data), 10000);
	assert_int_equal(b.data[9999], 'a' + 9999 % 26);
	/* One printf larger than any earlier capacity. */
	char big[5000];
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ry_buf_printf(&b, "%s", big);
	assert_int_equal(b.len, 10000 + sizeof(big) - 1);
	assert_int_equal(b.data[b.len], '\0');
	ry_buf_release(&b);
}

static void buf_reset_keeps_storage_and_empties(void **state)
{
	(void)state;
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_reset(&b);	/* on a never-used buffer: harmless */
	ry_buf_puts(&b, "hello");
	size_t cap = b.cap;
	ry_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	assert_int_equal(b.cap, cap);
	ry_buf_puts(&b, "x");
	assert_string_equal(b.data, "x");
	ry_buf_release(&b);
}

static void buf_printf_empty_result_adds_nothing(void **state)
{
	(void)state;
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_puts(&b, "k");
	ry_buf_printf(&b, "%s", "");
	assert_string_equal(b.data, "k");
	assert_int_equal(b.len, 1);
	ry_buf_release(&b);
}

static void asprintf_short_and_long(void **state)
{
	(void)state;
	char *s = ry_asprintf("%s-%d", "x", 7);
	assert_string_equal(s, "x-7");
	free(s);
	char big[2000];
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	s = ry_asprintf("<%s>", big);	/* past the 512-byte fast path */
	assert_int_equal(strlen(s), sizeof(big) + 1);
	assert_int_equal(s[0], '<');
	assert_int_equal(s[sizeof(big)], '>');
	free(s);
}

/* ---- ry_strlist_split ---- */

struct split_case {
	const char *input;	/* NULL: a NULL pointer */
	char sep;
	const char *expect[6];	/* NULL-terminated */
};

static const struct split_case split_cases[] = {
	{ "a,b,c", ',', { "a", "b", "c", NULL } },
	{ "a,b , c", ',', { "a", "b", "c", NULL } },
	{ "  spaced  ", ',', { "spaced", NULL } },
	{ "", ',', { NULL } },
	{ NULL, ',', { NULL } },
	{ ",,,", ',', { NULL } },
	{ " , \t ,\n", ',', { NULL } },
	{ ",a,,b,", ',', { "a", "b", NULL } },
	{ "a b,c", ',', { "a b", "c", NULL } },	/* inner spaces stay */
	{ "x:y:z", ':', { "x", "y", "z", NULL } },
	{ "x,y:z", ':', { "x,y", "z", NULL } },	/* only the given separator */
	{ "gpu,gpu", ',', { "gpu", "gpu", NULL } },	/* duplicates are kept */
	{ "\tdocker\n", ',', { "docker", NULL } },
};

static void strlist_split_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < RY_ARRAY_SIZE(split_cases); i++) {
		const struct split_case *c = &split_cases[i];
		struct ry_strlist l = { 0 };
		size_t want = 0;
		while (c->expect[want])
			want++;
		ry_strlist_split(&l, c->input, c->sep);
		if (l.n != want)
			fail_msg("case %zu (\"%s\"): %zu items, want %zu", i,
				 c->input ? c->input : "(null)", l.n, want);
		for (size_t k = 0; k < want; k++)
			if (strcmp(l.items[k], c->expect[k]) != 0)
				fail_msg("case %zu (\"%s\"): item %zu is \"%s\", want \"%s\"", i,
					 c->input, k, l.items[k], c->expect[k]);
		ry_strlist_release(&l);
	}
}

static void strlist_split_appends_to_existing(void **state)
{
	(void)state;
	struct ry_strlist l = { 0 };
	ry_strlist_add(&l, "first");
	ry_strlist_split(&l, "second, third", ',');
	assert_int_equal(l.n, 3);
	assert_string_equal(l.items[0], "first");
	assert_string_equal(l.items[2], "third");
	ry_strlist_release(&l);
	assert_int_equal(l.n, 0);
	assert_null(l.items);
}

static void strlist_add_copies_and_has_finds(void **state)
{
	(void)state;
	struct ry_strlist l = { 0 };
	char word[8] = "linux";
	ry_strlist_add(&l, word);
	word[0] = 'X';	/* the list owns a copy */
	assert_string_equal(l.items[0], "linux");
	for (int i = 0; i < 100; i++) {
		char tmp[16];
		snprintf(tmp, sizeof(tmp), "l%d", i);
		ry_strlist_add(&l, tmp);
	}
	assert_int_equal(l.n, 101);
	assert_true(ry_strlist_has(&l, "linux"));
	assert_true(ry_strlist_has(&l, "l99"));
	assert_false(ry_strlist_has(&l, "Xinux"));
	assert_false(ry_strlist_has(&l, "l100"));
	assert_false(ry_strlist_has(&l, ""));
	ry_strlist_release(&l);
}

/* ---- ry_parse_long ---- */

struct parse_case {
	const char *input;	/* NULL: a NULL pointer */
	long min, max;
	bool ok;
	long value;		/* when ok */
};

static const struct parse_case parse_cases[] = {
	{ "0", 0, 10, true, 0 },
	{ "10", 0, 10, true, 10 },		/* max is inclusive */
	{ "11", 0, 10, false, 0 },
	{ "-1", 0, 10, false, 0 },
	{ "-5", -10, 10, true, -5 },
	{ "-10", -10, 10, true, -10 },		/* min is inclusive */
	{ "+7", 0, 10, true, 7 },
	{ "007", 0, 10, true, 7 },		/* decimal, not octal */
	{ "0x10", 0, 100, false, 0 },
	{ "", 0, 10, false, 0 },
	{ NULL, 0, 10, false, 0 },
	{ "5 ", 0, 10, false, 0 },		/* trailing junk */
	{ "5x", 0, 10, false, 0 },
	{ "1.5", 0, 10, false, 0 },
	{ "abc", 0, 10, false, 0 },
	{ "-", -10, 10, false, 0 },
	{ "9223372036854775807", LONG_MIN, LONG_MAX, true, LONG_MAX },
	{ "-9223372036854775808", LONG_MIN, LONG_MAX, true, LONG_MIN },
	{ "9223372036854775808", LONG_MIN, LONG_MAX, false, 0 },	/* overflow */
	{ "-9223372036854775809", LONG_MIN, LONG_MAX, false, 0 },
	{ "99999999999999999999999", LONG_MIN, LONG_MAX, false, 0 },
	{ "3", 3, 3, true, 3 },
};

static void parse_long_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < RY_ARRAY_SIZE(parse_cases); i++) {
		const struct parse_case *c = &parse_cases[i];
		long out = 0;
		bool ok = ry_parse_long(c->input, c->min, c->max, &out);
		if (ok != c->ok)
			fail_msg("case %zu (\"%s\" in [%ld,%ld]): %s, want %s", i,
				 c->input ? c->input : "(null)", c->min, c->max,
				 ok ? "accepted" : "refused", c->ok ? "accepted" : "refused");
		if (ok && out != c->value)
			fail_msg("case %zu (\"%s\"): value %ld, want %ld", i, c->input, out, c->value);
	}
}

/* ---- clocks ---- */

static void clocks_move_forward(void **state)
{
	(void)state;
	int64_t m1 = ry_now_ms();
	int64_t m2 = ry_now_ms();
	assert_true(m2 >= m1);				/* monotonic */
	assert_true(ry_wall_us() > 1600000000LL * 1000000LL);	/* microseconds since 1970, after 2020 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(buf_empty_detach_is_empty_string),
		cmocka_unit_test(buf_appends_keep_nul_and_length),
		cmocka_unit_test(buf_add_binary_keeps_embedded_nul),
		cmocka_unit_test(buf_grows_past_many_doublings),
		cmocka_unit_test(buf_reset_keeps_storage_and_empties),
		cmocka_unit_test(buf_printf_empty_result_adds_nothing),
		cmocka_unit_test(asprintf_short_and_long),
		cmocka_unit_test(strlist_split_table),
		cmocka_unit_test(strlist_split_appends_to_existing),
		cmocka_unit_test(strlist_add_copies_and_has_finds),
		cmocka_unit_test(parse_long_table),
		cmocka_unit_test(clocks_move_forward),
	};
	return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
