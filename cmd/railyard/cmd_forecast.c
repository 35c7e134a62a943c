/*
 * railyard forecast ID [--record]
 *
 * How long a pipeline will take, from railyard.pipeline_forecast(ID):
 * queue wait, run time with its p10-p90 interval, remaining time and ETA
 * for a running pipeline, the critical path and the tasks that dominate the
 * uncertainty; for a finished one, the forecast made at submission beside
 * what happened.  --record also stores the forecast (kind request) in
 * railyard.pipeline_forecasts.  Exit 0, or 2 on a bad id or database error.
 *
 * Also the forecast pieces of other commands (forecast_cli.h): the live
 * ETA of `wait --follow` and the anomalies of `status`.
 */
#include "cmd.h"
#include "forecast_cli.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char forecast_sql[] =
	"SELECT f.state, f.method, f.samples, f.tasks, f.cold_tasks, f.queue_wait_s, f.p10_s, "
	"       f.p50_s, f.p90_s, f.elapsed_s, f.remaining_s, extract(epoch FROM f.eta) AS eta, "
	"       extract(epoch FROM f.eta_p10) AS eta_p10, extract(epoch FROM f.eta_p90) AS eta_p90, "
	"       array_to_string(f.critical_path, ' -> ') AS critical_path, f.actual_s, f.baseline_s, "
	"       p.name, "
	"       (SELECT string_agg(format('%s %s%% (critical in %s%% of draws)', u->>'task', "
	"                                 u->>'share_pct', u->>'critical_pct'), ', ') "
	"          FROM jsonb_array_elements(f.uncertainty) u) AS uncertainty "
	"  FROM railyard.pipeline_forecast($1::bigint) f "
	"  JOIN railyard.pipelines p ON p.id = f.pipeline_id";

/* Result columns, looked up by name once. */
enum {
	FC_STATE, FC_METHOD, FC_SAMPLES, FC_TASKS, FC_COLD, FC_WAIT, FC_P10, FC_P50, FC_P90,
	FC_ELAPSED, FC_REMAINING, FC_ETA, FC_ETA_P10, FC_ETA_P90, FC_PATH, FC_ACTUAL, FC_BASELINE,
	FC_NAME, FC_UNCERTAINTY, FC_NCOLS
};
static const char *const fc_names[FC_NCOLS] = {
	"state", "method", "samples", "tasks", "cold_tasks", "queue_wait_s", "p10_s", "p50_s",
	"p90_s", "elapsed_s", "remaining_s", "eta", "eta_p10", "eta_p90", "critical_path",
	"actual_s", "baseline_s", "name", "uncertainty",
};

/* Column indexes of r for names; false when one is missing. */
static bool map_columns(const struct ry_res *r, const char *const *names, int n, int *idx)
{
	for (int i = 0; i < n; i++) {
		idx[i] = -1;
		for (int c = 0; c < ry_res_cols(r); c++)
			if (strcmp(ry_res_colname(r, c), names[i]) == 0)
				idx[i] = c;
		if (idx[i] < 0)
			return false;
	}
	return true;
}

static void dur(char *buf, size_t len, double s)
{
	ry_format_duration(buf, len, s);
}

static void clock_of(char *buf, size_t len, double epoch)
{
	time_t t = (time_t)epoch;
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(buf, len, "%H:%M:%S", &tm);
}

