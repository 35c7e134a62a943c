/*
 * Unit tests for the worker's result journal (pkg/worker/journal.c): a
 * result written and not acknowledged comes back, intact, after a restart;
 * acknowledged ones do not; a newer version of a result replaces the
 * older; a torn or garbled line never loses the others; the file shrinks
 * back when nothing is pending; a failed write is reported, not ignored.
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
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec/exec.h"
#include "worker/journal.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ry-test-journal-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/w.journal", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ry_exec_remove_tree(dir);
	return 0;
}

static struct ry_journal_result result(int64_t id, int attempt, const char *outcome)
{
	struct ry_journal_result r = {
		.agent_id = 7, .task_id = id, .attempt = attempt, .pipeline_id = 3,
		.name = (char *)"build:cart", .outcome = (char *)outcome, .exit_code = 0,
		.reason = NULL, .started_us = 1700000000000000LL, .finished_us = 1700000001500000LL,
		.duration_s = 1.5, .log_path = (char *)"/w/logs/3/1-build_cart.1.log",
		.log_tail = (char *)"line \"one\"\n\xc3\xa9t\xc3\xa9\ttab\\", .cpu_s = 0.25,
		.mem_peak_bytes = 1 << 20, .io_read_bytes = -1, .io_write_bytes = -1,
		.cache = (char *)"{\"task_id\":1,\"output_digest\":\"ab12\",\"output_size\":4}",
	};
	return r;
}

/* A new, empty journal at path. */
static struct ry_journal *fresh(void)
{
	struct ry_journal_result *p;
	size_t n;
	char *err = NULL;
	unlink(path);
	struct ry_journal *j = ry_journal_open(path, &p, &n, &err);
	if (!j)
		fail_msg("%s", err);
	assert_int_equal(n, 0);
	free(p);
	return j;
}

static struct ry_journal *reopen(struct ry_journal *j, struct ry_journal_result **p, size_t *n)
{
	char *err = NULL;
	ry_journal_close(j);
	j = ry_journal_open(path, p, n, &err);
	if (!j)
		fail_msg("%s", err);
	return j;
}

static void release_all(struct ry_journal_result *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ry_journal_result_release(&p[i]);
	free(p);
}

static void pending_results_survive_a_restart(void **state)
{
	(void)state;
	struct ry_journal_result *p;
	size_t n;
	struct ry_journal *j = fresh();
	for (int i = 1; i <= 3; i++) {
		struct ry_journal_result r = result(i, 1, "succeeded");
		assert_true(ry_journal_add(j, &r));
	}
	assert_true(ry_journal_sync(j));
	int64_t ids[] = { 2 };
	int atts[] = { 1 };
	ry_journal_ack(j, ids, atts, 1);
	assert_int_equal(ry_journal_pending(j), 2);
	j = reopen(j, &p, &n);
	assert_int_equal(n, 2);
	assert_int_equal(p[0].task_id, 1);
	assert_int_equal(p[1].task_id, 3);
	struct ry_journal_result want = result(1, 1, "succeeded");
	assert_int_equal(p[0].agent_id, 7);
	assert_int_equal(p[0].pipeline_id, 3);
	assert_string_equal(p[0].name, want.name);
	assert_string_equal(p[0].outcome, "succeeded");
	assert_int_equal(p[0].exit_code, 0);
	assert_null(p[0].reason);
	assert_int_equal(p[0].started_us, want.started_us);
	assert_int_equal(p[0].finished_us, want.finished_us);
	assert_true(p[0].duration_s == 1.5);
	assert_string_equal(p[0].log_path, want.log_path);
	assert_string_equal(p[0].log_tail, want.log_tail);
	assert_true(p[0].cpu_s == 0.25);
	assert_int_equal(p[0].mem_peak_bytes, 1 << 20);
	assert_int_equal(p[0].io_read_bytes, -1);
	assert_string_equal(p[0].cache, want.cache);	/* the output's record, as it was */
	release_all(p, n);
	/* Compacted on open: only what is pending remains in the file. */
	FILE *f = fopen(path, "r");
	int lines = 0, c;
	while ((c = fgetc(f)) != EOF)
		lines += c == '\n';
	fclose(f);
	assert_int_equal(lines, 2);
	ry_journal_close(j);
}

