/*
 * The janitor: periodic work the loop does a bounded piece at a time, so a
 * worker with thousands of tasks never spends more than a few milliseconds
 * per loop turn on it (one event, re-activated while work remains):
 *
 *   - the memory sweep: each heartbeat, every running task's memory is
 *     checked, SWEEP_PER_TURN tasks per turn (cgroups: OOM kills read from
 *     the cgroup; without a memory cgroup: RSS sampled from /proc);
 *   - the /proc walk (no cgroups): PROCS_PER_TURN processes per turn, to
 *     sum each task's RSS and to kill orphans that came back to the worker
 *     (its subreaper) after their task ended;
 *   - the graveyard: task cgroups that were not empty yet when their task
 *     ended are removed once they are;
 *   - disks: each heartbeat the workdir's free space is measured (statvfs);
 *     below min_free_mb, or after a write failed for lack of space, the
 *     agent is degraded — it takes no new work and says why in its row —
 *     until the space is back.
 */
#include "worker/internal.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define SWEEP_PER_TURN 64
#define PROCS_PER_TURN 256
#define GRAVES_PER_TURN 16

static void again(struct ry_worker *w)
{
	ry_worker_soon(w->janitor_ev);
}

void ry_worker_janitor_tick(struct ry_worker *w)
{
	if (w->ngrave)
		again(w);
	if (!ry_task_table_count(&w->tasks, RY_TASK_RUNNING))
		return;
	if (w->cg_memory) {
		w->sweep_gen++;
		w->sweeping = true;
	} else if (w->scan) {
		w->scan_again = true;
	} else {
		w->scan = ry_exec_scan_start();
		w->scan_seq++;
		w->scan_rss = true;
		for (struct ry_task *t = ry_task_table_first(&w->tasks, RY_TASK_RUNNING); t; t = t->next)
			t->rss_kb = 0;
	}
	again(w);
}

unsigned ry_worker_hunt_orphans(struct ry_worker *w)
{
	/* A walk already under way may have passed the orphan: the next one. */
	if (w->scan) {
		w->scan_again = true;
	} else {
		w->scan = ry_exec_scan_start();
		w->scan_seq++;
	}
	again(w);
	return w->scan ? w->scan_seq + (w->scan_again ? 1 : 0) : w->scan_seq;
}

void ry_worker_bury(struct ry_worker *w, struct ry_cgroup *cg)
{
	if (w->ngrave == w->grave_cap) {
		w->grave_cap = w->grave_cap ? w->grave_cap * 2 : 16;
		w->graveyard = ry_realloc(w->graveyard, w->grave_cap * sizeof(*w->graveyard));
	}
	w->graveyard[w->ngrave++] = cg;
	again(w);
}

/* Which task a process belongs to, when it is not a task's main process. */
static struct ry_task *owner(struct ry_worker *w, pid_t pid)
{
	char *id = ry_exec_proc_env(pid, "RAILYARD_TASK_ID");
	char *att = ry_exec_proc_env(pid, "RAILYARD_ATTEMPT");
	struct ry_task *t = NULL;
	if (id && att)
		t = ry_task_table_find(&w->tasks, strtoll(id, NULL, 10), (int)strtol(att, NULL, 10));
	free(id);
	free(att);
	return t;
}

void ry_worker_scan_visit(struct ry_worker *w, const struct ry_proc_info *pi)
{
	if (w->scan_rss) {
		struct ry_task *t = ry_task_table_by_pid(&w->tasks, pi->pgrp);
		if (t && t->phase == RY_TASK_RUNNING)
			t->rss_kb += pi->rss_kb;
	}
	/* An orphan of a task came back to us (we are its subreaper).  Alive
	 * only while its task runs; anything else is killed, with its group. */
	if (pi->ppid != getpid() || ry_task_table_by_pid(&w->tasks, pi->pid))
		return;
	struct ry_task *t = owner(w, pi->pid);
	if (t && t->phase == RY_TASK_RUNNING && !t->exited)
		return;
	ry_debug("killing process %d left behind by a finished task", (int)pi->pid);
	(void)kill(pi->pid, SIGKILL);
	if (pi->pgrp > 1 && pi->pgrp != getpgrp())
		(void)kill(-pi->pgrp, SIGKILL);
}

static void scan_visit(void *arg, const struct ry_proc_info *pi)
{
	ry_worker_scan_visit(arg, pi);
}

void ry_worker_scan_done(struct ry_worker *w)
{
	if (w->scan_rss)
		for (struct ry_task *t = ry_task_table_first(&w->tasks, RY_TASK_RUNNING); t; t = t->next)
			ry_worker_check_task_memory(w, t);
	ry_exec_scan_free(w->scan);
	w->scan = NULL;
	w->scan_rss = false;
	w->scan_done = w->scan_seq;
	if (w->scan_again) {
		w->scan_again = false;
		w->scan = ry_exec_scan_start();
		w->scan_seq++;
	}
	/* Tasks that waited for this walk to kill what they left behind. */
	struct ry_task *t = ry_task_table_first(&w->tasks, RY_TASK_RUNNING);
	while (t) {
		struct ry_task *next = t->next;
		if (t->exited && t->hunt && t->hunt <= w->scan_done)
			ry_worker_task_try_finalize(w, t);
		t = next;
	}
}

