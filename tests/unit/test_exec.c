/*
 * Tests for pkg/exec: a task runs in its own process group, in its
 * directory, with exactly the environment given, output in its log; killing
 * the group kills what the task started; the log tail is bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec/exec.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ry-test-exec-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	ry_exec_remove_tree(dir);
	return 0;
}

static int run(const char *cmd, char *const *env, char **log)
{
	char *err = NULL;
	pid_t pid;
	int status;
	char *path = ry_asprintf("%s/out.log", dir);
	struct ry_exec_spec spec = { cmd, dir, env, path };
	if (!ry_exec_spawn(&spec, &pid, &err))
		fail_msg("spawn: %s", err);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	*log = ry_exec_log_tail(path, 4096);
	free(path);
	return status;
}

static void runs_in_own_group_dir_and_env(void **state)
{
	(void)state;
	char *env[] = { (char *)"PATH=/usr/bin:/bin", (char *)"ONLY=this", NULL };
	char *log = NULL;
	/* $$ is the shell's pid; its process group must be itself. */
	int st = run("echo pgid=$(ps -o pgid= -p $$ | tr -d ' ') pid=$$; pwd; env | sort; "
		     "echo to-stderr >&2", env, &log);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	char pid[32] = "", pgid[32] = "";
	assert_int_equal(sscanf(log, "pgid=%31s pid=%31s", pgid, pid), 2);
	assert_string_equal(pgid, pid);
	assert_non_null(strstr(log, dir));
	assert_non_null(strstr(log, "ONLY=this"));
	assert_null(strstr(log, "HOME="));	/* nothing inherited */
	assert_non_null(strstr(log, "to-stderr"));
	free(log);
}

static void status_is_described(void **state)
{
	(void)state;
	char *env[] = { NULL };
	char *log = NULL;
	int st = run("exit 3", env, &log);
	char *d = ry_exec_describe_status(st);
	assert_string_equal(d, "exit 3");
	free(d);
	free(log);
	st = run("kill -9 $$", env, &log);
	d = ry_exec_describe_status(st);
	assert_non_null(strstr(d, "killed by signal 9"));
	free(d);
	free(log);
}

static void killing_the_group_kills_children(void **state)
{
	(void)state;
	char *env[] = { (char *)"PATH=/usr/bin:/bin", NULL };
	char *err = NULL, *path = ry_asprintf("%s/k.log", dir);
	char *pidfile = ry_asprintf("%s/child.pid", dir);
	char *cmd = ry_asprintf("sleep 300 & echo $! > %s; wait", pidfile);
	struct ry_exec_spec spec = { cmd, dir, env, path };
	pid_t pid, child = 0;
	int status;
	FILE *f = NULL;

	assert_true(ry_exec_spawn(&spec, &pid, &err));
	for (int i = 0; i < 500 && !child; i++) {	/* wait for the pid file */
		if ((f = fopen(pidfile, "r")) != NULL) {
			if (fscanf(f, "%d", &child) != 1)
				child = 0;
			fclose(f);
		}
		if (!child)
			usleep(10000);
	}
	assert_true(child > 0);
	ry_exec_kill_group(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	/* The background child is gone too (reaped by init; poll briefly). */
	int alive = 1;
	for (int i = 0; i < 500 && alive; i++) {
		alive = kill(child, 0) == 0;
		if (alive) {
			char stat[64], buf[256] = "";
			snprintf(stat, sizeof(stat), "/proc/%d/stat", child);
			if ((f = fopen(stat, "r")) != NULL) {
				if (!fgets(buf, sizeof(buf), f))
					buf[0] = '\0';
				fclose(f);
			}
			if (strstr(buf, ") Z "))
				alive = 0;	/* a zombie is dead */
			else
				usleep(10000);
		}
	}
	assert_false(alive);
	free(cmd);
	free(pidfile);
	free(path);
}

static void log_tail_is_bounded_and_starts_at_a_line(void **state)
{
	(void)state;
	char *env[] = { (char *)"PATH=/usr/bin:/bin", NULL };
	char *log = NULL;
	run("i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done", env, &log);
	assert_true(strlen(log) <= 4096);
	assert_true(strncmp(log, "line-", 5) == 0);
	assert_non_null(strstr(log, "line-1999\n"));
	free(log);
}

static void log_tail_is_valid_utf8(void **state)
{
	(void)state;
	struct {
		const char *in;
		const char *want;
	} cases[] = {
		{ "plain ascii\n", "plain ascii\n" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
		{ "bad \xff\xfe end", "bad ?? end" },
		{ "cut \xe2\x82", "cut ??" },
		{ "overlong \xc0\xaf", "overlong ??" },
		{ "surrogate \xed\xa0\x80", "surrogate ???" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = ry_strdup(cases[i].in);
		ry_exec_sanitize_utf8(s);
		assert_string_equal(s, cases[i].want);
		free(s);
	}
	/* And through a real log: a task that prints binary. */
	char *env[] = { (char *)"PATH=/usr/bin:/bin", NULL };
	char *log = NULL;
	run("printf 'ok\\377\\000x\\n'", env, &log);
	assert_string_equal(log, "ok? x\n");
	free(log);
}

static void missing_directory_is_an_error(void **state)
{
	(void)state;
	char *env[] = { NULL };
	char *err = NULL;
	pid_t pid;
	struct ry_exec_spec spec = { "true", "/nonexistent/dir", env, "/dev/null" };
	assert_false(ry_exec_spawn(&spec, &pid, &err));
	assert_non_null(strstr(err, "/nonexistent/dir"));
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(runs_in_own_group_dir_and_env),
		cmocka_unit_test(status_is_described),
		cmocka_unit_test(killing_the_group_kills_children),
		cmocka_unit_test(log_tail_is_bounded_and_starts_at_a_line),
		cmocka_unit_test(log_tail_is_valid_utf8),
		cmocka_unit_test(missing_directory_is_an_error),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
