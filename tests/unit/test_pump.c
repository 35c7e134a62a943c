/*
 * Unit tests for the worker's pump decision (pkg/worker/pump.c): what the
 * idle database connection does next, from plain state — no database.
 * Each row is a situation a worker meets and the one action it must take.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "worker/pump.h"

/* A registered, healthy, idle worker with room and nothing to report. */
static struct ry_pump_state base(void)
{
	struct ry_pump_state s;
	memset(&s, 0, sizeof(s));
	s.idle = true;
	s.registered = true;
	s.free = (struct ry_sched_capacity){ 4, 4, 4096 };
	s.background_ok = true;
	return s;
}

struct pump_case {
	const char *what;
	void (*edit)(struct ry_pump_state *s);
	enum ry_pump_action want;
};

static void busy(struct ry_pump_state *s) { s->idle = false; s->heartbeat_due = true; s->results = 5; }
static void nothing(struct ry_pump_state *s) { (void)s; }
static void unregistered(struct ry_pump_state *s) { s->registered = false; s->results = 3; s->heartbeat_due = true; }
static void registering(struct ry_pump_state *s) { s->registered = false; s->registering = true; }
static void register_backoff(struct ry_pump_state *s) { s->registered = false; s->backoff = true; }
static void hb_and_results(struct ry_pump_state *s) { s->heartbeat_due = true; s->results = 3; s->want_claim = true; }
static void results_and_claim(struct ry_pump_state *s) { s->results = 3; s->want_claim = true; }
static void backoff(struct ry_pump_state *s) { s->results = 3; s->backoff = true; s->want_claim = true; }
static void backoff_release(struct ry_pump_state *s) { s->results = 3; s->backoff = true; s->releases = 1; }
static void backoff_release_claim(struct ry_pump_state *s) { backoff_release(s); s->want_claim = true; }
static void release_then_claim(struct ry_pump_state *s) { s->releases = 2; s->want_claim = true; }
static void want_claim(struct ry_pump_state *s) { s->want_claim = true; }
static void full_slots(struct ry_pump_state *s) { s->want_claim = true; s->free.slots = 0; }
static void full_claim_ahead(struct ry_pump_state *s) { full_slots(s); s->queue_room = 2; }
static void full_claim_ahead_degraded(struct ry_pump_state *s) { full_claim_ahead(s); s->degraded = true; }
static void full_claim_ahead_no_work(struct ry_pump_state *s) { full_claim_ahead(s); s->want_claim = false; }
static void no_cpu(struct ry_pump_state *s) { s->want_claim = true; s->free.cpu = 0; }
static void no_mem(struct ry_pump_state *s) { s->want_claim = true; s->free.mem_mb = 0; }
static void degraded(struct ry_pump_state *s) { s->want_claim = true; s->degraded = true; }
static void claim_failed(struct ry_pump_state *s) { s->want_claim = true; s->claim_backoff = true; }
static void claim_failed_results(struct ry_pump_state *s) { claim_failed(s); s->results = 2; }
static void draining_busy(struct ry_pump_state *s) { s->draining = true; s->tasks = 2; s->want_claim = true; }
static void draining_empty(struct ry_pump_state *s) { s->draining = true; s->want_claim = true; }
static void draining_said(struct ry_pump_state *s) { s->draining = true; s->offline_sent = true; }
static void draining_results(struct ry_pump_state *s) { s->draining = true; s->tasks = 1; s->results = 1; }
static void retention(struct ry_pump_state *s) { s->retention_due = true; s->exit_when_idle = true; s->idle_check_due = true; }
static void claim_before_retention(struct ry_pump_state *s) { s->retention_due = true; s->want_claim = true; }
static void forecasts(struct ry_pump_state *s) { s->forecasts_due = true; s->exit_when_idle = true; s->idle_check_due = true; }
static void claim_before_forecasts(struct ry_pump_state *s) { s->forecasts_due = true; s->want_claim = true; }
static void retention_before_forecasts(struct ry_pump_state *s) { s->forecasts_due = true; s->retention_due = true; }
static void draining_no_forecasts(struct ry_pump_state *s) { s->forecasts_due = true; s->draining = true; s->tasks = 1; }
static void forecasts_yield(struct ry_pump_state *s) { forecasts(s); s->background_ok = false; s->tasks = 1; }
static void idle_check(struct ry_pump_state *s) { s->exit_when_idle = true; s->idle_check_due = true; }
static void idle_check_busy(struct ry_pump_state *s) { s->exit_when_idle = true; s->idle_check_due = true; s->tasks = 1; }
static void idle_check_not_asked(struct ry_pump_state *s) { s->idle_check_due = true; }
static void limit_before_claim(struct ry_pump_state *s) { s->limit_due = true; s->want_claim = true; }
static void results_before_limit(struct ry_pump_state *s) { s->limit_due = true; s->results = 1; }
static void limit_in_backoff(struct ry_pump_state *s) { s->limit_due = true; s->backoff = true; }
static void limit_throttled_full(struct ry_pump_state *s) { s->limit_due = true; s->free.slots = 0; s->want_claim = true; }

