/*
 * railyard status [ID]
 *
 * Without ID, the farm at a glance: active pipelines first (oldest first,
 * capped), then the ten latest finished ones, the agents, and why ready
 * tasks wait (grouped by reason, from railyard.task_waits).  With ID, one
 * pipeline: its header, one line per task in roughly the order they became
 * ready, and the end of the log of its failed tasks.  Plain aligned text
 * for a 100-column terminal; every value from the database is made
 * printable first (no terminal control characters reach the terminal).
 *
 * Every query is linear in what it shows whatever the planner's statistics
 * say (right after a 50,000-task submission there are none): the tasks of
 * a pipeline and their reasons for waiting (railyard.task_waits_of, hash
 * joins only) are read apart and joined here, by id, rather than by a join
 * the planner could turn into a nested loop over the whole pipeline.
 */
#include "cmd.h"
#include "forecast_cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ACTIVE_SHOWN 50
#define RECENT_FINISHED 10
#define NAME_WIDTH_MAX 40

/* Active pipelines (oldest first, capped), then the latest finished ones. */
static const char pipelines_sql[] =
	"SELECT s.id, s.name, s.team, s.state, "
	"       s.tasks - s.blocked - s.ready - s.running AS done, s.tasks, s.elapsed_s, "
	"       s.failed, s.state IN ('queued', 'running') AS active "
	"  FROM railyard.pipeline_summary s "
	" WHERE s.id = ANY (ARRAY("
	"        (SELECT id FROM railyard.pipelines WHERE state IN ('queued', 'running') "
	"          ORDER BY id LIMIT $1::integer) "
	"        UNION ALL "
	"        (SELECT id FROM railyard.pipelines WHERE state NOT IN ('queued', 'running') "
	"          ORDER BY id DESC LIMIT $2::integer))) "
	" ORDER BY s.state IN ('queued', 'running') DESC, "
	"          CASE WHEN s.state IN ('queued', 'running') THEN s.id ELSE -s.id END";
enum { P_ID, P_NAME, P_TEAM, P_STATE, P_DONE, P_TASKS, P_ELAPSED, P_FAILED, P_ACTIVE, P_NCOLS };
static const char *const pipelines_cols[] = { "id", "name", "team", "state", "done", "tasks",
	"elapsed_s", "failed", "active" };

static const char active_count_sql[] =
	"SELECT count(*) AS active FROM railyard.pipelines WHERE state IN ('queued', 'running')";
static const char *const active_count_cols[] = { "active" };

/*
 * Agents that are up, or were within the hour.  agent_utilization reports
 * an agent without attempts as busy the whole hour (its LEFT JOIN's NULL
 * row), so its figure is used only when there were attempts.
 */
static const char agents_sql[] =
	"SELECT u.name, CASE WHEN a.state = 'online' AND a.lease_until < now() "
	"                    THEN 'unresponsive' ELSE a.state::text END AS state, "
	"       array_to_string(u.labels, ',') AS labels, u.slots, u.running, "
	"       CASE WHEN u.attempts_1h > 0 THEN u.utilization_pct_1h ELSE 0 END AS busy, "
	"       extract(epoch FROM now() - a.last_seen) AS seen_s, "
	"       coalesce(a.concurrency_limit, a.slots) AS lim, "
	"       coalesce(a.isolation, 'unknown') || ', ' "
	"           || coalesce(split_part(a.limits, ':', 1), 'limits unknown') AS mode, "
	"       coalesce(a.pressure, '') AS pressure "
	"  FROM railyard.agent_utilization u JOIN railyard.agents a ON a.id = u.id "
	" WHERE a.state <> 'offline' OR a.last_seen > now() - interval '1 hour' "
	" ORDER BY a.state, u.name";
enum { A_NAME, A_STATE, A_LABELS, A_SLOTS, A_RUNNING, A_BUSY, A_SEEN, A_LIMIT, A_MODE, A_PRESSURE,
	A_NCOLS };
static const char *const agents_cols[] = { "name", "state", "labels", "slots", "running", "busy",
	"seen_s", "lim", "mode", "pressure" };

static const char agents_hidden_sql[] =
	"SELECT count(*) AS hidden FROM railyard.agents "
	" WHERE state = 'offline' AND last_seen <= now() - interval '1 hour'";
static const char *const agents_hidden_cols[] = { "hidden" };

