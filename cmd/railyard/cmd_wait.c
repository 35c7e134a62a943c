/*
 * railyard wait ID [--follow] [--timeout S]
 *
 * Blocks until the pipeline is final and exits with its result, for CI
 * jobs: 0 succeeded, 1 failed, 2 cancelled or any error (unknown pipeline,
 * no database, timeout).  It LISTENs on railyard_pipeline (sent when a
 * pipeline finishes) with a poll every second as a backstop; a lost
 * connection is re-established with backoff, so a database restart does not
 * fail the CI job.
 *
 * --follow streams the pipeline's audit log as progress lines on stdout.
 * Audit ids are taken at INSERT but become visible at COMMIT, so a smaller
 * id can appear after a larger one; the last few seconds of the log are
 * therefore re-read on every poll, and lines already printed are skipped.
 */
#include "cmd.h"
#include "forecast_cli.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKSTOP_MS 1000	/* poll at least this often */
#define MIN_GAP_MS 50		/* and at most this often */
#define FOLLOW_MIN_GAP_MS 200	/* (each look reads the audit log) */
#define RECONNECT_FOR_MS (10 * 60 * 1000)	/* without --timeout */
#define SETTLE_S "10"		/* audit rows older than this are final */
#define AUDIT_BATCH 2000
#define NAME_WIDTH_MAX 32

static const char state_sql[] =
	"SELECT state FROM railyard.pipelines WHERE id = $1::bigint";

static const char audit_sql[] =
	"SELECT l.id, extract(epoch FROM l.at), l.object, l.object_id, l.event, l.actor, "
	"       l.detail->>'attempt', l.detail->>'agent_id', l.detail->>'reason', "
	"       l.detail->>'exit_code', h.duration_s, h.outcome, h.reason, l.new_state, "
	"       l.at < now() - interval '" SETTLE_S " seconds' "
	"  FROM railyard.audit_log l "
	"  LEFT JOIN railyard.task_attempts h ON l.object = 'task' AND h.task_id = l.object_id "
	"        AND h.attempt = (l.detail->>'attempt')::integer "
	" WHERE l.pipeline_id = $1::bigint AND l.id > $2::bigint "
	" ORDER BY l.id LIMIT $3::integer";

enum {
	AU_ID, AU_AT, AU_OBJECT, AU_OBJECT_ID, AU_EVENT, AU_ACTOR, AU_ATTEMPT, AU_AGENT,
	AU_REASON, AU_EXIT, AU_DURATION, AU_OUTCOME, AU_ATTEMPT_REASON, AU_NEW_STATE, AU_SETTLED,
};

static const char summary_sql[] =
	"SELECT state, elapsed_s, tasks, succeeded, failed, cached, skipped, cancelled, "
	"       blocked + ready + running "
	"  FROM railyard.pipeline_summary WHERE id = $1::bigint";

static const char failed_tasks_sql[] =
	"SELECT name, coalesce(reason, ''), exit_code FROM railyard.tasks "
	" WHERE pipeline_id = $1::bigint AND state = 'failed' ORDER BY finished_at, id LIMIT 10";

struct id_name {
	long long id;
	char *name;
};

struct names {
	struct id_name *items;
	size_t n;
};

struct waiter {
	char *conninfo;
	struct ry_db_options dbopt;
	struct ry_db *db;
	char id[24];			/* the pipeline id, as text */
	bool follow;
	bool warned;			/* "reconnecting" said once */
	/* --follow */
	long long floor;		/* every audit row <= floor was handled */
	long long *printed;		/* ids > floor already printed, sorted */
	size_t nprinted;
	size_t printed_cap;
	struct names tasks;		/* loaded once: tasks never change */
	struct names agents;		/* reloaded when an unknown id shows up */
	int name_width;
	struct cmd_eta eta;		/* the live ETA line (cmd_forecast.c) */
};

static void sleep_ms(int64_t ms)
{
	if (ms <= 0)
		return;
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
}

static void names_release(struct names *n)
{
	for (size_t i = 0; i < n->n; i++)
		free(n->items[i].name);
	free(n->items);
	n->items = NULL;
	n->n = 0;
}

/* Replaces n with the (id, name) rows of r; r is ordered by id. */
static void names_load(struct names *n, const struct ry_res *r)
{
	names_release(n);
	n->n = (size_t)ry_res_rows(r);
	n->items = ry_calloc(n->n, sizeof(*n->items));
	for (size_t i = 0; i < n->n; i++) {
		n->items[i].id = strtoll(ry_res_get(r, (int)i, 0), NULL, 10);
		n->items[i].name = ry_strdup(ry_res_get(r, (int)i, 1));
	}
}