static const struct pump_case cases[] = {
	{ "a job in flight: nothing", busy, RY_PUMP_NONE },
	{ "idle with nothing to do: nothing", nothing, RY_PUMP_NONE },
	{ "not registered: register before anything", unregistered, RY_PUMP_REGISTER },
	{ "registration under way: wait for it", registering, RY_PUMP_NONE },
	{ "registration failed: wait out the pause", register_backoff, RY_PUMP_NONE },
	{ "the heartbeat outranks results and claims", hb_and_results, RY_PUMP_HEARTBEAT },
	{ "results before claims", results_and_claim, RY_PUMP_COMPLETE },
	{ "results in backoff: claims may go", backoff, RY_PUMP_CLAIM },
	{ "in backoff: hand-backs wait too, claims go", backoff_release, RY_PUMP_NONE },
	{ "in backoff with room: claims still go", backoff_release_claim, RY_PUMP_CLAIM },
	{ "hand-backs before claims", release_then_claim, RY_PUMP_RELEASE },
	{ "room and work: claim", want_claim, RY_PUMP_CLAIM },
	{ "no free slot: no claim", full_slots, RY_PUMP_NONE },
	{ "no free slot but room to claim ahead: claim", full_claim_ahead, RY_PUMP_CLAIM },
	{ "room to claim ahead on a degraded host: no claim", full_claim_ahead_degraded, RY_PUMP_NONE },
	{ "room to claim ahead, no work known: no claim", full_claim_ahead_no_work, RY_PUMP_NONE },
	{ "a new concurrency limit is recorded before claims", limit_before_claim, RY_PUMP_LIMIT },
	{ "results before the limit", results_before_limit, RY_PUMP_COMPLETE },
	{ "the limit waits out a backoff", limit_in_backoff, RY_PUMP_NONE },
	{ "throttled to its held tasks: the limit goes, no claim", limit_throttled_full, RY_PUMP_LIMIT },
	{ "no free cpu: no claim", no_cpu, RY_PUMP_NONE },
	{ "no free memory: no claim", no_mem, RY_PUMP_NONE },
	{ "degraded host: no claim", degraded, RY_PUMP_NONE },
	{ "a claim just failed: wait out the pause", claim_failed, RY_PUMP_NONE },
	{ "a claim failed: results still go", claim_failed_results, RY_PUMP_COMPLETE },
	{ "draining with tasks: wait, never claim", draining_busy, RY_PUMP_NONE },
	{ "draining, holding nothing: offline", draining_empty, RY_PUMP_OFFLINE },
	{ "draining, goodbye sent: nothing", draining_said, RY_PUMP_NONE },
	{ "draining still reports results", draining_results, RY_PUMP_COMPLETE },
	{ "retention before the idle check", retention, RY_PUMP_RETENTION },
	{ "claims before retention", claim_before_retention, RY_PUMP_CLAIM },
	{ "forecasts before the idle check", forecasts, RY_PUMP_FORECASTS },
	{ "claims before forecasts", claim_before_forecasts, RY_PUMP_CLAIM },
	{ "retention before forecasts", retention_before_forecasts, RY_PUMP_RETENTION },
	{ "a draining worker makes no forecasts", draining_no_forecasts, RY_PUMP_NONE },
	{ "forecasts wait while the hot path is busy", forecasts_yield, RY_PUMP_NONE },
	{ "exit-when-idle with nothing held: idle check", idle_check, RY_PUMP_IDLE_CHECK },
	{ "exit-when-idle while holding a task: nothing", idle_check_busy, RY_PUMP_NONE },
	{ "idle check only with --exit-when-idle", idle_check_not_asked, RY_PUMP_NONE },
};

static void decisions(void **state)
{
	(void)state;
	for (size_t i = 0; i < RY_ARRAY_SIZE(cases); i++) {
		struct ry_pump_state s = base();
		cases[i].edit(&s);
		enum ry_pump_action got = ry_pump_decide(&s);
		if (got != cases[i].want)
			fail_msg("%s: got %s, want %s", cases[i].what, ry_pump_action_name(got),
				 ry_pump_action_name(cases[i].want));
	}
}

/* After results went out (in flight: not idle), with `remaining` still
 * waiting: does a claim ride along? */
static void in_flight_claim(struct ry_pump_state *s) { results_and_claim(s); s->idle = false; }
static void in_flight_no_hint(struct ry_pump_state *s) { s->results = 1; s->idle = false; }
static void in_flight_full(struct ry_pump_state *s) { in_flight_claim(s); s->free.slots = 0; }
static void in_flight_hb(struct ry_pump_state *s) { in_flight_claim(s); s->heartbeat_due = true; }
static void in_flight_release(struct ry_pump_state *s) { in_flight_claim(s); s->releases = 1; }
static void in_flight_limit(struct ry_pump_state *s) { in_flight_claim(s); s->limit_due = true; }
static void in_flight_draining(struct ry_pump_state *s) { in_flight_claim(s); s->draining = true; }
static void in_flight_degraded(struct ry_pump_state *s) { in_flight_claim(s); s->degraded = true; }

