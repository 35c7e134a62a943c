/*
 * Running processes: deciding whether a claimed task needs one, preparing
 * its workspace, environment and cgroup, starting it (a few per loop turn,
 * so a big claim never stalls the heartbeat), reading its output into its
 * log, its timeout and memory limit, and ending it.
 *
 * Ending a task, for whatever reason (its shell exits, timeout, cancel,
 * lost lease, drain deadline), kills every process it started: the whole
 * cgroup, or without cgroups its process group plus the orphans that come
 * back to the worker (a subreaper) from sessions of their own.  Only then,
 * with its output read to the end, is its result decided: the slot stays
 * taken until nothing of the task is left.
 */
#include "worker/internal.h"

#include "container/container.h"

#include "exec/output.h"
#include "match/match.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TERM_GRACE_S 2		/* SIGTERM → SIGKILL on timeout */
#define OUTPUT_GRACE_S 5	/* after the end: wait this long for the pipe to close */
#define READ_PER_TURN (256 * 1024)	/* output bytes read per task per loop turn */
#define TASK_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static void task_finalize(struct ry_worker *w, struct ry_task *t);
static void close_output(struct ry_task *t);

struct ry_task *ry_worker_task_new(struct ry_worker *w)
{
	struct ry_task *t = ry_calloc(1, sizeof(*t));
	t->w = w;
	t->exit_code = -1;
	t->out_fd = -1;
	t->uid_lock_fd = -1;
	return t;
}

void ry_worker_task_free(struct ry_task *t)
{
	if (t->timer)
		event_free(t->timer);
	if (t->out_ev)
		event_free(t->out_ev);
	if (t->out_fd >= 0)
		close(t->out_fd);
	ry_output_close(t->out);
	ry_cgroup_free(t->cg);
	ry_match_free(t->match);
	ry_worker_release_uid(t->w, t);
	ry_worker_prep_detach(t);
	free(t->name);
	free(t->command);
	free(t->service);
	free(t->team);
	free(t->image);
	free(t->container);
	free(t->revision);
	free(t->only_if_changed);
	ry_strlist_release(&t->env);
	ry_strlist_release(&t->secrets);
	ry_strlist_release(&t->changed_paths);
	free(t->reason);
	free(t->log_path);
	free(t->log_tail);
	free(t->cache_record);
	free(t);
}

void ry_worker_task_forget(struct ry_worker *w, struct ry_task *t)
{
	ry_task_table_remove(&w->tasks, t);
	ry_worker_task_free(t);
}

void ry_worker_task_set_result(struct ry_task *t, const char *outcome, char *reason, int exit_code)
{
	t->outcome = outcome;
	free(t->reason);
	t->reason = reason;
	t->exit_code = exit_code;
	t->finished_us = ry_wall_us();
	if (!t->started_us)
		t->started_us = t->finished_us;
	if (t->started_ms) {
		t->duration_s = (double)(ry_now_ms() - t->started_ms) / 1000.0;
		t->has_duration = true;
	}
	if (t->log_path) {
		free(t->log_tail);
		t->log_tail = ry_exec_log_tail(t->log_path, RY_LOG_TAIL_BYTES);
	}
	ry_task_table_move(&t->w->tasks, t, RY_TASK_DONE, false);
	ry_worker_journal_add(t->w, t);
	/* Its slot is free: a task claimed ahead starts now, not after the
	 * completion's round trip. */
	if (t->started_ms)
		ry_worker_queue_note_run(t->w, ry_now_ms() - t->started_ms);
	if (ry_task_table_count(&t->w->tasks, RY_TASK_QUEUED))
		ry_worker_soon(t->w->spawn_ev);
}

