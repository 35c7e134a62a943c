#include "db/adb.h"
#include "db/db_internal.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define CONNECT_TIMEOUT_MS 10000

struct adb_stmt {
	char *sql;
	int nparams;
	char **params;
};

struct ry_adb_job {
	struct ry_adb_job *next;
	ry_adb_done_fn done;
	void *arg;
	struct adb_stmt *stmts;
	int nstmts;
	int cap;
	bool internal;		/* a LISTEN issued by adb itself */
	bool follow;		/* may go out while the jobs before it are in flight */
	bool sent;
	int64_t sent_ms;	/* when it went out (RAILYARD_DEBUG shows the wait) */
	/* its reply, filled while it is the head */
	int cur_stmt;		/* statement whose results arrive */
	struct ry_res **results;
	char *error;
	char sqlstate[6];
};

enum adb_state {
	ADB_DOWN,		/* waiting for the reconnect timer */
	ADB_CONNECTING,		/* PQconnectPoll in progress */
	ADB_UP,			/* connected: sending jobs */
};

struct ry_adb {
	struct event_base *base;
	char *conninfo;
	char *actor;
	struct ry_adb_callbacks cbs;
	void *arg;
	PGconn *conn;
	enum adb_state state;
	struct event *sock_ev;		/* on PQsocket; re-created per socket */
	int sock_fd;
	short sock_what;
	struct event *timer;		/* reconnect backoff / connect timeout */
	struct event *fail_ev;		/* completes failq from the loop */
	int backoff_ms;
	int64_t up_since;
	struct ry_strlist channels;
	int listens_pending;		/* LISTENs sent, not yet answered */
	/* queue: jobs in order; the first ones are in flight once sent (the
	 * head alone, or followed by jobs submitted with RY_ADB_FOLLOW) */
	struct ry_adb_job *head, *tail;
	struct ry_adb_job *failq;	/* jobs to fail from the loop */
	bool freeing;
};

static void adb_arm(struct ry_adb *adb, short what);
static void adb_disconnect(struct ry_adb *adb, const char *why);
static void adb_pump(struct ry_adb *adb);

struct ry_adb_job *ry_adb_job_new(ry_adb_done_fn done, void *arg)
{
	struct ry_adb_job *job = ry_calloc(1, sizeof(*job));
	job->done = done;
	job->arg = arg;
	return job;
}

void ry_adb_job_add(struct ry_adb_job *job, const char *sql, int nparams,
		    const char *const *params)
{
	if (job->nstmts == job->cap) {
		job->cap = job->cap ? job->cap * 2 : 2;
		job->stmts = ry_realloc(job->stmts, (size_t)job->cap * sizeof(*job->stmts));
	}
	struct adb_stmt *s = &job->stmts[job->nstmts++];
	s->sql = ry_strdup(sql);
	s->nparams = nparams;
	s->params = nparams ? ry_calloc((size_t)nparams, sizeof(char *)) : NULL;
	for (int i = 0; i < nparams; i++)
		s->params[i] = params[i] ? ry_strdup(params[i]) : NULL;
}

static void job_free(struct ry_adb_job *job)
{
	if (job->results) {
		for (int i = 0; i < job->nstmts; i++)
			ry_res_free(job->results[i]);
		free(job->results);
	}
	free(job->error);
	for (int i = 0; i < job->nstmts; i++) {
		free(job->stmts[i].sql);
		for (int k = 0; k < job->stmts[i].nparams; k++)
			free(job->stmts[i].params[k]);
		free(job->stmts[i].params);
	}
	free(job->stmts);
	free(job);
}

static void job_finish(struct ry_adb_job *job, struct ry_adb_reply *reply)
{
	if (job->done)
		job->done(job->arg, reply);
	job_free(job);
}

static void job_fail(struct ry_adb_job *job, const char *why)
{
	struct ry_adb_reply reply = { .ok = false, .error = why, .sqlstate = "",
				      .conn_lost = true };
	job_finish(job, &reply);
}

static void failq_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ry_adb *adb = arg;
	(void)fd;
	(void)what;
	while (adb->failq) {
		struct ry_adb_job *job = adb->failq;
		adb->failq = job->next;
		job_fail(job, "not connected to the database");
	}
}

