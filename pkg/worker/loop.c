/*
 * The worker's event loop and lifecycle.
 *
 * Everything happens in callbacks of one libevent loop:
 *   - the database connection (adb) runs one job at a time; whenever it is
 *     idle, ry_worker_pump() (dbjobs.c) sends what pump.c decides comes
 *     next.  Completions pile up while another job is in flight and leave
 *     together: batching without a timer.
 *   - SIGCHLD reaps task processes; per-task timers enforce timeouts
 *     (proc.c); the heartbeat timer renews the lease, reports starts, runs
 *     the reaper, checks memory and backs up NOTIFY with a poll.
 *   - claimed tasks are started a few per loop turn (spawn_ev) so a large
 *     claim never stalls heartbeats.
 *   - SIGTERM drains, a second one stops now; SIGHUP reloads (this file).
 */
#include "worker/internal.h"
#include "worker/journal.h"

#include "db/adb.h"
#include "notify/notify.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define SHUTDOWN_GRACE_MS 5000	/* to say goodbye to the database */

void ry_worker_soon(struct event *ev)
{
	static const struct timeval now = { 0, 0 };
	event_add(ev, &now);
}

static void hb_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ry_worker *w = arg;
	(void)fd;
	(void)what;
	/* The watchdog watches this loop, not the database: a worker waiting
	 * out an outage with its tasks running is healthy. */
	ry_notify_watchdog();
	if (w->agent_id) {
		w->hb_due = true;
		w->forecasts_due = true;
	}
	w->want_claim = true;		/* backstop for a missed NOTIFY */
	if (w->tasks.n == 0)
		w->idle_check_due = true;
	ry_worker_check_space(w);
	ry_worker_janitor_tick(w);
	ry_worker_retention_tick(w);
	ry_worker_pump(w);
}

static void arm_lease_timer(struct ry_worker *w)
{
	int64_t ms = w->lease_until_ms - ry_now_ms();
	if (ms < 0)
		ms = 0;
	/* One millisecond late rather than early: the check is exact. */
	ms++;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	evtimer_add(w->lease_timer, &tv);
}

static void lease_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ry_worker *w = arg;
	(void)fd;
	(void)what;
	if (!w->lease_until_ms)
		return;
	if (ry_now_ms() >= w->lease_until_ms)
		ry_worker_lease_expired(w);
	else
		arm_lease_timer(w);	/* woke early (rounding): wait out the rest */
	ry_worker_pump(w);
}

void ry_worker_lease_renewed(struct ry_worker *w, int64_t sent_ms)
{
	/* The database set lease_until = its now() + lease_s when it ran the
	 * statement, which was after we sent it: counting from the sending
	 * makes our deadline the earlier of the two, whatever the clocks. */
	int64_t until = sent_ms + (int64_t)w->cfg.lease_s * 1000;
	if (until <= w->lease_until_ms)
		return;
	w->lease_until_ms = until;
	arm_lease_timer(w);
}

/* A backoff or the housekeeping wait is over: ask the pump again. */
static void pump_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ry_worker_pump(arg);
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
	w->metrics.db_connects++;
	if (w->agent_id) {
		ry_info("reconnected to the database; %zu tasks running, %zu results to report",
			ry_task_table_count(&w->tasks, RY_TASK_RUNNING),
			ry_task_table_count(&w->tasks, RY_TASK_DONE));
		w->hb_due = true;	/* renew the lease before anything else */
	}
	w->want_claim = true;
	w->retry_after_ms = 0;
	ry_worker_probe_start(w);
	ry_worker_pump(w);
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
	if (ry_worker_probe_notified(w, channel, payload))
		return;
	if (strcmp(channel, "railyard_ready") == 0) {
		w->want_claim = true;
	} else if (strcmp(channel, "railyard_cancel") == 0) {
		int64_t pid = strtoll(payload, NULL, 10);
		/* Running, or claimed and not started (a task claimed ahead may
		 * wait a while): learn which to stop or drop. */
		for (int p = RY_TASK_QUEUED; p <= RY_TASK_RUNNING; p++)
			for (struct ry_task *t = ry_task_table_first(&w->tasks, p); t; t = t->next)
				if (t->pipeline_id == pid)
					w->hb_due = true;
	}
	ry_worker_pump(w);
}

