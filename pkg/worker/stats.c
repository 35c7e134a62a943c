#include "worker/stats.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ry_worker_stats_init(struct ry_worker_stats *s, bool enabled, uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	s->enabled = enabled;
	s->rng = seed | 1;
}

static uint64_t next_random(struct ry_worker_stats *s)
{
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 7;
	s->rng ^= s->rng << 17;
	return s->rng;
}

void ry_worker_stats_claim(struct ry_worker_stats *s, double ms)
{
	if (!s->enabled)
		return;
	if (ms > s->claim_ms_max)
		s->claim_ms_max = ms;
	if (s->claims < RY_STATS_RESERVOIR) {
		s->claim_ms[s->claims++] = ms;
		return;
	}
	uint64_t k = next_random(s) % ++s->claims;
	if (k < RY_STATS_RESERVOIR)
		s->claim_ms[k] = ms;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double percentile(const double *sorted, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return sorted[i < n ? i : n - 1];
}

char *ry_worker_stats_json(const struct ry_worker_stats *s, const char *agent)
{
	size_t n = s->claims < RY_STATS_RESERVOIR ? (size_t)s->claims : RY_STATS_RESERVOIR;
	double *sorted = ry_malloc((n + 1) * sizeof(*sorted));
	memcpy(sorted, s->claim_ms, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_double);
	json_t *o = json_pack("{s:s, s:I, s:f, s:f, s:f, s:I, s:I, s:I, s:I, s:I}",
			      "agent", agent,
			      "claims", (json_int_t)s->claims,
			      "claim_ms_p50", percentile(sorted, n, 0.50),
			      "claim_ms_p99", percentile(sorted, n, 0.99),
			      "claim_ms_max", s->claim_ms_max,
			      "tasks_claimed", (json_int_t)s->tasks_claimed,
			      "tasks_reported", (json_int_t)s->tasks_reported,
			      "completion_jobs", (json_int_t)s->completion_jobs,
			      "refused", (json_int_t)s->refused,
			      "peak_running", (json_int_t)s->peak_running);
	free(sorted);
	char *text = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(o);
	char *out = ry_strdup(text ? text : "{}");
	free(text);
	return out;
}

bool ry_worker_stats_write(const struct ry_worker_stats *s, const char *agent, const char *path,
			   char **err)
{
	char *text = ry_worker_stats_json(s, agent);
	FILE *f = fopen(path, "w");
	bool ok = f && fprintf(f, "%s\n", text) >= 0;
	if (f && fclose(f) != 0)
		ok = false;
	if (!ok)
		*err = ry_asprintf("cannot write %s: %s", path, strerror(errno));
	free(text);
	return ok;
}
