/*
 * spawn: the machine's raw process figures, the baselines railyard's
 * benchmarks compare against (bench/run.sh runs it; it is no part of
 * railyard).
 *
 *   spawn -n N -j P [-c CMD] [-m fork|posix]
 *       runs N copies of /bin/sh -c CMD (default "true"), at most P at a
 *       time; prints "n=N elapsed_s=S rate=R" (processes per second).
 *   spawn -n N -k [-c CMD] [-m fork|posix]
 *       starts N copies at once (no limit), prints "n=N spawn_s=S peak=K"
 *       once the last one was started (K: most alive at once; fewer than N
 *       when the first ended before the last began), then kills them all.
 *   spawn -f FILE -j P -w W [-m fork|posix]
 *       runs FILE's lines (one command each), P at a time, for W seconds,
 *       then kills what still runs; prints "started=N finished=N
 *       busy_s=B available_s=A utilisation=U" over the window [0, W].
 *
 * Each child is /bin/sh -c CMD in its own process group with stdin and
 * stdout on /dev/null, started with posix_spawn as railyard starts a task
 * (railyard also writes a log file and sets a fixed environment: that is
 * part of its overhead).  -m fork uses fork + execve instead, which is
 * slower on most machines, so posix_spawn is the stricter baseline.  Exit
 * status 0, or 1 when a child could not be started or exited non-zero
 * (before any kill).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct child {
	pid_t pid;
	double started;		/* seconds since t0 */
};

static bool use_fork = false;	/* -m posix (default) or fork */
static double t0;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double since_t0(void)
{
	return now_s() - t0;
}

static void usage(void)
{
	fprintf(stderr, "usage: spawn -n N -j P [-c CMD] [-m fork|posix]\n"
			"       spawn -n N -k [-c CMD] [-m fork|posix]\n"
			"       spawn -f FILE -j P -w SECONDS [-m fork|posix]\n");
	exit(2);
}

/* Starts /bin/sh -c cmd in a new process group; 0 when it cannot. */
static pid_t start(const char *cmd)
{
	char *argv[] = { (char *)"sh", (char *)"-c", (char *)cmd, NULL };
	sigset_t none;
	pid_t pid;

	sigemptyset(&none);	/* children start with nothing blocked */

	if (use_fork) {
		pid = fork();
		if (pid == 0) {
			int fd = open("/dev/null", O_RDWR);
			if (fd >= 0) {
				dup2(fd, 0);
				dup2(fd, 1);
			}
			setpgid(0, 0);
			sigprocmask(SIG_SETMASK, &none, NULL);
			execve("/bin/sh", argv, environ);
			_exit(127);
		}
		if (pid < 0) {
			fprintf(stderr, "error: cannot fork: %s\n", strerror(errno));
			return 0;
		}
		return pid;
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
	int rc = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc != 0) {
		fprintf(stderr, "error: cannot start /bin/sh: %s\n", strerror(rc));
		return 0;
	}
	return pid;
}

/* N copies, at most P alive. */
static int run_rate(long n, long p, const char *cmd)
{
	long started = 0, alive = 0, bad = 0;
	int status;

	t0 = now_s();
	while (started < n || alive > 0) {
		while (started < n && alive < p) {
			if (!start(cmd))
				return 1;
			started++;
			alive++;
		}
		pid_t pid = waitpid(-1, &status, 0);
		if (pid < 0) {
			fprintf(stderr, "error: waitpid: %s\n", strerror(errno));
			return 1;
		}
		alive--;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			bad++;
	}
	double el = since_t0();
	printf("n=%ld elapsed_s=%.3f rate=%.1f\n", n, el, (double)n / el);
	if (bad)
		fprintf(stderr, "error: %ld of %ld children failed\n", bad, n);
	return bad ? 1 : 0;
}

