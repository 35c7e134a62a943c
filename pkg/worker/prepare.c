/*
 * prepare.c: a task's tree and the build cache (docs/cache.md, "Worker
 * integration").  Between the claim and the process, a task that has a
 * source, declared outputs, cacheable work or upstream artifacts goes
 * through these stages, each continuing from a callback so the loop never
 * waits:
 *
 *   CONTEXT   railyard.cache_context, returned by the claim transaction
 *             (claim.c), or asked for the tasks a spawn pass met that the
 *             claim did not cover (one query per pass)
 *   RESOLVE   offload thread: the mirror holds the revision; the key's
 *             input values (git object ids, or file digests)
 *   PIN       the pipeline's commit pinned (first worker wins)
 *   LOOKUP    cacheable: the key, then railyard.cache_lookup, one query
 *             for the keys a spawn pass finds computed
 *   HIT       the entry's artifact checked against its digest (nothing
 *             unpacked, no workspace made): the task is `cached`, no
 *             process; anything wrong with it is a miss
 *   TREE      the workspace made (a cacheable task's only once it
 *             missed), then on an offload thread the source copied in
 *   RESTORE   outputs of build/test upstreams, in parallel, any host's
 *   OWN       offload thread: the tree handed to the task's user
 *   READY     the spawn pass starts the process as before
 *
 * After a successful process, declared outputs are archived and stored
 * (ry_cache_save) before the result is set; the completion job records
 * them with railyard.cache_record ahead of complete_tasks.  A store that
 * is down, slow or refuses us never fails a task: it runs uncached and
 * the worker warns.
 */
#include "worker/internal.h"

#include "cache/cache.h"
#include "db/adb.h"
#include "db/db.h"
#include "offload/offload.h"
#include "source/source.h"
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum prep_stage {
	ST_WANTED,	/* the context is to be asked for */
	ST_ASKED,	/* cache_context in flight */
	ST_LOOKUP,	/* the key is known: its lookup goes with the next flush */
	ST_BUSY,	/* a stage's work in flight */
	ST_SLOT,	/* missed; claimed ahead, it waits for a slot (the spawn
			 * pass asks again: ry_worker_prep_ready) */
	ST_READY,	/* the process may start */
};

struct ry_prep {
	struct ry_task *t;		/* NULL once the task went away */
	struct ry_worker *w;
	enum prep_stage stage;
	int inflight;			/* offload jobs and database jobs not back yet */

	/* the context */
	char *source, *revision, *commit;	/* commit: pinned, or NULL */
	bool cacheable;
	struct ry_strlist inputs, outputs, env;
	char *command, *version, *kind;
	struct ry_strlist up_names, up_digests, restore_from, restore_digests;

	/* copies for the threads */
	char *workdir, *ws, *statcache;
	bool set_ids;
	uid_t uid;
	gid_t gid;
	bool group_write;

	/* thread results */
	enum ry_source_kind kind_of_source;
	char resolved[RY_DIGEST_HEX];
	char *mirror;
	struct ry_strlist values;
	char *error;

	/* the key */
	bool has_key;
	char key[RY_DIGEST_HEX];
	char *components;
	char *hit_digest;
	int64_t hit_size;

	/* restores in flight */
	struct ry_cache_op **ops;
	size_t nops, pending;
	char *restore_error;
	int64_t restored_bytes;

	/* the output, once saved */
	struct ry_cache_op *save;
	bool saving;
	bool has_output;
	char out_digest[RY_DIGEST_HEX];
	int64_t out_size;
	size_t entries;
	int64_t content_bytes;
	char *manifest;
};

static void advance_after_resolve(struct ry_prep *p);
static void start_tree(struct ry_prep *p);

static void prep_free(struct ry_prep *p)
{
	free(p->source);
	free(p->revision);
	free(p->commit);
	ry_strlist_release(&p->inputs);
	ry_strlist_release(&p->outputs);
	ry_strlist_release(&p->env);
	free(p->command);
	free(p->version);
	free(p->kind);
	ry_strlist_release(&p->up_names);
	ry_strlist_release(&p->up_digests);
	ry_strlist_release(&p->restore_from);
	ry_strlist_release(&p->restore_digests);
	free(p->workdir);
	free(p->ws);
	free(p->statcache);
	free(p->mirror);
	ry_strlist_release(&p->values);
	free(p->error);
	free(p->components);
	free(p->hit_digest);
	free(p->ops);
	free(p->restore_error);
	free(p->manifest);
	free(p);
}

/* A callback of p's is back: false when the task went away meanwhile (p
 * is freed once nothing of it is in flight). */
static bool came_back(struct ry_prep *p)
{
	p->inflight--;
	if (p->t && (p->saving || p->t->phase == RY_TASK_QUEUED))
		return true;
	if (!p->t && p->inflight == 0)
		prep_free(p);
	return false;	/* gone, or handed back meanwhile: its release frees p */
}

void ry_worker_prep_detach(struct ry_task *t)
{
	struct ry_prep *p = t->prep;
	if (!p)
		return;
	t->prep = NULL;
	p->t = NULL;
	for (size_t i = 0; i < p->nops; i++)
		if (p->ops[i])
			ry_cache_op_cancel(p->ops[i]);
	if (p->save)
		ry_cache_op_cancel(p->save);
	p->nops = 0;
	p->save = NULL;
	if (p->inflight == 0)
		prep_free(p);
}

