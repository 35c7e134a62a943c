/*
 * adb: one asynchronous PostgreSQL connection driven by a libevent loop.
 *
 * Work is submitted as jobs: one or more statements sent together in libpq
 * pipeline mode with a single sync, so a job costs one round trip.  Jobs run
 * in submission order, one round trip each, unless submitted to follow the
 * ones in flight (RY_ADB_FOLLOW); a job's callback may submit the next step
 * of a transaction with RY_ADB_NEXT so nothing slips in between.
 *
 * adb never retries a job.  When the connection breaks, the job in flight
 * and every queued job complete with ok=false, and adb reconnects with
 * exponential backoff and jitter; the owner decides what to send again.
 * LISTEN channels registered with ry_adb_listen are re-issued on every
 * connect, before the connected callback runs.
 */
#ifndef RY_ADB_H
#define RY_ADB_H

#include "db/db.h"

struct event_base;
struct ry_adb;
struct ry_adb_job;

struct ry_adb_reply {
	bool ok;			/* every statement succeeded */
	const char *error;		/* first error, when !ok */
	const char *sqlstate;		/* its SQLSTATE, "" if not from the server */
	bool conn_lost;			/* failed because the connection broke */
	int nresults;			/* one per statement (NULL where it failed) */
	struct ry_res **results;	/* owned by adb: valid during the callback */
};

typedef void (*ry_adb_done_fn)(void *arg, const struct ry_adb_reply *reply);

struct ry_adb_callbacks {
	void (*connected)(void *arg);	/* ready for jobs, LISTENs in place */
	void (*disconnected)(void *arg, const char *why);
	void (*notify)(void *arg, const char *channel, const char *payload);
};

enum ry_adb_order {
	RY_ADB_LAST,	/* after everything already queued */
	RY_ADB_NEXT,	/* before anything queued: continues a transaction */
	RY_ADB_FOLLOW,	/* after everything queued, but sent at once, while the
			 * jobs before it are in flight (if they went out): for
			 * a job that needs none of their replies, behind jobs
			 * that leave no transaction open (it would run inside
			 * it).  One round trip for both.  Only the head and
			 * FOLLOW jobs are ever sent early: nothing else slips
			 * in behind a FOLLOW job that opens a transaction. */
};

struct ry_adb *ry_adb_new(struct event_base *base, const char *conninfo, const char *actor,
			  const struct ry_adb_callbacks *cbs, void *arg);
/* Closes the connection; pending jobs complete with ok=false first. */
void ry_adb_free(struct ry_adb *adb);
/* Starts connecting (and reconnecting whenever the connection breaks). */
void ry_adb_start(struct ry_adb *adb);
void ry_adb_listen(struct ry_adb *adb, const char *channel);
bool ry_adb_connected(const struct ry_adb *adb);
/* True when connected with no job in flight or queued. */
bool ry_adb_idle(const struct ry_adb *adb);
/* Monotonic ms since the current connection became usable; -1 if none. */
int64_t ry_adb_connected_for_ms(const struct ry_adb *adb);

struct ry_adb_job *ry_adb_job_new(ry_adb_done_fn done, void *arg);
/* Appends a statement; sql and params are copied.  NULL param = SQL NULL. */
void ry_adb_job_add(struct ry_adb_job *job, const char *sql, int nparams,
		    const char *const *params);
/*
 * Queues the job (adb owns it from here).  When not connected the job
 * completes at once, from the event loop, with ok=false and conn_lost set.
 */
void ry_adb_submit(struct ry_adb *adb, struct ry_adb_job *job, enum ry_adb_order order);

#endif
