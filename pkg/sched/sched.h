/*
 * sched: placement decisions, pure logic (no I/O), unit-tested.
 *
 * The database hands a worker the ready tasks it could run (locked, per
 * team and for its scarce labels: sql/25_placement.sql); sched decides
 * which of them this agent takes now, given what it has free
 * (docs/ARCHITECTURE.md "Placement").
 */
#ifndef RY_SCHED_H
#define RY_SCHED_H

#include <stdbool.h>

#include "core/core.h"

struct ry_sched_capacity {
	int slots;	/* free task slots */
	int cpu;	/* free cpu units */
	long mem_mb;	/* free memory */
};

/* ---- placement: scarce agents, fair share, pools ----------------------- */

/* One locked candidate with what placement compares. */
struct ry_sched_task {
	int64_t id;
	int cpu;
	int mem_mb;
	double eprio;		/* priority plus aging now */
	double rank;		/* critical-path (upward) rank */
	int team;		/* index into ry_sched_input.teams (a task with
				 * another is never taken) */
	int pool;		/* index into ry_sched_input.pools; -1: none */
	bool scarce;		/* needs one of this agent's scarce labels */
	bool cacheable;		/* may be a cache hit: the cache lookahead may take it */
};

struct ry_sched_team {
	double share;		/* dominant share of the farm now, divided by weight */
	double weight;		/* > 0 */
	int room;		/* tasks it may still start (quota); -1: no quota */
};

struct ry_sched_pool {
	int room;		/* capacity left (claim_tasks enforces it again, locked) */
};

/* What a worker with scarce labels keeps for the work that needs them. */
struct ry_sched_protect {
	bool scarce_agent;	/* the agent carries a scarce label */
	int limit;		/* tasks it admits in all (its concurrency limit) */
	int protect;		/* ready tasks that need its scarce labels */
	int generic_held;	/* tasks it holds that need none of them */
	int generic_ready;	/* ready tasks it could run that need none of them */
	int others_free;	/* free slots of the agents without scarce labels */
};

struct ry_sched_input {
	struct ry_sched_capacity free;	/* what the agent has free now */
	const struct ry_sched_task *tasks;
	size_t n;
	struct ry_sched_team *teams;	/* updated as tasks are taken */
	size_t nteams;
	struct ry_sched_pool *pools;	/* updated as tasks are taken */
	size_t npools;
	long farm_cpu;		/* the online farm's cpu units (dominant share) */
	long farm_mem_mb;	/* ... and memory */
	int farm_free;		/* free slots of the other online agents: they
				 * claim alongside this one (the deal) */
	uint64_t seed;		/* the deal's draws */
	struct ry_sched_protect protect;
};

/*
 * How many generic tasks (needing no scarce label) a scarce agent may still
 * take: none while agents without scarce labels have room for the generic
 * work that is ready, and never so many that its last max(1, protect) slots
 * go to generic work (an agent of one slot: its last protect slots, so it
 * runs generic work while no protected work is ready).  An agent without
 * scarce labels: no bound (-1).
 */
int ry_sched_generic_room(const struct ry_sched_protect *p);

/*
 * A task of this agent has finished but its result has not reached the
 * database yet: the shares the database computed still count it as
 * running, although its slot is one of those being filled.  Takes what it
 * adds off its team's share (never below 0); call it after the teams, the
 * farm's size and the weights are set, before ry_sched_place.  Left in,
 * such tasks bias every claim towards the team that did not just finish,
 * and since most finished tasks belong to the heavier team, the split
 * drifts away from the weights (one of the three causes of 3:1 running
 * 67-72 % on two workers: docs/ARCHITECTURE.md "Fair share").
 */
void ry_sched_team_finished(struct ry_sched_input *in, int team, int cpu, int mem_mb);

/*
 * The deal.  Other agents claim at the same time as this one, each blind to
 * the others' uncommitted picks, from the same shares.  Were each to give
 * its slots to the team with the smallest share, they would all pick the
 * same team: with weights 3:1 and 5 + 1 tasks running, two agents freeing
 * a slot each both pick the light team (1/1 < 5/3), and since one task of
 * the light team weighs three of the heavy one's, the split drifts towards
 * it (a cmocka simulation of two blind agents: 0.705 for 0.75).  So when
 * other agents have
 * free slots (farm_free > 0) and two or more teams offer work, placement
 * plans the whole farm's free slots in the greedy order (a team offering its
 * candidates in order, then more like its last) and gives this agent's
 * slots a uniform random draw of the plan's places: each team gets, in
 * expectation, the part of the farm's free slots the plan gives it,
 * whatever the others draw.  The draw only sets how many of this agent's
 * slots each team may take; which of its tasks, in what order, is the
 * greedy order below.  Without others' free slots the choice is exactly
 * the greedy one.
 */

/*
 * Chooses, one at a time, the best candidate that still fits (capacity,
 * team quota, pool room, the generic bound above), updating the teams'
 * shares and rooms and the pools' rooms as it takes.  Best, in order:
 * on a scarce agent, work that needs its scarce labels; the higher aged
 * priority (whole points); the team with the smaller share/weight (fair
 * share); the higher exact aged priority; the higher rank; the best fit
 * (least cpu and memory left over); the lower id; each team at most the
 * places the deal gave it, until no team the deal chose has more that
 * fits (then the rest without it).  Writes the indexes
 * taken to chosen (room for in->n), in the order taken; returns how many.
 */
size_t ry_sched_place(const struct ry_sched_input *in, size_t *chosen);

/*
 * Beyond the free capacity.  After ry_sched_place took k tasks
 * (chosen[0..k)), takes up to `ahead` more, in the same order of
 * preference and within the teams' quotas and the pools' rooms; capacity
 * does not limit them, as they hold none until they start.  With
 * cacheable_only, only cacheable ones (the cache lookahead: a hit
 * finishes without ever holding a slot, a miss takes a free slot or is
 * handed back); else any (claim ahead: queued to start the moment a slot
 * frees).  None on a scarce agent.  Appends to chosen (room for in->n);
 * returns the new total.
 */
size_t ry_sched_place_ahead(const struct ry_sched_input *in, size_t *chosen, size_t k, int ahead,
			    bool cacheable_only);

#endif