bool ry_worker_prep_waiting(const struct ry_task *t)
{
	return t->prep && t->prep->stage != ST_READY && t->prep->stage != ST_SLOT;
}

static void ready(struct ry_prep *p)
{
	p->stage = ST_READY;
	ry_worker_soon(p->w->spawn_ev);
}

/* The task cannot run: it fails with why (owned). */
static void prep_fail(struct ry_prep *p, char *why)
{
	struct ry_task *t = p->t;
	struct ry_worker *w = p->w;
	ry_exec_sanitize_utf8(why);
	ry_warn("task %s (id %lld): %s", t->name, (long long)t->id, why);
	p->stage = ST_READY;
	ry_worker_release_uid(w, t);
	ry_worker_task_set_result(t, "failed", why, -1);
	w->want_claim = true;
	ry_worker_pump(w);
}

/* ---- the spawn pass's hooks ------------------------------------------ */

static struct ry_prep *prep_new(struct ry_worker *w, struct ry_task *t)
{
	struct ry_prep *p = ry_calloc(1, sizeof(*p));
	p->t = t;
	p->w = w;
	p->stage = ST_WANTED;
	t->prep = p;
	return p;
}

bool ry_worker_prep_ready(struct ry_worker *w, struct ry_task *t)
{
	if (!w->cache)
		return true;
	if (t->prep && t->prep->stage == ST_SLOT)
		start_tree(t->prep);	/* a slot may be free now, or its hold over */
	if (t->prep)
		return t->prep->stage == ST_READY;
	prep_new(w, t);
	return false;
}

enum ctx_col {
	X_TASK, X_ATTEMPT, X_SOURCE, X_REVISION, X_COMMIT, X_CACHEABLE, X_INPUTS, X_OUTPUTS,
	X_COMMAND, X_ENV, X_VERSION, X_KIND, X_UPS, X_UPDIGESTS, X_RFROM, X_RDIGESTS, X_N
};
static const char *const ctx_cols[X_N] = {
	"task_id", "attempt", "source", "revision", "source_commit", "cacheable", "inputs",
	"outputs", "command", "env", "version", "kind", "build_upstreams",
	"build_upstream_digests", "restore_from", "restore_digests",
};

static char *opt(const struct ry_res *res, int row, int col)
{
	return ry_res_isnull(res, row, col) ? NULL : ry_strdup(ry_res_get(res, row, col));
}

static bool read_context(struct ry_prep *p, const struct ry_res *res, int i, const int *c)
{
	p->source = opt(res, i, c[X_SOURCE]);
	p->revision = opt(res, i, c[X_REVISION]);
	p->commit = opt(res, i, c[X_COMMIT]);
	p->cacheable = strcmp(ry_res_get(res, i, c[X_CACHEABLE]), "t") == 0;
	p->command = ry_strdup(ry_res_get(res, i, c[X_COMMAND]));
	p->version = opt(res, i, c[X_VERSION]);
	p->kind = opt(res, i, c[X_KIND]);
	return ry_db_parse_text_array(ry_res_get(res, i, c[X_INPUTS]), &p->inputs) &&
	       ry_db_parse_text_array(ry_res_get(res, i, c[X_OUTPUTS]), &p->outputs) &&
	       ry_db_parse_text_array(ry_res_get(res, i, c[X_ENV]), &p->env) &&
	       ry_db_parse_text_array(ry_res_get(res, i, c[X_UPS]), &p->up_names) &&
	       ry_db_parse_text_array(ry_res_get(res, i, c[X_UPDIGESTS]), &p->up_digests) &&
	       ry_db_parse_text_array(ry_res_get(res, i, c[X_RFROM]), &p->restore_from) &&
	       ry_db_parse_text_array(ry_res_get(res, i, c[X_RDIGESTS]), &p->restore_digests) &&
	       p->up_names.n == p->up_digests.n && p->restore_from.n == p->restore_digests.n;
}

static void resolve_work(void *arg);
static void resolve_done(void *arg);

/* The task's workspace (and, with per-task ids, its uid): made only for a
 * task that will run, never for a cache hit.  false: the task failed. */
static bool make_workspace(struct ry_prep *p)
{
	struct ry_task *t = p->t;
	struct ry_worker *w = p->w;
	if (p->ws)
		return true;
	char *err = NULL;
	char *safe = ry_worker_safe_name(t->name);
	char *pdir = ry_asprintf("%s/pipelines/%lld", w->cfg.workdir, (long long)t->pipeline_id);
	char *shared = ry_asprintf("%s/shared", pdir);
	char *logdir = ry_asprintf("%s/logs/%lld", w->cfg.workdir, (long long)t->pipeline_id);
	p->ws = ry_asprintf("%s/%lld-%s", pdir, (long long)t->id, safe);
	bool ok = ry_worker_prepare_dirs(w, t, pdir, shared, p->ws, logdir, &err);
	free(safe);
	free(pdir);
	free(shared);
	free(logdir);
	if (!ok) {
		prep_fail(p, ry_asprintf("cannot prepare workspace: %s", err));
		free(err);
		return false;
	}
	p->set_ids = w->ids != RY_IDS_WORKER;
	p->uid = t->uid;
	p->gid = t->gid;
	p->group_write = w->ids == RY_IDS_PER_TASK;
	return true;
}

