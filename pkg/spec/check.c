/*
 * Spec validation's shared parts (check.h): messages collected and
 * reported in line order, typo hints, and the typed field readers.
 */
#include "spec/check.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_ERRORS 20

void spec_fail(struct check *c, int line, const char *fmt, ...)
{
	va_list ap;

	/* Past a point more messages help nobody; keep counting, stop storing. */
	if (c->count++ >= 10 * MAX_ERRORS)
		return;
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_printf(&b, "%s:%d: ", c->source, line);
	if (c->task)
		ry_buf_printf(&b, "task \"%s\": ", c->task);
	else if (c->task_no)
		ry_buf_printf(&b, "task #%zu: ", c->task_no);
	va_start(ap, fmt);
	ry_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	c->problems = ry_realloc(c->problems, c->count * sizeof(*c->problems));
	c->problems[c->count - 1].line = line;
	c->problems[c->count - 1].msg = ry_buf_detach(&b);
}

/* Hands the messages to errors in line order, at most MAX_ERRORS. */
void spec_report(struct check *c, struct ry_strlist *errors)
{
	size_t stored = c->count < 10 * MAX_ERRORS ? c->count : 10 * MAX_ERRORS;
	/* Insertion sort: stable, so one line's messages keep finding order. */
	struct problem *p = c->problems;
	for (size_t i = 1; i < stored; i++) {
		struct problem x = p[i];
		size_t j = i;
		while (j > 0 && p[j - 1].line > x.line) {
			p[j] = p[j - 1];
			j--;
		}
		p[j] = x;
	}
	for (size_t i = 0; i < stored; i++) {
		if (i < MAX_ERRORS)
			ry_strlist_add(errors, p[i].msg);
		free(p[i].msg);
	}
	if (c->count > MAX_ERRORS) {
		char *m = ry_asprintf("%s: %zu more errors not shown", c->source,
				      c->count - MAX_ERRORS);
		ry_strlist_add(errors, m);
		free(m);
	}
	free(c->problems);
	c->problems = NULL;
}


/* ---- typos ----------------------------------------------------------------- */

size_t spec_levenshtein(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return 99;
	size_t row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* How many edits still read as a typo: none for tiny words. */
size_t spec_typo_budget(const char *s)
{
	size_t len = strlen(s);
	return len <= 2 ? 0 : len <= 5 ? 1 : 2;
}

/* The closest of words to s when s looks like a typo of it, else NULL. */
static const char *closest(const char *s, const char *const *words)
{
	const char *best = NULL;
	size_t best_d = spec_typo_budget(s);

	for (; *words; words++) {
		size_t d = strcasecmp(s, *words) == 0 ? 0 : spec_levenshtein(s, *words);
		if (d <= best_d && strcmp(s, *words) != 0) {
			best = *words;
			best_d = d;
		}
	}
	return best;
}

/* Does map hold a misspelling of key (reported as an unknown key)? */
static bool has_typo_of(const struct spec_node *map, const char *key)
{
	const char *const one[] = { key, NULL };
	for (size_t i = 0; i + 1 < map->n; i += 2)
		if (closest(map->items[i]->text, one))
			return true;
	return false;
}

static bool is_word(const char *s, const char *const *words)
{
	for (; *words; words++)
		if (strcmp(s, *words) == 0)
			return true;
	return false;
}

static char *join_words(const char *const *words)
{
	struct ry_buf b = RY_BUF_INIT;
	for (size_t i = 0; words[i]; i++)
		ry_buf_printf(&b, "%s%s", i ? (words[i + 1] ? ", " : " or ") : "", words[i]);
	return ry_buf_detach(&b);
}

void spec_check_keys(struct check *c, const struct spec_node *map, const char *const *known)
{
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const struct spec_node *k = map->items[i];
		if (is_word(k->text, known))
			continue;
		const char *hint = closest(k->text, known);
		if (hint) {
			spec_fail(c, k->line, "unknown key \"%s\" (did you mean \"%s\"?)", k->text, hint);
		} else {
			char *all = join_words(known);
			spec_fail(c, k->line, "unknown key \"%s\" (expected %s)", k->text, all);
			free(all);
		}
	}
}

/* ---- text ------------------------------------------------------------------ */

static bool utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		unsigned char c = s[i];
		size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 :
			   (c >> 3) == 0x1e ? 4 : 0;
		if (n == 0 || i + n > len)
			return false;
		for (size_t k = 1; k < n; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
		i += n;
	}
	return true;
}

size_t spec_utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

bool spec_only_chars(const char *s, const char *set)
{
	for (; *s; s++)
		if (!strchr(set, *s))
			return false;
	return true;
}

static bool blank(const char *s)
{
	for (; *s; s++)
		if (!strchr(" \t\r\n\v\f", *s))
			return false;
	return true;
}

/* ---- typed field readers ------------------------------------------------- */

/*
 * A string-valued node: strings, and numbers as written (version: 2,
 * revision: 1234567).  Reports and returns NULL for anything else.
 */