/* Claimed tasks not started yet are handed back with their attempt. */
static void hand_back_queued(struct ry_worker *w)
{
	struct ry_task *t;
	while ((t = ry_task_table_first(&w->tasks, RY_TASK_QUEUED))) {
		t->handback = RY_HANDBACK_UNSTARTED;
		ry_task_table_move(&w->tasks, t, RY_TASK_RELEASE, false);
	}
}

/* Stops everything: running tasks are killed (the database requeues them
 * when the agent goes offline), queued ones handed back. */
static void kill_all(struct ry_worker *w)
{
	for (struct ry_task *t = ry_task_table_first(&w->tasks, RY_TASK_RUNNING); t; t = t->next)
		ry_worker_task_kill(t, RY_KILL_SHUTDOWN);
	hand_back_queued(w);
}

static void drain_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ry_worker *w = arg;
	(void)fd;
	(void)what;
	size_t running = ry_task_table_count(&w->tasks, RY_TASK_RUNNING);
	if (running) {
		ry_warn("drain deadline reached: killing %zu running tasks (they will be requeued)",
			running);
		kill_all(w);
		/* Say goodbye if the database lets us, else leave anyway. */
		struct timeval tv = { SHUTDOWN_GRACE_MS / 1000, 0 };
		evtimer_add(w->drain_timer, &tv);
	} else {
		ry_warn("cannot reach the database to finish shutting down: exiting");
		ry_worker_shutdown_now(w, w->exit_code);
	}
	ry_worker_pump(w);
}

static void begin_drain(struct ry_worker *w, int deadline_s)
{
	w->draining = true;
	ry_notify_stopping();
	struct timeval tv = { deadline_s, 0 };
	event_del(w->drain_timer);
	evtimer_add(w->drain_timer, &tv);
	/* Tasks not started yet are handed back rather than begun. */
	hand_back_queued(w);
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
			ry_task_table_count(&w->tasks, RY_TASK_RUNNING), w->cfg.drain_timeout_s);
		w->cfg.exit_when_idle = false;
		begin_drain(w, w->cfg.drain_timeout_s);
	} else {
		ry_warn("%s again: killing %zu running tasks and exiting", strsignal((int)sig),
			ry_task_table_count(&w->tasks, RY_TASK_RUNNING));
		kill_all(w);
		struct timeval tv = { SHUTDOWN_GRACE_MS / 1000, 0 };
		event_del(w->drain_timer);
		evtimer_add(w->drain_timer, &tv);
	}
	ry_worker_pump(w);
}

