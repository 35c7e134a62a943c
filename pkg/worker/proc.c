/*
 * Running processes: deciding whether a claimed task needs one, preparing
 * its workspace and environment, starting it (a few per loop turn, so a big
 * claim never stalls the heartbeat), its timeout, its memory limit, and
 * reaping it on SIGCHLD.
 */
#include "worker/internal.h"

#include "exec/exec.h"
#include "match/match.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define TERM_GRACE_S 2		/* SIGTERM → SIGKILL on timeout */
#define TASK_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

void ry_worker_task_free(struct ry_task *t)
{
	if (t->timer)
		event_free(t->timer);
	free(t->name);
	free(t->command);
	free(t->service);
	free(t->revision);
	free(t->only_if_changed);
	ry_strlist_release(&t->env);
	ry_strlist_release(&t->secrets);
	ry_strlist_release(&t->changed_paths);
	free(t->reason);
	free(t->log_path);
	free(t->log_tail);
	free(t);
}

void ry_worker_task_forget(struct ry_worker *w, struct ry_task *t)
{
	ry_task_table_remove(&w->tasks, t);
	ry_worker_task_free(t);
}

void ry_worker_task_set_result(struct ry_task *t, const char *outcome, char *reason, int exit_code)
{
	t->outcome = outcome;
	free(t->reason);
	t->reason = reason;
	t->exit_code = exit_code;
	t->finished_us = ry_wall_us();
	if (!t->started_us)
		t->started_us = t->finished_us;
	if (t->started_ms)
		t->duration_s = (double)(ry_now_ms() - t->started_ms) / 1000.0;
	if (t->log_path)
		t->log_tail = ry_exec_log_tail(t->log_path, RY_LOG_TAIL_BYTES);
	ry_task_table_move(&t->w->tasks, t, RY_TASK_DONE, false);
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

static void task_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ry_task *t = arg;
	(void)fd;
	(void)what;
	if (t->phase != RY_TASK_RUNNING)
		return;
	if (!t->term_sent) {
		if (t->kill == RY_KILL_NONE) {
			t->kill = RY_KILL_TIMEOUT;
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

void ry_worker_task_kill(struct ry_task *t, enum ry_task_kill why)
{
	if (t->kill == RY_KILL_NONE || why == RY_KILL_LOST || why == RY_KILL_SHUTDOWN)
		t->kill = why;
	if (t->phase == RY_TASK_RUNNING)
		ry_exec_kill_group(t->pid, SIGKILL);
}

static void task_exited(struct ry_worker *w, struct ry_task *t, int status)
{
	/* Whatever the shell left behind in its group goes with it. */
	ry_exec_kill_group(t->pid, SIGKILL);
	if (t->timer)
		event_del(t->timer);
	switch (t->kill) {
	case RY_KILL_LOST:
	case RY_KILL_LEASE:
	case RY_KILL_SHUTDOWN:
		ry_worker_task_forget(w, t);
		return;
	case RY_KILL_TIMEOUT:
		ry_worker_task_set_result(t, "failed",
					  ry_asprintf("timeout: exceeded %d s", t->timeout_s), -1);
		break;
	case RY_KILL_OOM:
		ry_worker_task_set_result(t, "failed", ry_asprintf("oom: used %ld MB, limit %d MB",
								   t->rss_kb / 1024, t->mem_mb), -1);
		break;
	case RY_KILL_SPACE:
	case RY_KILL_NONE:
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			ry_worker_task_set_result(t, "succeeded", NULL, 0);
		else
			ry_worker_task_set_result(t, "failed", ry_exec_describe_status(status),
						  WIFEXITED(status) ? WEXITSTATUS(status)
								    : 128 + WTERMSIG(status));
		break;
	}
	ry_debug("task %s (id %lld) %s", t->name, (long long)t->id, t->outcome);
	w->want_claim = true;
}

/* The running task whose main process is pid; running tasks are few
 * compared to the reaps, and each is found by walking one list. */
static struct ry_task *running_by_pid(struct ry_worker *w, pid_t pid)
{
	for (struct ry_task *t = ry_task_table_first(&w->tasks, RY_TASK_RUNNING); t; t = t->next)
		if (t->pid == pid)
			return t;
	return NULL;
}

void ry_worker_sigchld_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ry_worker *w = arg;
	int status;
	pid_t pid;
	(void)fd;
	(void)what;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct ry_task *t = running_by_pid(w, pid);
		if (t)
			task_exited(w, t, status);
	}
	ry_worker_pump(w);
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
static bool task_precheck(struct ry_task *t, bool dry_run)
{
	if (t->only_if_changed && t->changed_known) {
		char *err = NULL;
		struct ry_match *m = ry_match_compile(t->only_if_changed, &err);
		if (!m) {
			ry_worker_task_set_result(t, "failed",
						  ry_asprintf("invalid only_if_changed pattern: %s", err), -1);
			free(err);
			return false;
		}
		bool hit = ry_match_any(m, t->changed_paths.items, t->changed_paths.n);
		ry_match_free(m);
		if (!hit) {
			ry_worker_task_set_result(t, "skipped",
				ry_strdup("unchanged: no changed path matches only_if_changed"), -1);
			return false;
		}
	}
	if (dry_run) {
		ry_worker_task_set_result(t, "succeeded", NULL, 0);
		free(t->log_tail);
		t->log_tail = ry_strdup("dry run: not executed");
		return false;
	}
	return true;
}

static void task_start(struct ry_worker *w, struct ry_task *t)
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
		ry_worker_task_set_result(t, "failed",
					  ry_asprintf("cannot prepare workspace: %s", err), -1);
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
	t->started_ms = ry_now_ms();
	if (!ry_exec_spawn(&spec, &t->pid, &err)) {
		ry_worker_task_set_result(t, "failed", ry_asprintf("cannot start: %s", err), -1);
		goto out;
	}
	ry_task_table_move(&w->tasks, t, RY_TASK_RUNNING, false);
	size_t running = ry_task_table_count(&w->tasks, RY_TASK_RUNNING);
	if (running > w->stats.peak_running)
		w->stats.peak_running = running;
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

void ry_worker_spawn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ry_worker *w = arg;
	int started = 0;
	(void)fd;
	(void)what;

	struct ry_task *t;
	while (started < RY_SPAWN_PER_TURN && (t = ry_task_table_first(&w->tasks, RY_TASK_QUEUED))) {
		task_start(w, t);
		started++;
	}
	if (ry_task_table_count(&w->tasks, RY_TASK_QUEUED))
		event_active(w->spawn_ev, EV_TIMEOUT, 0);
	ry_worker_pump(w);
}

/* ---- memory: one pass over /proc per heartbeat ---------------------- */

static void rss_add(void *arg, pid_t pgid, long rss_kb)
{
	struct ry_worker *w = arg;
	struct ry_task *t = running_by_pid(w, pgid);
	if (t)
		t->rss_kb += rss_kb;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

void ry_worker_check_memory(struct ry_worker *w)
{
	size_t n = 0;
	pid_t *pgids = ry_malloc((ry_task_table_count(&w->tasks, RY_TASK_RUNNING) + 1) *
				 sizeof(*pgids));
	for (struct ry_task *t = ry_task_table_first(&w->tasks, RY_TASK_RUNNING); t; t = t->next) {
		t->rss_kb = 0;
		pgids[n++] = t->pid;
	}
	qsort(pgids, n, sizeof(*pgids), cmp_pid);
	ry_exec_scan_rss(pgids, n, rss_add, w);
	free(pgids);
	for (struct ry_task *t = ry_task_table_first(&w->tasks, RY_TASK_RUNNING); t; t = t->next) {
		if (t->kill == RY_KILL_NONE && t->rss_kb / 1024 > t->mem_mb) {
			ry_warn("task %s (id %lld) uses %ld MB, over its %d MB: killing it",
				t->name, (long long)t->id, t->rss_kb / 1024, t->mem_mb);
			ry_worker_task_kill(t, RY_KILL_OOM);
		}
	}
}
