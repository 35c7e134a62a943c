/*
 * The history import format: JSON lines, one past task run each.
 * See history.h and docs/forecasting.md.
 */
#include "forecast/history.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const kinds[] = { "build", "test", "deploy", "package", "lint", "publish", "other" };

static void run_release(struct ry_history_run *r)
{
	free(r->family);
	free(r->task);
	free(r->version);
	free(r->service);
	free(r->kind);
	free(r->agent_class);
	free(r->run_ref);
	free(r->outcome);
}

void ry_history_release(struct ry_history *h)
{
	for (size_t i = 0; i < h->n; i++)
		run_release(&h->runs[i]);
	free(h->runs);
	h->runs = NULL;
	h->n = h->cap = 0;
}

static int two(const char *p)
{
	if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
		return -1;
	return (p[0] - '0') * 10 + (p[1] - '0');
}

bool ry_history_parse_time(const char *s, double *out)
{
	/* YYYY-MM-DD[T ]HH:MM:SS[.frac](Z|+HH:MM|-HH:MM) */
	size_t len = strlen(s);
	if (len < 20)
		return false;
	int y = 0;
	for (int i = 0; i < 4; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		y = y * 10 + (s[i] - '0');
	}
	int mo = two(s + 5), d = two(s + 8), h = two(s + 11), mi = two(s + 14), sec = two(s + 17);
	if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    s[13] != ':' || s[16] != ':' || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 ||
	    h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60 || y < 1970)
		return false;
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap))
		return false;
	const char *p = s + 19;
	double frac = 0, scale = 0.1;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return false;
		for (; *p >= '0' && *p <= '9'; p++, scale /= 10)
			frac += (*p - '0') * scale;
	}
	long offset = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6) {
		int oh = two(p + 1), om = p[3] == ':' ? two(p + 4) : -1;
		if (oh < 0 || oh > 23 || om < 0 || om > 59)
			return false;
		offset = (oh * 3600L + om * 60L) * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return false;
	}
	if (*p)
		return false;
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
			 .tm_min = mi, .tm_sec = sec };
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return false;
	*out = (double)t - (double)offset + frac;
	return true;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *ry_history_agent_class(const char *os, const char *arch, long cores,
			     const struct ry_strlist *labels)
{
	struct ry_buf b = RY_BUF_INIT;
	const char **sorted = ry_calloc(labels->n + 1, sizeof(*sorted));
	size_t n = 0;

	ry_buf_printf(&b, "%s/%s/%ldc", os, arch, cores);
	for (size_t i = 0; i < labels->n; i++)
		if (strcmp(labels->items[i], os) != 0 && strcmp(labels->items[i], arch) != 0)
			sorted[n++] = labels->items[i];
	qsort(sorted, n, sizeof(*sorted), cmp_str);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && strcmp(sorted[i], sorted[i - 1]) == 0)
			continue;
		ry_buf_putc(&b, i == 0 ? '/' : ',');
		ry_buf_puts(&b, sorted[i]);
	}
	free(sorted);
	return ry_buf_detach(&b);
}

/* A non-empty string of at most max bytes without control characters. */
static bool good_text(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* Reads a text field: absent is fine unless required. */
static bool get_text(json_t *obj, const char *key, bool required, size_t max, char **out,
		     char **why)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v)) {
		if (required)
			*why = ry_asprintf("missing \"%s\"", key);
		return !required;
	}
	if (json_is_integer(v)) {
		*out = ry_asprintf("%lld", (long long)json_integer_value(v));
		return true;
	}
	if (!json_is_string(v) || !good_text(json_string_value(v), max)) {
		*why = ry_asprintf("\"%s\" must be a non-empty string of at most %zu characters", key,
				   max);
		return false;
	}
	*out = ry_strdup(json_string_value(v));
	return true;
}

