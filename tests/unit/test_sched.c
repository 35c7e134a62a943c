/*
 * Unit tests for pkg/sched: which of the locked candidates an agent takes.
 * Requirements: nothing taken exceeds free slots, cpu or memory; a task too
 * big to fit does not block smaller ones after it.  Placement (ry_sched_place): a scarce agent keeps a slot for its protected
 * work and takes generic work only when agents without scarce labels have
 * no room for it; teams share by weight (dominant share / weight) and stop
 * at their quota; pools stop at their room; ties go priority, share,
 * aged priority, rank, best fit, id.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sched/sched.h"

/* Capacity: slots, cpu and memory are each a limit; a task too big for
 * what is left is passed over and smaller ones behind it still go. */
static void capacity_limits_and_big_tasks(void **state)
{
	(void)state;
	struct ry_sched_team teams[1] = { { 0, 1, -1 } };
	struct ry_sched_task t[64];
	size_t got[64];
	for (int i = 0; i < 64; i++)
		t[i] = (struct ry_sched_task){ .id = i, .cpu = 1 + i % 5, .mem_mb = 64 * (1 + i % 7),
					       .eprio = i % 3, .pool = -1 };
	struct ry_sched_input in = { .free = { 20, 30, 2000 }, .tasks = t, .n = 64, .teams = teams,
				     .nteams = 1, .farm_cpu = 64, .farm_mem_mb = 65536 };
	size_t k = ry_sched_place(&in, got);
	int cpu = 0;
	long mem = 0;
	for (size_t j = 0; j < k; j++) {
		cpu += t[got[j]].cpu;
		mem += t[got[j]].mem_mb;
	}
	assert_true(k > 0 && k <= 20);
	assert_true(cpu <= 30);
	assert_true(mem <= 2000);

	struct ry_sched_task u[3] = {
		{ .id = 10, .cpu = 2, .mem_mb = 100, .eprio = 5, .pool = -1 },
		{ .id = 11, .cpu = 2, .mem_mb = 100, .eprio = 4, .pool = -1 },
		{ .id = 12, .cpu = 1, .mem_mb = 100, .eprio = 3, .pool = -1 },
	};
	in = (struct ry_sched_input){ .free = { 4, 3, 4096 }, .tasks = u, .n = 3, .teams = teams,
				      .nteams = 1, .farm_cpu = 8, .farm_mem_mb = 65536 };
	teams[0] = (struct ry_sched_team){ 0, 1, -1 };
	assert_int_equal(ry_sched_place(&in, got), 2);
	assert_int_equal(u[got[0]].id, 10);
	assert_int_equal(u[got[1]].id, 12);	/* 11 no longer fits; 12 does */
	in.free = (struct ry_sched_capacity){ 0, 8, 4096 };
	assert_int_equal(ry_sched_place(&in, got), 0);	/* no free slot */
	in.free = (struct ry_sched_capacity){ 4, 8, 150 };
	teams[0] = (struct ry_sched_team){ 0, 1, -1 };
	assert_int_equal(ry_sched_place(&in, got), 1);	/* memory is a limit of its own */
	/* A task of a team the input does not list is never taken. */
	u[0].team = 3;
	in.free = (struct ry_sched_capacity){ 4, 8, 4096 };
	assert_int_equal(ry_sched_place(&in, got), 2);
}

/* ---- placement ---------------------------------------------------------- */

#define T(id_, cpu_, mem_, prio_, team_) \
	{ .id = (id_), .cpu = (cpu_), .mem_mb = (mem_), .eprio = (prio_), .team = (team_), .pool = -1 }

static struct ry_sched_input input(const struct ry_sched_task *t, size_t n,
				   struct ry_sched_team *teams, size_t nteams, int slots)
{
	struct ry_sched_input in = {
		.free = { slots, 64, 65536 }, .tasks = t, .n = n, .teams = teams,
		.nteams = nteams, .farm_cpu = 8, .farm_mem_mb = 65536,
	};
	return in;
}

