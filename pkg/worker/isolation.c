/*
 * Who tasks run as, and the directories they get (task isolation).
 *
 * As root (the usual farm setup) tasks never run as root, nor as the
 * worker's user:
 *   task_ids = per-task (default): each running task gets a uid of its own
 *     and each pipeline a gid of its own, both from the task user's
 *     subordinate ranges (/etc/subuid, /etc/subgid; given to it with
 *     usermod on first start).  A task cannot signal, trace or read the
 *     /proc files (environ: secrets) of the worker or of any other task,
 *     and a pipeline's directories (mode 2770, group = the pipeline's gid)
 *     are closed to every other pipeline.  Tasks of one pipeline share its
 *     group, so they share its workspaces, as the shared directory needs.
 *   task_ids = user: every task runs as the task user itself; workspaces
 *     are 0700 and owned by it.  Tasks are out of the worker's reach but
 *     not of each other's.
 * Not as root, tasks run as the worker's user (see docs/operations.md for
 * what that exposes); the worker is non-dumpable either way, so its
 * /proc/<pid>/environ and memory stay closed to tasks of the same uid.
 *
 * Logs are the worker's: logs/ is 0700, each log 0600.
 */
#include "worker/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SUBID_COUNT 65536
#define SUBID_MIN 100000
#define UID_LOCK_DIR "/run/railyard/task-uids"

struct ry_idpool {
	uint32_t base;
	uint32_t count;
	unsigned char *used;	/* bitmap: in use by this worker */
	uint32_t cursor;	/* uids: round-robin, so a uid is reused late */
};

static bool pool_used(const struct ry_idpool *p, uint32_t i)
{
	return p->used[i / 8] & (1u << (i % 8));
}

static void pool_mark(struct ry_idpool *p, uint32_t i, bool on)
{
	if (on)
		p->used[i / 8] |= (unsigned char)(1u << (i % 8));
	else
		p->used[i / 8] &= (unsigned char)~(1u << (i % 8));
}

static struct ry_idpool *pool_new(uint32_t base, uint32_t count)
{
	struct ry_idpool *p = ry_calloc(1, sizeof(*p));
	p->base = base;
	p->count = count;
	p->used = ry_calloc((count + 7) / 8, 1);
	return p;
}

static void pool_free(struct ry_idpool *p)
{
	if (p) {
		free(p->used);
		free(p);
	}
}

/* ---- the task user and its subordinate ranges -------------------------- */

/* Runs a tool (useradd, usermod) and waits; its output goes to *out. */
static bool run_tool(struct ry_worker *w, const char *command, char **out)
{
	char *env[] = { (char *)"PATH=/usr/sbin:/usr/bin:/sbin:/bin", (char *)"LC_ALL=C", NULL };
	int fds[2];
	char *err = NULL;
	pid_t pid;
	int status = 0;
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_puts(&b, "");
	(void)w;
	if (!ry_exec_output_pipe(fds, &err)) {
		*out = err;
		return false;
	}
	(void)fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) & ~O_NONBLOCK);
	struct ry_exec_spec spec = { .command = command, .cwd = "/", .env = env, .out_fd = fds[1] };
	bool ok = ry_exec_spawn(&spec, &pid, &err);
	close(fds[1]);
	if (ok) {
		if (!ry_read_all(fds[0], 65536, &b))
			ry_buf_puts(&b, " (output unreadable)");
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	} else {
		ry_buf_puts(&b, err);
		free(err);
	}
	close(fds[0]);
	*out = ry_buf_detach(&b);
	(*out)[strcspn(*out, "\n")] = '\0';
	return ok;
}

/* name's range in /etc/subuid or /etc/subgid (by name or numeric id). */
static bool subid_range(const char *file, const char *name, unsigned long id, uint32_t *base,
			uint32_t *count, unsigned long long *highest)
{
	FILE *f = fopen(file, "r");
	char line[512];
	bool found = false;
	*highest = 0;
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		char who[256];
		unsigned long long start, n;
		if (sscanf(line, "%255[^:]:%llu:%llu", who, &start, &n) != 3)
			continue;
		if (start + n > *highest)
			*highest = start + n;
		char idbuf[32];
		snprintf(idbuf, sizeof(idbuf), "%lu", id);
		if (!found && (strcmp(who, name) == 0 || strcmp(who, idbuf) == 0) && n >= 1024 &&
		    start + n <= 0xfffffffeULL) {
			*base = (uint32_t)start;
			*count = n > SUBID_COUNT ? SUBID_COUNT : (uint32_t)n;
			found = true;
		}
	}
	fclose(f);
	return found;
}

