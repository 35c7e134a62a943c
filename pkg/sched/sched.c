#include "sched/sched.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ry_sched_generic_room(const struct ry_sched_protect *p)
{
	if (!p->scarce_agent)
		return -1;
	/* One slot stays free for protected work that may come, unless the
	 * agent has only one: it would never run anything while none is ready
	 * (a label can be scarce merely because few hosts have podman).
	 * The task_waits view's `holds` (sql/40_views.sql) says the same in
	 * SQL, so "why does it wait" agrees with what claims do. */
	int keep = p->protect > 1 ? p->protect : p->limit > 1 ? 1 : p->protect;
	int room = p->limit - keep - p->generic_held;
	int unplaced = p->generic_ready - p->others_free;
	if (unplaced < room)
		room = unplaced;
	return room > 0 ? room : 0;
}

/* Memory and cpu left over after taking t, as shares of what is free. */
static double leftover(const struct ry_sched_capacity *left, const struct ry_sched_task *t)
{
	double cpu = left->cpu > 0 ? (double)(left->cpu - t->cpu) / left->cpu : 0;
	double mem = left->mem_mb > 0 ? (double)(left->mem_mb - t->mem_mb) / (double)left->mem_mb : 0;
	return cpu + mem;
}

/* < 0: a is better than b. */
static int compare(const struct ry_sched_input *in, const struct ry_sched_capacity *left,
		   const struct ry_sched_task *a, const struct ry_sched_task *b)
{
	if (in->protect.scarce_agent && a->scarce != b->scarce)
		return a->scarce ? -1 : 1;
	double pa = floor(a->eprio), pb = floor(b->eprio);
	if (pa != pb)
		return pa > pb ? -1 : 1;
	double sa = in->teams[a->team].share, sb = in->teams[b->team].share;
	if (a->team != b->team && fabs(sa - sb) > 1e-12)
		return sa < sb ? -1 : 1;
	if (a->eprio != b->eprio)
		return a->eprio > b->eprio ? -1 : 1;
	if (a->rank != b->rank)
		return a->rank > b->rank ? -1 : 1;
	double la = leftover(left, a), lb = leftover(left, b);
	if (la != lb)
		return la < lb ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

/* What one task of cpu and mem_mb adds to its team's share/weight. */
static double task_share(const struct ry_sched_input *in, const struct ry_sched_team *tm,
			 int cpu, int mem_mb)
{
	double c = in->farm_cpu > 0 ? (double)cpu / (double)in->farm_cpu : 0;
	double m = in->farm_mem_mb > 0 ? (double)mem_mb / (double)in->farm_mem_mb : 0;
	return (c > m ? c : m) / (tm->weight > 0 ? tm->weight : 1);
}

void ry_sched_team_finished(struct ry_sched_input *in, int team, int cpu, int mem_mb)
{
	if (team < 0 || (size_t)team >= in->nteams)
		return;
	struct ry_sched_team *tm = &in->teams[team];
	tm->share -= task_share(in, tm, cpu, mem_mb);
	if (tm->share < 0)
		tm->share = 0;
}

/* Whether t's team has room under its quota and its pool has room. */
static bool has_room(const struct ry_sched_input *in, const struct ry_sched_task *t)
{
	if (t->team < 0 || (size_t)t->team >= in->nteams || in->teams[t->team].room == 0)
		return false;
	return t->pool < 0 || ((size_t)t->pool < in->npools && in->pools[t->pool].room > 0);
}

/* Whether t may be taken now: it fits what is left, and has_room. */
static bool admissible(const struct ry_sched_input *in, const struct ry_sched_capacity *left,
		       const struct ry_sched_task *t)
{
	return t->cpu <= left->cpu && t->mem_mb <= left->mem_mb && has_room(in, t);
}

/* What taking t changes for the next choice: its team's share and quota
 * room, its pool's room. */
static void count_taken(const struct ry_sched_input *in, const struct ry_sched_task *t)
{
	struct ry_sched_team *tm = &in->teams[t->team];
	tm->share += task_share(in, tm, t->cpu, t->mem_mb);
	if (tm->room > 0)
		tm->room--;
	if (t->pool >= 0)
		in->pools[t->pool].room--;
}

/* xorshift64*: the deal's draws, from the caller's seed. */
static uint64_t next_draw(uint64_t *state)
{
	uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ULL;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/* A team's candidates in the order it would offer them (share aside). */
static int by_offer(const void *pa, const void *pb)
{
	const struct ry_sched_task *a = *(const struct ry_sched_task *const *)pa;
	const struct ry_sched_task *b = *(const struct ry_sched_task *const *)pb;
	double fa = floor(a->eprio), fb = floor(b->eprio);
	if (fa != fb)
		return fa > fb ? -1 : 1;
	if (a->eprio != b->eprio)
		return a->eprio > b->eprio ? -1 : 1;
	if (a->rank != b->rank)
		return a->rank > b->rank ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

/*
 * The deal's plan (see sched.h): fills up to total free slots of the farm,
 * ours and the others', one at a time as the greedy order would, a team
 * offering its candidates in order and, once out of them, more like its
 * last.  Writes each place's team to plan and its priority (whole points)
 * to level; returns how many places, or 0 when fewer than two teams offer.
 */
static int plan_farm(const struct ry_sched_input *in, int total, int *plan, double *level)
{
	size_t nt = in->nteams, n = 0, offering = 0;
	const struct ry_sched_task **order = ry_calloc(in->n + 1, sizeof(*order));
	for (size_t i = 0; i < in->n; i++)
		if (!in->tasks[i].scarce && admissible(in, &in->free, &in->tasks[i]))
			order[n++] = &in->tasks[i];
	qsort(order, n, sizeof(*order), by_offer);
	/* Per team: its candidates in offer order (by_team[first .. first +
	 * count)), how many the plan took; what the plan has of its share and
	 * quota. */
	const struct ry_sched_task **by_team = ry_calloc(n + 1, sizeof(*by_team));
	size_t *first = ry_calloc(nt, sizeof(*first)), *count = ry_calloc(nt, sizeof(*count));
	size_t *took = ry_calloc(nt, sizeof(*took));
	double *share = ry_calloc(nt, sizeof(*share));
	int *room = ry_calloc(nt, sizeof(*room)), np = 0;
	for (size_t i = 0; i < n; i++)
		count[order[i]->team]++;
	for (size_t j = 0, at = 0; j < nt; j++) {
		first[j] = at;
		at += count[j];
		share[j] = in->teams[j].share;
		room[j] = in->teams[j].room;
		offering += count[j] > 0;
	}
	for (size_t i = 0; i < n; i++)
		by_team[first[order[i]->team] + took[order[i]->team]++] = order[i];
	memset(took, 0, nt * sizeof(*took));
	while (offering >= 2 && np < total) {
		int pick = -1;
		const struct ry_sched_task *pt = NULL;
		for (size_t j = 0; j < nt; j++) {
			if (!count[j] || room[j] == 0)
				continue;
			const struct ry_sched_task *c =
				by_team[first[j] + (took[j] < count[j] ? took[j] : count[j] - 1)];
			if (pick >= 0) {
				double fc = floor(c->eprio), fp = floor(pt->eprio);
				if (fc < fp || (fc == fp && share[j] > share[pick] - 1e-12))
					continue;
			}
			pick = (int)j;
			pt = c;
		}
		if (pick < 0)
			break;
		level[np] = floor(pt->eprio);
		plan[np++] = pick;
		took[pick]++;
		share[pick] += task_share(in, &in->teams[pick], pt->cpu, pt->mem_mb);
		if (room[pick] > 0)
			room[pick]--;
	}
	free(order);
	free(by_team);
	free(first);
	free(count);
	free(took);
	free(share);
	free(room);
	return np;
}

/*
 * Our slots' places in the plan: its places come in falling priority; a
 * priority's places go to us whole while our slots last, and those of the
 * priority where they run out by a uniform draw.  Returns how many places
 * each of the nteams teams got.
 */
static int *draw_places(int *plan, const double *level, int np, int slots, size_t nteams,
			uint64_t *draws)
{
	int *quota = ry_calloc(nteams, sizeof(*quota));
	for (int start = 0, want = slots; start < np && want > 0;) {
		int end = start;
		while (end < np && level[end] == level[start])
			end++;
		for (int d = start; d < end && want > 0; d++, want--) {
			int r = d + (int)(next_draw(draws) % (uint64_t)(end - d));
			int tmp = plan[d];
			plan[d] = plan[r];
			plan[r] = tmp;
			quota[plan[d]]++;
		}
		start = end;
	}
	return quota;
}

/* The deal (see sched.h): how many of our slots each team may take, or
 * NULL when there is nothing to deal (no other free slots, one team). */
static int *deal(const struct ry_sched_input *in, uint64_t *draws)
{
	enum { PLAN_MAX = 4096 };
	if (in->farm_free <= 0 || in->nteams < 2 || in->free.slots <= 0)
		return NULL;
	int total = in->free.slots + (in->farm_free < PLAN_MAX ? in->farm_free : PLAN_MAX);
	int *plan = ry_calloc((size_t)total, sizeof(*plan));
	double *level = ry_calloc((size_t)total, sizeof(*level));
	int np = plan_farm(in, total, plan, level);
	int *quota = np > 0 ? draw_places(plan, level, np, in->free.slots, in->nteams, draws) : NULL;
	free(plan);
	free(level);
	return quota;
}

size_t ry_sched_place(const struct ry_sched_input *in, size_t *chosen)
{
	struct ry_sched_capacity left = in->free;
	int generic = ry_sched_generic_room(&in->protect);
	bool *taken = ry_calloc(in->n + 1, sizeof(*taken));
	uint64_t draws = in->seed;
	int *quota = deal(in, &draws);
	size_t k = 0;

	while (left.slots > 0) {
		size_t best = in->n;
		bool held = false;	/* something admissible waits only for the deal */
		for (size_t i = 0; i < in->n; i++) {
			const struct ry_sched_task *t = &in->tasks[i];
			if (taken[i] || !admissible(in, &left, t))
				continue;
			if (!t->scarce && generic == 0)
				continue;
			if (quota && !t->scarce && quota[t->team] == 0) {
				held = true;
				continue;
			}
			if (best == in->n || compare(in, &left, t, &in->tasks[best]) < 0)
				best = i;
		}
		if (best == in->n && held) {
			/* The deal's teams have no more that fits: the rest by the
			 * greedy order, as without one. */
			free(quota);
			quota = NULL;
			continue;
		}
		if (best == in->n)
			break;
		const struct ry_sched_task *t = &in->tasks[best];
		taken[best] = true;
		chosen[k++] = best;
		left.slots--;
		left.cpu -= t->cpu;
		left.mem_mb -= t->mem_mb;
		count_taken(in, t);
		if (!t->scarce && generic > 0)
			generic--;
		if (quota && !t->scarce)
			quota[t->team]--;
	}
	free(quota);
	free(taken);
	return k;
}

size_t ry_sched_place_ahead(const struct ry_sched_input *in, size_t *chosen, size_t k, int ahead,
			    bool cacheable_only)
{
	/* Not on a scarce agent: what it takes beyond its slots would be
	 * generic work that agents without its labels are there for. */
	if (ahead <= 0 || in->protect.scarce_agent)
		return k;
	bool *taken = ry_calloc(in->n + 1, sizeof(*taken));
	for (size_t i = 0; i < k; i++)
		taken[chosen[i]] = true;
	/* Capacity does not limit these (they hold none until they start), so
	 * best fit compares against what the agent had free. */
	for (; ahead > 0; ahead--) {
		size_t best = in->n;
		for (size_t i = 0; i < in->n; i++) {
			const struct ry_sched_task *t = &in->tasks[i];
			if (taken[i] || (cacheable_only && !t->cacheable) || !has_room(in, t))
				continue;
			if (best == in->n || compare(in, &in->free, t, &in->tasks[best]) < 0)
				best = i;
		}
		if (best == in->n)
			break;
		taken[best] = true;
		chosen[k++] = best;
		count_taken(in, &in->tasks[best]);
	}
	free(taken);
	return k;
}