/* The context is known: decide what this task needs. */
static void begin(struct ry_prep *p)
{
	struct ry_worker *w = p->w;
	/* Declared outputs need the workspace we archive them from, source or not. */
	if (!p->source && !p->cacheable && !p->restore_digests.n && !p->outputs.n) {
		ready(p);	/* an empty workspace, as without a cache */
		return;
	}
	/* A cacheable task gets its workspace once it misses (start_tree). */
	if (!p->cacheable && !make_workspace(p))
		return;
	p->workdir = ry_strdup(w->cfg.workdir);
	p->statcache = ry_asprintf("%s/statcache", w->state_dir);
	p->stage = ST_BUSY;
	if (!p->source) {
		advance_after_resolve(p);
		return;
	}
	p->inflight++;
	ry_offload_run(ry_cache_ctx_offload(w->cache), resolve_work, resolve_done, p);
}

static void context_answered(void *arg, const struct ry_adb_reply *r)
{
	struct ry_worker *w = arg;
	int c[X_N];
	const char *missing = NULL;
	bool ok = r->ok && ry_res_columns(r->results[0], ctx_cols, X_N, c, &missing);
	if (!ok && !r->conn_lost)
		ry_warn("cannot read the cache context of claimed tasks: %s",
			r->error ? r->error : missing ? missing : "bad reply");
	if (ok) {
		const struct ry_res *res = r->results[0];
		for (int i = 0; i < ry_res_rows(res); i++) {
			struct ry_task *t = ry_task_table_find(&w->tasks, ry_res_get_long(res, i, c[X_TASK]),
							       (int)ry_res_get_long(res, i, c[X_ATTEMPT]));
			if (!t || !t->prep || t->prep->stage != ST_ASKED)
				continue;
			if (!read_context(t->prep, res, i, c)) {
				prep_fail(t->prep, ry_strdup("cannot read the task's cache context"));
				continue;
			}
			begin(t->prep);
		}
	}
	/* Asked and not answered: no longer running under us (the heartbeat
	 * says so), or the question failed: run them as without a cache. */
	for (struct ry_task *t = ry_task_table_first(&w->tasks, RY_TASK_QUEUED); t; t = t->next)
		if (t->prep && t->prep->stage == ST_ASKED) {
			if (ok)
				ready(t->prep);
			else
				t->prep->stage = ST_WANTED;
		}
	if (!ok && !r->conn_lost)
		for (struct ry_task *t = ry_task_table_first(&w->tasks, RY_TASK_QUEUED); t; t = t->next)
			if (t->prep && t->prep->stage == ST_WANTED)
				ready(t->prep);
	ry_worker_soon(w->spawn_ev);
}

void ry_worker_prep_claimed(struct ry_worker *w, const struct ry_res *res)
{
	int c[X_N];
	const char *missing = NULL;
	if (!w->cache)
		return;
	if (!ry_res_columns(res, ctx_cols, X_N, c, &missing)) {
		ry_warn("cannot read the cache context of claimed tasks: %s",
			missing ? missing : "bad reply");
		return;		/* the spawn pass asks again */
	}
	ry_debug("the claim carried the cache context of %d tasks", ry_res_rows(res));
	for (int i = 0; i < ry_res_rows(res); i++) {
		struct ry_task *t = ry_task_table_find(&w->tasks, ry_res_get_long(res, i, c[X_TASK]),
						       (int)ry_res_get_long(res, i, c[X_ATTEMPT]));
		/* The spawn pass's checks come first for a task that may be
		 * skipped (only_if_changed) or not run at all (dry run). */
		if (!t || t->prep || t->phase != RY_TASK_QUEUED || t->only_if_changed ||
		    w->cfg.dry_run)
			continue;
		struct ry_prep *p = prep_new(w, t);
		if (!read_context(p, res, i, c)) {
			prep_fail(p, ry_strdup("cannot read the task's cache context"));
			continue;
		}
		begin(p);
	}
}

static void flush_contexts(struct ry_worker *w)
{
	struct ry_pgarray ids = { RY_BUF_INIT, 0 };
	for (struct ry_task *t = ry_task_table_first(&w->tasks, RY_TASK_QUEUED); t; t = t->next)
		if (t->prep && t->prep->stage == ST_WANTED) {
			ry_pgarray_add_int(&ids, t->id);
			t->prep->stage = ST_ASKED;
		}
	if (!ids.n || !w->agent_id || !ry_adb_connected(w->db)) {
		ry_buf_release(&ids.b);
		for (struct ry_task *t = ry_task_table_first(&w->tasks, RY_TASK_QUEUED); t; t = t->next)
			if (t->prep && t->prep->stage == ST_ASKED)
				t->prep->stage = ST_WANTED;
		return;
	}
	char agent[24];
	snprintf(agent, sizeof(agent), "%lld", (long long)w->agent_id);
	char *a = ry_pgarray_finish(&ids);
	const char *params[] = { agent, a };
	struct ry_adb_job *job = ry_adb_job_new(context_answered, w);
	ry_adb_job_add(job, "SELECT * FROM railyard.cache_context($1, $2)", 2, params);
	ry_adb_submit(w->db, job, RY_ADB_LAST);
	free(a);
}

