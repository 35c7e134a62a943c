#include "throttle/throttle.h"

#include <limits.h>
#include <stdio.h>

void ry_throttle_config_default(struct ry_throttle_config *c)
{
	*c = (struct ry_throttle_config){
		.min_slots = 1, .max_slots = 1,
		.cpu_high = 70, .cpu_low = 30,
		.mem_high = 10, .mem_low = 1,
		.io_high = 50, .io_low = 10,
		.avail_low_pct = 10, .avail_ok_pct = 20,
		.runnable_high = 2.0, .runnable_low = 1.0,
		.decrease = 0.5, .interval_ms = 2000, .slow_start = true,
	};
}

void ry_throttle_init(struct ry_throttle *t, const struct ry_throttle_config *c)
{
	t->cfg = *c;
	if (t->cfg.min_slots < 1)
		t->cfg.min_slots = 1;
	if (t->cfg.max_slots < t->cfg.min_slots)
		t->cfg.max_slots = t->cfg.min_slots;
	t->slow = t->cfg.slow_start;
	t->mem_bound = false;
	int start = t->cfg.start_slots < t->cfg.min_slots ? t->cfg.min_slots : t->cfg.start_slots;
	if (start > t->cfg.max_slots)
		start = t->cfg.max_slots;
	t->limit = t->slow ? start : t->cfg.max_slots;
	t->last_dir = 0;
	t->last_step_ms = -1;
}

/* Folds one source in: high wins over moderate over low. */
static void fold(enum ry_throttle_level *lvl, double v, double high, double low, const char *what,
		 char *why, size_t whylen)
{
	if (v > high) {
		if (*lvl != RY_PRESSURE_HIGH)
			snprintf(why, whylen, "%s %.1f > %g", what, v, high);
		*lvl = RY_PRESSURE_HIGH;
	} else if (v >= low && *lvl == RY_PRESSURE_LOW) {
		snprintf(why, whylen, "%s %.1f between %g and %g", what, v, low, high);
		*lvl = RY_PRESSURE_MODERATE;
	}
}

/* Folds available memory in: less available is more pressure. */
static void fold_avail(const struct ry_throttle_config *c, enum ry_throttle_level *lvl,
		       long avail_kb, long total_kb, const char *what, char *why, size_t whylen)
{
	if (total_kb <= 0)
		return;
	double avail = 100.0 * (double)avail_kb / (double)total_kb;
	if (avail < c->avail_low_pct) {
		if (*lvl != RY_PRESSURE_HIGH)
			snprintf(why, whylen, "%s %.1f%% < %g%%", what, avail, c->avail_low_pct);
		*lvl = RY_PRESSURE_HIGH;
	} else if (avail <= c->avail_ok_pct && *lvl == RY_PRESSURE_LOW) {
		snprintf(why, whylen, "%s %.1f%% between %g%% and %g%%", what, avail, c->avail_low_pct,
			 c->avail_ok_pct);
		*lvl = RY_PRESSURE_MODERATE;
	}
}

enum ry_throttle_level ry_throttle_judge(const struct ry_throttle_config *c,
					 const struct ry_pressure *p, char *why, size_t whylen)
{
	enum ry_throttle_level lvl = RY_PRESSURE_LOW;
	snprintf(why, whylen, "no pressure");
	if (p->have_psi) {
		fold(&lvl, p->cpu, c->cpu_high, c->cpu_low, "cpu some avg10", why, whylen);
		fold(&lvl, p->memory, c->mem_high, c->mem_low, "memory some avg10", why, whylen);
		fold(&lvl, p->io, c->io_high, c->io_low, "io some avg10", why, whylen);
	} else if (p->have_runnable) {
		fold(&lvl, p->runnable_per_core, c->runnable_high, c->runnable_low,
		     "runnable per core", why, whylen);
	}
	if (p->have_mem)
		fold_avail(c, &lvl, p->mem_available_kb, p->mem_total_kb, "MemAvailable", why, whylen);
	if (p->have_memcg)
		fold_avail(c, &lvl, p->memcg_available_kb, p->memcg_total_kb, "memory cgroup available",
			   why, whylen);
	return lvl;
}

/* Tasks of task_kb that fit in avail_kb above the ok share of total_kb
 * after growth_kb. */
