/*
 * Children that a thread waits for itself (git run by pkg/source on the
 * worker's offload threads), kept from the process-wide reaper: the
 * worker reaps its tasks and adopted orphans with ry_exec_reap_next from
 * its SIGCHLD handler, which looks at each exited child before taking it
 * and leaves a private one to the thread that started it.  The thread
 * signals SIGCHLD once it has reaped, so exited children queued behind a
 * private one are not forgotten.
 */
#include "exec/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define PRIVATE_MAX 256

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t private_pids[PRIVATE_MAX];
static size_t nprivate;

static bool is_private(pid_t pid)
{
	for (size_t i = 0; i < nprivate; i++)
		if (private_pids[i] == pid)
			return true;
	return false;
}

int ry_exec_spawn_private(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			  char *const argv[], char *const envp[])
{
	pthread_mutex_lock(&lock);
	if (nprivate == PRIVATE_MAX) {
		pthread_mutex_unlock(&lock);
		return EAGAIN;
	}
	int rc = posix_spawnp(pid, file, fa, NULL, argv, envp);
	if (rc == 0)
		private_pids[nprivate++] = *pid;
	pthread_mutex_unlock(&lock);
	return rc;
}

int ry_exec_wait_private(pid_t pid)
{
	int status = 0;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			status = W_EXITCODE(127, 0);	/* lost: a failure, never a success */
			break;
		}
	}
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nprivate; i++)
		if (private_pids[i] == pid) {
			private_pids[i] = private_pids[--nprivate];
			break;
		}
	pthread_mutex_unlock(&lock);
	/* A reaper that stopped at this child looks again. */
	(void)kill(getpid(), SIGCHLD);
	return status;
}

pid_t ry_exec_reap_next(int *status, struct rusage *ru)
{
	siginfo_t si;
	pid_t pid = 0;
	pthread_mutex_lock(&lock);
	memset(&si, 0, sizeof(si));
	if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid > 0 &&
	    !is_private(si.si_pid))
		pid = wait4(si.si_pid, status, WNOHANG, ru);
	pthread_mutex_unlock(&lock);
	return pid;
}

/* One child pipe end read into buf (NULL: discarded); closes it at EOF. */
static void drain(int *fd, struct ry_buf *buf)
{
	char chunk[16384];
	ssize_t n = read(*fd, chunk, sizeof(chunk));
	if (n > 0 && buf)
		ry_buf_add(buf, chunk, (size_t)n);
	if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
		close(*fd);
		*fd = -1;
	}
}

int ry_exec_capture(const char *file, char *const argv[], char *const envp[], const char *input,
		    struct ry_buf *out, struct ry_buf *errout)
{
	int in[2] = { -1, -1 }, o[2] = { -1, -1 }, e[2] = { -1, -1 };
	size_t in_off = 0, in_len = input ? strlen(input) : 0;
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int rc = 0;

	if (pipe2(o, O_CLOEXEC) < 0 || (errout && pipe2(e, O_CLOEXEC) < 0) ||
	    (input ? pipe2(in, O_CLOEXEC) : (in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC))) < 0)
		rc = errno;
	if (rc == 0) {
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, in[0], 0);
		posix_spawn_file_actions_adddup2(&fa, o[1], 1);
		posix_spawn_file_actions_adddup2(&fa, errout ? e[1] : o[1], 2);
		rc = ry_exec_spawn_private(&pid, file, &fa, argv, envp);
		posix_spawn_file_actions_destroy(&fa);
	}
	int *ends[] = { &in[0], &o[1], &e[1] };
	for (size_t i = 0; i < RY_ARRAY_SIZE(ends); i++)
		if (*ends[i] >= 0) {
			close(*ends[i]);
			*ends[i] = -1;
		}
	if (rc != 0) {
		int *rest[] = { &in[1], &o[0], &e[0] };
		for (size_t i = 0; i < RY_ARRAY_SIZE(rest); i++)
			if (*rest[i] >= 0)
				close(*rest[i]);
		errno = rc;
		return -1;
	}
	/* A child that writes before it reads must not block us: poll, and
	 * write no more than the pipe takes (a blocking write waits for all). */
	if (in[1] >= 0)
		(void)fcntl(in[1], F_SETFL, O_NONBLOCK);
	while (o[0] >= 0 || e[0] >= 0) {
		struct pollfd p[3];
		int np = 0, io = -1, ie = -1, ii = -1;
		if (o[0] >= 0)
			io = np, p[np++] = (struct pollfd){ .fd = o[0], .events = POLLIN };
		if (e[0] >= 0)
			ie = np, p[np++] = (struct pollfd){ .fd = e[0], .events = POLLIN };
		if (in[1] >= 0)
			ii = np, p[np++] = (struct pollfd){ .fd = in[1], .events = POLLOUT };
		if (poll(p, (nfds_t)np, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (ii >= 0 && p[ii].revents) {
			ssize_t n = write(in[1], input + in_off, in_len - in_off);
			if (n > 0)
				in_off += (size_t)n;
			if ((n < 0 && errno != EINTR && errno != EAGAIN) || in_off == in_len) {
				close(in[1]);
				in[1] = -1;
			}
		}
		if (io >= 0 && p[io].revents)
			drain(&o[0], out);
		if (ie >= 0 && p[ie].revents)
			drain(&e[0], errout);
	}
	int *rest[] = { &in[1], &o[0], &e[0] };
	for (size_t i = 0; i < RY_ARRAY_SIZE(rest); i++)
		if (*rest[i] >= 0)
			close(*rest[i]);
	return ry_exec_wait_private(pid);
}
