/*
 * Claims: the two-round-trip claim transaction on the worker's connection.
 * `BEGIN` + railyard.claim_placement locks the candidates, pkg/sched places
 * them against free capacity, and railyard.claim_tasks + `COMMIT` leases the
 * chosen ones; the reply becomes task-table entries.  pump() decides when
 * (ry_worker_send_claim); a claim that fails pauses claims only.
 */
#include "worker/internal.h"

#include "db/adb.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A failed claim (the database cannot take one now) pauses claims only:
 * results, heartbeats and hand-backs go on. */
static void claim_back_off(struct ry_worker *w)
{
	if (w->claim_backoff_ms < RY_WORKER_BACKOFF_MIN_MS)
		w->claim_backoff_ms = RY_WORKER_BACKOFF_MIN_MS;
	int ms = w->claim_backoff_ms / 2 + (int)(random() % (w->claim_backoff_ms / 2 + 1));
	w->claim_backoff_ms = w->claim_backoff_ms * 2 > 10000 ? 10000 : w->claim_backoff_ms * 2;
	w->claim_after_ms = ry_now_ms() + ms;
	w->want_claim = true;	/* once the pause is over */
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	evtimer_add(w->retry_ev, &tv);
}

static void record_claim(struct ry_worker *w)
{
	if (!w->claim_sent_us)
		return;
	/* microseconds: a p99 of a few ms in whole ms cannot show 10 % */
	ry_worker_stats_claim(&w->stats, (double)(ry_now_us() - w->claim_sent_us) / 1000.0);
	w->claim_sent_us = 0;
}

static void transaction_ended(void *arg, const struct ry_adb_reply *r)
{
	struct ry_worker *w = arg;
	record_claim(w);
	ry_worker_job_failed(r, "end the claim transaction");
	ry_worker_pump(w);
}

static void end_transaction(struct ry_worker *w, const char *sql)
{
	struct ry_adb_job *job = ry_adb_job_new(transaction_ended, w);
	ry_adb_job_add(job, sql, 0, NULL);
	ry_adb_submit(w->db, job, RY_ADB_NEXT);
}

enum claim_col {
	CL_ID, CL_ATTEMPT, CL_PIPELINE, CL_NAME, CL_COMMAND, CL_ENV, CL_TIMEOUT, CL_CPU, CL_MEM,
	CL_ONLY_IF, CL_CHANGED, CL_REVISION, CL_SERVICE, CL_SDE, CL_SECRETS, CL_N
};
static const char *const claim_cols[CL_N] = {
	[CL_ID] = "id", [CL_ATTEMPT] = "attempt", [CL_PIPELINE] = "pipeline_id",
	[CL_NAME] = "name", [CL_COMMAND] = "command", [CL_ENV] = "env",
	[CL_TIMEOUT] = "timeout_s", [CL_CPU] = "cpu", [CL_MEM] = "mem_mb",
	[CL_ONLY_IF] = "only_if_changed", [CL_CHANGED] = "changed_paths",
	[CL_REVISION] = "revision", [CL_SERVICE] = "service", [CL_SDE] = "source_date_epoch",
	[CL_SECRETS] = "secrets",
};