static void scarce_agent_keeps_a_slot_for_protected_work(void **state)
{
	(void)state;
	struct ry_sched_task t[10];
	for (int i = 0; i < 10; i++)
		t[i] = (struct ry_sched_task)T(100 + i, 1, 100, 0, 0);
	struct ry_sched_team teams[1] = { { 0, 1, -1 } };
	size_t got[10];
	struct ry_sched_input in = input(t, 10, teams, 1, 4);
	/* The plain agents are full and a flood is ready: 3 of 4 slots. */
	in.protect = (struct ry_sched_protect){ true, 4, 0, 0, 1000, 0 };
	assert_int_equal(ry_sched_place(&in, got), 3);
	/* Two protected tasks are ready (none offered here): 2 slots stay. */
	in.protect.protect = 2;
	teams[0] = (struct ry_sched_team){ 0, 1, -1 };
	assert_int_equal(ry_sched_place(&in, got), 2);
	/* It already holds 2 generic tasks: 1 more at most. */
	in.protect = (struct ry_sched_protect){ true, 4, 0, 2, 1000, 0 };
	assert_int_equal(ry_sched_place(&in, got), 1);
	/* Plain agents have room for all the generic work: none here. */
	in.protect = (struct ry_sched_protect){ true, 4, 0, 0, 5, 5 };
	assert_int_equal(ry_sched_place(&in, got), 0);
	/* ... room for some: this agent takes only what they cannot. */
	in.protect = (struct ry_sched_protect){ true, 4, 0, 0, 7, 5 };
	assert_int_equal(ry_sched_place(&in, got), 2);
	/* Not a scarce agent: no bound but its capacity. */
	in.protect = (struct ry_sched_protect){ false, 4, 0, 0, 5, 5 };
	assert_int_equal(ry_sched_place(&in, got), 4);
}

/* An agent of one slot whose label is scarce only because few hosts have
 * it: it runs generic work while nothing needing that label is ready, and
 * keeps its slot once something is. */
static void one_slot_scarce_agent_is_not_idle_forever(void **state)
{
	(void)state;
	struct ry_sched_task t[3];
	for (int i = 0; i < 3; i++)
		t[i] = (struct ry_sched_task)T(100 + i, 1, 100, 0, 0);
	struct ry_sched_team teams[1] = { { 0, 1, -1 } };
	size_t got[3];
	struct ry_sched_input in = input(t, 3, teams, 1, 1);
	in.protect = (struct ry_sched_protect){ true, 1, 0, 0, 1000, 0 };
	assert_int_equal(ry_sched_place(&in, got), 1);
	teams[0] = (struct ry_sched_team){ 0, 1, -1 };
	in.protect.protect = 1;
	assert_int_equal(ry_sched_place(&in, got), 0);
	/* Two slots: one stays free even with nothing protected ready. */
	teams[0] = (struct ry_sched_team){ 0, 1, -1 };
	in = input(t, 3, teams, 1, 2);
	in.protect = (struct ry_sched_protect){ true, 2, 0, 0, 1000, 0 };
	assert_int_equal(ry_sched_place(&in, got), 1);
}

static void protected_work_comes_first_on_a_scarce_agent(void **state)
{
	(void)state;
	struct ry_sched_task t[3] = { T(1, 1, 100, 50, 0), T(2, 1, 100, 50, 0), T(3, 1, 100, 0, 0) };
	t[2].scarce = true;
	struct ry_sched_team teams[1] = { { 0, 1, -1 } };
	size_t got[3];
	struct ry_sched_input in = input(t, 3, teams, 1, 2);
	in.protect = (struct ry_sched_protect){ true, 2, 1, 0, 1000, 0 };
	size_t k = ry_sched_place(&in, got);
	/* The GPU task first although its priority is lower (it takes the
	 * protected slot), then generic work in the slot left. */
	assert_int_equal(k, 2);
	assert_int_equal(t[got[0]].id, 3);
	/* Two protected tasks ready, one offered (the other is locked by
	 * another claim): one of 3 slots stays free for it. */
	in.free.slots = 3;
	in.protect = (struct ry_sched_protect){ true, 3, 2, 0, 1000, 0 };
	k = ry_sched_place(&in, got);
	assert_int_equal(k, 2);
	assert_int_equal(t[got[0]].id, 3);
}

