#include "metrics/metrics.h"

#include <string.h>

const double ry_metrics_latency_bounds[RY_METRICS_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
};

static const char *const outcome_names[RY_OUT_N] = {
	"succeeded", "failed", "skipped", "cached", "other",
};

void ry_metrics_claim(struct ry_metrics *m, double seconds, uint64_t tasks)
{
	m->claims++;
	m->tasks_claimed += tasks;
	m->latency_sum_s += seconds;
	for (size_t i = 0; i < RY_METRICS_BUCKETS; i++) {
		if (seconds <= ry_metrics_latency_bounds[i]) {
			m->latency_buckets[i]++;
			return;
		}
	}
	m->latency_inf++;
}

void ry_metrics_completion(struct ry_metrics *m, const char *outcome, bool accepted)
{
	if (!accepted) {
		m->refused++;
		return;
	}
	size_t k = RY_OUT_OTHER;
	for (size_t i = 0; i < RY_OUT_OTHER; i++)
		if (outcome && strcmp(outcome, outcome_names[i]) == 0)
			k = i;
	m->completions[k]++;
}

/* A label value: backslash, double quote and newline escaped. */
static void put_label(struct ry_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			ry_buf_putc(b, '\\');
		if (*s == '\n')
			ry_buf_puts(b, "\\n");
		else
			ry_buf_putc(b, *s);
	}
}

static void metric(struct ry_buf *b, const char *name, const char *type, const char *help,
		   const char *agent, double value)
{
	ry_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s{agent=\"", name, help, name, type, name);
	put_label(b, agent);
	ry_buf_printf(b, "\"} %.17g\n", value);
}

char *ry_metrics_render(const struct ry_metrics *m, const struct ry_metrics_gauges *g,
			const char *agent)
{
	struct ry_buf b = { 0 };

	metric(&b, "railyard_tasks_running", "gauge", "Tasks whose processes are running.",
	       agent, (double)g->running);
	metric(&b, "railyard_tasks_queued", "gauge", "Tasks claimed and not started yet.",
	       agent, (double)g->queued);
	metric(&b, "railyard_results_pending", "gauge",
	       "Results kept until the database accepts them.", agent, (double)g->results_pending);
	metric(&b, "railyard_concurrency_limit", "gauge", "Most tasks at once (slots).", agent,
	       (double)g->slots);
	metric(&b, "railyard_cpus", "gauge", "CPU units offered.", agent, (double)g->cpus);
	metric(&b, "railyard_db_connected", "gauge", "1 while the database connection is usable.",
	       agent, g->db_connected);
	metric(&b, "railyard_degraded", "gauge", "1 while the host takes no new work.", agent,
	       g->degraded);
	metric(&b, "railyard_draining", "gauge", "1 while stopping.", agent, g->draining);
	metric(&b, "railyard_claims_total", "counter", "Claim rounds answered.", agent,
	       (double)m->claims);
	metric(&b, "railyard_tasks_claimed_total", "counter", "Tasks claimed.", agent,
	       (double)m->tasks_claimed);

	ry_buf_puts(&b, "# HELP railyard_claim_latency_seconds Time from sending a claim to its "
			"answer.\n# TYPE railyard_claim_latency_seconds histogram\n");
	uint64_t cum = 0;
	for (size_t i = 0; i < RY_METRICS_BUCKETS; i++) {
		cum += m->latency_buckets[i];
		ry_buf_puts(&b, "railyard_claim_latency_seconds_bucket{agent=\"");
		put_label(&b, agent);
		ry_buf_printf(&b, "\",le=\"%g\"} %llu\n", ry_metrics_latency_bounds[i],
			      (unsigned long long)cum);
	}
	cum += m->latency_inf;
	ry_buf_puts(&b, "railyard_claim_latency_seconds_bucket{agent=\"");
	put_label(&b, agent);
	ry_buf_printf(&b, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
	ry_buf_puts(&b, "railyard_claim_latency_seconds_sum{agent=\"");
	put_label(&b, agent);
	ry_buf_printf(&b, "\"} %.17g\n", m->latency_sum_s);
	ry_buf_puts(&b, "railyard_claim_latency_seconds_count{agent=\"");
	put_label(&b, agent);
	ry_buf_printf(&b, "\"} %llu\n", (unsigned long long)cum);

	ry_buf_puts(&b, "# HELP railyard_completions_total Results the database accepted, by "
			"outcome.\n# TYPE railyard_completions_total counter\n");
	for (size_t i = 0; i < RY_OUT_N; i++) {
		ry_buf_puts(&b, "railyard_completions_total{agent=\"");
		put_label(&b, agent);
		ry_buf_printf(&b, "\",outcome=\"%s\"} %llu\n", outcome_names[i],
			      (unsigned long long)m->completions[i]);
	}
	metric(&b, "railyard_results_refused_total", "counter",
	       "Results refused because the lease was taken over.", agent, (double)m->refused);
	metric(&b, "railyard_db_reconnects_total", "counter",
	       "Database connections made after the first.", agent,
	       (double)(m->db_connects ? m->db_connects - 1 : 0));
	metric(&b, "railyard_cache_hits_total", "counter", "Cache lookups that found the artifact.",
	       agent, (double)m->cache_hits);
	metric(&b, "railyard_cache_misses_total", "counter", "Cache lookups that did not.", agent,
	       (double)m->cache_misses);
	metric(&b, "railyard_cache_lookahead_claimed_total", "counter",
	       "Cacheable tasks claimed beyond the free slots to be looked up.", agent,
	       (double)m->cache_ahead_claimed);
	metric(&b, "railyard_cache_lookahead_handed_back_total", "counter",
	       "Of those, misses handed back because no slot was free.", agent,
	       (double)m->cache_ahead_handed_back);
	metric(&b, "railyard_claim_ahead_claimed_total", "counter",
	       "Tasks claimed beyond the free slots, to start when one frees (claim_ahead).", agent,
	       (double)m->claim_ahead_claimed);
	metric(&b, "railyard_claim_ahead_handed_back_total", "counter",
	       "Of those, handed back because no slot freed within claim_ahead_hold_ms.", agent,
	       (double)m->claim_ahead_handed_back);
	metric(&b, "railyard_store_errors_total", "counter", "Artifact store reads/writes that failed.",
	       agent, (double)m->store_errors);
	metric(&b, "railyard_webhooks_delivered_total", "counter",
	       "Webhook deliveries the endpoint accepted.", agent, (double)m->webhooks_sent);
	metric(&b, "railyard_webhook_attempts_failed_total", "counter",
	       "Webhook attempts that failed (retried later).", agent, (double)m->webhooks_failed);
	metric(&b, "railyard_webhooks_dead_total", "counter",
	       "Webhook deliveries given up on (dead letters).", agent, (double)m->webhooks_dead);
	return ry_buf_detach(&b);
}