void ry_adb_submit(struct ry_adb *adb, struct ry_adb_job *job, enum ry_adb_order order)
{
	job->next = NULL;
	if (adb->state != ADB_UP && !job->internal) {
		/* Fail from the loop so callers never re-enter themselves. */
		job->next = adb->failq;
		adb->failq = job;
		event_active(adb->fail_ev, EV_TIMEOUT, 0);
		return;
	}
	if (order == RY_ADB_NEXT && adb->head) {
		/* After the ones in flight, before everything else. */
		struct ry_adb_job *after = NULL;
		for (struct ry_adb_job *j = adb->head; j && j->sent; j = j->next)
			after = j;
		if (!after) {
			job->next = adb->head;
			adb->head = job;
		} else {
			job->next = after->next;
			after->next = job;
			if (adb->tail == after)
				adb->tail = job;
		}
	} else {
		job->follow = order == RY_ADB_FOLLOW;
		if (!adb->head)
			adb->head = adb->tail = job;
		else {
			adb->tail->next = job;
			adb->tail = job;
		}
	}
	adb_pump(adb);
}

/* Sends one job: every statement, then one sync. */
static void adb_send(struct ry_adb *adb, struct ry_adb_job *job)
{
	for (int i = 0; i < job->nstmts; i++) {
		struct adb_stmt *s = &job->stmts[i];
		if (!PQsendQueryParams(adb->conn, s->sql, s->nparams, NULL,
				       (const char *const *)s->params, NULL, NULL, 0)) {
			char *e = ry_db_format_error(NULL, adb->conn);
			adb_disconnect(adb, e);
			free(e);
			return;
		}
	}
	if (!PQpipelineSync(adb->conn)) {
		char *e = ry_db_format_error(NULL, adb->conn);
		adb_disconnect(adb, e);
		free(e);
		return;
	}
	job->sent = true;
	job->sent_ms = ry_now_ms();
	job->results = ry_calloc((size_t)job->nstmts, sizeof(*job->results));
	int f = PQflush(adb->conn);
	if (f < 0) {
		adb_disconnect(adb, "cannot send to the database");
		return;
	}
	adb_arm(adb, f > 0 ? EV_READ | EV_WRITE : EV_READ);
}

/* Sends the head when nothing is in flight, and the jobs that may follow
 * it at once. */
static void adb_pump(struct ry_adb *adb)
{
	struct ry_adb_job *j = adb->head;
	while (j && adb->state == ADB_UP) {
		if (!j->sent) {
			if (j != adb->head && !j->follow)
				break;
			adb_send(adb, j);	/* on failure, disconnects: j is gone */
			if (adb->state != ADB_UP)
				break;
		}
		j = j->next;
	}
}

/* The head job's sync arrived: hand the results over, start the next. */
static void adb_complete_head(struct ry_adb *adb)
{
	struct ry_adb_job *job = adb->head;

	adb->head = job->next;
	if (!adb->head)
		adb->tail = NULL;
	struct ry_adb_reply reply = {
		.ok = job->error == NULL,
		.error = job->error,
		.sqlstate = job->sqlstate,
		.nresults = job->nstmts,
		.results = job->results,
	};
	if (job->internal && !reply.ok)
		ry_warn("database: %s", reply.error);
	ry_debug("database: %d ms for %.60s%s", (int)(ry_now_ms() - job->sent_ms),
		 job->nstmts > 0 ? job->stmts[0].sql : "", job->nstmts > 1 ? " …" : "");
	/* The callback may submit and send anew: the job is off the queue. */
	job_finish(job, &reply);
	adb_pump(adb);
}

static void adb_read_results(struct ry_adb *adb)
{
	while (adb->state == ADB_UP && adb->head && adb->head->sent && !PQisBusy(adb->conn)) {
		struct ry_adb_job *job = adb->head;
		PGresult *res = PQgetResult(adb->conn);

		if (!res) {
			/* End of one statement's results. */
			if (job->cur_stmt < job->nstmts)
				job->cur_stmt++;
			else
				break;
			continue;
		}
		ExecStatusType st = PQresultStatus(res);
		if (st == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			adb_complete_head(adb);
			continue;
		}
		if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
			if (job->cur_stmt < job->nstmts && !job->results[job->cur_stmt])
				job->results[job->cur_stmt] = ry_res_wrap(res);
			else
				PQclear(res);
			continue;
		}
		if (st != PGRES_PIPELINE_ABORTED && !job->error) {
			const char *ss = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			job->error = ry_db_format_error(res, adb->conn);
			snprintf(job->sqlstate, sizeof(job->sqlstate), "%s", ss ? ss : "");
		}
		PQclear(res);
		if (PQstatus(adb->conn) == CONNECTION_BAD) {
			adb_disconnect(adb, "connection to the database lost");
			return;
		}
	}
}