char *ry_worker_safe_name(const char *s)
{
	char *out = ry_strdup(s);
	for (char *p = out; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_'))
			*p = '_';
	return out;
}

/* ---- stopping ----------------------------------------------------------- */

void ry_worker_task_signal(struct ry_worker *w, struct ry_task *t, int sig)
{
	if (t->cg)
		ry_cgroup_signal(t->cg, sig);
	/* Once the shell is reaped its pid may be another's: the group was
	 * killed then (task_exited), in the same turn. */
	if (t->pid && !t->exited)
		ry_exec_kill_group(t->pid, sig);
	if (t->container && sig == SIGKILL)
		ry_worker_container_kill(w, t);
	/* Without a cgroup, what left the group comes back to us once its
	 * parent is gone: a walk of /proc finds and kills it. */
	if (!t->cg && sig == SIGKILL && t->exited)
		t->hunt = ry_worker_hunt_orphans(w);
}

static void task_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ry_task *t = arg;
	struct ry_worker *w = t->w;
	(void)fd;
	(void)what;
	if (t->phase != RY_TASK_RUNNING)
		return;
	if (t->exited) {
		/* The output grace ran out: something that escaped still holds
		 * the pipe.  Decide without the rest of the output. */
		ry_warn("task %s (id %lld): output still open %d s after the end; closing it",
			t->name, (long long)t->id, OUTPUT_GRACE_S);
		close_output(t);
		ry_worker_task_try_finalize(w, t);
		ry_worker_pump(w);
		return;
	}
	if (!t->term_sent) {
		if (t->kill == RY_KILL_NONE) {
			t->kill = RY_KILL_TIMEOUT;
			ry_warn("task %s (id %lld) exceeded its %d s timeout: stopping it",
				t->name, (long long)t->id, t->timeout_s);
		}
		ry_worker_task_signal(w, t, SIGTERM);
		t->term_sent = true;
		struct timeval tv = { TERM_GRACE_S, 0 };
		evtimer_add(t->timer, &tv);
	} else {
		ry_worker_task_signal(w, t, SIGKILL);
	}
}

void ry_worker_task_kill(struct ry_task *t, enum ry_task_kill why)
{
	struct ry_worker *w = t->w;
	if (t->kill == RY_KILL_NONE || why == RY_KILL_LOST || why == RY_KILL_SHUTDOWN ||
	    why == RY_KILL_LEASE)
		t->kill = why;
	if (t->phase == RY_TASK_RUNNING)
		ry_worker_task_signal(w, t, SIGKILL);
}

/* ---- output --------------------------------------------------------------- */

/* Stops reading the task's pipe (at its end, or given up on). */
static void close_output(struct ry_task *t)
{
	if (t->out_ev) {
		event_free(t->out_ev);
		t->out_ev = NULL;
	}
	if (t->out_fd >= 0) {
		close(t->out_fd);
		t->out_fd = -1;
	}
}

static void output_closed(struct ry_worker *w, struct ry_task *t)
{
	close_output(t);
	ry_worker_task_try_finalize(w, t);
}

static void output_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ry_task *t = arg;
	struct ry_worker *w = t->w;
	char buf[65536];
	size_t total = 0;
	(void)what;

	while (total < READ_PER_TURN) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n > 0) {
			ry_output_feed(t->out, buf, (size_t)n);
			total += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		output_closed(w, t);	/* end of file, or an error reading it */
		ry_worker_pump(w);
		return;
	}
}

/* ---- the end of a task ---------------------------------------------------- */