static void print_forecast(const struct ry_res *r, const int *c, long id)
{
	const char *state = ry_res_get(r, 0, c[FC_STATE]);
	char a[48], b[48], d[48], e[48];
	bool finished = strcmp(state, "queued") != 0 && strcmp(state, "running") != 0;

	printf("pipeline %ld  %s  %s\n", id, ry_res_get(r, 0, c[FC_NAME]), state);
	if (ry_res_isnull(r, 0, c[FC_P50])) {
		printf("no forecast was recorded for it\n");
		return;
	}
	printf("method        %s, %s draws; %s of %s tasks without history of their own\n",
	       ry_res_get(r, 0, c[FC_METHOD]), ry_res_get(r, 0, c[FC_SAMPLES]),
	       ry_res_get(r, 0, c[FC_COLD]), ry_res_get(r, 0, c[FC_TASKS]));
	dur(a, sizeof(a), ry_res_get_double(r, 0, c[FC_P50]));
	dur(b, sizeof(b), ry_res_get_double(r, 0, c[FC_P10]));
	dur(d, sizeof(d), ry_res_get_double(r, 0, c[FC_P90]));
	if (finished) {
		printf("forecast      %s (p10 %s, p90 %s) at submission\n", a, b, d);
		if (!ry_res_isnull(r, 0, c[FC_ACTUAL])) {
			double act = ry_res_get_double(r, 0, c[FC_ACTUAL]);
			double p50 = ry_res_get_double(r, 0, c[FC_P50]);
			dur(e, sizeof(e), act);
			printf("actual        %s: forecast off by %+.1f%%, %s the p10-p90 interval\n", e,
			       act > 0 ? 100.0 * (p50 - act) / act : 0.0,
			       act >= ry_res_get_double(r, 0, c[FC_P10]) &&
				       act <= ry_res_get_double(r, 0, c[FC_P90]) ? "inside" : "outside");
		}
	} else {
		printf("run time      %s (p10 %s, p90 %s) from the first task's start\n", a, b, d);
		dur(a, sizeof(a), ry_res_get_double(r, 0, c[FC_WAIT]));
		if (strcmp(state, "queued") == 0)
			printf("queue wait    %s (ready tasks ahead and running ones against the slots)\n", a);
		dur(a, sizeof(a), ry_res_get_double(r, 0, c[FC_ELAPSED]));
		dur(b, sizeof(b), ry_res_get_double(r, 0, c[FC_REMAINING]));
		if (strcmp(state, "running") == 0)
			printf("elapsed       %s, remaining %s\n", a, b);
		clock_of(a, sizeof(a), ry_res_get_double(r, 0, c[FC_ETA]));
		clock_of(b, sizeof(b), ry_res_get_double(r, 0, c[FC_ETA_P10]));
		clock_of(d, sizeof(d), ry_res_get_double(r, 0, c[FC_ETA_P90]));
		printf("ETA           %s (p10 %s, p90 %s)\n", a, b, d);
	}
	if (!ry_res_isnull(r, 0, c[FC_BASELINE])) {
		dur(a, sizeof(a), ry_res_get_double(r, 0, c[FC_BASELINE]));
		printf("naive         %s (mean of the family's last 3 runs)\n", a);
	}
	printf("critical path %s\n", ry_res_get(r, 0, c[FC_PATH]));
	if (*ry_res_get(r, 0, c[FC_UNCERTAINTY]))
		printf("uncertainty   %s\n", ry_res_get(r, 0, c[FC_UNCERTAINTY]));
}

static void usage(FILE *out)
{
	fprintf(out, "usage: railyard forecast ID [--record]\n"
		"  expected run time with its p10-p90 interval, queue wait, ETA, critical path\n"
		"  --record   also store this forecast in railyard.pipeline_forecasts\n");
}

int cmd_forecast(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{ "record", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool record = false;
	long id;
	int opt;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case 'r':
			record = true;
			break;
		case 'h':
			usage(stdout);
			return RY_EXIT_OK;
		default:
			fprintf(stderr, "error: unknown option '%s'\n", argv[optind - 1]);
			usage(stderr);
			return RY_EXIT_ERROR;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return RY_EXIT_ERROR;
	}
	if (!ry_parse_long(argv[optind], 1, LONG_MAX, &id)) {
		fprintf(stderr, "error: invalid pipeline id '%s': expected a positive integer\n", argv[optind]);
		return RY_EXIT_ERROR;
	}
	struct ry_db *db = cmd_connect(ctx, "cli:forecast");
	if (!db)
		return RY_EXIT_ERROR;

	int rc = RY_EXIT_ERROR, c[FC_NCOLS];
	char *err = NULL, *idtext = ry_asprintf("%ld", id);
	const char *params[] = { idtext };
	struct ry_res *r = ry_db_query(db, forecast_sql, 1, params, &err);
	if (!r) {
		fprintf(stderr, "error: cannot forecast pipeline %ld: %s\n", id, err);
		goto out;
	}
	if (ry_res_rows(r) != 1 || !map_columns(r, fc_names, FC_NCOLS, c)) {
		fprintf(stderr, "error: cannot forecast pipeline %ld: unexpected result\n", id);
		goto out;
	}
	print_forecast(r, c, id);
	if (record && !ry_db_exec(db, "SELECT railyard.record_forecast($1::bigint, 'request')", 1,
				  params, &err)) {
		fprintf(stderr, "error: cannot record the forecast of pipeline %ld: %s\n", id, err);
		goto out;
	}
	rc = RY_EXIT_OK;
out:
	free(err);
	ry_res_free(r);
	free(idtext);
	ry_db_close(db);
	return rc;
}

/* ---- wait --follow: the live ETA ------------------------------------------ */

