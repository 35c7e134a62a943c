/*
 * What the files of pkg/worker share (nothing outside pkg/worker includes
 * this).  The worker is split by concern, as PgBouncer's daemon is:
 *
 *   loop.c     the event loop and lifecycle: signals, drain, reload, timers,
 *              the lock and the previous incarnation's leftovers
 *   tasks.c    the task table: one list per phase, a hash on (id, attempt)
 *   proc.c     running processes: start, output, SIGCHLD, timers, limits,
 *              cgroups, what a task used
 *   janitor.c  bounded periodic work: memory sweeps, orphan hunts (no
 *              cgroups), cgroups that could not be removed yet, disk space
 *   retention.c  removing finished pipelines' workspaces and logs
 *   isolation.c  who tasks run as; their directories
 *   dbjobs.c   database jobs: register, heartbeat, complete, offline;
 *              pump() performs what pump.c decides
 *   claim.c    the claim transaction (candidates, placement, lease)
 *   journal.c  the local record of results: kept until the database has them
 *   pump.c     the decision: what the idle connection does next (pure)
 *   stats.c    --stats
 *   httpd.c    /metrics and /healthz
 *   webhooks.c the outbox sender (webhooks = on)
 *   containers.c tasks with an image: podman or docker
 *   probe.c    whether notifications reach the worker (poolers)
 */
#ifndef RY_WORKER_INTERNAL_H
#define RY_WORKER_INTERNAL_H

#include "agent/hostinfo.h"
#include "cgroup/cgroup.h"
#include "cache/cache.h"
#include "config/config.h"
#include "exec/exec.h"
#include "metrics/metrics.h"
#include "sched/sched.h"
#include "throttle/throttle.h"
#include "worker/stats.h"
#include "worker/tasks.h"
#include "worker/worker.h"

#include <event2/util.h>

struct event_base;
struct event;
struct evhttp;
struct ry_adb;
struct ry_worker_webhooks;
struct ry_worker_probe;
struct ry_adb_reply;

#define RY_SPAWN_PER_TURN 16	/* processes started per loop turn */
#define RY_MATCH_BUDGET_US 3000	/* only_if_changed matching per loop turn */
#define RY_LOG_TAIL_BYTES 4096
#define RY_CLAIM_BATCH_MAX 128	/* candidates locked per claim */

/* Who tasks run as (isolation.c). */
enum ry_task_ids {
	RY_IDS_WORKER,		/* not root: as the worker's own user */
	RY_IDS_USER,		/* root: as the task user */
	RY_IDS_PER_TASK,	/* root: a uid per task, a gid per pipeline */
};

struct ry_idpool;
struct ry_retention_dir;

/* Retention's phases (retention.c), one bounded step per loop turn. */
enum ry_retention_phase {
	RY_RET_IDLE,		/* until the next check */
	RY_RET_LIST,		/* reading workdir/pipelines */
	RY_RET_ASK,		/* the pump is to ask the database */
	RY_RET_ASKING,		/* the question is in flight */
	RY_RET_SIZE,		/* measuring (with a size cap only) */
	RY_RET_DECIDE,
	RY_RET_REMOVE,		/* removing, an entry at a time */
};

struct ry_retention {
	enum ry_retention_phase phase;
	int64_t next_ms;		/* monotonic: the next check */
	void *listing;			/* DIR * while listing */
	struct ry_retention_dir *dirs;
	size_t n, cap;
	void *fts;			/* FTS * while measuring or removing */
	size_t walk;			/* the directory being walked */
};

