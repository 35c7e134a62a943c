/*
 * sched: placement decisions, pure logic (no I/O), unit-tested.
 *
 * The database hands a worker the ready tasks it could run, best first
 * (priority, upward rank, age); sched decides which of them this agent takes
 * now, given what it has free.
 */
#ifndef RY_SCHED_H
#define RY_SCHED_H

#include "core/core.h"

struct ry_sched_capacity {
	int slots;	/* free task slots */
	int cpu;	/* free cpu units */
	long mem_mb;	/* free memory */
};

struct ry_sched_candidate {
	int64_t id;
	int cpu;
	int mem_mb;
};

/*
 * Walks the candidates in order and takes each one that still fits the
 * capacity left (first fit in priority order: a big task that does not fit
 * does not block smaller ones behind it).  Writes the indexes taken to
 * chosen (room for n) and returns how many.
 */
size_t ry_sched_choose(const struct ry_sched_capacity *free_cap,
		       const struct ry_sched_candidate *c, size_t n, size_t *chosen);

#endif