static const char eta_sql[] =
	"SELECT (SELECT count(*) FROM railyard.tasks WHERE pipeline_id = $1::bigint "
	"          AND state NOT IN ('blocked', 'ready', 'running')) AS finished, "
	"       f.remaining_s, f.p10_s - f.elapsed_s AS rem_p10, f.p90_s - f.elapsed_s AS rem_p90, "
	"       extract(epoch FROM f.eta) AS eta, f.queue_wait_s, f.state "
	"  FROM railyard.pipeline_forecast($1::bigint) f";

enum { ETA_FINISHED, ETA_REMAINING, ETA_P10, ETA_P90, ETA_AT, ETA_WAIT, ETA_STATE, ETA_NCOLS };
static const char *const eta_names[ETA_NCOLS] = {
	"finished", "remaining_s", "rem_p10", "rem_p90", "eta", "queue_wait_s", "state",
};

bool cmd_eta_follow(struct ry_db *db, const char *id, int w, struct cmd_eta *st, char **err)
{
	const char *params[] = { id };
	int c[ETA_NCOLS];
	int64_t now = ry_now_ms();

	if (st->finished >= 0 && now - st->printed_ms < 2000)
		return true;
	/* Cheap first: only a finished task changes the forecast enough. */
	struct ry_res *n = ry_db_query(db, "SELECT count(*) FROM railyard.tasks WHERE pipeline_id = "
				       "$1::bigint AND state NOT IN ('blocked', 'ready', 'running')",
				       1, params, err);
	if (!n)
		return false;
	long finished = ry_res_get_long(n, 0, 0);
	ry_res_free(n);
	if (finished == st->finished)
		return true;

	struct ry_res *r = ry_db_query(db, eta_sql, 1, params, err);
	if (!r) {
		/* A forecast that cannot be made is no reason to stop waiting. */
		bool conn = *ry_db_last_sqlstate(db) == '\0' ||
			    strncmp(ry_db_last_sqlstate(db), "08", 2) == 0;
		if (!conn) {
			free(*err);
			*err = NULL;
			st->finished = finished;
			st->printed_ms = now;
		}
		return !conn;
	}
	if (ry_res_rows(r) == 1 && map_columns(r, eta_names, ETA_NCOLS, c) &&
	    !ry_res_isnull(r, 0, c[ETA_REMAINING]) &&
	    (strcmp(ry_res_get(r, 0, c[ETA_STATE]), "queued") == 0 ||
	     strcmp(ry_res_get(r, 0, c[ETA_STATE]), "running") == 0)) {
		char left[48], lo[48], hi[48], at[16], clock[16];
		time_t t = time(NULL);
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
		double wait = ry_res_get_double(r, 0, c[ETA_WAIT]);
		dur(left, sizeof(left), wait + ry_res_get_double(r, 0, c[ETA_REMAINING]));
		dur(lo, sizeof(lo), wait + ry_res_get_double(r, 0, c[ETA_P10]));
		dur(hi, sizeof(hi), wait + ry_res_get_double(r, 0, c[ETA_P90]));
		clock_of(at, sizeof(at), ry_res_get_double(r, 0, c[ETA_AT]));
		printf("%s  %-*s  eta     %s left (p10 %s, p90 %s), at %s\n", clock, w, "pipeline",
		       left, lo, hi, at);
		fflush(stdout);
	}
	ry_res_free(r);
	st->finished = finished;
	st->printed_ms = now;
	return true;
}

/* ---- status: open anomalies ----------------------------------------------- */

static const char anomalies_sql[] =
	"SELECT what, severity, to_char(since, 'YYYY-MM-DD HH24:MI') AS since "
	"  FROM railyard.anomalies WHERE state = 'open' "
	" ORDER BY severity = 'critical' DESC, detected_at DESC LIMIT 20";

bool cmd_show_anomalies(struct ry_db *db)
{
	char *err = NULL;
	struct ry_res *r = ry_db_query(db, anomalies_sql, 0, NULL, &err);
	if (!r) {
		fprintf(stderr, "error: cannot read anomalies: %s\n", err);
		free(err);
		return false;
	}
	int n = ry_res_rows(r);
	printf("\nANOMALIES  %d open%s\n", n, n == 20 ? " (20 newest shown)" : "");
	if (n == 0)
		printf("  none\n");
	for (int i = 0; i < n; i++)
		printf("  %-8s  since %s  %s\n", ry_res_get(r, i, 1), ry_res_get(r, i, 2),
		       ry_res_get(r, i, 0));
	ry_res_free(r);
	return true;
}
