/*
 * The worker's event loop.
 *
 * Everything happens in callbacks of one libevent loop:
 *   - the database connection (adb) runs one job at a time; pump() decides
 *     what to send next whenever it is idle, in this order: register,
 *     heartbeat, completions, claim, idle check.  Completions pile up while
 *     another job is in flight and leave together: batching for free.
 *   - SIGCHLD reaps task processes; per-task timers enforce timeouts; the
 *     heartbeat timer renews the lease, reports starts, runs the reaper,
 *     samples memory and backs up NOTIFY with a poll.
 *   - claimed tasks are started a few per loop turn (spawn_ev) so a large
 *     claim never stalls heartbeats.
 */
#include "worker/worker.h"

#include "agent/hostinfo.h"
#include "db/adb.h"
#include "exec/exec.h"
#include "match/match.h"
#include "notify/notify.h"
#include "sched/sched.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CLAIM_BATCH_MAX 128	/* candidates locked per claim */
#define COMPLETE_BATCH_MAX 1000	/* results per completion job */
#define SPAWN_PER_TURN 16	/* processes started per loop turn */
#define LOG_TAIL_BYTES 4096
#define TERM_GRACE_S 2		/* SIGTERM → SIGKILL on timeout */
#define RETRY_MS 500		/* after a failed completion job */
#define SHUTDOWN_GRACE_MS 5000	/* to say goodbye to the database */
#define TASK_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

enum task_phase {
	TASK_QUEUED,		/* claimed; process not started yet */
	TASK_RUNNING,		/* process running */
	TASK_DONE,		/* finished; result not yet accepted */
};

enum task_kill {
	KILL_NONE,
	KILL_TIMEOUT,		/* past timeout_s: reported failed, 'timeout' */
	KILL_OOM,		/* over mem_mb: reported failed, 'oom' */
	KILL_LOST,		/* lease gone (cancelled/re-leased): not reported */
	KILL_SHUTDOWN,		/* worker stopping: requeued by agent_offline */
};

struct task {
	int64_t id;
	int attempt;
	int64_t pipeline_id;
	char *name;
	char *command;
	char *service;		/* may be NULL */
	char *revision;		/* may be NULL */
	char *only_if_changed;	/* may be NULL */
	struct ry_strlist env;	/* the task's own K=V */
	struct ry_strlist changed_paths;
	bool changed_known;	/* the pipeline listed its changed paths */
	int timeout_s;
	int cpu;
	int mem_mb;
	int64_t source_date_epoch;
	enum task_phase phase;
	enum task_kill kill;
	pid_t pid;
	bool term_sent;
	bool start_reported;
	struct event *timer;	/* timeout, then the TERM grace */
	int64_t started_us;
	int64_t finished_us;
	long rss_kb;
	/* the result, once DONE */
	const char *outcome;	/* succeeded, failed, skipped */
	char *reason;
	int exit_code;		/* -1: none */
	char *log_path;
	char *log_tail;
	struct ry_worker *w;
};

struct ry_worker {
	struct ry_worker_config cfg;
	char *config_path;
	struct ry_strlist flags;	/* key, value, key, value ... */
	char *conninfo;
	char *actor;
	struct ry_hostinfo host;
	char *labels_pg;		/* configured labels + os + arch */
	int cpu_cap;
	long mem_cap;
	struct event_base *base;
	struct ry_adb *db;
	int64_t agent_id;		/* 0 until registered */
	bool registering;
	struct task **tasks;
	size_t ntasks;
	size_t cap;
	bool want_claim;	/* ready work may exist for us */
	int claim_limit;	/* rows the claim in flight asked for */
	bool hb_due;
	bool idle_check_due;
	bool draining;		/* no more claims */
	bool offline_sent;
	int exit_code;
	int64_t retry_after_ms;
	bool complete_one_at_a_time;	/* after a rejected batch */
	int complete_failures;		/* rejections of a single result in a row */
	struct event *hb_timer;
	struct event *spawn_ev;
	struct event *retry_ev;
	struct event *drain_timer;
	struct event *sigs[5];
	/* figures for --stats: what the worker itself saw */
	int64_t claim_sent_us;		/* claim in flight since */
	double *claim_ms;		/* latency of each claim round */
	size_t nclaims;
	size_t claims_cap;
	int64_t tasks_claimed;
	int64_t tasks_reported;
	int64_t completion_jobs;
	int64_t refused;
	size_t peak_running;
};

static void pump(struct ry_worker *w);

/* ---- small helpers ------------------------------------------------- */

static void format_ts(struct ry_buf *b, int64_t us)
{
	time_t s = (time_t)(us / 1000000);
	struct tm tm;
	char tmp[40];
	gmtime_r(&s, &tm);
	strftime(tmp, sizeof(tmp), "%Y-%m-%d %H:%M:%S", &tm);
	ry_buf_printf(b, "%s.%06ld+00", tmp, (long)(us % 1000000));
}

/* Array builder for text[]-typed parameters. */
struct pg_array {
	struct ry_buf b;
	size_t n;
};

static void arr_sep(struct pg_array *a)
{
	ry_buf_putc(&a->b, a->n++ ? ',' : '{');
}

static void arr_str(struct pg_array *a, const char *s)
{
	arr_sep(a);
	if (s)
		ry_buf_add_pg_array_elem(&a->b, s);
	else
		ry_buf_puts(&a->b, "NULL");
}

static void arr_int(struct pg_array *a, int64_t v)
{
	arr_sep(a);
	ry_buf_printf(&a->b, "%lld", (long long)v);
}

static void arr_ts(struct pg_array *a, int64_t us)
{
	arr_sep(a);
	if (us <= 0) {
		ry_buf_puts(&a->b, "NULL");
		return;
	}
	ry_buf_putc(&a->b, '"');
	format_ts(&a->b, us);
	ry_buf_putc(&a->b, '"');
}

static char *arr_done(struct pg_array *a)
{
	if (!a->n)
		ry_buf_putc(&a->b, '{');
	ry_buf_putc(&a->b, '}');
	return ry_buf_detach(&a->b);
}