/* A time field: RFC 3339 text or epoch seconds. */
static bool get_time(json_t *obj, const char *key, bool required, bool *has, double *out,
		     char **why)
{
	json_t *v = json_object_get(obj, key);
	*has = false;
	if (!v || json_is_null(v)) {
		if (required)
			*why = ry_asprintf("missing \"%s\"", key);
		return !required;
	}
	if (json_is_number(v)) {
		*out = json_number_value(v);
		if (!isfinite(*out) || *out < 0 || *out > 32503680000.0) {
			*why = ry_asprintf("\"%s\" is not a time: %g", key, *out);
			return false;
		}
	} else if (!json_is_string(v) || !ry_history_parse_time(json_string_value(v), out)) {
		*why = ry_asprintf("\"%s\" must be an RFC 3339 time (2026-01-05T10:00:00Z) or epoch seconds",
				   key);
		return false;
	}
	*has = true;
	return true;
}

/* host: {"os": .., "arch": .., "cores": N, "labels": [..]} -> agent class. */
static bool host_class(json_t *host, char **out, char **why)
{
	static const char *const keys[] = { "os", "arch", "cores", "labels" };
	const char *key;
	json_t *v;
	json_object_foreach(host, key, v) {
		bool known = false;
		for (size_t i = 0; i < RY_ARRAY_SIZE(keys); i++)
			known = known || strcmp(key, keys[i]) == 0;
		if (!known) {
			*why = ry_asprintf("unknown key \"host.%s\" (os, arch, cores, labels)", key);
			return false;
		}
	}
	json_t *os = json_object_get(host, "os"), *arch = json_object_get(host, "arch");
	json_t *cores = json_object_get(host, "cores"), *labels = json_object_get(host, "labels");
	if (!json_is_string(os) || !good_text(json_string_value(os), 64) || !json_is_string(arch) ||
	    !good_text(json_string_value(arch), 64)) {
		*why = ry_strdup("\"host\" needs \"os\" and \"arch\" strings");
		return false;
	}
	if (!json_is_integer(cores) || json_integer_value(cores) < 1 ||
	    json_integer_value(cores) > 100000) {
		*why = ry_strdup("\"host.cores\" must be a positive integer");
		return false;
	}
	struct ry_strlist l = { 0 };
	if (labels && !json_is_null(labels)) {
		size_t i;
		json_t *e;
		if (!json_is_array(labels)) {
			*why = ry_strdup("\"host.labels\" must be an array of strings");
			return false;
		}
		json_array_foreach(labels, i, e) {
			if (!json_is_string(e) || !good_text(json_string_value(e), 64) ||
			    strchr(json_string_value(e), ',') || strchr(json_string_value(e), '/')) {
				*why = ry_strdup("\"host.labels\" must be an array of strings without , or /");
				ry_strlist_release(&l);
				return false;
			}
			ry_strlist_add(&l, json_string_value(e));
		}
	}
	*out = ry_history_agent_class(json_string_value(os), json_string_value(arch),
				      (long)json_integer_value(cores), &l);
	ry_strlist_release(&l);
	return true;
}

static const char *normal_outcome(const char *s)
{
	static const char *const map[][2] = {
		{ "succeeded", "succeeded" }, { "success", "succeeded" }, { "passed", "succeeded" },
		{ "failed", "failed" }, { "failure", "failed" },
		{ "cancelled", "cancelled" }, { "canceled", "cancelled" },
		{ "skipped", "skipped" }, { "cached", "cached" },
	};
	for (size_t i = 0; i < RY_ARRAY_SIZE(map); i++)
		if (strcmp(s, map[i][0]) == 0)
			return map[i][1];
	return NULL;
}