const char *spec_as_string(struct check *c, const struct spec_node *v, const char *what)
{
	if (v->type == SPEC_MAP || v->type == SPEC_SEQ || v->type == SPEC_BOOL ||
	    v->type == SPEC_NULL) {
		const char *got = v->type == SPEC_MAP ? "a mapping" : v->type == SPEC_SEQ ? "a list" :
				  v->type == SPEC_BOOL ? v->text : "null";
		if (v->type == SPEC_BOOL)
			spec_fail(c, v->line, "%s must be a string, not %s (quote it: \"%s\")", what, got, got);
		else
			spec_fail(c, v->line, "%s must be a string, not %s", what, got);
		return NULL;
	}
	if (strlen(v->text) != v->len) {
		spec_fail(c, v->line, "%s must not contain a NUL character", what);
		return NULL;
	}
	if (!utf8_valid((const unsigned char *)v->text, v->len)) {
		spec_fail(c, v->line, "%s is not valid UTF-8", what);
		return NULL;
	}
	return v->text;
}

/*
 * Reads an optional string field (null counts as absent); false when it
 * is present but wrong.  nonempty rejects "" and blanks.
 */
bool spec_get_str(struct check *c, const struct spec_node *map, const char *key,
		  bool nonempty, char **out)
{
	const struct spec_node *v = spec_map_get(map, key);
	if (!v || v->type == SPEC_NULL)
		return true;
	const char *s = spec_as_string(c, v, key);
	if (!s)
		return false;
	if (nonempty && blank(s)) {
		spec_fail(c, v->line, "%s must not be empty", key);
		return false;
	}
	free(*out);
	*out = ry_strdup(s);
	return true;
}

bool spec_get_required_str(struct check *c, const struct spec_node *map, int map_line,
			   const char *key, char **out)
{
	const struct spec_node *v = spec_map_get(map, key);
	if (!v && has_typo_of(map, key))
		return false;	/* "unknown key "comand" (did you mean ...)" says it */
	if (!v || v->type == SPEC_NULL) {
		spec_fail(c, v ? v->line : map_line, "%s is required", key);
		return false;
	}
	return spec_get_str(c, map, key, true, out);
}

/* YAML and JSON integers: decimal, 0x hex, 0o octal, with a sign. */
static bool parse_int(const char *text, long long *out)
{
	const char *s = text;
	bool neg = *s == '-';
	int base = 10;

	if (*s == '-' || *s == '+')
		s++;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
		base = s[1] == 'x' ? 16 : 8;
		s += 2;
	}
	if (!*s)
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, base);
	if (*end || errno == ERANGE || v > (unsigned long long)LLONG_MAX)
		return false;
	*out = neg ? -(long long)v : (long long)v;
	return true;
}

bool spec_get_int(struct check *c, const struct spec_node *map, const char *key,
		  long min, long max, int *out, bool *present)
{
	const struct spec_node *v = spec_map_get(map, key);
	long long x;

	if (!v || v->type == SPEC_NULL)
		return true;
	if (v->type != SPEC_INT || !parse_int(v->text, &x) || x < min || x > max) {
		spec_fail(c, v->line, "%s must be an integer from %ld to %ld", key, min, max);
		return false;
	}
	*out = (int)x;
	if (present)
		*present = true;
	return true;
}

bool spec_get_bool(struct check *c, const struct spec_node *map, const char *key, bool *out)
{
	const struct spec_node *v = spec_map_get(map, key);
	if (!v || v->type == SPEC_NULL)
		return true;
	if (v->type != SPEC_BOOL) {
		spec_fail(c, v->line, "%s must be true or false", key);
		return false;
	}
	*out = strcmp(v->text, "true") == 0;
	return true;
}

bool spec_get_choice(struct check *c, const struct spec_node *map, const char *key,
		     const char *const *choices, char **out)
{
	const struct spec_node *v = spec_map_get(map, key);
	if (!v || v->type == SPEC_NULL)
		return true;
	if (v->type != SPEC_STR || !is_word(v->text, choices)) {
		char *all = join_words(choices);
		spec_fail(c, v->line, "%s must be one of %s", key, all);
		free(all);
		return false;
	}
	free(*out);
	*out = ry_strdup(v->text);
	return true;
}

/* A list of non-empty strings (labels, inputs, paths). */
bool spec_get_list(struct check *c, const struct spec_node *map, const char *key,
		   struct ry_strlist *out, bool *present)
{
	const struct spec_node *v = spec_map_get(map, key);
	bool ok = true;

	if (!v || v->type == SPEC_NULL)
		return true;
	if (v->type != SPEC_SEQ) {
		spec_fail(c, v->line, "%s must be a list of strings", key);
		return false;
	}
	for (size_t i = 0; i < v->n; i++) {
		const struct spec_node *e = v->items[i];
		char *what = ry_asprintf("%s item %zu", key, i + 1);
		const char *s = spec_as_string(c, e, what);
		if (s && blank(s)) {
			spec_fail(c, e->line, "%s must not be empty", what);
			s = NULL;
		}
		free(what);
		if (s)
			ry_strlist_add(out, s);
		else
			ok = false;
	}
	if (present)
		*present = true;
	return ok;
}
