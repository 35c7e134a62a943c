/*
 * Tests for pkg/exec: a task runs in its own process group, in its
 * directory, with exactly the environment given, output in its log or pipe
 * and no other descriptor of the worker; it runs with the credentials given
 * and dies with the worker; killing the group kills what the task started;
 * the log tail is bounded; /proc walks can be done a step at a time.
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
	struct ry_exec_spec spec = { .command = cmd, .cwd = dir, .env = env, .out_fd = -1,
				     .log_path = path };
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
	struct ry_exec_spec spec = { .command = cmd, .cwd = dir, .env = env, .out_fd = -1,
				     .log_path = path };
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
	struct ry_exec_spec spec = { .command = "true", .cwd = "/nonexistent/dir", .env = env,
				     .out_fd = -1 };
	assert_false(ry_exec_spawn(&spec, &pid, &err));
	assert_non_null(strstr(err, "/nonexistent/dir"));
	assert_non_null(strstr(err, "chdir"));	/* which step failed */
	free(err);
}

/* Reads fd to its end (the child's output through a pipe). */
static char *drain(int fd)
{
	struct ry_buf b = RY_BUF_INIT;
	char chunk[4096];
	ssize_t n;
	ry_buf_puts(&b, "");
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				usleep(1000);
				continue;
			}
			break;
		}
		ry_buf_add(&b, chunk, (size_t)n);
	}
	return ry_buf_detach(&b);
}

