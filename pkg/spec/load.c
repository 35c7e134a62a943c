/*
 * Loading spec files into the line-numbered tree of doc.h.
 *
 * YAML: libyaml's event parser.  Plain scalars are typed by the YAML 1.2
 * core schema (so `yes` stays a string), anchors and aliases work, and so
 * does the merge key `<<` that CI files use for shared task defaults.
 *
 * JSON: libyaml is not a JSON parser (it rejects surrogate pairs, a tab
 * before the first brace, keys longer than 1024 bytes, a newline before a
 * colon), so JSON goes through jansson, which validates and decodes it.
 * jansson keeps no positions, so a small scanner walks the same text in
 * step with jansson's tree (objects keep insertion order) to give every
 * node its line and every number its text as written.
 */
#include "spec/doc.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 200	/* no valid spec nests deeper than 5 */

static struct spec_node *node_new(struct spec_doc *doc, enum spec_node_type type, int line)
{
	struct spec_node *n = ry_calloc(1, sizeof(*n));
	n->type = type;
	n->line = line;
	if (doc->n == doc->cap) {
		doc->cap = doc->cap ? 2 * doc->cap : 64;
		doc->all = ry_realloc(doc->all, doc->cap * sizeof(*doc->all));
	}
	doc->all[doc->n++] = n;
	return n;
}

static void node_push(struct spec_node *parent, struct spec_node *child)
{
	if (parent->n == parent->cap) {
		parent->cap = parent->cap ? 2 * parent->cap : 8;
		parent->items = ry_realloc(parent->items, parent->cap * sizeof(*parent->items));
	}
	parent->items[parent->n++] = child;
}

static void node_set_text(struct spec_node *n, const char *s, size_t len)
{
	n->text = ry_strndup(s, len);
	n->len = len;
}

void spec_doc_release(struct spec_doc *doc)
{
	for (size_t i = 0; i < doc->n; i++) {
		free(doc->all[i]->text);
		free(doc->all[i]->items);
		free(doc->all[i]);
	}
	free(doc->all);
	memset(doc, 0, sizeof(*doc));
}

const struct spec_node *spec_map_get(const struct spec_node *map, const char *key)
{
	if (!map || map->type != SPEC_MAP)
		return NULL;
	for (size_t i = 0; i + 1 < map->n; i += 2)
		if (strcmp(map->items[i]->text, key) == 0)
			return map->items[i + 1];
	return NULL;
}

/* ---- YAML ---------------------------------------------------------------- */

static bool is_one_of(const char *s, const char *const *words)
{
	for (; *words; words++)
		if (strcmp(s, *words) == 0)
			return true;
	return false;
}

static bool all_in(const char *s, const char *set)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!strchr(set, *s))
			return false;
	return true;
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool is_core_float(const char *s)
{
	bool digits = false;

	if (*s == '-' || *s == '+')
		s++;
	while (*s >= '0' && *s <= '9')
		s++, digits = true;
	if (*s == '.') {
		s++;
		while (*s >= '0' && *s <= '9')
			s++, digits = true;
	}
	if (!digits)
		return false;
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '-' || *s == '+')
			s++;
		if (!(*s >= '0' && *s <= '9'))
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return *s == '\0';
}

/* The YAML 1.2 core schema's reading of a plain scalar. */
static enum spec_node_type resolve_plain(const char *s)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };
	static const char *const bools[] = { "true", "True", "TRUE", "false", "False", "FALSE", NULL };
	static const char *const special[] = { ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF",
		"-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN", NULL };
	const char *digits = s + (*s == '-' || *s == '+');

	if (is_one_of(s, nulls))
		return SPEC_NULL;
	if (is_one_of(s, bools))
		return SPEC_BOOL;
	if (all_in(digits, "0123456789"))
		return SPEC_INT;
	if ((strncmp(s, "0x", 2) == 0 && all_in(s + 2, "0123456789abcdefABCDEF")) ||
	    (strncmp(s, "0o", 2) == 0 && all_in(s + 2, "01234567")))
		return SPEC_INT;
	if (is_core_float(s) || is_one_of(s, special))
		return SPEC_FLOAT;
	return SPEC_STR;
}

struct anchor {
	char *name;
	struct spec_node *node;
};

struct open_node {
	struct spec_node *node;
	char *anchor;	/* registered when the node is complete */
};

