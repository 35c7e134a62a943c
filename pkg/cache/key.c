#include "cache/cache.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ry_cache_key_set(struct ry_cache_key *k, const char *name, const char *value)
{
	for (size_t i = 0; i < k->n; i++) {
		if (strcmp(k->v[i].name, name) == 0) {
			free(k->v[i].value);
			k->v[i].value = ry_strdup(value);
			return;
		}
	}
	if (k->n == k->cap) {
		k->cap = k->cap ? 2 * k->cap : 16;
		k->v = ry_realloc(k->v, k->cap * sizeof(*k->v));
	}
	k->v[k->n].name = ry_strdup(name);
	k->v[k->n].value = ry_strdup(value);
	k->n++;
}

const char *ry_cache_key_get(const struct ry_cache_key *k, const char *name)
{
	for (size_t i = 0; i < k->n; i++)
		if (strcmp(k->v[i].name, name) == 0)
			return k->v[i].value;
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* items sorted and joined with sep. */
static char *sorted_join(const struct ry_strlist *l, const char *sep)
{
	struct ry_buf b = RY_BUF_INIT;
	char **v = ry_malloc((l->n ? l->n : 1) * sizeof(*v));
	if (l->n)
		memcpy(v, l->items, l->n * sizeof(*v));
	if (l->n)
		qsort(v, l->n, sizeof(*v), cmp_str);
	ry_buf_puts(&b, "");
	for (size_t i = 0; i < l->n; i++)
		ry_buf_printf(&b, "%s%s", i ? sep : "", v[i]);
	free(v);
	return ry_buf_detach(&b);
}

void ry_cache_key_add_definition(struct ry_cache_key *k, const char *command,
				 const struct ry_strlist *env, const char *version, const char *kind,
				 const struct ry_strlist *outputs)
{
	ry_cache_key_set(k, "def.command", command);
	for (size_t i = 0; env && i < env->n; i++) {
		const char *eq = strchr(env->items[i], '=');
		if (!eq)
			continue;
		char *name = ry_asprintf("def.env.%.*s", (int)(eq - env->items[i]), env->items[i]);
		ry_cache_key_set(k, name, eq + 1);
		free(name);
	}
	ry_cache_key_set(k, "def.version", version ? version : "1");
	ry_cache_key_set(k, "def.kind", kind ? kind : "build");
	struct ry_strlist none = { 0 };
	char *outs = sorted_join(outputs ? outputs : &none, "\n");
	ry_cache_key_set(k, "def.outputs", outs);
	free(outs);
}

void ry_cache_key_add_platform(struct ry_cache_key *k, const char *os, const char *arch,
			       const struct ry_strlist *toolchain)
{
	struct ry_strlist none = { 0 };
	char *tc = sorted_join(toolchain ? toolchain : &none, ",");
	ry_cache_key_set(k, "platform.os", os);
	ry_cache_key_set(k, "platform.arch", arch);
	ry_cache_key_set(k, "platform.toolchain", tc);
	free(tc);
}

void ry_cache_key_add_input(struct ry_cache_key *k, const char *path, const char *value)
{
	char *name = ry_asprintf("input:%s", path);
	ry_cache_key_set(k, name, value);
	free(name);
}

void ry_cache_key_add_upstream(struct ry_cache_key *k, const char *task, const char *digest)
{
	char *name = ry_asprintf("upstream:%s", task);
	char *value = digest ? ry_asprintf("output %s", digest) : ry_strdup("no outputs");
	ry_cache_key_set(k, name, value);
	free(name);
	free(value);
}

static int cmp_component(const void *a, const void *b)
{
	return strcmp(((const struct ry_cache_component *)a)->name,
		      ((const struct ry_cache_component *)b)->name);
}

char *ry_cache_key_encode(struct ry_cache_key *k, size_t *len)
{
	struct ry_buf b = RY_BUF_INIT;
	if (k->n)
		qsort(k->v, k->n, sizeof(*k->v), cmp_component);
	ry_buf_add(&b, RY_CACHE_KEY_FORMAT, strlen(RY_CACHE_KEY_FORMAT) + 1);
	for (size_t i = 0; i < k->n; i++) {
		ry_buf_add(&b, k->v[i].name, strlen(k->v[i].name) + 1);
		ry_buf_add(&b, k->v[i].value, strlen(k->v[i].value) + 1);
	}
	*len = b.len;
	return ry_buf_detach(&b);
}

void ry_cache_key_compute(struct ry_cache_key *k, char hex[RY_DIGEST_HEX])
{
	size_t len;
	char *enc = ry_cache_key_encode(k, &len);
	ry_hash_hex(enc, len, hex);
	free(enc);
}

char *ry_cache_key_to_json(struct ry_cache_key *k)
{
	json_t *o = json_object();
	for (size_t i = 0; i < k->n; i++) {
		/* Values come from UTF-8 text (the database, git ids, hex). */
		json_t *v = json_string(k->v[i].value);
		json_object_set_new(o, k->v[i].name, v ? v : json_string("?"));
	}
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	char *out = ry_strdup(s ? s : "{}");
	free(s);
	return out;
}

bool ry_cache_key_from_json(struct ry_cache_key *k, const char *text, char **err)
{
	json_error_t je;
	json_t *o = json_loads(text, 0, &je);
	const char *name;
	json_t *v;
	bool ok = false;

	if (!o || !json_is_object(o)) {
		*err = o ? ry_strdup("key components must be a JSON object")
			 : ry_asprintf("key components are not JSON: %s", je.text);
		goto out;
	}
	json_object_foreach(o, name, v) {
		if (!json_is_string(v)) {
			*err = ry_asprintf("key component %s is not a string", name);
			goto out;
		}
		ry_cache_key_set(k, name, json_string_value(v));
	}
	ok = true;
out:
	json_decref(o);
	return ok;
}

void ry_cache_key_release(struct ry_cache_key *k)
{
	for (size_t i = 0; i < k->n; i++) {
		free(k->v[i].name);
		free(k->v[i].value);
	}
	free(k->v);
	memset(k, 0, sizeof(*k));
}

/* ---- explain ------------------------------------------------------------- */

/* Shortens every run of 12+ hex digits to its first 6 and "…". */
static char *brief(const char *s)
{
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_puts(&b, "");
	for (const char *p = s; *p;) {
		size_t run = strspn(p, "0123456789abcdef");
		if (run >= 12) {
			ry_buf_add(&b, p, 6);
			ry_buf_puts(&b, "…");
			p += run;
		} else if (run > 0) {
			ry_buf_add(&b, p, run);
			p += run;
		} else {
			ry_buf_putc(&b, *p++);
		}
	}
	return ry_buf_detach(&b);
}

static char *quoted_line(const char *s)
{
	/* one line, quoted: outputs and commands may span lines */
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_putc(&b, '"');
	for (const char *p = s; *p; p++) {
		if (*p == '\n')
			ry_buf_puts(&b, ", ");
		else if (*p == '"')
			ry_buf_puts(&b, "\\\"");
		else
			ry_buf_putc(&b, *p);
	}
	ry_buf_putc(&b, '"');
	return ry_buf_detach(&b);
}

struct group {
	const char *prefix;	/* component name prefix */
	const char *label;	/* shown for changes: "inputs", "env" ... */
	const char *unchanged;	/* shown when nothing in the group changed */
	bool exact;		/* prefix is the whole name */
};

static const struct group groups[] = {
	{ "def.command", "command", "command unchanged", true },
	{ "def.env.", "env", "env unchanged", false },
	{ "def.version", "version", "version unchanged", true },
	{ "def.kind", "kind", "kind unchanged", true },
	{ "def.outputs", "outputs", "outputs unchanged", true },
	{ "platform.", "platform", "platform unchanged", false },
	{ "input:", "inputs", "inputs unchanged", false },
	{ "upstream:", "upstream", "upstreams unchanged", false },
};

static bool in_group(const struct group *g, const char *name)
{
	return g->exact ? strcmp(name, g->prefix) == 0
			: strncmp(name, g->prefix, strlen(g->prefix)) == 0;
}

static void explain_change(const struct group *g, const char *name, const char *was,
			   const char *is, struct ry_strlist *lines)
{
	const char *item = g->exact ? NULL : name + strlen(g->prefix);
	char *line = NULL;
	bool upstream = strcmp(g->prefix, "upstream:") == 0;
	char *a = was ? brief(was) : NULL, *b = is ? brief(is) : NULL;

	/* "tree 3f2a1c… → tree 9c1b07…" reads better as "tree 3f2a1c… → 9c1b07…" */
	const char *sp_a = a ? strchr(a, ' ') : NULL, *sp_b = b ? strchr(b, ' ') : NULL;
	bool same_word = sp_a && sp_b && sp_a - a == sp_b - b && strncmp(a, b, (size_t)(sp_a - a)) == 0;
	if (upstream) {
		if (!was)
			line = ry_asprintf("upstream %s added (%s)", item, b);
		else if (!is)
			line = ry_asprintf("upstream %s removed", item);
		else
			line = ry_asprintf("upstream %s output changed (%s → %s)", item,
					   same_word ? sp_a + 1 : a, same_word ? sp_b + 1 : b);
	} else if (strcmp(g->prefix, "input:") == 0) {
		if (!was)
			line = ry_asprintf("inputs %s: newly declared (%s)", item, b);
		else if (!is)
			line = ry_asprintf("inputs %s: no longer declared", item);
		else
			line = ry_asprintf("inputs %s: %s → %s", item, a, same_word ? sp_b + 1 : b);
	} else {
		char *qa = a ? quoted_line(a) : NULL, *qb = b ? quoted_line(b) : NULL;
		const char *label = item ? item : g->label;
		const char *pre = item ? g->label : "";
		if (!was)
			line = ry_asprintf("%s%s%s added: %s", pre, *pre ? " " : "", label, qb);
		else if (!is)
			line = ry_asprintf("%s%s%s removed (was %s)", pre, *pre ? " " : "", label, qa);
		else
			line = ry_asprintf("%s%s%s changed: %s → %s", pre, *pre ? " " : "", label, qa, qb);
		free(qa);
		free(qb);
	}
	ry_strlist_add(lines, line);
	free(line);
	free(a);
	free(b);
}

void ry_cache_explain(struct ry_cache_key *before, struct ry_cache_key *now,
		      struct ry_strlist *lines)
{
	size_t len;
	free(ry_cache_key_encode(before, &len));	/* sorts */
	free(ry_cache_key_encode(now, &len));
	for (size_t gi = 0; gi < RY_ARRAY_SIZE(groups); gi++) {
		const struct group *g = &groups[gi];
		size_t changes = 0, i = 0, j = 0;
		/* merge the two sorted lists, within the group */
		while (i < before->n || j < now->n) {
			const struct ry_cache_component *x = i < before->n ? &before->v[i] : NULL;
			const struct ry_cache_component *y = j < now->n ? &now->v[j] : NULL;
			int c = !x ? 1 : !y ? -1 : strcmp(x->name, y->name);
			const char *name = c <= 0 ? x->name : y->name;
			if (in_group(g, name)) {
				const char *was = c <= 0 ? x->value : NULL;
				const char *is = c >= 0 ? y->value : NULL;
				if (!was || !is || strcmp(was, is) != 0) {
					explain_change(g, name, was, is, lines);
					changes++;
				}
			}
			if (c <= 0)
				i++;
			if (c >= 0)
				j++;
		}
		if (changes == 0)
			ry_strlist_add(lines, g->unchanged);
	}
	/* Anything outside the known groups (a newer format's components). */
	for (size_t i = 0; i < now->n; i++) {
		bool known = false;
		for (size_t gi = 0; gi < RY_ARRAY_SIZE(groups); gi++)
			known = known || in_group(&groups[gi], now->v[i].name);
		const char *was = ry_cache_key_get(before, now->v[i].name);
		if (!known && (!was || strcmp(was, now->v[i].value) != 0)) {
			char *line = ry_asprintf("%s changed", now->v[i].name);
			ry_strlist_add(lines, line);
			free(line);
		}
	}
}
