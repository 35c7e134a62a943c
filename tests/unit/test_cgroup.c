/*
 * Unit tests for pkg/cgroup: the parsers of /proc/self/cgroup, mountinfo
 * and the cgroup interface files (table-driven, from real kernels' text),
 * and — when run as root on a host with a writable hierarchy — a task
 * cgroup's life: a process joins it, a setsid daemon inside it dies with
 * it, the memory limit is the kernel's and its OOM kill is counted, usage
 * is measured, and it is removed afterwards; how a new process joins
 * every hierarchy at its start.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup/cgroup.h"
#include "exec/exec.h"

static const char self_hybrid[] =
	"9:name=systemd:/\n8:pids:/\n7:blkio:/\n4:memory:/process_api/c07f\n"
	"2:cpuacct:/\n1:cpu,cpuacct:/user.slice\n0::/\n";
static const char self_v2[] = "0::/system.slice/railyard-worker.service\n";

static void self_paths(void **state)
{
	(void)state;
	char *v2, *v1;
	ry_cgroup_parse_self(self_hybrid, "memory", &v2, &v1);
	assert_string_equal(v2, "/");
	assert_string_equal(v1, "/process_api/c07f");
	free(v2);
	free(v1);
	/* A controller mounted together with another. */
	ry_cgroup_parse_self(self_hybrid, "cpu", &v2, &v1);
	assert_string_equal(v1, "/user.slice");
	free(v2);
	free(v1);
	ry_cgroup_parse_self(self_v2, "memory", &v2, &v1);
	assert_string_equal(v2, "/system.slice/railyard-worker.service");
	assert_null(v1);
	free(v2);
	ry_cgroup_parse_self("4:memory:/x\n", NULL, &v2, NULL);
	assert_null(v2);
}

static const char mountinfo[] =
	"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
	"35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory\n"
	"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n";

static void mounts(void **state)
{
	(void)state;
	char *mnt, *root;
	assert_true(ry_cgroup_parse_mount(mountinfo, NULL, &mnt, &root));
	assert_string_equal(mnt, "/sys/fs/cgroup/unified");
	assert_string_equal(root, "/");
	free(mnt);
	free(root);
	/* Optional fields ("shared:9") before the separator. */
	assert_true(ry_cgroup_parse_mount(mountinfo, "memory", &mnt, &root));
	assert_string_equal(mnt, "/sys/fs/cgroup/memory");
	free(mnt);
	free(root);
	assert_true(ry_cgroup_parse_mount(mountinfo, "cpuacct", &mnt, &root));
	assert_string_equal(mnt, "/sys/fs/cgroup/cpu,cpuacct");
	free(mnt);
	free(root);
	assert_false(ry_cgroup_parse_mount(mountinfo, "blkio", &mnt, &root));
	assert_null(mnt);
	assert_false(ry_cgroup_parse_mount("", NULL, &mnt, &root));
}

struct keyed_case {
	const char *text, *key;
	bool found;
	uint64_t value;
};

static const struct keyed_case keyed[] = {
	{ "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n", "oom_kill", true, 2 },
	{ "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\n", "oom", true, 3 },	/* not a prefix match */
	{ "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n", "oom_kill", true, 1 },
	{ "usage_usec 99858\nuser_usec 8379\nsystem_usec 91479\n", "usage_usec", true, 99858 },
	{ "populated 1\nfrozen 0\n", "populated", true, 1 },
	{ "populated 0\nfrozen 0", "frozen", true, 0 },				/* no final newline */
	{ "frozen 0\n", "populated", false, 0 },
	{ "oom_kill x\n", "oom_kill", false, 0 },
	{ "", "oom_kill", false, 0 },
};

static void keyed_files(void **state)
{
	(void)state;
	for (size_t i = 0; i < RY_ARRAY_SIZE(keyed); i++) {
		uint64_t v = 12345;
		bool found = ry_cgroup_parse_keyed(keyed[i].text, keyed[i].key, &v);
		if (found != keyed[i].found || (found && v != keyed[i].value))
			fail_msg("case %zu (%s): found %d value %llu", i, keyed[i].key, found,
				 (unsigned long long)v);
	}
}

