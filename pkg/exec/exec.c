#include "exec/exec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* What the child reports back through the memory vfork shares. */
struct child_status {
	int err;		/* errno of the failed step; 0: exec succeeded */
	const char *step;
};

static void child_fail(volatile struct child_status *cs, const char *step)
{
	cs->err = errno ? errno : EINVAL;
	cs->step = step;
	_exit(127);
}

/*
 * Runs in the vfork child, on the parent's stack, until execve: only system
 * calls, nothing that allocates or touches locks.  Credentials go through
 * raw syscalls: glibc's setuid() would signal the parent's threads.
 */
static void child(const struct ry_exec_spec *spec, char *const *argv,
		  volatile struct child_status *cs, pid_t parent)
{
	struct sigaction dfl;
	sigset_t none;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, &dfl, NULL);
	if (setsid() < 0)
		child_fail(cs, "setsid");
	for (size_t i = 0; i < spec->njoin; i++) {
		ssize_t n;
		while ((n = write(spec->join_fds[i], "0", 1)) < 0 && errno == EINTR)
			;
		if (n != 1)
			child_fail(cs, "join cgroup");
	}
	int in = open("/dev/null", O_RDONLY);
	if (in < 0 || dup2(in, 0) < 0)
		child_fail(cs, "open /dev/null");
	int out = spec->out_fd;
	if (out < 0) {
		out = spec->log_path ? open(spec->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND,
					    0600)
				     : open("/dev/null", O_WRONLY);
		if (out < 0)
			child_fail(cs, "open log");
	}
	if (dup2(out, 1) < 0 || dup2(out, 2) < 0)
		child_fail(cs, "redirect output");
	if (chdir(spec->cwd) < 0)
		child_fail(cs, "chdir");
	if (spec->set_ids) {
		if (syscall(SYS_setgroups, 0, NULL) < 0)
			child_fail(cs, "setgroups");
		if (syscall(SYS_setgid, spec->gid) < 0)
			child_fail(cs, "setgid");
		if (syscall(SYS_setuid, spec->uid) < 0)
			child_fail(cs, "setuid");
	}
	/* After the credentials change, which would clear it. */
	if (spec->die_with_parent) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
			child_fail(cs, "prctl");
		if (getppid() != parent)
			_exit(127);	/* the worker is already gone */
	}
	if (spec->set_umask)
		umask(spec->umask);
	(void)close_range(3, ~0U, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(argv[0][0] == '/' ? argv[0] : "/bin/sh", argv, spec->env);
	child_fail(cs, "exec");
}

bool ry_exec_spawn(const struct ry_exec_spec *spec, pid_t *pid, char **err)
{
	char *sh[] = { (char *)"sh", (char *)"-c", (char *)spec->command, NULL };
	char *const *argv = spec->argv ? spec->argv : sh;
	volatile struct child_status cs = { 0, NULL };
	sigset_t all, old;
	pid_t parent = getpid();

	/* No handler of ours may run in the child before it resets them. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid_t p = vfork();
	if (p == 0)
		child(spec, argv, &cs, parent);
	int e = errno;
	if (p > 0 && cs.err)
		(void)waitpid(p, NULL, 0);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (p < 0) {
		*err = ry_asprintf("cannot start %s in %s: vfork: %s", spec->argv ? argv[0] : "/bin/sh",
				   spec->cwd, strerror(e));
		return false;
	}
	if (cs.err) {
		*err = ry_asprintf("cannot start %s in %s: %s: %s", spec->argv ? argv[0] : "/bin/sh",
				   spec->cwd, cs.step, strerror(cs.err));
		return false;
	}
	*pid = p;
	return true;
}

bool ry_exec_output_pipe(int fds[2], char **err)
{
	if (pipe2(fds, O_CLOEXEC) < 0) {
		*err = ry_asprintf("cannot create a pipe: %s", strerror(errno));
		return false;
	}
	(void)fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
	return true;
}

void ry_exec_kill_group(pid_t pgid, int sig)
{
	if (pgid > 1)
		(void)kill(-pgid, sig);
}

void ry_exec_become_subreaper(void)
{
	(void)prctl(PR_SET_CHILD_SUBREAPER, 1);
}

char *ry_exec_log_tail(const char *path, size_t max)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ry_strdup("");
	off_t size = lseek(fd, 0, SEEK_END);
	off_t from = size > (off_t)max ? size - (off_t)max : 0;
	char *buf = ry_malloc(max + 1);
	ssize_t n = pread(fd, buf, max, from);
	close(fd);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	char *start = buf;
	if (from > 0) {
		char *nl = memchr(buf, '\n', (size_t)n);
		if (nl && nl + 1 < buf + n)
			start = nl + 1;
	}
	/* Keep the text valid for a PostgreSQL text column: no NUL, no bytes
	 * that are not UTF-8 (a binary blob must not make a result unstorable). */
	for (char *p = start; p < buf + n; p++)
		if (*p == '\0')
			*p = ' ';
	ry_exec_sanitize_utf8(start);
	char *out = ry_strdup(start);
	free(buf);
	return out;
}