void ry_worker_set_labels(struct ry_worker *w)
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
	/* A container runtime: tasks with an image require "container". */
	if (w->container_kind) {
		if (!ry_strlist_has(&all, "container"))
			ry_strlist_add(&all, "container");
		if (!ry_strlist_has(&all, w->container_kind))
			ry_strlist_add(&all, w->container_kind);
	}
	free(w->labels_pg);
	w->labels_pg = ry_strlist_to_pg_array(&all);
	ry_strlist_release(&all);
	w->cpu_cap = w->cfg.cpus ? w->cfg.cpus : w->cfg.slots;
	w->mem_cap = w->cfg.mem_mb ? w->cfg.mem_mb : w->host.mem_mb;
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
	if (ok)
		ok = ry_worker_cache_reload(w, &err);
	if (!ok) {
		ry_error("cannot reload configuration, keeping the old one: %s", err);
		free(err);
		ry_config_release(&c);
		ry_notify_ready("reload failed");
		return;
	}
	/* Only what can change under a running agent; db, name, workdir,
	 * cgroup, task_user, task_ids and db_passfile need a restart. */
	ry_strlist_release(&w->cfg.labels);
	w->cfg.labels = c.labels;
	c.labels = (struct ry_strlist){ 0 };
	w->cfg.slots = c.slots;
	w->cfg.claim_ahead = c.claim_ahead;
	w->cfg.claim_ahead_hold_ms = c.claim_ahead_hold_ms;
	ry_worker_queue_configure(w);
	w->cfg.cpus = c.cpus;
	w->cfg.mem_mb = c.mem_mb;
	w->cfg.drain_timeout_s = c.drain_timeout_s;
	/* A longer heartbeat needs the longer lease registered with it, or
	 * other reapers would take the live agent's tasks. */
	w->cfg.lease_s = c.lease_s;
	w->cfg.log_max_mb = c.log_max_mb;
	w->cfg.match_limit = c.match_limit;
	w->cfg.match_depth_limit = c.match_depth_limit;
	w->cfg.min_free_mb = c.min_free_mb;
	w->cfg.retention_s = c.retention_s;
	w->cfg.retention_min_s = c.retention_min_s;
	w->cfg.retention_mb = c.retention_mb;
	w->cfg.retention_check_s = c.retention_check_s;
	free(w->cfg.secrets_dir);
	w->cfg.secrets_dir = c.secrets_dir;
	c.secrets_dir = NULL;
	ry_worker_limit_take_config(&w->cfg, &c);
	ry_worker_memcg_resolve(w);
	if (w->cfg.heartbeat_s != c.heartbeat_s) {
		w->cfg.heartbeat_s = c.heartbeat_s;
		arm_heartbeat(w);
	}
	ry_config_release(&c);
	ry_worker_set_labels(w);
	ry_info("configuration reloaded: slots %d, labels %s, heartbeat %d s, lease %d s",
		w->cfg.slots, w->labels_pg, w->cfg.heartbeat_s, w->cfg.lease_s);
	ry_worker_update_agent(w);
	ry_worker_limit_reload(w);
	w->want_claim = true;
	ry_notify_ready("reloaded");
}

/* ---- lifecycle -------------------------------------------------------- */

struct ry_worker *ry_worker_new(const struct ry_worker_config *cfg, const char *conninfo,
				const char *config_path, const struct ry_strlist *flags)
{
	struct ry_worker *w = ry_calloc(1, sizeof(*w));
	ry_config_copy(&w->cfg, cfg);
	for (size_t i = 0; flags && i < flags->n; i++)
		ry_strlist_add(&w->flags, flags->items[i]);
	w->config_path = config_path ? ry_strdup(config_path) : NULL;
	w->conninfo = ry_strdup(conninfo);
	w->actor = ry_asprintf("worker:%s", w->cfg.name);
	ry_task_table_init(&w->tasks);
	w->lock_fd = -1;
	w->state_dir = ry_asprintf("%s/state", w->cfg.workdir);
	w->pgroups_path = ry_asprintf("%s/%s.pgroups", w->state_dir, w->cfg.name);
	ry_worker_stats_init(&w->stats, w->cfg.stats_path != NULL,
			     (uint64_t)getpid() ^ (uint64_t)ry_wall_us());
	ry_hostinfo_collect(&w->host, w->cfg.workdir);
	if (w->cfg.container_options) {
		/* Split on blanks; empty pieces dropped. */
		char *copy = ry_strdup(w->cfg.container_options);
		for (char *tok = strtok(copy, " \t"); tok; tok = strtok(NULL, " \t"))
			ry_strlist_add(&w->container_options, tok);
		free(copy);
	}
	ry_worker_containers_init(w);
	ry_worker_set_labels(w);
	return w;
}

/*
 * One worker per agent name and workdir: the lock says which processes
 * (tasks, cgroups, journal) are ours to clean up.  Held until exit; the
 * kernel drops it when we die.
 */
