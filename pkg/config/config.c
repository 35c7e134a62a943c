#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ry_config_init(struct ry_worker_config *c)
{
	memset(c, 0, sizeof(*c));
	c->slots = 4;
	c->heartbeat_s = 2;
	c->lease_s = 10;
	c->drain_timeout_s = 30;
	c->cgroups = true;
	c->task_user = ry_strdup("railyard-task");
	c->task_uid_per_task = true;
	c->log_max_mb = 100;
	c->match_limit = 100000;	/* match.h RY_MATCH_LIMIT_DEFAULT: ~0.5 ms per path */
	c->match_depth_limit = 10000;
	c->min_free_mb = 64;
	c->retention_s = 7 * 86400;
	c->retention_min_s = 3600;
	c->retention_mb = 0;
	c->retention_check_s = 300;
	c->http_listen = ry_strdup("127.0.0.1:9187");
	c->throttle = true;
	c->min_slots = 1;
	c->throttle_slow_start = true;
	c->pressure_dir = ry_strdup("/proc/pressure");
	c->meminfo_path = ry_strdup("/proc/meminfo");
	c->loadavg_path = ry_strdup("/proc/loadavg");
	c->memory_cgroup = ry_strdup("auto");
	c->throttle_interval_ms = 2000;
	c->claim_ahead = 0;
	c->claim_ahead_hold_ms = 2000;
	c->throttle_decrease = c->pressure_cpu_high = c->pressure_cpu_low = -1;
	c->pressure_memory_high = c->pressure_memory_low = c->pressure_io_high = -1;
	c->pressure_io_low = c->mem_available_low_pct = c->mem_available_ok_pct = -1;
	c->runnable_high = c->runnable_low = -1;
}

void ry_config_release(struct ry_worker_config *c)
{
	free(c->db);
	free(c->name);
	free(c->workdir);
	free(c->stats_path);
	free(c->task_user);
	free(c->db_passfile);
	free(c->secrets_dir);
	free(c->http_listen);
	free(c->webhook_secrets_dir);
	free(c->container_runtime);
	free(c->container_options);
	free(c->pressure_dir);
	free(c->meminfo_path);
	free(c->loadavg_path);
	free(c->memory_cgroup);
	ry_strlist_release(&c->labels);
	memset(c, 0, sizeof(*c));
}

static char *dup_or_null(const char *s)
{
	return s ? ry_strdup(s) : NULL;
}

void ry_config_copy(struct ry_worker_config *dst, const struct ry_worker_config *src)
{
	*dst = *src;
	dst->db = dup_or_null(src->db);
	dst->name = dup_or_null(src->name);
	dst->workdir = dup_or_null(src->workdir);
	dst->stats_path = dup_or_null(src->stats_path);
	dst->task_user = dup_or_null(src->task_user);
	dst->db_passfile = dup_or_null(src->db_passfile);
	dst->secrets_dir = dup_or_null(src->secrets_dir);
	dst->http_listen = dup_or_null(src->http_listen);
	dst->webhook_secrets_dir = dup_or_null(src->webhook_secrets_dir);
	dst->container_runtime = dup_or_null(src->container_runtime);
	dst->container_options = dup_or_null(src->container_options);
	dst->pressure_dir = dup_or_null(src->pressure_dir);
	dst->meminfo_path = dup_or_null(src->meminfo_path);
	dst->loadavg_path = dup_or_null(src->loadavg_path);
	dst->memory_cgroup = dup_or_null(src->memory_cgroup);
	dst->labels = (struct ry_strlist){ 0 };
	for (size_t i = 0; i < src->labels.n; i++)
		ry_strlist_add(&dst->labels, src->labels.items[i]);
}

static bool set_onoff(bool *dst, const char *key, const char *value, const char *where,
		      char **err)
{
	if (strcmp(value, "on") != 0 && strcmp(value, "off") != 0) {
		*err = ry_asprintf("%s: %s must be on or off, not \"%s\"", where, key, value);
		return false;
	}
	*dst = strcmp(value, "on") == 0;
	return true;
}

static bool set_int(int *dst, const char *key, const char *value, long min, long max,
		    const char *where, char **err)
{
	long v;
	if (!ry_parse_long(value, min, max, &v)) {
		*err = ry_asprintf("%s: %s must be a whole number from %ld to %ld, not \"%s\"",
				   where, key, min, max, value);
		return false;
	}
	*dst = (int)v;
	return true;
}