/* n tasks of team 0 (ids 1000...) then n of team 1 (ids 2000...), all
 * alike: 1 cpu, 100 MB, priority 0. */
static void two_teams(struct ry_sched_task *t, int n)
{
	for (int i = 0; i < n; i++) {
		t[i] = (struct ry_sched_task)T(1000 + i, 1, 100, 0, 0);
		t[n + i] = (struct ry_sched_task)T(2000 + i, 1, 100, 0, 1);
	}
}

/* Two teams, weights 3 and 1, each with plenty ready: 8 slots from empty
 * split 6/2, and a steady state (one finishes, one starts) stays there. */
static void fair_share_follows_weights(void **state)
{
	(void)state;
	struct ry_sched_task t[32];
	two_teams(t, 16);
	struct ry_sched_team teams[2] = { { 0, 3, -1 }, { 0, 1, -1 } };
	size_t got[32];
	struct ry_sched_input in = input(t, 32, teams, 2, 8);
	size_t k = ry_sched_place(&in, got);
	assert_int_equal(k, 8);
	int a = 0;
	for (size_t j = 0; j < k; j++)
		a += t[got[j]].team == 0;
	assert_int_equal(a, 6);
	/* Steady state: running 6/2; a team-1 task finishes: the free slot
	 * goes back to team 1 (share 1/8 < 6/8/3). */
	teams[0] = (struct ry_sched_team){ 6.0 / 8 / 3, 3, -1 };
	teams[1] = (struct ry_sched_team){ 1.0 / 8, 1, -1 };
	in.free.slots = 1;
	assert_int_equal(ry_sched_place(&in, got), 1);
	assert_int_equal(t[got[0]].team, 1);
	/* ... a team-0 task finishes: back to team 0 (5/8/3 < 2/8). */
	teams[0] = (struct ry_sched_team){ 5.0 / 8 / 3, 3, -1 };
	teams[1] = (struct ry_sched_team){ 2.0 / 8, 1, -1 };
	assert_int_equal(ry_sched_place(&in, got), 1);
	assert_int_equal(t[got[0]].team, 0);
	/* ... the same, seen before the finished team-0 task's result
	 * reached the database: its shares say 6/2, as if it still ran.
	 * Taken at face value the slot goes to team 1 (6/8/3 = 2/8, team 1's
	 * older tasks win the tie); taken off first, it goes back to team 0. */
	for (int i = 0; i < 16; i++)
		t[16 + i].eprio = 0.5;
	teams[0] = (struct ry_sched_team){ 6.0 / 8 / 3, 3, -1 };
	teams[1] = (struct ry_sched_team){ 2.0 / 8, 1, -1 };
	assert_int_equal(ry_sched_place(&in, got), 1);
	assert_int_equal(t[got[0]].team, 1);
	teams[0] = (struct ry_sched_team){ 6.0 / 8 / 3, 3, -1 };
	teams[1] = (struct ry_sched_team){ 2.0 / 8, 1, -1 };
	ry_sched_team_finished(&in, 0, 1, 100);
	assert_true(fabs(teams[0].share - 5.0 / 8 / 3) < 1e-12);
	assert_int_equal(ry_sched_place(&in, got), 1);
	assert_int_equal(t[got[0]].team, 0);
	/* Never below nothing; a team the claim did not see is ignored. */
	ry_sched_team_finished(&in, 1, 8, 100);
	ry_sched_team_finished(&in, 1, 8, 100);
	assert_true(teams[1].share == 0);
	ry_sched_team_finished(&in, -1, 1, 100);
	ry_sched_team_finished(&in, 2, 1, 100);
}

