/*
 * Internal to pkg/ciimport: the YAML tree (every node knows its file and
 * line), the pipeline builder the two importers share, and helpers for
 * what both CI systems have: matrices, globs, shell scripts.
 */
#ifndef RY_CIIMPORT_INTERNAL_H
#define RY_CIIMPORT_INTERNAL_H

#include "ciimport/ciimport.h"
#include "match/match.h"

/* ---- the YAML tree (tree.c) ---------------------------------------------- */

enum ci_type {
	CI_MAP,		/* items alternate key, value */
	CI_SEQ,		/* items are the elements */
	CI_SCALAR,	/* text; plain tells an unquoted scalar from a quoted one */
};

struct ci_node {
	enum ci_type type;
	const char *file;	/* owned by the doc */
	int line;		/* 1-based */
	char *text;		/* CI_SCALAR */
	bool plain;		/* an unquoted scalar: null, true, 12 are not strings */
	char *tag;		/* "!reference", or NULL */
	struct ci_node **items;
	size_t n;
	size_t cap;
};

/* Owns every node of every file loaded into it; aliases share nodes. */
struct ci_doc {
	struct ci_node **all;
	size_t n;
	size_t cap;
	struct ry_strlist files;	/* file names the nodes point into */
};

/* Parses data (from file) into doc; *root is NULL for an empty file. */
bool ci_load(struct ci_doc *doc, const char *file, const char *data, size_t len,
	     struct ci_node **root, char **err) RY_MUST_CHECK;
/* Reads path and ci_load()s it; *err names the file when it cannot be read. */
bool ci_load_file(struct ci_doc *doc, const char *path, const char *display,
		  struct ci_node **root, char **err) RY_MUST_CHECK;
void ci_doc_release(struct ci_doc *doc);

struct ci_node *ci_node_new(struct ci_doc *doc, enum ci_type type, const char *file, int line);
struct ci_node *ci_scalar_new(struct ci_doc *doc, const char *text, const struct ci_node *where);
void ci_push(struct ci_node *parent, struct ci_node *child);
/* A shallow copy of a mapping (new item list, same children). */
struct ci_node *ci_map_copy(struct ci_doc *doc, const struct ci_node *map);
/* Sets key to value in map (replacing an existing entry). */
void ci_map_set(struct ci_doc *doc, struct ci_node *map, const char *key, struct ci_node *value);

/* Value of key in a mapping, or NULL (also when map is not a mapping). */
struct ci_node *ci_get(const struct ci_node *map, const char *key);
/* NULL, or a plain null / ~ / empty scalar. */
bool ci_is_null(const struct ci_node *n);
/* The text of a scalar that is not null; NULL otherwise. */
const char *ci_str(const struct ci_node *n);
/* A plain true/false scalar: 1 or 0; -1 otherwise. */
int ci_bool(const struct ci_node *n);
/* "file:line" of a node; caller frees. */
char *ci_where(const struct ci_node *n);

/* ---- the pipeline being built (model.c) ----------------------------------- */

struct ci_build {
	struct ry_ci_pipeline *p;
	const struct ry_ci_options *opt;
	struct ci_doc doc;
	char *err;		/* the first error: "file:line: ..." */
};

/* Records the first error (later ones are consequences); returns false. */
bool ci_fail(struct ci_build *b, const struct ci_node *at, const char *fmt, ...) RY_PRINTF(3, 4);
void ci_note(struct ci_build *b, const struct ci_node *at, const char *fmt, ...) RY_PRINTF(3, 4);
/* A note at the place a task's job is defined. */
void ci_note_task(struct ci_build *b, const struct ry_ci_task *t, const char *fmt, ...) RY_PRINTF(3, 4);

/* A new task named after base (sanitised and made unique); the pipeline owns it. */
struct ry_ci_task *ci_task_add(struct ci_build *b, const char *job, const char *base,
			       const struct ci_node *at);
void ci_task_setenv(struct ry_ci_task *t, const char *name, const char *value);
const char *ci_task_getenv(const struct ry_ci_task *t, const char *name);
/* Frees what a task owns (for tasks outside a pipeline). */
void ci_task_release(struct ry_ci_task *t);
/* Removes task i (and every need naming it); needs on it are handed to its own needs. */
void ci_task_remove(struct ry_ci_pipeline *p, size_t i, bool bypass);

/* The pipeline's name: name, else the file's base name without extension; 200 bytes at most. */
void ci_set_name(struct ry_ci_pipeline *p, const char *name, const char *path);

/* Labels as the worker reports them: GitHub's X64 / Kubernetes' amd64 -> x86_64. */
const char *ci_arch_name(const char *arch);

/* ---- what both CI systems share (model.c) --------------------------------- */

/* A job keyword railyard does not import, and why (for the note). */
struct ci_unsupported {
	const char *key;
	const char *why;
};

/* One combination of a matrix: keys and their values (scalars or trees). */
struct ci_combo {
	struct ry_strlist keys;
	struct ci_node **values;
	size_t n;
};
void ci_combo_set(struct ci_combo *c, const char *key, struct ci_node *value);
struct ci_node *ci_combo_get(const struct ci_combo *c, const char *key);
void ci_combo_copy(struct ci_combo *dst, const struct ci_combo *src);
void ci_combo_release(struct ci_combo *c);
/* "14:ubuntu" from the scalar values, for task names. Caller frees. */
char *ci_combo_suffix(const struct ci_combo *c);

/* A pattern made from globs compiles (else a failure at `at`); NULL is fine. */
bool ci_check_regex(struct ci_build *b, const struct ci_node *at, const char *re) RY_MUST_CHECK;

/*
 * Appends `shell <<'EOF' ... EOF` running script to cmd: a here-document
 * whose delimiter does not occur in the script, so the script is passed
 * verbatim.  suffix follows the shell command on its line ("|| status=$?").
 */
void ci_heredoc(struct ry_buf *cmd, const char *shell, const char *script, const char *suffix);

/* Single-quotes s for sh. */
void ci_shell_quote(struct ry_buf *b, const char *s);

/* Valid environment variable name for railyard ([A-Za-z_][A-Za-z0-9_]*). */
bool ci_env_name_ok(const char *s);

/* ---- GitLab's rules:if / only:variables expressions (gl_expr.c) ---------- */

/*
 * A variable's value for an expression: *value set (or NULL: not defined,
 * which GitLab treats as null); false when it is not known before the run
 * (a project CI/CD variable, say).
 */
typedef bool (*gl_lookup_fn)(void *arg, const char *name, const char **value);

/*
 * Evaluates expr: 1 true, 0 false, -1 not known at import (*unknown then
 * names the first unknown variable; caller frees).  -2 on a syntax error
 * with *err set (caller frees).
 */
int gl_eval(const char *expr, gl_lookup_fn lookup, void *arg, char **unknown, char **err);

#endif