/* One line's object into r; false with *why. */
static bool parse_run(json_t *obj, struct ry_history_run *r, char **why)
{
	static const char *const keys[] = { "family", "task", "version", "service", "kind",
		"agent_class", "host", "run", "outcome", "queued", "start", "end" };
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		bool known = false;
		for (size_t i = 0; i < RY_ARRAY_SIZE(keys); i++)
			known = known || strcmp(key, keys[i]) == 0;
		if (!known) {
			*why = ry_asprintf("unknown key \"%s\"", key);
			return false;
		}
	}
	char *outcome = NULL;
	bool has;
	if (!get_text(obj, "family", true, 200, &r->family, why) ||
	    !get_text(obj, "task", true, 200, &r->task, why) ||
	    !get_text(obj, "version", false, 200, &r->version, why) ||
	    !get_text(obj, "service", false, 200, &r->service, why) ||
	    !get_text(obj, "kind", false, 32, &r->kind, why) ||
	    !get_text(obj, "run", false, 200, &r->run_ref, why) ||
	    !get_text(obj, "outcome", true, 32, &outcome, why) ||
	    !get_time(obj, "queued", false, &r->has_queued, &r->queued, why) ||
	    !get_time(obj, "start", true, &has, &r->started, why) ||
	    !get_time(obj, "end", true, &has, &r->finished, why)) {
		free(outcome);
		return false;
	}
	const char *o = normal_outcome(outcome);
	if (!o) {
		*why = ry_asprintf("\"outcome\" must be succeeded, failed, cancelled, skipped or cached, not \"%s\"",
				   outcome);
		free(outcome);
		return false;
	}
	free(outcome);
	r->outcome = ry_strdup(o);
	if (!r->version)
		r->version = ry_strdup("1");
	if (r->kind) {
		bool ok = false;
		for (size_t i = 0; i < RY_ARRAY_SIZE(kinds); i++)
			ok = ok || strcmp(r->kind, kinds[i]) == 0;
		if (!ok) {
			*why = ry_asprintf("\"kind\" must be build, test, deploy, package, lint, publish or other, not \"%s\"",
					   r->kind);
			return false;
		}
	}
	if (r->finished < r->started) {
		*why = ry_strdup("\"end\" is before \"start\"");
		return false;
	}
	if (r->has_queued && r->queued > r->started) {
		*why = ry_strdup("\"queued\" is after \"start\"");
		return false;
	}
	json_t *host = json_object_get(obj, "host");
	json_t *cls = json_object_get(obj, "agent_class");
	if (host && cls) {
		*why = ry_strdup("give \"agent_class\" or \"host\", not both");
		return false;
	}
	if (host && !json_is_object(host)) {
		*why = ry_strdup("\"host\" must be an object (os, arch, cores, labels)");
		return false;
	}
	if (host)
		return host_class(host, &r->agent_class, why);
	if (!get_text(obj, "agent_class", false, 300, &r->agent_class, why))
		return false;
	if (!r->agent_class)
		r->agent_class = ry_strdup("");
	return true;
}

bool ry_history_parse(const char *name, const char *data, size_t len, struct ry_history *h,
		      char **err)
{
	const char *p = data, *end = data + len;
	int line = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		line++;
		const char *s = p, *line_start = p;
		while (s < eol && (*s == ' ' || *s == '\t' || *s == '\r'))
			s++;
		p = nl ? nl + 1 : end;
		if (s == eol || *s == '#')
			continue;

		json_error_t jerr;
		json_t *obj = json_loadb(s, (size_t)(eol - s), JSON_REJECT_DUPLICATES, &jerr);
		if (!obj) {
			*err = ry_asprintf("%s:%d: invalid JSON: %s (column %d)", name, line, jerr.text,
					   (int)(s - line_start) + jerr.column);
			return false;
		}
		if (!json_is_object(obj)) {
			json_decref(obj);
			*err = ry_asprintf("%s:%d: each line must be a JSON object", name, line);
			return false;
		}
		struct ry_history_run r = { .line = line };
		char *why = NULL;
		bool ok = parse_run(obj, &r, &why);
		json_decref(obj);
		if (!ok) {
			*err = ry_asprintf("%s:%d: %s", name, line, why);
			free(why);
			run_release(&r);
			return false;
		}
		if (h->n == h->cap) {
			h->cap = h->cap ? 2 * h->cap : 256;
			h->runs = ry_realloc(h->runs, h->cap * sizeof(*h->runs));
		}
		h->runs[h->n++] = r;
	}
	return true;
}
