#include "exec/exec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/sched.h>

/* What the child reports back through the memory it shares with us. */
struct child_status {
	int err;		/* errno of the failed step; 0: exec succeeded */
	const char *step;
};

struct child_ctx {
	const struct ry_exec_spec *spec;
	char *const *argv;
	volatile struct child_status *cs;
	pid_t parent;
	bool join_procs;	/* also write "0" to join->into_procs (no clone3) */
};

/*
 * The child's functions are not instrumented by AddressSanitizer: on a
 * stack of its own (clone3), its bookkeeping before _exit would take the
 * child's stack for a corrupt one.
 */
#define CHILD_CODE __attribute__((no_sanitize_address))

CHILD_CODE static void child_fail(const struct child_ctx *c, const char *step)
{
	c->cs->err = errno ? errno : EINVAL;
	c->cs->step = step;
	_exit(127);
}

CHILD_CODE static void join_one(const struct child_ctx *c, int fd)
{
	ssize_t n;
	while ((n = write(fd, "0", 1)) < 0 && errno == EINTR)
		;
	if (n != 1)
		child_fail(c, "join cgroup");
}

/*
 * Runs in the child until execve, in the parent's memory while the parent
 * waits (vfork, or clone3 on a stack of its own): only system calls,
 * nothing that allocates or touches locks.  Credentials go through raw
 * syscalls: glibc's setuid() would signal the parent's threads.
 */
CHILD_CODE static void child(const struct child_ctx *c)
{
	const struct ry_exec_spec *spec = c->spec;
	struct sigaction dfl;
	sigset_t none;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, &dfl, NULL);
	if (setsid() < 0)
		child_fail(c, "setsid");
	/* Single-threaded here: moving this thread moves the process. */
	for (size_t i = 0; spec->join && i < spec->join->nthread; i++)
		join_one(c, spec->join->thread_fds[i]);
	if (c->join_procs)
		join_one(c, spec->join->into_procs);
	int in = open("/dev/null", O_RDONLY);
	if (in < 0 || dup2(in, 0) < 0)
		child_fail(c, "open /dev/null");
	int out = spec->out_fd;
	if (out < 0) {
		out = spec->log_path ? open(spec->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND,
					    0600)
				     : open("/dev/null", O_WRONLY);
		if (out < 0)
			child_fail(c, "open log");
	}
	if (dup2(out, 1) < 0 || dup2(out, 2) < 0)
		child_fail(c, "redirect output");
	if (chdir(spec->cwd) < 0)
		child_fail(c, "chdir");
	if (spec->set_ids) {
		if (syscall(SYS_setgroups, 0, NULL) < 0)
			child_fail(c, "setgroups");
		if (syscall(SYS_setgid, spec->gid) < 0)
			child_fail(c, "setgid");
		if (syscall(SYS_setuid, spec->uid) < 0)
			child_fail(c, "setuid");
	}
	/* After the credentials change, which would clear it. */
	if (spec->die_with_parent) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
			child_fail(c, "prctl");
		if (getppid() != c->parent)
			_exit(127);	/* the worker is already gone */
	}
	if (spec->set_umask)
		umask(spec->umask);
	(void)close_range(3, ~0U, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(c->argv[0][0] == '/' ? c->argv[0] : "/bin/sh", c->argv, spec->env);
	child_fail(c, "exec");
}

/*
 * clone3(args) with CLONE_VM: the child runs fn(arg) on the stack args
 * gives it and never returns (it execs or exits).  The parent's return
 * value: the child's pid, or -errno.  In assembly because a child
 * sharing our memory cannot return through the C frame that made the
 * system call: it would overwrite the frame the parent returns through
 * (glibc's vfork and posix_spawn do the same).
 */
#if defined(SYS_clone3) && defined(CLONE_INTO_CGROUP) && \
	(defined(__x86_64__) || defined(__aarch64__))
#define HAVE_CLONE3_VM 1
long ry_exec_clone3_vm(struct clone_args *args, size_t size, void (*fn)(void *), void *arg)
	__attribute__((visibility("hidden")));
#if defined(__x86_64__)
/* The child starts with the parent's registers but rax = 0 and rsp at
 * the top of its stack (16-byte aligned): fn and arg wait in r9 and r8,
 * which the syscall preserves. */
__asm__(".text\n"
	".globl ry_exec_clone3_vm\n"
	".hidden ry_exec_clone3_vm\n"
	".type ry_exec_clone3_vm, @function\n"
	"ry_exec_clone3_vm:\n"
	"	movq %rdx, %r9\n"
	"	movq %rcx, %r8\n"
	"	movl $435, %eax\n"	/* __NR_clone3 */
	"	syscall\n"
	"	testq %rax, %rax\n"
	"	jnz 1f\n"
	"	xorl %ebp, %ebp\n"
	"	movq %r8, %rdi\n"
	"	callq *%r9\n"
	"	hlt\n"
	"1:	ret\n"
	".size ry_exec_clone3_vm, .-ry_exec_clone3_vm\n");