struct ry_worker {
	struct ry_worker_config cfg;
	char *config_path;
	struct ry_strlist flags;	/* key, value, key, value ... */
	char *conninfo;
	char *actor;
	struct ry_hostinfo host;
	char *labels_pg;		/* configured labels + os + arch */
	int cpu_cap;
	long mem_cap;
	struct event_base *base;
	struct ry_adb *db;
	int64_t agent_id;		/* 0 until registered */
	bool registering;
	struct ry_task_table tasks;
	bool want_claim;	/* ready work may exist for us */
	int claim_limit;	/* rows the claim in flight asked for */
	int slot_limit;		/* the adaptive concurrency limit (0: slots) */
	/* the throttle (limit.c) */
	struct ry_throttle throttle;
	struct event *limit_timer;
	bool limit_dirty;	/* the agent row does not have the limit yet */
	bool limit_turned;	/* ... and it changed direction */
	char limit_why[128];	/* the pressure behind the last change */
	char *pressure_err;	/* the last complaint about the pressure files */
	char *memcg_dir;	/* the memory cgroup judged besides the host (memcg.c);
				 * NULL: the host only */
	char *memcg_said;	/* what was logged about it last */
	long mem_recent_kb[16];	/* peaks of the last tasks to finish (a ring) */
	unsigned mem_recent_n;	/* tasks noted so far */
	bool cg_cpu;		/* the kernel enforces cpu weight/quota */
	bool hb_due;
	bool idle_check_due;
	bool forecasts_due;	/* make pending submission forecasts when idle */
	int64_t hot_ms;		/* monotonic: the last claim or completion went out */
	int64_t background_ms;	/* monotonic: the last statistics/forecasts job went out */
	int64_t stats_backlog;	/* runs queued for the statistics, as that job left them */
	struct event *background_timer;	/* pumps when housekeeping may go (pump.h) */
	bool draining;		/* no more claims */
	bool offline_sent;
	int exit_code;
	int64_t retry_after_ms;	/* monotonic: register/complete/release wait until then */
	int backoff_ms;		/* the pause after the next failed job */
	int64_t claim_after_ms;	/* monotonic: claims wait until then (after a failure) */
	int claim_backoff_ms;
	/* results (journal.c keeps them across restarts) */
	struct ry_journal *journal;
	bool journal_warned;
	size_t suspects;	/* the first N results hold one the database refuses */
	size_t complete_limit;	/* results in the next completion job */
	bool replaying;		/* sending a previous run's results before registering */
	bool takeover;		/* registration's, once the replay is done */
	int64_t replay_agent;	/* the agent id the replayed results are reported as */
	int64_t claim_sent_us;		/* monotonic: claim in flight since (--stats) */
	struct event *hb_timer;
	struct event *spawn_ev;
	struct event *retry_ev;
	struct event *drain_timer;
	struct event *sigs[5];
	struct ry_worker_stats stats;
	/* the build cache (prepare.c); NULL: disabled, tasks run uncached */
	struct ry_cache_config cache_cfg;
	struct ry_cache_ctx *cache;
	/* the cache lookahead (lookahead.c): cacheable tasks claimed beyond the
	 * free slots to be looked up, up to a window that grows by one with
	 * each hit and halves with each miss (at most cache_lookahead) */
	int ahead_window;
	int64_t claim_lookahead[RY_CLAIM_BATCH_MAX];	/* the claim in flight's lookahead ids */
	size_t claim_nlookahead;
	int64_t ahead_missed[64];	/* tasks handed back after a miss (a ring):
					 * not taken ahead again */
	unsigned ahead_missed_n;
	/* claim ahead (lookahead.c): any task claimed beyond the free slots,
	 * queued to start the moment one frees; the window grows by one with
	 * each that starts in time and halves with each handed back after
	 * claim_ahead_hold_ms (at most claim_ahead) */
	int queue_window;
	int64_t claim_queued[RY_CLAIM_BATCH_MAX];	/* the claim in flight's claimed-ahead ids */
	size_t claim_nqueued;
	struct event *queue_timer;	/* the earliest hold deadline: a spawn pass */