static void io_accounting(void **state)
{
	(void)state;
	uint64_t r, w;
	ry_cgroup_parse_io_stat("8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"
				"253:1 rbytes=100 wbytes=0 rios=1 wios=0\n", &r, &w);
	assert_int_equal(r, 4196);
	assert_int_equal(w, 8192);
	ry_cgroup_parse_io_stat("", &r, &w);
	assert_int_equal(r + w, 0);
}

/* ---- live, as root ---- */

static void wait_dead(pid_t pid)
{
	for (int i = 0; i < 500; i++) {
		struct ry_proc_info pi;
		char path[64], buf[256] = "";
		FILE *f;
		if (!ry_exec_proc_info(pid, &pi))
			return;
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		if ((f = fopen(path, "r"))) {
			if (!fgets(buf, sizeof(buf), f))
				buf[0] = 0;
			fclose(f);
		}
		if (strstr(buf, ") Z "))
			return;
		usleep(10000);
	}
	fail_msg("process %d is still alive", (int)pid);
}

/* This host's hierarchy for a test, or the test is skipped (not root, no
 * writable cgroup). */
static struct ry_cgroup_root *test_root(const char *what)
{
	char *why = NULL, name[64];
	snprintf(name, sizeof(name), "unit-test-%s-%d", what, (int)getpid());
	if (geteuid() != 0)
		skip();
	struct ry_cgroup_root *root = ry_cgroup_root_open(name, true, &why);
	if (!root) {
		free(why);
		skip();
	}
	return root;
}

