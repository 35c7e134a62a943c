/* The cache's settings: cache_* keys of the worker's configuration. */
#include "cache/cache.h"
#include "store/store.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

void ry_cache_config_init(struct ry_cache_config *c)
{
	memset(c, 0, sizeof(*c));
	c->connect_timeout_ms = 2000;
	c->stall_timeout_s = 10;
	c->timeout_s = 600;
	c->nondeterministic = ry_strdup("keep-first");
	c->flaky = ry_strdup("no-cache");
	c->threads = 2;
	c->lookahead = 32;
}

void ry_cache_config_release(struct ry_cache_config *c)
{
	free(c->dir);
	free(c->remote_url);
	free(c->remote_username);
	free(c->remote_password_file);
	free(c->remote_token_file);
	free(c->remote_ca_file);
	free(c->nondeterministic);
	free(c->flaky);
	ry_strlist_release(&c->toolchain);
	memset(c, 0, sizeof(*c));
}

bool ry_cache_config_owns(const char *key)
{
	return strncmp(key, "cache_", 6) == 0;
}

static bool set_long(long *dst, const char *key, const char *value, long min, long max,
		     const char *where, char **err)
{
	long v;
	if (!ry_parse_long(value, min, max, &v)) {
		*err = ry_asprintf("%s: %s must be a whole number from %ld to %ld, not \"%s\"", where,
				   key, min, max, value);
		return false;
	}
	*dst = v;
	return true;
}

static bool set_int(int *dst, const char *key, const char *value, int min, int max,
		    const char *where, char **err)
{
	long v;
	if (!set_long(&v, key, value, min, max, where, err))
		return false;
	*dst = (int)v;
	return true;
}

static void set_str(char **dst, const char *value)
{
	free(*dst);
	*dst = *value ? ry_strdup(value) : NULL;
}

bool ry_cache_config_set(struct ry_cache_config *c, const char *key, const char *value,
			 const char *where, char **err)
{
	static const struct {
		const char *key;
		size_t off;
	} strs[] = {
		{ "cache_dir", offsetof(struct ry_cache_config, dir) },
		{ "cache_remote_url", offsetof(struct ry_cache_config, remote_url) },
		{ "cache_remote_username", offsetof(struct ry_cache_config, remote_username) },
		{ "cache_remote_password_file", offsetof(struct ry_cache_config, remote_password_file) },
		{ "cache_remote_token_file", offsetof(struct ry_cache_config, remote_token_file) },
		{ "cache_remote_ca_file", offsetof(struct ry_cache_config, remote_ca_file) },
	};
	for (size_t i = 0; i < RY_ARRAY_SIZE(strs); i++) {
		if (strcmp(key, strs[i].key) == 0) {
			set_str((char **)((char *)c + strs[i].off), value);
			return true;
		}
	}
	if (strcmp(key, "cache_connect_timeout_ms") == 0)
		return set_long(&c->connect_timeout_ms, key, value, 1, 600000, where, err);
	if (strcmp(key, "cache_stall_timeout_s") == 0)
		return set_long(&c->stall_timeout_s, key, value, 1, 3600, where, err);
	if (strcmp(key, "cache_timeout_s") == 0)
		return set_long(&c->timeout_s, key, value, 1, 86400, where, err);
	if (strcmp(key, "cache_threads") == 0)
		return set_int(&c->threads, key, value, 1, 64, where, err);
	if (strcmp(key, "cache_lookahead") == 0)
		return set_int(&c->lookahead, key, value, 0, 128, where, err);
	if (strcmp(key, "cache_toolchain") == 0) {
		ry_strlist_release(&c->toolchain);
		ry_strlist_split(&c->toolchain, value, ',');
		return true;
	}
	if (strcmp(key, "cache_nondeterministic") == 0 || strcmp(key, "cache_flaky") == 0) {
		if (strcmp(value, "keep-first") != 0 && strcmp(value, "no-cache") != 0) {
			*err = ry_asprintf("%s: %s must be keep-first or no-cache, not \"%s\"", where, key,
					   value);
			return false;
		}
		set_str(key[6] == 'n' ? &c->nondeterministic : &c->flaky, value);
		return true;
	}
	*err = ry_asprintf("%s: unknown setting \"%s\"", where, key);
	return false;
}