static char *sanitize(const char *s)
{
	char *out = ry_strdup(s);
	for (char *p = out; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_'))
			*p = '_';
	return out;
}

/* ---- task bookkeeping ---------------------------------------------- */

static void task_free(struct task *t)
{
	if (t->timer)
		event_free(t->timer);
	free(t->name);
	free(t->command);
	free(t->service);
	free(t->revision);
	free(t->only_if_changed);
	ry_strlist_release(&t->env);
	ry_strlist_release(&t->changed_paths);
	free(t->reason);
	free(t->log_path);
	free(t->log_tail);
	free(t);
}

static void tasks_add(struct ry_worker *w, struct task *t)
{
	if (w->ntasks == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 64;
		w->tasks = ry_realloc(w->tasks, w->cap * sizeof(*w->tasks));
	}
	w->tasks[w->ntasks++] = t;
}

static void tasks_remove(struct ry_worker *w, struct task *t)
{
	for (size_t i = 0; i < w->ntasks; i++) {
		if (w->tasks[i] == t) {
			w->tasks[i] = w->tasks[--w->ntasks];
			break;
		}
	}
	task_free(t);
}

static struct task *task_by_id(struct ry_worker *w, int64_t id, int attempt)
{
	for (size_t i = 0; i < w->ntasks; i++)
		if (w->tasks[i]->id == id && w->tasks[i]->attempt == attempt)
			return w->tasks[i];
	return NULL;
}

/* What the tasks holding slots use; DONE tasks hold nothing. */
static struct ry_sched_capacity capacity_free(const struct ry_worker *w)
{
	struct ry_sched_capacity c = { w->cfg.slots, w->cpu_cap, w->mem_cap };
	for (size_t i = 0; i < w->ntasks; i++) {
		const struct task *t = w->tasks[i];
		if (t->phase == TASK_DONE)
			continue;
		c.slots--;
		c.cpu -= t->cpu;
		c.mem_mb -= t->mem_mb;
	}
	return c;
}

static size_t count_phase(const struct ry_worker *w, enum task_phase phase)
{
	size_t n = 0;
	for (size_t i = 0; i < w->ntasks; i++)
		n += w->tasks[i]->phase == phase;
	return n;
}

static void task_set_result(struct task *t, const char *outcome, char *reason, int exit_code)
{
	t->phase = TASK_DONE;
	t->outcome = outcome;
	free(t->reason);
	t->reason = reason;
	t->exit_code = exit_code;
	t->finished_us = ry_wall_us();
	if (!t->started_us)
		t->started_us = t->finished_us;
	if (t->log_path)
		t->log_tail = ry_exec_log_tail(t->log_path, LOG_TAIL_BYTES);
}

/* ---- running processes --------------------------------------------- */

static void task_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct task *t = arg;
	(void)fd;
	(void)what;
	if (t->phase != TASK_RUNNING)
		return;
	if (!t->term_sent) {
		if (t->kill == KILL_NONE) {
			t->kill = KILL_TIMEOUT;
			ry_warn("task %s (id %lld) exceeded its %d s timeout: stopping it",
				t->name, (long long)t->id, t->timeout_s);
		}
		ry_exec_kill_group(t->pid, SIGTERM);
		t->term_sent = true;
		struct timeval tv = { TERM_GRACE_S, 0 };
		evtimer_add(t->timer, &tv);
	} else {
		ry_exec_kill_group(t->pid, SIGKILL);
	}
}

static void task_kill(struct task *t, enum task_kill why)
{
	if (t->kill == KILL_NONE || why == KILL_LOST || why == KILL_SHUTDOWN)
		t->kill = why;
	if (t->phase == TASK_RUNNING)
		ry_exec_kill_group(t->pid, SIGKILL);
}

static void task_exited(struct ry_worker *w, struct task *t, int status)
{
	/* Whatever the shell left behind in its group goes with it. */
	ry_exec_kill_group(t->pid, SIGKILL);
	if (t->timer)
		event_del(t->timer);
	switch (t->kill) {
	case KILL_LOST:
	case KILL_SHUTDOWN:
		tasks_remove(w, t);
		return;
	case KILL_TIMEOUT:
		task_set_result(t, "failed", ry_asprintf("timeout: exceeded %d s", t->timeout_s), -1);
		break;
	case KILL_OOM:
		task_set_result(t, "failed", ry_asprintf("oom: used %ld MB, limit %d MB",
							 t->rss_kb / 1024, t->mem_mb), -1);
		break;
	case KILL_NONE:
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			task_set_result(t, "succeeded", NULL, 0);
		else
			task_set_result(t, "failed", ry_exec_describe_status(status),
					WIFEXITED(status) ? WEXITSTATUS(status)
							  : 128 + WTERMSIG(status));
		break;
	}
	ry_debug("task %s (id %lld) %s", t->name, (long long)t->id, t->outcome);
	w->want_claim = true;
}

static void sigchld_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ry_worker *w = arg;
	int status;
	pid_t pid;
	(void)fd;
	(void)what;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (size_t i = 0; i < w->ntasks; i++) {
			struct task *t = w->tasks[i];
			if (t->phase == TASK_RUNNING && t->pid == pid) {
				task_exited(w, t, status);
				break;
			}
		}
	}
	pump(w);
}

static void env_set(struct ry_strlist *env, const char *key, const char *value)
{
	size_t klen = strlen(key);
	char *kv = ry_asprintf("%s=%s", key, value ? value : "");
	for (size_t i = 0; i < env->n; i++) {
		if (strncmp(env->items[i], key, klen) == 0 && env->items[i][klen] == '=') {
			free(env->items[i]);
			env->items[i] = kv;
			return;
		}
	}
	ry_strlist_add(env, kv);
	free(kv);
}

/* Decides whether a claimed task needs a process at all. */
static bool task_precheck(struct task *t, bool dry_run)
{
	if (t->only_if_changed && t->changed_known) {
		char *err = NULL;
		struct ry_match *m = ry_match_compile(t->only_if_changed, &err);
		if (!m) {
			task_set_result(t, "failed", ry_asprintf("invalid only_if_changed pattern: %s", err), -1);
			free(err);
			return false;
		}
		bool hit = ry_match_any(m, t->changed_paths.items, t->changed_paths.n);
		ry_match_free(m);
		if (!hit) {
			task_set_result(t, "skipped",
					ry_strdup("unchanged: no changed path matches only_if_changed"), -1);
			return false;
		}
	}
	if (dry_run) {
		task_set_result(t, "succeeded", NULL, 0);
		free(t->log_tail);
		t->log_tail = ry_strdup("dry run: not executed");
		return false;
	}
	return true;
}