static const struct {
	const char *what;
	void (*edit)(struct ry_pump_state *s);
	size_t remaining;
	bool want;
} follows[] = {
	{ "room and a hint of work: the claim rides along", in_flight_claim, 0, true },
	{ "more results wait: they go first", in_flight_claim, 2, false },
	{ "nothing suggests ready work", in_flight_no_hint, 0, false },
	{ "no room", in_flight_full, 0, false },
	{ "the heartbeat comes first", in_flight_hb, 0, false },
	{ "a hand-back comes first", in_flight_release, 0, false },
	{ "a new limit comes first", in_flight_limit, 0, false },
	{ "draining: never", in_flight_draining, 0, false },
	{ "degraded: never", in_flight_degraded, 0, false },
};

static void claim_follows(void **state)
{
	(void)state;
	for (size_t i = 0; i < RY_ARRAY_SIZE(follows); i++) {
		struct ry_pump_state s = base();
		follows[i].edit(&s);
		if (ry_pump_claim_follows(&s, follows[i].remaining) != follows[i].want)
			fail_msg("%s: got %s", follows[i].what, follows[i].want ? "no claim" : "a claim");
	}
}

/* When housekeeping may take the connection (times in ms, monotonic). */
static const struct {
	const char *what;
	int64_t now, hot, background, backlog, want;
} waits[] = {
	{ "nothing hot yet", 5000, 0, 0, 0, 0 },
	{ "quiet long enough", 5000, 5000 - RY_PUMP_QUIET_MS, 4990, 0, 0 },
	{ "busy, none ran yet", 5000, 4999, 0, 0, 0 },
	{ "busy, the last one long ago", 5000, 4999, 5000 - RY_PUMP_BUSY_EVERY_MS, 0, 0 },
	{ "busy: until the quiet time", 5000, 4990, 4900, 10, RY_PUMP_QUIET_MS - 10 },
	{ "busy, spaced sooner than quiet", 5000, 4999, 5000 - RY_PUMP_BUSY_EVERY_MS + 3, 0, 3 },
	{ "busy, a long queue: no waiting", 5000, 4999, 4990, RY_PUMP_BACKLOG_HIGH, 0 },
	{ "busy, the queue just short of long", 5000, 4990, 4900, RY_PUMP_BACKLOG_HIGH - 1,
	  RY_PUMP_QUIET_MS - 10 },
};

static void background_waits(void **state)
{
	(void)state;
	for (size_t i = 0; i < RY_ARRAY_SIZE(waits); i++) {
		int64_t got = ry_pump_background_wait_ms(waits[i].now, waits[i].hot, waits[i].background,
							 waits[i].backlog);
		if (got != waits[i].want)
			fail_msg("%s: got %lld ms, want %lld", waits[i].what, (long long)got,
				 (long long)waits[i].want);
	}
}

struct class_case {
	const char *sqlstate;
	enum ry_job_error want;
};

static const struct class_case classes[] = {
	{ "53100", RY_ERR_TRANSIENT },	/* disk full */
	{ "53200", RY_ERR_TRANSIENT },	/* out of memory */
	{ "53300", RY_ERR_TRANSIENT },	/* too many connections */
	{ "25006", RY_ERR_TRANSIENT },	/* read-only transaction */
	{ "57P01", RY_ERR_TRANSIENT },	/* admin shutdown */
	{ "57P03", RY_ERR_TRANSIENT },	/* cannot connect now */
	{ "08006", RY_ERR_TRANSIENT },	/* connection failure */
	{ "40001", RY_ERR_TRANSIENT },	/* serialization */
	{ "40P01", RY_ERR_TRANSIENT },	/* deadlock */
	{ "58030", RY_ERR_TRANSIENT },	/* I/O error */
	{ "", RY_ERR_TRANSIENT },	/* not from the server */
	{ NULL, RY_ERR_TRANSIENT },
	{ "22001", RY_ERR_RESULT },	/* string too long */
	{ "22021", RY_ERR_RESULT },	/* bad encoding */
	{ "23505", RY_ERR_RESULT },	/* unique violation */
	{ "23514", RY_ERR_RESULT },	/* check violation */
	{ "42883", RY_ERR_OTHER },	/* function does not exist */
	{ "P0001", RY_ERR_OTHER },	/* raise exception */
	{ "25P02", RY_ERR_OTHER },	/* in failed transaction: not the data */
};

static void errors_classified(void **state)
{
	(void)state;
	for (size_t i = 0; i < RY_ARRAY_SIZE(classes); i++)
		if (ry_pump_classify(classes[i].sqlstate) != classes[i].want)
			fail_msg("%s: got %d, want %d", classes[i].sqlstate ? classes[i].sqlstate : "NULL",
				 ry_pump_classify(classes[i].sqlstate), classes[i].want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(decisions),
		cmocka_unit_test(claim_follows),
		cmocka_unit_test(background_waits),
		cmocka_unit_test(errors_classified),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
