/*
 * railyard status [ID]
 *
 * Without ID, the farm at a glance: active pipelines plus the ten latest
 * finished ones, the agents, and why ready tasks wait (grouped by reason,
 * from railyard.task_waits).  With ID, one pipeline: its header and one line
 * per task in roughly the order they became ready.  Plain aligned text for
 * a 100-column terminal; everything comes from the views in sql/40_views.sql.
 */
#include "cmd.h"
#include "forecast_cli.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ACTIVE_SHOWN 50
#define RECENT_FINISHED 10
#define NAME_WIDTH_MAX 40

/* Active pipelines (oldest first, capped) and the latest finished ones. */
static const char pipelines_sql[] =
	"SELECT s.id, s.name, s.team, s.state, "
	"       s.tasks - s.blocked - s.ready - s.running AS done, s.tasks, s.elapsed_s, "
	"       s.running, s.failed "
	"  FROM railyard.pipeline_summary s "
	" WHERE s.id = ANY (ARRAY("
	"        (SELECT id FROM railyard.pipelines WHERE state IN ('queued', 'running') "
	"          ORDER BY id LIMIT $1::integer) "
	"        UNION ALL "
	"        (SELECT id FROM railyard.pipelines WHERE state NOT IN ('queued', 'running') "
	"          ORDER BY id DESC LIMIT $2::integer))) "
	" ORDER BY s.state IN ('queued', 'running'), s.id";

static const char active_count_sql[] =
	"SELECT count(*) FROM railyard.pipelines WHERE state IN ('queued', 'running')";

/*
 * Agents that are up, or were within the hour.  agent_utilization reports
 * an agent without attempts as busy the whole hour (its LEFT JOIN's NULL
 * row), so its figure is used only when there were attempts.
 */
static const char agents_sql[] =
	"SELECT u.name, CASE WHEN a.state = 'online' AND a.lease_until < now() "
	"                    THEN 'unresponsive' ELSE a.state::text END, "
	"       array_to_string(u.labels, ','), u.slots, u.running, "
	"       CASE WHEN u.attempts_1h > 0 THEN u.utilization_pct_1h ELSE 0 END, "
	"       extract(epoch FROM now() - a.last_seen) "
	"  FROM railyard.agent_utilization u JOIN railyard.agents a ON a.id = u.id "
	" WHERE a.state <> 'offline' OR a.last_seen > now() - interval '1 hour' "
	" ORDER BY a.state, u.name";

static const char agents_hidden_sql[] =
	"SELECT count(*) FROM railyard.agents "
	" WHERE state = 'offline' AND last_seen <= now() - interval '1 hour'";

static const char waits_sql[] =
	"SELECT count(*), why, (array_agg(pipeline_id || ' ' || name ORDER BY id))[1] "
	"  FROM railyard.task_waits WHERE state = 'ready' "
	" GROUP BY why ORDER BY count(*) DESC, why";

static const char pipeline_sql[] =
	"SELECT s.id, s.name, s.team, s.priority, s.state, s.elapsed_s, s.tasks, "
	"       s.blocked, s.ready, s.running, s.succeeded, s.failed, s.cached, s.skipped, "
	"       s.cancelled, p.revision, p.submitted_by, "
	"       to_char(s.created_at, 'YYYY-MM-DD HH24:MI:SS TZ') "
	"  FROM railyard.pipeline_summary s JOIN railyard.pipelines p ON p.id = s.id "
	" WHERE s.id = $1::bigint";

static const char tasks_sql[] =
	"SELECT t.name, t.state, t.attempt, coalesce(a.name, ''), "
	"       extract(epoch FROM coalesce(t.finished_at, now()) "
	"                          - coalesce(t.started_at, t.claimed_at)), "
	"       t.reason, t.exit_code, w.why "
	"  FROM railyard.tasks t "
	"  LEFT JOIN railyard.agents a ON a.id = t.agent_id "
	"  LEFT JOIN (SELECT id, why FROM railyard.task_waits WHERE pipeline_id = $1::bigint) w "
	"         ON w.id = t.id "
	" WHERE t.pipeline_id = $1::bigint "
	" ORDER BY coalesce(t.ready_at, t.claimed_at, t.finished_at) NULLS LAST, t.id";

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

/* Runs a query, or prints why it failed. */
static struct ry_res *query(struct ry_db *db, const char *sql, int n, const char *const *params,
			    const char *what)
{
	char *err = NULL;
	struct ry_res *r = ry_db_query(db, sql, n, params, &err);
	if (!r) {
		fprintf(stderr, "error: cannot read %s: %s\n", what, err);
		free(err);
	}
	return r;
}

