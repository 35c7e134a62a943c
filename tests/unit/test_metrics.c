/*
 * Unit tests for pkg/metrics: the Prometheus text a scrape returns.
 * The histogram is cumulative and ends at +Inf with the count, outcomes
 * are counted apart, label values are escaped, reconnects exclude the
 * first connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"

static void has_line(const char *text, const char *line)
{
	const char *p = text;
	size_t n = strlen(line);
	while ((p = strstr(p, line))) {
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
			return;
		p += n;
	}
	fail_msg("no line \"%s\" in:\n%s", line, text);
}

static void histogram_is_cumulative(void **state)
{
	(void)state;
	struct ry_metrics m = { 0 };
	struct ry_metrics_gauges g = { .running = 3, .slots = 8, .cpus = 8, .db_connected = true };
	ry_metrics_claim(&m, 0.0005, 2);	/* le 0.001 */
	ry_metrics_claim(&m, 0.004, 1);		/* le 0.005 */
	ry_metrics_claim(&m, 0.004, 0);
	ry_metrics_claim(&m, 7.0, 1);		/* above 5: only +Inf */
	char *t = ry_metrics_render(&m, &g, "a1");
	has_line(t, "railyard_claim_latency_seconds_bucket{agent=\"a1\",le=\"0.001\"} 1");
	has_line(t, "railyard_claim_latency_seconds_bucket{agent=\"a1\",le=\"0.0025\"} 1");
	has_line(t, "railyard_claim_latency_seconds_bucket{agent=\"a1\",le=\"0.005\"} 3");
	has_line(t, "railyard_claim_latency_seconds_bucket{agent=\"a1\",le=\"5\"} 3");
	has_line(t, "railyard_claim_latency_seconds_bucket{agent=\"a1\",le=\"+Inf\"} 4");
	has_line(t, "railyard_claim_latency_seconds_count{agent=\"a1\"} 4");
	has_line(t, "railyard_claim_latency_seconds_sum{agent=\"a1\"} 7.0084999999999997");
	has_line(t, "railyard_claims_total{agent=\"a1\"} 4");
	has_line(t, "railyard_tasks_claimed_total{agent=\"a1\"} 4");
	has_line(t, "railyard_tasks_running{agent=\"a1\"} 3");
	has_line(t, "railyard_concurrency_limit{agent=\"a1\"} 8");
	has_line(t, "railyard_db_connected{agent=\"a1\"} 1");
	has_line(t, "# TYPE railyard_claim_latency_seconds histogram");
	free(t);
}

static void outcomes_are_counted_apart(void **state)
{
	(void)state;
	struct ry_metrics m = { 0 };
	struct ry_metrics_gauges g = { 0 };
	ry_metrics_completion(&m, "succeeded", true);
	ry_metrics_completion(&m, "succeeded", true);
	ry_metrics_completion(&m, "failed", true);
	ry_metrics_completion(&m, "weird", true);
	ry_metrics_completion(&m, "succeeded", false);	/* refused: not a completion */
	m.db_connects = 3;
	char *t = ry_metrics_render(&m, &g, "a");
	has_line(t, "railyard_completions_total{agent=\"a\",outcome=\"succeeded\"} 2");
	has_line(t, "railyard_completions_total{agent=\"a\",outcome=\"failed\"} 1");
	has_line(t, "railyard_completions_total{agent=\"a\",outcome=\"skipped\"} 0");
	has_line(t, "railyard_completions_total{agent=\"a\",outcome=\"other\"} 1");
	has_line(t, "railyard_results_refused_total{agent=\"a\"} 1");
	has_line(t, "railyard_db_reconnects_total{agent=\"a\"} 2");
	free(t);
}

static void label_values_are_escaped(void **state)
{
	(void)state;
	struct ry_metrics m = { 0 };
	struct ry_metrics_gauges g = { 0 };
	char *t = ry_metrics_render(&m, &g, "a\"b\\c\nd");
	has_line(t, "railyard_tasks_running{agent=\"a\\\"b\\\\c\\nd\"} 0");
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(histogram_is_cumulative),
		cmocka_unit_test(outcomes_are_counted_apart),
		cmocka_unit_test(label_values_are_escaped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
