/*
 * CI files into a tree of ci_node with file and line on every node, through
 * libyaml's event parser.  Anchors and aliases (aliases share the node),
 * merge keys (<<) and tags (GitLab's !reference) are kept; what a value
 * means is left to the importers, because GitHub and GitLab read plain
 * scalars differently.
 */
#include "ciimport/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 256
#define MAX_FILE (16 << 20)	/* no CI file is anywhere near 16 MB */

struct ci_node *ci_node_new(struct ci_doc *doc, enum ci_type type, const char *file, int line)
{
	struct ci_node *n = ry_calloc(1, sizeof(*n));
	n->type = type;
	n->file = file;
	n->line = line;
	if (doc->n == doc->cap) {
		doc->cap = doc->cap ? 2 * doc->cap : 256;
		doc->all = ry_realloc(doc->all, doc->cap * sizeof(*doc->all));
	}
	doc->all[doc->n++] = n;
	return n;
}

struct ci_node *ci_scalar_new(struct ci_doc *doc, const char *text, const struct ci_node *where)
{
	struct ci_node *n = ci_node_new(doc, CI_SCALAR, where ? where->file : "", where ? where->line : 0);
	n->text = ry_strdup(text);
	return n;
}

void ci_push(struct ci_node *parent, struct ci_node *child)
{
	if (parent->n == parent->cap) {
		parent->cap = parent->cap ? 2 * parent->cap : 8;
		parent->items = ry_realloc(parent->items, parent->cap * sizeof(*parent->items));
	}
	parent->items[parent->n++] = child;
}

struct ci_node *ci_map_copy(struct ci_doc *doc, const struct ci_node *map)
{
	struct ci_node *m = ci_node_new(doc, CI_MAP, map->file, map->line);
	for (size_t i = 0; i < map->n; i++)
		ci_push(m, map->items[i]);
	return m;
}

void ci_map_set(struct ci_doc *doc, struct ci_node *map, const char *key, struct ci_node *value)
{
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		if (strcmp(map->items[i]->text, key) == 0) {
			map->items[i + 1] = value;
			return;
		}
	}
	ci_push(map, ci_scalar_new(doc, key, value));
	ci_push(map, value);
}

void ci_doc_release(struct ci_doc *doc)
{
	for (size_t i = 0; i < doc->n; i++) {
		free(doc->all[i]->text);
		free(doc->all[i]->tag);
		free(doc->all[i]->items);
		free(doc->all[i]);
	}
	free(doc->all);
	ry_strlist_release(&doc->files);
	memset(doc, 0, sizeof(*doc));
}

struct ci_node *ci_get(const struct ci_node *map, const char *key)
{
	if (!map || map->type != CI_MAP)
		return NULL;
	for (size_t i = 0; i + 1 < map->n; i += 2)
		if (map->items[i]->text && strcmp(map->items[i]->text, key) == 0)
			return map->items[i + 1];
	return NULL;
}

bool ci_is_null(const struct ci_node *n)
{
	if (!n)
		return true;
	if (n->type != CI_SCALAR || !n->plain)
		return false;
	return !*n->text || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0 ||
	       strcmp(n->text, "Null") == 0 || strcmp(n->text, "NULL") == 0;
}

const char *ci_str(const struct ci_node *n)
{
	return n && n->type == CI_SCALAR && !ci_is_null(n) ? n->text : NULL;
}

int ci_bool(const struct ci_node *n)
{
	if (!n || n->type != CI_SCALAR || !n->plain)
		return -1;
	if (strcmp(n->text, "true") == 0 || strcmp(n->text, "True") == 0 || strcmp(n->text, "TRUE") == 0)
		return 1;
	if (strcmp(n->text, "false") == 0 || strcmp(n->text, "False") == 0 ||
	    strcmp(n->text, "FALSE") == 0)
		return 0;
	return -1;
}

char *ci_where(const struct ci_node *n)
{
	return n ? ry_asprintf("%s:%d", n->file, n->line) : ry_strdup("?");
}

/* ---- loading ------------------------------------------------------------- */