static void adb_drain_notifies(struct ry_adb *adb)
{
	PGnotify *n;
	while (adb->conn && (n = PQnotifies(adb->conn)) != NULL) {
		if (adb->cbs.notify)
			adb->cbs.notify(adb->arg, n->relname, n->extra);
		PQfreemem(n);
	}
}

static void adb_connected(struct ry_adb *adb);

static void adb_connect_poll(struct ry_adb *adb)
{
	switch (PQconnectPoll(adb->conn)) {
	case PGRES_POLLING_READING:
		adb_arm(adb, EV_READ);
		break;
	case PGRES_POLLING_WRITING:
		adb_arm(adb, EV_WRITE);
		break;
	case PGRES_POLLING_OK:
		adb_connected(adb);
		break;
	default: {
		char *e = ry_db_format_error(NULL, adb->conn);
		adb_disconnect(adb, e);
		free(e);
		break;
	}
	}
}

static void sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ry_adb *adb = arg;
	(void)fd;

	if (adb->state == ADB_CONNECTING) {
		adb_connect_poll(adb);
		return;
	}
	if (adb->state != ADB_UP)
		return;
	if (what & EV_WRITE) {
		int f = PQflush(adb->conn);
		if (f < 0) {
			adb_disconnect(adb, "cannot send to the database");
			return;
		}
		adb_arm(adb, f > 0 ? EV_READ | EV_WRITE : EV_READ);
	}
	if (what & EV_READ) {
		if (!PQconsumeInput(adb->conn)) {
			char *e = ry_db_format_error(NULL, adb->conn);
			adb_disconnect(adb, e);
			free(e);
			return;
		}
		adb_read_results(adb);
		adb_drain_notifies(adb);
	}
}

/* (Re)arms the socket event, re-creating it when the socket changed. */
static void adb_arm(struct ry_adb *adb, short what)
{
	int fd = PQsocket(adb->conn);
	if (fd < 0) {
		adb_disconnect(adb, "database connection has no socket");
		return;
	}
	if (adb->sock_ev && adb->sock_fd == fd && adb->sock_what == what)
		return;
	if (adb->sock_ev)
		event_free(adb->sock_ev);
	adb->sock_ev = event_new(adb->base, fd, what | EV_PERSIST, sock_cb, adb);
	adb->sock_fd = fd;
	adb->sock_what = what;
	event_add(adb->sock_ev, NULL);
}

/* The connection is usable once every LISTEN is in place. */
static void listen_done(void *arg, const struct ry_adb_reply *reply)
{
	struct ry_adb *adb = arg;
	if (reply->conn_lost || --adb->listens_pending > 0)
		return;
	if (adb->cbs.connected)
		adb->cbs.connected(adb->arg);
}

static void actor_done(void *arg, const struct ry_adb_reply *reply)
{
	(void)arg;
	if (!reply->ok && !reply->conn_lost)
		ry_debug("cannot set railyard.actor: %s", reply->error);
}

static void adb_connected(struct ry_adb *adb)
{
	event_del(adb->timer);
	PQsetnonblocking(adb->conn, 1);
	if (!PQenterPipelineMode(adb->conn)) {
		adb_disconnect(adb, "cannot enter pipeline mode");
		return;
	}
	adb->state = ADB_UP;
	adb->backoff_ms = BACKOFF_MIN_MS;
	adb->up_since = ry_now_ms();
	adb_arm(adb, EV_READ);
	/* The actor travels in the startup packet's options, which a pooler
	 * may drop (PgBouncer before 1.20 only ignores them): say it again in
	 * the session, where a pooler in session mode keeps it. */
	struct ry_adb_job *who = ry_adb_job_new(actor_done, adb);
	const char *p[] = { adb->actor ? adb->actor : "cli" };
	ry_adb_job_add(who, "SELECT pg_catalog.set_config('railyard.actor', $1, false)", 1, p);
	who->internal = true;
	ry_adb_submit(adb, who, RY_ADB_LAST);
	adb->listens_pending = (int)adb->channels.n;
	for (size_t i = 0; i < adb->channels.n; i++) {
		struct ry_adb_job *job = ry_adb_job_new(listen_done, adb);
		char *sql = ry_asprintf("LISTEN %s", adb->channels.items[i]);
		ry_adb_job_add(job, sql, 0, NULL);
		free(sql);
		job->internal = true;
		ry_adb_submit(adb, job, RY_ADB_LAST);
	}
	if (!adb->channels.n && adb->cbs.connected)
		adb->cbs.connected(adb->arg);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg);