static void usage_from_rusage(struct ry_task *t)
{
	const struct rusage *ru = &t->ru;
	if (!t->exited)
		return;
	if (!t->usage.has_cpu) {
		t->usage.cpu_s = (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 +
				 (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
		t->usage.has_cpu = true;
	}
	if (!t->usage.has_mem) {
		t->usage.mem_peak_bytes = (uint64_t)ru->ru_maxrss * 1024;
		t->usage.has_mem = true;
	}
	if (!t->usage.has_io) {
		t->usage.io_read_bytes = (uint64_t)ru->ru_inblock * 512;
		t->usage.io_write_bytes = (uint64_t)ru->ru_oublock * 512;
		t->usage.has_io = true;
	}
}

/*
 * The result waits for three things: the main process reaped, its output
 * read to the end (or the grace after the end ran out), and without a
 * cgroup, a /proc walk begun after the end has killed its orphans.
 */
void ry_worker_task_try_finalize(struct ry_worker *w, struct ry_task *t)
{
	if (t->phase != RY_TASK_RUNNING || !t->exited || t->out_fd >= 0)
		return;
	if (!t->cg && t->hunt > w->scan_done)
		return;
	task_finalize(w, t);
}

/*
 * Whether an oom kill was the task's own limit: its cgroup's peak reached
 * mem_mb (the kernel charges up to the limit before it kills).  Otherwise
 * an ancestor ran out: the worker's cgroup (systemd's MemoryMax=) or the
 * host.
 */
static bool oom_at_own_limit(const struct ry_task *t)
{
	uint64_t limit = (uint64_t)t->mem_mb << 20;
	return t->mem_mb > 0 && (!t->usage.has_mem || t->usage.mem_peak_bytes + (1u << 20) >= limit);
}

/* Everything of the task is gone and its output read: decide the result. */
static void task_finalize(struct ry_worker *w, struct ry_task *t)
{
	if (t->timer)
		event_del(t->timer);
	close_output(t);
	int out_err = 0;
	if (t->out) {
		ry_output_finish(t->out);
		out_err = ry_output_error(t->out);
		ry_output_close(t->out);
		t->out = NULL;
	}
	if (t->cg) {
		ry_cgroup_usage(t->cg, &t->usage);
		if (ry_cgroup_oom_kills(t->cg) > 0 && w->cg_memory &&
		    (t->kill == RY_KILL_NONE || t->kill == RY_KILL_TIMEOUT))
			t->kill = RY_KILL_OOM;
		if (!ry_cgroup_remove(t->cg)) {
			ry_cgroup_signal(t->cg, SIGKILL);
			ry_worker_bury(w, t->cg);
		} else {
			ry_cgroup_free(t->cg);
		}
		t->cg = NULL;
	}
	usage_from_rusage(t);
	ry_worker_limit_note_peak(w, (long)(t->usage.mem_peak_bytes >> 10));
	ry_task_table_set_pid(&w->tasks, t, 0);
	/* Nothing runs under its uid any more: another task may have it. */
	ry_worker_release_uid(w, t);

	int status = t->wait_status;
	char *why = NULL;
	switch (t->kill) {
	case RY_KILL_LOST:
	case RY_KILL_SHUTDOWN:
		ry_worker_task_forget(w, t);
		return;
	case RY_KILL_LEASE:
		t->handback = RY_HANDBACK_LOST;
		ry_task_table_move(&w->tasks, t, RY_TASK_RELEASE, false);
		return;
	case RY_KILL_TIMEOUT:
		ry_worker_task_set_result(t, "failed",
					  ry_asprintf("timeout: exceeded %d s", t->timeout_s), -1);
		break;
	case RY_KILL_OOM:
		if (w->cg_memory && oom_at_own_limit(t))
			why = ry_asprintf("oom: killed at its memory limit of %d MB (peak %llu MB)",
					  t->mem_mb,
					  (unsigned long long)(t->usage.mem_peak_bytes >> 20));
		else if (w->cg_memory)
			/* Below its own limit: the worker's cgroup (or the host) ran out. */
			why = ry_asprintf("oom: killed by the kernel below its own limit of %d MB: "
					  "the worker's cgroup or the host ran out of memory (peak %llu MB)",
					  t->mem_mb,
					  (unsigned long long)(t->usage.mem_peak_bytes >> 20));
		else
			why = ry_asprintf("oom: used %ld MB, limit %d MB", t->rss_kb / 1024,
					  t->mem_mb);
		ry_worker_task_set_result(t, "failed", why, -1);
		break;
	case RY_KILL_SPACE:
	case RY_KILL_NONE:
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			if (ry_worker_prep_save(w, t))
				return;	/* storing its outputs: the result follows */
			ry_worker_task_set_result(t, "succeeded", NULL, 0);
		} else {
			/* A full disk is the likely cause: say so, it is not the code's fault. */
			char *space = ry_worker_space_note(w);
			struct ry_buf b = RY_BUF_INIT;
			why = ry_exec_describe_status(status);
			ry_buf_puts(&b, why);
			if (space)
				ry_buf_printf(&b, "; %s", space);
			if (out_err)
				ry_buf_printf(&b, "; cannot write its log: %s", strerror(out_err));
			free(why);
			free(space);
			why = ry_buf_detach(&b);
			ry_worker_task_set_result(t, "failed", why,
						  WIFEXITED(status) ? WEXITSTATUS(status)
								    : 128 + WTERMSIG(status));
		}
		break;
	}
	if (out_err)
		ry_worker_space_failed(w, out_err, "cannot write a task's log");
	ry_debug("task %s (id %lld) %s", t->name, (long long)t->id, t->outcome);
	w->want_claim = true;
}

/* The main process is gone: the rest of the task goes with it. */
static void task_exited(struct ry_worker *w, struct ry_task *t, int status,
			const struct rusage *ru)
{
	/* Whatever is left of its group goes now, before its pid can be reused. */
	ry_exec_kill_group(t->pid, SIGKILL);
	t->exited = true;
	t->wait_status = status;
	t->ru = *ru;
	ry_worker_task_signal(w, t, SIGKILL);
	/* Killed processes close the pipe; one that escaped might not. */
	if (t->timer && t->out_fd >= 0) {
		event_del(t->timer);
		struct timeval tv = { OUTPUT_GRACE_S, 0 };
		evtimer_add(t->timer, &tv);
	}
	ry_worker_task_try_finalize(w, t);
}

void ry_worker_sigchld_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ry_worker *w = arg;
	struct rusage ru;
	int status;
	pid_t pid;
	(void)fd;
	(void)what;

	/* Orphans handed to us as subreaper are reaped here too. */
	while ((pid = ry_exec_reap_next(&status, &ru)) > 0) {
		struct ry_task *t = ry_task_table_by_pid(&w->tasks, pid);
		if (t && t->phase == RY_TASK_RUNNING && !t->exited)
			task_exited(w, t, status, &ru);
		else if (!t)
			ry_worker_container_reaped(w, pid, status);
	}
	ry_worker_pump(w);
}

