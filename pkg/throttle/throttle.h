/*
 * throttle: the worker's adaptive concurrency limit (AIMD), pure logic.
 *
 * Every interval the worker reads its host's pressure (pkg/agent/pressure)
 * and asks ry_throttle_step() for the limit: multiplicative decrease when
 * any pressure is high, additive increase (one slot) while every pressure
 * is low and the limit is in use, no change in between (the band between
 * the low and high thresholds is what keeps a steady moderate load from
 * oscillating).  Time is passed in, so tests drive it without sleeping.
 * Lowering the limit only admits less: running tasks are never stopped.
 *
 * Two things keep memory-bound work from being admitted faster than the
 * host learns about it.  Slow start: the limit begins at min_slots and
 * doubles per interval (while low and in use) until the first sign of
 * pressure, as TCP's window does, so a burst at start-up cannot fill every
 * slot before one reading was taken.  Memory headroom: a raise admits only
 * as many more tasks as fit above the "ok" share of available memory,
 * counting each at the largest peak the worker measured recently and the
 * growth its running tasks still have to make; PSI and MemAvailable lag
 * a task that is still allocating, the measured peaks do not.
 */
#ifndef RY_THROTTLE_H
#define RY_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One reading of the host (pkg/agent/pressure fills it). */
struct ry_pressure {
	bool have_psi;		/* /proc/pressure (or pressure_dir) was readable */
	double cpu, memory, io;	/* PSI "some avg10", percent */
	bool have_mem;
	long mem_total_kb, mem_available_kb;
	/* The worker's own memory cgroup where it has a limit below MemTotal:
	 * judged beside the host's figures, the worse of the two counts. */
	bool have_memcg;
	long memcg_total_kb, memcg_available_kb;
	bool have_runnable;	/* runnable tasks per core (where PSI is absent) */
	double runnable_per_core;
};

struct ry_throttle_config {
	int min_slots;		/* never below (>= 1) */
	int max_slots;		/* never above: the worker's slots */
	double cpu_high, cpu_low;	/* PSI cpu some avg10, percent */
	double mem_high, mem_low;	/* PSI memory some avg10 */
	double io_high, io_low;		/* PSI io some avg10 */
	double avail_low_pct;	/* MemAvailable under this % of MemTotal: high */
	double avail_ok_pct;	/* ... over this: low (between: moderate) */
	double runnable_high, runnable_low;	/* per core, without PSI */
	double decrease;	/* multiplicative factor, 0 < decrease < 1 */
	int64_t interval_ms;	/* between steps */
	bool slow_start;	/* begin at start_slots and double (else begin at max_slots) */
	int start_slots;	/* where slow start begins, within min..max (0: min_slots):
				 * the host's cores, which CPU-bound tasks fill without pressure */
};

/* What the worker's own tasks hold and are expected to take (limit.c). */
struct ry_throttle_load {
	int in_use;		/* slots held */
	long task_mem_kb;	/* one more task's memory: the largest recent peak (0: unknown) */
	long growth_kb;		/* what running tasks have yet to take to reach that */
};

enum ry_throttle_level { RY_PRESSURE_LOW, RY_PRESSURE_MODERATE, RY_PRESSURE_HIGH };

struct ry_throttle {
	struct ry_throttle_config cfg;
	int limit;
	int last_dir;		/* -1 decreased, +1 increased, 0 not yet */
	bool slow;		/* still in slow start: raises double */
	bool mem_bound;		/* the last step's raise was cut short by memory */
	int64_t last_step_ms;	/* monotonic ms of the last step taken (-1: none) */
};

/* Defaults: thresholds as docs/operations.md "Throttle" gives them. */
void ry_throttle_config_default(struct ry_throttle_config *c);

/* Starts at start_slots (within min..max) in slow start, else at max_slots. */
void ry_throttle_init(struct ry_throttle *t, const struct ry_throttle_config *c);

/*
 * Judges a reading: high if any source is over its high threshold, low if
 * every source is under its low one, moderate otherwise.  Writes the
 * deciding figure in words to why (e.g. "cpu some avg10 82.5 > 70").
 */
enum ry_throttle_level ry_throttle_judge(const struct ry_throttle_config *c,
					 const struct ry_pressure *p, char *why, size_t whylen);

/*
 * How many more tasks fit in memory above the "ok" share of available
 * memory, given the load; INT_MAX when nothing says otherwise (no memory
 * reading or no measured task yet).
 */
int ry_throttle_mem_room(const struct ry_throttle_config *c, const struct ry_pressure *p,
			 const struct ry_throttle_load *load);

/*
 * One step at now_ms: returns the new limit (which is also t->limit).
 * Steps closer together than 95 % of interval_ms change nothing.  *changed says
 * whether the limit moved; *turned whether it moved the other way from the
 * last move (an audit row is due).
 */
int ry_throttle_step(struct ry_throttle *t, const struct ry_pressure *p,
		     const struct ry_throttle_load *load, int64_t now_ms, bool *changed,
		     bool *turned, char *why, size_t whylen);

/*
 * No reading can be had (the pressure files are unreadable): slow start has
 * nothing to learn from, so it ends with the limit at max_slots, where a
 * worker without the throttle runs.  True when the limit moved (*turned as
 * for a step); later unreadable intervals change nothing.
 */
bool ry_throttle_blind(struct ry_throttle *t, bool *turned);

#endif