static bool ensure_task_user(struct ry_worker *w, struct passwd *pw_out)
{
	struct passwd *pw = getpwnam(w->cfg.task_user);
	if (!pw) {
		char *cmd = ry_asprintf("useradd --system --user-group --no-create-home "
					"--home-dir /nonexistent --shell /usr/sbin/nologin "
					"--comment 'railyard tasks' %s 2>&1", w->cfg.task_user);
		char *out = NULL;
		bool ok = run_tool(w, cmd, &out);
		/* Another worker may have created it meanwhile: look again. */
		pw = getpwnam(w->cfg.task_user);
		if (pw)
			ry_info("created the task user %s (uid %d)", w->cfg.task_user, (int)pw->pw_uid);
		else
			ry_error("cannot create the task user %s: useradd: %s", w->cfg.task_user,
				 ok ? "the user does not exist afterwards" : out);
		free(out);
		free(cmd);
		if (!pw)
			return false;
	}
	*pw_out = *pw;
	return true;
}

/* The task user's subordinate uid and gid ranges, given to it when it has
 * none: the first 65536-aligned block above every range already given. */
static bool ensure_subids(struct ry_worker *w, const struct passwd *pw)
{
	uint32_t ub = 0, uc = 0, gb = 0, gc = 0;
	unsigned long long hu, hg;
	bool have_u = subid_range("/etc/subuid", w->cfg.task_user, pw->pw_uid, &ub, &uc, &hu);
	bool have_g = subid_range("/etc/subgid", w->cfg.task_user, pw->pw_uid, &gb, &gc, &hg);
	if (!have_u || !have_g) {
		unsigned long long high = hu > hg ? hu : hg;
		unsigned long long start = high < SUBID_MIN ? SUBID_MIN : high;
		start = (start + SUBID_COUNT - 1) / SUBID_COUNT * SUBID_COUNT;
		struct ry_buf c = RY_BUF_INIT;
		ry_buf_puts(&c, "touch /etc/subuid /etc/subgid && usermod");
		if (!have_u)
			ry_buf_printf(&c, " --add-subuids %llu-%llu", start, start + SUBID_COUNT - 1);
		if (!have_g)
			ry_buf_printf(&c, " --add-subgids %llu-%llu", start, start + SUBID_COUNT - 1);
		ry_buf_printf(&c, " %s 2>&1", w->cfg.task_user);
		char *cmd = ry_buf_detach(&c);
		char *out = NULL;
		if (!run_tool(w, cmd, &out))
			ry_warn("cannot give %s subordinate ids: usermod: %s", w->cfg.task_user, out);
		free(out);
		free(cmd);
		have_u = subid_range("/etc/subuid", w->cfg.task_user, pw->pw_uid, &ub, &uc, &hu);
		have_g = subid_range("/etc/subgid", w->cfg.task_user, pw->pw_uid, &gb, &gc, &hg);
		if (have_u && have_g)
			ry_info("gave the task user %s subordinate uids %u-%u and gids %u-%u",
				w->cfg.task_user, ub, ub + uc - 1, gb, gb + gc - 1);
	}
	if (!have_u || !have_g)
		return false;
	w->uids = pool_new(ub, uc);
	w->gids = pool_new(gb, gc);
	/* Spread agents over the range: two on one host rarely meet. */
	w->uids->cursor = (uint32_t)(ry_fnv1a64(w->cfg.name, strlen(w->cfg.name)) % uc);
	return true;
}

/* Every directory above path must be searchable by "others" (task ids
 * are nobody's owner or group there). */
static bool reachable(const char *path, char **err)
{
	char *p = ry_strdup(path);
	bool ok = true;
	char *s;
	while (ok && (s = strrchr(p, '/')) != NULL) {
		*s = '\0';
		const char *dir = *p ? p : "/";
		struct stat st;
		if (stat(dir, &st) == 0 && !(st.st_mode & S_IXOTH)) {
			*err = ry_asprintf("tasks cannot reach the workdir %s: %s is mode %04o (make it "
					   "searchable by others, chmod o+x, or use another workdir)",
					   path, dir, (unsigned)(st.st_mode & 07777));
			ok = false;
		}
		if (!*p)
			break;
	}
	free(p);
	return ok;
}

/* A pipeline directory this worker finds at start keeps its gid. */
static void adopt_pipeline_gids(struct ry_worker *w)
{
	char *dir = ry_asprintf("%s/pipelines", w->cfg.workdir);
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		struct stat st;
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(st.st_mode) && st.st_gid >= w->gids->base &&
		    st.st_gid - w->gids->base < w->gids->count)
			pool_mark(w->gids, st.st_gid - w->gids->base, true);
	}
	if (d)
		closedir(d);
	free(dir);
}