static void task_start(struct ry_worker *w, struct task *t)
{
	char *err = NULL;
	char *safe = sanitize(t->name);
	char *pdir = ry_asprintf("%s/pipelines/%lld", w->cfg.workdir, (long long)t->pipeline_id);
	char *shared = ry_asprintf("%s/shared", pdir);
	char *ws = ry_asprintf("%s/%lld-%s", pdir, (long long)t->id, safe);
	char *logdir = ry_asprintf("%s/logs/%lld", w->cfg.workdir, (long long)t->pipeline_id);
	struct ry_strlist env = { 0 };
	char **envp = NULL;
	char num[32];

	if (!task_precheck(t, w->cfg.dry_run))
		goto out;
	if (!ry_exec_mkdirs(shared, &err) || !ry_exec_mkdirs(ws, &err) ||
	    !ry_exec_mkdirs(logdir, &err)) {
		task_set_result(t, "failed", ry_asprintf("cannot prepare workspace: %s", err), -1);
		goto out;
	}
	t->log_path = ry_asprintf("%s/%lld-%s.%d.log", logdir, (long long)t->id, safe, t->attempt);

	/* A fixed, minimal environment: the same task sees the same world. */
	env_set(&env, "PATH", TASK_PATH);
	env_set(&env, "HOME", ws);
	env_set(&env, "TZ", "UTC");
	env_set(&env, "LC_ALL", "C");
	env_set(&env, "LANG", "C");
	snprintf(num, sizeof(num), "%lld", (long long)t->source_date_epoch);
	env_set(&env, "SOURCE_DATE_EPOCH", num);
	snprintf(num, sizeof(num), "%lld", (long long)t->id);
	env_set(&env, "RAILYARD_TASK_ID", num);
	env_set(&env, "RAILYARD_TASK_NAME", t->name);
	snprintf(num, sizeof(num), "%lld", (long long)t->pipeline_id);
	env_set(&env, "RAILYARD_PIPELINE_ID", num);
	snprintf(num, sizeof(num), "%d", t->attempt);
	env_set(&env, "RAILYARD_ATTEMPT", num);
	env_set(&env, "RAILYARD_SERVICE", t->service);
	env_set(&env, "RAILYARD_REVISION", t->revision);
	env_set(&env, "RAILYARD_WORKSPACE", ws);
	env_set(&env, "RAILYARD_PIPELINE_DIR", shared);
	env_set(&env, "RAILYARD_AGENT", w->cfg.name);
	for (size_t i = 0; i < t->env.n; i++) {
		char *eq = strchr(t->env.items[i], '=');
		if (!eq)
			continue;
		*eq = '\0';
		env_set(&env, t->env.items[i], eq + 1);
		*eq = '=';
	}
	envp = ry_calloc(env.n + 1, sizeof(*envp));
	memcpy(envp, env.items, env.n * sizeof(*envp));

	struct ry_exec_spec spec = { t->command, ws, envp, t->log_path };
	t->started_us = ry_wall_us();
	if (!ry_exec_spawn(&spec, &t->pid, &err)) {
		task_set_result(t, "failed", ry_asprintf("cannot start: %s", err), -1);
		goto out;
	}
	t->phase = TASK_RUNNING;
	size_t running = count_phase(w, TASK_RUNNING);
	if (running > w->peak_running)
		w->peak_running = running;
	t->timer = evtimer_new(w->base, task_timer_cb, t);
	struct timeval tv = { t->timeout_s, 0 };
	evtimer_add(t->timer, &tv);
out:
	free(err);
	free(safe);
	free(pdir);
	free(shared);
	free(ws);
	free(logdir);
	free(envp);
	ry_strlist_release(&env);
}

static void spawn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ry_worker *w = arg;
	int started = 0;
	(void)fd;
	(void)what;

	for (size_t i = 0; i < w->ntasks && started < SPAWN_PER_TURN; i++) {
		struct task *t = w->tasks[i];
		if (t->phase != TASK_QUEUED)
			continue;
		task_start(w, t);
		started++;
	}
	if (count_phase(w, TASK_QUEUED))
		event_active(w->spawn_ev, EV_TIMEOUT, 0);
	pump(w);
}

/* One pass over /proc: tasks over their memory allocation are killed. */
static void check_memory(struct ry_worker *w);

static void rss_add(void *arg, pid_t pgid, long rss_kb)
{
	struct ry_worker *w = arg;
	for (size_t i = 0; i < w->ntasks; i++)
		if (w->tasks[i]->phase == TASK_RUNNING && w->tasks[i]->pid == pgid)
			w->tasks[i]->rss_kb += rss_kb;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

static void check_memory(struct ry_worker *w)
{
	size_t n = 0;
	pid_t *pgids = ry_malloc((w->ntasks + 1) * sizeof(*pgids));

	for (size_t i = 0; i < w->ntasks; i++) {
		struct task *t = w->tasks[i];
		if (t->phase == TASK_RUNNING) {
			t->rss_kb = 0;
			pgids[n++] = t->pid;
		}
	}
	qsort(pgids, n, sizeof(*pgids), cmp_pid);
	ry_exec_scan_rss(pgids, n, rss_add, w);
	free(pgids);
	for (size_t i = 0; i < w->ntasks; i++) {
		struct task *t = w->tasks[i];
		if (t->phase == TASK_RUNNING && t->kill == KILL_NONE &&
		    t->rss_kb / 1024 > t->mem_mb) {
			ry_warn("task %s (id %lld) uses %ld MB, over its %d MB: killing it",
				t->name, (long long)t->id, t->rss_kb / 1024, t->mem_mb);
			task_kill(t, KILL_OOM);
		}
	}
}

/* ---- database jobs -------------------------------------------------- */

static bool job_failed(struct ry_worker *w, const struct ry_adb_reply *r, const char *what)
{
	if (r->ok)
		return false;
	if (r->conn_lost)
		ry_debug("cannot %s: %s", what, r->error);
	else
		ry_warn("cannot %s: %s", what, r->error);
	(void)w;
	return true;
}

static void shutdown_now(struct ry_worker *w, int code)
{
	w->exit_code = code;
	event_base_loopbreak(w->base);
}

static void registered(void *arg, const struct ry_adb_reply *r)
{
	struct ry_worker *w = arg;
	w->registering = false;
	if (!r->ok) {
		if (r->conn_lost)
			return;		/* again once reconnected */
		ry_error("cannot register agent %s: %s", w->cfg.name, r->error);
		shutdown_now(w, 1);
		return;
	}
	w->agent_id = ry_res_get_long(r->results[0], 0, 0);
	ry_info("agent %s registered (id %lld): %s, slots %d, labels %s", w->cfg.name,
		(long long)w->agent_id, w->host.hostname, w->cfg.slots, w->labels_pg);
	ry_notify_ready("registered");
	w->want_claim = true;
	pump(w);
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
			    pid, RY_VERSION, lease, takeover ? "true" : "false" };
	struct ry_adb_job *job = ry_adb_job_new(registered, w);
	ry_adb_job_add(job, "SELECT railyard.register_agent($1, $2, $3, $4, $5, $6, $7, $8, "
			    "$9, $10, $11, $12, $13, $14, $15)", 15, p);
	ry_adb_submit(w->db, job, RY_ADB_NEXT);
}