static bool take_lock(struct ry_worker *w)
{
	char *err = NULL;
	char *path = ry_asprintf("%s/%s.lock", w->state_dir, w->cfg.name);
	bool ok = false;
	if (!ry_exec_mkdirs_mode(w->state_dir, 0700, &err)) {
		ry_error("%s", err);
		goto out;
	}
	w->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (w->lock_fd < 0) {
		ry_error("cannot open %s: %s", path, strerror(errno));
		goto out;
	}
	if (flock(w->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		char pid[32] = "";
		ssize_t n = pread(w->lock_fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		ry_error("agent name \"%s\" is in use by pid %s with workdir %s (%s is locked); "
			 "give each worker its own --name", w->cfg.name, *pid ? pid : "?",
			 w->cfg.workdir, path);
		goto out;
	}
	char pid[32];
	int len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(w->lock_fd, 0) < 0 || pwrite(w->lock_fd, pid, (size_t)len, 0) < 0)
		ry_warn("cannot write %s: %s", path, strerror(errno));
	ok = true;
out:
	free(err);
	free(path);
	return ok;
}

/* Before anything runs: the containment this host allows, and whatever a
 * previous incarnation of this agent left running (it dies first). */
static void contain(struct ry_worker *w)
{
	char *why = NULL;
	char *name = ry_asprintf("%s-%08llx", w->cfg.name,
				 (unsigned long long)(ry_fnv1a64(w->cfg.workdir, strlen(w->cfg.workdir)) &
						      0xffffffffULL));
	w->cgroot = ry_cgroup_root_open(name, w->cfg.cgroups, &why);
	w->cg_memory = w->cgroot && ry_cgroup_root_has_memory(w->cgroot);
	w->cg_cpu = w->cgroot && ry_cgroup_root_has_cpu(w->cgroot);
	char *record = ry_asprintf("%s/%s.cgroups", w->state_dir, w->cfg.name);
	FILE *f;
	if (w->cgroot) {
		ry_info("tasks run in cgroups (%s) under %s",
			ry_cgroup_mode_name(ry_cgroup_root_mode(w->cgroot)),
			ry_cgroup_root_path(w->cgroot));
		/* What this agent made on the host, for whoever cleans up after
		 * a worker that died and will not come back. */
		char *dirs = ry_cgroup_root_dirs(w->cgroot);
		if ((f = fopen(record, "w"))) {
			fputs(dirs, f);
			fclose(f);
		}
		free(dirs);
	} else {
		ry_warn("tasks run in process groups only (pgroup): %s", why);
		(void)unlink(record);
	}
	free(record);
	/* Orphaned descendants come back to us to be reaped (and, without
	 * cgroups, killed once their task is over). */
	ry_exec_become_subreaper();
	ry_worker_kill_leftovers(w);
	ry_worker_containers_kill_leftovers(w);
	free(why);
	free(name);
}

int ry_worker_run(struct ry_worker *w)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD };
	struct ry_adb_callbacks cbs = { on_connected, on_disconnected, on_notify };

	srandom((unsigned)(getpid() ^ ry_wall_us()));
	signal(SIGPIPE, SIG_IGN);
	if (!take_lock(w) || !ry_worker_isolation_init(w))
		return 1;
	ry_worker_memcg_resolve(w);	/* before contain: the worker may move itself */
	contain(w);
	ry_worker_journal_open(w);
	w->free_mb = -1;
	ry_worker_check_space(w);
	w->base = event_base_new();
	if (!w->base) {
		ry_error("cannot create the event loop");
		return 1;
	}
	for (size_t i = 0; i < RY_ARRAY_SIZE(sigs); i++) {
		w->sigs[i] = evsignal_new(w->base, sigs[i],
					  sigs[i] == SIGCHLD ? ry_worker_sigchld_cb : signal_cb, w);
		evsignal_add(w->sigs[i], NULL);
	}
	if (!ry_worker_cache_open(w))
		return 1;
	w->spawn_ev = event_new(w->base, -1, 0, ry_worker_spawn_cb, w);
	w->queue_timer = evtimer_new(w->base, ry_worker_spawn_cb, w);
	ry_worker_queue_configure(w);
	w->retry_ev = evtimer_new(w->base, pump_cb, w);
	w->background_timer = evtimer_new(w->base, pump_cb, w);
	w->drain_timer = evtimer_new(w->base, drain_timer_cb, w);
	w->hb_timer = event_new(w->base, -1, EV_PERSIST, hb_timer_cb, w);
	w->janitor_ev = event_new(w->base, -1, 0, ry_worker_janitor_cb, w);
	w->lease_timer = evtimer_new(w->base, lease_timer_cb, w);
	arm_heartbeat(w);
	ry_worker_limit_start(w);

	w->db = ry_adb_new(w->base, w->conninfo, w->actor, &cbs, w);
	ry_adb_listen(w->db, "railyard_ready");
	ry_adb_listen(w->db, "railyard_cancel");
	ry_worker_probe_init(w);
	ry_adb_start(w->db);
	ry_worker_httpd_start(w);
	ry_worker_webhooks_start(w);

	event_base_dispatch(w->base);
	if (w->cfg.stats_path) {
		char *err = NULL;
		if (!ry_worker_stats_write(&w->stats, w->cfg.name, w->cfg.stats_path, &err)) {
			ry_warn("%s", err);
			free(err);
		}
	}

	/* Leaving: whatever still runs is stopped (the reaper requeues it),
	 * everything it started included. */
	for (struct ry_task *t = ry_task_table_first(&w->tasks, RY_TASK_RUNNING); t; t = t->next)
		ry_worker_task_kill(t, RY_KILL_SHUTDOWN);
	if (w->cgroot)
		(void)ry_cgroup_root_kill_leftovers(w->cgroot);
	return w->exit_code;
}

