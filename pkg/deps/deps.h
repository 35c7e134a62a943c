/*
 * deps: the services of a repository and the dependencies between them,
 * detected from the files the repository already has (go.mod,
 * package.json, pom.xml, Gradle files, *.csproj, Python requirements and
 * pyproject.toml, Dockerfiles, docker compose, Kubernetes manifests, .env
 * files, .proto imports), each edge with its evidence (file:line), merged
 * with what people declared (railyard.yaml at the repository root, or rows
 * in the database).  docs/deps.md says what each detector reads and why.
 *
 * A scan never reads outside the directory it was given, skips vendored and
 * hidden directories, files over RY_DEPS_MAX_FILE bytes and symbolic links
 * that leave the tree, and turns a broken manifest into a warning with
 * FILE:LINE: a scan either completes or fails as a whole.
 *
 * Structured formats go through libxml2 (pom.xml, *.csproj), libyaml (via
 * the line-numbered tree of pkg/spec: compose, Kubernetes, railyard.yaml)
 * and jansson (package.json); line formats through PCRE2 (pkg/match).
 */
#ifndef RY_DEPS_H
#define RY_DEPS_H

#include "core/core.h"

#define RY_DEPS_MAX_FILE (1u << 20)	/* manifests bigger than 1 MiB are skipped */

enum ry_deps_kind {
	RY_DEPS_BUILD,		/* needs the other's build output to build */
	RY_DEPS_TEST,		/* needs the other built to run its tests */
	RY_DEPS_RUNTIME,	/* needs the other running (deployed) */
};
#define RY_DEPS_NKINDS 3
/* "build", "test", "runtime". */
const char *ry_deps_kind_name(enum ry_deps_kind kind);
/* Parses a kind name; false when it is none of them. */
bool ry_deps_kind_parse(const char *s, enum ry_deps_kind *kind) RY_MUST_CHECK;

struct ry_deps_service {
	char *name;		/* unique in the repository */
	char *root;		/* directory relative to the repository, "." for its top;
				   NULL: no code here (an image run by compose/Kubernetes) */
	char *ecosystem;	/* go node maven gradle dotnet python proto docker image, or declared */
	char *manifest;		/* the file that made it a service; NULL when declared */
	int line;		/* where in manifest (0: unknown) */
	char *detector;		/* "go.mod", "pom.xml", ..., "railyard.yaml", "database" */
	char *team;		/* owning team, NULL: none */
	bool owns_root;		/* false: owns only its manifest (a Maven aggregator) */
	bool is_explicit;	/* declared (railyard.yaml or the database) */
	bool excluded;		/* declared "not a service": no paths, no edges */
	bool has_dockerfile;	/* builds an image (templates, image names) */
	char *deploy_file;	/* compose file or Kubernetes manifest that runs it, or NULL */
	char *deploy_name;	/* its name in deploy_file */
	int decl_line;		/* is_explicit from railyard.yaml: the line there */
};

/* One dependency: from needs to.  Evidence is the first place found;
 * more lists the others as "file:line". */
struct ry_deps_edge {
	size_t from;
	size_t to;
	enum ry_deps_kind kind;
	bool is_explicit;	/* declared rather than detected */
	bool suppressed;	/* declared false: not part of the graph */
	char *detector;		/* "go.mod require", "compose depends_on", "railyard.yaml", ... */
	char *file;		/* evidence, relative to the repository; NULL: the database */
	int line;
	struct ry_strlist more;
};

/* A path (glob over repository paths, docs/deps.md) whose change affects a
 * service although it lies outside the service's root. */
struct ry_deps_path {
	char *glob;
	char *regex;		/* the same as an anchored regular expression (PCRE2 and
				   PostgreSQL agree on it) */
	size_t service;
	char *why;		/* "go workspace file", "railyard.yaml:12 shared", ... */
	bool is_explicit;
	bool deploy;		/* the file that runs it (compose, Kubernetes): a change
				   redeploys it, no rebuild */
};

