/*
 * stats: what the worker itself saw, for --stats FILE (benchmarks, tuning).
 * Claim latencies go into a fixed-size reservoir (Vitter's algorithm R), so
 * memory stays bounded however long the worker runs, and nothing is
 * recorded at all unless --stats was given.
 *
 * Internal to pkg/worker.
 */
#ifndef RY_WORKER_STATS_H
#define RY_WORKER_STATS_H

#include "core/core.h"

#define RY_STATS_RESERVOIR 4096

struct ry_worker_stats {
	bool enabled;
	uint64_t claims;		/* claim rounds measured */
	double claim_ms[RY_STATS_RESERVOIR];	/* a uniform sample of them */
	double claim_ms_max;
	uint64_t rng;			/* xorshift state for the reservoir */
	int64_t tasks_claimed;
	int64_t tasks_reported;
	int64_t completion_jobs;
	int64_t refused;
	size_t peak_running;
};

void ry_worker_stats_init(struct ry_worker_stats *s, bool enabled, uint64_t seed);
/* One claim round's latency (monotonic ms); a no-op when not enabled. */
void ry_worker_stats_claim(struct ry_worker_stats *s, double ms);
/* Writes the figures as one JSON object; false with *err on failure. */
bool ry_worker_stats_write(const struct ry_worker_stats *s, const char *agent, const char *path,
			   char **err) RY_MUST_CHECK;
/* The figures as JSON text (what _write writes); the caller frees it. */
char *ry_worker_stats_json(const struct ry_worker_stats *s, const char *agent);

#endif