struct anchor {
	char *name;
	struct ci_node *node;
};

struct load {
	struct ci_doc *doc;
	const char *file;
	struct anchor *anchors;
	size_t nanchors;
	struct ci_node *stack[MAX_DEPTH];
	char *stack_anchor[MAX_DEPTH];
	size_t depth;
	struct ci_node *roots[2];	/* one per document; at most two */
	int ndocs;
	char *err;
};

static bool lfail(struct load *l, int line, const char *fmt, ...) RY_PRINTF(3, 4);

static bool lfail(struct load *l, int line, const char *fmt, ...)
{
	va_list ap;
	char msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!l->err)
		l->err = ry_asprintf("%s:%d: %s", l->file, line, msg);
	return false;
}

static bool attach(struct load *l, struct ci_node *node)
{
	if (l->depth == 0) {
		if (l->ndocs > 2)
			return lfail(l, node->line, "more than two YAML documents in one file");
		l->roots[l->ndocs - 1] = node;
		return true;
	}
	struct ci_node *parent = l->stack[l->depth - 1];
	if (parent->type == CI_MAP && parent->n % 2 == 0 && node->type != CI_SCALAR)
		return lfail(l, node->line, "a mapping key must be a plain value, not a %s",
			     node->type == CI_MAP ? "mapping" : "list");
	ci_push(parent, node);
	return true;
}

static bool is_merge_key(const struct ci_node *k)
{
	return k->plain && !k->tag && strcmp(k->text, "<<") == 0;
}

/*
 * At the end of a mapping: duplicate keys are refused, and merge keys copy
 * the entries of their mapping(s) that the mapping does not set itself
 * (the first source wins among several).
 */
static bool finish_map(struct load *l, struct ci_node *map)
{
	struct ci_node **old = map->items;
	size_t n = map->n;

	for (size_t i = 0; i + 1 < n; i += 2)
		for (size_t j = 0; j < i; j += 2)
			if (!is_merge_key(old[i]) && strcmp(old[i]->text, old[j]->text) == 0)
				return lfail(l, old[i]->line, "duplicate key \"%s\" (first at line %d)",
					     old[i]->text, old[j]->line);
	map->items = NULL;
	map->n = map->cap = 0;
	for (size_t i = 0; i + 1 < n; i += 2) {
		if (!is_merge_key(old[i])) {
			ci_push(map, old[i]);
			ci_push(map, old[i + 1]);
		}
	}
	bool ok = true;
	for (size_t i = 0; ok && i + 1 < n; i += 2) {
		if (!is_merge_key(old[i]))
			continue;
		struct ci_node *v = old[i + 1];
		struct ci_node **src = v->type == CI_SEQ ? v->items : &v;
		size_t nsrc = v->type == CI_SEQ ? v->n : 1;
		for (size_t s = 0; ok && s < nsrc; s++) {
			if (src[s]->type != CI_MAP) {
				ok = lfail(l, old[i]->line, "the merge key << takes a mapping or a list of mappings");
				break;
			}
			for (size_t k = 0; k + 1 < src[s]->n; k += 2) {
				if (!ci_get(map, src[s]->items[k]->text)) {
					ci_push(map, src[s]->items[k]);
					ci_push(map, src[s]->items[k + 1]);
				}
			}
		}
	}
	free(old);
	return ok;
}

static struct ci_node *find_anchor(const struct load *l, const char *name)
{
	for (size_t i = l->nanchors; i-- > 0;)
		if (strcmp(l->anchors[i].name, name) == 0)
			return l->anchors[i].node;
	return NULL;
}

static void add_anchor(struct load *l, const char *name, struct ci_node *node)
{
	l->anchors = ry_realloc(l->anchors, (l->nanchors + 1) * sizeof(*l->anchors));
	l->anchors[l->nanchors].name = ry_strdup(name);
	l->anchors[l->nanchors++].node = node;
}