static void flush_lookups(struct ry_worker *w);

void ry_worker_prep_flush(struct ry_worker *w)
{
	flush_contexts(w);
	flush_lookups(w);
}

/* ---- RESOLVE: the revision and the inputs (thread) --------------------- */

static void resolve_work(void *arg)
{
	struct ry_prep *p = arg;
	char *err = NULL;
	if (!ry_source_classify(p->source, &p->kind_of_source, &err))
		goto out;
	if (p->kind_of_source == RY_SOURCE_GIT) {
		const char *rev = p->commit ? p->commit : p->revision ? p->revision : "HEAD";
		free(p->mirror);
		p->mirror = NULL;
		if (!ry_source_resolve(p->workdir, p->source, rev, p->resolved, &p->mirror, &err))
			goto out;
		if (p->cacheable && p->inputs.n &&
		    !ry_source_git_inputs(p->mirror, p->resolved, &p->inputs, &p->values, &err))
			goto out;
	} else if (p->cacheable && p->inputs.n &&
		   !ry_source_dir_inputs(p->source, &p->inputs, p->statcache, &p->values, &err)) {
		goto out;
	}
out:
	p->error = err;
}

static void pinned(void *arg, const struct ry_adb_reply *r)
{
	struct ry_prep *p = arg;
	if (!came_back(p))
		return;
	const char *got = r->ok && ry_res_rows(r->results[0]) == 1 ? ry_res_get(r->results[0], 0, 0)
								   : NULL;
	if (got && *got && strcmp(got, p->resolved) != 0) {
		/* Another worker resolved the branch first: build its commit. */
		free(p->commit);
		p->commit = ry_strdup(got);
		ry_strlist_release(&p->values);
		p->inflight++;
		ry_offload_run(ry_cache_ctx_offload(p->w->cache), resolve_work, resolve_done, p);
		return;
	}
	if (!r->ok && !r->conn_lost)
		ry_warn("cannot pin the commit of pipeline %lld: %s", (long long)p->t->pipeline_id,
			r->error);
	free(p->commit);
	p->commit = ry_strdup(p->resolved);
	advance_after_resolve(p);
}

static void resolve_done(void *arg)
{
	struct ry_prep *p = arg;
	if (!came_back(p))
		return;
	if (p->error) {
		prep_fail(p, ry_asprintf("source: %s", p->error));
		return;
	}
	if (p->kind_of_source == RY_SOURCE_GIT && !p->commit) {
		char pid[24];
		snprintf(pid, sizeof(pid), "%lld", (long long)p->t->pipeline_id);
		const char *params[] = { pid, p->resolved };
		struct ry_adb_job *job = ry_adb_job_new(pinned, p);
		ry_adb_job_add(job, "SELECT railyard.pin_source_commit($1, $2)", 2, params);
		p->inflight++;
		ry_adb_submit(p->w->db, job, RY_ADB_LAST);
		return;
	}
	advance_after_resolve(p);
}

/* ---- LOOKUP ------------------------------------------------------------ */

static void looked_up(struct ry_prep *p, const struct ry_adb_reply *r, const struct ry_res *res);

static void advance_after_resolve(struct ry_prep *p)
{
	struct ry_worker *w = p->w;
	if (!p->cacheable) {
		start_tree(p);
		return;
	}
	struct ry_cache_key k = { 0 };
	ry_cache_key_add_definition(&k, p->command, &p->env, p->version, p->kind, &p->outputs);
	ry_cache_key_add_platform(&k, w->host.os, w->host.arch, &w->cache_cfg.toolchain);
	for (size_t i = 0; i < p->inputs.n; i++)
		ry_cache_key_add_input(&k, p->inputs.items[i],
				       i < p->values.n ? p->values.items[i] : "absent");
	for (size_t i = 0; i < p->up_names.n; i++)
		ry_cache_key_add_upstream(&k, p->up_names.items[i],
					  *p->up_digests.items[i] ? p->up_digests.items[i] : NULL);
	ry_cache_key_compute(&k, p->key);
	p->components = ry_cache_key_to_json(&k);
	p->has_key = true;
	ry_cache_key_release(&k);

	p->stage = ST_LOOKUP;
	ry_worker_soon(w->spawn_ev);
}

/* One railyard.cache_lookup for the keys in flight together. */
struct lookup_batch {
	size_t n;
	struct ry_prep **preps;
};

static void lookup_answered(void *arg, const struct ry_adb_reply *r)
{
	struct lookup_batch *b = arg;
	const struct ry_res *res = r->ok && r->nresults >= 3 ? r->results[2] : NULL;
	for (size_t i = 0; i < b->n; i++)
		looked_up(b->preps[i], r, res);
	free(b->preps);
	free(b);
}

