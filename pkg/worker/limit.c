/*
 * The adaptive concurrency limit: every throttle_interval_ms the worker
 * reads its host's pressure and its own memory cgroup's (pkg/agent/pressure),
 * measures what its tasks take and may yet take (task_load: the memory
 * headroom a raise must fit in) and steps the AIMD controller
 * (pkg/throttle); a new limit changes what the claim asks for
 * (ry_worker_slot_limit) and is sent to the agent row by the pump
 * (RY_PUMP_LIMIT → railyard.set_concurrency_limit, which audits turns).
 * Lowering the limit only admits less: nothing running is stopped.
 */
#include "worker/internal.h"

#include "agent/pressure.h"
#include "db/adb.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The configured value, or the throttle's default where it is < 0. */
static void pick(double *dst, double configured)
{
	if (configured >= 0)
		*dst = configured;
}

static void limit_configure(struct ry_worker *w)
{
	struct ry_throttle_config c;
	const struct ry_worker_config *f = &w->cfg;
	ry_throttle_config_default(&c);
	c.min_slots = f->min_slots;
	c.max_slots = f->slots;
	c.interval_ms = f->throttle_interval_ms;
	pick(&c.decrease, f->throttle_decrease);
	pick(&c.cpu_high, f->pressure_cpu_high);
	pick(&c.cpu_low, f->pressure_cpu_low);
	pick(&c.mem_high, f->pressure_memory_high);
	pick(&c.mem_low, f->pressure_memory_low);
	pick(&c.io_high, f->pressure_io_high);
	pick(&c.io_low, f->pressure_io_low);
	pick(&c.avail_low_pct, f->mem_available_low_pct);
	pick(&c.avail_ok_pct, f->mem_available_ok_pct);
	pick(&c.runnable_high, f->runnable_high);
	pick(&c.runnable_low, f->runnable_low);
	c.slow_start = f->throttle_slow_start;
	/* Below the host's cores (or the cpus it offers, if fewer) slow start
	 * would leave CPUs idle while it doubles: 1 slot for the first
	 * interval cost a 12 s CPU-bound overload 6 % of its makespan
	 * (docs/benchmarks.md, placement). */
	c.start_slots = f->throttle_start_slots ? f->throttle_start_slots
		: f->cpus && f->cpus < w->host.cores ? f->cpus : w->host.cores;
	int was = w->throttle.limit;
	bool was_slow = w->throttle.slow;
	ry_throttle_init(&w->throttle, &c);
	/* A reload keeps what was learnt, within the new bounds. */
	if (was > 0 && f->throttle) {
		w->throttle.limit = was < c.min_slots ? c.min_slots : was > c.max_slots ? c.max_slots : was;
		w->throttle.slow = was_slow && c.slow_start;
	}
	w->slot_limit = f->throttle ? w->throttle.limit : f->slots;
	const char *why = "starting";
	if (!f->throttle)
		why = "throttle off";
	else if (w->throttle.slow)
		why = "slow start: from throttle_start_slots, doubling while in use";
	snprintf(w->limit_why, sizeof(w->limit_why), "%s", why);
	w->limit_dirty = true;
}

void ry_worker_limit_note_peak(struct ry_worker *w, long peak_kb)
{
	if (peak_kb <= 0)
		return;
	size_t n = sizeof(w->mem_recent_kb) / sizeof(w->mem_recent_kb[0]);
	w->mem_recent_kb[w->mem_recent_n++ % n] = peak_kb;
}

/*
 * What the tasks held take and may yet take: one more task counts at the
 * largest peak among the last to finish and those running now; each held
 * task may still grow to that peak (a queued one from nothing).  Every
 * peak seen is at most that largest one, so the growth is held x largest
 * less what the running ones have reached.
 */
static void task_load(struct ry_worker *w, struct ry_throttle_load *load)
{
	long each = 0, reached = 0;
	for (size_t i = 0; i < sizeof(w->mem_recent_kb) / sizeof(w->mem_recent_kb[0]); i++)
		if (w->mem_recent_kb[i] > each)
			each = w->mem_recent_kb[i];
	for (struct ry_task *t = ry_task_table_first(&w->tasks, RY_TASK_RUNNING); t; t = t->next) {
		uint64_t peak;
		if (!t->cg || !ry_cgroup_mem_peak(t->cg, &peak))
			continue;
		long kb = (long)(peak >> 10);
		reached += kb;
		if (kb > each)
			each = kb;
	}
	long held = (long)(ry_task_table_count(&w->tasks, RY_TASK_QUEUED) +
			   ry_task_table_count(&w->tasks, RY_TASK_RUNNING));
	load->in_use = w->tasks.held_slots;
	load->task_mem_kb = each;
	load->growth_kb = each * held - reached;
}

/* The throttle moved the limit from old: claim by it and record it. */
static void limit_moved(struct ry_worker *w, int old, bool turned, const char *why)
{
	int lim = w->throttle.limit;
	w->slot_limit = lim;
	snprintf(w->limit_why, sizeof(w->limit_why), "%s", why);
	w->limit_dirty = true;
	w->limit_turned |= turned;
	ry_info("concurrency limit %d -> %d of %d: %s", old, lim, w->cfg.slots, why);
	if (lim > old)
		w->want_claim = true;
	ry_worker_pump(w);
}

