/*
 * railyard wait ID --junit FILE: the pipeline's tasks as a JUnit report
 * (pkg/junit), one test case per task: classname = pipeline name, name =
 * task name, time = run time of its last attempt; failed tasks carry their
 * reason and log tail; cached, skipped and cancelled ones are <skipped/>.
 */
#include "cmd.h"
#include "junit/junit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char pipeline_sql[] =
	"SELECT name, state, coalesce(revision, ''), "
	"       to_char(coalesce(started_at, created_at) AT TIME ZONE 'UTC', "
	"               'YYYY-MM-DD\"T\"HH24:MI:SS'), "
	"       extract(epoch FROM coalesce(finished_at, now()) - coalesce(started_at, created_at)) "
	"  FROM railyard.pipelines WHERE id = $1::bigint";

enum { PL_NAME, PL_STATE, PL_REVISION, PL_STARTED, PL_ELAPSED };

/* The last attempt holds the run time and the log tail of the outcome shown. */
static const char tasks_sql[] =
	"SELECT t.name, t.state, coalesce(t.reason, ''), t.exit_code, "
	"       coalesce(a.duration_s, extract(epoch FROM t.finished_at - t.started_at), 0), "
	"       coalesce(a.log_tail, '') "
	"  FROM railyard.tasks t "
	"  LEFT JOIN LATERAL (SELECT h.duration_s, h.log_tail FROM railyard.task_attempts h "
	"                      WHERE h.task_id = t.id ORDER BY h.attempt DESC LIMIT 1) a ON true "
	" WHERE t.pipeline_id = $1::bigint ORDER BY t.id";

enum { TK_NAME, TK_STATE, TK_REASON, TK_EXIT, TK_DURATION, TK_LOG };

/* "timeout: exceeded 5 s" -> "timeout"; "exit 2" -> "exit". */
static char *failure_type(const char *reason)
{
	size_t n = strcspn(reason, ": ");
	return n ? ry_strndup(reason, n) : ry_strdup("failed");
}

/* Keeps s (which it frees) in owned; returns the kept copy. */
static const char *keep(struct ry_strlist *owned, char *s)
{
	ry_strlist_add(owned, s);
	free(s);
	return owned->items[owned->n - 1];
}

/* Fills c from row i; strings it makes are added to owned. */
static void task_case(const struct ry_res *r, int i, const char *pipeline,
		      struct ry_junit_case *c, struct ry_strlist *owned)
{
	const char *state = ry_res_get(r, i, TK_STATE), *reason = ry_res_get(r, i, TK_REASON);

	c->classname = pipeline;
	c->name = ry_res_get(r, i, TK_NAME);
	c->time_s = ry_res_get_double(r, i, TK_DURATION);
	c->output = *ry_res_get(r, i, TK_LOG) ? ry_res_get(r, i, TK_LOG) : NULL;
	if (strcmp(state, "succeeded") == 0) {
		c->outcome = RY_JUNIT_PASSED;
	} else if (strcmp(state, "failed") == 0) {
		c->outcome = RY_JUNIT_FAILED;
		if (!*reason && !ry_res_isnull(r, i, TK_EXIT))
			reason = keep(owned, ry_asprintf("exit %s", ry_res_get(r, i, TK_EXIT)));
		c->message = *reason ? reason : "failed";
		c->type = keep(owned, failure_type(c->message));
	} else {
		/* cached, skipped, cancelled; unfinished ones only after --timeout. */
		bool final = strcmp(state, "cached") == 0 || strcmp(state, "skipped") == 0 ||
			     strcmp(state, "cancelled") == 0;
		c->outcome = RY_JUNIT_SKIPPED;
		if (!final)
			c->message = keep(owned, ry_asprintf("not finished (%s) when wait gave up", state));
		else if (*reason && strcmp(state, "skipped") != 0)
			c->message = keep(owned, ry_asprintf("%s: %s", state, reason));
		else
			c->message = *reason ? reason : state;
	}
}

int cmd_wait_junit(struct ry_db *db, const char *pipeline_id, const char *path, int rc)
{
	const char *params[] = { pipeline_id };
	struct ry_res *p = NULL, *t = NULL;
	struct ry_junit_case *cases = NULL;
	struct ry_strlist owned = { 0 };
	char *err = NULL;

	if (!db) {
		cmd_error("cannot write the JUnit report %s: no database connection", path);
		return RY_EXIT_ERROR;
	}
	if (!(p = ry_db_query(db, pipeline_sql, 1, params, &err)) ||
	    !(t = ry_db_query(db, tasks_sql, 1, params, &err))) {
		cmd_error("cannot write the JUnit report %s: %s", path, err);
		rc = RY_EXIT_ERROR;
		goto out;
	}
	if (ry_res_rows(p) == 0)
		goto out;	/* wait said the pipeline does not exist */

	const char *pipeline = ry_res_get(p, 0, PL_NAME);
	size_t n = (size_t)ry_res_rows(t);
	cases = ry_calloc(n ? n : 1, sizeof(*cases));
	for (size_t i = 0; i < n; i++)
		task_case(t, (int)i, pipeline, &cases[i], &owned);
	const struct ry_junit_property props[] = {
		{ "railyard.pipeline_id", pipeline_id },
		{ "railyard.state", ry_res_get(p, 0, PL_STATE) },
		{ "railyard.revision", ry_res_get(p, 0, PL_REVISION) },
	};
	struct ry_junit_suite suite = {
		.name = pipeline, .timestamp = ry_res_get(p, 0, PL_STARTED),
		.time_s = ry_res_get_double(p, 0, PL_ELAPSED),
		.props = props, .nprops = RY_ARRAY_SIZE(props), .cases = cases, .ncases = n,
	};
	if (!ry_junit_write_file(path, &suite, &err)) {
		cmd_error("cannot write the JUnit report: %s", err);
		rc = RY_EXIT_ERROR;
	}
out:
	free(err);
	free(cases);
	ry_strlist_release(&owned);
	ry_res_free(t);
	ry_res_free(p);
	return rc;
}