static void flush_lookups(struct ry_worker *w)
{
	struct ry_pgarray keys = { RY_BUF_INIT, 0 };
	struct lookup_batch *b = ry_calloc(1, sizeof(*b));
	size_t cap = 0;
	for (struct ry_task *t = ry_task_table_first(&w->tasks, RY_TASK_QUEUED); t; t = t->next) {
		struct ry_prep *p = t->prep;
		if (!p || p->stage != ST_LOOKUP)
			continue;
		if (b->n == cap) {
			cap = cap ? cap * 2 : 8;
			b->preps = ry_realloc(b->preps, cap * sizeof(*b->preps));
		}
		b->preps[b->n++] = p;
		ry_pgarray_add_str(&keys, p->key);
		p->stage = ST_BUSY;
		p->inflight++;
	}
	if (!b->n) {
		ry_buf_release(&keys.b);
		free(b);
		return;
	}
	char *a = ry_pgarray_finish(&keys);
	const char *params[] = { a, w->cache_cfg.nondeterministic, w->cache_cfg.flaky };
	struct ry_adb_job *job = ry_adb_job_new(lookup_answered, b);
	/* A lookup's only write is the entry's last use (GC's grace): a crash
	 * may lose it, so it need not wait for its WAL flush. */
	ry_adb_job_add(job, "BEGIN", 0, NULL);
	ry_adb_job_add(job, "SET LOCAL synchronous_commit = off", 0, NULL);
	ry_adb_job_add(job, "SELECT key, hit, output_digest, output_size, reason FROM "
			    "railyard.cache_lookup($1, $2, $3)", 3, params);
	ry_adb_job_add(job, "COMMIT", 0, NULL);
	ry_adb_submit(w->db, job, RY_ADB_LAST);
	free(a);
}

static void corruption(void *arg, const struct ry_adb_reply *r)
{
	(void)arg;
	if (!r->ok && !r->conn_lost)
		ry_warn("cannot record a quarantined cache blob: %s", r->error);
}

/* The hit's artifact checked against its digest (nothing unpacked: the
 * task does not run, and its dependants restore the artifact themselves). */
static void hit_verified(void *arg, const struct ry_cache_result *res)
{
	struct ry_prep *p = arg;
	struct ry_task *t = p->t;
	struct ry_worker *w = p->w;
	p->nops = 0;
	p->ops[0] = NULL;
	if (t->phase != RY_TASK_QUEUED)
		return;		/* handed back meanwhile */
	ry_worker_ahead_note(w, res->status == RY_CACHE_OK);
	if (res->status == RY_CACHE_OK) {
		w->metrics.cache_hits++;
		ry_info("task %s (id %lld): cache hit %.12s…, not run", t->name, (long long)t->id,
			p->key);
		p->has_output = true;
		memcpy(p->out_digest, p->hit_digest, RY_DIGEST_HEX);
		p->out_size = res->size;
		p->stage = ST_READY;
		ry_worker_release_uid(w, t);
		ry_worker_task_set_result(t, "cached", NULL, -1);
		w->want_claim = true;
		ry_worker_pump(w);
		return;
	}
	w->metrics.store_errors++;
	if (res->status == RY_CACHE_CORRUPT) {
		ry_warn("task %s: cache entry %.12s… is corrupt (%s), quarantined %s: running it",
			t->name, p->key, res->error ? res->error : "digest mismatch",
			res->quarantined ? res->quarantined : "");
		char agent[24];
		snprintf(agent, sizeof(agent), "%lld", (long long)w->agent_id);
		const char *params[] = { agent, p->hit_digest,
					 res->quarantined ? res->quarantined : "local",
					 res->error ? res->error : "digest mismatch" };
		struct ry_adb_job *job = ry_adb_job_new(corruption, w);
		ry_adb_job_add(job, "SELECT railyard.cache_corruption($1, $2, $3, $4)", 4, params);
		ry_adb_submit(w->db, job, RY_ADB_LAST);
	} else {
		ry_warn("task %s: cannot restore cache entry %.12s… (%s): running it uncached",
			t->name, p->key, res->error ? res->error : "not in any store");
	}
	start_tree(p);
}

/* The lookup's answer for p: res holds a row per distinct key (NULL: the
 * lookup failed). */
static void looked_up(struct ry_prep *p, const struct ry_adb_reply *r, const struct ry_res *res)
{
	if (!came_back(p))
		return;
	int row = -1;
	for (int i = 0; res && i < ry_res_rows(res) && row < 0; i++)
		if (strcmp(ry_res_get(res, i, 0), p->key) == 0)
			row = i;
	/* A hit with an artifact counts once its digest is checked (hit_verified). */
	bool hit = row >= 0 && strcmp(ry_res_get(res, row, 1), "t") == 0;
	if (!hit || ry_res_isnull(res, row, 2))
		ry_worker_ahead_note(p->w, hit);
	if (row < 0) {
		if (!r->conn_lost)
			ry_warn("task %s: cache lookup failed (%s): running it uncached", p->t->name,
				r->error ? r->error : "no answer");
		start_tree(p);
		return;
	}
	if (!hit) {
		p->w->metrics.cache_misses++;
		ry_debug("task %s: cache miss %.12s… (%s)", p->t->name, p->key, ry_res_get(res, row, 4));
		start_tree(p);
		return;
	}
	if (ry_res_isnull(res, row, 2)) {
		/* A hit on a task without outputs: nothing to restore. */
		struct ry_task *t = p->t;
		p->w->metrics.cache_hits++;
		p->stage = ST_READY;
		ry_worker_release_uid(p->w, t);
		ry_worker_task_set_result(t, "cached", NULL, -1);
		p->w->want_claim = true;
		ry_worker_pump(p->w);
		return;
	}
	p->hit_digest = ry_strdup(ry_res_get(res, row, 2));
	p->hit_size = ry_res_get_long(res, row, 3);
	p->ops = ry_calloc(1, sizeof(*p->ops));
	p->nops = 1;
	p->ops[0] = ry_cache_verify(p->w->cache, p->hit_digest, hit_verified, p);
}