static int room_in(const struct ry_throttle_config *c, long avail_kb, long total_kb, long growth_kb,
		   long task_kb)
{
	double keep = c->avail_ok_pct / 100.0 * (double)total_kb;
	double room = (double)avail_kb - keep - (double)growth_kb;
	if (room <= 0)
		return 0;
	double n = room / (double)task_kb;
	return n >= INT_MAX ? INT_MAX : (int)n;
}

int ry_throttle_mem_room(const struct ry_throttle_config *c, const struct ry_pressure *p,
			 const struct ry_throttle_load *load)
{
	int room = INT_MAX, r;
	if (load->task_mem_kb <= 0)
		return room;
	if (p->have_mem && p->mem_total_kb > 0 &&
	    (r = room_in(c, p->mem_available_kb, p->mem_total_kb, load->growth_kb,
			 load->task_mem_kb)) < room)
		room = r;
	if (p->have_memcg && p->memcg_total_kb > 0 &&
	    (r = room_in(c, p->memcg_available_kb, p->memcg_total_kb, load->growth_kb,
			 load->task_mem_kb)) < room)
		room = r;
	return room;
}

/* The raise a low reading allows: double in slow start, else one slot;
 * no further than slots or than what fits in memory. */
static int raise_to(struct ry_throttle *t, const struct ry_pressure *p,
		    const struct ry_throttle_load *load, char *why, size_t whylen)
{
	int want = t->slow ? t->limit * 2 : t->limit + 1;
	if (want > t->cfg.max_slots)
		want = t->cfg.max_slots;
	int room = ry_throttle_mem_room(&t->cfg, p, load);
	if (want - t->limit > room) {
		/* Memory decides from here: growing faster would overshoot it. */
		t->slow = false;
		t->mem_bound = true;
		snprintf(why, whylen, "memory: room for %d more task%s of %ld MB above %g%% available",
			 room, room == 1 ? "" : "s", load->task_mem_kb / 1024, t->cfg.avail_ok_pct);
		want = t->limit + room;
	}
	return want;
}

/* Records a move to next (a turn when the direction changes). */
static bool move_to(struct ry_throttle *t, int next, bool *turned)
{
	*turned = false;
	if (next == t->limit)
		return false;
	int dir = next < t->limit ? -1 : 1;
	*turned = dir != t->last_dir;
	t->last_dir = dir;
	t->limit = next;
	return true;
}

bool ry_throttle_blind(struct ry_throttle *t, bool *turned)
{
	*turned = false;
	if (!t->slow)
		return false;
	t->slow = false;
	return move_to(t, t->cfg.max_slots, turned);
}

int ry_throttle_step(struct ry_throttle *t, const struct ry_pressure *p,
		     const struct ry_throttle_load *load, int64_t now_ms, bool *changed,
		     bool *turned, char *why, size_t whylen)
{
	*changed = false;
	*turned = false;
	t->mem_bound = false;
	/* 5 % early still counts: the caller's timer of the same interval
	 * may fire a little before it, and skipping would double the step. */
	if (t->last_step_ms >= 0 &&
	    now_ms - t->last_step_ms < t->cfg.interval_ms - t->cfg.interval_ms / 20) {
		snprintf(why, whylen, "within the interval");
		return t->limit;
	}
	t->last_step_ms = now_ms;
	int next = t->limit;
	enum ry_throttle_level lvl = ry_throttle_judge(&t->cfg, p, why, whylen);
	if (lvl != RY_PRESSURE_LOW)
		t->slow = false;	/* the first sign of pressure ends slow start */
	switch (lvl) {
	case RY_PRESSURE_HIGH:
		next = (int)((double)t->limit * t->cfg.decrease);
		if (next >= t->limit)
			next = t->limit - 1;
		if (next < t->cfg.min_slots)
			next = t->cfg.min_slots;
		break;
	case RY_PRESSURE_LOW:
		/* Only a limit in use is raised: an idle worker learns nothing
		 * about how much more its host takes. */
		if (load->in_use >= t->limit && t->limit < t->cfg.max_slots)
			next = raise_to(t, p, load, why, whylen);
		break;
	case RY_PRESSURE_MODERATE:
		break;
	}
	*changed = move_to(t, next, turned);
	return t->limit;
}
