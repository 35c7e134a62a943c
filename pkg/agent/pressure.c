#include "agent/pressure.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PRESSURE_FILE_MAX (64 * 1024)

/* v1 says "no limit" with the largest page-rounded counter (2^63 less a
 * page); anything this large is no limit on any machine. */
#define MEMCG_UNLIMITED (UINT64_C(1) << 62)

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

/* Parses a byte count at s up to the end of its line; false when there is
 * none or something else follows. */
static bool parse_bytes(const char *s, uint64_t *value)
{
	char *end = NULL;
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	while (*end == ' ' || *end == '\t')
		end++;
	if (errno || (*end && *end != '\n'))
		return false;
	*value = v;
	return true;
}

bool ry_pressure_parse_memcg_stat(const char *text, const char *path, const char *key,
				  uint64_t *value, char **err)
{
	size_t klen = strlen(key);
	for (const char *line = text; line && *line;) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
			if (parse_bytes(line + klen + 1, value))
				return true;
			*err = ry_asprintf("%s:%d: %s expects a number of bytes", path,
					   line_of(text, line), key);
			return false;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	*err = ry_asprintf("%s: no %s line", path, key);
	return false;
}

bool ry_pressure_parse_memcg_value(const char *text, const char *path, bool max_ok,
				   uint64_t *value, char **err)
{
	if (max_ok && (strcmp(text, "max") == 0 || strcmp(text, "max\n") == 0)) {
		*value = UINT64_MAX;
		return true;
	}
	const char *nl = strchr(text, '\n');
	if (parse_bytes(text, value) && (!nl || !nl[1]))
		return true;
	*err = ry_asprintf("%s:1: expected a number of bytes%s", path, max_ok ? " or \"max\"" : "");
	return false;
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

/*
 * One figure of dir's memory cgroup: the key of file (memory.stat), or the
 * file's one value where key is NULL.  *missing when the file is absent.
 */
static bool memcg_figure(const char *dir, const char *file, const char *key, uint64_t *v,
			 bool *missing, char **err)
{
	struct ry_buf b = RY_BUF_INIT;
	char *path = ry_asprintf("%s/%s", dir, file);
	bool ok = read_opt(path, &b, missing, err) &&
		  (*missing || (key ? ry_pressure_parse_memcg_stat(b.data, path, key, v, err)
				    : ry_pressure_parse_memcg_value(b.data, path, true, v, err)));
	free(path);
	ry_buf_release(&b);
	return ok;
}

/* v2: the smallest memory.max of dir and its ancestors, up to the first
 * directory without one (the hierarchy's root has none). */
static bool memcg_v2_limit(const char *dir, uint64_t *limit, char **err)
{
	char *d = ry_strdup(dir);
	bool ok = true, missing = false;
	*limit = UINT64_MAX;
	for (;;) {
		size_t len = strlen(d);
		while (len > 1 && d[len - 1] == '/')
			d[--len] = '\0';
		uint64_t v;
		ok = memcg_figure(d, "memory.max", NULL, &v, &missing, err);
		if (!ok || missing)
			break;
		if (v < *limit)
			*limit = v;
		char *slash = strrchr(d, '/');
		if (!slash || slash == d)
			break;
		*slash = '\0';
	}
	free(d);
	return ok;
}

bool ry_pressure_read_memcg(const char *dir, struct ry_memcg_reading *m, char **err)
{
	struct ry_memcg_reading r = { 0 };
	bool missing = false, v2 = true;

	if (!memcg_figure(dir, "memory.current", NULL, &r.usage, &missing, err))
		return false;
	if (missing) {
		v2 = false;
		if (!memcg_figure(dir, "memory.usage_in_bytes", NULL, &r.usage, &missing, err))
			return false;
	}
	if (!missing) {
		if (v2 ? !memcg_v2_limit(dir, &r.limit, err)
		       : !memcg_figure(dir, "memory.stat", "hierarchical_memory_limit", &r.limit,
				       &missing, err))
			return false;
	}
	if (!missing && !memcg_figure(dir, "memory.stat", v2 ? "inactive_file" : "total_inactive_file",
				      &r.inactive_file, &missing, err))
		return false;
	/* Any file gone: the cgroup went away meanwhile; nothing to judge. */
	if (!missing) {
		r.have = true;
		r.limited = r.limit < MEMCG_UNLIMITED;
	}
	*m = r;
	return true;
}

/*
 * The cgroup's figures where its limit is below MemTotal (or the host's
 * are missing): the throttle judges both.  Available in the cgroup is what
 * it may still charge plus the file cache the kernel reclaims first.
 */
static void cgroup_memory(struct ry_pressure *r, const struct ry_memcg_reading *m)
{
	if (!m->have || !m->limited)
		return;
	int64_t limit = (int64_t)m->limit;
	int64_t avail = limit - (int64_t)(m->usage > m->limit ? m->limit : m->usage) +
			(int64_t)(m->inactive_file > m->limit ? m->limit : m->inactive_file);
	if (avail > limit)
		avail = limit;
	long total_kb = (long)(limit / 1024), avail_kb = (long)(avail / 1024);
	if (total_kb <= 0 || (r->have_mem && total_kb >= r->mem_total_kb))
		return;
	r->have_memcg = true;
	r->memcg_total_kb = total_kb;
	r->memcg_available_kb = avail_kb;
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
	if (src->memcg) {
		struct ry_memcg_reading m;
		if (!ry_pressure_read_memcg(src->memcg, &m, err))
			goto out;
		cgroup_memory(&r, &m);
	}
	*p = r;
	ok = true;
out:
	return ok;
}
