/*
 * Retention: the workspaces (workdir/pipelines/<id>) and logs
 * (workdir/logs/<id>) of finished pipelines are removed
 *   - once the pipeline finished retention_s ago;
 *   - sooner, oldest first, while everything kept exceeds retention_mb —
 *     but never before retention_min_s after the pipeline finished;
 *   - never while the pipeline may still run (the database says whether it
 *     finished: railyard.pipelines_finished), nor while this worker holds
 *     any of its tasks.
 * A pipeline the database does not know (deleted) goes once its directory
 * is older than retention_s.
 *
 * Every retention_check_s the janitor walks through these phases, a
 * bounded piece per loop turn: list the directories, ask the database,
 * measure (only with a size cap), decide, remove.
 */
#include "worker/internal.h"

#include "db/pgarray.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LIST_PER_TURN 512
#define WALK_PER_TURN 512

struct ry_retention_dir {
	int64_t pipeline_id;
	time_t mtime;
	bool known;		/* the database has the pipeline */
	double finished_ago;	/* seconds; < 0 while not finished */
	uint64_t bytes;
	bool remove;
};

static char *pipeline_path(const struct ry_worker *w, int64_t id)
{
	return ry_asprintf("%s/pipelines/%lld", w->cfg.workdir, (long long)id);
}

static char *log_path(const struct ry_worker *w, int64_t id)
{
	return ry_asprintf("%s/logs/%lld", w->cfg.workdir, (long long)id);
}

static void reset(struct ry_retention *r)
{
	if ((DIR *)r->listing)
		closedir((DIR *)r->listing);
	if (r->fts)
		fts_close((FTS *)r->fts);
	free(r->dirs);
	memset(r, 0, sizeof(*r));
}

void ry_worker_retention_tick(struct ry_worker *w)
{
	struct ry_retention *r = &w->retention;
	if (!w->cfg.retention_check_s || r->phase != RY_RET_IDLE ||
	    ry_now_ms() < r->next_ms)
		return;
	r->next_ms = ry_now_ms() + (int64_t)w->cfg.retention_check_s * 1000;
	char *dir = ry_asprintf("%s/pipelines", w->cfg.workdir);
	r->listing = opendir(dir);
	free(dir);
	if (!(DIR *)r->listing)
		return;		/* nothing kept yet */
	r->phase = RY_RET_LIST;
	ry_worker_soon(w->janitor_ev);
}