static const char waits_sql[] =
	"SELECT count(*) AS n, why, (array_agg(pipeline_id || ' ' || name ORDER BY id))[1] AS example "
	"  FROM railyard.task_waits WHERE state = 'ready' "
	" GROUP BY why ORDER BY count(*) DESC, why";
enum { W_N, W_WHY, W_EXAMPLE, W_NCOLS };
static const char *const waits_cols[] = { "n", "why", "example" };

static const char pipeline_sql[] =
	"SELECT s.id, s.name, s.team, s.priority, s.state, s.elapsed_s, s.tasks, "
	"       s.blocked, s.ready, s.running, s.succeeded, s.failed, s.cached, s.skipped, "
	"       s.cancelled, p.revision, p.submitted_by, "
	"       to_char(s.created_at, 'YYYY-MM-DD HH24:MI:SS TZ') AS created "
	"  FROM railyard.pipeline_summary s JOIN railyard.pipelines p ON p.id = s.id "
	" WHERE s.id = $1::bigint";
enum { H_ID, H_NAME, H_TEAM, H_PRIORITY, H_STATE, H_ELAPSED, H_TASKS, H_SUCCEEDED, H_FAILED,
	H_CACHED, H_SKIPPED, H_CANCELLED, H_RUNNING, H_READY, H_BLOCKED, H_REVISION, H_BY,
	H_CREATED, H_NCOLS };
static const char *const pipeline_cols[] = { "id", "name", "team", "priority", "state",
	"elapsed_s", "tasks", "succeeded", "failed", "cached", "skipped", "cancelled", "running",
	"ready", "blocked", "revision", "submitted_by", "created" };
/* The per-state counts of the header, in the order shown. */
#define H_FIRST_COUNT H_SUCCEEDED
#define H_LAST_COUNT H_BLOCKED

static const char tasks_sql[] =
	"SELECT t.id, t.name, t.state, t.attempt, coalesce(a.name, '') AS agent, "
	"       extract(epoch FROM coalesce(t.finished_at, now()) "
	"                          - coalesce(t.started_at, t.claimed_at)) AS seconds, "
	"       coalesce(t.reason, '') AS reason, t.exit_code "
	"  FROM railyard.tasks t "
	"  LEFT JOIN railyard.agents a ON a.id = t.agent_id "
	" WHERE t.pipeline_id = $1::bigint "
	" ORDER BY coalesce(t.ready_at, t.claimed_at, t.finished_at) NULLS LAST, t.id";
enum { T_ID, T_NAME, T_STATE, T_ATTEMPT, T_AGENT, T_SECONDS, T_REASON, T_EXIT, T_NCOLS };
static const char *const tasks_cols[] = { "id", "name", "state", "attempt", "agent", "seconds",
	"reason", "exit_code" };

static const char task_waits_sql[] =
	"SELECT id, why FROM railyard.task_waits_of($1::bigint) ORDER BY id";
enum { TW_ID, TW_WHY, TW_NCOLS };
static const char *const task_waits_cols[] = { "id", "why" };

/* printf, minus trailing blanks that empty last columns leave behind. */
static void line(const char *fmt, ...) RY_PRINTF(1, 2);

static void line(const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	size_t n = strlen(buf);
	while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\n'))
		buf[--n] = '\0';
	puts(buf);
}

/* Column width for the values of col, between min and NAME_WIDTH_MAX. */
static int width_of(const struct ry_res *r, int col, int min)
{
	int w = min;
	for (int i = 0; i < ry_res_rows(r); i++) {
		int n = (int)strlen(ry_res_get(r, i, col));
		if (n > w)
			w = n;
	}
	return w < NAME_WIDTH_MAX ? w : NAME_WIDTH_MAX;
}

/*
 * Runs a query, makes its values printable and finds its columns by name
 * (col[i] for cols[i]); prints why it failed and returns NULL otherwise.
 */
static struct ry_res *query(struct ry_db *db, const char *sql, int n, const char *const *params,
			    const char *const *cols, int ncols, int *col, const char *what)
{
	char *err = NULL;
	const char *missing = NULL;
	struct ry_res *r = ry_db_query(db, sql, n, params, &err);
	if (!r) {
		cmd_error("cannot read %s: %s", what, err);
		free(err);
		return NULL;
	}
	if (!ry_res_columns(r, cols, ncols, col, &missing)) {
		cmd_error("cannot read %s: the query has no column %s", what, missing);
		ry_res_free(r);
		return NULL;
	}
	ry_res_make_printable(r, false);
	return r;
}