static void newer_version_wins_and_empty_means_empty(void **state)
{
	(void)state;
	struct ry_journal_result *p;
	size_t n;
	struct ry_journal *j = fresh();
	struct ry_journal_result r = result(5, 2, "succeeded");
	assert_true(ry_journal_add(j, &r));
	r.outcome = (char *)"failed";
	r.reason = (char *)"result could not be stored: value too long";
	r.log_tail = NULL;
	r.cache = NULL;
	assert_true(ry_journal_add(j, &r));
	assert_int_equal(ry_journal_pending(j), 1);
	j = reopen(j, &p, &n);
	assert_int_equal(n, 1);
	assert_string_equal(p[0].outcome, "failed");
	assert_string_equal(p[0].reason, "result could not be stored: value too long");
	assert_null(p[0].log_tail);
	assert_null(p[0].cache);
	release_all(p, n);
	int64_t ids[] = { 5 };
	int atts[] = { 2 };
	ry_journal_ack(j, ids, atts, 1);
	assert_int_equal(ry_journal_size(j), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	ry_journal_close(j);
}

static void torn_and_garbled_lines_lose_nothing_else(void **state)
{
	(void)state;
	struct ry_journal_result *p;
	size_t n;
	char *err = NULL;
	struct ry_journal *j = fresh();
	struct ry_journal_result r = result(1, 1, "succeeded");
	assert_true(ry_journal_add(j, &r));
	ry_journal_close(j);
	FILE *f = fopen(path, "a");
	fputs("this is not json\n{\"ack\": [[99, 1]]}\n", f);
	fclose(f);
	j = ry_journal_open(path, &p, &n, &err);
	release_all(p, n);
	r = result(2, 1, "failed");
	assert_true(ry_journal_add(j, &r));
	ry_journal_close(j);
	f = fopen(path, "a");
	fputs("{\"result\": 1, \"task\": 3, \"att", f);	/* the crash came mid-write */
	fclose(f);
	j = ry_journal_open(path, &p, &n, &err);
	assert_non_null(j);
	assert_int_equal(n, 2);
	assert_int_equal(p[0].task_id, 1);
	assert_int_equal(p[1].task_id, 2);
	release_all(p, n);
	ry_journal_close(j);
}

static void a_failed_write_is_reported(void **state)
{
	(void)state;
	struct ry_journal_result *p;
	size_t n;
	struct rlimit old, small = { 1024, RLIM_INFINITY };
	struct ry_journal *j = fresh();
	/* A file size limit makes writes fail (EFBIG), as a full disk would. */
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	small.rlim_max = old.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	bool all = true;
	for (int i = 1; i <= 10; i++) {
		struct ry_journal_result r = result(i, 1, "succeeded");
		all &= ry_journal_add(j, &r);
	}
	setrlimit(RLIMIT_FSIZE, &old);
	assert_false(all);
	assert_int_equal(ry_journal_error(j), EFBIG);
	assert_int_equal(ry_journal_pending(j), 10);	/* still kept in memory */
	/* Once writes work again, a rewrite puts every pending result back. */
	int64_t ids[] = { 1 };
	int atts[] = { 1 };
	ry_journal_ack(j, ids, atts, 1);
	j = reopen(j, &p, &n);
	assert_true(n >= 1);
	release_all(p, n);
	ry_journal_close(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pending_results_survive_a_restart),
		cmocka_unit_test(newer_version_wins_and_empty_means_empty),
		cmocka_unit_test(torn_and_garbled_lines_lose_nothing_else),
		cmocka_unit_test(a_failed_write_is_reported),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