/*
 * Two agents of 4 slots, teams of weights 3 and 1 with plenty ready, tasks
 * of 5-7 ticks.  Each tick the agents that freed slots claim at once, from
 * the same shares (each blind to the other's picks, as two workers'
 * concurrent claim transactions are).  With the deal the running split
 * averages 75/25 over the run; without it (each agent the greedy choice)
 * both give the light team the slot whenever they claim together from
 * 5 + 1 running, and the split falls to about 70/30 (printed).
 */
static double concurrent_split(bool deal)
{
	enum { AGENTS = 2, SLOTS = 4, TICKS = 40000 };
	int running[AGENTS][SLOTS], left[AGENTS][SLOTS];
	uint64_t r = 42;
	long sum_a = 0, sum_all = 0;
	for (int a = 0; a < AGENTS; a++)
		for (int s = 0; s < SLOTS; s++)
			running[a][s] = -1, left[a][s] = 0;
	struct ry_sched_task t[2 * SLOTS];
	two_teams(t, SLOTS);
	for (int tick = 0; tick < TICKS; tick++) {
		int count[2] = { 0, 0 }, free_slots[AGENTS] = { 0 };
		for (int a = 0; a < AGENTS; a++)
			for (int s = 0; s < SLOTS; s++) {
				if (running[a][s] >= 0 && --left[a][s] <= 0)
					running[a][s] = -1;
				if (running[a][s] >= 0)
					count[running[a][s]]++;
				else
					free_slots[a]++;
			}
		int picks[AGENTS][SLOTS];
		size_t k[AGENTS] = { 0 };
		for (int a = 0; a < AGENTS; a++) {
			if (!free_slots[a])
				continue;
			/* the shares every agent sees: farm of 8 cpus */
			struct ry_sched_team teams[2] = { { count[0] / 8.0 / 3, 3, -1 },
							  { count[1] / 8.0, 1, -1 } };
			struct ry_sched_input in = input(t, 2 * SLOTS, teams, 2, free_slots[a]);
			in.farm_free = deal ? free_slots[AGENTS - 1 - a] : 0;
			in.seed = (uint64_t)tick * 2654435761u + (uint64_t)a + 1;
			size_t got[2 * SLOTS];
			k[a] = ry_sched_place(&in, got);
			for (size_t j = 0; j < k[a]; j++)
				picks[a][j] = t[got[j]].team;
		}
		for (int a = 0; a < AGENTS; a++)
			for (int s = 0, j = 0; s < SLOTS && (size_t)j < k[a]; s++)
				if (running[a][s] < 0) {
					r = r * 6364136223846793005ULL + 1442695040888963407ULL;
					running[a][s] = picks[a][j++];
					left[a][s] = 5 + (int)((r >> 33) % 3);
				}
		if (tick >= 100)
			for (int a = 0; a < AGENTS; a++)
				for (int s = 0; s < SLOTS; s++)
					if (running[a][s] >= 0) {
						sum_a += running[a][s] == 0;
						sum_all++;
					}
	}
	return (double)sum_a / (double)sum_all;
}

static void concurrent_claims_keep_the_weights(void **state)
{
	(void)state;
	double split = concurrent_split(true);
	print_message("heavy team's share with the deal: %.3f (greedy alone: %.3f)\n", split,
		      concurrent_split(false));
	assert_true(split > 0.73 && split < 0.77);
}

/* One slot of ours from 5 + 1 running (weights 3:1, 8 cpus), the other
 * agents with farm_free free slots, drawn with seed: the task taken. */