static bool show_pipelines(struct ry_db *db)
{
	char active_max[16], finished_max[16];
	int col[P_NCOLS], ccol[1];
	snprintf(active_max, sizeof(active_max), "%d", MAX_ACTIVE_SHOWN);
	snprintf(finished_max, sizeof(finished_max), "%d", RECENT_FINISHED);
	const char *params[] = { active_max, finished_max };
	struct ry_res *r = query(db, pipelines_sql, 2, params, pipelines_cols, P_NCOLS, col,
				 "pipelines");
	struct ry_res *c = r ? query(db, active_count_sql, 0, NULL, active_count_cols, 1, ccol,
				     "pipelines") : NULL;
	if (!c) {
		ry_res_free(r);
		return false;
	}
	long active = ry_res_get_long(c, 0, ccol[0]);
	ry_res_free(c);

	int n = ry_res_rows(r);
	printf("PIPELINES  %ld active", active);
	if (active > MAX_ACTIVE_SHOWN)
		printf(" (oldest %d shown)", MAX_ACTIVE_SHOWN);
	printf("\n");
	if (n == 0) {
		printf("  none yet: railyard submit FILE\n\n");
		ry_res_free(r);
		return true;
	}
	int wname = width_of(r, col[P_NAME], 4), wteam = width_of(r, col[P_TEAM], 4);
	line("  %6s  %-*s  %-*s  %-9s  %11s  %8s", "ID", wname, "NAME", wteam, "TEAM", "STATE",
	     "TASKS DONE", "ELAPSED");
	for (int i = 0; i < n; i++) {
		char elapsed[48], done[32];
		const char *state = ry_res_get(r, i, col[P_STATE]);
		ry_format_duration(elapsed, sizeof(elapsed), ry_res_get_double(r, i, col[P_ELAPSED]));
		snprintf(done, sizeof(done), "%ld/%ld", ry_res_get_long(r, i, col[P_DONE]),
			 ry_res_get_long(r, i, col[P_TASKS]));
		printf("  %6s  %-*.*s  %-*s  %-9s  %11s  %8s", ry_res_get(r, i, col[P_ID]), wname,
		       wname, ry_res_get(r, i, col[P_NAME]), wteam, ry_res_get(r, i, col[P_TEAM]),
		       state, done, elapsed);
		if (ry_res_get_long(r, i, col[P_FAILED]) > 0 && strcmp(state, "failed") != 0)
			printf("  %ld failed", ry_res_get_long(r, i, col[P_FAILED]));
		printf("\n");
	}
	printf("\n");
	ry_res_free(r);
	return true;
}

static bool show_agents(struct ry_db *db)
{
	int col[A_NCOLS], hcol[1];
	struct ry_res *r = query(db, agents_sql, 0, NULL, agents_cols, A_NCOLS, col, "agents");
	struct ry_res *h = r ? query(db, agents_hidden_sql, 0, NULL, agents_hidden_cols, 1, hcol,
				     "agents") : NULL;
	if (!h) {
		ry_res_free(r);
		return false;
	}
	int n = ry_res_rows(r);
	long hidden = ry_res_get_long(h, 0, hcol[0]);
	ry_res_free(h);

	printf("AGENTS  %d shown", n);
	if (hidden > 0)
		printf(", %ld offline for over an hour not shown", hidden);
	printf("\n");
	if (n == 0)
		printf("  none: start one with railyard worker\n");
	int wname = width_of(r, col[A_NAME], 4), wlabels = width_of(r, col[A_LABELS], 6);
	if (n > 0)
		line("  %-*s  %-12s  %-*s  %5s  %5s  %7s  %8s  %8s  %s", wname, "NAME", "STATE", wlabels,
		     "LABELS", "SLOTS", "LIMIT", "RUNNING", "BUSY 1H", "SEEN", "ISOLATION, LIMITS");
	for (int i = 0; i < n; i++) {
		char seen[48], busy[32];
		ry_format_duration(seen, sizeof(seen), ry_res_get_double(r, i, col[A_SEEN]));
		snprintf(busy, sizeof(busy), "%.0f%%", ry_res_get_double(r, i, col[A_BUSY]));
		line("  %-*.*s  %-12s  %-*.*s  %5s  %5s  %7s  %8s  %4s ago  %s", wname, wname,
		     ry_res_get(r, i, col[A_NAME]), ry_res_get(r, i, col[A_STATE]), wlabels, wlabels,
		     ry_res_get(r, i, col[A_LABELS]), ry_res_get(r, i, col[A_SLOTS]),
		     ry_res_get(r, i, col[A_LIMIT]), ry_res_get(r, i, col[A_RUNNING]), busy, seen,
		     ry_res_get(r, i, col[A_MODE]));
		/* A worker below its slots says why (its pressure). */
		if (strcmp(ry_res_get(r, i, col[A_LIMIT]), ry_res_get(r, i, col[A_SLOTS])) != 0)
			line("  %-*s  throttled: limit %s of %s (%s)", wname, "",
			     ry_res_get(r, i, col[A_LIMIT]), ry_res_get(r, i, col[A_SLOTS]),
			     ry_res_get(r, i, col[A_PRESSURE]));
	}
	printf("\n");
	ry_res_free(r);
	return true;
}

