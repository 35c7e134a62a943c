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
