/*
 * Database jobs: what the worker says to PostgreSQL, each a job on the
 * one asynchronous connection (pkg/db/adb), and what it does with the
 * replies.  ry_worker_pump() asks pump.c what the idle connection does next
 * and performs it; the claim transaction is claim.c's.
 *
 * Result rows are read by column name: each reply's columns are looked up
 * once into an enum of indexes, so a reordered SELECT cannot shift meanings.
 */
#include "worker/internal.h"
#include "worker/journal.h"
#include "worker/pump.h"

#include "db/adb.h"
#include "exec/exec.h"
#include "notify/notify.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define COMPLETE_BATCH_MAX 1000	/* results per completion job */
#define BACKOFF_MAX_MS 30000

/* ---- reading replies by column name ---------------------------------- */

bool ry_worker_columns(const struct ry_res *res, const char *const *cols, int n, int *idx,
		       const char *what)
{
	int have = ry_res_cols(res);
	for (int i = 0; i < n; i++) {
		idx[i] = -1;
		for (int c = 0; c < have; c++) {
			if (strcmp(ry_res_colname(res, c), cols[i]) == 0) {
				idx[i] = c;
				break;
			}
		}
		if (idx[i] < 0) {
			ry_error("cannot read the reply to %s: it has no column \"%s\"", what, cols[i]);
			return false;
		}
	}
	return true;
}

/* ---- small helpers ------------------------------------------------- */

