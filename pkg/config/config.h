/*
 * config: the worker's settings, from a `key = value` file and from flags
 * (flags win).  Every error names the file and line, or the flag.
 */
#ifndef RY_CONFIG_H
#define RY_CONFIG_H

#include "core/core.h"

struct ry_worker_config {
	char *db;		/* conninfo/URL; NULL: the usual resolution */
	char *name;		/* agent name; default: hostname */
	struct ry_strlist labels; /* configured labels (os and arch are added) */
	int slots;		/* most tasks at once */
	int cpus;		/* cpu units offered; 0: same as slots */
	long mem_mb;		/* memory offered; 0: the host's */
	int heartbeat_s;	/* heartbeat (and lease renewal) interval */
	int lease_s;		/* how long a silent agent keeps its tasks */
	char *workdir;		/* workspaces and logs */
	int drain_timeout_s;	/* SIGTERM: how long running tasks may finish */
	bool exit_when_idle;	/* exit once nothing it could run remains */
	bool dry_run;		/* claim and complete without executing */
	char *stats_path;	/* at exit, write claim/completion figures here */
	bool cgroups;		/* one cgroup per task when the host allows (cgroup = auto) */
};

void ry_config_init(struct ry_worker_config *c);
void ry_config_release(struct ry_worker_config *c);
/* Sets one key; where names the source for errors ("worker.conf:3"). */
bool ry_config_set(struct ry_worker_config *c, const char *key, const char *value,
		   const char *where, char **err) RY_MUST_CHECK;
bool ry_config_load_file(struct ry_worker_config *c, const char *path, char **err) RY_MUST_CHECK;
/* Cross-field checks (lease longer than heartbeat, ...). */
bool ry_config_check(const struct ry_worker_config *c, char **err) RY_MUST_CHECK;

#endif