/* Length of the valid UTF-8 sequence at s, 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s)
{
	size_t n;
	unsigned min;
	unsigned c = s[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, min = 0x80, c &= 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, min = 0x800, c &= 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, min = 0x10000, c &= 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	return n;
}

void ry_exec_sanitize_utf8(char *s)
{
	unsigned char *p = (unsigned char *)s;
	while (*p) {
		size_t n = utf8_seq(p);
		if (n == 0)
			*p++ = '?';
		else
			p += n;
	}
}

char *ry_exec_describe_status(int status)
{
	if (WIFEXITED(status))
		return ry_asprintf("exit %d", WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		return ry_asprintf("killed by signal %d (%s)", WTERMSIG(status),
				   strsignal(WTERMSIG(status)));
	return ry_asprintf("wait status %d", status);
}

bool ry_exec_mkdirs_mode(const char *path, mode_t mode, char **err)
{
	/* Usually the parent exists: one mkdir, not one per component. */
	if (mkdir(path, mode) == 0 || errno == EEXIST)
		return true;
	if (errno != ENOENT) {
		*err = ry_asprintf("cannot create directory %s: %s", path, strerror(errno));
		return false;
	}
	char *p = ry_strdup(path);
	for (char *s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, mode) < 0 && errno != EEXIST) {
				*err = ry_asprintf("cannot create directory %s: %s", p, strerror(errno));
				free(p);
				return false;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	free(p);
	return true;
}

bool ry_exec_mkdirs(const char *path, char **err)
{
	return ry_exec_mkdirs_mode(path, 0755, err);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	(void)remove(path);
	return 0;
}

void ry_exec_remove_tree(const char *path)
{
	(void)nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- /proc ------------------------------------------------------------- */

bool ry_exec_proc_info(pid_t pid, struct ry_proc_info *pi)
{
	static long page_kb;
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return false;
	buf[len] = '\0';
	if (!page_kb)
		page_kb = sysconf(_SC_PAGESIZE) / 1024;
	/* Fields after the parenthesised command: state(3) ppid(4) pgrp(5) ...
	 * starttime(22) vsize(23) rss(24). */
	char *p = strrchr(buf, ')');
	if (!p)
		return false;
	memset(pi, 0, sizeof(*pi));
	pi->pid = pid;
	int field = 2;
	char *save = NULL;
	for (char *tok = strtok_r(p + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		field++;
		if (field == 4)
			pi->ppid = (pid_t)strtol(tok, NULL, 10);
		else if (field == 5)
			pi->pgrp = (pid_t)strtol(tok, NULL, 10);
		else if (field == 22)
			pi->start_ticks = strtoull(tok, NULL, 10);
		else if (field == 24) {
			pi->rss_kb = strtol(tok, NULL, 10) * page_kb;
			break;
		}
	}
	return field >= 22;
}

char *ry_exec_proc_env(pid_t pid, const char *name)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct ry_buf b = RY_BUF_INIT;
	if (!ry_read_all(fd, 1u << 20, &b))
		b.len = 0;	/* gone meanwhile: nothing to find */
	close(fd);
	char *found = NULL;
	size_t nl = strlen(name);
	for (size_t i = 0; i < b.len;) {
		const char *kv = b.data + i;
		size_t l = strnlen(kv, b.len - i);
		if (l > nl && strncmp(kv, name, nl) == 0 && kv[nl] == '=') {
			found = ry_strndup(kv + nl + 1, l - nl - 1);
			break;
		}
		i += l + 1;
	}
	ry_buf_release(&b);
	return found;
}

struct ry_proc_scan {
	DIR *d;
};

struct ry_proc_scan *ry_exec_scan_start(void)
{
	struct ry_proc_scan *s = ry_calloc(1, sizeof(*s));
	s->d = opendir("/proc");
	return s;
}

bool ry_exec_scan_step(struct ry_proc_scan *s, size_t max,
		       void (*fn)(void *arg, const struct ry_proc_info *pi), void *arg)
{
	struct dirent *de;
	size_t seen = 0;
	if (!s->d)
		return false;
	while (seen < max && (de = readdir(s->d)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		struct ry_proc_info pi;
		seen++;
		if (ry_exec_proc_info((pid_t)strtol(de->d_name, NULL, 10), &pi))
			fn(arg, &pi);
	}
	if (seen < max) {
		closedir(s->d);
		s->d = NULL;
		return false;
	}
	return true;
}

void ry_exec_scan_free(struct ry_proc_scan *s)
{
	if (!s)
		return;
	if (s->d)
		closedir(s->d);
	free(s);
}