struct yaml_load {
	struct spec_doc *doc;
	struct anchor *anchors;
	size_t nanchors;
	struct open_node stack[MAX_DEPTH];
	size_t depth;
	int line;	/* where the error is */
	char *err;
};

static bool yfail(struct yaml_load *y, int line, const char *fmt, ...) RY_PRINTF(3, 4);

/* Records the first error; returns false so callers can `return yfail(...)`. */
static bool yfail(struct yaml_load *y, int line, const char *fmt, ...)
{
	va_list ap;
	char msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!y->err) {
		y->line = line;
		y->err = ry_strdup(msg);
	}
	return false;
}

static void add_anchor(struct yaml_load *y, const char *name, struct spec_node *node)
{
	/* A later anchor of the same name shadows the earlier one. */
	y->anchors = ry_realloc(y->anchors, (y->nanchors + 1) * sizeof(*y->anchors));
	y->anchors[y->nanchors].name = ry_strdup(name);
	y->anchors[y->nanchors].node = node;
	y->nanchors++;
}

static struct spec_node *find_anchor(const struct yaml_load *y, const char *name)
{
	for (size_t i = y->nanchors; i-- > 0;)
		if (strcmp(y->anchors[i].name, name) == 0)
			return y->anchors[i].node;
	return NULL;
}

/* Hangs node under the innermost open collection (or makes it the root). */
static bool attach(struct yaml_load *y, struct spec_node *node)
{
	if (y->depth == 0) {
		y->doc->root = node;
		return true;
	}
	struct spec_node *parent = y->stack[y->depth - 1].node;
	bool is_key = parent->type == SPEC_MAP && parent->n % 2 == 0;
	if (is_key && (node->type == SPEC_MAP || node->type == SPEC_SEQ))
		return yfail(y, node->line, "a mapping key must be a plain value, not a %s",
			     node->type == SPEC_MAP ? "mapping" : "list");
	if (!is_key && node->merge)
		node->merge = false;	/* << as a value is just text */
	node_push(parent, node);
	return true;
}

static int cmp_key(const void *a, const void *b)
{
	const struct spec_node *const *x = a, *const *y = b;
	int c = strcmp((*x)->text, (*y)->text);
	return c ? c : (*x)->line - (*y)->line;
}

static bool check_duplicate_keys(struct yaml_load *y, const struct spec_node *map)
{
	size_t nkeys = map->n / 2;
	if (nkeys < 2)
		return true;
	const struct spec_node **keys = ry_malloc(nkeys * sizeof(*keys));
	for (size_t i = 0; i < nkeys; i++)
		keys[i] = map->items[2 * i];
	qsort(keys, nkeys, sizeof(*keys), cmp_key);
	bool ok = true;
	for (size_t i = 1; i < nkeys && ok; i++)
		if (!keys[i]->merge && strcmp(keys[i]->text, keys[i - 1]->text) == 0)
			ok = yfail(y, keys[i]->line, "duplicate key \"%s\" (first at line %d)",
				   keys[i]->text, keys[i - 1]->line);
	free(keys);
	return ok;
}

static bool map_has(const struct spec_node *map, const char *key)
{
	return spec_map_get(map, key) != NULL;
}

/*
 * Applies merge keys: "<<: *defaults" or "<<: [*a, *b]" copies the entries
 * of those mappings that the mapping does not set itself (earlier sources
 * win over later ones, as YAML's merge key type says).
 */
static bool apply_merges(struct yaml_load *y, struct spec_node *map)
{
	bool any = false;
	for (size_t i = 0; i + 1 < map->n; i += 2)
		any |= map->items[i]->merge;
	if (!any)
		return true;

	struct spec_node **old = map->items;
	size_t n = map->n;
	map->items = NULL;
	map->n = map->cap = 0;
	for (size_t i = 0; i + 1 < n; i += 2) {
		if (!old[i]->merge) {
			node_push(map, old[i]);
			node_push(map, old[i + 1]);
		}
	}
	bool ok = true;
	for (size_t i = 0; i + 1 < n && ok; i += 2) {
		if (!old[i]->merge)
			continue;
		struct spec_node *v = old[i + 1];
		struct spec_node *const *src = &v;
		size_t nsrc = 1;
		if (v->type == SPEC_SEQ) {
			src = v->items;
			nsrc = v->n;
		}
		for (size_t s = 0; s < nsrc && ok; s++) {
			if (src[s]->type != SPEC_MAP) {
				ok = yfail(y, old[i]->line,
					   "the merge key << takes a mapping or a list of mappings");
				break;
			}
			for (size_t k = 0; k + 1 < src[s]->n; k += 2) {
				if (map_has(map, src[s]->items[k]->text))
					continue;
				node_push(map, src[s]->items[k]);
				node_push(map, src[s]->items[k + 1]);
			}
		}
	}
	free(old);
	return ok;
}

