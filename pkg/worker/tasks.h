/*
 * The worker's task table: every task it holds, on exactly one list per
 * phase (as PgBouncer herds its objects between per-state lists), plus a
 * hash on (id, attempt).  Moving a task between phases, finding it and
 * counting a phase are O(1); nothing scans the whole table on a pump.
 *
 * The table also keeps what the tasks holding slots (queued and running)
 * take from the agent's capacity, so free capacity is O(1) too.
 *
 * Internal to pkg/worker.
 */
#ifndef RY_WORKER_TASKS_H
#define RY_WORKER_TASKS_H

#include "core/core.h"

#include "cgroup/cgroup.h"

#include <sys/resource.h>
#include <sys/types.h>

struct event;
struct ry_worker;
struct ry_output;
struct ry_match;
struct ry_prep;

enum ry_task_phase {
	RY_TASK_QUEUED,		/* claimed; its process is not started yet */
	RY_TASK_RUNNING,	/* process started; holds its slot until everything it
				 * started is gone and its output is read */
	RY_TASK_DONE,		/* finished: a result waits to be sent */
	RY_TASK_SENDING,	/* its result is in a completion job in flight */
	RY_TASK_RELEASE,	/* to be handed back without a result (release_tasks) */
	RY_TASK_RELEASING,	/* in a release job in flight */
	RY_TASK_NPHASES
};

/* Why a task in RELEASE is handed back (railyard.release_tasks). */
enum ry_task_handback {
	RY_HANDBACK_LOST,	/* started and stopped by us (lease): the attempt is lost */
	RY_HANDBACK_UNSTARTED,	/* never started: the attempt is given back */
	RY_HANDBACK_AHEAD_MISS,	/* taken by the cache lookahead, missed, no slot free:
				 * given back, for an agent with a free slot */
	RY_HANDBACK_AHEAD_STALE,	/* claimed ahead, no slot freed within
					 * claim_ahead_hold_ms: given back */
};

/* Why the worker itself stopped a task's processes. */
enum ry_task_kill {
	RY_KILL_NONE,
	RY_KILL_TIMEOUT,	/* past timeout_s: reported failed, 'timeout' */
	RY_KILL_OOM,		/* over mem_mb: reported failed, 'oom' */
	RY_KILL_LOST,		/* the database says it is no longer ours: not reported */
	RY_KILL_LEASE,		/* our lease ran out by our own clock: released as lost */
	RY_KILL_SHUTDOWN,	/* worker stopping: requeued by agent_offline */
	RY_KILL_SPACE,		/* its workspace or log disk is full: failed, says so */
};

struct ry_task {
	/* table links */
	struct ry_task *prev, *next;	/* this phase's list */
	struct ry_task *hnext;		/* hash chain on (id, attempt) */
	struct ry_task *pnext;		/* hash chain on pid, while it has one */
	enum ry_task_phase phase;
	bool holds;			/* counted in the held capacity */
	bool waits;			/* counted in the waiting capacity */
	bool ahead;			/* claimed beyond the free capacity (the cache
					 * lookahead, claim ahead): holds none while
					 * queued, until it takes a slot to start
					 * (ry_task_table_take_slot) */
	bool waits_slot;		/* claimed ahead (claim_ahead): waits for a free
					 * slot until claim_ahead_hold_ms after its
					 * claim, then is handed back; set before
					 * ry_task_table_add */
	int64_t claimed_ms;		/* monotonic: when its claim was answered */

	/* what the claim said */
	int64_t id;
	int attempt;
	int64_t pipeline_id;
	char *name;
	char *command;
	char *service;		/* may be NULL */
	char *team;		/* may be NULL; fair share at the next claim (claim.c) */
	char *image;		/* container image; NULL: on the host */
	char *container;	/* running in a container of this name */
	bool container_killed;	/* its kill has been sent */
	char *revision;		/* may be NULL */
	char *only_if_changed;	/* may be NULL */
	struct ry_strlist env;	/* the task's own K=V */
	struct ry_strlist secrets; /* NAME=FILE: env values read from secret files */
	struct ry_strlist changed_paths;
	bool changed_known;	/* the pipeline listed its changed paths */
	int timeout_s;
	int cpu;
	int mem_mb;
	int64_t source_date_epoch;