	/* containment */
	struct ry_cgroup_root *cgroot;	/* NULL: process groups (pgroup) */
	bool cg_memory;			/* the kernel enforces mem_mb */
	struct ry_cgroup **graveyard;	/* task cgroups still to remove */
	size_t ngrave, grave_cap;
	int lock_fd;			/* flock on state/<name>.lock, held for life */
	char *state_dir;		/* <workdir>/state: lock, journal, process groups */
	char *pgroups_path;		/* pgroup mode: groups a crash would leave behind */
	size_t pgroups_lines;		/* lines appended since the file was rewritten */

	/* janitor (janitor.c) */
	struct event *janitor_ev;
	unsigned sweep_gen;		/* memory sweep over running tasks */
	bool sweeping;
	struct ry_proc_scan *scan;	/* pgroup mode: /proc walk in progress */
	bool scan_again;		/* another walk was asked for meanwhile */
	bool scan_rss;			/* this walk also samples memory */
	unsigned scan_seq;		/* walks started */
	unsigned scan_done;		/* the last walk that ended */

	/* isolation */
	enum ry_task_ids ids;
	uid_t task_uid;			/* the task user */
	gid_t task_gid;
	struct ry_idpool *uids;		/* per-task uids */
	struct ry_idpool *gids;		/* per-pipeline gids */
	bool uid_locks;			/* uids are locked in /run across workers */
	char *identity;			/* for messages and the agent row */
	bool top_dirs_made;		/* workdir/pipelines and workdir/logs */

	struct ry_retention retention;

	/* health */
	char *degraded;			/* why no new work is taken; NULL: healthy */
	bool space_trouble;		/* a write failed for lack of space (or quota) */
	long free_mb;			/* on the workdir's filesystem; -1 unknown */

	/* the lease as this worker's own monotonic clock sees it */
	int64_t hb_sent_ms;		/* the heartbeat in flight was sent then */
	int64_t lease_until_ms;		/* 0 until registered */
	struct event *lease_timer;

	/* what /metrics shows (httpd.c) */
	struct ry_metrics metrics;
	struct evhttp *http;			/* NULL: not serving */
	int64_t claim_started_us;		/* monotonic: the claim in flight was sent */
	bool claim_behind;			/* it follows a completion in flight: its
						 * time counts from that one's reply */
	struct ry_worker_webhooks *webhooks;	/* NULL: webhooks = off */

	struct ry_worker_probe *probe;		/* probe.c: do NOTIFYs reach us? */

	/* containers (containers.c) */
	char *container_path;			/* podman or docker; NULL: none */
	const char *container_kind;		/* "podman" or "docker" */
	bool container_init;			/* --init works */
	struct ry_strlist container_options;	/* container_options, split */
	struct ry_worker_container_rm *container_rms;	/* removals in flight */
};

/* dbjobs.c */
void ry_worker_pump(struct ry_worker *w);
/* Before the loop: opens the journal; a previous run's results wait to be sent. */
void ry_worker_journal_open(struct ry_worker *w);
/* Writes t's result to the journal (made durable before it is sent). */
void ry_worker_journal_add(struct ry_worker *w, struct ry_task *t);
void ry_worker_shutdown_now(struct ry_worker *w, int code);
void ry_worker_update_agent(struct ry_worker *w);

/* proc.c */
/* Before the loop: what the previous incarnation left running dies. */
void ry_worker_kill_leftovers(struct ry_worker *w);
struct ry_task *ry_worker_task_new(struct ry_worker *w);
void ry_worker_task_free(struct ry_task *t);
/* A task name as a file name: anything but [A-Za-z0-9._-] becomes _. */
char *ry_worker_safe_name(const char *s);
/* Drops t from the table and frees it. */
void ry_worker_task_forget(struct ry_worker *w, struct ry_task *t);
/* Stops t's processes; why decides what, if anything, is reported. */
void ry_worker_task_kill(struct ry_task *t, enum ry_task_kill why);
/* Records t's result and moves it to DONE. */
void ry_worker_task_set_result(struct ry_task *t, const char *outcome, char *reason,
			       int exit_code);
