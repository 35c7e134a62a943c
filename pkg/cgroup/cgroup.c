#include "cgroup/cgroup.h"
#include "exec/exec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The hierarchies a task cgroup may span. */
enum hier {
	H_V2,		/* the unified hierarchy */
	H_MEM,		/* v1 memory */
	H_CPUACCT,	/* v1 cpuacct (only without v2: v2 always has cpu.stat) */
	H_CPU,		/* v1 cpu: shares and CFS quota (when v2 has no cpu controller) */
	H_N
};

static const char *const v1_controller[H_N] = {
	[H_MEM] = "memory", [H_CPUACCT] = "cpuacct", [H_CPU] = "cpu",
};

#define CPU_PERIOD_US 100000	/* cpu.max / cfs_period_us */

#define SELF_LEAF "worker"	/* pure v2: where the worker moves itself */

struct ry_cgroup_root {
	enum ry_cgroup_mode mode;
	char *agent[H_N];	/* the agent directory per hierarchy; NULL: unused */
	bool v2_mem;		/* task cgroups in v2 have the memory controller */
	bool v2_io;		/* ... and the io controller */
	bool v2_cpu;		/* ... and the cpu controller (cpu.weight, cpu.max) */
	enum hier v1_cpu;	/* where v1 cpu.shares live: H_CPU, H_CPUACCT (co-mounted), or H_N */
	bool v2_kill;		/* cgroup.kill exists */
};

struct ry_cgroup {
	struct ry_cgroup_root *root;
	char *dir[H_N];
	int join[H_N];		/* v1 "tasks" files, open until joined */
	size_t njoin;
	int v2_dir;		/* the cgroup2 leaf and its cgroup.procs; -1: none */
	int v2_procs;
};

const char *ry_cgroup_mode_name(enum ry_cgroup_mode mode)
{
	switch (mode) {
	case RY_CGROUP_V2:
		return "cgroup2";
	case RY_CGROUP_HYBRID:
		return "cgroup1+2";
	case RY_CGROUP_V1:
		return "cgroup1";
	case RY_CGROUP_NONE:
		break;
	}
	return "pgroup";
}

/* ---- parsers ----------------------------------------------------------- */

