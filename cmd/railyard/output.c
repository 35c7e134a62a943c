/*
 * What the commands print that they share: the one error format, and the
 * end of a failed task's log.  Everything printed here that came from the
 * database has been made printable first (no terminal control characters).
 */
#include "cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_TAIL_LINES 10	/* of a failed task's log, shown by wait and status */
#define LOG_TAIL_TASKS 3	/* failed tasks whose log is shown */

void cmd_error(const char *fmt, ...)
{
	va_list ap;
	char msg[4096];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Messages quote values from the database, which may hold anything. */
	ry_make_printable(msg, false);
	fprintf(stderr, "railyard: error: %s\n", msg);
}

/* The last failed attempt of each failed task with output, earliest first. */
static const char failed_logs_sql[] =
	"SELECT t.name, h.attempt, coalesce(h.agent_name, '') AS agent, h.log_tail "
	"  FROM railyard.tasks t "
	"  JOIN railyard.task_attempts h ON h.task_id = t.id AND h.attempt = t.attempt "
	" WHERE t.pipeline_id = $1::bigint AND t.state = 'failed' AND h.log_tail <> '' "
	" ORDER BY t.finished_at, t.id LIMIT $2::integer";

enum { FL_NAME, FL_ATTEMPT, FL_AGENT, FL_TAIL, FL_NCOLS };
static const char *const failed_logs_cols[] = { "name", "attempt", "agent", "log_tail" };

/* Prints the last n lines of text, each indented with "  | ". */
static void print_last_lines(const char *text, int n)
{
	size_t len = strlen(text);
	while (len > 0 && text[len - 1] == '\n')
		len--;
	size_t start = len;
	for (int lines = 0; start > 0; start--)
		if (text[start - 1] == '\n' && ++lines == n)
			break;
	if (start > 0)
		printf("  | ...\n");
	const char *p = text + start, *end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t k = nl ? (size_t)(nl - p) : (size_t)(end - p);
		printf("  | %.*s\n", (int)k, p);
		p += k + (nl ? 1 : 0);
	}
}

bool cmd_show_failed_logs(struct ry_db *db, const char *pipeline_id)
{
	char limit[16], *err = NULL;
	const char *missing = NULL;
	int col[FL_NCOLS];

	snprintf(limit, sizeof(limit), "%d", LOG_TAIL_TASKS);
	const char *params[] = { pipeline_id, limit };
	struct ry_res *r = ry_db_query(db, failed_logs_sql, 2, params, &err);
	if (!r) {
		cmd_error("cannot read the logs of failed tasks: %s", err);
		free(err);
		return false;
	}
	if (!ry_res_columns(r, failed_logs_cols, FL_NCOLS, col, &missing)) {
		cmd_error("cannot read the logs of failed tasks: no column %s", missing);
		ry_res_free(r);
		return false;
	}
	ry_res_make_printable(r, true);
	for (int i = 0; i < ry_res_rows(r); i++) {
		printf("\nlog of %s, attempt %s", ry_res_get(r, i, col[FL_NAME]),
		       ry_res_get(r, i, col[FL_ATTEMPT]));
		if (*ry_res_get(r, i, col[FL_AGENT]))
			printf(" on %s", ry_res_get(r, i, col[FL_AGENT]));
		printf(" (last lines):\n");
		print_last_lines(ry_res_get(r, i, col[FL_TAIL]), LOG_TAIL_LINES);
	}
	ry_res_free(r);
	return true;
}