struct ry_deps_graph {
	struct ry_deps_service *services;	/* sorted by name */
	size_t nservices;
	struct ry_deps_edge *edges;		/* sorted by from, to, kind */
	size_t nedges;
	struct ry_deps_path *paths;		/* sorted by service, glob */
	size_t npaths;
	struct ry_strlist warnings;	/* "file:line: message": input that could not be used */
	struct ry_strlist notes;	/* what was skipped on purpose, and why */
	size_t files_seen;		/* files the walk looked at */
	size_t files_read;		/* manifests read and parsed */
	size_t dirs_seen;
};

/* ---- railyard.yaml -------------------------------------------------------- */

/* A service declared by hand. */
struct ry_deps_decl_service {
	char *name;
	char *root;		/* NULL: no code / keep the detected root */
	char *ecosystem;	/* NULL: keep the detected one, else "other" */
	char *team;
	bool exclude;		/* not a service: drop it and its edges */
	int line;
};

/* An edge declared by hand; suppress removes a detected edge. */
struct ry_deps_decl_edge {
	char *from;
	char *to;
	enum ry_deps_kind kind;
	bool suppress;
	int line;
};

/* Paths that affect services although outside their roots. */
struct ry_deps_decl_shared {
	struct ry_strlist globs;
	struct ry_strlist affects;	/* service names, "all", "ecosystem:NAME" */
	int line;
};

enum ry_deps_task {
	RY_DEPS_TASK_BUILD,
	RY_DEPS_TASK_TEST,
	RY_DEPS_TASK_DEPLOY,
	RY_DEPS_TASK_INTEGRATION,	/* run when a runtime dependency changed */
};
#define RY_DEPS_NTASKS 4
/* "build", "test", "deploy", "integration". */
const char *ry_deps_task_name(enum ry_deps_task t);

/* One task of a template.  command NULL with set = true: no such task. */
struct ry_deps_task_template {
	bool set;		/* given in railyard.yaml */
	char *command;		/* {name} {root} {manifest} {deploy_file} {deploy_name} are replaced */
	struct ry_strlist requires;
	int cpu;		/* 0: the spec's default */
	int mem_mb;
	int timeout_s;
	char *pool;
};

struct ry_deps_template {
	char *key;		/* ecosystem or service name */
	struct ry_deps_task_template task[RY_DEPS_NTASKS];
	int line;
};

struct ry_deps_config {
	char *source;		/* "railyard.yaml", for messages */
	char *team;		/* the planned pipelines' team, NULL: default */
	struct ry_strlist ignore;	/* globs of paths the scan skips */
	struct ry_deps_decl_service *services;
	size_t nservices;
	struct ry_deps_decl_edge *edges;
	size_t nedges;
	struct ry_deps_decl_shared *shared;
	size_t nshared;
	struct ry_deps_template *by_ecosystem;
	size_t nby_ecosystem;
	struct ry_deps_template *by_service;
	size_t nby_service;
};

/*
 * Parses railyard.yaml (source names it in messages).  Unknown keys, wrong
 * types and bad values are errors "railyard.yaml:LINE: ..." appended to
 * errors; returns false when there was any (cfg is then empty).  An empty
 * document is a valid, empty configuration.
 */
bool ry_deps_config_parse(struct ry_deps_config *cfg, const char *source, const char *data,
			  size_t len, struct ry_strlist *errors) RY_MUST_CHECK;
void ry_deps_config_release(struct ry_deps_config *cfg);

/* ---- scanning ------------------------------------------------------------- */

/*
 * Scans directory dir: reads dir/railyard.yaml into cfg (zeroed first; left
 * empty without one), walks the tree, detects services and edges and
 * applies cfg's declarations, then those of extra (rows a person inserted
 * in the database, source "database"; NULL: none), which win.  Returns false only when the scan cannot be
 * done at all (dir unreadable, railyard.yaml invalid): *err (caller frees)
 * then says why, one problem per line.  g and cfg must be released either
 * way.
 */
bool ry_deps_scan_dir(const char *dir, const struct ry_deps_config *extra,
		      struct ry_deps_graph *g, struct ry_deps_config *cfg, char **err) RY_MUST_CHECK;

/* Reads dir/railyard.yaml into cfg (empty without one); false with *err
 * (caller frees) when it cannot be read or is invalid. */
bool ry_deps_config_read(const char *dir, struct ry_deps_config *cfg, char **err) RY_MUST_CHECK;

/* Whether a scan reads the file at this relative path (a manifest some
 * detector wants, or railyard.yaml): a change to it can change the graph. */