void ry_cgroup_parse_self(const char *text, const char *ctl, char **v2, char **v1)
{
	*v2 = NULL;
	if (v1)
		*v1 = NULL;
	for (const char *line = text; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char *l = ry_strndup(line, len);
		char *c1 = strchr(l, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (c2) {
			*c1 = *c2 = '\0';
			const char *ctls = c1 + 1, *path = c2 + 1;
			if (!*ctls && strcmp(l, "0") == 0) {
				free(*v2);
				*v2 = ry_strdup(path);
			} else if (v1 && ctl && *ctls) {
				struct ry_strlist names = { 0 };
				ry_strlist_split(&names, ctls, ',');
				if (ry_strlist_has(&names, ctl)) {
					free(*v1);
					*v1 = ry_strdup(path);
				}
				ry_strlist_release(&names);
			}
		}
		free(l);
		line = end ? end + 1 : NULL;
	}
}

/*
 * Calls visit with the fields of each /proc/self/mountinfo line ("id
 * parent major:minor root mountpoint options... - fstype source
 * superopts") and the index of the "-", until it returns true.
 */
static bool each_mount(const char *mountinfo, bool (*visit)(void *arg, const struct ry_strlist *f,
							    size_t dash), void *arg)
{
	bool done = false;
	for (const char *line = mountinfo; line && *line && !done;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char *l = ry_strndup(line, len);
		struct ry_strlist f = { 0 };
		ry_strlist_split(&f, l, ' ');
		size_t dash = 0;
		for (size_t i = 6; i < f.n; i++)
			if (strcmp(f.items[i], "-") == 0) {
				dash = i;
				break;
			}
		if (dash && dash + 3 < f.n)
			done = visit(arg, &f, dash);
		ry_strlist_release(&f);
		free(l);
		line = end ? end + 1 : NULL;
	}
	return done;
}

static bool has_option(const char *options, const char *opt)
{
	struct ry_strlist opts = { 0 };
	ry_strlist_split(&opts, options, ',');
	bool has = ry_strlist_has(&opts, opt);
	ry_strlist_release(&opts);
	return has;
}

struct mount_query {
	const char *ctl;
	char **mountpoint, **root;
};

static bool mount_match(void *arg, const struct ry_strlist *f, size_t dash)
{
	struct mount_query *q = arg;
	const char *fstype = f->items[dash + 1], *super = f->items[dash + 3];
	if (q->ctl ? strcmp(fstype, "cgroup") != 0 || !has_option(super, q->ctl)
		   : strcmp(fstype, "cgroup2") != 0)
		return false;
	*q->root = ry_strdup(f->items[3]);
	*q->mountpoint = ry_strdup(f->items[4]);
	return true;
}

bool ry_cgroup_parse_mount(const char *mountinfo, const char *ctl, char **mountpoint, char **root)
{
	struct mount_query q = { ctl, mountpoint, root };
	*mountpoint = *root = NULL;
	return each_mount(mountinfo, mount_match, &q);
}

bool ry_cgroup_parse_keyed(const char *text, const char *key, uint64_t *value)
{
	size_t klen = strlen(key);
	for (const char *p = text; p && *p;) {
		if (strncmp(p, key, klen) == 0 && p[klen] == ' ') {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(p + klen + 1, &end, 10);
			if (errno || end == p + klen + 1)
				return false;
			*value = v;
			return true;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return false;
}

void ry_cgroup_parse_io_stat(const char *text, uint64_t *rbytes, uint64_t *wbytes)
{
	*rbytes = *wbytes = 0;
	for (const char *p = text; p && *p; p++) {
		if ((p == text || p[-1] == ' ' || p[-1] == '\n') &&
		    (strncmp(p, "rbytes=", 7) == 0 || strncmp(p, "wbytes=", 7) == 0)) {
			uint64_t v = strtoull(p + 7, NULL, 10);
			if (*p == 'r')
				*rbytes += v;
			else
				*wbytes += v;
		}
	}
}

/* ---- files ------------------------------------------------------------- */

/* The whole file as a string, NULL (errno set) when it cannot be read. */
static char *read_text(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct ry_buf b = RY_BUF_INIT;
	bool ok = ry_read_all(fd, SIZE_MAX - 4096, &b);
	int e = errno;
	close(fd);
	if (!ok) {
		ry_buf_release(&b);
		errno = e;
		return NULL;
	}
	return ry_buf_detach(&b);
}

static char *path_join(const char *dir, const char *file)
{
	return ry_asprintf("%s/%s", dir, file);
}

static char *read_in(const char *dir, const char *file)
{
	char *p = path_join(dir, file);
	char *t = read_text(p);
	free(p);
	return t;
}

/*
 * Writes s to dir/file; 0 or the errno.  Interrupted writes are retried: a
 * v1 memory limit, for one, is refused with EINTR whenever a signal is
 * pending (the kernel's reclaim loop checks), and SIGCHLD often is.
 */
static int write_in(const char *dir, const char *file, const char *s)
{
	char *p = path_join(dir, file);
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	int e = 0;
	free(p);
	if (fd < 0)
		return errno;
	for (int tries = 0; tries < 1000; tries++) {
		e = write(fd, s, strlen(s)) < 0 ? errno : 0;
		if (e != EINTR)
			break;
	}
	close(fd);
	return e;
}

static bool exists_in(const char *dir, const char *file)
{
	char *p = path_join(dir, file);
	bool ok = access(p, F_OK) == 0;
	free(p);
	return ok;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Where hierarchy h (ctl NULL: v2) has this process, as a directory. */
static char *own_dir(const char *mountinfo, const char *self, const char *ctl)
{
	char *mnt = NULL, *mroot = NULL, *v2 = NULL, *v1 = NULL, *dir = NULL;
	if (!ry_cgroup_parse_mount(mountinfo, ctl, &mnt, &mroot))
		goto out;
	ry_cgroup_parse_self(self, ctl, &v2, &v1);
	const char *path = ctl ? v1 : v2;
	if (!path)
		goto out;
	/* Inside a cgroup namespace both may carry the same prefix. */
	size_t rl = strlen(mroot);
	if (strcmp(mroot, "/") != 0 && strncmp(path, mroot, rl) == 0)
		path += rl;
	dir = ry_asprintf("%s%s%s", mnt, *path == '/' ? "" : "/", strcmp(path, "/") == 0 ? "" : path);
out:
	free(mnt);
	free(mroot);
	free(v2);
	free(v1);
	return dir;
}

static bool make_dir(const char *path)
{
	return mkdir(path, 0755) == 0 || errno == EEXIST;
}

/* Whether the word is in the space-separated list of file dir/file. */
static bool listed_in(const char *dir, const char *file, const char *word)
{
	char *t = read_in(dir, file);
	struct ry_strlist l = { 0 };
	if (t) {
		for (char *p = t; *p; p++)
			if (*p == '\n')
				*p = ' ';
		ry_strlist_split(&l, t, ' ');
	}
	bool hit = ry_strlist_has(&l, word);
	ry_strlist_release(&l);
	free(t);
	return hit;
}

/* ---- the worker's own memory cgroup ------------------------------------ */

/* A worker in its agent's SELF_LEAF (v2_enable moved it there) is judged
 * by the cgroup it left: that one holds the tasks too. */
static void leave_self_leaf(char *dir)
{
	char *leaf = strrchr(dir, '/');
	if (!leaf || strcmp(leaf + 1, SELF_LEAF) != 0)
		return;
	*leaf = '\0';
	char *agent = strrchr(dir, '/');
	if (agent && strncmp(agent + 1, "railyard-", 9) == 0)
		*agent = '\0';
	else
		*leaf = '/';
}

char *ry_cgroup_self_memory_dir(char **why)
{
	char *mountinfo = read_text("/proc/self/mountinfo");
	int e = errno;
	char *self = read_text("/proc/self/cgroup");
	char *dir = NULL;

	*why = NULL;
	if (!mountinfo || !self) {
		*why = ry_asprintf("cannot read /proc/self/mountinfo or /proc/self/cgroup: %s",
				   strerror(mountinfo ? errno : e));
		goto out;
	}
	dir = own_dir(mountinfo, self, NULL);
	if (dir && listed_in(dir, "cgroup.controllers", "memory")) {
		leave_self_leaf(dir);
		if (!exists_in(dir, "memory.current")) {
			*why = ry_asprintf("%s has no memory.current (the root cgroup)", dir);
			free(dir);
			dir = NULL;
		}
		goto out;
	}
	free(dir);
	dir = own_dir(mountinfo, self, v1_controller[H_MEM]);
	if (!dir) {
		*why = ry_strdup("no memory cgroup: cgroup v2 has no memory controller here and "
				 "no v1 memory hierarchy is mounted");
	} else if (!exists_in(dir, "memory.usage_in_bytes")) {
		*why = ry_asprintf("%s has no memory.usage_in_bytes", dir);
		free(dir);
		dir = NULL;
	}
out:
	free(mountinfo);
	free(self);
	return dir;
}

/* ---- the agent's root ---------------------------------------------------- */

/*
 * v2 with controllers: the worker's own cgroup must hold no process once
 * it delegates controllers to children (the no-internal-process rule), so
 * the worker moves itself into the agent's "worker" leaf first when asked.
 */
static void v2_enable(struct ry_cgroup_root *r, const char *base)
{
	if (!listed_in(base, "cgroup.controllers", "memory"))
		return;
	if (!listed_in(base, "cgroup.subtree_control", "memory")) {
		int e = write_in(base, "cgroup.subtree_control", "+memory");
		if (e == EBUSY) {
			char *leaf = path_join(r->agent[H_V2], SELF_LEAF);
			if (make_dir(leaf) && write_in(leaf, "cgroup.procs", "0") == 0)
				e = write_in(base, "cgroup.subtree_control", "+memory");
			free(leaf);
		}
		if (e)
			return;
	}
	(void)write_in(base, "cgroup.subtree_control", "+io");
	(void)write_in(base, "cgroup.subtree_control", "+cpu");
	if (write_in(r->agent[H_V2], "cgroup.subtree_control", "+memory") != 0)
		return;
	r->v2_mem = true;
	r->v2_io = write_in(r->agent[H_V2], "cgroup.subtree_control", "+io") == 0 ||
		   listed_in(r->agent[H_V2], "cgroup.subtree_control", "io");
	r->v2_cpu = write_in(r->agent[H_V2], "cgroup.subtree_control", "+cpu") == 0 ||
		    listed_in(r->agent[H_V2], "cgroup.subtree_control", "cpu");
}

struct ry_cgroup_root *ry_cgroup_root_open(const char *name, bool enabled, char **why)
{
	struct ry_cgroup_root *r = NULL;
	char *mountinfo = NULL, *self = NULL;

	*why = NULL;
	if (!enabled) {
		*why = ry_strdup("cgroups are turned off (cgroup = off)");
		return NULL;
	}
	mountinfo = read_text("/proc/self/mountinfo");
	self = read_text("/proc/self/cgroup");
	if (!mountinfo || !self) {
		*why = ry_asprintf("cannot read /proc/self/mountinfo or /proc/self/cgroup: %s",
				   strerror(errno));
		goto out;
	}
	r = ry_calloc(1, sizeof(*r));
	for (int h = 0; h < H_N; h++) {
		char *base = own_dir(mountinfo, self, h == H_V2 ? NULL : v1_controller[h]);
		if (!base)
			continue;
		char *agent = ry_asprintf("%s/railyard-%s", base, name);
		if (make_dir(agent) && access(agent, W_OK) == 0) {
			r->agent[h] = agent;
			if (h == H_V2) {
				r->v2_kill = exists_in(agent, "cgroup.kill");
				v2_enable(r, base);
			}
		} else {
			free(agent);
		}
		free(base);
	}
	/* What is not needed is not used: fewer directories per task. */
	if (r->agent[H_V2] && r->v2_mem) {
		r->mode = RY_CGROUP_V2;
	} else if (r->agent[H_V2] && r->agent[H_MEM]) {
		r->mode = RY_CGROUP_HYBRID;
	} else if (r->agent[H_V2]) {
		r->mode = RY_CGROUP_V2;		/* no memory controller: limits by sampling */
	} else if (r->agent[H_MEM]) {
		r->mode = RY_CGROUP_V1;
	} else {
		*why = ry_strdup("no writable cgroup hierarchy (run as root, or under systemd "
				 "with Delegate=yes)");
		ry_cgroup_root_close(r);
		r = NULL;
		goto out;
	}
	bool drop[H_N] = { false };
	drop[H_MEM] = r->v2_mem;
	drop[H_CPU] = r->v2_cpu;
	/* cpu and cpuacct are usually one hierarchy (cpu,cpuacct): one
	 * directory per task there, used for both. */
	bool comounted = r->agent[H_CPU] && r->agent[H_CPUACCT] &&
			 strcmp(r->agent[H_CPU], r->agent[H_CPUACCT]) == 0;
	drop[H_CPUACCT] = r->agent[H_V2] != NULL && !(comounted && !r->v2_cpu);
	if (comounted && !drop[H_CPUACCT])
		drop[H_CPU] = true;
	r->v1_cpu = H_N;
	if (!r->v2_cpu && r->agent[H_CPU] && !drop[H_CPU])
		r->v1_cpu = H_CPU;
	else if (!r->v2_cpu && comounted && !drop[H_CPUACCT])
		r->v1_cpu = H_CPUACCT;
	for (int h = 0; h < H_N; h++) {
		/* A co-mounted directory is shared: free it, never rmdir it. */
		if (drop[h] && r->agent[h] && h == H_CPU && comounted && !drop[H_CPUACCT]) {
			free(r->agent[h]);
			r->agent[h] = NULL;
		}
	}
	for (int h = 0; h < H_N; h++) {
		if (drop[h] && r->agent[h]) {
			(void)rmdir(r->agent[h]);
			free(r->agent[h]);
			r->agent[h] = NULL;
		}
	}
out:
	free(mountinfo);
	free(self);
	return r;
}

enum ry_cgroup_mode ry_cgroup_root_mode(const struct ry_cgroup_root *root)
{
	return root ? root->mode : RY_CGROUP_NONE;
}

bool ry_cgroup_root_has_memory(const struct ry_cgroup_root *root)
{
	return root && (root->v2_mem || root->agent[H_MEM]);
}

bool ry_cgroup_root_has_cpu(const struct ry_cgroup_root *root)
{
	return root && (root->v2_cpu || root->v1_cpu != H_N);
}

/* The hierarchy that says who is in a cgroup and can kill them. */
static enum hier membership(const struct ry_cgroup_root *r)
{
	return r->agent[H_V2] ? H_V2 : H_MEM;
}

const char *ry_cgroup_root_path(const struct ry_cgroup_root *root)
{
	return root ? root->agent[membership(root)] : NULL;
}

char *ry_cgroup_root_dirs(const struct ry_cgroup_root *root)
{
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_puts(&b, "");
	for (int h = 0; root && h < H_N; h++)
		if (root->agent[h])
			ry_buf_printf(&b, "%s\n", root->agent[h]);
	return ry_buf_detach(&b);
}

/* Kills every process listed in dir/cgroup.procs, a few rounds (a process
 * forking meanwhile shows up in the next). */
static void kill_listed(const char *dir, int sig, bool use_kill_file)
{
	if (sig == SIGKILL && use_kill_file && write_in(dir, "cgroup.kill", "1") == 0)
		return;
	for (int round = 0; round < 8; round++) {
		char *t = read_in(dir, "cgroup.procs");
		bool any = false;
		for (char *p = t; p && *p;) {
			long pid = strtol(p, &p, 10);
			if (pid > 0) {
				(void)kill((pid_t)pid, sig);
				any = true;
			}
			while (*p == '\n' || *p == ' ')
				p++;
		}
		free(t);
		if (!any || sig != SIGKILL)
			break;
	}
}

static bool dir_populated(const char *dir, bool v2)
{
	if (v2) {
		char *t = read_in(dir, "cgroup.events");
		uint64_t v = 0;
		bool known = t && ry_cgroup_parse_keyed(t, "populated", &v);
		free(t);
		if (known)
			return v != 0;
	}
	char *t = read_in(dir, "cgroup.procs");
	bool any = t && *t;
	free(t);
	return any;
}

/* Kills what is in dir, waits up to wait_ms for it to be empty, removes it. */
static bool empty_and_remove(const char *dir, bool v2, bool kill_file, long wait_ms)
{
	bool had = dir_populated(dir, v2);
	for (long waited = 0; dir_populated(dir, v2) && waited < wait_ms; waited += 10) {
		kill_listed(dir, SIGKILL, kill_file);
		sleep_ms(10);
	}
	(void)rmdir(dir);
	return had;
}

size_t ry_cgroup_root_kill_leftovers(struct ry_cgroup_root *root)
{
	size_t n = 0;
	if (!root)
		return 0;
	for (int h = 0; h < H_N; h++) {
		if (!root->agent[h])
			continue;
		DIR *d = opendir(root->agent[h]);
		struct dirent *de;
		if (!d)
			continue;
		while ((de = readdir(d)) != NULL) {
			if (de->d_type != DT_DIR || de->d_name[0] == '.' ||
			    (h == H_V2 && strcmp(de->d_name, SELF_LEAF) == 0))
				continue;
			char *dir = path_join(root->agent[h], de->d_name);
			if (empty_and_remove(dir, h == H_V2, root->v2_kill, 2000) && h == (int)membership(root))
				n++;
			free(dir);
		}
		closedir(d);
	}
	return n;
}

void ry_cgroup_root_close(struct ry_cgroup_root *root)
{
	if (!root)
		return;
	for (int h = 0; h < H_N; h++) {
		if (root->agent[h])
			(void)rmdir(root->agent[h]);	/* fails while a leaf remains: fine */
		free(root->agent[h]);
	}
	free(root);
}

/* ---- a task's cgroup ----------------------------------------------------- */

/* Opens dir/file (dir itself when file is NULL), close-on-exec; -1 with *err. */
static int open_in(const char *dir, const char *file, int flags, char **err)
{
	char *p = file ? path_join(dir, file) : ry_strdup(dir);
	int fd = open(p, flags | O_CLOEXEC);
	if (fd < 0)
		*err = ry_asprintf("cannot open %s: %s", p, strerror(errno));
	free(p);
	return fd;
}

struct ry_cgroup *ry_cgroup_create(struct ry_cgroup_root *root, const char *leaf, char **err)
{
	struct ry_cgroup *cg = ry_calloc(1, sizeof(*cg));
	cg->root = root;
	cg->v2_dir = cg->v2_procs = -1;
	for (int h = 0; h < H_N; h++) {
		if (!root->agent[h])
			continue;
		cg->dir[h] = path_join(root->agent[h], leaf);
		if (mkdir(cg->dir[h], 0755) < 0) {
			if (errno != EEXIST) {
				*err = ry_asprintf("cannot create cgroup %s: %s", cg->dir[h],
						   strerror(errno));
				goto fail;
			}
			/* A leftover of the same attempt: empty it first. */
			(void)empty_and_remove(cg->dir[h], h == H_V2, root->v2_kill, 2000);
			if (mkdir(cg->dir[h], 0755) < 0) {
				*err = ry_asprintf("cannot create cgroup %s: %s", cg->dir[h],
						   strerror(errno));
				goto fail;
			}
		}
		if (h == H_V2) {
			if ((cg->v2_dir = open_in(cg->dir[h], NULL, O_RDONLY | O_DIRECTORY, err)) < 0 ||
			    (cg->v2_procs = open_in(cg->dir[h], "cgroup.procs", O_WRONLY, err)) < 0)
				goto fail;
			continue;
		}
		int fd = open_in(cg->dir[h], "tasks", O_WRONLY, err);
		if (fd < 0)
			goto fail;
		cg->join[cg->njoin++] = fd;
	}
	return cg;
fail:
	ry_cgroup_joined(cg);
	(void)ry_cgroup_remove(cg);
	ry_cgroup_free(cg);
	return NULL;
}

bool ry_cgroup_set_limits(struct ry_cgroup *cg, const struct ry_cgroup_limits *lim, char **err)
{
	const struct ry_cgroup_root *r = cg->root;
	if (lim->mem_bytes) {
		char v[32];
		snprintf(v, sizeof(v), "%llu", (unsigned long long)lim->mem_bytes);
		const char *dir = r->v2_mem ? cg->dir[H_V2] : cg->dir[H_MEM];
		const char *file = r->v2_mem ? "memory.max" : "memory.limit_in_bytes";
		if (dir) {
			int e = write_in(dir, file, v);
			if (e) {
				*err = ry_asprintf("cannot set %s/%s to %s: %s", dir, file, v,
						   strerror(e));
				return false;
			}
		}
	}
	if (lim->cpu > 0) {
		/* Weight in proportion to the units asked for, and a quota of
		 * that many cpus: v2 cpu.weight (1-10000) and cpu.max, v1
		 * cpu.shares and cfs_quota_us. */
		char weight[32], quota[48];
		const char *dir = r->v2_cpu ? cg->dir[H_V2] : r->v1_cpu != H_N ? cg->dir[r->v1_cpu] : NULL;
		const char *files[2] = { "cpu.weight", "cpu.max" };
		if (r->v2_cpu) {
			snprintf(weight, sizeof(weight), "%d", lim->cpu * 100 > 10000 ? 10000 : lim->cpu * 100);
			snprintf(quota, sizeof(quota), "%lld %d", (long long)lim->cpu * CPU_PERIOD_US,
				 CPU_PERIOD_US);
		} else {
			files[0] = "cpu.shares";
			files[1] = "cpu.cfs_quota_us";
			snprintf(weight, sizeof(weight), "%d", lim->cpu * 1024);
			snprintf(quota, sizeof(quota), "%lld", (long long)lim->cpu * CPU_PERIOD_US);
		}
		const char *vals[2] = { weight, quota };
		for (int i = 0; dir && i < 2; i++) {
			/* v1: the period first, so the quota is read against it. */
			if (!r->v2_cpu && i == 1) {
				char period[16];
				snprintf(period, sizeof(period), "%d", CPU_PERIOD_US);
				(void)write_in(dir, "cpu.cfs_period_us", period);
			}
			int e = write_in(dir, files[i], vals[i]);
			if (e) {
				*err = ry_asprintf("cannot set %s/%s to %s: %s", dir, files[i], vals[i],
						   strerror(e));
				return false;
			}
		}
	}
	return true;
}

void ry_cgroup_join(const struct ry_cgroup *cg, struct ry_exec_join *j)
{
	j->thread_fds = cg->join;
	j->nthread = cg->njoin;
	j->into_dir = cg->v2_dir;
	j->into_procs = cg->v2_procs;
}

void ry_cgroup_joined(struct ry_cgroup *cg)
{
	for (size_t i = 0; i < cg->njoin; i++)
		close(cg->join[i]);
	cg->njoin = 0;
	if (cg->v2_dir >= 0)
		close(cg->v2_dir);
	if (cg->v2_procs >= 0)
		close(cg->v2_procs);
	cg->v2_dir = cg->v2_procs = -1;
}

void ry_cgroup_signal(struct ry_cgroup *cg, int sig)
{
	enum hier m = membership(cg->root);
	if (cg->dir[m])
		kill_listed(cg->dir[m], sig, m == H_V2 && cg->root->v2_kill);
}

bool ry_cgroup_populated(const struct ry_cgroup *cg)
{
	enum hier m = membership(cg->root);
	return cg->dir[m] && dir_populated(cg->dir[m], m == H_V2);
}

uint64_t ry_cgroup_oom_kills(const struct ry_cgroup *cg)
{
	const char *dir = cg->root->v2_mem ? cg->dir[H_V2] : cg->dir[H_MEM];
	const char *file = cg->root->v2_mem ? "memory.events" : "memory.oom_control";
	uint64_t v = 0;
	if (!dir)
		return 0;
	char *t = read_in(dir, file);
	if (!t || !ry_cgroup_parse_keyed(t, "oom_kill", &v))
		v = 0;
	free(t);
	return v;
}

bool ry_cgroup_mem_peak(const struct ry_cgroup *cg, uint64_t *bytes)
{
	char *t = NULL;
	if (cg->root->v2_mem)
		t = read_in(cg->dir[H_V2], "memory.peak");
	else if (cg->dir[H_MEM])
		t = read_in(cg->dir[H_MEM], "memory.max_usage_in_bytes");
	if (!t)
		return false;
	*bytes = strtoull(t, NULL, 10);
	free(t);
	return true;
}

void ry_cgroup_usage(const struct ry_cgroup *cg, struct ry_cgroup_usage *u)
{
	const struct ry_cgroup_root *r = cg->root;
	char *t;
	uint64_t v;

	memset(u, 0, sizeof(*u));
	if (cg->dir[H_V2] && (t = read_in(cg->dir[H_V2], "cpu.stat"))) {
		if (ry_cgroup_parse_keyed(t, "usage_usec", &v)) {
			u->cpu_s = (double)v / 1e6;
			u->has_cpu = true;
		}
		free(t);
	} else if (cg->dir[H_CPUACCT] && (t = read_in(cg->dir[H_CPUACCT], "cpuacct.usage"))) {
		u->cpu_s = (double)strtoull(t, NULL, 10) / 1e9;
		u->has_cpu = true;
		free(t);
	}
	u->has_mem = ry_cgroup_mem_peak(cg, &u->mem_peak_bytes);
	/* v1 blkio is not used: on virtual disks it often counts nothing, and
	 * the worker's rusage figures are the better fallback. */
	if (r->v2_io && (t = read_in(cg->dir[H_V2], "io.stat"))) {
		ry_cgroup_parse_io_stat(t, &u->io_read_bytes, &u->io_write_bytes);
		u->has_io = true;
		free(t);
	}
}

bool ry_cgroup_remove(struct ry_cgroup *cg)
{
	bool ok = true;
	for (int h = 0; h < H_N; h++) {
		if (!cg->dir[h])
			continue;
		if (rmdir(cg->dir[h]) == 0 || errno == ENOENT) {
			free(cg->dir[h]);
			cg->dir[h] = NULL;
		} else {
			ok = false;
		}
	}
	return ok;
}

void ry_cgroup_free(struct ry_cgroup *cg)
{
	if (!cg)
		return;
	ry_cgroup_joined(cg);
	for (int h = 0; h < H_N; h++)
		free(cg->dir[h]);
	free(cg);
}