#else
/* Likewise: x9 and x10 survive the svc. */
__asm__(".text\n"
	".globl ry_exec_clone3_vm\n"
	".hidden ry_exec_clone3_vm\n"
	".type ry_exec_clone3_vm, %function\n"
	"ry_exec_clone3_vm:\n"
	"	mov x9, x2\n"
	"	mov x10, x3\n"
	"	mov x8, #435\n"		/* __NR_clone3 */
	"	svc #0\n"
	"	cbnz x0, 1f\n"
	"	mov x29, xzr\n"
	"	mov x0, x10\n"
	"	blr x9\n"
	"	brk #0\n"
	"1:	ret\n"
	".size ry_exec_clone3_vm, .-ry_exec_clone3_vm\n");
#endif
#endif

/* Set once clone3 turned out to be missing or refused (ENOSYS before
 * Linux 5.3, EINVAL without CLONE_INTO_CGROUP before 5.7, EPERM or ENOSYS
 * from a seccomp filter): later starts go straight to vfork. */
static atomic_bool clone3_missing;

#define CHILD_STACK (64 * 1024)

/* The stack a clone3 child of this thread runs on (the thread waits
 * while it does): mapped once per thread, a guard page below. */
static void *child_stack(void)
{
	static _Thread_local char *stack;
	if (!stack) {
		long page = sysconf(_SC_PAGESIZE);
		char *m = mmap(NULL, CHILD_STACK + page, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (m == MAP_FAILED)
			return NULL;
		(void)mprotect(m, page, PROT_NONE);
		stack = m + page;
	}
	return stack;
}

CHILD_CODE static void child_entry(void *c)
{
	child(c);
}

/*
 * A child that starts in the cgroup2 directory dir: clone3 with
 * CLONE_INTO_CGROUP | CLONE_VM | CLONE_VFORK, like vfork but placed by
 * the kernel as it is made.  The child (its failure, if any, in *cs), or
 * -1 with errno.
 */
static pid_t spawn_into(const struct child_ctx *c)
{
#ifdef HAVE_CLONE3_VM
	char *stack = child_stack();
	if (!stack)
		return -1;
	struct clone_args ca;
	memset(&ca, 0, sizeof(ca));
	ca.flags = CLONE_INTO_CGROUP | CLONE_VM | CLONE_VFORK;
	ca.exit_signal = SIGCHLD;
	ca.stack = (uint64_t)(uintptr_t)stack;
	ca.stack_size = CHILD_STACK;
	ca.cgroup = (uint64_t)c->spec->join->into_dir;
	long r = ry_exec_clone3_vm(&ca, sizeof(ca), child_entry, (void *)c);
	if (r >= 0)
		return (pid_t)r;
	int e = (int)-r;
	if ((e == ENOSYS || e == EINVAL || e == E2BIG || e == EPERM) &&
	    !atomic_exchange_explicit(&clone3_missing, true, memory_order_relaxed))
		ry_info("clone3 is refused here (%s): tasks join their cgroup2 leaf through "
			"cgroup.procs, and the first start after an idle moment waits for an RCU "
			"grace period; favordynmods on the cgroup mount avoids it "
			"(docs/operations.md, \"How a task joins its cgroups\")", strerror(e));
	errno = e;
	return -1;
#else
	(void)c;
	errno = ENOSYS;
	return -1;
#endif
}

/* The vfork path: the child (its failure, if any, in *cs) or -1. */
static pid_t __attribute__((noinline)) spawn_vfork(const struct child_ctx *c)
{
	pid_t p = vfork();
	if (p == 0)
		child(c);
	return p;
}

bool ry_exec_spawn(const struct ry_exec_spec *spec, pid_t *pid, char **err)
{
	char *sh[] = { (char *)"sh", (char *)"-c", (char *)spec->command, NULL };
	volatile struct child_status cs = { 0, NULL };
	struct child_ctx c = { spec, spec->argv ? spec->argv : sh, &cs, getpid(), false };
	const char *call = "vfork";
	sigset_t all, old;
	pid_t p = -1;
	int e = 0;

	/* No handler of ours may run in the child before it resets them. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	bool into = spec->join && spec->join->into_dir >= 0;
	if (into && !atomic_load_explicit(&clone3_missing, memory_order_relaxed)) {
		call = "clone3";
		p = spawn_into(&c);
		e = errno;
	}
	/* Out of processes or memory, vfork would fail the same way. */
	if (p < 0 && e != EAGAIN && e != ENOMEM) {
		call = "vfork";
		c.join_procs = into;
		p = spawn_vfork(&c);
		e = errno;
	}
	if (p > 0 && cs.err)
		(void)waitpid(p, NULL, 0);
	sigprocmask(SIG_SETMASK, &old, NULL);
	const char *what = spec->argv ? c.argv[0] : "/bin/sh";
	if (p < 0) {
		*err = ry_asprintf("cannot start %s in %s: %s: %s", what, spec->cwd, call, strerror(e));
		return false;
	}
	if (cs.err) {
		*err = ry_asprintf("cannot start %s in %s: %s: %s", what, spec->cwd, cs.step,
				   strerror(cs.err));
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
