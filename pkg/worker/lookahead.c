/*
 * lookahead.c: tasks claimed beyond the free capacity.  A claim otherwise
 * takes only as many tasks as there are free slots, so every slot that
 * frees waits a claim's round trips before its next task starts.  Two
 * kinds go beyond; both hold no capacity until they take a slot:
 *
 * The cache lookahead.  A cache hit needs no slot: it is a lookup and a
 * digest check, then a result.  With a build cache, a claim also takes up
 * to a window of cacheable tasks beyond the free capacity (pkg/sched's
 * ry_sched_place_ahead).  A hit finishes as any hit does.  A miss takes a
 * free slot if there is one, else it is handed back unstarted (its
 * attempt given back) for an agent with room, and this worker does not
 * take it ahead again.  The window adapts to what the lookups find: one
 * more with each hit, half with each miss, between 0 and cache_lookahead;
 * it starts at 0.  A cold build (every lookup a miss) keeps it near 0, so
 * a busy agent does not hoard work that others could start; a warm one
 * opens it within a few hits.
 *
 * Claim ahead (claim_ahead > 0).  A claim also queues up to a window of
 * any ready tasks, to start the moment a slot frees: short tasks then
 * follow each other without a round trip in between.  One that has not
 * started claim_ahead_hold_ms after its claim is handed back unstarted
 * (its attempt given back), so a worker busy with long tasks keeps work
 * from an idle agent for that long at most.  The window starts at 1, grows
 * by one with each that starts in time, up to claim_ahead, and halves with
 * each handed back; a task that ran for less than the hold reopens it at 1
 * (slots turn over fast again).  While they wait they have the next free
 * slots: a claim fills only the capacity they leave, or one slot could
 * end up running two.
 *
 * Neither is taken by an agent with scarce labels (pkg/sched).
 */
#include "worker/internal.h"

#include <event2/event.h>

int ry_worker_ahead_room(const struct ry_worker *w)
{
	if (!w->cache || w->cfg.dry_run)
		return 0;
	int held = 0;
	for (const struct ry_task *t = ry_task_table_first(&w->tasks, RY_TASK_QUEUED); t;
	     t = t->next)
		held += t->ahead && !t->waits_slot;
	return w->ahead_window > held ? w->ahead_window - held : 0;
}

void ry_worker_ahead_note(struct ry_worker *w, bool hit)
{
	if (hit && w->ahead_window < w->cache_cfg.lookahead)
		w->ahead_window++;
	else if (!hit)
		w->ahead_window /= 2;
}

/* The pump asks both at every turn: running sums (tasks.c), no scans. */
int ry_worker_queue_room(const struct ry_worker *w)
{
	if (w->cfg.claim_ahead <= 0 || w->draining)
		return 0;
	int waiting = w->tasks.waiting_slots;
	return w->queue_window > waiting ? w->queue_window - waiting : 0;
}

struct ry_sched_capacity ry_worker_capacity_claimable(const struct ry_worker *w)
{
	struct ry_sched_capacity c = ry_worker_capacity_free(w);
	c.slots -= w->tasks.waiting_slots;
	c.cpu -= w->tasks.waiting_cpu;
	c.mem_mb -= w->tasks.waiting_mem_mb;
	c.slots = c.slots > 0 ? c.slots : 0;
	c.cpu = c.cpu > 0 ? c.cpu : 0;
	c.mem_mb = c.mem_mb > 0 ? c.mem_mb : 0;
	return c;
}

void ry_worker_queue_note_run(struct ry_worker *w, int64_t run_ms)
{
	if (w->cfg.claim_ahead > 0 && w->queue_window == 0 && run_ms < w->cfg.claim_ahead_hold_ms)
		w->queue_window = 1;
}

void ry_worker_queue_configure(struct ry_worker *w)
{
	if (w->queue_window > w->cfg.claim_ahead)
		w->queue_window = w->cfg.claim_ahead;
	if (w->queue_window < 1 && w->cfg.claim_ahead > 0)
		w->queue_window = 1;
}

void ry_worker_queue_arm(struct ry_worker *w)
{
	if (!w->tasks.waiting_slots)
		return;
	int64_t first = 0;
	for (const struct ry_task *t = ry_task_table_first(&w->tasks, RY_TASK_QUEUED); t;
	     t = t->next) {
		int64_t due = t->claimed_ms + w->cfg.claim_ahead_hold_ms;
		if (t->waits_slot && (!first || due < first))
			first = due;
	}
	if (!first)
		return;
	int64_t ms = first - ry_now_ms();
	if (ms < 0)
		ms = 0;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000) };
	evtimer_add(w->queue_timer, &tv);
}

static void hand_back(struct ry_worker *w, struct ry_task *t, enum ry_task_handback why)
{
	t->handback = why;
	ry_task_table_move(&w->tasks, t, RY_TASK_RELEASE, false);
	ry_worker_pump(w);
}

bool ry_worker_ahead_admit(struct ry_worker *w, struct ry_task *t)
{
	if (!t->ahead)
		return true;
	struct ry_sched_capacity free_cap = ry_worker_capacity_free(w);
	if (!w->draining && free_cap.slots > 0 && free_cap.cpu >= t->cpu &&
	    free_cap.mem_mb >= t->mem_mb) {
		if (t->waits_slot && w->queue_window < w->cfg.claim_ahead)
			w->queue_window++;
		ry_task_table_take_slot(&w->tasks, t);
		return true;
	}
	if (t->waits_slot) {
		if (w->draining) {
			hand_back(w, t, RY_HANDBACK_UNSTARTED);
			return false;
		}
		if (ry_now_ms() - t->claimed_ms < w->cfg.claim_ahead_hold_ms)
			return false;	/* a later pass: a slot frees, or the timer */
		ry_debug("task %s (id %lld): claimed ahead and no slot freed in %d ms: handed back",
			 t->name, (long long)t->id, w->cfg.claim_ahead_hold_ms);
		w->queue_window /= 2;
		w->metrics.claim_ahead_handed_back++;
		hand_back(w, t, RY_HANDBACK_AHEAD_STALE);
		return false;
	}
	ry_debug("task %s (id %lld): cache miss and no free slot: handed back", t->name,
		 (long long)t->id);
	w->ahead_missed[w->ahead_missed_n++ % RY_ARRAY_SIZE(w->ahead_missed)] = t->id;
	w->metrics.cache_ahead_handed_back++;
	hand_back(w, t, RY_HANDBACK_AHEAD_MISS);
	return false;
}