void ry_worker_sigchld_cb(evutil_socket_t fd, short what, void *arg);
void ry_worker_spawn_cb(evutil_socket_t fd, short what, void *arg);
/* Kill every process t started (its cgroup, or its group). */
void ry_worker_task_signal(struct ry_worker *w, struct ry_task *t, int sig);
/* Our lease ran out by our own clock: stop everything, hand it back. */
void ry_worker_lease_expired(struct ry_worker *w);
/* janitor.c: one walk of /proc saw pi (pgroup mode). */
void ry_worker_scan_visit(struct ry_worker *w, const struct ry_proc_info *pi);
/* janitor.c: a /proc walk ended (pgroup mode). */
void ry_worker_scan_done(struct ry_worker *w);
/* proc.c: decides t's result once nothing of it is left (see proc.c). */
void ry_worker_task_try_finalize(struct ry_worker *w, struct ry_task *t);
/* Checks one running task's memory (cgroup: OOM kills). */
void ry_worker_check_task_memory(struct ry_worker *w, struct ry_task *t);

/* janitor.c */
/* Heartbeat tick: starts a memory sweep over the running tasks. */
void ry_worker_janitor_tick(struct ry_worker *w);
/* A task ended without cgroups: hunt for what it left behind.  Returns the
 * number of the walk that does it (done once w->scan_done reaches it). */
unsigned ry_worker_hunt_orphans(struct ry_worker *w);
/* Keeps a task cgroup that is not empty yet, to remove later. */
void ry_worker_bury(struct ry_worker *w, struct ry_cgroup *cg);
void ry_worker_janitor_cb(evutil_socket_t fd, short what, void *arg);
void ry_worker_janitor_release(struct ry_worker *w);

/* isolation.c */
/* Before the loop: the task user (created if missing), its ids. */
bool ry_worker_isolation_init(struct ry_worker *w) RY_MUST_CHECK;
void ry_worker_isolation_release(struct ry_worker *w);
const char *ry_worker_identity(struct ry_worker *w);
/* The task's directories, owned and moded for who it runs as; sets
 * t->uid/gid (and takes a uid, per-task). */
bool ry_worker_prepare_dirs(struct ry_worker *w, struct ry_task *t, const char *pdir,
			    const char *shared, const char *ws, const char *logdir,
			    char **err) RY_MUST_CHECK;
void ry_worker_release_uid(struct ry_worker *w, struct ry_task *t);
/* Retention removed a pipeline directory: its gid is free again. */
void ry_worker_forget_pipeline_gid(struct ry_worker *w, gid_t gid);

/* janitor.c: disks */
/* Measures the workdir's free space and decides whether the agent is
 * degraded (logs the change).  Called every heartbeat tick. */
void ry_worker_check_space(struct ry_worker *w);
/* A write failed with err (ENOSPC, EDQUOT ...): degrade now if it is space. */
void ry_worker_space_failed(struct ry_worker *w, int err, const char *what);
/* "no space left on device: ..." when the workdir's disk is full, else NULL. */
char *ry_worker_space_note(struct ry_worker *w);

/* retention.c */
/* Heartbeat tick: starts a retention pass when one is due. */
void ry_worker_retention_tick(struct ry_worker *w);
/* One bounded step; true while more steps follow without waiting. */
bool ry_worker_retention_step(struct ry_worker *w);
/* The pipeline ids to ask about (a text[] literal); marks the question sent. */
char *ry_worker_retention_ids(struct ry_worker *w);
void ry_worker_retention_known(struct ry_worker *w, int64_t pipeline_id, bool known,
			       double finished_ago);
void ry_worker_retention_answered(struct ry_worker *w, bool ok);
void ry_worker_retention_release(struct ry_worker *w);

/* loop.c */
/* Runs ev's callback at the next loop turn, after the loop has polled:
 * work done a piece per turn never starves the sockets and timers. */
void ry_worker_soon(struct event *ev);
void ry_worker_set_labels(struct ry_worker *w);
/* The lease is good until now + lease_s from when the heartbeat was sent. */
void ry_worker_lease_renewed(struct ry_worker *w, int64_t sent_ms);

