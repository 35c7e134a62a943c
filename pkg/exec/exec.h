/*
 * exec: starting task processes and looking after them.  A task is
 * /bin/sh -c COMMAND in a new session (its own process group, pgid = pid),
 * with exactly the environment given, stdin on /dev/null and stdout+stderr
 * to a descriptor (the worker's output pipe) or a file.  Before it runs the
 * child joins the task's cgroups, drops to the task's credentials and asks
 * to be killed if the worker dies.
 *
 * Also: process-group signals, /proc scans done a bounded step at a time
 * (memory sampling and orphan hunting when there are no cgroups), log
 * tails, directories.
 */
#ifndef RY_EXEC_H
#define RY_EXEC_H

#include <spawn.h>
#include <sys/types.h>
#include "core/core.h"

/* The cgroups a child joins before anything else (ry_cgroup_join fills
 * it; pkg/cgroup/cgroup.h says why this way). */
struct ry_exec_join {
	const int *thread_fds;	/* v1 "tasks" files: the child writes "0" to each */
	size_t nthread;
	int into_dir;		/* a cgroup2 directory to start the child in; -1: none */
	int into_procs;		/* its cgroup.procs: the child writes "0" where clone3 cannot */
};

struct ry_exec_spec {
	const char *command;	/* run as /bin/sh -c command */
	char *const *argv;	/* when set: run argv[0] (absolute) with it instead */
	const char *cwd;	/* must exist */
	char *const *env;	/* NULL-terminated KEY=VALUE list: the whole env */
	int out_fd;		/* stdout and stderr; -1: log_path, or /dev/null */
	const char *log_path;	/* when out_fd < 0: created/truncated, 0600 */
	const struct ry_exec_join *join;	/* cgroups to join first; NULL: none */
	bool set_ids;		/* run as uid:gid with no supplementary groups */
	uid_t uid;
	gid_t gid;
	bool set_umask;
	mode_t umask;
	bool die_with_parent;	/* SIGKILL when the worker dies (PR_SET_PDEATHSIG) */
};

/*
 * Spawns the command in a new session, without copying the worker's
 * memory: with vfork, or, to start it inside a cgroup2 directory, with
 * clone3(CLONE_INTO_CGROUP | CLONE_VM | CLONE_VFORK).  Where clone3 is
 * missing or refused (before Linux 5.7, or by a seccomp filter: said once
 * in the log) the vfork child writes join->into_procs instead.  Either
 * way this returns once the child has exec'd or failed; on failure *err
 * says which step failed in the child ("cannot start /bin/sh in DIR:
 * chdir: Permission denied").
 */
bool ry_exec_spawn(const struct ry_exec_spec *spec, pid_t *pid, char **err) RY_MUST_CHECK;
/* A pipe for a task's output: [0] non-blocking for the loop, both close-on-exec. */
bool ry_exec_output_pipe(int fds[2], char **err) RY_MUST_CHECK;
/* Sends sig to every process in the group; a group already gone is fine. */
void ry_exec_kill_group(pid_t pgid, int sig);
/* Makes this process the reaper of orphaned descendants (no cgroups:
 * a task's daemons then come back to the worker to be killed). */
void ry_exec_become_subreaper(void);

/*
 * Children a thread waits for itself (private.c), out of reach of a
 * process-wide reaper using ry_exec_reap_next: posix_spawnp(3) that
 * records the pid, and the blocking wait that forgets it (a status that
 * was lost reads as exit 127).
 */
struct rusage;
int ry_exec_spawn_private(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			  char *const argv[], char *const envp[]) RY_MUST_CHECK;
int ry_exec_wait_private(pid_t pid);
/*
 * Runs file (PATH searched) as a private child and waits for it: stdin
 * fed from input (NULL: /dev/null), stdout into out (NULL: discarded),
 * stderr into errout (NULL: into out as well).  Returns the wait status,
 * or -1 with errno set when it could not start.  Blocking: for threads
 * and for the time before an event loop runs.
 */
int ry_exec_capture(const char *file, char *const argv[], char *const envp[], const char *input,
		    struct ry_buf *out, struct ry_buf *errout);
/* wait4(-1, WNOHANG) that leaves private children alone: the next exited
 * child's pid, or 0 when none (or a private one is next). */
pid_t ry_exec_reap_next(int *status, struct rusage *ru);

/* The last max bytes of a file (from a line start when possible), as
 * valid UTF-8 without NUL bytes. */
char *ry_exec_log_tail(const char *path, size_t max);
/* Replaces every byte that is not part of valid UTF-8 with '?', in place. */
void ry_exec_sanitize_utf8(char *s);
/* "exit 3", "killed by signal 9": for a wait(2) status. */
char *ry_exec_describe_status(int status);
/* mkdir -p with the given mode for directories it creates. */
bool ry_exec_mkdirs_mode(const char *path, mode_t mode, char **err) RY_MUST_CHECK;
/* mkdir -p with mode 0755. */
bool ry_exec_mkdirs(const char *path, char **err) RY_MUST_CHECK;
/* rm -rf of a directory tree we created; errors are ignored. */
void ry_exec_remove_tree(const char *path);

/* ---- /proc -------------------------------------------------------------- */

struct ry_proc_info {
	pid_t pid;
	pid_t ppid;
	pid_t pgrp;
	long rss_kb;
	unsigned long long start_ticks;	/* since boot: tells a reused pid apart */
};

/* Reads /proc/PID/stat; false when the process is gone. */
bool ry_exec_proc_info(pid_t pid, struct ry_proc_info *pi) RY_MUST_CHECK;
/* The value of NAME in /proc/PID/environ (as the process started), or NULL. */
char *ry_exec_proc_env(pid_t pid, const char *name);

/*
 * A walk over /proc that can be done a few processes at a time, so the
 * event loop never spends long in it: _step visits up to max processes
 * and returns false once the walk is complete (then _free it).
 */
struct ry_proc_scan;
struct ry_proc_scan *ry_exec_scan_start(void);
bool ry_exec_scan_step(struct ry_proc_scan *s, size_t max,
		       void (*fn)(void *arg, const struct ry_proc_info *pi), void *arg);
void ry_exec_scan_free(struct ry_proc_scan *s);

#endif