/* A previous holder of our name on this host whose process is gone is a
 * crashed incarnation of us: take the name over instead of waiting. */
static void holder_checked(void *arg, const struct ry_adb_reply *r)
{
	struct ry_worker *w = arg;
	bool takeover = false;
	if (!r->ok) {
		w->registering = false;
		job_failed(w, r, "look up the agent");
		return;
	}
	if (ry_res_rows(r->results[0]) == 1 &&
	    strcmp(ry_res_get(r->results[0], 0, 0), w->host.hostname) == 0) {
		pid_t old = (pid_t)ry_res_get_long(r->results[0], 0, 1);
		takeover = old != getpid() && kill(old, 0) < 0 && errno == ESRCH;
	}
	send_register(w, takeover);
}

static void start_register(struct ry_worker *w)
{
	const char *p[] = { w->cfg.name };
	struct ry_adb_job *job = ry_adb_job_new(holder_checked, w);
	w->registering = true;
	ry_adb_job_add(job, "SELECT hostname, pid FROM railyard.agents WHERE name = $1", 1, p);
	ry_adb_submit(w->db, job, RY_ADB_LAST);
}

/* Heartbeat reply: renewed; tasks listed back are no longer ours. */
static void heartbeat_done(void *arg, const struct ry_adb_reply *r)
{
	struct ry_worker *w = arg;
	if (job_failed(w, r, "send heartbeat"))
		return;
	const struct ry_res *lost = r->results[0];
	for (int i = 0; i < ry_res_rows(lost); i++) {
		struct task *t = task_by_id(w, ry_res_get_long(lost, i, 0),
					    (int)ry_res_get_long(lost, i, 1));
		if (!t)
			continue;
		ry_warn("task %s (id %lld attempt %d) is no longer ours (cancelled or re-leased): "
			"stopping it", t->name, (long long)t->id, t->attempt);
		if (t->phase == TASK_RUNNING)
			task_kill(t, KILL_LOST);
		else
			tasks_remove(w, t);
	}
	pump(w);
}

static void send_heartbeat(struct ry_worker *w)
{
	struct pg_array ids = { RY_BUF_INIT, 0 }, atts = { RY_BUF_INIT, 0 };
	struct pg_array sids = { RY_BUF_INIT, 0 }, satts = { RY_BUF_INIT, 0 };
	struct pg_array sts = { RY_BUF_INIT, 0 };
	char agent[24], running[16];
	size_t nrun = 0;

	for (size_t i = 0; i < w->ntasks; i++) {
		struct task *t = w->tasks[i];
		arr_int(&ids, t->id);
		arr_int(&atts, t->attempt);
		if (t->phase == TASK_RUNNING) {
			nrun++;
			if (!t->start_reported) {
				/* Sent once; a lost notice is made good by the
				 * completion, which carries the start time too. */
				arr_int(&sids, t->id);
				arr_int(&satts, t->attempt);
				arr_ts(&sts, t->started_us);
				t->start_reported = true;
			}
		}
	}
	snprintf(agent, sizeof(agent), "%lld", (long long)w->agent_id);
	snprintf(running, sizeof(running), "%zu", nrun);
	char *a_ids = arr_done(&ids), *a_atts = arr_done(&atts);
	char *s_ids = arr_done(&sids), *s_atts = arr_done(&satts), *s_ts = arr_done(&sts);

	struct ry_adb_job *job = ry_adb_job_new(heartbeat_done, w);
	const char *hp[] = { agent, a_ids, a_atts, running };
	ry_adb_job_add(job, "SELECT task_id, attempt FROM railyard.heartbeat($1, $2, $3, $4)", 4, hp);
	if (sids.n) {
		const char *sp[] = { agent, s_ids, s_atts, s_ts };
		ry_adb_job_add(job, "SELECT railyard.start_tasks($1, $2, $3, $4)", 4, sp);
	}
	/* Reap only after a full lease connected, so agents cut off with us
	 * during an outage have had their chance to renew first. */
	if (ry_adb_connected_for_ms(w->db) >= (int64_t)w->cfg.lease_s * 1000)
		ry_adb_job_add(job, "SELECT railyard.reap()", 0, NULL);
	ry_adb_submit(w->db, job, RY_ADB_LAST);
	w->hb_due = false;
	free(a_ids);
	free(a_atts);
	free(s_ids);
	free(s_atts);
	free(s_ts);
}

/* The database refused one result three times over: store it as a failure
 * that says why, without the output that may be what it choked on. */
static void poison_first_result(struct ry_worker *w, const char *error)
{
	for (size_t i = 0; i < w->ntasks; i++) {
		struct task *t = w->tasks[i];
		if (t->phase != TASK_DONE)
			continue;
		ry_error("cannot store the result of task %s (id %lld): %s; recording it as failed",
			 t->name, (long long)t->id, error);
		t->outcome = "failed";
		free(t->reason);
		t->reason = ry_asprintf("result could not be stored: %.200s", error);
		ry_exec_sanitize_utf8(t->reason);
		free(t->log_tail);
		t->log_tail = NULL;
		break;
	}
	w->complete_failures = 0;
}