static void a_task_cgroup_lives_and_dies(void **state)
{
	(void)state;
	char *err = NULL;
	char dir[] = "/tmp/ry-test-cgroup-XXXXXX";
	struct ry_cgroup_root *root = test_root("life");
	assert_non_null(mkdtemp(dir));
	assert_true(ry_cgroup_root_mode(root) != RY_CGROUP_NONE);
	struct ry_cgroup *cg = ry_cgroup_create(root, "1.1", &err);
	if (!cg)
		fail_msg("%s", err);
	struct ry_cgroup_limits lim = { .mem_bytes = 32u << 20 };
	assert_true(ry_cgroup_set_limits(cg, &lim, &err));

	/* A task that starts a daemon in a session of its own, then exits. */
	char *pidfile = ry_asprintf("%s/daemon.pid", dir);
	char *cmd = ry_asprintf("setsid sh -c 'echo $$ > %s.tmp; mv %s.tmp %s; exec sleep 300' "
				"</dev/null >/dev/null 2>&1 &", pidfile, pidfile, pidfile);
	char *env[] = { (char *)"PATH=/usr/bin:/bin", NULL };
	struct ry_exec_join join;
	ry_cgroup_join(cg, &join);
	assert_true(join.nthread + (join.into_dir >= 0) >= 1);
	struct ry_exec_spec spec = { .command = cmd, .cwd = dir, .env = env, .out_fd = -1,
				     .join = &join };
	pid_t pid;
	int status;
	assert_true(ry_exec_spawn(&spec, &pid, &err));
	ry_cgroup_joined(cg);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	pid_t daemon = 0;
	for (int i = 0; i < 500 && !daemon; i++) {
		FILE *f = fopen(pidfile, "r");
		if (f) {
			if (fscanf(f, "%d", &daemon) != 1)
				daemon = 0;
			fclose(f);
		}
		if (!daemon)
			usleep(10000);
	}
	assert_true(daemon > 0);
	assert_true(ry_cgroup_populated(cg));	/* the daemon is still in it */
	ry_cgroup_signal(cg, SIGKILL);
	wait_dead(daemon);
	for (int i = 0; i < 200 && ry_cgroup_populated(cg); i++)
		usleep(10000);
	assert_false(ry_cgroup_populated(cg));

	struct ry_cgroup_usage u;
	ry_cgroup_usage(cg, &u);
	assert_true(u.has_cpu);
	assert_true(u.has_mem && u.mem_peak_bytes > 0);
	assert_int_equal(ry_cgroup_oom_kills(cg), 0);
	assert_true(ry_cgroup_remove(cg));
	ry_cgroup_free(cg);

	/* Over the limit: the kernel kills, the cgroup counts it. */
	if (ry_cgroup_root_has_memory(root)) {
		cg = ry_cgroup_create(root, "2.1", &err);
		assert_non_null(cg);
		assert_true(ry_cgroup_set_limits(cg, &lim, &err));
		struct ry_exec_spec hog = {
			.command = "awk 'BEGIN { s = \"x\"; while (length(s) < 200000000) s = s s }'",
			.cwd = dir, .env = env, .out_fd = -1, .join = &join };
		ry_cgroup_join(cg, &join);
		assert_true(ry_exec_spawn(&hog, &pid, &err));
		ry_cgroup_joined(cg);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(ry_cgroup_oom_kills(cg) >= 1);
		ry_cgroup_usage(cg, &u);
		assert_true(u.mem_peak_bytes <= (32u << 20) + (1u << 20));
		assert_true(ry_cgroup_remove(cg));
		ry_cgroup_free(cg);
	}
	/* A leftover (as after a crash) is found and killed. */
	cg = ry_cgroup_create(root, "3.1", &err);
	struct ry_exec_spec sleeper = { .command = "sleep 300", .cwd = dir, .env = env,
					.out_fd = -1, .join = &join };
	ry_cgroup_join(cg, &join);
	assert_true(ry_exec_spawn(&sleeper, &pid, &err));
	ry_cgroup_joined(cg);
	ry_cgroup_free(cg);	/* forgotten, as by a worker that died */
	assert_int_equal(ry_cgroup_root_kill_leftovers(root), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	char *agent = ry_strdup(ry_cgroup_root_path(root));
	ry_cgroup_root_close(root);
	struct stat st;
	assert_int_not_equal(stat(agent, &st), 0);	/* nothing left behind */
	free(agent);
	free(pidfile);
	free(cmd);
	ry_exec_remove_tree(dir);
}

/* Runs `cat /proc/self/cgroup` joined to cg (into_dir replaced unless
 * -2) and counts the hierarchies that put it in leaf; -1 (said on
 * stderr) when it could not run.  No cmocka assertion: a forked test
 * process calls it too. */
static int hierarchies_holding(struct ry_cgroup *cg, const char *dir, const char *leaf,
			       int into_dir)
{
	char *err = NULL, *log = ry_asprintf("%s/cgroups", dir);
	char *argv[] = { (char *)"/bin/cat", (char *)"/proc/self/cgroup", NULL };
	char *env[] = { NULL };
	struct ry_exec_join join;
	ry_cgroup_join(cg, &join);
	if (into_dir != -2)
		join.into_dir = into_dir;
	struct ry_exec_spec spec = { .argv = argv, .cwd = dir, .env = env, .out_fd = -1,
				     .log_path = log, .join = &join };
	pid_t pid;
	int status, n = -1;
	struct ry_buf out = RY_BUF_INIT;
	bool started = ry_exec_spawn(&spec, &pid, &err);
	ry_cgroup_joined(cg);
	if (!started)
		fprintf(stderr, "%s\n", err);
	else if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		fprintf(stderr, "cat /proc/self/cgroup failed\n");
	else if (!ry_read_file(log, 1 << 16, &out, &err))
		fprintf(stderr, "%s\n", err);
	else
		n = 0;
	char *suffix = ry_asprintf("/%s\n", leaf);
	size_t sl = strlen(suffix);
	for (char *line = out.data; n >= 0 && line && *line;) {
		char *end = strchr(line, '\n');
		if (!end)
			break;
		if ((size_t)(end + 1 - line) >= sl && strncmp(end + 1 - sl, suffix, sl) == 0)
			n++;
		line = end + 1;
	}
	free(suffix);
	free(err);
	ry_buf_release(&out);
	free(log);
	return n;
}

/* How many hierarchies root uses (one agent directory each). */
static int hierarchies_of(const struct ry_cgroup_root *root)
{
	char *dirs = ry_cgroup_root_dirs(root);
	int n = 0;
	for (const char *c = dirs; *c; c++)
		n += *c == '\n';
	free(dirs);
	return n;
}

/* A task is in every hierarchy's leaf from its first instruction: v1
 * through "tasks", cgroup2 started inside (clone3), or, when clone3
 * cannot, through cgroup.procs; a step failing in a clone3 child is
 * reported as from a vfork child, and the child is reaped. */
static void a_task_starts_inside_every_hierarchy(void **state)
{
	(void)state;
	char *err = NULL;
	char dir[] = "/tmp/ry-test-cgjoin-XXXXXX";
	struct ry_cgroup_root *root = test_root("join");
	assert_non_null(mkdtemp(dir));
	int hierarchies = hierarchies_of(root);
	assert_true(hierarchies >= 1);

	struct ry_cgroup *cg = ry_cgroup_create(root, "1.1", &err);
	if (!cg)
		fail_msg("%s", err);
	assert_int_equal(hierarchies_holding(cg, dir, "1.1", -2), hierarchies);
	assert_true(ry_cgroup_remove(cg));
	ry_cgroup_free(cg);

	/* clone3 refused (a descriptor that is no cgroup: EBADF): the child
	 * joins cgroup2 by writing cgroup.procs. */
	cg = ry_cgroup_create(root, "2.1", &err);
	assert_non_null(cg);
	struct ry_exec_join join;
	ry_cgroup_join(cg, &join);
	if (join.into_dir >= 0) {
		int not_cgroup = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		assert_true(not_cgroup >= 0);
		assert_int_equal(hierarchies_holding(cg, dir, "2.1", not_cgroup), hierarchies);
		close(not_cgroup);
	}
	ry_cgroup_joined(cg);
	assert_true(ry_cgroup_remove(cg));
	ry_cgroup_free(cg);

	cg = ry_cgroup_create(root, "3.1", &err);
	assert_non_null(cg);
	ry_cgroup_join(cg, &join);
	char *env[] = { NULL };
	struct ry_exec_spec bad = { .command = "true", .cwd = "/nonexistent/dir", .env = env,
				    .out_fd = -1, .join = &join };
	pid_t pid;
	assert_false(ry_exec_spawn(&bad, &pid, &err));
	ry_cgroup_joined(cg);
	assert_non_null(strstr(err, "cannot start /bin/sh in /nonexistent/dir: chdir: No such file"));
	free(err);
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);	/* reaped: no child left */
	assert_int_equal(errno, ECHILD);
	assert_true(ry_cgroup_remove(cg));
	ry_cgroup_free(cg);
	ry_cgroup_root_close(root);
	ry_exec_remove_tree(dir);
}

