#include "config/config.h"

#include <ctype.h>
#include <errno.h>
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
}

void ry_config_release(struct ry_worker_config *c)
{
	free(c->db);
	free(c->name);
	free(c->workdir);
	free(c->stats_path);
	ry_strlist_release(&c->labels);
	memset(c, 0, sizeof(*c));
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
	return true;
}