/* httpd.c: /metrics and /healthz on cfg.http_listen (a failure is logged). */
void ry_worker_httpd_start(struct ry_worker *w);
void ry_worker_httpd_stop(struct ry_worker *w);

/* webhooks.c: with webhooks = on, a second connection sends the outbox. */
void ry_worker_webhooks_start(struct ry_worker *w);
void ry_worker_webhooks_stop(struct ry_worker *w);

/* probe.c: whether NOTIFYs reach the main connection (transaction-mode
 * poolers lose them); _init before the connection starts, _start after
 * each connect; _notified is true for the probe's own channel. */
void ry_worker_probe_init(struct ry_worker *w);
void ry_worker_probe_start(struct ry_worker *w);
bool ry_worker_probe_notified(struct ry_worker *w, const char *channel, const char *payload);
void ry_worker_probe_release(struct ry_worker *w);

/* containers.c */
/* Before the loop: finds the runtime (container_runtime). */
void ry_worker_containers_init(struct ry_worker *w);
/*
 * Before the loop (blocking): removes the containers a previous run of
 * this agent started.  A worker killed with SIGKILL cannot remove them,
 * and the runtime's monitor lives outside the task's cgroup, so the
 * cgroup and process-group sweep does not reach them.
 */
void ry_worker_containers_kill_leftovers(struct ry_worker *w);
/* The runtime command that runs t in its image; NULL with *err. */
char **ry_worker_container_argv(struct ry_worker *w, struct ry_task *t, char *const *envp,
				const char *ws, const char *shared, char **err);
/* Kills t's container (once; retried until the runtime removes it): its
 * client's death does not stop it. */
void ry_worker_container_kill(struct ry_worker *w, struct ry_task *t);
/* The SIGCHLD handler's: true when pid was one of our removals. */
bool ry_worker_container_reaped(struct ry_worker *w, pid_t pid, int status);
/* At exit: forgets the removals in flight (the next start finishes them). */
void ry_worker_containers_release(struct ry_worker *w);

/* prepare.c: a task's tree and the build cache (docs/cache.md) */
struct ry_adb_job;
struct ry_res;
/* Before the loop: the cache's settings from the config file and the stores. */
bool ry_worker_cache_open(struct ry_worker *w) RY_MUST_CHECK;
void ry_worker_cache_close(struct ry_worker *w);
/* SIGHUP: re-reads the cache_* keys; those of the key (cache_toolchain,
 * cache_nondeterministic, cache_flaky) apply to the next lookup, the
 * store's need a restart (a warning says so).  False with *err, nothing
 * changed, when they are invalid. */
bool ry_worker_cache_reload(struct ry_worker *w, char **err) RY_MUST_CHECK;
/* Spawn pass: true when t may start now; false while its tree, restores
 * or cache lookup are under way (or were just asked for). */
bool ry_worker_prep_ready(struct ry_worker *w, struct ry_task *t);
/* Whether t waits for its preparation (the spawn pass skips it). */
bool ry_worker_prep_waiting(const struct ry_task *t);
/* End of a spawn pass: asks for the context of the tasks it met. */
void ry_worker_prep_flush(struct ry_worker *w);
/* The claim's reply carried railyard.cache_context of the claimed tasks:
 * their preparation starts now, before the spawn pass meets them. */
void ry_worker_prep_claimed(struct ry_worker *w, const struct ry_res *res);
/* t succeeded: true when its outputs are being stored (its result follows). */
bool ry_worker_prep_save(struct ry_worker *w, struct ry_task *t);
/* t is freed: its preparation is abandoned. */
void ry_worker_prep_detach(struct ry_task *t);
/* Completion job: adds railyard.cache_record for the SENDING tasks; true if added. */
bool ry_worker_prep_record(struct ry_worker *w, struct ry_adb_job *job, const char *agent);
void ry_worker_prep_recorded(struct ry_worker *w, const struct ry_res *res);
/* lookahead.c: tasks claimed beyond the free slots: cacheable ones to be
 * looked up (docs/cache.md, "The cache lookahead"), and any to start the
 * moment a slot frees (docs/operations.md, "Claim ahead") */