static void list_step(struct ry_worker *w)
{
	struct ry_retention *r = &w->retention;
	struct dirent *de;
	for (int n = 0; n < LIST_PER_TURN; n++) {
		if (!(de = readdir((DIR *)r->listing))) {
			closedir((DIR *)r->listing);
			r->listing = NULL;
			r->phase = r->n ? RY_RET_ASK : RY_RET_IDLE;
			return;
		}
		char *end;
		long long id = strtoll(de->d_name, &end, 10);
		struct stat st;
		if (*end || id <= 0 || fstatat(dirfd((DIR *)r->listing), de->d_name, &st,
					      AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if (r->n == r->cap) {
			r->cap = r->cap ? r->cap * 2 : 64;
			r->dirs = ry_realloc(r->dirs, r->cap * sizeof(*r->dirs));
		}
		r->dirs[r->n++] = (struct ry_retention_dir){ .pipeline_id = id, .mtime = st.st_mtime,
							       .finished_ago = -1 };
	}
}

char *ry_worker_retention_ids(struct ry_worker *w)
{
	struct ry_retention *r = &w->retention;
	struct ry_pgarray a = { RY_BUF_INIT, 0 };
	for (size_t i = 0; i < r->n; i++)
		ry_pgarray_add_int(&a, r->dirs[i].pipeline_id);
	r->phase = RY_RET_ASKING;
	return ry_pgarray_finish(&a);
}

void ry_worker_retention_known(struct ry_worker *w, int64_t pipeline_id, bool known,
			       double finished_ago)
{
	struct ry_retention *r = &w->retention;
	for (size_t i = 0; i < r->n; i++) {
		if (r->dirs[i].pipeline_id == pipeline_id) {
			r->dirs[i].known = known;
			r->dirs[i].finished_ago = finished_ago;
			return;
		}
	}
}

static void start_walk(struct ry_worker *w, size_t i)
{
	struct ry_retention *r = &w->retention;
	char *paths[3] = { pipeline_path(w, r->dirs[i].pipeline_id),
			   log_path(w, r->dirs[i].pipeline_id), NULL };
	r->fts = fts_open(paths, FTS_PHYSICAL | FTS_NOCHDIR | FTS_XDEV, NULL);
	r->walk = i;
	free(paths[0]);
	free(paths[1]);
}

void ry_worker_retention_answered(struct ry_worker *w, bool ok)
{
	struct ry_retention *r = &w->retention;
	if (!ok) {
		reset(r);	/* asked again at the next check */
		r->next_ms = ry_now_ms() + (int64_t)w->cfg.retention_check_s * 1000;
		return;
	}
	r->phase = w->cfg.retention_mb > 0 ? RY_RET_SIZE : RY_RET_DECIDE;
	if (r->phase == RY_RET_SIZE && r->n)
		start_walk(w, 0);
	ry_worker_soon(w->janitor_ev);
}

/* Measures (du) one entry at a time across all kept directories. */
static void size_step(struct ry_worker *w)
{
	struct ry_retention *r = &w->retention;
	for (int n = 0; n < WALK_PER_TURN; n++) {
		FTSENT *e = r->fts ? fts_read((FTS *)r->fts) : NULL;
		if (!e) {
			if (r->fts)
				fts_close((FTS *)r->fts);
			r->fts = NULL;
			if (r->walk + 1 >= r->n) {
				r->phase = RY_RET_DECIDE;
				return;
			}
			start_walk(w, r->walk + 1);
			continue;
		}
		if (e->fts_info != FTS_DP && e->fts_statp)
			r->dirs[r->walk].bytes += (uint64_t)e->fts_statp->st_blocks * 512;
	}
}

static int by_age_desc(const void *a, const void *b)
{
	const struct ry_retention_dir *x = a, *y = b;
	return (x->finished_ago < y->finished_ago) - (x->finished_ago > y->finished_ago);
}

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static void decide(struct ry_worker *w)
{
	struct ry_retention *r = &w->retention;
	uint64_t total = 0, cap = (uint64_t)w->cfg.retention_mb << 20;
	double now = (double)time(NULL);
	/* The pipelines this worker holds a task of, in any phase: kept. */
	size_t nbusy = 0;
	int64_t *busy = ry_malloc((w->tasks.n + 1) * sizeof(*busy));
	for (int p = 0; p < RY_TASK_NPHASES; p++)
		for (struct ry_task *t = ry_task_table_first(&w->tasks, p); t; t = t->next)
			busy[nbusy++] = t->pipeline_id;
	qsort(busy, nbusy, sizeof(*busy), cmp_id);
	for (size_t i = 0; i < r->n; i++)
		total += r->dirs[i].bytes;
	qsort(r->dirs, r->n, sizeof(*r->dirs), by_age_desc);
	for (size_t i = 0; i < r->n; i++) {
		struct ry_retention_dir *d = &r->dirs[i];
		if (bsearch(&d->pipeline_id, busy, nbusy, sizeof(*busy), cmp_id))
			continue;
		if (d->known)
			d->remove = d->finished_ago >= (double)w->cfg.retention_s;
		else	/* deleted from the database: only its age on disk counts */
			d->remove = now - (double)d->mtime >= (double)w->cfg.retention_s;
		if (!d->remove && cap && total > cap && d->known &&
		    d->finished_ago >= (double)w->cfg.retention_min_s)
			d->remove = true;	/* oldest finished first, while over the cap */
		if (d->remove)
			total -= d->bytes < total ? d->bytes : total;
	}
	free(busy);
	r->walk = 0;
	r->phase = RY_RET_REMOVE;
}

/* Removes one entry at a time: files, then each directory once empty. */
static void remove_step(struct ry_worker *w)
{
	struct ry_retention *r = &w->retention;
	for (int n = 0; n < WALK_PER_TURN; n++) {
		if (!r->fts) {
			while (r->walk < r->n && !r->dirs[r->walk].remove)
				r->walk++;
			if (r->walk >= r->n) {
				reset(r);
				r->next_ms = ry_now_ms() + (int64_t)w->cfg.retention_check_s * 1000;
				return;
			}
			struct ry_retention_dir *d = &r->dirs[r->walk];
			char *p = pipeline_path(w, d->pipeline_id);
			struct stat st;
			if (stat(p, &st) == 0)
				ry_worker_forget_pipeline_gid(w, st.st_gid);
			ry_info("retention: removing the workspaces and logs of pipeline %lld (%s, "
				"%llu MB)", (long long)d->pipeline_id,
				d->known ? "finished" : "no longer in the database",
				(unsigned long long)(d->bytes >> 20));
			free(p);
			start_walk(w, r->walk);
			continue;
		}
		FTSENT *e = fts_read((FTS *)r->fts);
		if (!e) {
			fts_close((FTS *)r->fts);
			r->fts = NULL;
			r->walk++;
			continue;
		}
		switch (e->fts_info) {
		case FTS_D:
			/* A task (same user, no root) may have left it read-only. */
			if (access(e->fts_accpath, W_OK | X_OK) < 0)
				(void)chmod(e->fts_accpath, 0700);
			break;
		case FTS_DP:
			(void)rmdir(e->fts_accpath);
			break;
		default:
			(void)unlink(e->fts_accpath);
			break;
		}
	}
}

bool ry_worker_retention_step(struct ry_worker *w)
{
	struct ry_retention *r = &w->retention;
	switch (r->phase) {
	case RY_RET_LIST:
		list_step(w);
		break;
	case RY_RET_SIZE:
		size_step(w);
		break;
	case RY_RET_DECIDE:
		decide(w);
		break;
	case RY_RET_REMOVE:
		remove_step(w);
		break;
	case RY_RET_IDLE:
	case RY_RET_ASK:
	case RY_RET_ASKING:
		return false;
	}
	return r->phase == RY_RET_LIST || r->phase == RY_RET_SIZE || r->phase == RY_RET_DECIDE ||
	       r->phase == RY_RET_REMOVE;
}

void ry_worker_retention_release(struct ry_worker *w)
{
	reset(&w->retention);
}