/* ---- memory ------------------------------------------------------------- */

void ry_worker_check_task_memory(struct ry_worker *w, struct ry_task *t)
{
	if (t->exited || t->kill != RY_KILL_NONE)
		return;
	if (t->cg && w->cg_memory) {
		/* The kernel killed something in it: the task is over. */
		if (ry_cgroup_oom_kills(t->cg) > 0) {
			ry_warn("task %s (id %lld): the kernel killed a process of it for memory "
				"(its limit %d MB): stopping it",
				t->name, (long long)t->id, t->mem_mb);
			ry_worker_task_kill(t, RY_KILL_OOM);
		}
	} else if (t->rss_kb / 1024 > t->mem_mb) {
		ry_warn("task %s (id %lld) uses %ld MB, over its %d MB: killing it",
			t->name, (long long)t->id, t->rss_kb / 1024, t->mem_mb);
		ry_worker_task_kill(t, RY_KILL_OOM);
	}
}

/* ---- starting ------------------------------------------------------------ */

static void env_set(struct ry_strlist *env, const char *key, const char *value)
{
	size_t klen = strlen(key);
	char *kv = ry_asprintf("%s=%s", key, value ? value : "");
	for (size_t i = 0; i < env->n; i++) {
		if (strncmp(env->items[i], key, klen) == 0 && env->items[i][klen] == '=') {
			free(env->items[i]);
			env->items[i] = kv;
			return;
		}
	}
	ry_strlist_add(env, kv);
	free(kv);
}

enum precheck {
	PRE_RUN,	/* start a process */
	PRE_DONE,	/* decided without one (skipped, failed, dry run) */
	PRE_LATER,	/* matching goes on at the next turn */
};

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* At most 120 characters of s, for a reason (the rest as "..."). */
static char *clip(const char *s)
{
	return strlen(s) > 120 ? ry_asprintf("%.117s...", s) : ry_strdup(s);
}

static void match_failed(struct ry_task *t, const char *why, const char *path)
{
	char *pat = clip(t->only_if_changed), *p = path ? clip(path) : NULL;
	char *reason = p ? ry_asprintf("only_if_changed pattern '%s' failed on changed path '%s': %s",
				       pat, p, why)
			 : ry_asprintf("invalid only_if_changed pattern '%s': %s", pat, why);
	ry_exec_sanitize_utf8(reason);
	ry_match_free(t->match);
	t->match = NULL;
	ry_worker_task_set_result(t, "failed", reason, -1);
	free(pat);
	free(p);
}

/*
 * Decides whether a claimed task needs a process at all.  only_if_changed
 * is matched against the changed paths until the deadline, then again at
 * the next turn: thousands of paths never hold the loop up.  Any matching
 * error (a limit reached) fails the task and says so.
 */
static enum precheck task_precheck(struct ry_worker *w, struct ry_task *t, int64_t deadline_us)
{
	if (t->only_if_changed && t->changed_known) {
		char *err = NULL;
		if (!t->match) {
			if (!(t->match = ry_match_compile(t->only_if_changed, &err))) {
				match_failed(t, err, NULL);
				free(err);
				return PRE_DONE;
			}
			ry_match_set_limits(t->match, (unsigned long)w->cfg.match_limit,
					    (unsigned long)w->cfg.match_depth_limit);
			t->match_next = 0;
		}
		bool hit = false;
		while (t->match_next < t->changed_paths.n && !hit) {
			const char *path = t->changed_paths.items[t->match_next++];
			int rc = ry_match_run(t->match, path, &err);
			if (rc < 0) {
				match_failed(t, err, path);
				free(err);
				return PRE_DONE;
			}
			hit = rc == 1;
			if (!hit && mono_us() >= deadline_us &&
			    t->match_next < t->changed_paths.n)
				return PRE_LATER;
		}
		ry_match_free(t->match);
		t->match = NULL;
		if (!hit) {
			ry_worker_task_set_result(t, "skipped",
				ry_strdup("unchanged: no changed path matches only_if_changed"), -1);
			return PRE_DONE;
		}
	}
	if (w->cfg.dry_run) {
		ry_worker_task_set_result(t, "succeeded", NULL, 0);
		free(t->log_tail);
		t->log_tail = ry_strdup("dry run: not executed");
		return PRE_DONE;
	}
	return PRE_RUN;
}

