/*
 * metrics: the worker's counters and the Prometheus text exposition of
 * them (format 0.0.4).  Pure: no I/O, so the rendering is unit-tested
 * (tests/unit/test_metrics.c); pkg/worker/httpd.c serves it.
 */
#ifndef RY_METRICS_H
#define RY_METRICS_H

#include "core/core.h"

#define RY_METRICS_BUCKETS 12	/* claim-latency histogram upper bounds, + +Inf */

/* Outcomes counted separately; anything else counts as "other". */
enum ry_metrics_outcome {
	RY_OUT_SUCCEEDED,	/* the command exited 0 */
	RY_OUT_FAILED,		/* non-zero exit, timeout, killed, lost */
	RY_OUT_SKIPPED,		/* only_if_changed matched nothing */
	RY_OUT_CACHED,		/* a cached result stood in */
	RY_OUT_OTHER,
	RY_OUT_N,
};

struct ry_metrics {
	uint64_t claims;			/* claim rounds answered */
	uint64_t tasks_claimed;
	uint64_t latency_buckets[RY_METRICS_BUCKETS];	/* not cumulative */
	uint64_t latency_inf;			/* above the last bound */
	double latency_sum_s;
	uint64_t completions[RY_OUT_N];		/* results the database accepted */
	uint64_t refused;			/* results refused (lease taken over) */
	uint64_t db_connects;			/* connections made (first included) */
	uint64_t cache_hits;			/* artifact/cache lookups that found it */
	uint64_t cache_misses;
	uint64_t cache_ahead_claimed;		/* tasks the cache lookahead claimed */
	uint64_t cache_ahead_handed_back;	/* ... that missed with no slot free */
	uint64_t claim_ahead_claimed;		/* tasks claimed ahead of a free slot */
	uint64_t claim_ahead_handed_back;	/* ... that no slot freed for in time */
	uint64_t store_errors;			/* store reads/writes that failed */
	uint64_t webhooks_sent;			/* deliveries the endpoint accepted (2xx) */
	uint64_t webhooks_failed;		/* attempts that failed (will retry) */
	uint64_t webhooks_dead;			/* deliveries given up on */
};

/* What the worker holds right now, gathered at scrape time. */
struct ry_metrics_gauges {
	int64_t running;		/* tasks whose processes run */
	int64_t queued;			/* claimed, not started yet */
	int64_t results_pending;	/* results not yet accepted by the database */
	int64_t slots;			/* concurrency limit */
	int64_t cpus;			/* cpu units offered */
	bool db_connected;
	bool degraded;
	bool draining;
};

/* The histogram's upper bounds in seconds (RY_METRICS_BUCKETS of them). */
extern const double ry_metrics_latency_bounds[RY_METRICS_BUCKETS];

void ry_metrics_claim(struct ry_metrics *m, double seconds, uint64_t tasks);
void ry_metrics_completion(struct ry_metrics *m, const char *outcome, bool accepted);
/* The exposition text for agent (label value escaped); the caller frees it. */
char *ry_metrics_render(const struct ry_metrics *m, const struct ry_metrics_gauges *g,
			const char *agent);

#endif