static bool set_long(long *dst, const char *key, const char *value, long min, long max,
		     const char *where, char **err)
{
	if (!ry_parse_long(value, min, max, dst)) {
		*err = ry_asprintf("%s: %s must be a whole number from %ld to %ld, not \"%s\"",
				   where, key, min, max, value);
		return false;
	}
	return true;
}

static bool set_str(char **dst, const char *value);

static bool set_double(double *dst, const char *key, const char *value, double min, double max,
		       const char *where, char **err)
{
	char *end = NULL;
	errno = 0;
	double v = strtod(value, &end);
	if (!*value || errno || *end || !(v >= min && v <= max)) {
		*err = ry_asprintf("%s: %s must be a number from %g to %g, not \"%s\"", where, key,
				   min, max, value);
		return false;
	}
	*dst = v;
	return true;
}

/* The throttle's settings (docs/operations.md "Throttle"). */
static bool set_throttle(struct ry_worker_config *c, const char *key, const char *value,
			 const char *where, char **err, bool *known)
{
	static const struct {
		const char *key;
		size_t off;
		double max;
	} pct[] = {
		{ "pressure_cpu_high", offsetof(struct ry_worker_config, pressure_cpu_high), 100 },
		{ "pressure_cpu_low", offsetof(struct ry_worker_config, pressure_cpu_low), 100 },
		{ "pressure_memory_high", offsetof(struct ry_worker_config, pressure_memory_high), 100 },
		{ "pressure_memory_low", offsetof(struct ry_worker_config, pressure_memory_low), 100 },
		{ "pressure_io_high", offsetof(struct ry_worker_config, pressure_io_high), 100 },
		{ "pressure_io_low", offsetof(struct ry_worker_config, pressure_io_low), 100 },
		{ "mem_available_low_pct", offsetof(struct ry_worker_config, mem_available_low_pct), 100 },
		{ "mem_available_ok_pct", offsetof(struct ry_worker_config, mem_available_ok_pct), 100 },
		{ "runnable_high", offsetof(struct ry_worker_config, runnable_high), 1000 },
		{ "runnable_low", offsetof(struct ry_worker_config, runnable_low), 1000 },
	};
	*known = true;
	for (size_t i = 0; i < sizeof(pct) / sizeof(pct[0]); i++)
		if (strcmp(key, pct[i].key) == 0)
			return set_double((double *)((char *)c + pct[i].off), key, value, 0, pct[i].max,
					  where, err);
	if (strcmp(key, "throttle") == 0)
		return set_onoff(&c->throttle, key, value, where, err);
	if (strcmp(key, "throttle_slow_start") == 0)
		return set_onoff(&c->throttle_slow_start, key, value, where, err);
	if (strcmp(key, "throttle_start_slots") == 0)
		return set_int(&c->throttle_start_slots, key, value, 0, 100000, where, err);
	if (strcmp(key, "min_slots") == 0)
		return set_int(&c->min_slots, key, value, 1, 100000, where, err);
	if (strcmp(key, "throttle_interval_ms") == 0)
		return set_int(&c->throttle_interval_ms, key, value, 50, 3600000, where, err);
	if (strcmp(key, "throttle_decrease") == 0)
		return set_double(&c->throttle_decrease, key, value, 0.05, 0.95, where, err);
	char **path = strcmp(key, "pressure_dir") == 0	   ? &c->pressure_dir
		      : strcmp(key, "meminfo_path") == 0 ? &c->meminfo_path
		      : strcmp(key, "loadavg_path") == 0 ? &c->loadavg_path
							  : NULL;
	if (path) {
		if (*value != '/') {
			*err = ry_asprintf("%s: %s must be an absolute path, not \"%s\"", where, key, value);
			return false;
		}
		return set_str(path, value);
	}
	if (strcmp(key, "memory_cgroup") == 0) {
		if (strcmp(value, "auto") != 0 && strcmp(value, "off") != 0 && *value != '/') {
			*err = ry_asprintf("%s: memory_cgroup must be auto, off or an absolute "
					   "directory, not \"%s\"", where, value);
			return false;
		}
		return set_str(&c->memory_cgroup, value);
	}
	*known = false;
	return false;
}

static bool set_str(char **dst, const char *value)
{
	free(*dst);
	*dst = *value ? ry_strdup(value) : NULL;
	return true;
}

static bool valid_label(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.:/=+-", *s))
			return false;
	return true;
}