static size_t place_one(const struct ry_sched_task *t, size_t n, int farm_free, uint64_t seed)
{
	struct ry_sched_team teams[2] = { { 5.0 / 8 / 3, 3, -1 }, { 1.0 / 8, 1, -1 } };
	struct ry_sched_input in = input(t, n, teams, 2, 1);
	in.farm_free = farm_free;
	in.seed = seed;
	size_t got[16];
	assert_int_equal(ry_sched_place(&in, got), 1);
	return got[0];
}

/* The deal: reproducible from its seed; without other agents' free slots,
 * or with one team offering, the greedy choice exactly. */
static void the_deal_is_seeded_and_stays_out_of_the_way(void **state)
{
	(void)state;
	struct ry_sched_task t[16];
	two_teams(t, 8);
	for (uint64_t seed = 1; seed < 50; seed++)
		assert_int_equal(place_one(t, 16, 1, seed), place_one(t, 16, 1, seed));
	/* farm_free 0: team 1 (1/8 < 5/8/3), whatever the seed. */
	for (uint64_t seed = 1; seed < 50; seed++)
		assert_int_equal(t[place_one(t, 16, 0, seed)].team, 1);
	/* Both teams' places over many draws: the plan of 2 slots is one
	 * each, so each gets about half of a lone slot. */
	int team1 = 0;
	for (uint64_t seed = 1; seed <= 1000; seed++)
		team1 += t[place_one(t, 16, 1, seed)].team == 1;
	assert_true(team1 > 400 && team1 < 600);
	/* A higher priority is never passed over for the deal: team 0's
	 * priority-1 task goes first whatever is drawn. */
	t[3].eprio = 1;
	for (uint64_t seed = 1; seed < 50; seed++)
		assert_int_equal(t[place_one(t, 16, 3, seed)].id, 1003);
	t[3].eprio = 0;
	/* One team offering (team 1 out of work): the greedy choice, the
	 * same tasks in the same order as without other free slots. */
	size_t got[16], greedy[16];
	for (int farm_free = 0; farm_free <= 4; farm_free += 4) {
		struct ry_sched_team teams[2] = { { 0, 3, -1 }, { 0, 1, -1 } };
		struct ry_sched_input in = input(t, 8, teams, 2, 4);
		in.farm_free = farm_free;
		in.seed = 7;
		assert_int_equal(ry_sched_place(&in, farm_free ? got : greedy), 4);
	}
	for (int j = 0; j < 4; j++)
		assert_int_equal(got[j], greedy[j]);
}

static void priority_outranks_share_and_quota_stops_a_team(void **state)
{
	(void)state;
	struct ry_sched_task t[4] = { T(1, 1, 100, 0, 0), T(2, 1, 100, 5, 1), T(3, 1, 100, 5, 1),
				      T(4, 1, 100, 0, 0) };
	struct ry_sched_team teams[2] = { { 0, 1, -1 }, { 0.9, 1, 1 } };
	size_t got[4];
	struct ry_sched_input in = input(t, 4, teams, 2, 4);
	size_t k = ry_sched_place(&in, got);
	/* Team 1 has the higher priority but a quota of 1: one of its tasks,
	 * then team 0's two. */
	assert_int_equal(k, 3);
	assert_int_equal(t[got[0]].id, 2);
	assert_int_equal(teams[1].room, 0);
	assert_int_equal(t[got[1]].team, 0);
	assert_int_equal(t[got[2]].team, 0);
}

static void pools_stop_at_their_room(void **state)
{
	(void)state;
	struct ry_sched_task t[5];
	for (int i = 0; i < 5; i++) {
		t[i] = (struct ry_sched_task)T(10 + i, 1, 100, 0, 0);
		t[i].pool = i < 4 ? 0 : 1;
	}
	struct ry_sched_team teams[1] = { { 0, 1, -1 } };
	struct ry_sched_pool pools[2] = { { 2 }, { 0 } };
	size_t got[5];
	struct ry_sched_input in = input(t, 5, teams, 1, 8);
	in.pools = pools;
	in.npools = 2;
	assert_int_equal(ry_sched_place(&in, got), 2);
	assert_int_equal(pools[0].room, 0);
	/* A pool index outside the list is never taken. */
	t[0].pool = 7;
	pools[0].room = 5;
	assert_int_equal(ry_sched_place(&in, got), 3);
}