static void output_goes_to_the_pipe_and_fds_do_not_leak(void **state)
{
	(void)state;
	char *env[] = { (char *)"PATH=/usr/bin:/bin", NULL };
	char *err = NULL;
	int fds[2], other[2];
	pid_t pid;
	int status;
	assert_true(ry_exec_output_pipe(fds, &err));
	/* Another task's pipe must not reach this child, or its end of file
	 * would wait for this one. */
	assert_true(ry_exec_output_pipe(other, &err));
	struct ry_exec_spec spec = { .command = "echo out; echo err >&2; ls /proc/self/fd",
				     .cwd = dir, .env = env, .out_fd = fds[1] };
	assert_true(ry_exec_spawn(&spec, &pid, &err));
	close(fds[1]);
	close(other[1]);
	char *out = drain(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_non_null(strstr(out, "out\n"));
	assert_non_null(strstr(out, "err\n"));
	/* ls sees 0, 1, 2 and the directory it lists: nothing else. */
	char *fdlist = strstr(out, "err\n") + 4;
	assert_string_equal(fdlist, "0\n1\n2\n3\n");
	/* other's read end saw no writer: end of file at once. */
	char *o = drain(other[0]);
	assert_string_equal(o, "");
	free(o);
	free(out);
	close(fds[0]);
	close(other[0]);
}

static void runs_with_the_credentials_given(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	char *env[] = { (char *)"PATH=/usr/bin:/bin", NULL };
	char *err = NULL;
	int fds[2];
	pid_t pid;
	int status;
	assert_true(ry_exec_output_pipe(fds, &err));
	struct ry_exec_spec spec = { .command = "id -u; id -g; id -G; umask", .cwd = "/",
				     .env = env, .out_fd = fds[1], .set_ids = true,
				     .uid = 65534, .gid = 65533, .set_umask = true, .umask = 007 };
	assert_true(ry_exec_spawn(&spec, &pid, &err));
	close(fds[1]);
	char *out = drain(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	/* No supplementary group from the worker (root's 0) survives. */
	assert_string_equal(out, "65534\n65533\n65533\n0007\n");
	free(out);
	close(fds[0]);
}

static void dies_with_the_worker(void **state)
{
	(void)state;
	/* A stand-in worker forks, spawns a task that would sleep, and is
	 * killed: the task must be killed with it. */
	char *pidfile = ry_asprintf("%s/task.pid", dir);
	pid_t standin = fork();
	assert_true(standin >= 0);
	if (standin == 0) {
		char *env[] = { (char *)"PATH=/usr/bin:/bin", NULL };
		char *err = NULL, *cmd = ry_asprintf("echo $$ > %s.tmp; mv %s.tmp %s; exec sleep 300",
						     pidfile, pidfile, pidfile);
		pid_t p;
		struct ry_exec_spec spec = { .command = cmd, .cwd = dir, .env = env, .out_fd = -1,
					     .die_with_parent = true };
		if (!ry_exec_spawn(&spec, &p, &err))
			_exit(1);
		pause();
		_exit(0);
	}
	pid_t task = 0;
	for (int i = 0; i < 1000 && !task; i++) {
		FILE *f = fopen(pidfile, "r");
		if (f) {
			if (fscanf(f, "%d", &task) != 1)
				task = 0;
			fclose(f);
		}
		if (!task)
			usleep(5000);
	}
	assert_true(task > 0);
	assert_int_equal(kill(task, 0), 0);
	kill(standin, SIGKILL);
	waitpid(standin, NULL, 0);
	int alive = 1;
	for (int i = 0; i < 1000 && alive; i++) {
		struct ry_proc_info pi;
		alive = ry_exec_proc_info(task, &pi);
		if (alive) {
			char st[64], buf[256] = "";
			FILE *f;
			snprintf(st, sizeof(st), "/proc/%d/stat", (int)task);
			if ((f = fopen(st, "r"))) {
				if (!fgets(buf, sizeof(buf), f))
					buf[0] = 0;
				fclose(f);
			}
			alive = !strstr(buf, ") Z ");
			if (alive)
				usleep(5000);
		}
	}
	assert_false(alive);
	free(pidfile);
}

struct scan_seen {
	pid_t want;
	int hits;
	pid_t ppid;
};

static void scan_cb(void *arg, const struct ry_proc_info *pi)
{
	struct scan_seen *s = arg;
	if (pi->pid == s->want) {
		s->hits++;
		s->ppid = pi->ppid;
	}
}

static void proc_walk_is_resumable_and_complete(void **state)
{
	(void)state;
	struct scan_seen seen = { getpid(), 0, 0 };
	struct ry_proc_scan *s = ry_exec_scan_start();
	int steps = 0;
	while (ry_exec_scan_step(s, 3, scan_cb, &seen))
		steps++;
	ry_exec_scan_free(s);
	assert_true(steps > 1);		/* three at a time: it took several */
	assert_int_equal(seen.hits, 1);	/* and found us exactly once */
	assert_int_equal(seen.ppid, getppid());
	char *path = ry_exec_proc_env(getpid(), "RY_TEST_ENV_PROBE");
	assert_null(path);
}

/* ry_exec_capture: input in, stdout and stderr apart or together, a large
 * input the child reads only after writing (no deadlock), a missing file. */
static void capture_feeds_and_collects(void **state)
{
	(void)state;
	char *env[] = { (char *)"PATH=/usr/bin:/bin", NULL };
	char *sh[] = { (char *)"sh", (char *)"-c", (char *)"cat; echo oops >&2; exit 3", NULL };
	struct ry_buf out = RY_BUF_INIT, err = RY_BUF_INIT;

	int st = ry_exec_capture("sh", sh, env, "hello\n", &out, &err);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 3);
	assert_string_equal(out.data, "hello\n");
	assert_string_equal(err.data, "oops\n");

	ry_buf_reset(&out);
	st = ry_exec_capture("sh", sh, env, NULL, &out, NULL);
	assert_int_equal(WEXITSTATUS(st), 3);
	assert_string_equal(out.data, "oops\n");	/* stdin was empty; stderr merged */

	/* 1 MB each way: more than any pipe holds. */
	size_t n = 1 << 20;
	char *big = malloc(n + 1);
	memset(big, 'x', n);
	big[n] = '\0';
	char *echo[] = { (char *)"sh", (char *)"-c", (char *)"head -c 1048576 /dev/zero; wc -c", NULL };
	ry_buf_reset(&out);
	st = ry_exec_capture("sh", echo, env, big, &out, NULL);
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(out.len, n + strlen("1048576\n"));
	assert_string_equal(out.data + n, "1048576\n");
	free(big);

	char *none[] = { (char *)"railyard-no-such-program", NULL };
	assert_int_equal(ry_exec_capture(none[0], none, env, NULL, NULL, NULL), -1);
	assert_int_equal(errno, ENOENT);
	ry_buf_release(&out);
	ry_buf_release(&err);
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
		cmocka_unit_test(output_goes_to_the_pipe_and_fds_do_not_leak),
		cmocka_unit_test(runs_with_the_credentials_given),
		cmocka_unit_test(dies_with_the_worker),
		cmocka_unit_test(proc_walk_is_resumable_and_complete),
		cmocka_unit_test(capture_feeds_and_collects),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
