#include "worker/tasks.h"

#include <stdlib.h>
#include <string.h>

/* Claimed and not finished holds capacity, except a task claimed beyond
 * the free capacity (a cache hit never needs any; one claimed ahead takes
 * it when it starts). */
static bool holds_in(const struct ry_task *t, enum ry_task_phase p)
{
	return (p == RY_TASK_QUEUED || p == RY_TASK_RUNNING) && !t->ahead;
}

/* Queued and claimed ahead: it wants the next free capacity. */
static bool waits_in(const struct ry_task *t, enum ry_task_phase p)
{
	return p == RY_TASK_QUEUED && t->waits_slot;
}

static size_t bucket_of(const struct ry_task_table *tt, int64_t id, int attempt)
{
	uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uint32_t)attempt;
	h ^= h >> 29;
	return (size_t)(h & (tt->nbuckets - 1));
}

static size_t pid_bucket(const struct ry_task_table *tt, pid_t pid)
{
	uint64_t h = (uint64_t)(uint32_t)pid * 0x9e3779b97f4a7c15ULL;
	return (size_t)((h >> 32) & (tt->nbuckets - 1));
}

void ry_task_table_init(struct ry_task_table *tt)
{
	memset(tt, 0, sizeof(*tt));
	tt->nbuckets = 64;
	tt->buckets = ry_calloc(tt->nbuckets, sizeof(*tt->buckets));
	tt->pid_buckets = ry_calloc(tt->nbuckets, sizeof(*tt->pid_buckets));
}

void ry_task_table_release(struct ry_task_table *tt, void (*free_task)(struct ry_task *))
{
	for (int p = 0; p < RY_TASK_NPHASES; p++) {
		struct ry_task *t = tt->lists[p].head;
		while (t) {
			struct ry_task *next = t->next;
			if (free_task)
				free_task(t);
			t = next;
		}
	}
	free(tt->buckets);
	free(tt->pid_buckets);
	memset(tt, 0, sizeof(*tt));
}

/* Counts t in (on) or out of one running sum of capacity, once. */
static void count(bool *counted, bool on, const struct ry_task *t, int *slots, int *cpu,
		  long *mem_mb)
{
	if (*counted == on)
		return;
	int sign = on ? 1 : -1;
	*slots += sign;
	*cpu += sign * t->cpu;
	*mem_mb += sign * (long)t->mem_mb;
	*counted = on;
}

/* Both sums for t in phase p. */
static void recount(struct ry_task_table *tt, struct ry_task *t, enum ry_task_phase p)
{
	count(&t->holds, holds_in(t, p), t, &tt->held_slots, &tt->held_cpu, &tt->held_mem_mb);
	count(&t->waits, waits_in(t, p), t, &tt->waiting_slots, &tt->waiting_cpu,
	      &tt->waiting_mem_mb);
}

static void list_unlink(struct ry_task_list *l, struct ry_task *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		l->head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		l->tail = t->prev;
	t->prev = t->next = NULL;
	l->n--;
}

static void list_link(struct ry_task_list *l, struct ry_task *t, bool front)
{
	if (front) {
		t->prev = NULL;
		t->next = l->head;
		if (l->head)
			l->head->prev = t;
		else
			l->tail = t;
		l->head = t;
	} else {
		t->next = NULL;
		t->prev = l->tail;
		if (l->tail)
			l->tail->next = t;
		else
			l->head = t;
		l->tail = t;
	}
	l->n++;
}

static void grow(struct ry_task_table *tt)
{
	size_t old_n = tt->nbuckets;
	struct ry_task **old = tt->buckets, **old_pid = tt->pid_buckets;
	tt->nbuckets = old_n * 2;
	tt->buckets = ry_calloc(tt->nbuckets, sizeof(*tt->buckets));
	tt->pid_buckets = ry_calloc(tt->nbuckets, sizeof(*tt->pid_buckets));
	for (size_t i = 0; i < old_n; i++) {
		struct ry_task *t = old[i];
		while (t) {
			struct ry_task *next = t->hnext;
			size_t b = bucket_of(tt, t->id, t->attempt);
			t->hnext = tt->buckets[b];
			tt->buckets[b] = t;
			t = next;
		}
		t = old_pid[i];
		while (t) {
			struct ry_task *next = t->pnext;
			size_t b = pid_bucket(tt, t->pid);
			t->pnext = tt->pid_buckets[b];
			tt->pid_buckets[b] = t;
			t = next;
		}
	}
	free(old);
	free(old_pid);
}

static void pid_unlink(struct ry_task_table *tt, struct ry_task *t)
{
	if (!t->pid)
		return;
	struct ry_task **pp = &tt->pid_buckets[pid_bucket(tt, t->pid)];
	while (*pp && *pp != t)
		pp = &(*pp)->pnext;
	if (*pp)
		*pp = t->pnext;
	t->pnext = NULL;
}

void ry_task_table_set_pid(struct ry_task_table *tt, struct ry_task *t, pid_t pid)
{
	pid_unlink(tt, t);
	t->pid = pid;
	if (pid) {
		size_t b = pid_bucket(tt, pid);
		t->pnext = tt->pid_buckets[b];
		tt->pid_buckets[b] = t;
	}
}

struct ry_task *ry_task_table_by_pid(const struct ry_task_table *tt, pid_t pid)
{
	struct ry_task *t = tt->pid_buckets[pid_bucket(tt, pid)];
	while (t && t->pid != pid)
		t = t->pnext;
	return t;
}

void ry_task_table_add(struct ry_task_table *tt, struct ry_task *t, enum ry_task_phase phase)
{
	if (tt->n + 1 > tt->nbuckets)
		grow(tt);
	size_t b = bucket_of(tt, t->id, t->attempt);
	t->hnext = tt->buckets[b];
	tt->buckets[b] = t;
	tt->n++;
	t->phase = phase;
	t->holds = t->waits = false;
	list_link(&tt->lists[phase], t, false);
	recount(tt, t, phase);
}

void ry_task_table_take_slot(struct ry_task_table *tt, struct ry_task *t)
{
	t->ahead = t->waits_slot = false;
	recount(tt, t, t->phase);
}

void ry_task_table_move(struct ry_task_table *tt, struct ry_task *t, enum ry_task_phase phase,
			bool front)
{
	list_unlink(&tt->lists[t->phase], t);
	t->phase = phase;
	list_link(&tt->lists[phase], t, front);
	recount(tt, t, phase);
}

void ry_task_table_remove(struct ry_task_table *tt, struct ry_task *t)
{
	struct ry_task **pp = &tt->buckets[bucket_of(tt, t->id, t->attempt)];
	while (*pp && *pp != t)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = t->hnext;
	t->hnext = NULL;
	pid_unlink(tt, t);
	tt->n--;
	list_unlink(&tt->lists[t->phase], t);
	count(&t->holds, false, t, &tt->held_slots, &tt->held_cpu, &tt->held_mem_mb);
	count(&t->waits, false, t, &tt->waiting_slots, &tt->waiting_cpu, &tt->waiting_mem_mb);
}

struct ry_task *ry_task_table_find(const struct ry_task_table *tt, int64_t id, int attempt)
{
	struct ry_task *t = tt->buckets[bucket_of(tt, id, attempt)];
	while (t && !(t->id == id && t->attempt == attempt))
		t = t->hnext;
	return t;
}

size_t ry_task_table_count(const struct ry_task_table *tt, enum ry_task_phase phase)
{
	return tt->lists[phase].n;
}

struct ry_task *ry_task_table_first(const struct ry_task_table *tt, enum ry_task_phase phase)
{
	return tt->lists[phase].head;
}