	/* running */
	enum ry_task_kill kill;
	pid_t pid;		/* main process (and process group); see ry_task_table_set_pid */
	bool term_sent;
	bool start_reported;
	bool exited;		/* main process reaped */
	int wait_status;
	struct rusage ru;	/* of the main process and what it waited for */
	struct event *timer;	/* timeout, then the TERM grace; then the output grace */
	struct ry_cgroup *cg;	/* NULL: process group only */
	struct ry_output *out;	/* its log, fed from the pipe */
	int out_fd;		/* the pipe's read end; -1 once at end of file */
	struct event *out_ev;
	struct ry_match *match;	/* only_if_changed, compiled; matching in progress */
	size_t match_next;	/* the next changed path to try */
	unsigned swept;		/* the last memory sweep that looked at it */
	unsigned hunt;		/* no cgroup: the /proc walk that must end before it does */
	enum ry_task_handback handback;	/* RELEASE: why it goes back */
	uid_t uid;		/* runs as (isolation.c) */
	gid_t gid;
	bool has_uid;		/* holds a per-task uid */
	int uid_lock_fd;	/* its lock in /run, -1 if none */
	struct ry_cgroup_usage usage;
	int64_t started_us;	/* wall clock, for the database */
	int64_t finished_us;
	int64_t started_ms;	/* monotonic, for durations */
	double duration_s;	/* monotonic run time */
	long rss_kb;		/* fallback memory sampling */

	/* the result, once DONE */
	int64_t report_agent;	/* reported as this agent (0: the worker's own) */
	bool replayed;		/* from the journal of a previous run */
	bool poisoned;		/* rewritten as failed: the database refused its data */
	bool has_duration;
	const char *outcome;	/* succeeded, failed, skipped */
	char *reason;
	int exit_code;		/* -1: none */
	char *log_path;
	char *log_tail;
	char *cache_record;	/* replayed: the journal's cache_record element, or NULL */

	struct ry_prep *prep;	/* its tree and the cache (prepare.c); NULL: none */
	struct ry_worker *w;
};

struct ry_task_list {
	struct ry_task *head, *tail;
	size_t n;
};

struct ry_task_table {
	struct ry_task_list lists[RY_TASK_NPHASES];
	struct ry_task **buckets;
	size_t nbuckets;	/* a power of two */
	struct ry_task **pid_buckets;	/* same size */
	size_t n;		/* tasks in the table */
	/* taken by queued and running tasks */
	int held_slots;
	int held_cpu;
	long held_mem_mb;
	/* wanted by queued tasks claimed ahead (waits_slot): the next free
	 * capacity is theirs */
	int waiting_slots;
	int waiting_cpu;
	long waiting_mem_mb;
};

void ry_task_table_init(struct ry_task_table *tt);
/* Frees every task with free_task, then the table itself. */
void ry_task_table_release(struct ry_task_table *tt, void (*free_task)(struct ry_task *));
/* Adds t (id and attempt set, not in a table) at the end of phase's list. */
void ry_task_table_add(struct ry_task_table *tt, struct ry_task *t, enum ry_task_phase phase);
/* A task claimed beyond the free capacity (t->ahead) is to start: it holds
 * its slot, cpu and memory like any claimed task, and waits no more. */
void ry_task_table_take_slot(struct ry_task_table *tt, struct ry_task *t);
/* Moves t to the end (or, with front, the start) of phase's list. */
void ry_task_table_move(struct ry_task_table *tt, struct ry_task *t, enum ry_task_phase phase,
			bool front);
/* Unlinks t; the caller frees it. */
void ry_task_table_remove(struct ry_task_table *tt, struct ry_task *t);
struct ry_task *ry_task_table_find(const struct ry_task_table *tt, int64_t id, int attempt);
/* Indexes t under pid (0: takes it out of the pid index). */
void ry_task_table_set_pid(struct ry_task_table *tt, struct ry_task *t, pid_t pid);
struct ry_task *ry_task_table_by_pid(const struct ry_task_table *tt, pid_t pid);
size_t ry_task_table_count(const struct ry_task_table *tt, enum ry_task_phase phase);
/* First task of a phase (oldest first); follow ->next. */
struct ry_task *ry_task_table_first(const struct ry_task_table *tt, enum ry_task_phase phase);

#endif