/*
 * Where a seccomp filter answers clone3 with ENOSYS (Docker's default
 * profile does), tasks still start in every hierarchy, through vfork and
 * cgroup.procs: the start that finds out, and the one after it.  In a
 * forked process: a filter cannot be taken off again.
 */
static void a_task_starts_where_clone3_is_refused(void **state)
{
	(void)state;
	char *err = NULL;
	char dir[] = "/tmp/ry-test-cgseccomp-XXXXXX";
	struct ry_cgroup_root *root = test_root("seccomp");
	assert_non_null(mkdtemp(dir));
	int hierarchies = hierarchies_of(root);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sock_filter filter[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog prog = { sizeof(filter) / sizeof(filter[0]), filter };
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
			_exit(3);
		for (int i = 1; i <= 2; i++) {
			char leaf[16];
			snprintf(leaf, sizeof(leaf), "%d.1", i);
			struct ry_cgroup *cg = ry_cgroup_create(root, leaf, &err);
			if (!cg || hierarchies_holding(cg, dir, leaf, -2) != hierarchies)
				_exit(1);
			if (!ry_cgroup_remove(cg))
				_exit(2);
			ry_cgroup_free(cg);
		}
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	ry_cgroup_root_close(root);
	ry_exec_remove_tree(dir);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

/* Signals arrive all the time in a worker (SIGCHLD): setting a limit must
 * not fail because one did (v1 answers EINTR while one is pending). */
static void limits_survive_signals(void **state)
{
	(void)state;
	char *err = NULL;
	struct ry_cgroup_root *root = test_root("sig");
	struct ry_cgroup *cg = ry_cgroup_create(root, "1.1", &err);
	assert_non_null(cg);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;	/* no SA_RESTART: writes see EINTR */
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { { 0, 20 }, { 0, 20 } };
	setitimer(ITIMER_REAL, &it, NULL);
	int failures = 0;
	for (int i = 0; i < 20000; i++) {
		struct ry_cgroup_limits lim = { .mem_bytes = (uint64_t)(16 + i % 16) << 20 };
		if (!ry_cgroup_set_limits(cg, &lim, &err)) {
			if (!failures++)
				print_error("%s\n", err);
			free(err);
			err = NULL;
		}
	}
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &off, NULL);
	signal(SIGALRM, SIG_DFL);
	/* Removed before judging: a failure leaves nothing on the host. */
	ry_cgroup_joined(cg);
	bool removed = ry_cgroup_remove(cg);
	ry_cgroup_free(cg);
	ry_cgroup_root_close(root);
	assert_true(removed);
	assert_true(alarms > 0);
	assert_int_equal(failures, 0);
}

/* Whether s ends with suffix. */
static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/*
 * The worker's own memory cgroup is where /proc/self/cgroup puts this
 * process (v2 with the memory controller, else v1 memory) and holds the
 * memory files the throttle reads; without one, the reason is given.
 */
static void own_memory_cgroup(void **state)
{
	(void)state;
	char *why = NULL, *v2 = NULL, *v1 = NULL, self[4096] = "";
	char *dir = ry_cgroup_self_memory_dir(&why);
	FILE *f = fopen("/proc/self/cgroup", "r");
	assert_non_null(f);
	size_t n = fread(self, 1, sizeof(self) - 1, f);
	self[n] = '\0';
	fclose(f);
	ry_cgroup_parse_self(self, "memory", &v2, &v1);
	if (!dir) {
		assert_non_null(why);
		print_message("# no memory cgroup here: %s\n", why);
	} else {
		char cur[4096], usage[4096];
		assert_null(why);
		snprintf(cur, sizeof(cur), "%s/memory.current", dir);
		snprintf(usage, sizeof(usage), "%s/memory.usage_in_bytes", dir);
		bool is_v2 = access(cur, F_OK) == 0;
		assert_true(is_v2 || access(usage, F_OK) == 0);
		const char *path = is_v2 ? v2 : v1;
		assert_non_null(path);
		if (strcmp(path, "/") != 0 && !ends_with(dir, path))
			fail_msg("%s is not this process's cgroup %s", dir, path);
	}
	free(dir);
	free(why);
	free(v2);
	free(v1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(self_paths),
		cmocka_unit_test(mounts),
		cmocka_unit_test(keyed_files),
		cmocka_unit_test(io_accounting),
		cmocka_unit_test(own_memory_cgroup),
		cmocka_unit_test(a_task_cgroup_lives_and_dies),
		cmocka_unit_test(a_task_starts_inside_every_hierarchy),
		cmocka_unit_test(a_task_starts_where_clone3_is_refused),
		cmocka_unit_test(limits_survive_signals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