static void adb_begin_connect(struct ry_adb *adb)
{
	adb->conn = ry_db_start_connect(adb->conninfo, adb->actor, true);
	if (!adb->conn || PQstatus(adb->conn) == CONNECTION_BAD) {
		char *e = ry_db_format_error(NULL, adb->conn);
		adb_disconnect(adb, e);
		free(e);
		return;
	}
	adb->state = ADB_CONNECTING;
	struct timeval tv = { CONNECT_TIMEOUT_MS / 1000, 0 };
	evtimer_add(adb->timer, &tv);
	adb_connect_poll(adb);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ry_adb *adb = arg;
	(void)fd;
	(void)what;
	if (adb->state == ADB_CONNECTING) {
		adb_disconnect(adb, "timed out connecting to the database");
		return;
	}
	if (adb->state == ADB_DOWN)
		adb_begin_connect(adb);
}

/* Drops the connection, fails every job, schedules a reconnect. */
static void adb_disconnect(struct ry_adb *adb, const char *why)
{
	bool was_up = adb->state == ADB_UP;
	struct ry_adb_job *jobs = adb->head;

	if (adb->sock_ev) {
		event_free(adb->sock_ev);
		adb->sock_ev = NULL;
	}
	PQfinish(adb->conn);
	adb->conn = NULL;
	adb->state = ADB_DOWN;
	adb->up_since = -1;
	adb->head = adb->tail = NULL;

	char *reason = ry_strdup(why);
	while (jobs) {
		struct ry_adb_job *next = jobs->next;
		job_fail(jobs, reason);
		jobs = next;
	}
	if (adb->freeing) {
		free(reason);
		return;
	}
	/* Full jitter: spread reconnects of many workers after an outage. */
	int delay = adb->backoff_ms / 2 + (int)(random() % (adb->backoff_ms / 2 + 1));
	adb->backoff_ms = adb->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : adb->backoff_ms * 2;
	struct timeval tv = { delay / 1000, (delay % 1000) * 1000 };
	event_del(adb->timer);
	evtimer_add(adb->timer, &tv);
	if (was_up && adb->cbs.disconnected)
		adb->cbs.disconnected(adb->arg, reason);
	else
		ry_debug("database: %s; retrying in %d ms", reason, delay);
	free(reason);
}

struct ry_adb *ry_adb_new(struct event_base *base, const char *conninfo, const char *actor,
			  const struct ry_adb_callbacks *cbs, void *arg)
{
	struct ry_adb *adb = ry_calloc(1, sizeof(*adb));
	adb->base = base;
	adb->conninfo = ry_strdup(conninfo);
	adb->actor = ry_strdup(actor);
	if (cbs)
		adb->cbs = *cbs;
	adb->arg = arg;
	adb->state = ADB_DOWN;
	adb->sock_fd = -1;
	adb->up_since = -1;
	adb->backoff_ms = BACKOFF_MIN_MS;
	adb->timer = evtimer_new(base, timer_cb, adb);
	adb->fail_ev = event_new(base, -1, 0, failq_cb, adb);
	return adb;
}

void ry_adb_start(struct ry_adb *adb)
{
	if (adb->state == ADB_DOWN)
		adb_begin_connect(adb);
}

void ry_adb_listen(struct ry_adb *adb, const char *channel)
{
	ry_strlist_add(&adb->channels, channel);
}

bool ry_adb_connected(const struct ry_adb *adb)
{
	return adb->state == ADB_UP;
}

bool ry_adb_idle(const struct ry_adb *adb)
{
	return adb->state == ADB_UP && !adb->head;
}

int64_t ry_adb_connected_for_ms(const struct ry_adb *adb)
{
	return adb->up_since < 0 ? -1 : ry_now_ms() - adb->up_since;
}

void ry_adb_free(struct ry_adb *adb)
{
	if (!adb)
		return;
	adb->freeing = true;
	adb_disconnect(adb, "shutting down");
	failq_cb(-1, 0, adb);
	event_free(adb->timer);
	event_free(adb->fail_ev);
	ry_strlist_release(&adb->channels);
	free(adb->conninfo);
	free(adb->actor);
	free(adb);
}