static void limit_tick(evutil_socket_t fd, short what, void *arg)
{
	struct ry_worker *w = arg;
	struct ry_pressure_source src = { w->cfg.pressure_dir, w->cfg.meminfo_path,
					  w->cfg.loadavg_path, w->host.cores, w->memcg_dir };
	struct ry_pressure p;
	char *err = NULL, why[sizeof(w->limit_why)];
	bool changed, turned;
	(void)fd;
	(void)what;

	if (!ry_pressure_read(&src, &p, &err)) {
		/* Warn once per different complaint; judge nothing meanwhile. */
		if (!w->pressure_err || strcmp(w->pressure_err, err) != 0) {
			ry_warn("cannot read host pressure: %s", err);
			free(w->pressure_err);
			w->pressure_err = err;
		} else {
			free(err);
		}
		int old = w->throttle.limit;
		if (ry_throttle_blind(&w->throttle, &turned))
			limit_moved(w, old, turned, "pressure unreadable: slots, judging nothing");
		return;
	}
	free(w->pressure_err);
	w->pressure_err = NULL;
	int old = w->throttle.limit;
	struct ry_throttle_load load;
	task_load(w, &load);
	ry_throttle_step(&w->throttle, &p, &load, ry_now_ms(), &changed, &turned, why, sizeof(why));
	if (changed) {
		limit_moved(w, old, turned, why);
	} else if (w->throttle.mem_bound && strcmp(w->limit_why, why) != 0) {
		/* Held below slots by memory, not by pressure: status and the
		 * agent row say so (no log line, no audit row: nothing moved). */
		snprintf(w->limit_why, sizeof(w->limit_why), "%s", why);
		w->limit_dirty = true;
		ry_worker_pump(w);
	}
}

void ry_worker_limit_start(struct ry_worker *w)
{
	limit_configure(w);
	if (!w->cfg.throttle)
		return;
	int ms = w->cfg.throttle_interval_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	w->limit_timer = event_new(w->base, -1, EV_PERSIST, limit_tick, w);
	event_add(w->limit_timer, &tv);
}

void ry_worker_limit_reload(struct ry_worker *w)
{
	if (w->limit_timer) {
		event_free(w->limit_timer);
		w->limit_timer = NULL;
	}
	ry_worker_limit_start(w);
}

void ry_worker_limit_free(struct ry_worker *w)
{
	if (w->limit_timer)
		event_free(w->limit_timer);
	w->limit_timer = NULL;
	free(w->pressure_err);
	w->pressure_err = NULL;
}

/* How task limits are enforced here, for the agent row and status. */
static const char *limits_mode(const struct ry_worker *w)
{
	if (w->cg_memory)
		return w->cg_cpu ? "kernel: cgroup memory and cpu limits, oom from the cgroup's events"
				 : "kernel: cgroup memory limit, oom from the cgroup's events; cpu not limited";
	return "sampled: /proc RSS at each heartbeat (no writable memory cgroup)";
}

static void limit_sent(void *arg, const struct ry_adb_reply *r)
{
	struct ry_worker *w = arg;
	if (ry_worker_job_failed(r, "record the concurrency limit"))
		w->limit_dirty = true;	/* again at the next turn */
	ry_worker_pump(w);
}

void ry_worker_send_limit(struct ry_worker *w)
{
	char agent[24], lim[16], min[16];
	snprintf(agent, sizeof(agent), "%lld", (long long)w->agent_id);
	snprintf(lim, sizeof(lim), "%d", ry_worker_slot_limit(w));
	snprintf(min, sizeof(min), "%d", w->cfg.throttle ? w->throttle.cfg.min_slots : w->cfg.slots);
	const char *p[] = { agent, lim, min, w->limit_why, limits_mode(w) };
	struct ry_adb_job *job = ry_adb_job_new(limit_sent, w);
	ry_adb_job_add(job, "SELECT railyard.set_concurrency_limit($1, $2, $3, $4)", 4, p);
	const char *q[] = { agent, limits_mode(w) };
	ry_adb_job_add(job, "SELECT railyard.set_agent_limits($1, $2)", 2, q);
	ry_adb_submit(w->db, job, RY_ADB_LAST);
	w->limit_dirty = false;
	w->limit_turned = false;
}

static void take_str(char **dst, char **src)
{
	free(*dst);
	*dst = *src;
	*src = NULL;
}

void ry_worker_limit_take_config(struct ry_worker_config *cfg, struct ry_worker_config *c)
{
	cfg->throttle = c->throttle;
	cfg->min_slots = c->min_slots;
	cfg->throttle_slow_start = c->throttle_slow_start;
	cfg->throttle_start_slots = c->throttle_start_slots;
	cfg->throttle_interval_ms = c->throttle_interval_ms;
	cfg->throttle_decrease = c->throttle_decrease;
	cfg->pressure_cpu_high = c->pressure_cpu_high;
	cfg->pressure_cpu_low = c->pressure_cpu_low;
	cfg->pressure_memory_high = c->pressure_memory_high;
	cfg->pressure_memory_low = c->pressure_memory_low;
	cfg->pressure_io_high = c->pressure_io_high;
	cfg->pressure_io_low = c->pressure_io_low;
	cfg->mem_available_low_pct = c->mem_available_low_pct;
	cfg->mem_available_ok_pct = c->mem_available_ok_pct;
	cfg->runnable_high = c->runnable_high;
	cfg->runnable_low = c->runnable_low;
	take_str(&cfg->pressure_dir, &c->pressure_dir);
	take_str(&cfg->meminfo_path, &c->meminfo_path);
	take_str(&cfg->loadavg_path, &c->loadavg_path);
	take_str(&cfg->memory_cgroup, &c->memory_cgroup);
}
