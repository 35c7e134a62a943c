/*
 * exec: starting task processes and looking after them — each in its own
 * process group (so a timeout kills everything it started), output to a log
 * file, a fixed environment, memory measured per process group.
 */
#ifndef RY_EXEC_H
#define RY_EXEC_H

#include <sys/types.h>
#include "core/core.h"

struct ry_exec_spec {
	const char *command;	/* run as /bin/sh -c command */
	const char *cwd;	/* must exist */
	char *const *env;	/* NULL-terminated KEY=VALUE list: the whole env */
	const char *log_path;	/* stdout and stderr, truncated first */
};

/* Spawns the command in a new process group (pgid = pid). */
bool ry_exec_spawn(const struct ry_exec_spec *spec, pid_t *pid, char **err) RY_MUST_CHECK;
/* Sends sig to every process in the group; a group already gone is fine. */
void ry_exec_kill_group(pid_t pgid, int sig);
/* The last max bytes of a file (from a line start when possible), as
 * valid UTF-8 without NUL bytes. */
char *ry_exec_log_tail(const char *path, size_t max);
/* Replaces every byte that is not part of valid UTF-8 with '?', in place. */
void ry_exec_sanitize_utf8(char *s);
/* "exit 3", "killed by signal 9": for a wait(2) status. */
char *ry_exec_describe_status(int status);
/* mkdir -p with mode 0755. */
bool ry_exec_mkdirs(const char *path, char **err) RY_MUST_CHECK;
/* rm -rf of a directory tree we created; errors are ignored. */
void ry_exec_remove_tree(const char *path);

/*
 * Calls fn(arg, pgid, rss_kb) for every process on the host whose process
 * group is in pgids (sorted ascending); one pass over /proc.
 */
void ry_exec_scan_rss(const pid_t *pgids, size_t n,
		      void (*fn)(void *arg, pid_t pgid, long rss_kb), void *arg);

#endif