static bool ids_has(const int64_t *ids, size_t n, int64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

static char *get_opt(const struct ry_res *res, int row, int col)
{
	return ry_res_isnull(res, row, col) ? NULL : ry_strdup(ry_res_get(res, row, col));
}

static void claimed(void *arg, const struct ry_adb_reply *r)
{
	struct ry_worker *w = arg;
	int c[CL_N];
	record_claim(w);
	if (ry_worker_job_failed(r, "claim tasks")) {
		if (!r->conn_lost) {
			end_transaction(w, "ROLLBACK");
			claim_back_off(w);
		}
		return;
	}
	w->claim_backoff_ms = 0;
	/* The claim committed: a reply we cannot read leaves the tasks leased
	 * to us unstarted, and the next heartbeat hands them back. */
	const struct ry_res *res = r->results[0];
	if (!ry_worker_columns(res, claim_cols, CL_N, c, "claim_tasks"))
		return;
	for (int i = 0; i < ry_res_rows(res); i++) {
		struct ry_task *t = ry_worker_task_new(w);
		t->id = ry_res_get_long(res, i, c[CL_ID]);
		t->attempt = (int)ry_res_get_long(res, i, c[CL_ATTEMPT]);
		t->pipeline_id = ry_res_get_long(res, i, c[CL_PIPELINE]);
		t->name = ry_strdup(ry_res_get(res, i, c[CL_NAME]));
		t->command = ry_strdup(ry_res_get(res, i, c[CL_COMMAND]));
		if (!ry_db_parse_text_array(ry_res_get(res, i, c[CL_ENV]), &t->env))
			ry_warn("task %s: cannot read its env", t->name);
		t->timeout_s = (int)ry_res_get_long(res, i, c[CL_TIMEOUT]);
		t->cpu = (int)ry_res_get_long(res, i, c[CL_CPU]);
		t->mem_mb = (int)ry_res_get_long(res, i, c[CL_MEM]);
		t->only_if_changed = get_opt(res, i, c[CL_ONLY_IF]);
		t->changed_known = !ry_res_isnull(res, i, c[CL_CHANGED]) &&
				   ry_db_parse_text_array(ry_res_get(res, i, c[CL_CHANGED]),
							  &t->changed_paths);
		t->revision = get_opt(res, i, c[CL_REVISION]);
		t->service = get_opt(res, i, c[CL_SERVICE]);
		t->source_date_epoch = ry_res_get_long(res, i, c[CL_SDE]);
		if (!ry_db_parse_text_array(ry_res_get(res, i, c[CL_SECRETS]), &t->secrets))
			ry_warn("task %s: cannot read its secrets", t->name);
		t->waits_slot = ids_has(w->claim_queued, w->claim_nqueued, t->id);
		t->ahead = t->waits_slot || ids_has(w->claim_lookahead, w->claim_nlookahead, t->id);
		t->claimed_ms = ry_now_ms();
		w->metrics.cache_ahead_claimed += t->ahead && !t->waits_slot;
		w->metrics.claim_ahead_claimed += t->waits_slot;
		ry_task_table_add(&w->tasks, t, RY_TASK_QUEUED);
	}
	w->claim_nlookahead = 0;
	w->claim_nqueued = 0;
	w->stats.tasks_claimed += ry_res_rows(res);
	const struct ry_res *more = r->nresults > 1 ? r->results[1] : NULL;
	for (int i = 0; more && i < ry_res_rows(more); i++) {
		int64_t id = ry_res_get_long(more, i, 0);
		for (struct ry_task *t = ry_task_table_first(&w->tasks, RY_TASK_QUEUED); t; t = t->next)
			if (t->id == id && !t->image && !t->team) {
				t->image = get_opt(more, i, 1);
				t->team = get_opt(more, i, 2);
			}
	}
	if (w->cache && r->nresults > 3)
		ry_worker_prep_claimed(w, r->results[2]);
	if (w->claim_started_us)
		ry_metrics_claim(&w->metrics, (double)(ry_now_us() - w->claim_started_us) / 1e6,
				 (uint64_t)ry_res_rows(res));
	w->claim_started_us = 0;
	if (ry_res_rows(res))
		ry_worker_soon(w->spawn_ev);
	ry_worker_pump(w);
}

/* Up to room more candidates beyond the free capacity (pkg/sched), after
 * the k chosen; their ids go to ids[0..*n) (RY_CLAIM_BATCH_MAX long) for
 * the reply to mark.  Returns the new number chosen. */
static size_t place_beyond(const struct ry_sched_input *in, size_t *chosen, size_t k, int room,
			   bool cacheable_only, int64_t *ids, size_t *n)
{
	size_t from = k;
	k = ry_sched_place_ahead(in, chosen, k, room < RY_CLAIM_BATCH_MAX ? room : RY_CLAIM_BATCH_MAX,
				 cacheable_only);
	*n = 0;
	for (size_t i = from; i < k; i++)
		ids[(*n)++] = in->tasks[chosen[i]].id;
	return k;
}

/* Claim, step 1 answered: place in C (pkg/sched) among the locked candidates. */
enum cand_col {
	K_ID, K_CPU, K_MEM, K_TEAM, K_EPRIO, K_RANK, K_POOL, K_POOL_ROOM, K_SCARCE, K_SHARE,
	K_WEIGHT, K_TEAM_ROOM, K_SCARCE_AGENT, K_PROTECT, K_GEN_RUNNING, K_GEN_READY,
	K_OTHERS_FREE, K_FARM_CPU, K_FARM_MEM, K_FARM_FREE, K_CACHEABLE, K_N
};
static const char *const cand_cols[K_N] = {
	[K_ID] = "id", [K_CPU] = "cpu", [K_MEM] = "mem_mb", [K_TEAM] = "team",
	[K_EPRIO] = "eprio", [K_RANK] = "rank", [K_POOL] = "pool", [K_POOL_ROOM] = "pool_room",
	[K_SCARCE] = "scarce", [K_SHARE] = "team_share",
	[K_WEIGHT] = "team_weight", [K_TEAM_ROOM] = "team_room",
	[K_SCARCE_AGENT] = "scarce_agent", [K_PROTECT] = "protect", [K_GEN_RUNNING] = "generic_running",
	[K_GEN_READY] = "generic_ready", [K_OTHERS_FREE] = "others_free",
	[K_FARM_CPU] = "farm_cpu", [K_FARM_MEM] = "farm_mem_mb", [K_FARM_FREE] = "farm_free",
	[K_CACHEABLE] = "cacheable",
};

/* The index of name in names; -1: not there. */
static int name_find(const struct ry_strlist *names, const char *name)
{
	for (size_t i = 0; i < names->n; i++)
		if (strcmp(names->items[i], name) == 0)
			return (int)i;
	return -1;
}

/* The index of name in names (added if new). */
static int name_index(struct ry_strlist *names, const char *name)
{
	int i = name_find(names, name);
	if (i >= 0)
		return i;
	ry_strlist_add(names, name);
	return (int)names->n - 1;
}

/* Our finished tasks whose results wait to be sent still run in the
 * database's eyes (those in a completion this claim followed are
 * committed): their teams' shares are taken down by them. */
static void discount_finished(const struct ry_worker *w, struct ry_sched_input *in,
			      const struct ry_strlist *team_names)
{
	static const enum ry_task_phase unsent[] = { RY_TASK_DONE, RY_TASK_RELEASE };
	for (size_t p = 0; p < RY_ARRAY_SIZE(unsent); p++)
		for (const struct ry_task *t = ry_task_table_first(&w->tasks, unsent[p]); t;
		     t = t->next)
			if (t->team)
				ry_sched_team_finished(in, name_find(team_names, t->team), t->cpu,
						       t->mem_mb);
}

static void candidates(void *arg, const struct ry_adb_reply *r)
{
	struct ry_worker *w = arg;
	int c[K_N];
	if (ry_worker_job_failed(r, "look for ready tasks")) {
		if (!r->conn_lost) {
			end_transaction(w, "ROLLBACK");
			claim_back_off(w);
		}
		return;
	}
	const struct ry_res *res = r->results[2];
	if (!ry_worker_columns(res, cand_cols, K_N, c, "claim_placement")) {
		end_transaction(w, "ROLLBACK");
		return;
	}
	size_t n = (size_t)ry_res_rows(res);
	struct ry_sched_task *cand = ry_calloc(n + 1, sizeof(*cand));
	struct ry_sched_team *teams = ry_calloc(n + 1, sizeof(*teams));
	struct ry_sched_pool *pools = ry_calloc(n + 1, sizeof(*pools));
	size_t *chosen = ry_calloc(n + 1, sizeof(*chosen));
	struct ry_strlist team_names = { 0 }, pool_names = { 0 };
	struct ry_sched_input in = { .free = ry_worker_capacity_claimable(w), .tasks = cand, .n = n,
				     .teams = teams, .pools = pools,
				     .seed = (uint64_t)random() << 31 ^ (uint64_t)random() };
	for (size_t i = 0; i < n; i++) {
		int row = (int)i;
		struct ry_sched_task *t = &cand[i];
		t->id = ry_res_get_long(res, row, c[K_ID]);
		t->cpu = (int)ry_res_get_long(res, row, c[K_CPU]);
		t->mem_mb = (int)ry_res_get_long(res, row, c[K_MEM]);
		t->eprio = ry_res_get_double(res, row, c[K_EPRIO]);
		t->rank = ry_res_get_double(res, row, c[K_RANK]);
		t->scarce = strcmp(ry_res_get(res, row, c[K_SCARCE]), "t") == 0;
		/* One we handed back after a miss is not taken ahead again. */
		t->cacheable = strcmp(ry_res_get(res, row, c[K_CACHEABLE]), "t") == 0 &&
			       !ids_has(w->ahead_missed, RY_ARRAY_SIZE(w->ahead_missed), t->id);
		t->team = name_index(&team_names, ry_res_get(res, row, c[K_TEAM]));
		/* A team's share comes with its own walk's rows (the scarce
		 * walk's rows come first and do not carry it). */
		if ((size_t)t->team + 1 > in.nteams || !t->scarce) {
			if ((size_t)t->team + 1 > in.nteams)
				in.nteams = (size_t)t->team + 1;
			teams[t->team].weight = ry_res_get_double(res, row, c[K_WEIGHT]);
			teams[t->team].share = ry_res_get_double(res, row, c[K_SHARE]);
			teams[t->team].room = ry_res_isnull(res, row, c[K_TEAM_ROOM])
						      ? -1 : (int)ry_res_get_long(res, row, c[K_TEAM_ROOM]);
		}
		/* The scarce walk's rows say 0: the teams' rows carry it. */
		int farm_free = (int)ry_res_get_long(res, row, c[K_FARM_FREE]);
		if (farm_free > in.farm_free)
			in.farm_free = farm_free;
		t->pool = -1;
		if (!ry_res_isnull(res, row, c[K_POOL])) {
			t->pool = name_index(&pool_names, ry_res_get(res, row, c[K_POOL]));
			if ((size_t)t->pool + 1 > in.npools) {
				in.npools = (size_t)t->pool + 1;
				pools[t->pool].room = ry_res_isnull(res, row, c[K_POOL_ROOM])
							      ? 0 : (int)ry_res_get_long(res, row, c[K_POOL_ROOM]);
			}
		}
	}
	if (n > 0) {
		in.farm_cpu = ry_res_get_long(res, 0, c[K_FARM_CPU]);
		in.farm_mem_mb = ry_res_get_long(res, 0, c[K_FARM_MEM]);
		in.protect = (struct ry_sched_protect){
			.scarce_agent = strcmp(ry_res_get(res, 0, c[K_SCARCE_AGENT]), "t") == 0,
			.limit = ry_worker_slot_limit(w),
			.protect = (int)ry_res_get_long(res, 0, c[K_PROTECT]),
			.generic_held = (int)ry_res_get_long(res, 0, c[K_GEN_RUNNING]),
			.generic_ready = (int)ry_res_get_long(res, 0, c[K_GEN_READY]),
			.others_free = (int)ry_res_get_long(res, 0, c[K_OTHERS_FREE]),
		};
		discount_finished(w, &in, &team_names);
	}
	/* Slots freed since the claim was sent wait for the next one: each
	 * team offered at most claim_limit rows, and with more slots than
	 * that the rest would go to whichever team still had rows, not to the
	 * one fair share says (with the other two fixes in, 3:1 still ran
	 * 72 % without this one). */
	if (in.free.slots > w->claim_limit)
		in.free.slots = w->claim_limit;
	size_t k = ry_sched_place(&in, chosen);
	/* Beyond the free capacity: cacheable tasks for the cache lookahead,
	 * then any for claim ahead (lookahead.c). */
	k = place_beyond(&in, chosen, k, ry_worker_ahead_room(w), true, w->claim_lookahead,
			 &w->claim_nlookahead);
	k = place_beyond(&in, chosen, k, ry_worker_queue_room(w), false, w->claim_queued,
			 &w->claim_nqueued);

	/* Fewer rows than asked: nothing more is ready for us right now.  As
	 * many or more (one walk per team), and some taken: maybe more, once
	 * there is room.  None taken of what was offered (held by a pool, a
	 * quota or protection): the next event (a completion, NOTIFY, the
	 * heartbeat) asks again, not a loop of empty claims. */
	w->want_claim = k > 0 && (int)n >= w->claim_limit;
	if (n == 0 && w->tasks.n == 0)
		w->idle_check_due = true;
	if (k == 0) {
		end_transaction(w, "COMMIT");
	} else {
		struct ry_pgarray ids = { RY_BUF_INIT, 0 };
		char agent[24];
		for (size_t i = 0; i < k; i++)
			ry_pgarray_add_int(&ids, cand[chosen[i]].id);
		char *a = ry_pgarray_finish(&ids);
		snprintf(agent, sizeof(agent), "%lld", (long long)w->agent_id);
		const char *p[] = { agent, a };
		struct ry_adb_job *job = ry_adb_job_new(claimed, w);
		ry_adb_job_add(job, "SELECT * FROM railyard.claim_tasks($1, $2)", 2, p);
		/* Which of them run in a container (0009_outbox: tasks.image),
		 * and their teams (ry_sched_team_finished, next claim). */
		ry_adb_job_add(job, "SELECT id, image, team FROM railyard.tasks "
				    "WHERE id = ANY ($1::bigint[]) "
				    "AND (image IS NOT NULL OR team IS NOT NULL)", 1, p + 1);
		/* With a cache: the tasks' cache context in the same round trip
		 * (prepare.c; without it the spawn pass asks). */
		if (w->cache)
			ry_adb_job_add(job, "SELECT * FROM railyard.cache_context($1, $2)", 2, p);
		ry_adb_job_add(job, "COMMIT", 0, NULL);
		ry_adb_submit(w->db, job, RY_ADB_NEXT);
		free(a);
	}
	ry_strlist_release(&team_names);
	ry_strlist_release(&pool_names);
	free(cand);
	free(teams);
	free(pools);
	free(chosen);
}

void ry_worker_send_claim(struct ry_worker *w, const struct ry_sched_capacity *free_cap,
			  bool follow)
{
	char agent[24], cpu[16], mem[24], limit[16], slots[16];
	/* With room in the cache lookahead or to claim ahead, more rows, and
	 * the ones too big for what is free now too (pkg/sched takes those
	 * only ahead). */
	int ahead = ry_worker_ahead_room(w) + ry_worker_queue_room(w);
	int lim = free_cap->slots + ahead;
	if (lim > RY_CLAIM_BATCH_MAX)
		lim = RY_CLAIM_BATCH_MAX;
	snprintf(agent, sizeof(agent), "%lld", (long long)w->agent_id);
	snprintf(cpu, sizeof(cpu), "%d", ahead ? w->cpu_cap : free_cap->cpu);
	snprintf(mem, sizeof(mem), "%ld", ahead ? w->mem_cap : free_cap->mem_mb);
	snprintf(limit, sizeof(limit), "%d", lim);
	snprintf(slots, sizeof(slots), "%d", ry_worker_slot_limit(w));
	const char *p[] = { agent, w->labels_pg, w->host.os, w->host.arch, cpu, mem, limit, slots };
	struct ry_adb_job *job = ry_adb_job_new(candidates, w);
	ry_adb_job_add(job, "BEGIN", 0, NULL);
	/* A claim need not wait for its WAL flush: if a crash loses it, the
	 * task is simply ready again, and fencing (agent + attempt) refuses
	 * anything this worker then reports for it.  Results stay durable. */
	ry_adb_job_add(job, "SET LOCAL synchronous_commit = off", 0, NULL);
	ry_adb_job_add(job, "SELECT * FROM railyard.claim_placement("
			    "$1, $2, $3, $4, $5, $6, $7, $8)", 8, p);
	/* Behind a completion (autocommit: no transaction to fall into), the
	 * server runs it the moment the completion commits. */
	ry_adb_submit(w->db, job, follow ? RY_ADB_FOLLOW : RY_ADB_LAST);
	w->want_claim = false;
	w->claim_limit = lim;
	if (w->stats.enabled)
		w->claim_sent_us = ry_now_us();
	w->claim_started_us = ry_now_us();
	w->claim_behind = follow;
}

/* The completion a claim followed was answered: the server starts on the
 * claim now, and its latency counts from here. */
void ry_worker_claim_unblocked(struct ry_worker *w)
{
	if (!w->claim_behind)
		return;
	w->claim_behind = false;
	if (w->claim_sent_us)
		w->claim_sent_us = ry_now_us();
	if (w->claim_started_us)
		w->claim_started_us = ry_now_us();
}
