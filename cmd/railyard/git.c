/*
 * git, run as a program (no shell) in the repository's directory: what
 * `railyard plan` and `railyard deps scan` need to know of a checkout.
 */
#include "cmd_deps.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Runs git -C dir ARGS; its stdout in *out.  False with *err (git's words). */
bool cmd_git(const char *dir, const char *const *args, struct ry_buf *out, char **err)
{
	const char *argv[16] = { "git", "-C", dir };
	size_t n = 3;
	for (size_t i = 0; args[i] && n + 1 < RY_ARRAY_SIZE(argv); i++)
		argv[n++] = args[i];
	argv[n] = NULL;

	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) != 0)
		goto sys;
	if (pipe2(pe, O_CLOEXEC) != 0) {
		close(po[0]);
		close(po[1]);
		goto sys;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, po[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	pid_t pid;
	int rc = posix_spawnp(&pid, "git", &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(po[1]);
	close(pe[1]);
	if (rc != 0) {
		close(po[0]);
		close(pe[0]);
		*err = ry_asprintf("cannot run git: %s", strerror(rc));
		return false;
	}
	struct ry_buf errbuf = RY_BUF_INIT;
	struct pollfd fds[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
	int open_fds = 2;
	while (open_fds > 0) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char chunk[65536];
			ssize_t k = read(fds[i].fd, chunk, sizeof(chunk));
			if (k > 0) {
				ry_buf_add(i ? &errbuf : out, chunk, (size_t)k);
			} else if (k == 0 || errno != EINTR) {
				close(fds[i].fd);
				fds[i].fd = -1;
				open_fds--;
			}
		}
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (!ok) {
		char *msg = ry_strdup(errbuf.data ? errbuf.data : "");
		msg[strcspn(msg, "\n")] = '\0';
		*err = ry_asprintf("git %s failed: %s", args[0], *msg ? msg : "(no message)");
		free(msg);
	}
	ry_buf_release(&errbuf);
	return ok;
sys:
	*err = ry_asprintf("cannot run git: %s", strerror(errno));
	return false;
}

bool cmd_git_diff(const char *dir, const char *range, struct ry_strlist *paths, char **err)
{
	const char *args[] = { "diff", "--name-only", "--relative", "-z", "--no-renames", range, NULL };
	struct ry_buf out = RY_BUF_INIT;
	bool ok = cmd_git(dir, args, &out, err);
	for (size_t i = 0; ok && i < out.len;) {
		size_t n = strlen(out.data + i);
		if (n)
			ry_strlist_add(paths, out.data + i);
		i += n + 1;
	}
	ry_buf_release(&out);
	return ok;
}

char *cmd_git_head(const char *dir)
{
	const char *args[] = { "rev-parse", "--verify", "-q", "HEAD", NULL };
	struct ry_buf out = RY_BUF_INIT;
	char *err = NULL;
	char *rev = NULL;
	if (cmd_git(dir, args, &out, &err) && out.data) {
		out.data[strcspn(out.data, "\n")] = '\0';
		if (*out.data)
			rev = ry_strdup(out.data);
	}
	free(err);
	ry_buf_release(&out);
	return rev;
}

char *cmd_git_toplevel(const char *dir)
{
	const char *args[] = { "rev-parse", "--show-toplevel", NULL };
	struct ry_buf out = RY_BUF_INIT;
	char *err = NULL, *top = NULL;
	if (cmd_git(dir, args, &out, &err) && out.data) {
		out.data[strcspn(out.data, "\n")] = '\0';
		top = realpath(out.data, NULL);
	}
	free(err);
	ry_buf_release(&out);
	return top;
}
