/*
 * Unit tests for pkg/exec/output.c: what a task prints reaches its log
 * with every secret masked (also when a secret is split between reads),
 * capped with a marker while the rest is drained and dropped, and a full
 * disk is remembered as the error it is, not lost.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec/exec.h"
#include "exec/output.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ry-test-output-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	ry_exec_remove_tree(dir);
	return 0;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	struct ry_buf b = RY_BUF_INIT;
	char chunk[4096];
	size_t n;
	ry_buf_puts(&b, "");
	while (f && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		ry_buf_add(&b, chunk, n);
	if (f)
		fclose(f);
	return ry_buf_detach(&b);
}

/* Feeds text in pieces of size step (all sizes 1..len are tried by callers). */
static char *through(const char *text, size_t step, char *const *masks, size_t nmasks)
{
	char *err = NULL;
	char *path = ry_asprintf("%s/log", dir);
	struct ry_output *o = ry_output_open(path, 0, &err);
	assert_non_null(o);
	for (size_t i = 0; i < nmasks; i++)
		ry_output_mask(o, masks[i]);
	size_t len = strlen(text);
	for (size_t i = 0; i < len; i += step)
		ry_output_feed(o, text + i, len - i < step ? len - i : step);
	ry_output_finish(o);
	assert_int_equal(ry_output_error(o), 0);
	ry_output_close(o);
	char *got = slurp(path);
	free(path);
	return got;
}

static void secrets_are_masked_however_the_reads_fall(void **state)
{
	(void)state;
	char *masks[] = { (char *)"hunter2", (char *)"s3cr3t-t0ken", (char *)"ab" };
	const char *in = "pw=hunter2 tok=s3cr3t-t0ken hunter2hunter2 aab abc huntER2 x";
	const char *want = "pw=*** tok=*** ****** a*** ***c huntER2 x";
	for (size_t step = 1; step <= strlen(in); step++) {
		char *got = through(in, step, masks, 3);
		if (strcmp(got, want) != 0)
			fail_msg("reads of %zu bytes: got \"%s\"", step, got);
		free(got);
	}
	/* No masks: bytes pass untouched, NULs included. */
	char *err = NULL, *path = ry_asprintf("%s/bin", dir);
	struct ry_output *o = ry_output_open(path, 0, &err);
	ry_output_feed(o, "a\0b", 3);
	ry_output_finish(o);
	assert_int_equal(ry_output_size(o), 3);
	ry_output_close(o);
	free(path);
	/* The string form, for reasons and tails kept elsewhere. */
	char *s = ry_output_mask_string(ry_strdup("say hunter2 twice: hunter2"), masks, 3);
	assert_string_equal(s, "say *** twice: ***");
	free(s);
}

static void the_log_is_capped_with_a_marker(void **state)
{
	(void)state;
	char *err = NULL;
	char *path = ry_asprintf("%s/capped", dir);
	uint64_t cap = 1 << 20;
	struct ry_output *o = ry_output_open(path, cap, &err);
	char chunk[10000];
	memset(chunk, 'x', sizeof(chunk));
	for (int i = 0; i < 1000; i++)	/* 10 MB offered */
		ry_output_feed(o, chunk, sizeof(chunk));
	ry_output_finish(o);
	assert_true(ry_output_truncated(o));
	assert_int_equal(ry_output_error(o), 0);
	ry_output_close(o);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_true((uint64_t)st.st_size > cap && (uint64_t)st.st_size < cap + 200);
	assert_int_equal(st.st_mode & 0777, 0600);
	char *tail = ry_exec_log_tail(path, 200);
	assert_non_null(strstr(tail, "[railyard: output truncated at 1 MB"));
	free(tail);
	free(path);
}

static void a_full_disk_is_remembered(void **state)
{
	(void)state;
	char *err = NULL;
	/* /dev/full fails every write with ENOSPC. */
	struct ry_output *o = ry_output_open("/dev/full", 0, &err);
	if (!o) {
		free(err);
		skip();
	}
	ry_output_feed(o, "hello\n", 6);
	ry_output_feed(o, "more\n", 5);
	ry_output_finish(o);
	assert_int_equal(ry_output_error(o), ENOSPC);
	assert_false(ry_output_truncated(o));
	ry_output_close(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(secrets_are_masked_however_the_reads_fall),
		cmocka_unit_test(the_log_is_capped_with_a_marker),
		cmocka_unit_test(a_full_disk_is_remembered),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
