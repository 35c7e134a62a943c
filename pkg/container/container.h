/*
 * container: running a task in a container image with podman or docker.
 *
 * Pure argv building (unit-tested in tests/unit/test_container.c) plus
 * finding the runtime on PATH.  The worker runs the argv like any task
 * process, so output, timeouts and cancellation go through the usual
 * path; since killing the runtime's client with SIGKILL does not stop a
 * container, the worker also runs the kill argv then.
 *
 *   RUNTIME run --rm [--init] --name NAME --user UID:GID
 *           --memory NM --cpus N --workdir WS
 *           --volume WS:WS --volume SHARED:SHARED
 *           --env KEY ... [OPTIONS...] IMAGE /bin/sh -c COMMAND
 *
 * The environment is passed by name only (--env KEY): the runtime reads
 * each value from its own environment, which the worker sets to the
 * task's fixed environment, so secret values never appear in an argv
 * (ps, /proc/PID/cmdline).  Paths are mounted at the same place inside,
 * so RAILYARD_WORKSPACE and RAILYARD_PIPELINE_DIR stay true.
 */
#ifndef RY_CONTAINER_H
#define RY_CONTAINER_H

#include <sys/types.h>
#include "core/core.h"

struct ry_container_spec {
	const char *runtime;		/* absolute path of podman or docker */
	const char *name;		/* container name (ry_container_name) */
	const char *image;
	const char *command;		/* run as /bin/sh -c command inside */
	const char *workdir;		/* the task's tree: mounted, the working directory */
	const char *const *mounts;	/* more host directories mounted at the same path */
	size_t nmounts;
	char *const *env;		/* KEY=VALUE list (NULL-terminated); keys passed */
	bool set_user;			/* --user uid:gid */
	uid_t uid;
	gid_t gid;
	int cpus;			/* --cpus (0: none) */
	int mem_mb;			/* --memory (0: none) */
	bool init;			/* --init: a small init reaps and forwards signals */
	const struct ry_strlist *options;	/* extra options, before the image */
};

/* NULL-terminated argv; free with ry_container_argv_free. */
char **ry_container_argv(const struct ry_container_spec *s);
/* Stops and removes the container whatever its client did: podman rm
 * --force --time 0 NAME (no grace), docker rm --force NAME (SIGKILL). */
char **ry_container_kill_argv(const char *runtime, const char *kind, const char *name);
void ry_container_argv_free(char **argv);

/* "railyard-AGENT-TASKID-ATTEMPT", with anything but [A-Za-z0-9_.-] as _. */
char *ry_container_name(const char *agent, int64_t task_id, int attempt);

/*
 * The runtime this host has: want is "auto" (podman, else docker, on PATH),
 * "podman", "docker" or an absolute path.  Returns the absolute path and
 * sets *kind to "podman" or "docker" (from the file name); NULL when none.
 */
char *ry_container_find(const char *want, const char *path_env, const char **kind);

/* Whether the runtime's --init will work: podman needs catatonit
 * (containers.conf init_path), docker ships docker-init. */
bool ry_container_has_init(const char *kind);

#endif