bool ry_worker_isolation_init(struct ry_worker *w)
{
	char *err = NULL;
	/* Tasks of our own uid still cannot read our environ, memory or fds. */
	(void)prctl(PR_SET_DUMPABLE, 0);
	if (geteuid() != 0) {
		w->ids = RY_IDS_WORKER;
		ry_warn("not running as root: tasks run as this worker's user (uid %d) and can "
			"read what it can (its files, the db_passfile): see docs/operations.md",
			(int)geteuid());
		return true;
	}
	struct passwd pw;
	if (!ensure_task_user(w, &pw))
		return false;
	w->task_uid = pw.pw_uid;
	w->task_gid = pw.pw_gid;
	w->ids = RY_IDS_USER;
	if (w->cfg.task_uid_per_task) {
		if (ensure_subids(w, &pw)) {
			w->ids = RY_IDS_PER_TASK;
			if (ry_exec_mkdirs_mode(UID_LOCK_DIR, 0700, &err))
				w->uid_locks = true;
			else
				ry_warn("%s: uids are not coordinated with other workers on this host",
					err);
			free(err);
			err = NULL;
			adopt_pipeline_gids(w);
		} else {
			ry_warn("the task user %s has no subordinate ids: every task runs as %s "
				"(task_ids = user)", w->cfg.task_user, w->cfg.task_user);
		}
	}
	char *pipelines = ry_asprintf("%s/pipelines", w->cfg.workdir);
	bool ok = reachable(pipelines, &err);
	free(pipelines);
	if (!ok) {
		ry_error("%s", err);
		free(err);
		return false;
	}
	ry_info("tasks run as %s", ry_worker_identity(w));
	return true;
}

void ry_worker_isolation_release(struct ry_worker *w)
{
	pool_free(w->uids);
	pool_free(w->gids);
	w->uids = w->gids = NULL;
}

const char *ry_worker_identity(struct ry_worker *w)
{
	free(w->identity);
	switch (w->ids) {
	case RY_IDS_PER_TASK:
		w->identity = ry_asprintf("uid per task (%u-%u), gid per pipeline (%u-%u)",
					  w->uids->base, w->uids->base + w->uids->count - 1,
					  w->gids->base, w->gids->base + w->gids->count - 1);
		break;
	case RY_IDS_USER:
		w->identity = ry_asprintf("user %s (uid %d)", w->cfg.task_user, (int)w->task_uid);
		break;
	case RY_IDS_WORKER:
		w->identity = ry_asprintf("the worker's own user (uid %d)", (int)geteuid());
		break;
	}
	return w->identity;
}

/* ---- per task ------------------------------------------------------------ */

/* A uid no other running task of this host holds (a lock in /run says so
 * across workers). */
static bool take_uid(struct ry_worker *w, struct ry_task *t, char **err)
{
	struct ry_idpool *p = w->uids;
	if (t->has_uid)
		return true;	/* prepared before (prepare.c) */
	for (uint32_t k = 0; k < p->count; k++) {
		uint32_t i = (p->cursor + k) % p->count;
		if (pool_used(p, i))
			continue;
		int fd = -1;
		if (w->uid_locks) {
			char path[64];
			snprintf(path, sizeof(path), UID_LOCK_DIR "/%u", p->base + i);
			fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
			if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
				close(fd);
				continue;	/* another worker's task has it */
			}
		}
		pool_mark(p, i, true);
		p->cursor = (i + 1) % p->count;
		t->uid = p->base + i;
		t->uid_lock_fd = fd;
		t->has_uid = true;
		return true;
	}
	*err = ry_asprintf("no free task uid: all %u are in use", p->count);
	return false;
}

void ry_worker_release_uid(struct ry_worker *w, struct ry_task *t)
{
	if (!t->has_uid)
		return;
	if (w->uids && t->uid >= w->uids->base && t->uid - w->uids->base < w->uids->count)
		pool_mark(w->uids, t->uid - w->uids->base, false);
	if (t->uid_lock_fd >= 0)
		close(t->uid_lock_fd);
	t->uid_lock_fd = -1;
	t->has_uid = false;
}

static bool own(const char *path, uid_t uid, gid_t gid, mode_t mode, char **err)
{
	if (chown(path, uid, gid) < 0 || chmod(path, mode) < 0) {
		*err = ry_asprintf("cannot set owner and mode of %s: %s", path, strerror(errno));
		return false;
	}
	return true;
}

static bool make_owned(const char *path, uid_t uid, gid_t gid, mode_t mode, char **err)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		*err = ry_asprintf("cannot create directory %s: %s", path, strerror(errno));
		return false;
	}
	return own(path, uid, gid, mode, err);
}