static struct spec_node *scalar_node(struct yaml_load *y, const yaml_event_t *ev)
{
	const char *value = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	const char *tag = (const char *)ev->data.scalar.tag;
	int line = (int)ev->start_mark.line + 1;
	enum spec_node_type type = SPEC_STR;
	bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;

	if (plain && (!tag || strcmp(tag, YAML_STR_TAG) != 0) &&
	    strlen(value) == len && !(tag && strcmp(tag, "!") == 0))
		type = resolve_plain(value);
	struct spec_node *n = node_new(y->doc, type, line);
	node_set_text(n, value, len);
	if (type == SPEC_BOOL) {
		free(n->text);
		n->text = ry_strdup(value[0] == 't' || value[0] == 'T' ? "true" : "false");
		n->len = strlen(n->text);
	}
	n->merge = plain && !tag && strcmp(value, "<<") == 0;
	return n;
}

static bool on_event(struct yaml_load *y, const yaml_event_t *ev, int *documents)
{
	int line = (int)ev->start_mark.line + 1;
	struct spec_node *n;

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++*documents > 1)
			return yfail(y, line, "a spec is one YAML document, found a second one");
		return true;
	case YAML_SCALAR_EVENT:
		n = scalar_node(y, ev);
		if (!attach(y, n))
			return false;
		if (ev->data.scalar.anchor)
			add_anchor(y, (const char *)ev->data.scalar.anchor, n);
		return true;
	case YAML_ALIAS_EVENT:
		n = find_anchor(y, (const char *)ev->data.alias.anchor);
		if (!n)
			return yfail(y, line, "unknown alias *%s (or it is used inside its own anchor)",
				     (const char *)ev->data.alias.anchor);
		/* A node shared by reference: merge flags belong to key positions. */
		return attach(y, n);
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: {
		bool is_map = ev->type == YAML_MAPPING_START_EVENT;
		const yaml_char_t *anchor = is_map ? ev->data.mapping_start.anchor
						   : ev->data.sequence_start.anchor;
		if (y->depth == MAX_DEPTH)
			return yfail(y, line, "nested more than %d levels deep", MAX_DEPTH);
		n = node_new(y->doc, is_map ? SPEC_MAP : SPEC_SEQ, line);
		if (!attach(y, n))
			return false;
		y->stack[y->depth].node = n;
		y->stack[y->depth].anchor = anchor ? ry_strdup((const char *)anchor) : NULL;
		y->depth++;
		return true;
	}
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT: {
		struct open_node *top = &y->stack[--y->depth];
		bool ok = true;
		if (top->node->type == SPEC_MAP)
			ok = check_duplicate_keys(y, top->node) && apply_merges(y, top->node);
		if (ok && top->anchor)
			add_anchor(y, top->anchor, top->node);
		free(top->anchor);
		top->anchor = NULL;
		return ok;
	}
	default:
		return true;
	}
}