static void completed(void *arg, const struct ry_adb_reply *r)
{
	struct ry_worker *w = arg;
	if (job_failed(w, r, "report task results")) {
		/* Kept: sent again after a reconnect, or after a pause one at a
		 * time, so one result the database rejects (a deadlock is only
		 * retried) cannot hold back the others. */
		if (!r->conn_lost) {
			if (w->complete_one_at_a_time && ++w->complete_failures >= 3)
				poison_first_result(w, r->error);
			w->complete_one_at_a_time = true;
			w->retry_after_ms = ry_now_ms() + RETRY_MS;
			struct timeval tv = { 0, RETRY_MS * 1000 };
			evtimer_add(w->retry_ev, &tv);
		}
		return;
	}
	const struct ry_res *res = r->results[0];
	w->completion_jobs++;
	w->complete_one_at_a_time = false;
	w->complete_failures = 0;
	for (int i = 0; i < ry_res_rows(res); i++) {
		struct task *t = task_by_id(w, ry_res_get_long(res, i, 0),
					    (int)ry_res_get_long(res, i, 1));
		if (!t)
			continue;
		w->tasks_reported++;
		if (strcmp(ry_res_get(res, i, 2), "t") != 0 && ++w->refused)
			ry_warn("result of task %s (id %lld attempt %d) refused: its lease was "
				"taken over", t->name, (long long)t->id, t->attempt);
		tasks_remove(w, t);
	}
	pump(w);
}

static void send_completions(struct ry_worker *w)
{
	struct pg_array ids = { RY_BUF_INIT, 0 }, atts = { RY_BUF_INIT, 0 };
	struct pg_array outs = { RY_BUF_INIT, 0 }, codes = { RY_BUF_INIT, 0 };
	struct pg_array reasons = { RY_BUF_INIT, 0 }, starts = { RY_BUF_INIT, 0 };
	struct pg_array ends = { RY_BUF_INIT, 0 }, paths = { RY_BUF_INIT, 0 };
	struct pg_array tails = { RY_BUF_INIT, 0 };
	char agent[24];

	size_t max = w->complete_one_at_a_time ? 1 : COMPLETE_BATCH_MAX;

	for (size_t i = 0; i < w->ntasks && ids.n < max; i++) {
		struct task *t = w->tasks[i];
		if (t->phase != TASK_DONE)
			continue;
		arr_int(&ids, t->id);
		arr_int(&atts, t->attempt);
		arr_str(&outs, t->outcome);
		if (t->exit_code >= 0)
			arr_int(&codes, t->exit_code);
		else
			arr_str(&codes, NULL);
		arr_str(&reasons, t->reason);
		arr_ts(&starts, t->started_us);
		arr_ts(&ends, t->finished_us);
		arr_str(&paths, t->log_path);
		arr_str(&tails, t->log_tail);
	}
	snprintf(agent, sizeof(agent), "%lld", (long long)w->agent_id);
	char *v[] = { agent, arr_done(&ids), arr_done(&atts), arr_done(&outs), arr_done(&codes),
		      arr_done(&reasons), arr_done(&starts), arr_done(&ends), arr_done(&paths),
		      arr_done(&tails) };
	struct ry_adb_job *job = ry_adb_job_new(completed, w);
	ry_adb_job_add(job, "SELECT task_id, attempt, accepted FROM railyard.complete_tasks("
			    "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10)", 10, (const char *const *)v);
	ry_adb_submit(w->db, job, RY_ADB_LAST);
	for (size_t i = 1; i < RY_ARRAY_SIZE(v); i++)
		free(v[i]);
}

static void record_claim(struct ry_worker *w)
{
	if (!w->claim_sent_us)
		return;
	if (w->nclaims == w->claims_cap) {
		w->claims_cap = w->claims_cap ? w->claims_cap * 2 : 1024;
		w->claim_ms = ry_realloc(w->claim_ms, w->claims_cap * sizeof(*w->claim_ms));
	}
	w->claim_ms[w->nclaims++] = (double)(ry_wall_us() - w->claim_sent_us) / 1000.0;
	w->claim_sent_us = 0;
}

static void transaction_ended(void *arg, const struct ry_adb_reply *r)
{
	struct ry_worker *w = arg;
	record_claim(w);
	job_failed(w, r, "end the claim transaction");
	pump(w);
}

static void end_transaction(struct ry_worker *w, const char *sql)
{
	struct ry_adb_job *job = ry_adb_job_new(transaction_ended, w);
	ry_adb_job_add(job, sql, 0, NULL);
	ry_adb_submit(w->db, job, RY_ADB_NEXT);
}

static void claimed(void *arg, const struct ry_adb_reply *r)
{
	struct ry_worker *w = arg;
	record_claim(w);
	if (job_failed(w, r, "claim tasks")) {
		if (!r->conn_lost)
			end_transaction(w, "ROLLBACK");
		return;
	}
	const struct ry_res *res = r->results[0];
	for (int i = 0; i < ry_res_rows(res); i++) {
		struct task *t = ry_calloc(1, sizeof(*t));
		t->w = w;
		t->id = ry_res_get_long(res, i, 0);
		t->attempt = (int)ry_res_get_long(res, i, 1);
		t->pipeline_id = ry_res_get_long(res, i, 2);
		t->name = ry_strdup(ry_res_get(res, i, 3));
		t->command = ry_strdup(ry_res_get(res, i, 4));
		if (!ry_db_parse_text_array(ry_res_get(res, i, 5), &t->env))
			ry_warn("task %s: cannot read its env", t->name);
		t->timeout_s = (int)ry_res_get_long(res, i, 6);
		t->cpu = (int)ry_res_get_long(res, i, 7);
		t->mem_mb = (int)ry_res_get_long(res, i, 8);
		if (!ry_res_isnull(res, i, 9))
			t->only_if_changed = ry_strdup(ry_res_get(res, i, 9));
		t->changed_known = !ry_res_isnull(res, i, 10) &&
				   ry_db_parse_text_array(ry_res_get(res, i, 10), &t->changed_paths);
		if (!ry_res_isnull(res, i, 11))
			t->revision = ry_strdup(ry_res_get(res, i, 11));
		if (!ry_res_isnull(res, i, 12))
			t->service = ry_strdup(ry_res_get(res, i, 12));
		t->source_date_epoch = ry_res_get_long(res, i, 13);
		t->exit_code = -1;
		t->phase = TASK_QUEUED;
		tasks_add(w, t);
	}
	w->tasks_claimed += ry_res_rows(res);
	if (ry_res_rows(res))
		event_active(w->spawn_ev, EV_TIMEOUT, 0);
	pump(w);
}

