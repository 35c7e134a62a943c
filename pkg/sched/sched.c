#include "sched/sched.h"

#include <math.h>
#include <stdlib.h>

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

size_t ry_sched_place(const struct ry_sched_input *in, size_t *chosen)
{
	struct ry_sched_capacity left = in->free;
	int generic = ry_sched_generic_room(&in->protect);
	bool *taken = ry_calloc(in->n + 1, sizeof(*taken));
	size_t k = 0;

	while (left.slots > 0) {
		size_t best = in->n;
		for (size_t i = 0; i < in->n; i++) {
			const struct ry_sched_task *t = &in->tasks[i];
			if (taken[i] || t->cpu > left.cpu || t->mem_mb > left.mem_mb)
				continue;
			if (t->team < 0 || (size_t)t->team >= in->nteams || in->teams[t->team].room == 0)
				continue;
			if (t->pool >= 0 && ((size_t)t->pool >= in->npools || in->pools[t->pool].room <= 0))
				continue;
			if (!t->scarce && generic == 0)
				continue;
			if (best == in->n || compare(in, &left, t, &in->tasks[best]) < 0)
				best = i;
		}
		if (best == in->n)
			break;
		const struct ry_sched_task *t = &in->tasks[best];
		taken[best] = true;
		chosen[k++] = best;
		left.slots--;
		left.cpu -= t->cpu;
		left.mem_mb -= t->mem_mb;
		struct ry_sched_team *tm = &in->teams[t->team];
		double cpu = in->farm_cpu > 0 ? (double)t->cpu / (double)in->farm_cpu : 0;
		double mem = in->farm_mem_mb > 0 ? (double)t->mem_mb / (double)in->farm_mem_mb : 0;
		tm->share += (cpu > mem ? cpu : mem) / (tm->weight > 0 ? tm->weight : 1);
		if (tm->room > 0)
			tm->room--;
		if (t->pool >= 0)
			in->pools[t->pool].room--;
		if (!t->scarce && generic > 0)
			generic--;
	}
	free(taken);
	return k;
}