/*
 * The pipeline's directory and its gid (per-task ids): the directory's group
 * is the allocation, so workers sharing a workdir agree and a restart
 * remembers.  Created under a temporary name and renamed into place, so no
 * one ever sees it without its group.
 */
static bool pipeline_dir(struct ry_worker *w, int64_t pipeline_id, const char *pdir, gid_t *gid,
			 char **err)
{
	struct ry_idpool *p = w->gids;
	struct stat st;
	for (int tries = 0; tries < 2; tries++) {
		if (stat(pdir, &st) == 0) {
			if (st.st_gid >= p->base && st.st_gid - p->base < p->count &&
			    (st.st_mode & 07777) == 02770) {
				pool_mark(p, st.st_gid - p->base, true);
				*gid = st.st_gid;
				return true;
			}
			/* Made by someone else (an older worker, a person): adopt it. */
		} else if (errno != ENOENT) {
			*err = ry_asprintf("cannot stat %s: %s", pdir, strerror(errno));
			return false;
		}
		uint32_t i = (uint32_t)((uint64_t)pipeline_id % p->count), k;
		for (k = 0; k < p->count && pool_used(p, i); k++)
			i = (i + 1) % p->count;
		if (k == p->count) {
			*err = ry_asprintf("no free pipeline gid: %u pipelines keep directories on this "
					   "host (lower retention_s)", p->count);
			return false;
		}
		gid_t g = p->base + i;
		if (stat(pdir, &st) == 0) {
			if (!own(pdir, 0, g, 02770, err))
				return false;
			pool_mark(p, i, true);
			*gid = g;
			return true;
		}
		char *tmp = ry_asprintf("%s.new.%d", pdir, (int)getpid());
		bool ok = make_owned(tmp, 0, g, 02770, err);
		if (ok && rename(tmp, pdir) == 0) {
			free(tmp);
			pool_mark(p, i, true);
			*gid = g;
			return true;
		}
		(void)rmdir(tmp);
		free(tmp);
		if (!ok)
			return false;
		/* Someone else made it meanwhile: use theirs. */
	}
	*err = ry_asprintf("cannot prepare %s", pdir);
	return false;
}

void ry_worker_forget_pipeline_gid(struct ry_worker *w, gid_t gid)
{
	if (w->gids && gid >= w->gids->base && gid - w->gids->base < w->gids->count)
		pool_mark(w->gids, gid - w->gids->base, false);
}

/* workdir/pipelines (0711: tasks pass through, cannot list) and
 * workdir/logs (0700: the worker's alone); made once, checked per task
 * only by the mkdir of what is below them. */
static bool top_dirs(struct ry_worker *w, char **err)
{
	char *pipelines = ry_asprintf("%s/pipelines", w->cfg.workdir);
	char *logs = ry_asprintf("%s/logs", w->cfg.workdir);
	bool ok = ry_exec_mkdirs_mode(pipelines, 0711, err) && ry_exec_mkdirs_mode(logs, 0700, err);
	if (ok && w->ids != RY_IDS_WORKER)
		ok = own(pipelines, 0, 0, 0711, err) && own(logs, 0, 0, 0700, err);
	free(pipelines);
	free(logs);
	return ok;
}

bool ry_worker_prepare_dirs(struct ry_worker *w, struct ry_task *t, const char *pdir,
			    const char *shared, const char *ws, const char *logdir, char **err)
{
	if (!w->top_dirs_made && !top_dirs(w, err))
		return false;
	w->top_dirs_made = true;
	if (!ry_exec_mkdirs_mode(logdir, 0700, err)) {
		/* Retention (or a person) may have removed what was made: again. */
		w->top_dirs_made = false;
		if (!top_dirs(w, err) || !ry_exec_mkdirs_mode(logdir, 0700, err))
			return false;
		w->top_dirs_made = true;
	}
	switch (w->ids) {
	case RY_IDS_PER_TASK: {
		gid_t gid;
		if (!pipeline_dir(w, t->pipeline_id, pdir, &gid, err) || !take_uid(w, t, err))
			return false;
		t->gid = gid;
		return make_owned(shared, 0, gid, 02770, err) && make_owned(ws, 0, gid, 02770, err);
	}
	case RY_IDS_USER:
		t->uid = w->task_uid;
		t->gid = w->task_gid;
		return make_owned(pdir, w->task_uid, w->task_gid, 0700, err) &&
		       make_owned(shared, w->task_uid, w->task_gid, 0700, err) &&
		       make_owned(ws, w->task_uid, w->task_gid, 0700, err);
	case RY_IDS_WORKER:
		break;
	}
	return ry_exec_mkdirs_mode(shared, 0700, err) && ry_exec_mkdirs_mode(ws, 0700, err);
}
