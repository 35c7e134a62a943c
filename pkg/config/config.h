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
	char *task_user;	/* as root: tasks run as this user's ids (created if missing) */
	bool task_uid_per_task;	/* as root: a uid per task, a gid per pipeline (task_ids) */
	char *db_passfile;	/* libpq passfile (host:port:db:user:password lines) */
	int log_max_mb;		/* per attempt; past it output is discarded (0: no cap) */
	char *secrets_dir;	/* where a task's secrets: {NAME: FILE} files are read */
	long match_limit;	/* PCRE2 match limit per path (only_if_changed) */
	long match_depth_limit;	/* PCRE2 depth limit per path */
	int min_free_mb;	/* below this free on the workdir's disk: degraded */
	long retention_s;	/* finished pipelines' workspaces and logs kept this long */
	long retention_min_s;	/* ... and never removed sooner than this, whatever the size */
	long retention_mb;	/* over this total, the oldest finished go first (0: no cap) */
	int retention_check_s;	/* how often retention looks (0: never) */
	char *http_listen;	/* /metrics and /healthz: host:port; NULL: off */
	bool webhooks;		/* this worker may send the farm's webhooks */
	char *webhook_secrets_dir; /* endpoints' secret files are read here */
	char *container_runtime; /* auto, podman, docker, an absolute path, or off */
	char *container_options; /* extra options for every container run, split on blanks */
	/* claim ahead (pkg/worker/lookahead.c): tasks claimed beyond the free
	 * slots, started the moment one frees */
	int claim_ahead;	/* most held so; 0: off */
	int claim_ahead_hold_ms;	/* one not started by then is handed back */
	/* throttle (pkg/throttle): the adaptive concurrency limit */
	bool throttle;		/* adapt the limit between min_slots and slots */
	int min_slots;		/* the lowest the limit goes */
	bool throttle_slow_start;	/* begin at throttle_start_slots and double (else at slots) */
	int throttle_start_slots;	/* where slow start begins; 0: the host's cores (or cpus, if fewer) */
	char *pressure_dir;	/* PSI files cpu, memory, io (default /proc/pressure) */
	char *meminfo_path;	/* default /proc/meminfo */
	char *loadavg_path;	/* default /proc/loadavg (runnable, where PSI is absent) */
	char *memory_cgroup;	/* whose memory is judged besides the host's: "auto" (the
				 * worker's own memory cgroup), "off", or a directory */
	int throttle_interval_ms;	/* between steps */
	/* thresholds; < 0: the throttle's default (ry_throttle_config_default) */
	double throttle_decrease;
	double pressure_cpu_high, pressure_cpu_low;
	double pressure_memory_high, pressure_memory_low;
	double pressure_io_high, pressure_io_low;
	double mem_available_low_pct, mem_available_ok_pct;
	double runnable_high, runnable_low;
};

void ry_config_init(struct ry_worker_config *c);
void ry_config_release(struct ry_worker_config *c);
/* A deep copy of src into dst (which is overwritten, not released). */
void ry_config_copy(struct ry_worker_config *dst, const struct ry_worker_config *src);
/* Sets one key; where names the source for errors ("worker.conf:3"). */
bool ry_config_set(struct ry_worker_config *c, const char *key, const char *value,
		   const char *where, char **err) RY_MUST_CHECK;
bool ry_config_load_file(struct ry_worker_config *c, const char *path, char **err) RY_MUST_CHECK;
/* Cross-field checks (lease longer than heartbeat, ...). */
bool ry_config_check(const struct ry_worker_config *c, char **err) RY_MUST_CHECK;

#endif