static void ties_go_aged_priority_rank_fit_id(void **state)
{
	(void)state;
	struct ry_sched_task t[5] = { T(5, 1, 100, 1.2, 0), T(4, 1, 100, 1.7, 0), T(3, 1, 100, 1.7, 0),
				      T(2, 4, 100, 1.7, 0), T(1, 1, 100, 1.7, 0) };
	t[2].rank = 9;
	struct ry_sched_team teams[1] = { { 0, 1, -1 } };
	size_t got[5];
	struct ry_sched_input in = input(t, 5, teams, 1, 5);
	in.free.cpu = 8;
	assert_int_equal(ry_sched_place(&in, got), 5);
	/* rank 9 first; then the best fit (4 cpu of 7 left); then ids 1, 4;
	 * the lower aged priority last. */
	int64_t want[5] = { 3, 2, 1, 4, 5 };
	for (int j = 0; j < 5; j++)
		assert_int_equal(t[got[j]].id, want[j]);
	/* A whole point of aged priority outranks everything after it. */
	t[0].eprio = 2.0;
	assert_int_equal(ry_sched_place(&in, got), 5);
	assert_int_equal(t[got[0]].id, 5);
}

/* The cache lookahead: beyond free capacity only cacheable tasks, in the
 * order of preference, within quotas and pools; never on a scarce agent. */
static void lookahead_takes_cacheable_work_beyond_capacity(void **state)
{
	(void)state;
	struct ry_sched_team teams[2] = { { 0, 1, -1 }, { 0, 1, 1 } };
	struct ry_sched_pool pools[1] = { { 1 } };
	struct ry_sched_task t[7] = {
		{ .id = 1, .cpu = 1, .mem_mb = 100, .eprio = 9, .pool = -1, .cacheable = true },
		{ .id = 2, .cpu = 1, .mem_mb = 100, .eprio = 8, .pool = -1 },
		{ .id = 3, .cpu = 8, .mem_mb = 100, .eprio = 7, .pool = -1, .cacheable = true },
		{ .id = 4, .cpu = 1, .mem_mb = 100, .eprio = 6, .pool = 0, .cacheable = true },
		{ .id = 5, .cpu = 1, .mem_mb = 100, .eprio = 5, .pool = 0, .cacheable = true },
		{ .id = 6, .cpu = 1, .mem_mb = 100, .team = 1, .eprio = 4, .pool = -1, .cacheable = true },
		{ .id = 7, .cpu = 1, .mem_mb = 100, .team = 1, .eprio = 3, .pool = -1, .cacheable = true },
	};
	size_t got[8];
	struct ry_sched_input in = { .free = { 1, 2, 4096 }, .tasks = t, .n = 7, .teams = teams,
				     .nteams = 2, .pools = pools, .npools = 1, .farm_cpu = 16,
				     .farm_mem_mb = 65536 };
	size_t k = ry_sched_place(&in, got);
	assert_int_equal(k, 1);
	assert_int_equal(t[got[0]].id, 1);
	/* 2 is not cacheable; 3 is too big for what is free, not for the
	 * lookahead; one of 4 and 5 (a pool of room 1); one of 6 and 7 (a
	 * quota of 1). */
	size_t k2 = ry_sched_place_ahead(&in, got, k, 10, true);
	assert_int_equal(k2, 4);
	assert_int_equal(t[got[1]].id, 3);
	assert_int_equal(t[got[2]].id, 4);
	assert_int_equal(t[got[3]].id, 6);
	assert_int_equal(pools[0].room, 0);
	assert_int_equal(teams[1].room, 0);

	/* The window bounds it; 0 takes nothing more. */
	teams[1].room = -1;
	pools[0].room = 5;
	k = ry_sched_place(&in, got);
	assert_int_equal(ry_sched_place_ahead(&in, got, k, 2, true), k + 2);
	assert_int_equal(ry_sched_place_ahead(&in, got, k, 0, true), k);

	/* A scarce agent takes none beyond its slots. */
	in.protect.scarce_agent = true;
	in.protect.limit = 4;
	in.protect.generic_ready = 7;
	k = ry_sched_place(&in, got);
	assert_int_equal(ry_sched_place_ahead(&in, got, k, 10, true), k);
}

