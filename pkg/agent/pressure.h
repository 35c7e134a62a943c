/*
 * pressure: reads the host's pressure for the throttle (pkg/throttle):
 * Linux PSI "some avg10" of cpu, memory and io from a directory
 * (pressure_dir, default /proc/pressure), MemTotal/MemAvailable from a
 * meminfo file, and runnable tasks per core from a loadavg file where PSI
 * is absent.  Paths are parameters so tests inject files.
 *
 * With a memory cgroup directory (the worker's own: its usage includes
 * every task), that cgroup's memory is read too and the throttle judges
 * both: a worker under MemoryMax= on a big host is short of memory long
 * before the host is.
 */
#ifndef RY_AGENT_PRESSURE_H
#define RY_AGENT_PRESSURE_H

#include "core/core.h"
#include "throttle/throttle.h"

struct ry_pressure_source {
	const char *dir;	/* holds cpu, memory, io (PSI format) */
	const char *meminfo;	/* /proc/meminfo format */
	const char *loadavg;	/* /proc/loadavg format: 4th field "running/total" */
	int cores;		/* for runnable per core */
	const char *memcg;	/* the worker's memory cgroup directory (v1 or v2);
				 * NULL: the host's memory only */
};

/* What a memory cgroup says, in bytes. */
struct ry_memcg_reading {
	bool have;		/* the directory holds a memory cgroup */
	bool limited;		/* ... with a limit (on it or an ancestor) */
	uint64_t limit;		/* the smallest limit of it and its ancestors */
	uint64_t usage;		/* memory.current / memory.usage_in_bytes */
	uint64_t inactive_file;	/* file cache the kernel reclaims first */
};

/*
 * Fills p from the files.  A missing source leaves its have_ flag false
 * (PSI needs all three files readable); a file that is there but cannot be
 * parsed is an error naming the file and line, and p is left unchanged.
 * With src->memcg and a limit on it below MemTotal (or no meminfo),
 * have_memcg, memcg_total_kb and memcg_available_kb are the cgroup's.
 */
bool ry_pressure_read(const struct ry_pressure_source *src, struct ry_pressure *p,
		      char **err) RY_MUST_CHECK;

/* Parses "some avg10=1.23 ..." lines; path names the file in errors. */
bool ry_pressure_parse_psi(const char *text, const char *path, double *some_avg10,
			   char **err) RY_MUST_CHECK;
/* Parses MemTotal and MemAvailable (kB) out of meminfo text. */
bool ry_pressure_parse_meminfo(const char *text, const char *path, long *total_kb,
			       long *avail_kb, char **err) RY_MUST_CHECK;

/*
 * Reads the memory cgroup in dir: v1 (memory.usage_in_bytes; the limit is
 * memory.stat's hierarchical_memory_limit) or v2 (memory.current; the
 * limit is the smallest memory.max of dir and its ancestors, up to the
 * first without one).  A directory that is gone, or holds neither, leaves
 * m->have false: not an error (the worker may have moved).
 */
bool ry_pressure_read_memcg(const char *dir, struct ry_memcg_reading *m, char **err) RY_MUST_CHECK;

/* The value of key in memory.stat text ("key value" lines). */
bool ry_pressure_parse_memcg_stat(const char *text, const char *path, const char *key,
				  uint64_t *value, char **err) RY_MUST_CHECK;
/* A one-number file (memory.current, memory.max); "max" is UINT64_MAX where
 * max_ok. */
bool ry_pressure_parse_memcg_value(const char *text, const char *path, bool max_ok,
				   uint64_t *value, char **err) RY_MUST_CHECK;

#endif
