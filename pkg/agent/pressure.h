/*
 * pressure: reads the host's pressure for the throttle (pkg/throttle):
 * Linux PSI "some avg10" of cpu, memory and io from a directory
 * (pressure_dir, default /proc/pressure), MemTotal/MemAvailable from a
 * meminfo file, and runnable tasks per core from a loadavg file where PSI
 * is absent.  Paths are parameters so tests inject files.
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
};

/*
 * Fills p from the files.  A missing source leaves its have_ flag false
 * (PSI needs all three files readable); a file that is there but cannot be
 * parsed is an error naming the file and line, and p is left unchanged.
 */
bool ry_pressure_read(const struct ry_pressure_source *src, struct ry_pressure *p,
		      char **err) RY_MUST_CHECK;

/* Parses "some avg10=1.23 ..." lines; path names the file in errors. */
bool ry_pressure_parse_psi(const char *text, const char *path, double *some_avg10,
			   char **err) RY_MUST_CHECK;
/* Parses MemTotal and MemAvailable (kB) out of meminfo text. */
bool ry_pressure_parse_meminfo(const char *text, const char *path, long *total_kb,
			       long *avail_kb, char **err) RY_MUST_CHECK;

#endif