/* N at once; the time until the last one is started. */
static int run_burst(long n, const char *cmd)
{
	pid_t *pids = calloc((size_t)n, sizeof(*pids));
	long k = 0, ended = 0, peak = 0;
	int rc = 0;

	if (!pids)
		return 1;
	t0 = now_s();
	for (; k < n; k++) {
		if (!(pids[k] = start(cmd))) {
			rc = 1;
			break;
		}
		while (waitpid(-1, NULL, WNOHANG) > 0)
			ended++;
		if (k + 1 - ended > peak)
			peak = k + 1 - ended;
	}
	double el = since_t0();
	if (!rc)
		printf("n=%ld spawn_s=%.3f peak=%ld\n", n, el, peak);
	fflush(stdout);
	for (long i = 0; i < k; i++)
		kill(-pids[i], SIGKILL);
	while (waitpid(-1, NULL, 0) > 0)
		;
	free(pids);
	return rc;
}

/* FILE's commands, P at a time, for W seconds: busy share of P slots. */
static int run_window(const char *file, long p, double w)
{
	FILE *f = fopen(file, "r");
	struct child *kids = calloc((size_t)p, sizeof(*kids));
	char line[4096];
	long nstarted = 0, nfinished = 0, bad = 0;
	double busy = 0;
	bool more = true;
	sigset_t chld;

	if (!f || !kids) {
		fprintf(stderr, "error: cannot read %s: %s\n", file, strerror(errno));
		return 1;
	}
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	t0 = now_s();
	for (;;) {
		/* Reap whatever ended, then refill at once: the SIGCHLD that
		 * woke us is consumed, so nothing else would. */
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			double end = since_t0();
			for (long i = 0; i < p; i++) {
				if (kids[i].pid != pid)
					continue;
				busy += (end < w ? end : w) - kids[i].started;
				kids[i].pid = 0;
				nfinished++;
				if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
					bad++;
			}
		}
		/* Fill free slots while the window lasts. */
		for (long i = 0; i < p && more && since_t0() < w; i++) {
			if (kids[i].pid)
				continue;
			if (!fgets(line, sizeof(line), f)) {
				more = false;
				break;
			}
			line[strcspn(line, "\n")] = '\0';
			if (!line[0]) {
				i--;
				continue;
			}
			kids[i].started = since_t0();
			if (!(kids[i].pid = start(line)))
				return 1;
			nstarted++;
		}
		double left = w - since_t0();
		long alive = 0;
		for (long i = 0; i < p; i++)
			alive += kids[i].pid != 0;
		if (left <= 0 || (!more && alive == 0))
			break;
		struct timespec ts = { (time_t)left, (long)((left - (double)(time_t)left) * 1e9) };
		/* Sleep until a child ends or the window closes. */
		(void)sigtimedwait(&chld, NULL, &ts);
	}
	double end = since_t0();
	for (long i = 0; i < p; i++) {
		if (!kids[i].pid)
			continue;
		busy += (end < w ? end : w) - kids[i].started;
		kill(-kids[i].pid, SIGKILL);
		waitpid(kids[i].pid, NULL, 0);
	}
	fclose(f);
	free(kids);
	printf("started=%ld finished=%ld busy_s=%.3f available_s=%.3f utilisation=%.5f\n",
	       nstarted, nfinished, busy, (double)p * w, busy / ((double)p * w));
	if (bad)
		fprintf(stderr, "error: %ld children failed\n", bad);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	long n = 0, p = 0;
	double w = 0;
	const char *cmd = "true", *file = NULL;
	bool burst = false;
	int opt;

	while ((opt = getopt(argc, argv, "n:j:c:m:kf:w:")) != -1) {
		switch (opt) {
		case 'n': n = strtol(optarg, NULL, 10); break;
		case 'j': p = strtol(optarg, NULL, 10); break;
		case 'c': cmd = optarg; break;
		case 'k': burst = true; break;
		case 'f': file = optarg; break;
		case 'w': w = strtod(optarg, NULL); break;
		case 'm':
			if (strcmp(optarg, "fork") == 0)
				use_fork = true;
			else if (strcmp(optarg, "posix") == 0)
				use_fork = false;
			else
				usage();
			break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	if (file) {
		if (p < 1 || w <= 0)
			usage();
		return run_window(file, p, w);
	}
	if (n < 1)
		usage();
	if (burst)
		return run_burst(n, cmd);
	if (p < 1)
		usage();
	return run_rate(n, p, cmd);
}