static bool show_waits(struct ry_db *db)
{
	int col[W_NCOLS];
	struct ry_res *r = query(db, waits_sql, 0, NULL, waits_cols, W_NCOLS, col, "waiting tasks");
	if (!r)
		return false;
	int n = ry_res_rows(r);
	printf("WAITING  ready tasks no agent has taken\n");
	if (n == 0)
		printf("  none\n");
	for (int i = 0; i < n; i++) {
		long count = ry_res_get_long(r, i, col[W_N]);
		/* "42 build:cart" -> "pipeline 42 build:cart" */
		printf("  %ld task%s: %s (e.g. pipeline %s)\n", count, count == 1 ? "" : "s",
		       ry_res_get(r, i, col[W_WHY]), ry_res_get(r, i, col[W_EXAMPLE]));
	}
	ry_res_free(r);
	return true;
}

/* Why task id waits, from the task_waits rows (sorted by id); "" if none. */
static const char *why_of(const struct ry_res *w, const int *wcol, long long id)
{
	int lo = 0, hi = ry_res_rows(w);
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		long long v = strtoll(ry_res_get(w, mid, wcol[TW_ID]), NULL, 10);
		if (v == id)
			return ry_res_get(w, mid, wcol[TW_WHY]);
		if (v < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return "";
}

/* What the INFO column says about task row i. */
static void task_info(const struct ry_res *t, const int *col, int i, const char *why, char *buf,
		      size_t len)
{
	const char *state = ry_res_get(t, i, col[T_STATE]);
	const char *reason = ry_res_get(t, i, col[T_REASON]);
	const char *exit_code = ry_res_get(t, i, col[T_EXIT]);
	bool has_exit = !ry_res_isnull(t, i, col[T_EXIT]);

	if (strcmp(state, "blocked") == 0 || strcmp(state, "ready") == 0)
		snprintf(buf, len, "%s", why);
	else if (has_exit && *reason)
		snprintf(buf, len, "%s (exit %s)", reason, exit_code);
	else if (has_exit && strcmp(exit_code, "0") != 0)
		snprintf(buf, len, "exit %s", exit_code);
	else if (*reason)
		snprintf(buf, len, "%s", reason);
	else if (strcmp(state, "cached") == 0)
		snprintf(buf, len, "cache hit");
	else
		buf[0] = '\0';
}

static void print_header(const struct ry_res *p, const int *col)
{
	char elapsed[48];
	ry_format_duration(elapsed, sizeof(elapsed), ry_res_get_double(p, 0, col[H_ELAPSED]));
	printf("pipeline %s  %s  team %s  priority %s", ry_res_get(p, 0, col[H_ID]),
	       ry_res_get(p, 0, col[H_NAME]), ry_res_get(p, 0, col[H_TEAM]),
	       ry_res_get(p, 0, col[H_PRIORITY]));
	if (!ry_res_isnull(p, 0, col[H_REVISION]))
		printf("  revision %s", ry_res_get(p, 0, col[H_REVISION]));
	printf("\nsubmitted %s by %s\n", ry_res_get(p, 0, col[H_CREATED]),
	       ry_res_get(p, 0, col[H_BY]));
	printf("state %s  elapsed %s  tasks %s:", ry_res_get(p, 0, col[H_STATE]), elapsed,
	       ry_res_get(p, 0, col[H_TASKS]));
	const char *sep = " ";
	for (int k = H_FIRST_COUNT; k <= H_LAST_COUNT; k++) {
		long v = ry_res_get_long(p, 0, col[k]);
		if (v > 0) {
			printf("%s%ld %s", sep, v, pipeline_cols[k]);
			sep = ", ";
		}
	}
	printf("\n\n");
}

static int show_pipeline(struct ry_db *db, const char *id)
{
	const char *params[] = { id };
	int pcol[H_NCOLS], tcol[T_NCOLS], wcol[TW_NCOLS];
	struct ry_res *p = NULL, *t = NULL, *w = NULL;
	int rc = RY_EXIT_ERROR;

	if (!(p = query(db, pipeline_sql, 1, params, pipeline_cols, H_NCOLS, pcol, "the pipeline")))
		goto out;
	if (ry_res_rows(p) == 0) {
		cmd_error("pipeline %s does not exist", id);
		goto out;
	}
	if (!(t = query(db, tasks_sql, 1, params, tasks_cols, T_NCOLS, tcol,
			"the pipeline's tasks")) ||
	    !(w = query(db, task_waits_sql, 1, params, task_waits_cols, TW_NCOLS, wcol,
			"why the pipeline's tasks wait")))
		goto out;

	print_header(p, pcol);
	int n = ry_res_rows(t);
	int wname = width_of(t, tcol[T_NAME], 4), wagent = width_of(t, tcol[T_AGENT], 5);
	line("%-*s  %-9s  %3s  %-*s  %7s  %s", wname, "TASK", "STATE", "TRY", wagent, "AGENT",
	     "TIME", "INFO");
	for (int i = 0; i < n; i++) {
		char dur[48] = "", info[512], attempt[16] = "";
		if (!ry_res_isnull(t, i, tcol[T_SECONDS]))
			ry_format_duration(dur, sizeof(dur), ry_res_get_double(t, i, tcol[T_SECONDS]));
		if (ry_res_get_long(t, i, tcol[T_ATTEMPT]) > 0)
			snprintf(attempt, sizeof(attempt), "%s", ry_res_get(t, i, tcol[T_ATTEMPT]));
		const char *why = why_of(w, wcol, strtoll(ry_res_get(t, i, tcol[T_ID]), NULL, 10));
		task_info(t, tcol, i, why, info, sizeof(info));
		line("%-*s  %-9s  %3s  %-*.*s  %7s  %s", wname, ry_res_get(t, i, tcol[T_NAME]),
		     ry_res_get(t, i, tcol[T_STATE]), attempt, wagent, wagent,
		     ry_res_get(t, i, tcol[T_AGENT]), dur, info);
	}
	if (ry_res_get_long(p, 0, pcol[H_FAILED]) > 0 && !cmd_show_failed_logs(db, id))
		goto out;
	rc = RY_EXIT_OK;
out:
	ry_res_free(w);
	ry_res_free(t);
	ry_res_free(p);
	return rc;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: railyard status [ID]\n"
		"  without ID: active and recent pipelines, agents, why ready tasks wait\n"
		"  with ID:    one pipeline's tasks, why each waits, the logs of failed ones\n");
}

int cmd_status(struct cmd_ctx *ctx, int argc, char **argv)
{
	long id = 0;
	int rc = cmd_only_help(argc, argv, usage);

	if (rc >= 0)
		return rc;
	if (argc - optind > 1) {
		usage(stderr);
		return RY_EXIT_ERROR;
	}
	if (argc - optind == 1 && !cmd_parse_id(argv[optind], &id))
		return RY_EXIT_ERROR;
	struct ry_db *db = cmd_connect(ctx, "cli:status");
	if (!db)
		return RY_EXIT_ERROR;

	if (id > 0) {
		char *idtext = ry_asprintf("%ld", id);
		rc = show_pipeline(db, idtext);
		free(idtext);
	} else {
		rc = show_pipelines(db) && show_agents(db) && show_waits(db) &&
		     cmd_show_anomalies(db) ? RY_EXIT_OK : RY_EXIT_ERROR;
	}
	ry_db_close(db);
	return rc;
}