static bool show_pipelines(struct ry_db *db)
{
	char active_max[16], finished_max[16];
	snprintf(active_max, sizeof(active_max), "%d", MAX_ACTIVE_SHOWN);
	snprintf(finished_max, sizeof(finished_max), "%d", RECENT_FINISHED);
	const char *params[] = { active_max, finished_max };
	struct ry_res *r = query(db, pipelines_sql, 2, params, "pipelines");
	struct ry_res *c = r ? query(db, active_count_sql, 0, NULL, "pipelines") : NULL;
	if (!c) {
		ry_res_free(r);
		return false;
	}
	long active = ry_res_get_long(c, 0, 0);
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
	int wname = width_of(r, 1, 4), wteam = width_of(r, 2, 4);
	line("  %6s  %-*s  %-*s  %-9s  %11s  %8s", "ID", wname, "NAME", wteam, "TEAM", "STATE",
	     "TASKS DONE", "ELAPSED");
	for (int i = 0; i < n; i++) {
		char elapsed[48], done[32];
		ry_format_duration(elapsed, sizeof(elapsed), ry_res_get_double(r, i, 6));
		snprintf(done, sizeof(done), "%ld/%ld", ry_res_get_long(r, i, 4),
			 ry_res_get_long(r, i, 5));
		printf("  %6s  %-*.*s  %-*s  %-9s  %11s  %8s", ry_res_get(r, i, 0), wname, wname,
		       ry_res_get(r, i, 1), wteam, ry_res_get(r, i, 2), ry_res_get(r, i, 3), done,
		       elapsed);
		if (ry_res_get_long(r, i, 8) > 0 && strcmp(ry_res_get(r, i, 3), "failed") != 0)
			printf("  %ld failed", ry_res_get_long(r, i, 8));
		printf("\n");
	}
	printf("\n");
	ry_res_free(r);
	return true;
}

static bool show_agents(struct ry_db *db)
{
	struct ry_res *r = query(db, agents_sql, 0, NULL, "agents");
	struct ry_res *h = r ? query(db, agents_hidden_sql, 0, NULL, "agents") : NULL;
	if (!h) {
		ry_res_free(r);
		return false;
	}
	int n = ry_res_rows(r);
	long hidden = ry_res_get_long(h, 0, 0);
	ry_res_free(h);

	printf("AGENTS  %d shown", n);
	if (hidden > 0)
		printf(", %ld offline for over an hour not shown", hidden);
	printf("\n");
	if (n == 0)
		printf("  none: start one with railyard worker\n");
	int wname = width_of(r, 0, 4), wlabels = width_of(r, 2, 6);
	if (n > 0)
		line("  %-*s  %-12s  %-*s  %5s  %7s  %8s  %8s", wname, "NAME", "STATE", wlabels,
		     "LABELS", "SLOTS", "RUNNING", "BUSY 1H", "SEEN");
	for (int i = 0; i < n; i++) {
		char seen[48], busy[32];
		ry_format_duration(seen, sizeof(seen), ry_res_get_double(r, i, 6));
		snprintf(busy, sizeof(busy), "%.0f%%", ry_res_get_double(r, i, 5));
		line("  %-*.*s  %-12s  %-*.*s  %5s  %7s  %8s  %4s ago", wname, wname,
		     ry_res_get(r, i, 0), ry_res_get(r, i, 1), wlabels, wlabels,
		     ry_res_get(r, i, 2), ry_res_get(r, i, 3), ry_res_get(r, i, 4), busy, seen);
	}
	printf("\n");
	ry_res_free(r);
	return true;
}

static bool show_waits(struct ry_db *db)
{
	struct ry_res *r = query(db, waits_sql, 0, NULL, "waiting tasks");
	if (!r)
		return false;
	int n = ry_res_rows(r);
	printf("WAITING  ready tasks no agent has taken\n");
	if (n == 0)
		printf("  none\n");
	for (int i = 0; i < n; i++) {
		long count = ry_res_get_long(r, i, 0);
		/* "42 build:cart" -> "pipeline 42 build:cart" */
		printf("  %ld task%s: %s (e.g. pipeline %s)\n", count, count == 1 ? "" : "s",
		       ry_res_get(r, i, 1), ry_res_get(r, i, 2));
	}
	ry_res_free(r);
	return true;
}