/* Claim, step 1 answered: choose in C among the locked candidates. */
static void candidates(void *arg, const struct ry_adb_reply *r)
{
	struct ry_worker *w = arg;
	if (job_failed(w, r, "look for ready tasks")) {
		if (!r->conn_lost)
			end_transaction(w, "ROLLBACK");
		return;
	}
	const struct ry_res *res = r->results[2];
	size_t n = (size_t)ry_res_rows(res);
	struct ry_sched_candidate *c = ry_calloc(n + 1, sizeof(*c));
	size_t *chosen = ry_calloc(n + 1, sizeof(*chosen));
	for (size_t i = 0; i < n; i++) {
		c[i].id = ry_res_get_long(res, (int)i, 0);
		c[i].cpu = (int)ry_res_get_long(res, (int)i, 1);
		c[i].mem_mb = (int)ry_res_get_long(res, (int)i, 2);
	}
	struct ry_sched_capacity free_cap = capacity_free(w);
	size_t k = ry_sched_choose(&free_cap, c, n, chosen);

	/* Fewer rows than asked: nothing more is ready for us right now. */
	w->want_claim = (int)n == w->claim_limit && k == n;
	if (n == 0 && w->ntasks == 0)
		w->idle_check_due = true;
	if (k == 0) {
		end_transaction(w, "COMMIT");
	} else {
		struct pg_array ids = { RY_BUF_INIT, 0 };
		char agent[24];
		for (size_t i = 0; i < k; i++)
			arr_int(&ids, c[chosen[i]].id);
		char *a = arr_done(&ids);
		snprintf(agent, sizeof(agent), "%lld", (long long)w->agent_id);
		const char *p[] = { agent, a };
		struct ry_adb_job *job = ry_adb_job_new(claimed, w);
		ry_adb_job_add(job, "SELECT * FROM railyard.claim_tasks($1, $2)", 2, p);
		ry_adb_job_add(job, "COMMIT", 0, NULL);
		ry_adb_submit(w->db, job, RY_ADB_NEXT);
		free(a);
	}
	free(c);
	free(chosen);
}

static void send_claim(struct ry_worker *w, const struct ry_sched_capacity *free_cap)
{
	char cpu[16], mem[24], limit[16];
	int lim = free_cap->slots < CLAIM_BATCH_MAX ? free_cap->slots : CLAIM_BATCH_MAX;
	snprintf(cpu, sizeof(cpu), "%d", free_cap->cpu);
	snprintf(mem, sizeof(mem), "%ld", free_cap->mem_mb);
	snprintf(limit, sizeof(limit), "%d", lim);
	const char *p[] = { w->labels_pg, w->host.os, w->host.arch, cpu, mem, limit };
	struct ry_adb_job *job = ry_adb_job_new(candidates, w);
	ry_adb_job_add(job, "BEGIN", 0, NULL);
	/* A claim need not wait for its WAL flush: if a crash loses it, the
	 * task is simply ready again, and fencing (agent + attempt) refuses
	 * anything this worker then reports for it.  Results stay durable. */
	ry_adb_job_add(job, "SET LOCAL synchronous_commit = off", 0, NULL);
	ry_adb_job_add(job, "SELECT id, cpu, mem_mb FROM railyard.claim_candidates("
			    "$1, $2, $3, $4, $5, $6)", 6, p);
	ry_adb_submit(w->db, job, RY_ADB_LAST);
	w->want_claim = false;
	w->claim_limit = lim;
	w->claim_sent_us = ry_wall_us();
}

static void idle_checked(void *arg, const struct ry_adb_reply *r)
{
	struct ry_worker *w = arg;
	if (job_failed(w, r, "check for remaining work"))
		return;
	if (strcmp(ry_res_get(r->results[0], 0, 0), "f") == 0 && w->ntasks == 0) {
		ry_info("no work left that this agent could run: exiting");
		w->draining = true;
	}
	pump(w);
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
	job_failed(w, r, "mark the agent offline");
	ry_info("agent %s offline", w->cfg.name);
	shutdown_now(w, w->exit_code);
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

/* Decides what the idle connection does next. */
static void pump(struct ry_worker *w)
{
	if (!ry_adb_idle(w->db))
		return;
	if (!w->agent_id) {
		if (!w->registering)
			start_register(w);
		return;
	}
	if (w->hb_due) {
		send_heartbeat(w);
		return;
	}
	if (count_phase(w, TASK_DONE) && ry_now_ms() >= w->retry_after_ms) {
		send_completions(w);
		return;
	}
	if (w->draining) {
		if (w->ntasks == 0 && !w->offline_sent)
			send_offline(w);
		return;
	}
	struct ry_sched_capacity free_cap = capacity_free(w);
	if (w->want_claim && free_cap.slots > 0 && free_cap.cpu > 0 && free_cap.mem_mb > 0) {
		send_claim(w, &free_cap);
		return;
	}
	if (w->cfg.exit_when_idle && w->idle_check_due && w->ntasks == 0)
		send_idle_check(w);
}

/* ---- timers, signals, connection events ----------------------------- */

static void hb_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ry_worker *w = arg;
	(void)fd;
	(void)what;
	/* The watchdog watches this loop, not the database: a worker waiting
	 * out an outage with its tasks running is healthy. */
	ry_notify_watchdog();
	if (w->agent_id)
		w->hb_due = true;
	w->want_claim = true;		/* backstop for a missed NOTIFY */
	if (w->ntasks == 0)
		w->idle_check_due = true;
	if (count_phase(w, TASK_RUNNING))
		check_memory(w);
	pump(w);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pump(arg);
}

static void arm_heartbeat(struct ry_worker *w)
{
	/* Jitter keeps a farm's heartbeats from marching in step. */
	int ms = w->cfg.heartbeat_s * 1000;
	ms -= (int)(random() % (ms / 10 + 1));
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	event_del(w->hb_timer);
	event_free(w->hb_timer);
	w->hb_timer = event_new(w->base, -1, EV_PERSIST, hb_timer_cb, w);
	event_add(w->hb_timer, &tv);
}