/*
 * Reads a secret's value from file under secrets_dir.  The name was checked
 * at submission; the kernel makes sure once more that the path resolves
 * beneath the directory (no .., no absolute symlink out of it).  One final
 * newline is dropped, as editors add it.
 */
static char *read_secret(const struct ry_worker *w, const char *name, const char *file,
			 char **err)
{
	if (!w->cfg.secrets_dir) {
		*err = ry_asprintf("secret %s: this agent has no secrets_dir", name);
		return NULL;
	}
	int dir = open(w->cfg.secrets_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int fd = -1;
	if (dir >= 0) {
		struct open_how how = { .flags = O_RDONLY | O_CLOEXEC,
					.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
		fd = (int)syscall(SYS_openat2, dir, file, &how, sizeof(how));
		if (fd < 0 && errno == ENOSYS && !strstr(file, "..") && *file != '/')
			fd = openat(dir, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		int e = errno;
		close(dir);
		errno = e;
	}
	if (fd < 0) {
		*err = ry_asprintf("secret %s: cannot read %s/%s: %s", name, w->cfg.secrets_dir, file,
				   strerror(errno));
		return NULL;
	}
	struct ry_buf b = RY_BUF_INIT;
	bool ok = ry_read_all(fd, 65536, &b);
	int e = errno;
	close(fd);
	if (!ok) {
		*err = ry_asprintf("secret %s: cannot read %s/%s: %s", name, w->cfg.secrets_dir, file,
				   strerror(e));
		explicit_bzero(b.data, b.cap);
		ry_buf_release(&b);
		return NULL;
	}
	if (b.len > 65536 || memchr(b.data, '\0', b.len)) {
		*err = ry_asprintf("secret %s: %s/%s is %s", name, w->cfg.secrets_dir, file,
				   b.len > 65536 ? "over 64 KB" : "not text (it holds a NUL byte)");
		explicit_bzero(b.data, b.cap);
		ry_buf_release(&b);
		return NULL;
	}
	if (b.len && b.data[b.len - 1] == '\n')
		b.data[--b.len] = '\0';
	if (b.len && b.data[b.len - 1] == '\r')
		b.data[--b.len] = '\0';
	return ry_buf_detach(&b);
}

/* Forgets secret values for good: the memory is cleared first. */
static void wipe(struct ry_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		explicit_bzero(l->items[i], strlen(l->items[i]));
	ry_strlist_release(l);
}

/* pgroup mode: remembers the group so a restarted worker can kill it. */
static void remember_group(struct ry_worker *w, pid_t pid)
{
	struct ry_proc_info pi;
	if (!w->pgroups_path || !ry_exec_proc_info(pid, &pi))
		return;
	/* Rewritten with only live groups once it has grown: bounded. */
	size_t live = ry_task_table_count(&w->tasks, RY_TASK_RUNNING);
	bool rewrite = w->pgroups_lines > 64 && w->pgroups_lines > 2 * live;
	FILE *f = fopen(w->pgroups_path, rewrite ? "w" : "a");
	if (!f)
		return;
	if (rewrite) {
		w->pgroups_lines = 0;
		for (struct ry_task *t = ry_task_table_first(&w->tasks, RY_TASK_RUNNING); t;
		     t = t->next) {
			struct ry_proc_info o;
			if (t->pid && t->pid != pid && !t->exited && ry_exec_proc_info(t->pid, &o)) {
				fprintf(f, "%d %llu\n", (int)t->pid, o.start_ticks);
				w->pgroups_lines++;
			}
		}
	}
	fprintf(f, "%d %llu\n", (int)pid, pi.start_ticks);
	w->pgroups_lines++;
	fclose(f);
}

static bool prepare_cgroup(struct ry_worker *w, struct ry_task *t, char **err)
{
	char leaf[64];
	if (!w->cgroot)
		return true;
	snprintf(leaf, sizeof(leaf), "%lld.%d", (long long)t->id, t->attempt);
	if (!(t->cg = ry_cgroup_create(w->cgroot, leaf, err)))
		return false;
	struct ry_cgroup_limits lim = { .mem_bytes = (uint64_t)t->mem_mb << 20,
					.cpu = w->cg_cpu ? t->cpu : 0 };
	return ry_cgroup_set_limits(t->cg, &lim, err);
}

static void task_start(struct ry_worker *w, struct ry_task *t)
{
	char *err = NULL;
	char *safe = ry_worker_safe_name(t->name);
	char *pdir = ry_asprintf("%s/pipelines/%lld", w->cfg.workdir, (long long)t->pipeline_id);
	char *shared = ry_asprintf("%s/shared", pdir);
	char *ws = ry_asprintf("%s/%lld-%s", pdir, (long long)t->id, safe);
	char *logdir = ry_asprintf("%s/logs/%lld", w->cfg.workdir, (long long)t->pipeline_id);
	struct ry_strlist env = { 0 }, values = { 0 };
	char **envp = NULL;
	char num[32];
	int pipefd[2] = { -1, -1 };
	char **argv = NULL;		/* a container task's runtime command */

	/* Secrets first: a missing one fails the task before anything is made. */
	for (size_t i = 0; i < t->secrets.n; i++) {
		char *eq = strchr(t->secrets.items[i], '=');
		if (!eq)
			continue;
		*eq = '\0';
		char *v = read_secret(w, t->secrets.items[i], eq + 1, &err);
		*eq = '=';
		if (!v) {
			ry_worker_task_set_result(t, "failed", err, -1);
			err = NULL;
			goto out;
		}
		ry_strlist_add(&values, v);
		explicit_bzero(v, strlen(v));
		free(v);
	}

	if (!ry_worker_prepare_dirs(w, t, pdir, shared, ws, logdir, &err)) {
		free(ry_worker_space_note(w));	/* degrades when the disk is full */
		ry_worker_task_set_result(t, "failed",
					  ry_asprintf("cannot prepare workspace: %s", err), -1);
		goto out;
	}
	t->log_path = ry_asprintf("%s/%lld-%s.%d.log", logdir, (long long)t->id, safe, t->attempt);
	if (!(t->out = ry_output_open(t->log_path, (uint64_t)w->cfg.log_max_mb << 20, &err)) ||
	    !ry_exec_output_pipe(pipefd, &err) || !prepare_cgroup(w, t, &err)) {
		free(ry_worker_space_note(w));
		ry_worker_task_set_result(t, "failed", ry_asprintf("cannot start: %s", err), -1);
		goto out;
	}

	/* A fixed, minimal environment: the same task sees the same world. */
	env_set(&env, "PATH", TASK_PATH);
	env_set(&env, "HOME", ws);
	env_set(&env, "TZ", "UTC");
	env_set(&env, "LC_ALL", "C");
	env_set(&env, "LANG", "C");
	snprintf(num, sizeof(num), "%lld", (long long)t->source_date_epoch);
	env_set(&env, "SOURCE_DATE_EPOCH", num);
	snprintf(num, sizeof(num), "%lld", (long long)t->id);
	env_set(&env, "RAILYARD_TASK_ID", num);
	env_set(&env, "RAILYARD_TASK_NAME", t->name);
	snprintf(num, sizeof(num), "%lld", (long long)t->pipeline_id);
	env_set(&env, "RAILYARD_PIPELINE_ID", num);
	snprintf(num, sizeof(num), "%d", t->attempt);
	env_set(&env, "RAILYARD_ATTEMPT", num);
	env_set(&env, "RAILYARD_SERVICE", t->service);
	env_set(&env, "RAILYARD_REVISION", t->revision);
	env_set(&env, "RAILYARD_WORKSPACE", ws);
	env_set(&env, "RAILYARD_PIPELINE_DIR", shared);
	env_set(&env, "RAILYARD_AGENT", w->cfg.name);
	for (size_t i = 0; i < t->env.n; i++) {
		char *eq = strchr(t->env.items[i], '=');
		if (!eq)
			continue;
		*eq = '\0';
		env_set(&env, t->env.items[i], eq + 1);
		*eq = '=';
	}
	for (size_t i = 0, k = 0; i < t->secrets.n; i++) {
		char *eq = strchr(t->secrets.items[i], '=');
		if (!eq)
			continue;
		*eq = '\0';
		env_set(&env, t->secrets.items[i], values.items[k]);
		*eq = '=';
		/* Whatever the task prints, the value shows as ***. */
		ry_output_mask(t->out, values.items[k++]);
	}
	envp = ry_calloc(env.n + 1, sizeof(*envp));
	memcpy(envp, env.items, env.n * sizeof(*envp));

	if (t->image && !(argv = ry_worker_container_argv(w, t, envp, ws, shared, &err))) {
		ry_worker_task_set_result(t, "failed", err, -1);
		err = NULL;
		goto out;
	}
	struct ry_exec_spec spec = {
		.command = t->command,
		.argv = argv,
		.cwd = ws,
		.env = envp,
		.out_fd = pipefd[1],
		.die_with_parent = true,
		/* A container's client runs as the worker; --user sets the ids inside. */
		.set_ids = w->ids != RY_IDS_WORKER && !argv,
		.uid = t->uid,
		.gid = t->gid,
		/* Per-task uids share a pipeline through its group. */
		.set_umask = w->ids == RY_IDS_PER_TASK,
		.umask = 007,
	};
	struct ry_exec_join join;
	if (t->cg) {
		ry_cgroup_join(t->cg, &join);
		spec.join = &join;
	}
	t->started_us = ry_wall_us();
	t->started_ms = ry_now_ms();
	pid_t pid;
	bool started = ry_exec_spawn(&spec, &pid, &err);
	close(pipefd[1]);
	pipefd[1] = -1;
	if (t->cg)
		ry_cgroup_joined(t->cg);
	if (!started) {
		ry_worker_task_set_result(t, "failed", ry_asprintf("cannot start: %s", err), -1);
		goto out;
	}
	ry_task_table_set_pid(&w->tasks, t, pid);
	if (!t->cg)
		remember_group(w, pid);
	t->out_fd = pipefd[0];
	pipefd[0] = -1;
	t->out_ev = event_new(w->base, t->out_fd, EV_READ | EV_PERSIST, output_cb, t);
	event_add(t->out_ev, NULL);
	ry_task_table_move(&w->tasks, t, RY_TASK_RUNNING, false);
	size_t running = ry_task_table_count(&w->tasks, RY_TASK_RUNNING);
	if (running > w->stats.peak_running)
		w->stats.peak_running = running;
	t->timer = evtimer_new(w->base, task_timer_cb, t);
	struct timeval tv = { t->timeout_s, 0 };
	evtimer_add(t->timer, &tv);
out:
	if (t->phase != RY_TASK_RUNNING)
		ry_worker_release_uid(w, t);
	if (t->phase != RY_TASK_RUNNING && t->cg) {
		(void)ry_cgroup_remove(t->cg);
		ry_cgroup_free(t->cg);
		t->cg = NULL;
	}
	if (t->phase != RY_TASK_RUNNING && t->out) {
		ry_output_close(t->out);
		t->out = NULL;
	}
	for (int i = 0; i < 2; i++)
		if (pipefd[i] >= 0)
			close(pipefd[i]);
	free(err);
	free(safe);
	free(pdir);
	free(shared);
	free(ws);
	free(logdir);
	free(envp);
	ry_container_argv_free(argv);
	wipe(&env);
	wipe(&values);
}

/* Claimed tasks start a few per loop turn, matching a few milliseconds'
 * worth per turn: a big claim never stalls heartbeats. */
void ry_worker_spawn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ry_worker *w = arg;
	int started = 0;
	int64_t deadline = mono_us() + RY_MATCH_BUDGET_US;
	(void)fd;
	(void)what;

	struct ry_task *t = ry_task_table_first(&w->tasks, RY_TASK_QUEUED);
	bool again = false;	/* a task still to start at a later turn */
	while (t && started < RY_SPAWN_PER_TURN) {
		struct ry_task *next = t->next;
		if (ry_worker_prep_waiting(t)) {	/* its preparation calls back */
			t = next;
			continue;
		}
		switch (task_precheck(w, t, deadline)) {
		case PRE_RUN:
			if (ry_worker_prep_ready(w, t) && ry_worker_ahead_admit(w, t)) {
				task_start(w, t);
				started++;
			}
			break;
		case PRE_LATER:
			again = true;
			break;
		case PRE_DONE:
			break;
		}
		t = next;
	}
	ry_worker_prep_flush(w);
	if (t || again)
		ry_worker_soon(w->spawn_ev);
	ry_worker_queue_arm(w);
	ry_worker_pump(w);
}

/* ---- leases and leftovers ------------------------------------------------- */

void ry_worker_lease_expired(struct ry_worker *w)
{
	size_t running = ry_task_table_count(&w->tasks, RY_TASK_RUNNING);
	size_t queued = ry_task_table_count(&w->tasks, RY_TASK_QUEUED);
	if (running + queued)
		ry_warn("no heartbeat got through for %d s: our lease has run out, so the "
			"database may give our tasks to others; stopping %zu running and %zu "
			"claimed tasks (reported lost once it is reachable)",
			w->cfg.lease_s, running, queued);
	struct ry_task *t;
	for (t = ry_task_table_first(&w->tasks, RY_TASK_RUNNING); t; t = t->next)
		if (!t->exited)
			ry_worker_task_kill(t, RY_KILL_LEASE);
	while ((t = ry_task_table_first(&w->tasks, RY_TASK_QUEUED))) {
		t->handback = RY_HANDBACK_UNSTARTED;
		ry_task_table_move(&w->tasks, t, RY_TASK_RELEASE, false);
	}
}

/* A process group a previous incarnation recorded (state/<name>.pgroups). */
struct old_group {
	pid_t pgid;
	unsigned long long start;	/* its leader's start time */
	bool valid;			/* the pgid was not reused since */
};

struct leftovers {
	const struct ry_worker *w;
	struct old_group *groups;
	size_t n;
	char *prefix;			/* <workdir>/: where its tasks' workspaces are */
	size_t killed;
	pid_t *pids;			/* killed, to wait for */
	size_t cap;
};

static void leftover_visit(void *arg, const struct ry_proc_info *pi)
{
	struct leftovers *c = arg;
	bool ours = false;
	if (pi->pid == getpid())
		return;
	for (size_t i = 0; i < c->n && !ours; i++)
		ours = c->groups[i].valid && pi->pgrp == c->groups[i].pgid &&
		       pi->start_ticks >= c->groups[i].start;
	if (!ours) {
		/* A daemon that left its group: known by the environment we gave it. */
		char *agent = ry_exec_proc_env(pi->pid, "RAILYARD_AGENT");
		if (agent && strcmp(agent, c->w->cfg.name) == 0) {
			char *ws = ry_exec_proc_env(pi->pid, "RAILYARD_WORKSPACE");
			ours = ws && strncmp(ws, c->prefix, strlen(c->prefix)) == 0;
			free(ws);
		}
		free(agent);
	}
	if (ours && kill(pi->pid, SIGKILL) == 0) {
		if (c->killed == c->cap) {
			c->cap = c->cap ? c->cap * 2 : 64;
			c->pids = ry_realloc(c->pids, c->cap * sizeof(*c->pids));
		}
		c->pids[c->killed++] = pi->pid;
	}
}

/* Waits (up to about two seconds) until the killed processes are gone. */
static void wait_gone(const pid_t *pids, size_t n)
{
	for (int round = 0; round < 200; round++) {
		size_t alive = 0;
		for (size_t i = 0; i < n; i++) {
			struct ry_proc_info pi;
			/* Our own children turn into zombies: reap them. */
			(void)waitpid(pids[i], NULL, WNOHANG);
			alive += ry_exec_proc_info(pids[i], &pi);
		}
		if (!alive)
			return;
		usleep(10000);
	}
}

void ry_worker_kill_leftovers(struct ry_worker *w)
{
	struct leftovers c = { .w = w, .prefix = ry_asprintf("%s/", w->cfg.workdir) };
	size_t cap = 0, ncg = 0;
	FILE *f = fopen(w->pgroups_path, "r");
	int pid;
	unsigned long long start;

	if (w->cgroot)
		ncg = ry_cgroup_root_kill_leftovers(w->cgroot);
	while (f && fscanf(f, "%d %llu", &pid, &start) == 2) {
		if (c.n == cap) {
			cap = cap ? cap * 2 : 64;
			c.groups = ry_realloc(c.groups, cap * sizeof(*c.groups));
		}
		struct ry_proc_info leader;
		/* A live leader with another start time: the pgid was reused. */
		bool reused = ry_exec_proc_info(pid, &leader) && leader.start_ticks != start;
		c.groups[c.n++] = (struct old_group){ pid, start, !reused };
	}
	if (f)
		fclose(f);
	if (!w->cgroot || c.n) {
		struct ry_proc_scan *s = ry_exec_scan_start();
		while (ry_exec_scan_step(s, 4096, leftover_visit, &c))
			;
		ry_exec_scan_free(s);
		wait_gone(c.pids, c.killed);
	}
	if (ncg || c.killed)
		ry_warn("killed what a previous run of agent %s left behind: %zu task cgroups, "
			"%zu processes", w->cfg.name, ncg, c.killed);
	/* A fresh record for this incarnation. */
	if ((f = fopen(w->pgroups_path, "w")))
		fclose(f);
	free(c.groups);
	free(c.pids);
	free(c.prefix);
}
