/*
 * lookahead.c: the cache lookahead.  A cache hit needs no slot: it is a
 * lookup and a digest check, then a result.  Yet a claim takes only as
 * many tasks as there are free slots, so an all-cached pipeline went
 * `slots` tasks per claim round trip.  With a build cache, a claim also
 * takes up to a window of cacheable tasks beyond the free capacity
 * (pkg/sched's ry_sched_place_ahead); they hold nothing while they are
 * looked up.  A hit finishes as any hit does.  A miss takes a free slot if
 * there is one, else it is handed back unstarted (its attempt given back)
 * for an agent with room, and this worker does not take it ahead again.
 *
 * The window adapts to what the lookups find: one more with each hit, half
 * with each miss, between 0 and cache_lookahead; it starts at 0.  A cold
 * build (every lookup a miss) keeps it near 0, so a busy agent does not
 * hoard work that others could start; a warm one opens it within a few
 * hits.
 */
#include "worker/internal.h"

int ry_worker_ahead_room(const struct ry_worker *w)
{
	if (!w->cache || w->cfg.dry_run)
		return 0;
	int held = 0;
	for (const struct ry_task *t = ry_task_table_first(&w->tasks, RY_TASK_QUEUED); t;
	     t = t->next)
		held += t->ahead;
	return w->ahead_window > held ? w->ahead_window - held : 0;
}

void ry_worker_ahead_note(struct ry_worker *w, bool hit)
{
	if (hit && w->ahead_window < w->cache_cfg.lookahead)
		w->ahead_window++;
	else if (!hit)
		w->ahead_window /= 2;
}

bool ry_worker_ahead_admit(struct ry_worker *w, struct ry_task *t)
{
	if (!t->ahead)
		return true;
	struct ry_sched_capacity free_cap = ry_worker_capacity_free(w);
	if (!w->draining && free_cap.slots > 0 && free_cap.cpu >= t->cpu &&
	    free_cap.mem_mb >= t->mem_mb) {
		ry_task_table_take_slot(&w->tasks, t);
		return true;
	}
	ry_debug("task %s (id %lld): cache miss and no free slot: handed back", t->name,
		 (long long)t->id);
	w->ahead_missed[w->ahead_missed_n++ % RY_ARRAY_SIZE(w->ahead_missed)] = t->id;
	w->metrics.cache_ahead_handed_back++;
	t->handback = RY_HANDBACK_AHEAD_MISS;
	ry_task_table_move(&w->tasks, t, RY_TASK_RELEASE, false);
	ry_worker_pump(w);
	return false;
}