/* What the INFO column says about a task. */
static void task_info(const struct ry_res *r, int i, char *buf, size_t len)
{
	const char *state = ry_res_get(r, i, 1);
	const char *reason = ry_res_get(r, i, 5);
	bool has_exit = !ry_res_isnull(r, i, 6);
	const char *why = ry_res_get(r, i, 7);

	if (strcmp(state, "blocked") == 0 || strcmp(state, "ready") == 0)
		snprintf(buf, len, "%s", why);
	else if (has_exit && *reason)
		snprintf(buf, len, "%s (exit %s)", reason, ry_res_get(r, i, 6));
	else if (has_exit && strcmp(ry_res_get(r, i, 6), "0") != 0)
		snprintf(buf, len, "exit %s", ry_res_get(r, i, 6));
	else if (*reason)
		snprintf(buf, len, "%s", reason);
	else if (strcmp(state, "cached") == 0)
		snprintf(buf, len, "cache hit");
	else
		buf[0] = '\0';
}

static int show_pipeline(struct ry_db *db, const char *id)
{
	const char *params[] = { id };
	struct ry_res *p = query(db, pipeline_sql, 1, params, "the pipeline");
	if (!p)
		return RY_EXIT_ERROR;
	if (ry_res_rows(p) == 0) {
		fprintf(stderr, "error: pipeline %s does not exist\n", id);
		ry_res_free(p);
		return RY_EXIT_ERROR;
	}
	struct ry_res *t = query(db, tasks_sql, 1, params, "the pipeline's tasks");
	if (!t) {
		ry_res_free(p);
		return RY_EXIT_ERROR;
	}

	static const char *const counted[] = { "succeeded", "failed", "cached", "skipped",
		"cancelled", "running", "ready", "blocked" };
	static const int counted_col[] = { 10, 11, 12, 13, 14, 9, 8, 7 };
	char elapsed[48];
	ry_format_duration(elapsed, sizeof(elapsed), ry_res_get_double(p, 0, 5));
	printf("pipeline %s  %s  team %s  priority %s", ry_res_get(p, 0, 0), ry_res_get(p, 0, 1),
	       ry_res_get(p, 0, 2), ry_res_get(p, 0, 3));
	if (!ry_res_isnull(p, 0, 15))
		printf("  revision %s", ry_res_get(p, 0, 15));
	printf("\nsubmitted %s by %s\n", ry_res_get(p, 0, 17), ry_res_get(p, 0, 16));
	printf("state %s  elapsed %s  tasks %s:", ry_res_get(p, 0, 4), elapsed, ry_res_get(p, 0, 6));
	const char *sep = " ";
	for (size_t k = 0; k < RY_ARRAY_SIZE(counted); k++) {
		long v = ry_res_get_long(p, 0, counted_col[k]);
		if (v > 0) {
			printf("%s%ld %s", sep, v, counted[k]);
			sep = ", ";
		}
	}
	printf("\n\n");

	int n = ry_res_rows(t);
	int wname = width_of(t, 0, 4), wagent = width_of(t, 3, 5);
	line("%-*s  %-9s  %3s  %-*s  %7s  %s", wname, "TASK", "STATE", "TRY", wagent, "AGENT",
	     "TIME", "INFO");
	for (int i = 0; i < n; i++) {
		char dur[48] = "", info[512], attempt[16] = "";
		if (!ry_res_isnull(t, i, 4))
			ry_format_duration(dur, sizeof(dur), ry_res_get_double(t, i, 4));
		if (ry_res_get_long(t, i, 2) > 0)
			snprintf(attempt, sizeof(attempt), "%s", ry_res_get(t, i, 2));
		task_info(t, i, info, sizeof(info));
		line("%-*s  %-9s  %3s  %-*.*s  %7s  %s", wname, ry_res_get(t, i, 0),
		     ry_res_get(t, i, 1), attempt, wagent, wagent, ry_res_get(t, i, 3), dur, info);
	}
	ry_res_free(t);
	ry_res_free(p);
	return RY_EXIT_OK;
}

int cmd_status(struct cmd_ctx *ctx, int argc, char **argv)
{
	long id = 0;

	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fprintf(stderr, "usage: railyard status [ID]\n");
		return RY_EXIT_ERROR;
	}
	if (argc == 2 && !ry_parse_long(argv[1], 1, LONG_MAX, &id)) {
		fprintf(stderr, "error: invalid pipeline id '%s': expected a positive integer\n", argv[1]);
		return RY_EXIT_ERROR;
	}
	struct ry_db *db = cmd_connect(ctx, "cli:status");
	if (!db)
		return RY_EXIT_ERROR;

	int rc;
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
