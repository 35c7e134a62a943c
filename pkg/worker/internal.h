/*
 * What the files of pkg/worker share (nothing outside pkg/worker includes
 * this).  The worker is split by concern, as PgBouncer's daemon is:
 *
 *   loop.c     the event loop and lifecycle: signals, drain, reload, timers
 *   tasks.c    the task table: one list per phase, a hash on (id, attempt)
 *   proc.c     running processes: start, SIGCHLD, timers, limits
 *   dbjobs.c   database jobs: register, heartbeat, claim, complete, offline;
 *              pump() performs what pump.c decides
 *   pump.c     the decision: what the idle connection does next (pure)
 *   stats.c    --stats
 */
#ifndef RY_WORKER_INTERNAL_H
#define RY_WORKER_INTERNAL_H

#include "agent/hostinfo.h"
#include "config/config.h"
#include "sched/sched.h"
#include "worker/stats.h"
#include "worker/tasks.h"
#include "worker/worker.h"

#include <event2/util.h>

struct event_base;
struct event;
struct ry_adb;

#define RY_SPAWN_PER_TURN 16	/* processes started per loop turn */
#define RY_LOG_TAIL_BYTES 4096

struct ry_worker {
	struct ry_worker_config cfg;
	char *config_path;
	struct ry_strlist flags;	/* key, value, key, value ... */
	char *conninfo;
	char *actor;
	struct ry_hostinfo host;
	char *labels_pg;		/* configured labels + os + arch */
	int cpu_cap;
	long mem_cap;
	struct event_base *base;
	struct ry_adb *db;
	int64_t agent_id;		/* 0 until registered */
	bool registering;
	struct ry_task_table tasks;
	bool want_claim;	/* ready work may exist for us */
	int claim_limit;	/* rows the claim in flight asked for */
	bool hb_due;
	bool idle_check_due;
	bool draining;		/* no more claims */
	bool offline_sent;
	int exit_code;
	int64_t retry_after_ms;	/* monotonic: completions wait until then */
	bool complete_one_at_a_time;	/* after a rejected batch */
	int complete_failures;		/* rejections of a single result in a row */
	int64_t claim_sent_ms;		/* monotonic: claim in flight since */
	struct event *hb_timer;
	struct event *spawn_ev;
	struct event *retry_ev;
	struct event *drain_timer;
	struct event *sigs[5];
	struct ry_worker_stats stats;
};

/* dbjobs.c */
void ry_worker_pump(struct ry_worker *w);
void ry_worker_shutdown_now(struct ry_worker *w, int code);
void ry_worker_update_agent(struct ry_worker *w);

/* proc.c */
void ry_worker_task_free(struct ry_task *t);
/* Drops t from the table and frees it. */
void ry_worker_task_forget(struct ry_worker *w, struct ry_task *t);
/* Stops t's processes; why decides what, if anything, is reported. */
void ry_worker_task_kill(struct ry_task *t, enum ry_task_kill why);
/* Records t's result and moves it to DONE. */
void ry_worker_task_set_result(struct ry_task *t, const char *outcome, char *reason,
			       int exit_code);
void ry_worker_sigchld_cb(evutil_socket_t fd, short what, void *arg);
void ry_worker_spawn_cb(evutil_socket_t fd, short what, void *arg);
/* Heartbeat tick: memory limits of running tasks. */
void ry_worker_check_memory(struct ry_worker *w);

/* loop.c */
void ry_worker_set_labels(struct ry_worker *w);

/* What the tasks holding slots leave free. */
struct ry_sched_capacity ry_worker_capacity_free(const struct ry_worker *w);

#endif