/* ---- TREE, RESTORE, OWN ------------------------------------------------ */

/* Removes what an earlier attempt left in dir (not dir itself). */
static void empty_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char *path = ry_asprintf("%s/%s", dir, e->d_name);
		ry_exec_remove_tree(path);
		free(path);
	}
	closedir(d);
}

/* Moves the entries of from into to, then removes from. */
static bool move_entries(const char *from, const char *to, char **err)
{
	DIR *d = opendir(from);
	struct dirent *e;
	bool ok = true;
	if (!d) {
		*err = ry_asprintf("cannot open %s: %s", from, strerror(errno));
		return false;
	}
	while (ok && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char *a = ry_asprintf("%s/%s", from, e->d_name);
		char *b = ry_asprintf("%s/%s", to, e->d_name);
		if (rename(a, b) < 0) {
			*err = ry_asprintf("cannot move %s into the workspace: %s", a, strerror(errno));
			ok = false;
		}
		free(a);
		free(b);
	}
	closedir(d);
	ry_exec_remove_tree(from);
	return ok;
}

static void tree_work(void *arg)
{
	struct ry_prep *p = arg;
	char *err = NULL;
	char *tmp = ry_asprintf("%s.src", p->ws);
	empty_dir(p->ws);
	ry_exec_remove_tree(tmp);
	bool ok = p->kind_of_source == RY_SOURCE_GIT
			  ? ry_source_checkout(p->workdir, p->mirror, p->resolved, tmp, &err)
			  : ry_source_copy_tree(p->source, tmp, &err);
	if (ok)
		(void)move_entries(tmp, p->ws, &err);
	else
		ry_exec_remove_tree(tmp);
	free(tmp);
	p->error = err;
}

static void restore_all(struct ry_prep *p);

static void tree_done(void *arg)
{
	struct ry_prep *p = arg;
	if (!came_back(p))
		return;
	if (p->error) {
		prep_fail(p, ry_asprintf("source: %s", p->error));
		return;
	}
	restore_all(p);
}

static void start_tree(struct ry_prep *p)
{
	if (!ry_worker_ahead_admit(p->w, p->t)) {
		/* Waiting for a slot (claimed ahead), or handed back (its
		 * release frees p). */
		if (p->t->phase == RY_TASK_QUEUED)
			p->stage = ST_SLOT;
		return;
	}
	p->stage = ST_BUSY;
	if (!make_workspace(p))
		return;
	if (!p->source) {
		restore_all(p);	/* the workspace as without a cache */
		return;
	}
	p->inflight++;
	ry_offload_run(ry_cache_ctx_offload(p->w->cache), tree_work, tree_done, p);
}

static int own_uid, own_gid;
static bool own_group_write;

static int own_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)type;
	(void)f;
	if (lchown(path, (uid_t)own_uid, (gid_t)own_gid) < 0)
		return errno;
	if (own_group_write && !S_ISLNK(st->st_mode)) {
		mode_t m = st->st_mode & 07777;
		(void)chmod(path, m | ((m & 0700) >> 3));
	}
	return 0;
}

/* The tree belongs to who the task runs as (nftw is not reentrant with
 * its callback's state: one job at a time holds the lock). */
static pthread_mutex_t own_lock = PTHREAD_MUTEX_INITIALIZER;

static void own_work(void *arg)
{
	struct ry_prep *p = arg;
	pthread_mutex_lock(&own_lock);
	own_uid = (int)p->uid;
	own_gid = (int)p->gid;
	own_group_write = p->group_write;
	int rc = nftw(p->ws, own_one, 32, FTW_PHYS);
	pthread_mutex_unlock(&own_lock);
	if (rc != 0)
		p->error = ry_asprintf("cannot hand the workspace %s to the task's user: %s", p->ws,
				       strerror(rc > 0 ? rc : errno));
}

static void own_done(void *arg)
{
	struct ry_prep *p = arg;
	if (!came_back(p))
		return;
	if (p->error) {
		prep_fail(p, ry_strdup(p->error));
		return;
	}
	ready(p);
}

static void owned(struct ry_prep *p)
{
	if (p->restore_error) {
		prep_fail(p, p->restore_error);
		p->restore_error = NULL;
		return;
	}
	if (!p->set_ids || (!p->source && !p->restore_digests.n)) {
		ready(p);
		return;
	}
	p->inflight++;
	ry_offload_run(ry_cache_ctx_offload(p->w->cache), own_work, own_done, p);
}

