/*
 * probe: does the worker's connection receive notifications?
 *
 * A pooler in transaction (or statement) mode — PgBouncer's
 * pool_mode = transaction — hands the worker a different server
 * connection per transaction, so its LISTEN stays behind on a server
 * connection it no longer holds and the NOTIFYs of railyard_ready and
 * railyard_cancel never reach it.  A client cannot ask PgBouncer its pool
 * mode (SHOW is for its admin console), so the worker tests the property
 * it needs: after every connect, a second, short-lived connection sends
 * a NOTIFY with a random token on a channel only this worker LISTENs to,
 * PROBE_ROUNDS times a second apart.  A round is missed when, PROBE_WAIT_MS
 * after the NOTIFY committed, nothing arrived although the main
 * connection has answered a heartbeat sent after it (the server flushes
 * notifications before any later reply; without such an answer there is
 * no verdict yet: the network may be away).  PROBE_MISSES missed rounds in
 * a row and the worker says why and what to do.  Several
 * rounds because in transaction mode a single one can still arrive: when
 * the worker happens to hold the listening server connection mid-
 * transaction at that moment.  In session mode none is ever missed.  It keeps working either way: claims
 * and cancels fall back to the heartbeat's poll (at most heartbeat_s
 * late), so transaction mode is supported, only slower.
 */
#include "worker/internal.h"

#include "db/adb.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROBE_WAIT_MS 5000
#define PROBE_ROUNDS 3
#define PROBE_GAP_MS 1000
#define PROBE_MISSES 2		/* missed rounds in a row that say "pooler" */

struct ry_worker_probe {
	struct ry_worker *w;
	char channel[64];
	char token[40];
	struct ry_adb *db;		/* the sender of the NOTIFY, while it lives */
	struct event *timer;		/* the verdict's deadline */
	struct event *reap;		/* frees db outside its own callbacks */
	struct event *next;		/* the next round */
	int64_t acked_ms;		/* monotonic: the round's NOTIFY committed */
	bool waiting;
	int round;			/* rounds answered in this probe */
	int misses;			/* rounds missed in a row in this probe */
	int failures;			/* verdicts "not delivered" in a row */
};

static void send_round(struct ry_worker_probe *p);

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ry_worker_probe *p = arg;
	(void)fd;
	(void)what;
	ry_adb_free(p->db);
	p->db = NULL;
}

static void sent(void *arg, const struct ry_adb_reply *r)
{
	struct ry_worker_probe *p = arg;
	if (!r->ok) {
		ry_debug("cannot send the notification probe: %s", r->error);
		p->waiting = false;
		evtimer_del(p->timer);
		ry_worker_soon(p->reap);
		return;
	}
	p->acked_ms = ry_now_ms();
}

/* Whether the main connection has answered a heartbeat sent after the
 * NOTIFY committed: the server flushes pending notifications before it
 * says ReadyForQuery, so the NOTIFY would have come first. */
static bool main_answered_since(struct ry_worker_probe *p)
{
	const struct ry_worker *w = p->w;
	return p->acked_ms && w->lease_until_ms &&
	       w->lease_until_ms - (int64_t)w->cfg.lease_s * 1000 >= p->acked_ms;
}

static void send_round(struct ry_worker_probe *p)
{
	snprintf(p->token, sizeof(p->token), "%08lx%08lx", (unsigned long)random(),
		 (unsigned long)random());
	p->waiting = true;
	p->acked_ms = 0;
	struct timeval tv = { PROBE_WAIT_MS / 1000, (PROBE_WAIT_MS % 1000) * 1000 };
	evtimer_add(p->timer, &tv);
	const char *params[] = { p->channel, p->token };
	struct ry_adb_job *job = ry_adb_job_new(sent, p);
	ry_adb_job_add(job, "SELECT pg_notify($1, $2)", 2, params);
	ry_adb_submit(p->db, job, RY_ADB_LAST);
}

static void probe_connected(void *arg)
{
	struct ry_worker_probe *p = arg;
	if (!p->waiting)
		send_round(p);
}