bool ry_deps_reads(const char *path);

/* A file of an in-memory repository (tests, fuzzing). */
struct ry_deps_file {
	const char *path;	/* relative, '/'-separated */
	const char *data;	/* NUL-terminated */
};

/* The same scan over files given in memory (railyard.yaml among them). */
bool ry_deps_scan_files(const struct ry_deps_file *files, size_t n,
			const struct ry_deps_config *extra, struct ry_deps_graph *g,
			struct ry_deps_config *cfg, char **err) RY_MUST_CHECK;

void ry_deps_graph_release(struct ry_deps_graph *g);

/* Index of the service with that name, or -1. */
long ry_deps_find_service(const struct ry_deps_graph *g, const char *name);

/* Whether the edge is part of the graph (not suppressed, ends not excluded). */
bool ry_deps_edge_active(const struct ry_deps_graph *g, const struct ry_deps_edge *e);

/* ---- a graph from stored rows ---------------------------------------------- */

/*
 * `railyard plan` reuses a stored scan while the manifests have not
 * changed: the rows of railyard.services, service_deps and service_paths
 * become a graph again.  Add the services (strings are copied; kept in
 * name order), then the edges and paths naming them (false, and nothing
 * added, when a name is unknown), then finish, which sorts what needs it.
 */
void ry_deps_graph_add_service(struct ry_deps_graph *g, const struct ry_deps_service *s);
bool ry_deps_graph_add_edge(struct ry_deps_graph *g, const char *from, const char *to,
			    const struct ry_deps_edge *e);
bool ry_deps_graph_add_path(struct ry_deps_graph *g, const char *service,
			    const struct ry_deps_path *p);
void ry_deps_graph_finish(struct ry_deps_graph *g);

/* ---- cycles --------------------------------------------------------------- */

/*
 * Build and test cycles (edges of kind build or test, one graph) are
 * errors; runtime cycles are warnings (either list may be NULL).  Appends
 * one message per cycle found (at most max of each), "cycle: a -> b -> a
 * (build, b/pom.xml:41)" where the parenthesis gives the kind and evidence
 * of the edge that closes the cycle, followed by one line per edge
 * ("  a -> b: build, a/go.mod:7").  With among, only edges between
 * services marked in among[0..nservices) count.  Returns how many
 * build/test cycles were reported.
 */
size_t ry_deps_check_cycles(const struct ry_deps_graph *g, const bool *among,
			    struct ry_strlist *errors, struct ry_strlist *warnings, size_t max);

/*
 * Marks in on_cycle[0..nedges) the runtime edges that lie on a runtime
 * cycle (deploys are not ordered along them).
 */
void ry_deps_runtime_cycle_edges(const struct ry_deps_graph *g, bool *on_cycle);

/* ---- paths ---------------------------------------------------------------- */

/*
 * Normalises a path relative to the repository: "./a//b/../c" -> "a/c".
 * Returns NULL when it is absolute, empty or climbs out ("../x").
 */
char *ry_deps_path_normalize(const char *path);

/* An anchored regular expression matching a literal prefix. */
char *ry_deps_prefix_regex(const char *prefix);

/* ---- output --------------------------------------------------------------- */

/*
 * The graph as JSON ({"services": [...], "edges": [...], "paths": [...],
 * "warnings": [...], "notes": [...]}), what railyard.store_scan() reads;
 * with_db false leaves out what the database itself declared (source
 * "database").  Caller frees.
 */
char *ry_deps_graph_json(const struct ry_deps_graph *g, bool with_db);

/* A change since the last stored scan, as railyard.store_scan() returns it. */
struct ry_deps_change {
	const char *change;	/* "added", "removed" */
	const char *object;	/* "service", "dependency" */
	const char *item;	/* "cart", "checkout -> cart" */
	const char *detail;
};

/* The report of `railyard deps scan --json`: the graph, the repository's
 * name, cycles (errors), runtime cycles (warnings) and the changes. */
char *ry_deps_report_json(const struct ry_deps_graph *g, const char *repository,
			  const struct ry_strlist *cycles, const struct ry_strlist *runtime_cycles,
			  const struct ry_deps_change *changes, size_t nchanges, bool stored);

#endif