void ry_worker_free(struct ry_worker *w)
{
	if (!w)
		return;
	ry_worker_httpd_stop(w);
	ry_worker_webhooks_stop(w);
	ry_worker_probe_release(w);
	ry_adb_free(w->db);
	ry_task_table_release(&w->tasks, ry_worker_task_free);
	ry_worker_cache_close(w);
	for (size_t i = 0; i < RY_ARRAY_SIZE(w->sigs); i++)
		if (w->sigs[i])
			event_free(w->sigs[i]);
	if (w->spawn_ev)
		event_free(w->spawn_ev);
	if (w->queue_timer)
		event_free(w->queue_timer);
	if (w->retry_ev)
		event_free(w->retry_ev);
	if (w->background_timer)
		event_free(w->background_timer);
	if (w->drain_timer)
		event_free(w->drain_timer);
	if (w->hb_timer)
		event_free(w->hb_timer);
	if (w->janitor_ev)
		event_free(w->janitor_ev);
	if (w->lease_timer)
		event_free(w->lease_timer);
	ry_worker_limit_free(w);
	ry_worker_memcg_release(w);
	ry_worker_janitor_release(w);
	ry_cgroup_root_close(w->cgroot);
	ry_worker_isolation_release(w);
	free(w->identity);
	ry_journal_close(w->journal);
	free(w->degraded);
	ry_worker_retention_release(w);
	if (w->lock_fd >= 0)
		close(w->lock_fd);
	free(w->state_dir);
	free(w->pgroups_path);
	ry_worker_containers_release(w);
	if (w->base)
		event_base_free(w->base);
	ry_config_release(&w->cfg);
	ry_strlist_release(&w->flags);
	free(w->config_path);
	free(w->conninfo);
	free(w->actor);
	free(w->labels_pg);
	free(w->container_path);
	ry_strlist_release(&w->container_options);
	free(w);
}