/* How many more cacheable ones a claim may take now (0 without a cache). */
int ry_worker_ahead_room(const struct ry_worker *w);
/* A cache lookup's outcome (an unusable hit is a miss): sizes the window. */
void ry_worker_ahead_note(struct ry_worker *w, bool hit);
/* How many more of any kind a claim may queue now (0: claim_ahead off). */
int ry_worker_queue_room(const struct ry_worker *w);
/* What a claim may fill now: the free capacity less what the tasks claimed
 * ahead and waiting will take (they have the next free slots; a claim
 * placing into those too would run more than the limit). */
struct ry_sched_capacity ry_worker_capacity_claimable(const struct ry_worker *w);
/* A task ran for run_ms: a short one reopens a closed claim-ahead window. */
void ry_worker_queue_note_run(struct ry_worker *w, int64_t run_ms);
/* At start and after a reload: the window within 1..claim_ahead. */
void ry_worker_queue_configure(struct ry_worker *w);
/* End of a spawn pass: the timer for the earliest hold deadline. */
void ry_worker_queue_arm(struct ry_worker *w);
/* t is to run (no cache hit): true when it may now (it held a slot, or
 * takes a free one); false when it waits for one (claimed ahead, within
 * its hold) or was handed back. */
bool ry_worker_ahead_admit(struct ry_worker *w, struct ry_task *t);
/* t's cache_record element as JSON text (the journal keeps it with the
 * result, so a restarted worker still records the outputs), or NULL. */
char *ry_worker_prep_record_json(const struct ry_task *t);

/* What the tasks holding slots leave free. */
struct ry_sched_capacity ry_worker_capacity_free(const struct ry_worker *w);
/* Tasks the worker admits now: its concurrency limit, at most slots. */
int ry_worker_slot_limit(const struct ry_worker *w);
/* dbjobs.c: whether a job failed (logged as "cannot WHAT: ..."). */
bool ry_worker_job_failed(const struct ry_adb_reply *r, const char *what);
/* The shortest pause after a failed job (register, completion, claim). */
#define RY_WORKER_BACKOFF_MIN_MS 500
struct ry_res;
/* dbjobs.c: looks up every name in cols among res's columns (idx[i] is
 * cols[i]'s index); false, logged naming what, when one is missing. */
bool ry_worker_columns(const struct ry_res *res, const char *const *cols, int n, int *idx,
		       const char *what);
/* claim.c: one claim transaction for up to the free capacity (pump decides);
 * follow: sent behind the results in flight, in their round trip. */
void ry_worker_send_claim(struct ry_worker *w, const struct ry_sched_capacity *free_cap,
			  bool follow);
void ry_worker_claim_unblocked(struct ry_worker *w);

/* limit.c: the adaptive concurrency limit */
void ry_worker_limit_start(struct ry_worker *w);
void ry_worker_limit_reload(struct ry_worker *w);
/* A reload: the throttle's settings move from c (new) into cfg. */
void ry_worker_limit_take_config(struct ry_worker_config *cfg, struct ry_worker_config *c);
void ry_worker_limit_free(struct ry_worker *w);
/* A task finished having used peak_kb at most (0: unknown): a sample of
 * what the next one may take. */
void ry_worker_limit_note_peak(struct ry_worker *w, long peak_kb);
void ry_worker_send_limit(struct ry_worker *w);

/* memcg.c: resolves memory_cgroup into memcg_dir (at start and at each
 * reload) and logs which memory the throttle judges when that changes. */
void ry_worker_memcg_resolve(struct ry_worker *w);
void ry_worker_memcg_release(struct ry_worker *w);

#endif
