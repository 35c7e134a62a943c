/*
 * containers: tasks that name an image run under podman or docker
 * (pkg/container builds the command).  The runtime is found at start
 * (container_runtime = auto: podman, else docker, on PATH) and declared
 * in the agent's labels ("container" and "podman" or "docker"), which
 * is what a task with an image requires.
 */
#include "worker/internal.h"

#include "container/container.h"

#include <stdlib.h>
#include <string.h>

void ry_worker_containers_init(struct ry_worker *w)
{
	const char *want = w->cfg.container_runtime;
	if (want && strcmp(want, "off") == 0)
		return;
	const char *kind = NULL;
	w->container_path = ry_container_find(want, getenv("PATH"), &kind);
	if (!w->container_path) {
		if (want && strcmp(want, "auto") != 0)
			ry_warn("container_runtime %s not found: tasks with an image will not run here",
				want);
		return;
	}
	w->container_kind = kind;
	w->container_init = ry_container_has_init(kind);
	ry_info("tasks with an image run under %s (%s)%s", kind, w->container_path,
		w->container_init ? "" : "; without --init (catatonit is not installed)");
}

char **ry_worker_container_argv(struct ry_worker *w, struct ry_task *t, char *const *envp,
				const char *ws, const char *shared, char **err)
{
	if (!w->container_path) {
		*err = ry_asprintf("task needs image %s but this agent has no container runtime "
				   "(podman or docker)", t->image);
		return NULL;
	}
	free(t->container);
	t->container = ry_container_name(w->cfg.name, t->id, t->attempt);
	t->container_killed = false;
	const char *mounts[] = { shared };
	struct ry_container_spec spec = {
		.runtime = w->container_path,
		.name = t->container,
		.image = t->image,
		.command = t->command,
		.workdir = ws,
		.mounts = mounts,
		.nmounts = 1,
		.env = envp,
		.set_user = w->ids != RY_IDS_WORKER,
		.uid = t->uid,
		.gid = t->gid,
		.cpus = t->cpu,
		.mem_mb = t->mem_mb,
		.init = w->container_init,
		.options = &w->container_options,
	};
	return ry_container_argv(&spec);
}

void ry_worker_container_kill(struct ry_worker *w, struct ry_task *t)
{
	if (t->container_killed || !w->container_path)
		return;
	t->container_killed = true;
	char **argv = ry_container_kill_argv(w->container_path, w->container_kind, t->container);
	char *env[] = { (char *)"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			NULL };
	struct ry_exec_spec spec = { .argv = argv, .cwd = "/", .env = env, .out_fd = -1 };
	char *err = NULL;
	pid_t pid;
	/* Reaped by the SIGCHLD handler like any child that is not a task. */
	if (!ry_exec_spawn(&spec, &pid, &err)) {
		ry_warn("cannot stop container %s of task %s: %s", t->container, t->name, err);
		free(err);
	}
	ry_container_argv_free(argv);
}
