/*
 * spec: pipeline spec files (YAML or JSON, one structure; docs/spec.md).
 *
 * Parsing validates everything the database would check at COMMIT — field
 * types and ranges (the CHECK constraints of migrations/0001_init.sql),
 * unknown keys, duplicate tasks, needs naming unknown tasks, cycles, bad
 * only_if_changed patterns — so that a bad file is rejected with
 * "FILE:LINE: ..." before anything touches the database.
 *
 * libyaml and jansson for specs (pkg/ciimport and pkg/inventory use them for CI files and inventories).
 */
#ifndef RY_SPEC_H
#define RY_SPEC_H

#include "core/core.h"

/*
 * What exec can take, as the database checks it at INSERT
 * (railyard.max_arg_bytes() and max_exec_bytes(), sql/10_submit.sql): one
 * argument or NAME=value string is at most the kernel's MAX_ARG_STRLEN less
 * the NUL; a task's command and env together at most half of the usual
 * 2 MB ARG_MAX (the worker adds its own environment).
 */
#define RY_SPEC_MAX_ARG_BYTES 131071
#define RY_SPEC_MAX_EXEC_BYTES 1048576

enum ry_spec_format {
	RY_SPEC_AUTO,	/* by extension (.json, .yaml, .yml), else by content */
	RY_SPEC_YAML,
	RY_SPEC_JSON,
};

struct ry_spec_env {
	char *name;		/* [A-Za-z_][A-Za-z0-9_]* */
	char *value;
};

struct ry_spec_task {
	char *name;		/* unique in the pipeline */
	char *command;		/* run with /bin/sh -c */
	char *service;		/* NULL: none */
	char *image;		/* container image; NULL: runs on the host */
	char *kind;		/* build test deploy package lint publish other */
	struct ry_strlist requires;	/* agent labels, all needed */
	char *os;		/* NULL: any */
	char *arch;		/* NULL: any */
	int cpu;		/* 1..1024 */
	int mem_mb;		/* 1..16777216 */
	char *pool;		/* named resource pool, NULL: none */
	bool has_priority;	/* false: the pipeline's priority */
	int priority;		/* -1000..1000 */
	char *version;		/* definition version, part of the cache key */
	bool cacheable;
	struct ry_strlist inputs;	/* declared inputs (paths/globs) */
	struct ry_strlist outputs;	/* declared outputs (paths in the tree) */
	struct ry_spec_env *env;	/* in file order */
	size_t nenv;
	struct ry_spec_env *secrets;	/* NAME: file under the agent's secrets_dir */
	size_t nsecrets;
	char *run_if;		/* on_success on_failure always */
	char *only_if_changed;	/* PCRE2 over changed_paths, NULL: always */
	int max_attempts;	/* 1..100 */
	int timeout_s;		/* 1..604800 */
	int line;		/* where the task starts in the file */
};

/* A dependency: downstream waits for upstream.  `needs` land here too. */
struct ry_spec_edge {
	char *upstream;
	char *downstream;
	char *kind;		/* build test runtime */
	int line;
};

struct ry_spec {
	char *source;		/* the display name used in messages */
	char *name;
	char *team;		/* "default" unless given */
	int priority;		/* -1000..1000, default 0 */
	char *revision;		/* NULL: none */
	char *origin;		/* the `source` field: git repository or directory; NULL: none */
	bool has_changed_paths;	/* false: unknown, every task runs */
	struct ry_strlist changed_paths;
	struct ry_spec_task *tasks;	/* in file order */
	size_t ntasks;
	struct ry_spec_edge *edges;	/* needs first (in task order), then edges */
	size_t nedges;
	size_t edges_cap;		/* allocated */
};

/*
 * Parses and validates len bytes of data; source names it in messages
 * ("shop.yaml", "<stdin>").  Returns NULL when anything is wrong, with one
 * message per problem appended to errors ("shop.yaml:14: task \"x\": ...",
 * at most 20 of them); the caller releases errors either way.
 */
struct ry_spec *ry_spec_parse(const char *source, const char *data, size_t len,
			      enum ry_spec_format format, struct ry_strlist *errors) RY_MUST_CHECK;
/* Reads path ("-" is stdin, shown as "<stdin>") and parses it. */
struct ry_spec *ry_spec_parse_file(const char *path, struct ry_strlist *errors) RY_MUST_CHECK;
void ry_spec_free(struct ry_spec *spec);

/* The task with that name, or NULL. */
const struct ry_spec_task *ry_spec_find_task(const struct ry_spec *spec, const char *name);

/*
 * The tasks / edges as a JSON array of objects whose keys are the column
 * names of railyard.tasks / railyard.edges, for one INSERT ... SELECT FROM
 * jsonb_to_recordset($1).  Unset optional fields are null.  Caller frees.
 */
char *ry_spec_tasks_json(const struct ry_spec *spec);
char *ry_spec_edges_json(const struct ry_spec *spec);

#endif