static const char *names_find(const struct names *n, long long id)
{
	size_t lo = 0, hi = n->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (n->items[mid].id == id)
			return n->items[mid].name;
		if (n->items[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Did the last failure come from the connection rather than the query? */
static bool connection_broken(const struct ry_db *db)
{
	const char *s = ry_db_last_sqlstate(db);
	return s[0] == '\0' || strncmp(s, "08", 2) == 0 || strncmp(s, "57P", 3) == 0;
}

static bool listen_channels(struct waiter *w, char **err)
{
	if (!ry_db_exec(w->db, "LISTEN railyard_pipeline", 0, NULL, err))
		return false;
	/* Following, a released task is worth an early look too. */
	return !w->follow || ry_db_exec(w->db, "LISTEN railyard_ready", 0, NULL, err);
}

/* libpq's messages span lines ("...\n\tIs the server running..."): one line. */
static char *one_line(const char *msg)
{
	struct ry_buf b = RY_BUF_INIT;
	bool blank = false;
	for (const char *p = msg ? msg : "no reason given"; *p; p++) {
		bool ws = *p == '\n' || *p == '\t' || *p == ' ';
		if (!ws || !blank)
			ry_buf_putc(&b, ws ? ' ' : *p);
		blank = ws;
	}
	while (b.len > 0 && b.data[b.len - 1] == ' ')
		b.data[--b.len] = '\0';
	return ry_buf_detach(&b);
}

/*
 * Connects again, with backoff, until give_up_at (ms, monotonic).  Says
 * once on stderr that it is doing so.
 */
static bool reconnect(struct waiter *w, const char *why, int64_t give_up_at)
{
	int64_t backoff = 250;

	if (!w->warned) {
		char *msg = one_line(why);
		ry_warn("lost the database connection (%s); reconnecting", msg);
		free(msg);
	}
	w->warned = true;
	ry_db_close(w->db);
	w->db = NULL;
	for (;;) {
		int64_t left = give_up_at - ry_now_ms();
		if (left <= 0)
			return false;
		sleep_ms(backoff < left ? backoff : left);
		char *err = NULL;
		w->db = ry_db_connect(w->conninfo, &w->dbopt, &err);
		if (w->db && listen_channels(w, &err)) {
			ry_info("reconnected to the database");
			w->warned = false;
			return true;
		}
		ry_debug("reconnect failed: %s", err);
		free(err);
		ry_db_close(w->db);
		w->db = NULL;
		backoff = backoff * 2 < 5000 ? backoff * 2 : 5000;
	}
}

static bool load_agents(struct waiter *w, char **err)
{
	struct ry_res *r = ry_db_query(w->db, "SELECT id, name FROM railyard.agents ORDER BY id",
				       0, NULL, err);
	if (!r)
		return false;
	ry_res_make_printable(r, false);
	names_load(&w->agents, r);
	ry_res_free(r);
	return true;
}

static bool load_tasks(struct waiter *w, char **err)
{
	const char *params[] = { w->id };
	struct ry_res *r = ry_db_query(w->db, "SELECT id, name FROM railyard.tasks "
				       "WHERE pipeline_id = $1::bigint ORDER BY id", 1, params, err);
	if (!r)
		return false;
	ry_res_make_printable(r, false);
	names_load(&w->tasks, r);
	ry_res_free(r);
	w->name_width = 8;	/* "pipeline" */
	for (size_t i = 0; i < w->tasks.n; i++) {
		int len = (int)strlen(w->tasks.items[i].name);
		if (len > w->name_width)
			w->name_width = len < NAME_WIDTH_MAX ? len : NAME_WIDTH_MAX;
	}
	return true;
}

/* The text after the event word, e.g. "attempt 1 on w1" or "failed 2.1s (exit 2)". */
static bool describe_task_event(struct waiter *w, const struct ry_res *r, int i,
				struct ry_buf *b, bool *agents_reloaded)
{
	const char *ev = ry_res_get(r, i, AU_EVENT);
	const char *reason = ry_res_get(r, i, AU_REASON);

	if (strcmp(ev, "claim") == 0) {
		long long agent = strtoll(ry_res_get(r, i, AU_AGENT), NULL, 10);
		const char *name = names_find(&w->agents, agent);
		if (!name && !*agents_reloaded) {
			char *err = NULL;
			*agents_reloaded = true;
			if (!load_agents(w, &err))
				free(err);	/* the id is shown instead */
			name = names_find(&w->agents, agent);
		}
		ry_buf_printf(b, "attempt %s on ", ry_res_get(r, i, AU_ATTEMPT));
		if (name)
			ry_buf_puts(b, name);
		else
			ry_buf_printf(b, "agent %lld", agent);
	} else if (strcmp(ev, "finish") == 0) {
		ry_buf_puts(b, ry_res_get(r, i, AU_NEW_STATE));
		if (!ry_res_isnull(r, i, AU_DURATION)) {
			char d[48];
			ry_format_duration(d, sizeof(d), ry_res_get_double(r, i, AU_DURATION));
			ry_buf_printf(b, " %s", d);
		}
		/* The worker's reason already says "exit 2" or the signal. */
		bool has_exit = !ry_res_isnull(r, i, AU_EXIT) &&
				strcmp(ry_res_get(r, i, AU_EXIT), "0") != 0;
		if (*reason)
			ry_buf_printf(b, " (%s)", reason);
		else if (has_exit)
			ry_buf_printf(b, " (exit %s)", ry_res_get(r, i, AU_EXIT));
	} else if (strcmp(ev, "retry") == 0) {
		/* The requeue clears the task's reason; the attempt keeps it. */
		const char *why = ry_res_get(r, i, AU_ATTEMPT_REASON);
		ry_buf_printf(b, "(%s)", *why ? why : *ry_res_get(r, i, AU_OUTCOME) ?
			      ry_res_get(r, i, AU_OUTCOME) : "requeued");
	} else if (strcmp(ev, "skip") == 0 || strcmp(ev, "cancel") == 0) {
		ry_buf_printf(b, "(%s)", *reason ? reason : ry_res_get(r, i, AU_NEW_STATE));
	} else if (strcmp(ev, "lost") == 0) {
		ry_buf_printf(b, "failed (%s)", *reason ? reason : "agent lost");
	} else {
		return false;	/* ready, start: too chatty for a CI log */
	}
	return true;
}

static void print_event(struct waiter *w, const struct ry_res *r, int i, bool *agents_reloaded)
{
	const char *object = ry_res_get(r, i, AU_OBJECT);
	const char *ev = ry_res_get(r, i, AU_EVENT);
	const char *who = "pipeline";
	struct ry_buf b = RY_BUF_INIT;
	bool show;

	if (strcmp(object, "task") == 0) {
		who = names_find(&w->tasks, strtoll(ry_res_get(r, i, AU_OBJECT_ID), NULL, 10));
		if (!who)
			who = "?";
		show = describe_task_event(w, r, i, &b, agents_reloaded);
	} else if (strcmp(ev, "cancel") == 0) {
		ry_buf_printf(&b, "by %s", ry_res_get(r, i, AU_ACTOR));
		show = true;
	} else {
		/* submit came before anyone could wait; the summary says finish. */
		show = strcmp(ev, "start") == 0;
	}
	if (show) {
		time_t at = (time_t)ry_res_get_double(r, i, AU_AT);
		struct tm tm;
		char clock[16];
		localtime_r(&at, &tm);
		strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
		if (b.len)
			printf("%s  %-*s  %-7s %s\n", clock, w->name_width, who, ev, b.data);
		else
			printf("%s  %-*s  %s\n", clock, w->name_width, who, ev);
	}
	ry_buf_release(&b);
}

/* Position of id in the sorted printed list, or where it would go. */
static size_t printed_pos(const struct waiter *w, long long id)
{
	size_t lo = 0, hi = w->nprinted;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (w->printed[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Records id as printed; false if it already was. */
static bool mark_printed(struct waiter *w, long long id)
{
	size_t pos = printed_pos(w, id);
	if (pos < w->nprinted && w->printed[pos] == id)
		return false;
	if (w->nprinted == w->printed_cap) {
		w->printed_cap = w->printed_cap ? 2 * w->printed_cap : 256;
		w->printed = ry_realloc(w->printed, w->printed_cap * sizeof(*w->printed));
	}
	memmove(w->printed + pos + 1, w->printed + pos, (w->nprinted - pos) * sizeof(*w->printed));
	w->printed[pos] = id;
	w->nprinted++;
	return true;
}

/*
 * Prints the audit rows not printed yet, from the floor up, and moves the
 * floor past the rows old enough that nothing can commit below them.
 */
static bool follow_audit(struct waiter *w, char **err)
{
	bool agents_reloaded = false, settled_prefix = true;
	long long cursor = w->floor, new_floor = w->floor;
	int n;

	do {
		char after[32], batch[16];
		snprintf(after, sizeof(after), "%lld", cursor);
		snprintf(batch, sizeof(batch), "%d", AUDIT_BATCH);
		const char *params[] = { w->id, after, batch };
		struct ry_res *r = ry_db_query(w->db, audit_sql, 3, params, err);
		if (!r)
			return false;
		ry_res_make_printable(r, false);
		n = ry_res_rows(r);
		for (int i = 0; i < n; i++) {
			long long id = strtoll(ry_res_get(r, i, AU_ID), NULL, 10);
			if (mark_printed(w, id))
				print_event(w, r, i, &agents_reloaded);
			settled_prefix = settled_prefix && strcmp(ry_res_get(r, i, AU_SETTLED), "t") == 0;
			if (settled_prefix)
				new_floor = id;
			cursor = id;
		}
		ry_res_free(r);
	} while (n == AUDIT_BATCH);
	fflush(stdout);

	/* Ids at or below the floor never come back: forget them. */
	size_t drop = printed_pos(w, new_floor + 1);
	memmove(w->printed, w->printed + drop, (w->nprinted - drop) * sizeof(*w->printed));
	w->nprinted -= drop;
	w->floor = new_floor;
	return true;
}

/* "pipeline 42 failed in 1m05s: 30 tasks, 28 succeeded, 1 failed, 1 skipped" */
static bool print_summary(struct waiter *w, const char *state, char **err)
{
	static const char *const counts[] = { "succeeded", "failed", "cached", "skipped",
		"cancelled", "unfinished" };
	const char *params[] = { w->id };
	struct ry_res *failed = NULL;
	/* Both reads first: a retry after a lost connection prints once. */
	struct ry_res *r = ry_db_query(w->db, summary_sql, 1, params, err);
	if (!r)
		return false;
	if (strcmp(state, "failed") == 0 &&
	    !(failed = ry_db_query(w->db, failed_tasks_sql, 1, params, err))) {
		ry_res_free(r);
		return false;
	}
	if (failed)
		ry_res_make_printable(failed, false);
	char elapsed[48];
	ry_format_duration(elapsed, sizeof(elapsed), ry_res_get_double(r, 0, 1));
	printf("pipeline %s %s in %s: %s tasks", w->id, state, elapsed, ry_res_get(r, 0, 2));
	for (size_t k = 0; k < RY_ARRAY_SIZE(counts); k++) {
		long v = ry_res_get_long(r, 0, 3 + (int)k);
		if (v > 0)
			printf(", %ld %s", v, counts[k]);
	}
	printf("\n");
	for (int i = 0; failed && i < ry_res_rows(failed); i++) {
		printf("  failed: %s", ry_res_get(failed, i, 0));
		if (*ry_res_get(failed, i, 1))
			printf(" (%s)", ry_res_get(failed, i, 1));
		else if (!ry_res_isnull(failed, i, 2))
			printf(" (exit %s)", ry_res_get(failed, i, 2));
		printf("\n");
	}
	/* What the failed tasks printed last; a failure to read it is said,
	 * and does not change the exit status. */
	if (failed && ry_res_rows(failed) > 0)
		(void)cmd_show_failed_logs(w->db, w->id);
	fflush(stdout);
	ry_res_free(failed);
	ry_res_free(r);
	return true;
}

static int exit_code_for(const char *state)
{
	if (strcmp(state, "succeeded") == 0)
		return RY_EXIT_OK;
	if (strcmp(state, "failed") == 0)
		return RY_EXIT_FAIL;
	return RY_EXIT_ERROR;	/* cancelled */
}

static bool is_final(const char *state)
{
	return strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
	       strcmp(state, "cancelled") == 0;
}

/*
 * One look: the pipeline's state into state (empty while it does not
 * exist), then, following, the new audit rows — read after the state, so
 * everything up to a final state is printed before the summary.
 */
static bool poll_once(struct waiter *w, char *state, size_t len, char **err)
{
	const char *params[] = { w->id };
	struct ry_res *r = ry_db_query(w->db, state_sql, 1, params, err);
	if (!r)
		return false;
	snprintf(state, len, "%s", ry_res_rows(r) ? ry_res_get(r, 0, 0) : "");
	ry_res_free(r);
	if (w->follow && *state) {
		if (w->tasks.n == 0 && !load_tasks(w, err))
			return false;
		if (!follow_audit(w, err))
			return false;
		if (!is_final(state) && !cmd_eta_follow(w->db, w->id, w->name_width, &w->eta, err))
			return false;
	}
	return true;
}

static int wait_loop(struct waiter *w, int64_t deadline)
{
	char state[32] = "";
	int64_t next_poll = 0;

	for (;;) {
		char *err = NULL;
		int64_t now = ry_now_ms();
		/* However busy the NOTIFY traffic, look at most every MIN_GAP ms. */
		sleep_ms(next_poll - now);
		next_poll = ry_now_ms() + (w->follow ? FOLLOW_MIN_GAP_MS : MIN_GAP_MS);
		bool ok = poll_once(w, state, sizeof(state), &err);
		if (ok && !*state) {
			cmd_error("pipeline %s does not exist", w->id);
			return RY_EXIT_ERROR;
		}
		if (ok && is_final(state)) {
			ok = print_summary(w, state, &err);
			if (ok)
				return exit_code_for(state);
		}
		now = ry_now_ms();
		if (ok && deadline >= 0 && now >= deadline) {
			cmd_error("timed out waiting for pipeline %s (still %s)",
				w->id, state);
			return RY_EXIT_ERROR;
		}
		if (ok) {
			int64_t wait = BACKSTOP_MS;
			if (deadline >= 0 && deadline - now < wait)
				wait = deadline - now;
			ok = ry_db_wait_notify(w->db, (int)wait, &err);
			if (ok)
				continue;
			/* A failed wait is a failed socket: always the connection. */
		} else if (!connection_broken(w->db)) {
			cmd_error("cannot follow pipeline %s: %s", w->id, err);
			free(err);
			return RY_EXIT_ERROR;
		}
		int64_t give_up = deadline >= 0 ? deadline : ry_now_ms() + RECONNECT_FOR_MS;
		bool back = reconnect(w, err, give_up);
		if (!back) {
			cmd_error("lost the database while waiting for pipeline %s: %s",
				w->id, err);
			free(err);
			return RY_EXIT_ERROR;
		}
		free(err);
	}
}

static void usage(FILE *out)
{
	fprintf(out, "usage: railyard wait ID [--follow] [--timeout SECONDS] [--junit FILE]\n"
		"  exit 0 succeeded, 1 failed, 2 cancelled or error (including timeout)\n"
		"  --follow    print progress from the audit log as it happens, with a live ETA\n"
		"  --timeout   give up after SECONDS (exit 2)\n"
		"  --junit     write a JUnit XML report of the tasks to FILE when done\n");
}

static bool parse_seconds(const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || *end || !(v >= 0) || v > 1e9)
		return false;
	*out = v;
	return true;
}

int cmd_wait(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "follow", no_argument, NULL, 'f' },
		{ "timeout", required_argument, NULL, 't' },
		{ "junit", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct waiter w = { .eta = CMD_ETA_INIT };
	const char *timeout_arg = NULL, *junit = NULL;
	double timeout_s = -1;
	long id;
	int c;

	while ((c = cmd_getopt(argc, argv, "fh", longopts)) != -1) {
		switch (c) {
		case 'f':
			w.follow = true;
			break;
		case 't':
			timeout_arg = optarg;
			break;
		case 'j':
			junit = optarg;
			break;
		case 'h':
			usage(stdout);
			return RY_EXIT_OK;
		default:
			usage(stderr);
			return RY_EXIT_ERROR;
		}
	}
	if (argc - optind != 1) {
		if (argc - optind > 1)
			cmd_error("wait takes one pipeline ID, got '%s' and '%s'", argv[optind],
				  argv[optind + 1]);
		usage(stderr);
		return RY_EXIT_ERROR;
	}
	if (!cmd_parse_id(argv[optind], &id))
		return RY_EXIT_ERROR;
	if (timeout_arg && !parse_seconds(timeout_arg, &timeout_s)) {
		cmd_error("invalid --timeout '%s': expected seconds", timeout_arg);
		return RY_EXIT_ERROR;
	}
	int64_t deadline = timeout_s >= 0 ? ry_now_ms() + (int64_t)(timeout_s * 1000) : -1;
	snprintf(w.id, sizeof(w.id), "%ld", id);

	char *err = NULL;
	w.conninfo = cmd_conninfo(ctx, &err);
	if (!w.conninfo) {
		cmd_error("%s", err);
		free(err);
		return RY_EXIT_ERROR;
	}
	int rc = RY_EXIT_ERROR;
	w.dbopt = ctx->dbopt;
	w.dbopt.actor = "cli:wait";
	w.dbopt.cancel_on_interrupt = true;
	w.db = ry_db_connect(w.conninfo, &w.dbopt, &err);
	if (!w.db || !listen_channels(&w, &err)) {
		cmd_error("cannot connect to the database: %s", err);
		free(err);
	} else {
		rc = wait_loop(&w, deadline);
		if (junit)
			rc = cmd_wait_junit(w.db, w.id, junit, rc);
	}
	ry_db_close(w.db);
	free(w.conninfo);
	free(w.printed);
	names_release(&w.tasks);
	names_release(&w.agents);
	return rc;
}