static void on_connected(void *arg)
{
	struct ry_worker *w = arg;
	if (w->agent_id) {
		ry_info("reconnected to the database; %zu tasks running, %zu results to report",
			count_phase(w, TASK_RUNNING), count_phase(w, TASK_DONE));
		w->hb_due = true;	/* renew the lease before anything else */
	}
	w->want_claim = true;
	w->retry_after_ms = 0;
	pump(w);
}

static void on_disconnected(void *arg, const char *why)
{
	struct ry_worker *w = arg;
	ry_warn("lost the database connection (%s); tasks keep running, reconnecting", why);
	w->registering = false;
}

static void on_notify(void *arg, const char *channel, const char *payload)
{
	struct ry_worker *w = arg;
	if (strcmp(channel, "railyard_ready") == 0) {
		w->want_claim = true;
	} else if (strcmp(channel, "railyard_cancel") == 0) {
		int64_t pid = strtoll(payload, NULL, 10);
		for (size_t i = 0; i < w->ntasks; i++)
			if (w->tasks[i]->pipeline_id == pid)
				w->hb_due = true;	/* learn which tasks to stop */
	}
	pump(w);
}

static void kill_all(struct ry_worker *w)
{
	for (size_t i = w->ntasks; i-- > 0;) {
		struct task *t = w->tasks[i];
		if (t->phase == TASK_RUNNING)
			task_kill(t, KILL_SHUTDOWN);
		else if (t->phase == TASK_QUEUED)
			tasks_remove(w, t);
	}
}

static void drain_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ry_worker *w = arg;
	(void)fd;
	(void)what;
	if (count_phase(w, TASK_RUNNING)) {
		ry_warn("drain deadline reached: killing %zu running tasks (they will be requeued)",
			count_phase(w, TASK_RUNNING));
		kill_all(w);
		/* Say goodbye if the database lets us, else leave anyway. */
		struct timeval tv = { SHUTDOWN_GRACE_MS / 1000, 0 };
		evtimer_add(w->drain_timer, &tv);
	} else {
		ry_warn("cannot reach the database to finish shutting down: exiting");
		shutdown_now(w, w->exit_code);
	}
	pump(w);
}

static void begin_drain(struct ry_worker *w, int deadline_s)
{
	w->draining = true;
	ry_notify_stopping();
	struct timeval tv = { deadline_s, 0 };
	event_del(w->drain_timer);
	evtimer_add(w->drain_timer, &tv);
	/* Tasks not started yet are handed back rather than begun. */
	for (size_t i = w->ntasks; i-- > 0;)
		if (w->tasks[i]->phase == TASK_QUEUED)
			tasks_remove(w, w->tasks[i]);
}

static void reload_config(struct ry_worker *w);

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct ry_worker *w = arg;
	(void)what;
	if (sig == SIGHUP) {
		reload_config(w);
	} else if (!w->draining || w->cfg.exit_when_idle) {
		ry_info("%s: draining — no new tasks; %zu running may finish within %d s "
			"(send it again to stop now)", strsignal((int)sig),
			count_phase(w, TASK_RUNNING), w->cfg.drain_timeout_s);
		w->cfg.exit_when_idle = false;
		begin_drain(w, w->cfg.drain_timeout_s);
	} else {
		ry_warn("%s again: killing %zu running tasks and exiting", strsignal((int)sig),
			count_phase(w, TASK_RUNNING));
		kill_all(w);
		struct timeval tv = { SHUTDOWN_GRACE_MS / 1000, 0 };
		event_del(w->drain_timer);
		evtimer_add(w->drain_timer, &tv);
	}
	pump(w);
}

static void set_labels(struct ry_worker *w)
{
	struct ry_strlist all = { 0 };
	for (size_t i = 0; i < w->cfg.labels.n; i++)
		if (!ry_strlist_has(&all, w->cfg.labels.items[i]))
			ry_strlist_add(&all, w->cfg.labels.items[i]);
	/* Every agent answers to its os and arch, so requires '{linux}' works. */
	if (!ry_strlist_has(&all, w->host.os))
		ry_strlist_add(&all, w->host.os);
	if (!ry_strlist_has(&all, w->host.arch))
		ry_strlist_add(&all, w->host.arch);
	free(w->labels_pg);
	w->labels_pg = ry_strlist_to_pg_array(&all);
	ry_strlist_release(&all);
	w->cpu_cap = w->cfg.cpus ? w->cfg.cpus : w->cfg.slots;
	w->mem_cap = w->cfg.mem_mb ? w->cfg.mem_mb : w->host.mem_mb;
}

static void agent_updated(void *arg, const struct ry_adb_reply *r)
{
	job_failed(arg, r, "update the agent after reload");
}

static void reload_config(struct ry_worker *w)
{
	struct ry_worker_config c;
	char *err = NULL;
	bool ok;

	if (!w->config_path) {
		ry_info("SIGHUP: no --config file to reload");
		return;
	}
	ry_notify_reloading();
	ry_config_init(&c);
	ok = ry_config_load_file(&c, w->config_path, &err);
	for (size_t i = 0; ok && i + 1 < w->flags.n; i += 2)
		ok = ry_config_set(&c, w->flags.items[i], w->flags.items[i + 1], "command line", &err);
	if (ok)
		ok = ry_config_check(&c, &err);
	if (!ok) {
		ry_error("cannot reload configuration, keeping the old one: %s", err);
		free(err);
		ry_config_release(&c);
		ry_notify_ready("reload failed");
		return;
	}
	/* Only what can change under a running agent; db/name need a restart. */
	ry_strlist_release(&w->cfg.labels);
	w->cfg.labels = c.labels;
	c.labels = (struct ry_strlist){ 0 };
	w->cfg.slots = c.slots;
	w->cfg.cpus = c.cpus;
	w->cfg.mem_mb = c.mem_mb;
	w->cfg.drain_timeout_s = c.drain_timeout_s;
	if (w->cfg.heartbeat_s != c.heartbeat_s) {
		w->cfg.heartbeat_s = c.heartbeat_s;
		arm_heartbeat(w);
	}
	ry_config_release(&c);
	set_labels(w);
	ry_info("configuration reloaded: slots %d, labels %s", w->cfg.slots, w->labels_pg);
	if (w->agent_id && ry_adb_connected(w->db)) {
		char agent[24], slots[16], cpus[16], offered[24];
		snprintf(agent, sizeof(agent), "%lld", (long long)w->agent_id);
		snprintf(slots, sizeof(slots), "%d", w->cfg.slots);
		snprintf(cpus, sizeof(cpus), "%d", w->cpu_cap);
		snprintf(offered, sizeof(offered), "%ld", w->mem_cap);
		const char *p[] = { agent, w->labels_pg, slots, cpus, offered };
		struct ry_adb_job *job = ry_adb_job_new(agent_updated, w);
		ry_adb_job_add(job, "SELECT railyard.update_agent($1, $2, $3, $4, $5)", 5, p);
		ry_adb_submit(w->db, job, RY_ADB_LAST);
	}
	w->want_claim = true;
	ry_notify_ready("reloaded");
}

