/*
 * cgroup: one control group per task, so that ending a task ends every
 * process it started (setsid daemons included), memory limits are the
 * kernel's, and what a task used is measured for the whole tree.
 *
 * Three layouts are supported, chosen once per agent (ry_cgroup_root_open):
 *   cgroup2    a writable cgroup v2 subtree with the memory controller
 *              delegated (systemd Delegate=yes): everything from v2;
 *   cgroup1+2  "hybrid" hosts: v2 mounted without controllers (membership,
 *              cgroup.kill, populated, cpu.stat) plus the v1 memory
 *              hierarchy for limits, OOM counts and peak memory;
 *   cgroup1    v1 only: memory (membership, limits), cpuacct.
 * Block I/O comes from v2's io.stat when the io controller is delegated;
 * otherwise the caller uses wait4() rusage.
 * Without any (not root, no delegation) the worker falls back to process
 * groups (pkg/exec) and says "pgroup".
 *
 * An agent's cgroups live under "railyard-<name>" next to (below) the
 * worker's own cgroup in each hierarchy; a task's under
 * railyard-<name>/<leaf>.  Names include what makes them unique on a shared
 * host (the caller passes agent name + workdir hash, leaf = task.attempt).
 *
 * The parsers are exposed for unit tests; everything else touches
 * /sys/fs/cgroup and /proc.  Errors say "cannot X: Y" naming the file.
 */
#ifndef RY_CGROUP_H
#define RY_CGROUP_H

#include "core/core.h"

#include <sys/types.h>

enum ry_cgroup_mode {
	RY_CGROUP_NONE,		/* no usable hierarchy: process groups */
	RY_CGROUP_V1,		/* "cgroup1" */
	RY_CGROUP_HYBRID,	/* "cgroup1+2" */
	RY_CGROUP_V2,		/* "cgroup2" */
};

/* "cgroup2", "cgroup1+2", "cgroup1", "pgroup". */
const char *ry_cgroup_mode_name(enum ry_cgroup_mode mode);

struct ry_cgroup_root;
struct ry_cgroup;
struct ry_exec_join;	/* exec/exec.h */

/* What a task may use; 0 means no limit.  One call sets them all, so
 * further limits (cpu, pids) are fields here, not new entry points. */
struct ry_cgroup_limits {
	uint64_t mem_bytes;
	int cpu;		/* cpu units: weight in proportion and a quota of this
				 * many cpus (v2 cpu.weight/cpu.max, v1 cpu.shares/
				 * cfs_quota_us) */
};

/* What a task used; each figure with whether it is known. */
struct ry_cgroup_usage {
	double cpu_s;			/* user + system */
	uint64_t mem_peak_bytes;	/* high-water mark of the whole tree */
	uint64_t io_read_bytes;
	uint64_t io_write_bytes;
	bool has_cpu, has_mem, has_io;
};

/*
 * Finds the hierarchies this process may use and creates the agent's
 * directory in each.  mode_wanted RY_CGROUP_NONE disables cgroups.  Returns
 * NULL (mode none) when nothing usable exists, with *why saying what was
 * missing (the caller logs it; not an error).
 */
struct ry_cgroup_root *ry_cgroup_root_open(const char *name, bool enabled, char **why);
enum ry_cgroup_mode ry_cgroup_root_mode(const struct ry_cgroup_root *root);
/* Whether the kernel enforces memory limits and counts OOM kills here. */
bool ry_cgroup_root_has_memory(const struct ry_cgroup_root *root);
/* Whether the kernel enforces cpu weight and quota here. */
bool ry_cgroup_root_has_cpu(const struct ry_cgroup_root *root);
/* The agent directory in the membership hierarchy (for messages). */
const char *ry_cgroup_root_path(const struct ry_cgroup_root *root);
/* Every agent directory in use, one per line (a record for cleanup tools). */
char *ry_cgroup_root_dirs(const struct ry_cgroup_root *root);
/*
 * Kills every process left in the agent's task cgroups by an earlier
 * incarnation and removes them.  Waits (up to about two seconds) for the
 * processes to die.  Returns how many task cgroups held processes.
 */
size_t ry_cgroup_root_kill_leftovers(struct ry_cgroup_root *root);
/* Removes the agent directories if empty, then frees root. */
void ry_cgroup_root_close(struct ry_cgroup_root *root);

