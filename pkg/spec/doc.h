/*
 * Internal to pkg/spec: the document tree both loaders produce, so that one
 * validator serves YAML and JSON alike and every node knows its line.
 */
#ifndef RY_SPEC_DOC_H
#define RY_SPEC_DOC_H

#include "core/core.h"

enum spec_node_type {
	SPEC_MAP,	/* items alternate key, value, key, value ... */
	SPEC_SEQ,	/* items are the elements */
	SPEC_STR,	/* text is the decoded string (may hold NUL: see len) */
	SPEC_INT,	/* text as written: 12, -3, 0x1f, 0o17 */
	SPEC_FLOAT,	/* text as written: 1.5, 2e3 */
	SPEC_BOOL,	/* text is "true" or "false" */
	SPEC_NULL,	/* null, ~ or an empty value */
};

struct spec_node {
	enum spec_node_type type;
	int line;			/* 1-based line where the node starts */
	char *text;			/* scalars only */
	size_t len;			/* bytes in text */
	struct spec_node **items;	/* SPEC_MAP and SPEC_SEQ */
	size_t n;
	size_t cap;
	bool merge;			/* the YAML merge key, a plain << */
};

/* Owns every node; aliases may make several parents share one node. */
struct spec_doc {
	struct spec_node *root;
	struct spec_node **all;
	size_t n;
	size_t cap;
};

/*
 * Load data into an empty doc (doc->root stays NULL for an empty YAML
 * stream).  On a syntax error return false with *line and *err (freed by
 * the caller) saying where and what; the caller adds the file name.
 * doc must be released either way.
 */
bool spec_load_yaml(struct spec_doc *doc, const char *data, size_t len,
		    int *line, char **err) RY_MUST_CHECK;
bool spec_load_json(struct spec_doc *doc, const char *data, size_t len,
		    int *line, char **err) RY_MUST_CHECK;
void spec_doc_release(struct spec_doc *doc);

/* Value of key in a SPEC_MAP, or NULL. */
const struct spec_node *spec_map_get(const struct spec_node *map, const char *key);

#endif