static void upstream_restored(void *arg, const struct ry_cache_result *res)
{
	struct ry_prep *p = arg;
	size_t i = 0;
	/* Which one: the first pending whose digest it is. */
	for (i = 0; i < p->nops; i++)
		if (p->ops[i] && strcmp(p->restore_digests.items[i], res->digest) == 0)
			break;
	if (i < p->nops)
		p->ops[i] = NULL;
	p->pending--;
	if (p->t->phase != RY_TASK_QUEUED)
		return;		/* handed back meanwhile */
	if (res->status == RY_CACHE_OK) {
		p->restored_bytes += res->size;
	} else if (!p->restore_error) {
		p->w->metrics.store_errors++;
		const char *from = i < p->restore_from.n ? p->restore_from.items[i] : "an upstream";
		p->restore_error = ry_asprintf("cannot restore outputs of %s: %s", from,
					       res->error ? res->error
					       : res->status == RY_CACHE_MISS ? "no store has them"
									      : "failed");
		if (res->status == RY_CACHE_CORRUPT) {
			char agent[24];
			snprintf(agent, sizeof(agent), "%lld", (long long)p->w->agent_id);
			const char *params[] = { agent, res->digest,
						 res->quarantined ? res->quarantined : "local",
						 res->error ? res->error : "digest mismatch" };
			struct ry_adb_job *job = ry_adb_job_new(corruption, p->w);
			ry_adb_job_add(job, "SELECT railyard.cache_corruption($1, $2, $3, $4)", 4,
				       params);
			ry_adb_submit(p->w->db, job, RY_ADB_LAST);
		}
	}
	if (p->pending == 0) {
		p->nops = 0;
		owned(p);
	}
}

/* Outputs of build and test upstreams, whichever host made them, into
 * the tree, all at once. */
static void restore_all(struct ry_prep *p)
{
	size_t n = p->restore_digests.n;
	if (!n) {
		owned(p);
		return;
	}
	free(p->ops);
	p->ops = ry_calloc(n, sizeof(*p->ops));
	p->nops = n;
	p->pending = n;
	for (size_t i = 0; i < n; i++)
		p->ops[i] = ry_cache_restore(p->w->cache, p->restore_digests.items[i], p->ws,
					     upstream_restored, p);
}

/* ---- after the process: outputs ---------------------------------------- */

static void saved(void *arg, const struct ry_cache_result *res)
{
	struct ry_prep *p = arg;
	struct ry_task *t = p->t;
	struct ry_worker *w = p->w;
	p->save = NULL;
	p->saving = false;
	switch (t->kill) {
	case RY_KILL_LOST:
	case RY_KILL_SHUTDOWN:
		ry_worker_task_forget(w, t);
		return;
	case RY_KILL_LEASE:
		t->handback = RY_HANDBACK_LOST;
		ry_task_table_move(&w->tasks, t, RY_TASK_RELEASE, false);
		ry_worker_pump(w);
		return;
	default:
		break;
	}
	if (res->status == RY_CACHE_OK) {
		if (res->warning)
			ry_warn("task %s: %s", t->name, res->warning);
		p->has_output = true;
		memcpy(p->out_digest, res->digest, RY_DIGEST_HEX);
		p->out_size = res->size;
		p->entries = res->entries;
		p->content_bytes = res->content_bytes;
		p->manifest = res->manifest ? ry_strdup(res->manifest) : NULL;
		ry_worker_task_set_result(t, "succeeded", NULL, 0);
	} else if (res->status == RY_CACHE_FAILED && res->error && strstr(res->error, "missing")) {
		/* It did not make what it declared. */
		ry_worker_task_set_result(t, "failed",
					  ry_asprintf("outputs: %s", res->error), -1);
	} else {
		w->metrics.store_errors++;
		ry_warn("task %s: its outputs were not stored (%s): downstream tasks will not get "
			"them", t->name, res->error ? res->error : "store unavailable");
		ry_worker_task_set_result(t, "succeeded", NULL, 0);
	}
	w->want_claim = true;
	ry_worker_pump(w);
}

bool ry_worker_prep_save(struct ry_worker *w, struct ry_task *t)
{
	struct ry_prep *p = t->prep;
	if (!p || !w->cache)
		return false;
	if (p->saving)
		return true;
	if (!p->outputs.n || !p->ws)
		return false;
	p->saving = true;
	p->save = ry_cache_save(w->cache, p->ws, &p->outputs, saved, p);
	return true;
}

/* ---- the completion: railyard.cache_record ------------------------------ */