/* ---- lifecycle -------------------------------------------------------- */

struct ry_worker *ry_worker_new(const struct ry_worker_config *cfg, const char *conninfo,
				const char *config_path, const struct ry_strlist *flags)
{
	struct ry_worker *w = ry_calloc(1, sizeof(*w));
	w->cfg = *cfg;
	w->cfg.db = cfg->db ? ry_strdup(cfg->db) : NULL;
	w->cfg.name = ry_strdup(cfg->name);
	w->cfg.workdir = ry_strdup(cfg->workdir);
	w->cfg.stats_path = cfg->stats_path ? ry_strdup(cfg->stats_path) : NULL;
	w->cfg.labels = (struct ry_strlist){ 0 };
	for (size_t i = 0; i < cfg->labels.n; i++)
		ry_strlist_add(&w->cfg.labels, cfg->labels.items[i]);
	for (size_t i = 0; flags && i < flags->n; i++)
		ry_strlist_add(&w->flags, flags->items[i]);
	w->config_path = config_path ? ry_strdup(config_path) : NULL;
	w->conninfo = ry_strdup(conninfo);
	w->actor = ry_asprintf("worker:%s", w->cfg.name);
	ry_hostinfo_collect(&w->host, w->cfg.workdir);
	set_labels(w);
	return w;
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

/* --stats: the figures only the worker can see, for benchmarks and tuning. */
static void write_stats(struct ry_worker *w)
{
	FILE *f;
	if (!w->cfg.stats_path)
		return;
	if (!(f = fopen(w->cfg.stats_path, "w"))) {
		ry_warn("cannot write %s: %s", w->cfg.stats_path, strerror(errno));
		return;
	}
	qsort(w->claim_ms, w->nclaims, sizeof(*w->claim_ms), cmp_double);
	fprintf(f, "{\"agent\": \"%s\", \"claims\": %zu, \"claim_ms_p50\": %.3f, "
		"\"claim_ms_p99\": %.3f, \"claim_ms_max\": %.3f, \"tasks_claimed\": %lld, "
		"\"tasks_reported\": %lld, \"completion_jobs\": %lld, \"refused\": %lld, "
		"\"peak_running\": %zu}\n",
		w->cfg.name, w->nclaims, percentile(w->claim_ms, w->nclaims, 0.50),
		percentile(w->claim_ms, w->nclaims, 0.99),
		w->nclaims ? w->claim_ms[w->nclaims - 1] : 0.0, (long long)w->tasks_claimed,
		(long long)w->tasks_reported, (long long)w->completion_jobs,
		(long long)w->refused, w->peak_running);
	fclose(f);
}

int ry_worker_run(struct ry_worker *w)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD };
	struct ry_adb_callbacks cbs = { on_connected, on_disconnected, on_notify };

	srandom((unsigned)(getpid() ^ ry_wall_us()));
	signal(SIGPIPE, SIG_IGN);
	w->base = event_base_new();
	if (!w->base) {
		ry_error("cannot create the event loop");
		return 1;
	}
	for (size_t i = 0; i < RY_ARRAY_SIZE(sigs); i++) {
		w->sigs[i] = evsignal_new(w->base, sigs[i],
					  sigs[i] == SIGCHLD ? sigchld_cb : signal_cb, w);
		evsignal_add(w->sigs[i], NULL);
	}
	w->spawn_ev = event_new(w->base, -1, 0, spawn_cb, w);
	w->retry_ev = evtimer_new(w->base, retry_cb, w);
	w->drain_timer = evtimer_new(w->base, drain_timer_cb, w);
	w->hb_timer = event_new(w->base, -1, EV_PERSIST, hb_timer_cb, w);
	arm_heartbeat(w);

	w->db = ry_adb_new(w->base, w->conninfo, w->actor, &cbs, w);
	ry_adb_listen(w->db, "railyard_ready");
	ry_adb_listen(w->db, "railyard_cancel");
	ry_adb_start(w->db);

	event_base_dispatch(w->base);
	write_stats(w);

	/* Leaving: whatever still runs is stopped (the reaper requeues it). */
	for (size_t i = 0; i < w->ntasks; i++)
		if (w->tasks[i]->phase == TASK_RUNNING)
			ry_exec_kill_group(w->tasks[i]->pid, SIGKILL);
	return w->exit_code;
}

void ry_worker_free(struct ry_worker *w)
{
	if (!w)
		return;
	ry_adb_free(w->db);
	while (w->ntasks)
		tasks_remove(w, w->tasks[w->ntasks - 1]);
	free(w->tasks);
	for (size_t i = 0; i < RY_ARRAY_SIZE(w->sigs); i++)
		if (w->sigs[i])
			event_free(w->sigs[i]);
	if (w->spawn_ev)
		event_free(w->spawn_ev);
	if (w->retry_ev)
		event_free(w->retry_ev);
	if (w->drain_timer)
		event_free(w->drain_timer);
	if (w->hb_timer)
		event_free(w->hb_timer);
	if (w->base)
		event_base_free(w->base);
	ry_config_release(&w->cfg);
	ry_strlist_release(&w->flags);
	free(w->config_path);
	free(w->conninfo);
	free(w->actor);
	free(w->labels_pg);
	free(w->claim_ms);
	free(w);
}
