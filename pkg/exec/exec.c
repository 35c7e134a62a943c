#include "exec/exec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

bool ry_exec_spawn(const struct ry_exec_spec *spec, pid_t *pid, char **err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	char *argv[] = { (char *)"sh", (char *)"-c", (char *)spec->command, NULL };
	int rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, spec->log_path,
					 O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	posix_spawn_file_actions_addchdir_np(&fa, spec->cwd);
	/* New group; default dispositions (the worker ignores SIGPIPE, tasks
	 * must not inherit that) and an empty mask. */
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
					 POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawn(pid, "/bin/sh", &fa, &attr, argv, spec->env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc != 0) {
		*err = ry_asprintf("cannot start /bin/sh in %s: %s", spec->cwd, strerror(rc));
		return false;
	}
	return true;
}

void ry_exec_kill_group(pid_t pgid, int sig)
{
	if (pgid > 1)
		(void)kill(-pgid, sig);
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

bool ry_exec_mkdirs(const char *path, char **err)
{
	char *p = ry_strdup(path);
	for (char *s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, 0755) < 0 && errno != EEXIST) {
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

static bool pgid_wanted(const pid_t *pgids, size_t n, pid_t g)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (pgids[mid] == g)
			return true;
		if (pgids[mid] < g)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

void ry_exec_scan_rss(const pid_t *pgids, size_t n,
		      void (*fn)(void *arg, pid_t pgid, long rss_kb), void *arg)
{
	static long page_kb;
	DIR *d = opendir("/proc");
	struct dirent *de;
	char path[300], buf[512];

	if (!d || n == 0) {
		if (d)
			closedir(d);
		return;
	}
	if (!page_kb)
		page_kb = sysconf(_SC_PAGESIZE) / 1024;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		/* Fields after the parenthesised command: state ppid pgrp ... rss(24) */
		char *p = strrchr(buf, ')');
		if (!p)
			continue;
		long pgrp = 0, rss = 0;
		int field = 2;
		for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
			field++;
			if (field == 5)
				pgrp = strtol(tok, NULL, 10);
			else if (field == 24) {
				rss = strtol(tok, NULL, 10);
				break;
			}
		}
		if (pgrp > 0 && pgid_wanted(pgids, n, (pid_t)pgrp))
			fn(arg, (pid_t)pgrp, rss * page_kb);
	}
	closedir(d);
}