static json_t *record_of(const struct ry_task *t)
{
	const struct ry_prep *p = t->prep;
	if (t->poisoned || !t->outcome)
		return NULL;
	/* A result of a previous run: its record as the journal kept it. */
	if (!p)
		return t->cache_record ? json_loads(t->cache_record, 0, NULL) : NULL;
	bool cached = strcmp(t->outcome, "cached") == 0;
	bool ok = cached || strcmp(t->outcome, "succeeded") == 0;
	if (!p->has_key && !(ok && p->has_output))
		return NULL;
	if (!ok && strcmp(t->outcome, "failed") != 0)
		return NULL;
	json_t *o = json_object();
	json_object_set_new(o, "task_id", json_integer(t->id));
	json_object_set_new(o, "attempt", json_integer(t->attempt));
	json_object_set_new(o, "outcome", json_string(t->outcome));
	if (p->has_key) {
		json_object_set_new(o, "key", json_string(p->key));
		json_t *c = p->components ? json_loads(p->components, 0, NULL) : NULL;
		json_object_set_new(o, "components", c ? c : json_object());
	}
	if (ok && p->has_output) {
		json_object_set_new(o, "output_digest", json_string(p->out_digest));
		json_object_set_new(o, "output_size", json_integer(p->out_size));
		if (!cached) {
			json_object_set_new(o, "entries", json_integer((json_int_t)p->entries));
			json_object_set_new(o, "content_bytes", json_integer(p->content_bytes));
			json_t *m = p->manifest ? json_loads(p->manifest, 0, NULL) : NULL;
			if (m)
				json_object_set_new(o, "manifest", m);
		}
	}
	if (t->has_duration)
		json_object_set_new(o, "duration_s", json_real(t->duration_s));
	json_object_set_new(o, "restored_bytes", json_integer(p->restored_bytes));
	return o;
}

char *ry_worker_prep_record_json(const struct ry_task *t)
{
	json_t *o = record_of(t);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

bool ry_worker_prep_record(struct ry_worker *w, struct ry_adb_job *job, const char *agent)
{
	json_t *a = json_array();
	for (struct ry_task *t = ry_task_table_first(&w->tasks, RY_TASK_SENDING); t; t = t->next) {
		json_t *o = record_of(t);
		if (o)
			json_array_append_new(a, o);
	}
	bool any = json_array_size(a) > 0;
	if (any) {
		char *s = json_dumps(a, JSON_COMPACT);
		const char *params[] = { agent, s };
		ry_adb_job_add(job, "SELECT task_id, attempt, accepted, conflict FROM "
				    "railyard.cache_record($1, $2)", 2, params);
		free(s);
	}
	json_decref(a);
	return any;
}

void ry_worker_prep_recorded(struct ry_worker *w, const struct ry_res *res)
{
	(void)w;
	for (int i = 0; res && i < ry_res_rows(res); i++)
		if (!ry_res_isnull(res, i, 3))
			ry_warn("task %s: %s", ry_res_get(res, i, 0), ry_res_get(res, i, 3));
}

/* ---- setup ---------------------------------------------------------------- */

bool ry_worker_cache_open(struct ry_worker *w)
{
	char *err = NULL;
	ry_cache_config_init(&w->cache_cfg);
	if (w->config_path && !ry_cache_config_load_file(&w->cache_cfg, w->config_path, &err)) {
		ry_error("%s", err);
		free(err);
		return false;
	}
	if (!(w->cache = ry_cache_ctx_new(w->base, &w->cache_cfg, w->cfg.workdir, &err))) {
		ry_warn("cache disabled, tasks run uncached and outputs are not passed on: %s", err);
		free(err);
		return true;
	}
	ry_info("build cache: %s", ry_cache_ctx_store(w->cache)->name);
	return true;
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool ry_worker_cache_reload(struct ry_worker *w, char **err)
{
	struct ry_cache_config c;
	ry_cache_config_init(&c);
	if (w->config_path && !ry_cache_config_load_file(&c, w->config_path, err)) {
		ry_cache_config_release(&c);
		return false;
	}
	/* What the key is made of applies to the next key; the store and its
	 * threads were opened at start and stay as they are. */
	struct ry_cache_config *o = &w->cache_cfg;
	if (!same_str(o->dir, c.dir) || !same_str(o->remote_url, c.remote_url) ||
	    !same_str(o->remote_username, c.remote_username) ||
	    !same_str(o->remote_password_file, c.remote_password_file) ||
	    !same_str(o->remote_token_file, c.remote_token_file) ||
	    !same_str(o->remote_ca_file, c.remote_ca_file) ||
	    o->connect_timeout_ms != c.connect_timeout_ms || o->stall_timeout_s != c.stall_timeout_s ||
	    o->timeout_s != c.timeout_s || o->threads != c.threads)
		ry_warn("SIGHUP: the cache store's settings (cache_dir, cache_remote_*, cache_*timeout*, "
			"cache_threads) changed; they take effect at the next start");
	struct ry_strlist tl = o->toolchain;
	o->toolchain = c.toolchain;
	c.toolchain = tl;
	char *s = o->nondeterministic;
	o->nondeterministic = c.nondeterministic;
	c.nondeterministic = s;
	s = o->flaky;
	o->flaky = c.flaky;
	c.flaky = s;
	o->lookahead = c.lookahead;
	if (w->ahead_window > o->lookahead)
		w->ahead_window = o->lookahead;
	ry_cache_config_release(&c);
	return true;
}

void ry_worker_cache_close(struct ry_worker *w)
{
	if (w->cache)
		ry_cache_ctx_free(w->cache);
	w->cache = NULL;
	ry_cache_config_release(&w->cache_cfg);
}
