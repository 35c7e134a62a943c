#include "agent/pressure.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PRESSURE_FILE_MAX (64 * 1024)

/* 1-based line number of the position at in text. */
static int line_of(const char *text, const char *at)
{
	int line = 1;
	for (const char *p = text; p < at; p++)
		line += *p == '\n';
	return line;
}

bool ry_pressure_parse_psi(const char *text, const char *path, double *some_avg10, char **err)
{
	const char *line = text;
	while (line && *line) {
		if (strncmp(line, "some ", 5) == 0) {
			const char *v = strstr(line, "avg10=");
			const char *eol = strchr(line, '\n');
			char *end = NULL;
			double d = v && (!eol || v < eol) ? strtod(v + 6, &end) : -1;
			if (!v || (eol && v > eol) || end == v + 6 || d < 0 || d > 100) {
				*err = ry_asprintf("%s:%d: expected \"some avg10=PERCENT ...\"", path,
						   line_of(text, line));
				return false;
			}
			*some_avg10 = d;
			return true;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	*err = ry_asprintf("%s:1: no \"some avg10=\" line", path);
	return false;
}

bool ry_pressure_parse_meminfo(const char *text, const char *path, long *total_kb, long *avail_kb,
			       char **err)
{
	static const char *const keys[2] = { "MemTotal:", "MemAvailable:" };
	long *out[2] = { total_kb, avail_kb };
	for (int k = 0; k < 2; k++) {
		const char *at = strstr(text, keys[k]);
		if (!at || (at != text && at[-1] != '\n')) {
			*err = ry_asprintf("%s: no %s line", path, keys[k]);
			return false;
		}
		char *end = NULL;
		errno = 0;
		long v = strtol(at + strlen(keys[k]), &end, 10);
		if (errno || end == at + strlen(keys[k]) || v < 0) {
			*err = ry_asprintf("%s:%d: %s expects a size in kB", path, line_of(text, at),
					   keys[k]);
			return false;
		}
		*out[k] = v;
	}
	return true;
}

/* Reads path; *missing when it does not exist (not an error). */
static bool read_opt(const char *path, struct ry_buf *b, bool *missing, char **err)
{
	*missing = false;
	if (access(path, R_OK) != 0 && errno == ENOENT) {
		*missing = true;
		return true;
	}
	return ry_read_file(path, PRESSURE_FILE_MAX, b, err);
}

bool ry_pressure_read(const struct ry_pressure_source *src, struct ry_pressure *p, char **err)
{
	static const char *const names[3] = { "cpu", "memory", "io" };
	struct ry_pressure r = { 0 };
	double psi[3] = { 0 };
	bool ok = false, missing = false;
	int have = 0;

	for (int i = 0; i < 3 && src->dir; i++) {
		struct ry_buf b = RY_BUF_INIT;
		char *path = ry_asprintf("%s/%s", src->dir, names[i]);
		bool fine = read_opt(path, &b, &missing, err) &&
			    (missing || ry_pressure_parse_psi(b.data, path, &psi[i], err));
		have += fine && !missing;
		free(path);
		ry_buf_release(&b);
		if (!fine)
			goto out;
	}
	if (have == 3) {
		r.have_psi = true;
		r.cpu = psi[0];
		r.memory = psi[1];
		r.io = psi[2];
	}
	if (src->meminfo) {
		struct ry_buf b = RY_BUF_INIT;
		bool fine = read_opt(src->meminfo, &b, &missing, err) &&
			    (missing || ry_pressure_parse_meminfo(b.data, src->meminfo, &r.mem_total_kb,
								  &r.mem_available_kb, err));
		r.have_mem = fine && !missing;
		ry_buf_release(&b);
		if (!fine)
			goto out;
	}
	if (src->loadavg && !r.have_psi) {
		struct ry_buf b = RY_BUF_INIT;
		bool fine = read_opt(src->loadavg, &b, &missing, err);
		if (fine && !missing) {
			double l1, l5, l15;
			long running, total;
			if (sscanf(b.data, "%lf %lf %lf %ld/%ld", &l1, &l5, &l15, &running, &total) != 5 ||
			    running < 0) {
				*err = ry_asprintf("%s:1: expected \"LOAD1 LOAD5 LOAD15 RUNNING/TOTAL ...\"",
						   src->loadavg);
				fine = false;
			} else {
				r.have_runnable = true;
				r.runnable_per_core = (double)running / (src->cores > 0 ? src->cores : 1);
			}
		}
		ry_buf_release(&b);
		if (!fine)
			goto out;
	}
	*p = r;
	ok = true;
out:
	return ok;
}