static void format_ts(char *buf, size_t len, int64_t us)
{
	time_t s = (time_t)(us / 1000000);
	struct tm tm;
	char tmp[40];
	gmtime_r(&s, &tm);
	strftime(tmp, sizeof(tmp), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(buf, len, "%s.%06ld+00", tmp, (long)(us % 1000000));
}

/* A timestamptz element (NULL when unknown). */
static void add_ts(struct ry_pgarray *a, int64_t us)
{
	char buf[64];
	if (us <= 0) {
		ry_pgarray_add_null(a);
		return;
	}
	format_ts(buf, sizeof(buf), us);
	ry_pgarray_add_str(a, buf);
}

static bool job_failed(const struct ry_adb_reply *r, const char *what)
{
	if (r->ok)
		return false;
	if (r->conn_lost)
		ry_debug("cannot %s: %s", what, r->error);
	else
		ry_warn("cannot %s: %s", what, r->error);
	return true;
}

/* A pause before the next register/completion/hand-back: exponential,
 * equal jitter (half fixed, half random), reset by a success. */
static void back_off(struct ry_worker *w)
{
	if (w->backoff_ms < RY_WORKER_BACKOFF_MIN_MS)
		w->backoff_ms = RY_WORKER_BACKOFF_MIN_MS;
	int ms = w->backoff_ms / 2 + (int)(random() % (w->backoff_ms / 2 + 1));
	w->backoff_ms = w->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : w->backoff_ms * 2;
	w->retry_after_ms = ry_now_ms() + ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	evtimer_add(w->retry_ev, &tv);
}

static void backoff_reset(struct ry_worker *w)
{
	w->backoff_ms = RY_WORKER_BACKOFF_MIN_MS;
	w->retry_after_ms = 0;
}

void ry_worker_shutdown_now(struct ry_worker *w, int code)
{
	w->exit_code = code;
	event_base_loopbreak(w->base);
}

/* ---- register -------------------------------------------------------- */

static void registered(void *arg, const struct ry_adb_reply *r)
{
	struct ry_worker *w = arg;
	w->registering = false;
	if (!r->ok) {
		if (r->conn_lost)
			return;		/* again once reconnected */
		if (ry_pump_classify(r->sqlstate) == RY_ERR_TRANSIENT) {
			ry_warn("cannot register agent %s yet: %s", w->cfg.name, r->error);
			back_off(w);
			return;
		}
		ry_error("cannot register agent %s: %s", w->cfg.name, r->error);
		ry_worker_shutdown_now(w, 1);
		return;
	}
	w->agent_id = ry_res_get_long(r->results[0], 0, 0);
	ry_worker_lease_renewed(w, w->hb_sent_ms);
	backoff_reset(w);
	/* Replayed results left over are this agent's now; any other agent's
	 * were dropped before registering. */
	for (struct ry_task *t = ry_task_table_first(&w->tasks, RY_TASK_DONE); t; t = t->next)
		if (t->report_agent == w->agent_id)
			t->report_agent = 0;
	ry_info("agent %s registered (id %lld): %s, slots %d, labels %s", w->cfg.name,
		(long long)w->agent_id, w->host.hostname, w->cfg.slots, w->labels_pg);
	ry_notify_ready("registered");
	w->want_claim = true;
	ry_worker_pump(w);
}

static void send_register(struct ry_worker *w, bool takeover)
{
	char cores[16], mem[24], disk[24], slots[16], cpus[16], offered[24], pid[16], lease[16];
	snprintf(cores, sizeof(cores), "%d", w->host.cores);
	snprintf(mem, sizeof(mem), "%ld", w->host.mem_mb);
	snprintf(disk, sizeof(disk), "%ld", w->host.disk_mb);
	snprintf(slots, sizeof(slots), "%d", w->cfg.slots);
	snprintf(cpus, sizeof(cpus), "%d", w->cpu_cap);
	snprintf(offered, sizeof(offered), "%ld", w->mem_cap);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	snprintf(lease, sizeof(lease), "%d", w->cfg.lease_s);
	const char *p[] = { w->cfg.name, w->host.hostname, w->host.os, w->host.arch, cores, mem,
			    w->host.disk_mb >= 0 ? disk : NULL, w->labels_pg, slots, cpus, offered,
			    pid, RY_VERSION, lease, takeover ? "true" : "false",
			    ry_cgroup_mode_name(ry_cgroup_root_mode(w->cgroot)),
			    ry_worker_identity(w) };
	struct ry_adb_job *job = ry_adb_job_new(registered, w);
	ry_adb_job_add(job, "SELECT railyard.register_agent($1, $2, $3, $4, $5, $6, $7, $8, "
			    "$9, $10, $11, $12, $13, $14, $15, $16, $17)", 17, p);
	ry_adb_submit(w->db, job, RY_ADB_NEXT);
	w->hb_sent_ms = ry_now_ms();
}

static void send_completions(struct ry_worker *w, int64_t agent);

/* The journal's results of a previous run go first, as the agent they
 * were reported as: registering requeues whatever that agent still holds,
 * which would make them arrive too late.  Results of another agent id (the
 * row was replaced) can never be accepted: dropped. */
static bool replay_first(struct ry_worker *w, int64_t agent)
{
	size_t n = 0, dropped = 0;
	struct ry_task *t = ry_task_table_first(&w->tasks, RY_TASK_DONE);
	while (t) {
		struct ry_task *next = t->next;
		if (t->replayed && t->report_agent != agent) {
			int64_t id = t->id;
			int att = t->attempt;
			if (w->journal)
				ry_journal_ack(w->journal, &id, &att, 1);
			ry_worker_task_forget(w, t);
			dropped++;
		} else if (t->replayed) {
			n++;
		}
		t = next;
	}
	if (dropped)
		ry_warn("%zu results of a previous run were for another agent row and cannot be "
			"reported: dropped", dropped);
	if (!n)
		return false;
	ry_info("reporting %zu results of a previous run before registering", n);
	w->replaying = true;
	w->replay_agent = agent;
	send_completions(w, agent);
	return true;
}

/* A previous holder of our name on this host whose process is gone is a
 * crashed incarnation of us: take the name over instead of waiting. */
static void holder_checked(void *arg, const struct ry_adb_reply *r)
{
	enum { C_ID, C_HOST, C_PID, C_N };
	static const char *const cols[C_N] = { "id", "hostname", "pid" };
	struct ry_worker *w = arg;
	int c[C_N];
	if (job_failed(r, "look up the agent")) {
		w->registering = false;
		if (!r->conn_lost)
			back_off(w);
		return;
	}
	const struct ry_res *res = r->results[0];
	w->takeover = false;
	if (ry_res_rows(res) == 1 && ry_worker_columns(res, cols, C_N, c, "the agent lookup")) {
		if (strcmp(ry_res_get(res, 0, c[C_HOST]), w->host.hostname) == 0) {
			pid_t old = (pid_t)ry_res_get_long(res, 0, c[C_PID]);
			w->takeover = old != getpid() && kill(old, 0) < 0 && errno == ESRCH;
		}
		if (replay_first(w, ry_res_get_long(res, 0, c[C_ID])))
			return;
	} else {
		(void)replay_first(w, 0);
	}
	send_register(w, w->takeover);
}

static void start_register(struct ry_worker *w)
{
	const char *p[] = { w->cfg.name };
	struct ry_adb_job *job = ry_adb_job_new(holder_checked, w);
	w->registering = true;
	ry_adb_job_add(job, "SELECT id, hostname, pid FROM railyard.agents WHERE name = $1", 1, p);
	ry_adb_submit(w->db, job, RY_ADB_LAST);
}

/* ---- heartbeat ------------------------------------------------------- */

/* Heartbeat reply: renewed; tasks listed back are no longer ours. */
static void heartbeat_done(void *arg, const struct ry_adb_reply *r)
{
	enum { C_TASK, C_ATTEMPT, C_N };
	static const char *const cols[C_N] = { "task_id", "attempt" };
	struct ry_worker *w = arg;
	int c[C_N];
	if (job_failed(r, "send heartbeat"))
		return;
	ry_worker_lease_renewed(w, w->hb_sent_ms);
	const struct ry_res *lost = r->results[0];
	if (!ry_worker_columns(lost, cols, C_N, c, "the heartbeat"))
		return;
	for (int i = 0; i < ry_res_rows(lost); i++) {
		struct ry_task *t = ry_task_table_find(&w->tasks, ry_res_get_long(lost, i, c[C_TASK]),
						       (int)ry_res_get_long(lost, i, c[C_ATTEMPT]));
		if (!t)
			continue;
		ry_warn("task %s (id %lld attempt %d) is no longer ours (cancelled or re-leased): "
			"stopping it", t->name, (long long)t->id, t->attempt);
		if (t->phase == RY_TASK_RUNNING)
			ry_worker_task_kill(t, RY_KILL_LOST);
		else if (t->phase == RY_TASK_QUEUED || t->phase == RY_TASK_RELEASE)
			ry_worker_task_forget(w, t);
	}
	ry_worker_pump(w);
}

static void send_heartbeat(struct ry_worker *w)
{
	struct ry_pgarray ids = { RY_BUF_INIT, 0 }, atts = { RY_BUF_INIT, 0 };
	struct ry_pgarray sids = { RY_BUF_INIT, 0 }, satts = { RY_BUF_INIT, 0 };
	struct ry_pgarray sts = { RY_BUF_INIT, 0 };
	char agent[24], running[16];

	for (int p = 0; p < RY_TASK_NPHASES; p++) {
		for (struct ry_task *t = ry_task_table_first(&w->tasks, p); t; t = t->next) {
			ry_pgarray_add_int(&ids, t->id);
			ry_pgarray_add_int(&atts, t->attempt);
			if (p == RY_TASK_RUNNING && !t->start_reported) {
				/* Sent once; a lost notice is made good by the
				 * completion, which carries the start time too. */
				ry_pgarray_add_int(&sids, t->id);
				ry_pgarray_add_int(&satts, t->attempt);
				add_ts(&sts, t->started_us);
				t->start_reported = true;
			}
		}
	}
	char disk[24];
	snprintf(agent, sizeof(agent), "%lld", (long long)w->agent_id);
	snprintf(running, sizeof(running), "%zu", ry_task_table_count(&w->tasks, RY_TASK_RUNNING));
	snprintf(disk, sizeof(disk), "%ld", w->free_mb);
	bool starts = sids.n > 0;
	char *a_ids = ry_pgarray_finish(&ids), *a_atts = ry_pgarray_finish(&atts);
	char *s_ids = ry_pgarray_finish(&sids), *s_atts = ry_pgarray_finish(&satts);
	char *s_ts = ry_pgarray_finish(&sts);

	struct ry_adb_job *job = ry_adb_job_new(heartbeat_done, w);
	const char *hp[] = { agent, a_ids, a_atts, running, w->degraded,
			     w->free_mb >= 0 ? disk : NULL };
	ry_adb_job_add(job, "SELECT task_id, attempt FROM railyard.heartbeat($1, $2, $3, $4, $5, $6)",
		       6, hp);
	if (starts) {
		const char *sp[] = { agent, s_ids, s_atts, s_ts };
		ry_adb_job_add(job, "SELECT railyard.start_tasks($1, $2, $3, $4)", 4, sp);
	}
	/* Reap only after a full lease connected, so agents cut off with us
	 * during an outage have had their chance to renew first. */
	if (ry_adb_connected_for_ms(w->db) >= (int64_t)w->cfg.lease_s * 1000)
		ry_adb_job_add(job, "SELECT railyard.reap()", 0, NULL);
	ry_adb_submit(w->db, job, RY_ADB_LAST);
	w->hb_due = false;
	w->hb_sent_ms = ry_now_ms();
	free(a_ids);
	free(a_atts);
	free(s_ids);
	free(s_atts);
	free(s_ts);
}

/* ---- completions ----------------------------------------------------- */

void ry_worker_journal_open(struct ry_worker *w)
{
	struct ry_journal_result *p = NULL;
	size_t n = 0;
	char *err = NULL;
	char *path = ry_asprintf("%s/%s.journal", w->state_dir, w->cfg.name);
	w->journal = ry_journal_open(path, &p, &n, &err);
	free(path);
	if (!w->journal) {
		ry_warn("%s: results are kept in memory only", err);
		free(err);
		return;
	}
	static const char *const outcomes[] = { "succeeded", "failed", "skipped", "cached" };
	for (size_t i = 0; i < n; i++) {
		struct ry_journal_result *r = &p[i];
		const char *outcome = NULL;
		for (size_t k = 0; k < RY_ARRAY_SIZE(outcomes); k++)
			if (r->outcome && strcmp(r->outcome, outcomes[k]) == 0)
				outcome = outcomes[k];
		if (outcome && !ry_task_table_find(&w->tasks, r->task_id, r->attempt)) {
			struct ry_task *t = ry_worker_task_new(w);
			t->id = r->task_id;
			t->attempt = r->attempt;
			t->pipeline_id = r->pipeline_id;
			t->name = ry_strdup(r->name ? r->name : "?");
			t->command = ry_strdup("");
			t->outcome = outcome;
			t->exit_code = r->exit_code;
			t->reason = r->reason;
			r->reason = NULL;
			t->started_us = r->started_us;
			t->finished_us = r->finished_us;
			t->has_duration = r->duration_s >= 0;
			t->duration_s = r->duration_s;
			t->log_path = r->log_path;
			r->log_path = NULL;
			t->log_tail = r->log_tail;
			r->log_tail = NULL;
			t->usage.has_cpu = r->cpu_s >= 0;
			t->usage.cpu_s = r->cpu_s;
			t->usage.has_mem = r->mem_peak_bytes >= 0;
			t->usage.mem_peak_bytes = (uint64_t)r->mem_peak_bytes;
			t->usage.has_io = r->io_read_bytes >= 0;
			t->usage.io_read_bytes = (uint64_t)r->io_read_bytes;
			t->usage.io_write_bytes = (uint64_t)r->io_write_bytes;
			t->report_agent = r->agent_id;
			t->cache_record = r->cache;
			r->cache = NULL;
			t->replayed = true;
			ry_task_table_add(&w->tasks, t, RY_TASK_DONE);
		}
		ry_journal_result_release(r);
	}
	free(p);
	if (n)
		ry_info("%zu results of a previous run are waiting to be reported", n);
}

void ry_worker_journal_add(struct ry_worker *w, struct ry_task *t)
{
	if (!w->journal)
		return;
	struct ry_journal_result r = {
		.agent_id = t->report_agent ? t->report_agent : w->agent_id,
		.task_id = t->id,
		.attempt = t->attempt,
		.pipeline_id = t->pipeline_id,
		.name = t->name,
		.outcome = (char *)t->outcome,
		.exit_code = t->exit_code,
		.reason = t->reason,
		.started_us = t->started_us,
		.finished_us = t->finished_us,
		.duration_s = t->has_duration ? t->duration_s : -1,
		.log_path = t->log_path,
		.log_tail = t->log_tail,
		.cpu_s = t->usage.has_cpu ? t->usage.cpu_s : -1,
		.mem_peak_bytes = t->usage.has_mem ? (int64_t)t->usage.mem_peak_bytes : -1,
		.io_read_bytes = t->usage.has_io ? (int64_t)t->usage.io_read_bytes : -1,
		.io_write_bytes = t->usage.has_io ? (int64_t)t->usage.io_write_bytes : -1,
		.cache = ry_worker_prep_record_json(t),
	};
	bool added = ry_journal_add(w->journal, &r);
	free(r.cache);
	if (!added) {
		if (!w->journal_warned)
			ry_warn("cannot write the result journal: %s; results are kept in memory "
				"until the database has them", strerror(ry_journal_error(w->journal)));
		w->journal_warned = true;
		ry_worker_space_failed(w, ry_journal_error(w->journal), "cannot write the result journal");
	}
}

/* The database refused a single result's data three ways over: store it as
 * a failure that says why, without the output that is likely the cause. */
static void poison(struct ry_worker *w, struct ry_task *t, const char *error)
{
	ry_error("cannot store the result of task %s (id %lld attempt %d): %s; recording it as "
		 "failed", t->name, (long long)t->id, t->attempt, error);
	t->outcome = "failed";
	free(t->reason);
	t->reason = ry_asprintf("result could not be stored: %.200s", error);
	ry_exec_sanitize_utf8(t->reason);
	free(t->log_tail);
	t->log_tail = NULL;
	t->poisoned = true;
	ry_worker_journal_add(w, t);
}

static void completed(void *arg, const struct ry_adb_reply *r)
{
	enum { C_TASK, C_ATTEMPT, C_ACCEPTED, C_N };
	static const char *const cols[C_N] = { "task_id", "attempt", "accepted" };
	struct ry_worker *w = arg;
	int c[C_N];
	size_t batch = ry_task_table_count(&w->tasks, RY_TASK_SENDING);

	ry_worker_claim_unblocked(w);
	/* Whatever was in flight waits again, in its order, ahead of newer. */
	struct ry_task *t;
	while ((t = w->tasks.lists[RY_TASK_SENDING].tail))
		ry_task_table_move(&w->tasks, t, RY_TASK_DONE, true);

	/* complete_tasks is the job's last statement (cache_record may precede it). */
	if (!r->ok || !ry_worker_columns(r->results[r->nresults - 1], cols, C_N, c, "complete_tasks")) {
		/* Kept, whatever the error: a result is stored or kept. */
		enum ry_job_error kind = r->ok ? RY_ERR_OTHER : ry_pump_classify(r->sqlstate);
		if (r->conn_lost) {
			ry_debug("cannot report task results: %s", r->error);
		} else if (kind == RY_ERR_RESULT) {
			struct ry_task *first = ry_task_table_first(&w->tasks, RY_TASK_DONE);
			if (batch > 1) {
				/* One of them: halve until it stands alone. */
				ry_warn("the database refused a batch of %zu results (%s): finding "
					"the one at fault", batch, r->error);
				w->suspects = batch;
				w->complete_limit = (batch + 1) / 2;
			} else if (first && !first->poisoned) {
				poison(w, first, r->error);
				w->suspects = 1;
				w->complete_limit = 1;
			} else {
				ry_warn("cannot report task results: %s", r->error);
				back_off(w);
			}
		} else {
			ry_warn("cannot report %zu task results, keeping them: %s", batch,
				r->error ? r->error : "bad reply");
			back_off(w);
		}
		if (w->replaying) {
			w->replaying = false;
			w->registering = false;
		}
		return;
	}
	const struct ry_res *res = r->results[r->nresults - 1];
	if (r->nresults > 1)
		ry_worker_prep_recorded(w, r->results[0]);
	w->stats.completion_jobs++;
	backoff_reset(w);
	w->suspects = w->suspects > batch ? w->suspects - batch : 0;
	w->complete_limit = w->suspects ? w->suspects : COMPLETE_BATCH_MAX;
	int nrows = ry_res_rows(res);
	int64_t *ids = ry_calloc((size_t)nrows + 1, sizeof(*ids));
	int *atts = ry_calloc((size_t)nrows + 1, sizeof(*atts));
	size_t nacked = 0;
	for (int i = 0; i < nrows; i++) {
		int64_t id = ry_res_get_long(res, i, c[C_TASK]);
		int att = (int)ry_res_get_long(res, i, c[C_ATTEMPT]);
		t = ry_task_table_find(&w->tasks, id, att);
		if (!t || t->phase != RY_TASK_DONE)
			continue;
		w->stats.tasks_reported++;
		ry_metrics_completion(&w->metrics, t->outcome,
				      strcmp(ry_res_get(res, i, c[C_ACCEPTED]), "t") == 0);
		if (strcmp(ry_res_get(res, i, c[C_ACCEPTED]), "t") != 0 && ++w->stats.refused)
			ry_warn("result of task %s (id %lld attempt %d) refused: its lease was "
				"taken over", t->name, (long long)t->id, t->attempt);
		ids[nacked] = id;
		atts[nacked++] = att;
		ry_worker_task_forget(w, t);
	}
	/* Stored or refused, the database has answered for them. */
	if (w->journal)
		ry_journal_ack(w->journal, ids, atts, nacked);
	free(ids);
	free(atts);
	if (w->replaying) {
		bool more = false;
		for (t = ry_task_table_first(&w->tasks, RY_TASK_DONE); t && !more; t = t->next)
			more = t->replayed;
		if (more) {
			send_completions(w, w->replay_agent);
			return;
		}
		w->replaying = false;
		send_register(w, w->takeover);
		return;
	}
	ry_worker_pump(w);
}

/* Up to complete_limit results of one reporting agent, oldest first. */
static void send_completions(struct ry_worker *w, int64_t agent)
{
	struct ry_pgarray ids = { RY_BUF_INIT, 0 }, atts = { RY_BUF_INIT, 0 };
	struct ry_pgarray outs = { RY_BUF_INIT, 0 }, codes = { RY_BUF_INIT, 0 };
	struct ry_pgarray reasons = { RY_BUF_INIT, 0 }, starts = { RY_BUF_INIT, 0 };
	struct ry_pgarray ends = { RY_BUF_INIT, 0 }, paths = { RY_BUF_INIT, 0 };
	struct ry_pgarray tails = { RY_BUF_INIT, 0 }, durs = { RY_BUF_INIT, 0 };
	struct ry_pgarray cpus = { RY_BUF_INIT, 0 }, mems = { RY_BUF_INIT, 0 };
	struct ry_pgarray ios_r = { RY_BUF_INIT, 0 }, ios_w = { RY_BUF_INIT, 0 };
	char agent_s[24];
	size_t max = w->complete_limit ? w->complete_limit : COMPLETE_BATCH_MAX;
	struct ry_task *t = ry_task_table_first(&w->tasks, RY_TASK_DONE);

	/* Durable before it leaves: a crash after this still reports it. */
	if (w->journal && !ry_journal_sync(w->journal) && !w->journal_warned) {
		ry_warn("cannot sync the result journal: %s", strerror(ry_journal_error(w->journal)));
		w->journal_warned = true;
	}
	while (ids.n < max && t) {
		struct ry_task *next = t->next;
		int64_t as = t->report_agent ? t->report_agent : w->agent_id;
		if (as != agent) {
			t = next;
			continue;
		}
		ry_pgarray_add_int(&ids, t->id);
		ry_pgarray_add_int(&atts, t->attempt);
		ry_pgarray_add_str(&outs, t->outcome);
		if (t->exit_code >= 0)
			ry_pgarray_add_int(&codes, t->exit_code);
		else
			ry_pgarray_add_null(&codes);
		ry_pgarray_add_str(&reasons, t->reason);
		add_ts(&starts, t->started_us);
		add_ts(&ends, t->finished_us);
		ry_pgarray_add_str(&paths, t->log_path);
		ry_pgarray_add_str(&tails, t->log_tail);
		if (t->has_duration)
			ry_pgarray_add_double(&durs, t->duration_s);
		else
			ry_pgarray_add_null(&durs);
		if (t->usage.has_cpu)
			ry_pgarray_add_double(&cpus, t->usage.cpu_s);
		else
			ry_pgarray_add_null(&cpus);
		if (t->usage.has_mem)
			ry_pgarray_add_int(&mems, (int64_t)t->usage.mem_peak_bytes);
		else
			ry_pgarray_add_null(&mems);
		if (t->usage.has_io) {
			ry_pgarray_add_int(&ios_r, (int64_t)t->usage.io_read_bytes);
			ry_pgarray_add_int(&ios_w, (int64_t)t->usage.io_write_bytes);
		} else {
			ry_pgarray_add_null(&ios_r);
			ry_pgarray_add_null(&ios_w);
		}
		ry_task_table_move(&w->tasks, t, RY_TASK_SENDING, false);
		t = next;
	}
	if (!ids.n) {
		/* Only results of another agent row wait: they can never be
		 * accepted (fencing is by agent), so they are given up. */
		while ((t = ry_task_table_first(&w->tasks, RY_TASK_DONE))) {
			int64_t id = t->id;
			int att = t->attempt;
			ry_warn("result of task %s (id %lld) was for agent id %lld, not %lld: dropped",
				t->name, (long long)id, (long long)t->report_agent, (long long)agent);
			if (w->journal)
				ry_journal_ack(w->journal, &id, &att, 1);
			ry_worker_task_forget(w, t);
		}
		return;		/* nothing was added: no buffer to free */
	}
	snprintf(agent_s, sizeof(agent_s), "%lld", (long long)agent);
	char *v[] = { agent_s, ry_pgarray_finish(&ids), ry_pgarray_finish(&atts),
		      ry_pgarray_finish(&outs), ry_pgarray_finish(&codes),
		      ry_pgarray_finish(&reasons), ry_pgarray_finish(&starts),
		      ry_pgarray_finish(&ends), ry_pgarray_finish(&paths), ry_pgarray_finish(&tails),
		      ry_pgarray_finish(&durs), ry_pgarray_finish(&cpus), ry_pgarray_finish(&mems),
		      ry_pgarray_finish(&ios_r), ry_pgarray_finish(&ios_w) };
	struct ry_adb_job *job = ry_adb_job_new(completed, w);
	/* Outputs and cache records first: the same transaction. */
	(void)ry_worker_prep_record(w, job, agent_s);
	ry_adb_job_add(job, "SELECT task_id, attempt, accepted FROM railyard.complete_tasks("
			    "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
		       15, (const char *const *)v);
	ry_adb_submit(w->db, job, w->replaying ? RY_ADB_NEXT : RY_ADB_LAST);
	for (size_t i = 1; i < RY_ARRAY_SIZE(v); i++)
		free(v[i]);
}

/* ---- hand-backs -------------------------------------------------------- */

static void released(void *arg, const struct ry_adb_reply *r)
{
	struct ry_worker *w = arg;
	struct ry_task *t;
	if (job_failed(r, "hand tasks back")) {
		/* Kept, and tried again after a pause (or the reconnect). */
		while ((t = w->tasks.lists[RY_TASK_RELEASING].tail))
			ry_task_table_move(&w->tasks, t, RY_TASK_RELEASE, true);
		if (!r->conn_lost)
			back_off(w);
		return;
	}
	backoff_reset(w);
	while ((t = ry_task_table_first(&w->tasks, RY_TASK_RELEASING)))
		ry_worker_task_forget(w, t);
	ry_worker_pump(w);
}

/* Tasks that will not report a result: unstarted ones get their attempt
 * back, the ones we stopped ourselves (lost lease) count as lost. */
static void send_release(struct ry_worker *w)
{
	enum { N = RY_HANDBACK_AHEAD_STALE + 1 };
	struct ry_pgarray ids[N], atts[N];
	static const char *const why[N] = {
		[RY_HANDBACK_LOST] = "stopped by its agent: lease expired while cut off from the database",
		[RY_HANDBACK_UNSTARTED] = "claim handed back unstarted by its agent",
		[RY_HANDBACK_AHEAD_MISS] = "cache miss on an agent with no free slot (its cache "
					   "lookahead): handed back unstarted",
		[RY_HANDBACK_AHEAD_STALE] = "claimed ahead (claim_ahead) and no slot freed within "
					    "claim_ahead_hold_ms: handed back unstarted",
	};
	char agent[24];
	struct ry_task *t;
	for (int k = 0; k < N; k++)
		ids[k] = atts[k] = (struct ry_pgarray){ RY_BUF_INIT, 0 };
	while ((t = ry_task_table_first(&w->tasks, RY_TASK_RELEASE))) {
		ry_pgarray_add_int(&ids[t->handback], t->id);
		ry_pgarray_add_int(&atts[t->handback], t->attempt);
		ry_task_table_move(&w->tasks, t, RY_TASK_RELEASING, false);
	}
	snprintf(agent, sizeof(agent), "%lld", (long long)w->agent_id);
	struct ry_adb_job *job = ry_adb_job_new(released, w);
	for (int k = 0; k < N; k++) {
		bool any = ids[k].n > 0;
		char *a = ry_pgarray_finish(&ids[k]), *b = ry_pgarray_finish(&atts[k]);
		if (any) {
			const char *p[] = { agent, a, b, why[k],
					    k == RY_HANDBACK_LOST ? "false" : "true" };
			ry_adb_job_add(job, "SELECT task_id FROM railyard.release_tasks($1, $2, $3, "
					    "$4, $5)", 5, p);
		}
		free(a);
		free(b);
	}
	ry_adb_submit(w->db, job, RY_ADB_LAST);
}

bool ry_worker_job_failed(const struct ry_adb_reply *r, const char *what)
{
	return job_failed(r, what);
}

/* ---- retention --------------------------------------------------------- */

static void retention_answered(void *arg, const struct ry_adb_reply *r)
{
	enum { C_ID, C_KNOWN, C_AGO, C_N };
	static const char *const cols[C_N] = { "pipeline_id", "known", "finished_s_ago" };
	struct ry_worker *w = arg;
	int c[C_N];
	bool ok = !job_failed(r, "ask which pipelines finished") &&
		  ry_worker_columns(r->results[0], cols, C_N, c, "pipelines_finished");
	for (int i = 0; ok && i < ry_res_rows(r->results[0]); i++) {
		const struct ry_res *res = r->results[0];
		ry_worker_retention_known(w, ry_res_get_long(res, i, c[C_ID]),
					  strcmp(ry_res_get(res, i, c[C_KNOWN]), "t") == 0,
					  ry_res_isnull(res, i, c[C_AGO]) ? -1.0
								: ry_res_get_double(res, i, c[C_AGO]));
	}
	ry_worker_retention_answered(w, ok);
	ry_worker_pump(w);
}

static void send_retention(struct ry_worker *w)
{
	char *ids = ry_worker_retention_ids(w);
	const char *p[] = { ids };
	struct ry_adb_job *job = ry_adb_job_new(retention_answered, w);
	ry_adb_job_add(job, "SELECT pipeline_id, known, finished_s_ago "
			    "FROM railyard.pipelines_finished($1)", 1, p);
	ry_adb_submit(w->db, job, RY_ADB_LAST);
	free(ids);
}

/* ---- idle check, offline, agent updates ------------------------------ */

/*
 * Submission forecasts (sql/51_forecast.sql) are made after COMMIT, by
 * whichever idle worker gets there first (SKIP LOCKED), a few at a time
 * and within a time budget so claims and results never wait long.  The
 * same job first applies the runs the completions queued for the
 * statistics (sql/50_forecast.sql, observe_pending: one worker at a time,
 * the others skip), so that the forecasts see them.  The job is a slice
 * of about 20 + 20 ms (observe_pending sizes its batches to the budget),
 * and it yields to claims and completions (ry_pump_background_wait_ms)
 * until the statistics' queue grows long: a result that comes in
 * meanwhile waits for one slice at most.
 */
#define FORECASTS_PER_JOB 10
#define FORECAST_BUDGET_MS "20"
#define OBSERVATIONS_PER_JOB 2000
#define OBSERVE_BUDGET_MS "20"

static void forecasts_made(void *arg, const struct ry_adb_reply *r)
{
	struct ry_worker *w = arg;
	w->forecasts_due = false;
	if (!job_failed(r, "update statistics and make submission forecasts")) {
		w->stats_backlog = ry_res_get_long(r->results[2], 0, 0);
		if (ry_res_get_long(r->results[0], 0, 0) > 0 ||
		    ry_res_get_long(r->results[1], 0, 0) >= FORECASTS_PER_JOB)
			w->forecasts_due = true;	/* more may be waiting */
	}
	ry_worker_pump(w);
}

static void send_forecasts(struct ry_worker *w)
{
	char limit[16], olimit[16];
	snprintf(limit, sizeof(limit), "%d", FORECASTS_PER_JOB);
	snprintf(olimit, sizeof(olimit), "%d", OBSERVATIONS_PER_JOB);
	const char *op[] = { olimit, OBSERVE_BUDGET_MS };
	const char *p[] = { limit, FORECAST_BUDGET_MS };
	struct ry_adb_job *job = ry_adb_job_new(forecasts_made, w);
	ry_adb_job_add(job, "SELECT railyard.observe_pending($1, $2, false)", 2, op);
	ry_adb_job_add(job, "SELECT railyard.record_pending_forecasts($1, $2)", 2, p);
	/* The queue's length from its ids (two probes of its key): deleted
	 * from the front, gaps only where an insert rolled back. */
	ry_adb_job_add(job, "SELECT coalesce(max(id) - min(id) + 1, 0) "
			    "FROM railyard.observation_pending", 0, NULL);
	ry_adb_submit(w->db, job, RY_ADB_LAST);
	w->forecasts_due = false;
	w->background_ms = ry_now_ms();
}

static void idle_checked(void *arg, const struct ry_adb_reply *r)
{
	struct ry_worker *w = arg;
	if (job_failed(r, "check for remaining work"))
		return;
	if (strcmp(ry_res_get(r->results[0], 0, 0), "f") == 0 && w->tasks.n == 0) {
		ry_info("no work left that this agent could run: exiting");
		w->draining = true;
	}
	ry_worker_pump(w);
}

static void send_idle_check(struct ry_worker *w)
{
	char cpu[16], mem[24];
	snprintf(cpu, sizeof(cpu), "%d", w->cpu_cap);
	snprintf(mem, sizeof(mem), "%ld", w->mem_cap);
	const char *p[] = { w->labels_pg, w->host.os, w->host.arch, cpu, mem };
	struct ry_adb_job *job = ry_adb_job_new(idle_checked, w);
	ry_adb_job_add(job, "SELECT railyard.work_remains($1, $2, $3, $4, $5)", 5, p);
	ry_adb_submit(w->db, job, RY_ADB_LAST);
	w->idle_check_due = false;
}

static void went_offline(void *arg, const struct ry_adb_reply *r)
{
	struct ry_worker *w = arg;
	job_failed(r, "mark the agent offline");
	ry_info("agent %s offline", w->cfg.name);
	ry_worker_shutdown_now(w, w->exit_code);
}

static void send_offline(struct ry_worker *w)
{
	char agent[24];
	snprintf(agent, sizeof(agent), "%lld", (long long)w->agent_id);
	const char *p[] = { agent };
	struct ry_adb_job *job = ry_adb_job_new(went_offline, w);
	ry_adb_job_add(job, "SELECT railyard.agent_offline($1)", 1, p);
	ry_adb_submit(w->db, job, RY_ADB_LAST);
	w->offline_sent = true;
}

static void agent_updated(void *arg, const struct ry_adb_reply *r)
{
	(void)arg;
	job_failed(r, "update the agent after reload");
}

void ry_worker_update_agent(struct ry_worker *w)
{
	if (!w->agent_id || !ry_adb_connected(w->db))
		return;
	char agent[24], slots[16], cpus[16], offered[24], lease[16];
	snprintf(agent, sizeof(agent), "%lld", (long long)w->agent_id);
	snprintf(slots, sizeof(slots), "%d", w->cfg.slots);
	snprintf(cpus, sizeof(cpus), "%d", w->cpu_cap);
	snprintf(offered, sizeof(offered), "%ld", w->mem_cap);
	snprintf(lease, sizeof(lease), "%d", w->cfg.lease_s);
	const char *p[] = { agent, w->labels_pg, slots, cpus, offered, lease };
	struct ry_adb_job *job = ry_adb_job_new(agent_updated, w);
	ry_adb_job_add(job, "SELECT railyard.update_agent($1, $2, $3, $4, $5, $6)", 6, p);
	ry_adb_submit(w->db, job, RY_ADB_LAST);
}

/* ---- the pump -------------------------------------------------------- */

int ry_worker_slot_limit(const struct ry_worker *w)
{
	return w->slot_limit > 0 && w->slot_limit < w->cfg.slots ? w->slot_limit : w->cfg.slots;
}

struct ry_sched_capacity ry_worker_capacity_free(const struct ry_worker *w)
{
	struct ry_sched_capacity c = { ry_worker_slot_limit(w) - w->tasks.held_slots,
				       w->cpu_cap - w->tasks.held_cpu,
				       w->mem_cap - w->tasks.held_mem_mb };
	return c;
}

void ry_worker_pump(struct ry_worker *w)
{
	int64_t background_wait = ry_pump_background_wait_ms(ry_now_ms(), w->hot_ms,
							     w->background_ms, w->stats_backlog);
	struct ry_pump_state s = {
		.idle = ry_adb_idle(w->db),
		.registered = w->agent_id != 0,
		.registering = w->registering,
		.heartbeat_due = w->hb_due,
		.results = ry_task_table_count(&w->tasks, RY_TASK_DONE),
		.backoff = ry_now_ms() < w->retry_after_ms,
		.releases = ry_task_table_count(&w->tasks, RY_TASK_RELEASE),
		.draining = w->draining,
		.tasks = w->tasks.n,
		.offline_sent = w->offline_sent,
		.want_claim = w->want_claim,
		.claim_backoff = ry_now_ms() < w->claim_after_ms,
		/* Past our lease by our own clock, or a sick host: no claims. */
		.degraded = (w->lease_until_ms && ry_now_ms() >= w->lease_until_ms) || w->degraded,
		.free = ry_worker_capacity_claimable(w),
		.queue_room = ry_worker_queue_room(w),
		.exit_when_idle = w->cfg.exit_when_idle,
		.idle_check_due = w->idle_check_due,
		.retention_due = w->retention.phase == RY_RET_ASK,
		.forecasts_due = w->forecasts_due,
		.background_ok = background_wait == 0,
		.limit_due = w->limit_dirty,
	};
	enum ry_pump_action act = ry_pump_decide(&s);
	if (act == RY_PUMP_COMPLETE || act == RY_PUMP_CLAIM)
		w->hot_ms = ry_now_ms();
	if (act == RY_PUMP_NONE && s.idle && w->forecasts_due && background_wait > 0 &&
	    !evtimer_pending(w->background_timer, NULL)) {
		struct timeval tv = { (time_t)(background_wait / 1000),
				      (suseconds_t)(background_wait % 1000) * 1000 };
		evtimer_add(w->background_timer, &tv);
	}
	switch (act) {
	case RY_PUMP_NONE:
		break;
	case RY_PUMP_REGISTER:
		start_register(w);
		break;
	case RY_PUMP_HEARTBEAT:
		send_heartbeat(w);
		break;
	case RY_PUMP_COMPLETE:
		send_completions(w, w->agent_id);
		if (ry_pump_claim_follows(&s, ry_task_table_count(&w->tasks, RY_TASK_DONE)))
			ry_worker_send_claim(w, &s.free, true);
		break;
	case RY_PUMP_OFFLINE:
		send_offline(w);
		break;
	case RY_PUMP_CLAIM:
		ry_worker_send_claim(w, &s.free, false);
		break;
	case RY_PUMP_IDLE_CHECK:
		send_idle_check(w);
		break;
	case RY_PUMP_RELEASE:
		send_release(w);
		break;
	case RY_PUMP_RETENTION:
		send_retention(w);
		break;
	case RY_PUMP_FORECASTS:
		send_forecasts(w);
		break;
	case RY_PUMP_LIMIT:
		ry_worker_send_limit(w);
		break;
	}
}
