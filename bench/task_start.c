/*
 * task_start: how long starting one task takes after an idle gap, through
 * railyard's own code (pkg/exec, pkg/cgroup), in three ways:
 *
 *   task_start -n N -i IDLE_MS -m cgroups|procs|none
 *       cgroups  into fresh task cgroups as the worker does it: cgroup2
 *                by clone3 CLONE_INTO_CGROUP, v1 through "tasks";
 *       procs    the same, but the cgroup2 leaf joined by writing its
 *                cgroup.procs (the worker's way where clone3 is refused);
 *       none     no cgroups: vfork and exec only (the baseline).
 *   Each start sleeps IDLE_MS first (the kernel's RCU grace periods end in
 *   the gap, as between a DAG's levels), then times ry_exec_spawn of
 *   /bin/sh -c true, which returns once the child exec'd.  Prints
 *   "n=N p50_ms=X p90_ms=Y mode=M"; exit 2 when cgroups were asked for and
 *   this host has none we may use.
 *
 * bench/bench_overhead.sh runs it; it is no part of railyard.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup/cgroup.h"
#include "exec/exec.h"

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void usage(void)
{
	fprintf(stderr, "usage: task_start -n N -i IDLE_MS -m cgroups|procs|none\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int n = 0, idle_ms = -1, c;
	const char *mode = NULL;
	while ((c = getopt(argc, argv, "n:i:m:")) != -1) {
		switch (c) {
		case 'n':
			n = atoi(optarg);
			break;
		case 'i':
			idle_ms = atoi(optarg);
			break;
		case 'm':
			mode = optarg;
			break;
		default:
			usage();
		}
	}
	bool cgroups = mode && strcmp(mode, "none") != 0;
	if (n < 1 || idle_ms < 0 || !mode ||
	    (cgroups && strcmp(mode, "cgroups") != 0 && strcmp(mode, "procs") != 0))
		usage();

	char *why = NULL, *err = NULL, name[64];
	struct ry_cgroup_root *root = NULL;
	snprintf(name, sizeof(name), "bench-task-start-%d", (int)getpid());
	if (cgroups && !(root = ry_cgroup_root_open(name, true, &why))) {
		fprintf(stderr, "task_start: no cgroups: %s\n", why);
		return 2;
	}
	/* Said as "no cgroups" too: the bench then reports the row as not measured. */
	if (root && strcmp(mode, "procs") == 0 && ry_cgroup_root_mode(root) == RY_CGROUP_V1) {
		fprintf(stderr, "task_start: no cgroups: no cgroup2 hierarchy here, whose "
			"cgroup.procs -m procs times\n");
		ry_cgroup_root_close(root);
		return 2;
	}
	/* No cgroup: clone3 refuses it, the worker's fallback takes over. */
	int not_cgroup = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char *env[] = { (char *)"PATH=/usr/bin:/bin", NULL };
	double *ms = calloc((size_t)n, sizeof(*ms));
	int rc = 0;
	if (!ms) {
		fprintf(stderr, "task_start: out of memory for %d samples\n", n);
		rc = 1;
	}
	for (int i = 0; i < n && rc == 0; i++) {
		struct ry_exec_spec spec = { .command = "true", .cwd = "/", .env = env, .out_fd = -1 };
		struct ry_exec_join join;
		struct ry_cgroup *cg = NULL;
		char leaf[32];
		usleep((useconds_t)idle_ms * 1000);
		if (root) {
			snprintf(leaf, sizeof(leaf), "%d.1", i);
			if (!(cg = ry_cgroup_create(root, leaf, &err))) {
				fprintf(stderr, "task_start: %s\n", err);
				rc = 1;
				break;
			}
			ry_cgroup_join(cg, &join);
			if (strcmp(mode, "procs") == 0)
				join.into_dir = not_cgroup;
			spec.join = &join;
		}
		pid_t pid;
		int status;
		double t0 = now_ms();
		if (!ry_exec_spawn(&spec, &pid, &err)) {
			fprintf(stderr, "task_start: %s\n", err);
			rc = 1;
		} else {
			ms[i] = now_ms() - t0;
			if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
			    WEXITSTATUS(status)) {
				fprintf(stderr, "task_start: the task failed\n");
				rc = 1;
			}
		}
		if (cg) {
			ry_cgroup_joined(cg);
			for (int tries = 0; !ry_cgroup_remove(cg) && tries < 1000; tries++)
				usleep(1000);
			ry_cgroup_free(cg);
		}
	}
	if (rc == 0) {
		qsort(ms, (size_t)n, sizeof(*ms), cmp_double);
		printf("n=%d p50_ms=%.3f p90_ms=%.3f mode=%s\n", n, ms[(n - 1) / 2],
		       ms[(n * 9 - 1) / 10],
		       root ? ry_cgroup_mode_name(ry_cgroup_root_mode(root)) : "none");
	}
	/* Whatever happened: nothing left in the host's hierarchies. */
	if (root)
		ry_cgroup_root_close(root);
	free(ms);
	close(not_cgroup);
	return rc;
}