/* As register_agent checks it: it also names files and cgroups. */
static bool valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 100 || !isalnum((unsigned char)s[0]))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.@:-", *s))
			return false;
	return true;
}

bool ry_config_set(struct ry_worker_config *c, const char *key, const char *value,
		   const char *where, char **err)
{
	if (strcmp(key, "db") == 0)
		return set_str(&c->db, value);
	if (strcmp(key, "name") == 0) {
		if (!valid_name(value)) {
			*err = ry_asprintf("%s: invalid name \"%s\" (letters, digits and _ . @ : - only, "
					   "starting with a letter or digit, at most 100)", where, value);
			return false;
		}
		return set_str(&c->name, value);
	}
	if (strcmp(key, "task_user") == 0) {
		/* A system user name: it is given to useradd. */
		bool ok = *value && (islower((unsigned char)*value) || *value == '_') &&
			  strlen(value) <= 32;
		for (const char *p = value; ok && *p; p++)
			ok = islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_' ||
			     *p == '-';
		if (!ok) {
			*err = ry_asprintf("%s: invalid task_user \"%s\" (lower-case letters, digits, "
					   "_ and -, starting with a letter or _, at most 32)", where, value);
			return false;
		}
		return set_str(&c->task_user, value);
	}
	if (strcmp(key, "task_ids") == 0) {
		if (strcmp(value, "per-task") != 0 && strcmp(value, "user") != 0) {
			*err = ry_asprintf("%s: task_ids must be per-task or user, not \"%s\"", where,
					   value);
			return false;
		}
		c->task_uid_per_task = strcmp(value, "per-task") == 0;
		return true;
	}
	if (strcmp(key, "db_passfile") == 0)
		return set_str(&c->db_passfile, value);
	if (strcmp(key, "secrets_dir") == 0) {
		if (*value && *value != '/') {
			*err = ry_asprintf("%s: secrets_dir must be an absolute path, not \"%s\"",
					   where, value);
			return false;
		}
		return set_str(&c->secrets_dir, value);
	}
	if (strcmp(key, "http_listen") == 0) {
		/* host:port, or off; the port is checked here, the host at bind. */
		const char *colon = strrchr(value, ':');
		long port;
		if (strcmp(value, "off") == 0 || !*value)
			return set_str(&c->http_listen, "");
		if (!colon || colon == value || !ry_parse_long(colon + 1, 0, 65535, &port)) {
			*err = ry_asprintf("%s: http_listen must be HOST:PORT (port 0 to 65535) or off, "
					   "not \"%s\"", where, value);
			return false;
		}
		return set_str(&c->http_listen, value);
	}
	if (strcmp(key, "webhooks") == 0)
		return set_onoff(&c->webhooks, key, value, where, err);
	if (strcmp(key, "webhook_secrets_dir") == 0) {
		if (*value && *value != '/') {
			*err = ry_asprintf("%s: webhook_secrets_dir must be an absolute path, not \"%s\"",
					   where, value);
			return false;
		}
		return set_str(&c->webhook_secrets_dir, value);
	}
	if (strcmp(key, "container_runtime") == 0) {
		if (strcmp(value, "auto") != 0 && strcmp(value, "off") != 0 &&
		    strcmp(value, "podman") != 0 && strcmp(value, "docker") != 0 && *value != '/') {
			*err = ry_asprintf("%s: container_runtime must be auto, podman, docker, off or an "
					   "absolute path, not \"%s\"", where, value);
			return false;
		}
		return set_str(&c->container_runtime, value);
	}
	if (strcmp(key, "container_options") == 0)
		return set_str(&c->container_options, value);
	if (strcmp(key, "log_max_mb") == 0)
		return set_int(&c->log_max_mb, key, value, 0, 1 << 20, where, err);
	if (strcmp(key, "match_limit") == 0)
		return set_long(&c->match_limit, key, value, 1000, 1000000000, where, err);
	if (strcmp(key, "match_depth_limit") == 0)
		return set_long(&c->match_depth_limit, key, value, 100, 1000000000, where, err);
	if (strcmp(key, "min_free_mb") == 0)
		return set_int(&c->min_free_mb, key, value, 0, 1 << 30, where, err);
	if (strcmp(key, "retention_s") == 0)
		return set_long(&c->retention_s, key, value, 0, 10L * 365 * 86400, where, err);
	if (strcmp(key, "retention_min_s") == 0)
		return set_long(&c->retention_min_s, key, value, 0, 10L * 365 * 86400, where, err);
	if (strcmp(key, "retention_check_s") == 0)
		return set_int(&c->retention_check_s, key, value, 0, 86400, where, err);
	if (strcmp(key, "retention_mb") == 0)
		return set_long(&c->retention_mb, key, value, 0, 1L << 40, where, err);
	if (strcmp(key, "cgroup") == 0) {
		if (strcmp(value, "auto") != 0 && strcmp(value, "off") != 0) {
			*err = ry_asprintf("%s: cgroup must be auto or off, not \"%s\"", where, value);
			return false;
		}
		c->cgroups = strcmp(value, "auto") == 0;
		return true;
	}
	if (strcmp(key, "workdir") == 0)
		return set_str(&c->workdir, value);
	if (strcmp(key, "labels") == 0) {
		struct ry_strlist l = { 0 };
		ry_strlist_split(&l, value, ',');
		for (size_t i = 0; i < l.n; i++) {
			if (!valid_label(l.items[i])) {
				*err = ry_asprintf("%s: invalid label \"%s\" (letters, digits and _.:/=+- only)",
						   where, l.items[i]);
				ry_strlist_release(&l);
				return false;
			}
		}
		ry_strlist_release(&c->labels);
		c->labels = l;
		return true;
	}
	if (strcmp(key, "slots") == 0)
		return set_int(&c->slots, key, value, 1, 100000, where, err);
	if (strcmp(key, "claim_ahead") == 0)
		return set_int(&c->claim_ahead, key, value, 0, 128, where, err);
	if (strcmp(key, "claim_ahead_hold_ms") == 0)
		return set_int(&c->claim_ahead_hold_ms, key, value, 10, 600000, where, err);
	if (strcmp(key, "cpus") == 0)
		return set_int(&c->cpus, key, value, 0, 1000000, where, err);
	if (strcmp(key, "mem_mb") == 0) {
		int v;
		if (!set_int(&v, key, value, 0, 1 << 30, where, err))
			return false;
		c->mem_mb = v;
		return true;
	}
	if (strcmp(key, "heartbeat_s") == 0)
		return set_int(&c->heartbeat_s, key, value, 1, 3600, where, err);
	if (strcmp(key, "lease_s") == 0)
		return set_int(&c->lease_s, key, value, 2, 86400, where, err);
	if (strcmp(key, "drain_timeout_s") == 0)
		return set_int(&c->drain_timeout_s, key, value, 0, 86400, where, err);
	/* The build cache's settings: read and checked by the worker's cache
	 * (pkg/worker/prepare.c, ry_cache_config_load_file), which refuses to
	 * start on a bad one. */
	if (strncmp(key, "cache_", 6) == 0)
		return true;
	bool known;
	bool ok = set_throttle(c, key, value, where, err, &known);
	if (known)
		return ok;
	*err = ry_asprintf("%s: unknown setting \"%s\"", where, key);
	return false;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

bool ry_config_load_file(struct ry_worker_config *c, const char *path, char **err)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int lineno = 0;
	bool ok = true;

	if (!f) {
		*err = ry_asprintf("cannot read %s: %s", path, strerror(errno));
		return false;
	}
	while (ok && fgets(line, sizeof(line), f)) {
		lineno++;
		char *s = trim(line);
		if (!*s || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		char *where = ry_asprintf("%s:%d", path, lineno);
		if (!eq) {
			*err = ry_asprintf("%s: expected \"key = value\"", where);
			ok = false;
		} else {
			*eq = '\0';
			ok = ry_config_set(c, trim(s), trim(eq + 1), where, err);
		}
		free(where);
	}
	fclose(f);
	return ok;
}

bool ry_config_check(const struct ry_worker_config *c, char **err)
{
	if (c->lease_s < 2 * c->heartbeat_s) {
		*err = ry_asprintf("lease_s (%d) must be at least twice heartbeat_s (%d)",
				   c->lease_s, c->heartbeat_s);
		return false;
	}
	if (c->min_slots > c->slots) {
		*err = ry_asprintf("min_slots (%d) must not exceed slots (%d)", c->min_slots, c->slots);
		return false;
	}
	if (c->retention_min_s > c->retention_s) {
		*err = ry_asprintf("retention_min_s (%ld) must not exceed retention_s (%ld)",
				   c->retention_min_s, c->retention_s);
		return false;
	}
	return true;
}