/*
 * Creates the task cgroup leaf (in each hierarchy) and opens what a new
 * process joins it by; a leftover of that name is emptied first.  NULL
 * with *err on failure.
 */
struct ry_cgroup *ry_cgroup_create(struct ry_cgroup_root *root, const char *leaf,
				   char **err) RY_MUST_CHECK;
bool ry_cgroup_set_limits(struct ry_cgroup *cg, const struct ry_cgroup_limits *lim,
			  char **err) RY_MUST_CHECK;
/*
 * How a new process joins, before it drops privileges, without waiting.
 * Moving a whole process (cgroup.procs) takes the kernel's global
 * threadgroup lock, which waits for an RCU grace period whenever no move
 * happened just before: 5-20 ms on a VM, for the first task start of
 * every burst.  Moving one thread does not take it, and neither does
 * starting a process inside its cgroup.  So ry_exec_spawn gets:
 * - the v1 hierarchies' "tasks" files, which the new process writes "0"
 *   to while it is still single-threaded (then the thread is the process);
 * - the cgroup2 leaf's directory, to start the process in (clone3
 *   CLONE_INTO_CGROUP), and its cgroup.procs for where clone3 cannot.
 * Valid until ry_cgroup_joined.
 */
void ry_cgroup_join(const struct ry_cgroup *cg, struct ry_exec_join *j);
/* The task's process is in: the join descriptors are closed. */
void ry_cgroup_joined(struct ry_cgroup *cg);
/* Sends sig to every process in the cgroup (SIGKILL: cgroup.kill if there
 * is one, which no fork can race). */
void ry_cgroup_signal(struct ry_cgroup *cg, int sig);
/* Whether any process is still in the cgroup. */
bool ry_cgroup_populated(const struct ry_cgroup *cg);
/* OOM kills inside the cgroup so far (0 when not measurable). */
uint64_t ry_cgroup_oom_kills(const struct ry_cgroup *cg);
/* The high-water mark of the whole tree's memory so far; false when not
 * measurable (one file read: the throttle asks it of every running task). */
bool ry_cgroup_mem_peak(const struct ry_cgroup *cg, uint64_t *bytes);
/* Fills what the cgroup knows; fields it cannot measure stay unknown. */
void ry_cgroup_usage(const struct ry_cgroup *cg, struct ry_cgroup_usage *u);
/* Removes the leaf directories; false while processes remain (retry). */
bool ry_cgroup_remove(struct ry_cgroup *cg);
/* Frees the handle (without removing anything). */
void ry_cgroup_free(struct ry_cgroup *cg);

/*
 * The directory of this process's own memory cgroup, whose usage includes
 * every task (their cgroups are nested below it): cgroup v2 when the memory
 * controller is enabled there, else the v1 memory hierarchy.  A worker that
 * moved itself into its agent's "worker" leaf (pure v2, above) is judged by
 * the cgroup it came from.  NULL with *why (the caller frees) when there is
 * none: no hierarchy with memory, or the process is in the root cgroup.
 */
char *ry_cgroup_self_memory_dir(char **why);

/* ---- parsers (pure; exposed for tests) ---------------------------------- */

/*
 * From /proc/self/cgroup text: the v2 path ("0::/x") into v2 (NULL if
 * none) and the v1 path of controller ctl ("4:memory:/x") into v1 (NULL
 * if none).  Caller frees.
 */
void ry_cgroup_parse_self(const char *text, const char *ctl, char **v2, char **v1);
/*
 * From /proc/self/mountinfo text: where the cgroup2 hierarchy (ctl NULL)
 * or the v1 hierarchy of controller ctl is mounted, and the mount's root
 * within the hierarchy.  False when not mounted.  Caller frees.
 */
bool ry_cgroup_parse_mount(const char *mountinfo, const char *ctl, char **mountpoint,
			   char **root) RY_MUST_CHECK;
/* "key value" lines (memory.events, cpu.stat, memory.oom_control, ...):
 * the value of key, false when absent. */
bool ry_cgroup_parse_keyed(const char *text, const char *key, uint64_t *value) RY_MUST_CHECK;
/* v2 io.stat: rbytes and wbytes summed over devices. */
void ry_cgroup_parse_io_stat(const char *text, uint64_t *rbytes, uint64_t *wbytes);

#endif