static bool on_event(struct load *l, const yaml_event_t *ev)
{
	int line = (int)ev->start_mark.line + 1;
	struct ci_node *n;
	const yaml_char_t *anchor = NULL, *tag = NULL;

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		l->ndocs++;
		return true;
	case YAML_SCALAR_EVENT:
		n = ci_node_new(l->doc, CI_SCALAR, l->file, line);
		n->text = ry_strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
		n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		if (strlen(n->text) != ev->data.scalar.length)
			return lfail(l, line, "a NUL character in a string");
		if (ev->data.scalar.tag)
			n->tag = ry_strdup((const char *)ev->data.scalar.tag);
		if (!attach(l, n))
			return false;
		if (ev->data.scalar.anchor)
			add_anchor(l, (const char *)ev->data.scalar.anchor, n);
		return true;
	case YAML_ALIAS_EVENT:
		n = find_anchor(l, (const char *)ev->data.alias.anchor);
		if (!n)
			return lfail(l, line, "unknown alias *%s (or used inside its own anchor)",
				     (const char *)ev->data.alias.anchor);
		return attach(l, n);
	case YAML_SEQUENCE_START_EVENT:
		anchor = ev->data.sequence_start.anchor;
		tag = ev->data.sequence_start.tag;
		/* fall through */
	case YAML_MAPPING_START_EVENT:
		if (ev->type == YAML_MAPPING_START_EVENT) {
			anchor = ev->data.mapping_start.anchor;
			tag = ev->data.mapping_start.tag;
		}
		if (l->depth == MAX_DEPTH)
			return lfail(l, line, "nested more than %d levels deep", MAX_DEPTH);
		n = ci_node_new(l->doc, ev->type == YAML_MAPPING_START_EVENT ? CI_MAP : CI_SEQ,
				l->file, line);
		if (tag)
			n->tag = ry_strdup((const char *)tag);
		if (!attach(l, n))
			return false;
		l->stack_anchor[l->depth] = anchor ? ry_strdup((const char *)anchor) : NULL;
		l->stack[l->depth++] = n;
		return true;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT: {
		n = l->stack[--l->depth];
		char *a = l->stack_anchor[l->depth];
		l->stack_anchor[l->depth] = NULL;
		bool ok = n->type != CI_MAP || finish_map(l, n);
		if (ok && a)
			add_anchor(l, a, n);
		free(a);
		return ok;
	}
	default:
		return true;
	}
}

bool ci_load(struct ci_doc *doc, const char *file, const char *data, size_t len,
	     struct ci_node **root, char **err)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	bool ok = true, done = false;

	ry_strlist_add(&doc->files, file);
	struct load l = { .doc = doc, .file = doc->files.items[doc->files.n - 1] };
	*root = NULL;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	while (ok && !done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			ok = lfail(&l, (int)parser.problem_mark.line + 1, "invalid YAML: %s%s%s",
				   parser.problem ? parser.problem : "syntax error",
				   parser.context ? " " : "", parser.context ? parser.context : "");
			break;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		ok = on_event(&l, &ev);
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	for (size_t i = 0; i < l.depth; i++)
		free(l.stack_anchor[i]);
	for (size_t i = 0; i < l.nanchors; i++)
		free(l.anchors[i].name);
	free(l.anchors);
	if (ok && l.ndocs == 2) {
		/* GitLab's header document ("spec: inputs: ...", then ---) comes first. */
		if (!ci_get(l.roots[0], "spec"))
			ok = lfail(&l, l.roots[1] ? l.roots[1]->line : 1,
				   "a second YAML document (only GitLab's spec: header may come first)");
		else
			*root = l.roots[1];
	} else if (ok) {
		*root = l.roots[0];
	}
	if (!ok)
		*err = l.err;
	return ok;
}

bool ci_load_file(struct ci_doc *doc, const char *path, const char *display,
		  struct ci_node **root, char **err)
{
	struct ry_buf b = RY_BUF_INIT;
	char *why = NULL;
	bool ok;

	*root = NULL;
	if (!ry_read_file(path, MAX_FILE, &b, &why)) {
		*err = ry_asprintf("%s: %s", display, why);
		free(why);
		ok = false;
	} else {
		ok = ci_load(doc, display, b.data, b.len, root, err);
	}
	ry_buf_release(&b);
	return ok;
}