bool spec_load_yaml(struct spec_doc *doc, const char *data, size_t len, int *line, char **err)
{
	struct yaml_load y = { .doc = doc };
	yaml_parser_t parser;
	yaml_event_t ev;
	int documents = 0;
	bool ok = true, done = false;

	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	while (ok && !done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			int l = (int)parser.problem_mark.line + 1;
			if (parser.context)
				ok = yfail(&y, l, "invalid YAML: %s (%s at line %d)",
					   parser.problem ? parser.problem : "syntax error",
					   parser.context, (int)parser.context_mark.line + 1);
			else
				ok = yfail(&y, l, "invalid YAML: %s",
					   parser.problem ? parser.problem : "syntax error");
			break;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		ok = on_event(&y, &ev, &documents);
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	for (size_t i = 0; i < y.depth; i++)
		free(y.stack[i].anchor);
	for (size_t i = 0; i < y.nanchors; i++)
		free(y.anchors[i].name);
	free(y.anchors);
	if (!ok) {
		*line = y.line;
		*err = y.err;
	}
	return ok;
}

/* ---- JSON ---------------------------------------------------------------- */

struct json_scan {
	const char *p;
	const char *end;
	int line;
};

static void skip_ws(struct json_scan *s)
{
	while (s->p < s->end && strchr(" \t\r\n", *s->p)) {
		if (*s->p == '\n')
			s->line++;
		s->p++;
	}
}

static bool expect(struct json_scan *s, char c)
{
	skip_ws(s);
	if (s->p >= s->end || *s->p != c)
		return false;
	s->p++;
	return true;
}

/* Steps over a string jansson already validated (no raw newlines inside). */
static bool skip_string(struct json_scan *s)
{
	if (!expect(s, '"'))
		return false;
	while (s->p < s->end && *s->p != '"')
		s->p += *s->p == '\\' ? 2 : 1;
	if (s->p >= s->end)
		return false;
	s->p++;
	return true;
}

static struct spec_node *json_walk(struct spec_doc *doc, struct json_scan *s, json_t *v)
{
	struct spec_node *n;
	const char *start;

	skip_ws(s);
	if (s->p >= s->end)
		return NULL;
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *key;
		json_t *val;
		n = node_new(doc, SPEC_MAP, s->line);
		if (!expect(s, '{'))
			return NULL;
		json_object_foreach(v, key, val) {
			skip_ws(s);
			struct spec_node *k = node_new(doc, SPEC_STR, s->line);
			node_set_text(k, key, strlen(key));
			if (!skip_string(s) || !expect(s, ':'))
				return NULL;
			struct spec_node *child = json_walk(doc, s, val);
			if (!child)
				return NULL;
			node_push(n, k);
			node_push(n, child);
			skip_ws(s);
			if (s->p < s->end && *s->p == ',')
				s->p++;
		}
		return expect(s, '}') ? n : NULL;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *val;
		n = node_new(doc, SPEC_SEQ, s->line);
		if (!expect(s, '['))
			return NULL;
		json_array_foreach(v, i, val) {
			struct spec_node *child = json_walk(doc, s, val);
			if (!child)
				return NULL;
			node_push(n, child);
			skip_ws(s);
			if (s->p < s->end && *s->p == ',')
				s->p++;
		}
		return expect(s, ']') ? n : NULL;
	}
	case JSON_STRING:
		n = node_new(doc, SPEC_STR, s->line);
		node_set_text(n, json_string_value(v), json_string_length(v));
		return skip_string(s) ? n : NULL;
	case JSON_INTEGER:
	case JSON_REAL:
		start = s->p;
		while (s->p < s->end && strchr("+-0123456789.eE", *s->p))
			s->p++;
		n = node_new(doc, SPEC_INT, s->line);
		node_set_text(n, start, (size_t)(s->p - start));
		if (strpbrk(n->text, ".eE"))
			n->type = SPEC_FLOAT;
		return n;
	case JSON_TRUE:
	case JSON_FALSE:
	case JSON_NULL:
		start = json_is_null(v) ? "null" : json_is_true(v) ? "true" : "false";
		if ((size_t)(s->end - s->p) < strlen(start) || strncmp(s->p, start, strlen(start)) != 0)
			return NULL;
		n = node_new(doc, json_is_null(v) ? SPEC_NULL : SPEC_BOOL, s->line);
		node_set_text(n, start, strlen(start));
		s->p += strlen(start);
		return n;
	}
	return NULL;
}

bool spec_load_json(struct spec_doc *doc, const char *data, size_t len, int *line, char **err)
{
	json_error_t jerr;
	struct json_scan s = { data, data + len, 1 };

	/* A UTF-8 byte order mark is harmless; jansson would reject it. */
	if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
		s.p += 3;
	/* Integers as reals: a huge number then gets our range message. */
	json_t *root = json_loadb(s.p, (size_t)(s.end - s.p),
				  JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
	if (!root) {
		*line = jerr.line > 0 ? jerr.line : 1;
		*err = ry_asprintf("invalid JSON: %s", jerr.text);
		return false;
	}
	doc->root = json_walk(doc, &s, root);
	json_decref(root);
	if (!doc->root) {
		*line = s.line;
		*err = ry_strdup("invalid JSON: cannot follow the document structure");
		return false;
	}
	return true;
}
