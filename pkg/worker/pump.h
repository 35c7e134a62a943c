/*
 * pump: the one place that decides what the worker's idle database
 * connection does next.  A pure function of plain state, so the order of
 * priorities is unit-tested without a database (tests/unit/test_pump.c);
 * the worker gathers the state, asks, and performs the answer.
 *
 * Internal to pkg/worker.
 */
#ifndef RY_WORKER_PUMP_H
#define RY_WORKER_PUMP_H

#include "core/core.h"
#include "sched/sched.h"

struct ry_pump_state {
	bool idle;		/* connected, no job in flight or queued */
	bool registered;	/* the agent row is ours (agent id known) */
	bool registering;	/* a registration is under way */
	bool heartbeat_due;
	size_t results;		/* results waiting to be sent */
	bool backoff;		/* the last register, completion or hand-back job
				 * failed: none is sent again before the pause ends */
	size_t releases;	/* tasks to hand back without a result */
	bool draining;		/* stopping: no more claims */
	size_t tasks;		/* tasks held in any phase */
	bool offline_sent;
	bool want_claim;	/* ready work may exist for us */
	bool claim_backoff;	/* the last claim failed: not again before the pause ends */
	bool degraded;		/* something is wrong on this host: no claims */
	struct ry_sched_capacity free;	/* capacity not held by tasks */
	int queue_room;		/* tasks it may still claim ahead of a free slot */
	bool exit_when_idle;
	bool idle_check_due;
	bool retention_due;	/* the janitor asks which pipelines finished */
	bool forecasts_due;	/* submission forecasts may be waiting to be made */
	bool background_ok;	/* housekeeping may take the connection now
				 * (ry_pump_background_wait_ms is 0) */
	bool limit_due;		/* the concurrency limit changed: tell the agent row */
};

enum ry_pump_action {
	RY_PUMP_NONE,		/* nothing to send now */
	RY_PUMP_REGISTER,	/* register (or re-register) the agent */
	RY_PUMP_HEARTBEAT,	/* renew the lease, report starts, reap */
	RY_PUMP_COMPLETE,	/* send results */
	RY_PUMP_RELEASE,	/* hand back tasks that will not report a result */
	RY_PUMP_OFFLINE,	/* say goodbye: the drain is over */
	RY_PUMP_CLAIM,		/* look for ready tasks */
	RY_PUMP_RETENTION,	/* ask which local pipelines may be removed */
	RY_PUMP_FORECASTS,	/* make the submission forecasts of new pipelines */
	RY_PUMP_IDLE_CHECK,	/* --exit-when-idle: does any work remain? */
	RY_PUMP_LIMIT,		/* record the concurrency limit (and limits mode) */
};

/* What a failed job's error says about what to do next. */
enum ry_job_error {
	RY_ERR_TRANSIENT,	/* the server cannot now (disk full, read-only, shutting
				 * down, connection, serialization, deadlock, memory,
				 * too many connections): retry with backoff */
	RY_ERR_RESULT,		/* the data was refused (22xxx data exception, 23xxx
				 * integrity): one result is at fault — find it */
	RY_ERR_OTHER,		/* anything else (a missing function after a bad
				 * migration, ...): keep everything, retry with backoff */
};

enum ry_job_error ry_pump_classify(const char *sqlstate);

/*
 * In order: register first; then the heartbeat (the lease outranks all);
 * then results and hand-backs (nothing is claimed while results wait);
 * then a changed concurrency limit (status shows it, the audit log
 * records turns); a draining worker only says goodbye once it holds
 * nothing; then claims
 * while capacity is free and the host is healthy; then housekeeping
 * (retention, submission forecasts, the idle check).
 */
enum ry_pump_action ry_pump_decide(const struct ry_pump_state *s);

/*
 * Housekeeping that can wait (the statistics drain and submission
 * forecasts) yields to the hot path: it takes the connection once the
 * worker's claims and completions have been quiet for
 * RY_PUMP_QUIET_MS, or, while they never are, at most once every
 * RY_PUMP_BUSY_EVERY_MS, so a burst of short tasks is not slowed by it.
 * Once RY_PUMP_BACKLOG_HIGH runs wait for the statistics it no longer
 * waits for quiet: it goes whenever the connection has nothing more
 * urgent (results and claims still first), so a queue a burst left is
 * worked off while tasks run.  Times are monotonic
 * milliseconds; hot_ms and background_ms are when the last claim or
 * completion and the last housekeeping job went out (0: never); backlog
 * is the queue's length as the last job left it.  Returns how long to
 * wait, 0 when it may go now.
 */
#define RY_PUMP_QUIET_MS 25
#define RY_PUMP_BUSY_EVERY_MS 1000
#define RY_PUMP_BACKLOG_HIGH 50000
int64_t ry_pump_background_wait_ms(int64_t now_ms, int64_t hot_ms, int64_t background_ms,
				   int64_t backlog);
/*
 * Results were just sent, and `remaining` still wait: whether a claim may
 * go out behind them in the same round trip (it would be the next action
 * once they are answered).  The claim then sees what their completion
 * made ready, without waiting for the reply and a NOTIFY.
 */
bool ry_pump_claim_follows(const struct ry_pump_state *s, size_t remaining);
const char *ry_pump_action_name(enum ry_pump_action a);

#endif