bool ry_cache_config_load_file(struct ry_cache_config *c, const char *path, char **err)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0;
	bool ok = true;

	if (!f) {
		*err = ry_asprintf("cannot read %s: %s", path, strerror(errno));
		return false;
	}
	/* Only "cache_KEY = VALUE" lines; the worker's loader owns the rest. */
	while (ok && getline(&line, &cap, f) >= 0) {
		char key[128], value[4096];
		lineno++;
		if (sscanf(line, " %127[a-z_] = %4095[^\r\n]", key, value) != 2 ||
		    !ry_cache_config_owns(key))
			continue;
		size_t n = strlen(value);
		while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
			value[--n] = '\0';
		char *where = ry_asprintf("%s:%d", path, lineno);
		ok = ry_cache_config_set(c, key, value, where, err);
		free(where);
	}
	free(line);
	fclose(f);
	return ok;
}

/* A secret from a file: its first line; refused when others may read it. */
static char *read_secret(const char *path, const char *what, char **err)
{
	struct stat sb;
	char buf[4096];
	FILE *f = fopen(path, "r");
	if (!f) {
		*err = ry_asprintf("cannot read the %s file %s: %s", what, path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &sb) == 0 && (sb.st_mode & 0004)) {
		*err = ry_asprintf("the %s file %s is readable by everyone: chmod o-r it", what, path);
		fclose(f);
		return NULL;
	}
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
	if (!buf[0]) {
		*err = ry_asprintf("the %s file %s is empty", what, path);
		return NULL;
	}
	return ry_strdup(buf);
}

struct ry_store *ry_cache_config_open_store(const struct ry_cache_config *c,
					    struct event_base *base, const char *workdir,
					    char **err)
{
	char *dir = c->dir ? ry_strdup(c->dir) : ry_asprintf("%s/cache", workdir);
	char *password = NULL, *token = NULL, *tmp = NULL;
	struct ry_store *local = ry_store_local_new(base, dir, err), *remote = NULL;

	if (!local || !c->remote_url)
		goto out;
	if (c->remote_password_file && !c->remote_username) {
		*err = ry_strdup("cache_remote_password_file needs cache_remote_username");
		goto fail;
	}
	if (c->remote_username && !c->remote_password_file) {
		*err = ry_strdup("cache_remote_username needs cache_remote_password_file");
		goto fail;
	}
	if (c->remote_password_file &&
	    !(password = read_secret(c->remote_password_file, "cache password", err)))
		goto fail;
	if (c->remote_token_file && !(token = read_secret(c->remote_token_file, "cache token", err)))
		goto fail;
	tmp = ry_asprintf("%s/tmp", dir);
	struct ry_store_http_config hc = {
		.url = c->remote_url, .username = c->remote_username, .password = password,
		.bearer_token = token, .ca_file = c->remote_ca_file, .tmp_dir = tmp,
		.connect_timeout_ms = c->connect_timeout_ms, .stall_timeout_s = c->stall_timeout_s,
		.timeout_s = c->timeout_s,
	};
	if (!(remote = ry_store_http_new(local->base, &hc, err)))
		goto fail;
	local = ry_store_tiered_new(local, remote);
	goto out;
fail:
	ry_store_free(local);
	local = NULL;
out:
	if (password)
		memset(password, 0, strlen(password));
	if (token)
		memset(token, 0, strlen(token));
	free(password);
	free(token);
	free(tmp);
	free(dir);
	return local;
}

static bool parse_scaled(const char *s, const char *const *units, const int64_t *scale,
			 int64_t *out)
{
	char *end;
	if (!s || !*s || !(isdigit((unsigned char)*s) || *s == '.'))
		return false;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return false;
	for (size_t i = 0; units[i]; i++) {
		if (strcasecmp(end, units[i]) == 0) {
			double r = v * (double)scale[i];
			if (r > 9.2e18)
				return false;
			*out = (int64_t)llround(r);
			return true;
		}
	}
	return false;
}

bool ry_cache_parse_size(const char *s, int64_t *bytes)
{
	static const char *const units[] = { "", "b", "k", "kb", "m", "mb", "g", "gb", "t", "tb",
					     NULL };
	static const int64_t scale[] = { 1, 1, 1LL << 10, 1LL << 10, 1LL << 20, 1LL << 20,
					 1LL << 30, 1LL << 30, 1LL << 40, 1LL << 40 };
	return parse_scaled(s, units, scale, bytes);
}

bool ry_cache_parse_age(const char *s, int64_t *seconds)
{
	static const char *const units[] = { "s", "m", "h", "d", "w", NULL };
	static const int64_t scale[] = { 1, 60, 3600, 86400, 7 * 86400 };
	return parse_scaled(s, units, scale, seconds);
}

void ry_cache_format_size(char *buf, size_t len, int64_t bytes)
{
	static const char *const units[] = { "B", "KB", "MB", "GB", "TB" };
	double v = (double)bytes;
	size_t u = 0;
	while (v >= 1024 && u + 1 < RY_ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%lld B", (long long)bytes);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
}