/* A memory sweep step: up to SWEEP_PER_TURN running tasks not yet seen. */
static bool sweep_step(struct ry_worker *w)
{
	int n = 0;
	struct ry_task *t = ry_task_table_first(&w->tasks, RY_TASK_RUNNING);
	while (t && n < SWEEP_PER_TURN) {
		struct ry_task *next = t->next;
		if (t->swept != w->sweep_gen) {
			t->swept = w->sweep_gen;
			ry_worker_check_task_memory(w, t);
			n++;
		}
		t = next;
	}
	return t != NULL;
}

static void graves_step(struct ry_worker *w)
{
	size_t i = 0, done = 0;
	while (i < w->ngrave && done < GRAVES_PER_TURN) {
		struct ry_cgroup *cg = w->graveyard[i];
		done++;
		if (ry_cgroup_remove(cg)) {
			ry_cgroup_free(cg);
			w->graveyard[i] = w->graveyard[--w->ngrave];
		} else {
			ry_cgroup_signal(cg, SIGKILL);
			i++;
		}
	}
}

void ry_worker_janitor_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ry_worker *w = arg;
	(void)fd;
	(void)what;
	bool more = false;
	if (w->sweeping) {
		w->sweeping = sweep_step(w);
		more |= w->sweeping;
	}
	if (w->scan) {
		if (!ry_exec_scan_step(w->scan, PROCS_PER_TURN, scan_visit, w))
			ry_worker_scan_done(w);
		more |= w->scan != NULL;
	}
	more |= ry_worker_retention_step(w);
	/* Graves are retried each heartbeat tick (and after a burial), not
	 * in a tight loop: a dying process needs time, not attention. */
	if (w->ngrave && !more)
		graves_step(w);
	if (more)
		again(w);
	ry_worker_pump(w);
}

void ry_worker_janitor_release(struct ry_worker *w)
{
	ry_exec_scan_free(w->scan);
	w->scan = NULL;
	for (size_t i = 0; i < w->ngrave; i++) {
		ry_cgroup_signal(w->graveyard[i], SIGKILL);
		(void)ry_cgroup_remove(w->graveyard[i]);
		ry_cgroup_free(w->graveyard[i]);
	}
	free(w->graveyard);
	w->graveyard = NULL;
	w->ngrave = 0;
}

/* ---- disks ------------------------------------------------------------- */

static bool is_space_error(int err)
{
	return err == ENOSPC || err == EDQUOT;
}

static void set_degraded(struct ry_worker *w, char *why)
{
	if ((!why && !w->degraded) || (why && w->degraded && strcmp(why, w->degraded) == 0)) {
		free(why);
		return;
	}
	if (why)
		ry_warn("degraded, taking no new work: %s", why);
	else
		ry_info("healthy again (%s): taking work", w->degraded);
	free(w->degraded);
	w->degraded = why;
	if (w->agent_id)
		w->hb_due = true;	/* tell the database now */
	if (!why)
		w->want_claim = true;
}

void ry_worker_check_space(struct ry_worker *w)
{
	struct statvfs vfs;
	if (statvfs(w->cfg.workdir, &vfs) < 0) {
		w->free_mb = -1;
		return;
	}
	w->free_mb = (long)((unsigned long long)vfs.f_bavail * vfs.f_frsize >> 20);
	long need = w->cfg.min_free_mb > 0 ? w->cfg.min_free_mb : 1;
	if (w->free_mb >= need)
		w->space_trouble = false;
	if (w->free_mb < need || w->space_trouble)
		set_degraded(w, ry_asprintf("no space left on device: workdir %s has %ld MB free "
					    "(min_free_mb %d)", w->cfg.workdir, w->free_mb,
					    w->cfg.min_free_mb));
	else
		set_degraded(w, NULL);
}

void ry_worker_space_failed(struct ry_worker *w, int err, const char *what)
{
	if (!is_space_error(err))
		return;
	if (!w->space_trouble)
		ry_warn("%s: %s", what, strerror(err));
	w->space_trouble = true;
	ry_worker_check_space(w);
	if (!w->degraded)	/* a quota statvfs cannot see */
		set_degraded(w, ry_asprintf("%s: %s", what, strerror(err)));
}

char *ry_worker_space_note(struct ry_worker *w)
{
	struct statvfs vfs;
	if (statvfs(w->cfg.workdir, &vfs) < 0)
		return NULL;
	unsigned long long free_b = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
	if (free_b >= (1ULL << 20))
		return NULL;
	w->space_trouble = true;
	ry_worker_check_space(w);
	return ry_asprintf("no space left on device: workdir %s has %llu KB free", w->cfg.workdir,
			   free_b >> 10);
}