static void next_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ry_worker_probe *p = arg;
	(void)fd;
	(void)what;
	if (p->db && ry_adb_idle(p->db))
		send_round(p);
	else
		ry_worker_soon(p->reap);
}

static void probe_disconnected(void *arg, const char *why)
{
	(void)arg;
	ry_debug("notification probe connection lost: %s", why);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ry_worker_probe *p = arg;
	(void)fd;
	(void)what;
	if (!p->waiting)
		return;
	if (!main_answered_since(p)) {
		/* No proof either way yet (the network or the server is slow or
		 * away): wait for a heartbeat to get through. */
		struct timeval tv = { 1, 0 };
		evtimer_add(p->timer, &tv);
		return;
	}
	p->waiting = false;
	/* One miss may be a moment's trouble (a reconnect racing the probe);
	 * a pooler in transaction mode loses every one after the first. */
	if (++p->misses < PROBE_MISSES && p->db && ry_adb_idle(p->db)) {
		send_round(p);
		return;
	}
	if (p->failures++ == 0)
		ry_warn("notifications do not reach this worker's database connection: it goes "
			"through a pooler in transaction or statement mode (PgBouncer pool_mode = "
			"transaction), which gives each transaction whichever server connection is free, "
			"so the worker's LISTEN stays on a server connection it no longer holds.  The "
			"worker keeps working by polling every heartbeat (new work and cancels are seen "
			"up to %d s late); for instant wake-ups give railyard's database pool_mode = "
			"session in pgbouncer.ini (or connect the workers directly)",
			p->w->cfg.heartbeat_s);
	ry_worker_soon(p->reap);
}

void ry_worker_probe_init(struct ry_worker *w)
{
	struct ry_worker_probe *p = ry_calloc(1, sizeof(*p));
	p->w = w;
	snprintf(p->channel, sizeof(p->channel), "railyard_probe_%d_%08lx", (int)getpid(),
		 (unsigned long)(random() & 0xffffffffUL));
	p->timer = evtimer_new(w->base, deadline_cb, p);
	p->next = evtimer_new(w->base, next_cb, p);
	p->reap = event_new(w->base, -1, 0, reap_cb, p);
	w->probe = p;
	ry_adb_listen(w->db, p->channel);
}

void ry_worker_probe_start(struct ry_worker *w)
{
	struct ry_worker_probe *p = w->probe;
	if (!p || p->waiting || p->db)
		return;
	p->round = 0;
	p->misses = 0;
	struct ry_adb_callbacks cbs = { probe_connected, probe_disconnected, NULL };
	char *actor = ry_asprintf("%s:probe", w->actor);
	p->db = ry_adb_new(w->base, w->conninfo, actor, &cbs, p);
	free(actor);
	ry_adb_start(p->db);
}

bool ry_worker_probe_notified(struct ry_worker *w, const char *channel, const char *payload)
{
	struct ry_worker_probe *p = w->probe;
	if (!p || strcmp(channel, p->channel) != 0)
		return false;
	if (p->waiting && strcmp(payload, p->token) == 0) {
		p->waiting = false;
		p->misses = 0;
		evtimer_del(p->timer);
		if (++p->round < PROBE_ROUNDS) {
			struct timeval tv = { PROBE_GAP_MS / 1000, (PROBE_GAP_MS % 1000) * 1000 };
			evtimer_add(p->next, &tv);
			return true;
		}
		ry_worker_soon(p->reap);
		if (p->failures)
			ry_info("notifications reach this worker's database connection again");
		else
			ry_info("notifications reach this worker's database connection (direct, or a "
				"pooler in session mode)");
		p->failures = 0;
	}
	return true;
}

void ry_worker_probe_release(struct ry_worker *w)
{
	struct ry_worker_probe *p = w->probe;
	if (!p)
		return;
	ry_adb_free(p->db);
	event_free(p->timer);
	event_free(p->next);
	event_free(p->reap);
	free(p);
	w->probe = NULL;
}