/* Claim ahead: beyond free capacity any task, cacheable or not, in the
 * order of preference, within quotas and pools; never on a scarce agent. */
static void claim_ahead_takes_any_work_beyond_capacity(void **state)
{
	(void)state;
	struct ry_sched_team teams[1] = { { 0, 1, -1 } };
	struct ry_sched_pool pools[1] = { { 1 } };
	struct ry_sched_task t[5] = {
		{ .id = 1, .cpu = 1, .mem_mb = 100, .eprio = 9, .pool = -1 },
		{ .id = 2, .cpu = 1, .mem_mb = 100, .eprio = 8, .pool = 0 },
		{ .id = 3, .cpu = 1, .mem_mb = 100, .eprio = 7, .pool = 0 },
		{ .id = 4, .cpu = 1, .mem_mb = 100, .eprio = 6, .pool = -1, .cacheable = true },
		{ .id = 5, .cpu = 1, .mem_mb = 100, .eprio = 5, .pool = -1 },
	};
	size_t got[6];
	struct ry_sched_input in = { .free = { 1, 1, 4096 }, .tasks = t, .n = 5, .teams = teams,
				     .nteams = 1, .pools = pools, .npools = 1, .farm_cpu = 16,
				     .farm_mem_mb = 65536 };
	size_t k = ry_sched_place(&in, got);
	assert_int_equal(k, 1);
	assert_int_equal(t[got[0]].id, 1);
	/* In order, 3 skipped (the pool's one unit went to 2); the window
	 * bounds it. */
	size_t k2 = ry_sched_place_ahead(&in, got, k, 2, false);
	assert_int_equal(k2, 3);
	assert_int_equal(t[got[1]].id, 2);
	assert_int_equal(t[got[2]].id, 4);
	k2 = ry_sched_place_ahead(&in, got, k2, 10, false);
	assert_int_equal(k2, 4);
	assert_int_equal(t[got[3]].id, 5);

	/* A scarce agent takes none beyond its slots. */
	pools[0].room = 1;
	in.protect.scarce_agent = true;
	in.protect.limit = 4;
	in.protect.generic_ready = 5;
	k = ry_sched_place(&in, got);
	assert_int_equal(ry_sched_place_ahead(&in, got, k, 10, false), k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(capacity_limits_and_big_tasks),
		cmocka_unit_test(scarce_agent_keeps_a_slot_for_protected_work),
		cmocka_unit_test(one_slot_scarce_agent_is_not_idle_forever),
		cmocka_unit_test(protected_work_comes_first_on_a_scarce_agent),
		cmocka_unit_test(fair_share_follows_weights),
		cmocka_unit_test(concurrent_claims_keep_the_weights),
		cmocka_unit_test(the_deal_is_seeded_and_stays_out_of_the_way),
		cmocka_unit_test(priority_outranks_share_and_quota_stops_a_team),
		cmocka_unit_test(pools_stop_at_their_room),
		cmocka_unit_test(ties_go_aged_priority_rank_fit_id),
		cmocka_unit_test(lookahead_takes_cacheable_work_beyond_capacity),
		cmocka_unit_test(claim_ahead_takes_any_work_beyond_capacity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
