/*
 * Internal to pkg/deps: the scan's working state and the interface every
 * detector implements.  A scan runs in phases:
 *
 *   walk      the source lists the files some detector wants
 *   parse     each file is read once and parsed by the detector that
 *             wants it; detectors keep what they found in their own state
 *   declare   detectors propose service candidates (a directory, an
 *             ecosystem, a name, the names others may use for it)
 *   services  candidates become services: one per directory, strong
 *             manifests win over weak ones (a Dockerfile), names unique
 *   late      detectors that name runtime things (compose, Kubernetes,
 *             orphan .proto files) map them onto services or add services
 *   link      detectors resolve what they read into edges with evidence
 *             and into shared paths
 *
 * Then edges are merged (one per from/to/kind, other evidence kept),
 * railyard.yaml's declarations are applied, and everything is sorted.
 */
#ifndef RY_DEPS_DETECT_H
#define RY_DEPS_DETECT_H

#include "deps/deps.h"
#include "match/match.h"
#include "spec/doc.h"

/* Where files come from: the real directory (fs.c) or memory (tests). */
struct deps_source {
	/* Reads the normalised relative path; false with *err on failure. */
	bool (*read)(struct deps_source *s, const char *rel, struct ry_buf *out, char **err);
	/* What is at rel: 0 nothing (or outside), 1 a file, 2 a directory. */
	int (*kind)(struct deps_source *s, const char *rel);
	void *impl;
};

/* ---- a string -> index map (open addressing, keys owned) ------------------ */

struct deps_map_slot {
	char *key;
	size_t value;
};

struct deps_map {
	struct deps_map_slot *slots;
	size_t cap;		/* a power of two, or 0 */
	size_t n;
};

#define DEPS_NONE ((size_t)-1)
#define DEPS_AMBIGUOUS ((size_t)-2)

/* The value for key, or DEPS_NONE. */
size_t deps_map_get(const struct deps_map *m, const char *key);
/* Sets key to value; an existing different value becomes DEPS_AMBIGUOUS
 * when ambiguous is true, else is replaced. */
void deps_map_put(struct deps_map *m, const char *key, size_t value, bool ambiguous);
void deps_map_release(struct deps_map *m);

/* ---- names others use for a service ---------------------------------------- */

enum deps_ns {
	NS_HOST,		/* a host name: compose/Kubernetes names, service names */
	NS_GO,			/* Go module path */
	NS_NPM,			/* npm package name */
	NS_MAVEN,		/* groupId:artifactId */
	NS_MAVEN_ARTIFACT,	/* artifactId alone (groupId unresolved) */
	NS_GRADLE,		/* settings dir + "|" + project path ":a:b" */
	NS_GRADLE_NORM,		/* the same, lower case without - and _ (type-safe accessors) */
	NS_NUGET,		/* .NET package id / assembly name, lower case */
	NS_PYTHON,		/* Python distribution name, PEP 503 normalised */
	NS_IMAGE,		/* container image repository without registry and tag */
	NS_IMAGE_LAST,		/* its last path component, for images built here */
	NS_COUNT
};

/* ---- candidates ------------------------------------------------------------ */

struct deps_alias {
	enum deps_ns ns;
	char *key;
};

struct deps_cand {
	char *dir;		/* normalised directory, "." for the top */
	char *ecosystem;
	char *name;		/* NULL: the directory's name */
	char *manifest;
	int line;
	char *detector;
	int rank;		/* lower wins when several share a directory */
	bool weak;		/* dropped inside another service's root */
	bool aggregator;	/* owns only its manifest */
	bool dockerfile;
	struct deps_alias *aliases;
	size_t naliases;
};

/* ---- edges as found, before merging ---------------------------------------- */

struct deps_found_edge {
	size_t seq;		/* the order edges were found in: the first is the evidence */
	size_t from;
	size_t to;
	enum ry_deps_kind kind;
	char *detector;
	char *file;
	int line;
};

struct deps_found_path {
	char *glob;
	size_t service;
	char *why;
	bool deploy;
};

/* ---- the detectors ----------------------------------------------------------- */

struct deps_ctx;

struct deps_detector {
	const char *name;
	/* Does it read this file?  path is relative, base its last component. */
	bool (*wants)(const char *path, const char *base);
	void (*parse)(struct deps_ctx *c, const char *path, const char *data, size_t len);
	void (*declare)(struct deps_ctx *c);		/* candidates; may be NULL */
	void (*late)(struct deps_ctx *c);		/* after services exist; may be NULL */
	void (*link)(struct deps_ctx *c);		/* edges; may be NULL */
	void (*release)(struct deps_ctx *c);		/* frees its state */
};

enum deps_detector_id {
	DET_ENV,	/* first: others look variables up in .env files */
	DET_GO,
	DET_NODE,
	DET_MAVEN,
	DET_GRADLE,
	DET_DOTNET,
	DET_PYTHON,
	DET_DOCKER,	/* late: marks services that build images before others map images */
	DET_PROTO,
	DET_COMPOSE,
	DET_K8S,	/* wants any other YAML: after every other YAML reader */
	DET_COUNT
};

extern const struct deps_detector deps_detector_env, deps_detector_go, deps_detector_node,
	deps_detector_maven, deps_detector_gradle, deps_detector_dotnet, deps_detector_python,
	deps_detector_proto, deps_detector_compose, deps_detector_k8s, deps_detector_docker;

/* ---- what detectors offer each other ---------------------------------------- */

/* The value of name in dir/.env (compose's substitution file), or NULL. */
const char *deps_env_value(struct deps_ctx *c, const char *dir, const char *name);
/* dir/.env is compose's substitution file: its values are not the
 * environment of the service around it. */
void deps_env_mark_project(struct deps_ctx *c, const char *dir);
/*
 * The environment file at path is named by compose's env_file: it is read
 * now if the walk did not list it, and it is not the environment of the
 * service around it.  False when there is no such file.
 */
bool deps_env_claim(struct deps_ctx *c, const char *path);
/*
 * The environment file at path (read now if the walk did not) is the
 * environment of service from: a runtime edge for every address variable
 * naming another service, with the file's line as evidence.  False when
 * there is no such file.
 */
bool deps_env_file_edges(struct deps_ctx *c, const char *path, size_t from);

/*
 * The service that builds image (a reference as written), or DEPS_NONE:
 * images compose or Kubernetes tie to a service, else, for services with a
 * Dockerfile, a repository path whose last component names the service
 * ("acme/cart"), or with bare_ok also a bare name ("cart"), and a last
 * component that is exactly the name of a service with code (images built
 * by Jib or buildpacks have no Dockerfile).
 */
size_t deps_image_service(const struct deps_ctx *c, const char *image, bool bare_ok);

/* Every variable of an address (deps_is_address_var) names services:
 * runtime edges from service from, evidence file:line. */
void deps_address_edges(struct deps_ctx *c, size_t from, const char *name, const char *value,
			const struct deps_map *local, const char *detector, const char *file,
			int line);

struct deps_ctx {
	struct deps_source *src;
	struct ry_deps_graph *g;	/* services are appended as they are made */
	const struct ry_deps_config *cfg;
	struct deps_cand *cands;
	size_t ncands, capcands;
	struct deps_found_edge *found;
	size_t nfound, capfound;
	struct deps_found_path *fpaths;
	size_t nfpaths, capfpaths;
	struct deps_map roots;		/* root directory -> service */
	struct deps_map manifests;	/* manifest path -> service */
	struct deps_map names;		/* service name -> service */
	struct deps_map alias[NS_COUNT];
	struct deps_map contexts;	/* Dockerfile path -> index in ctxlists, from compose */
	struct ry_strlist *ctxlists;	/* the build contexts compose gives each Dockerfile */
	size_t nctxlists;
	void *state[DET_COUNT];		/* each detector's own */
	size_t nservices_detected;	/* services made from candidates */
	const char *root_name;		/* names a service at "." without a better name */
};

/* ---- helpers for detectors (model.c) ---------------------------------------- */

void deps_warn(struct deps_ctx *c, const char *file, int line, const char *fmt, ...)
	RY_PRINTF(4, 5);
void deps_note(struct deps_ctx *c, const char *fmt, ...) RY_PRINTF(2, 3);

/* Adds a candidate (strings copied) and returns it for aliases and flags. */
struct deps_cand *deps_candidate(struct deps_ctx *c, const char *dir, const char *ecosystem,
				 const char *name, const char *manifest, int line,
				 const char *detector, int rank);
void deps_cand_alias(struct deps_cand *cand, enum deps_ns ns, const char *key);

/* A service made after the candidates (runtime images, orphan protos): the
 * name is made unique.  Returns its index. */
size_t deps_add_late_service(struct deps_ctx *c, const char *name, const char *root,
			     const char *ecosystem, const char *manifest, int line,
			     const char *detector);

/* Registers another name for service s (ambiguous names resolve to none). */
void deps_alias(struct deps_ctx *c, enum deps_ns ns, const char *key, size_t s);
/* The service known by key in ns, or DEPS_NONE (also when ambiguous). */
size_t deps_lookup(const struct deps_ctx *c, enum deps_ns ns, const char *key);

/* The service whose root is exactly dir, or DEPS_NONE. */
size_t deps_service_at(const struct deps_ctx *c, const char *dir);
/* The service owning path (deepest root containing it), or DEPS_NONE. */
size_t deps_service_owning(const struct deps_ctx *c, const char *path);
/* The service a manifest made, or DEPS_NONE. */
size_t deps_service_of_manifest(const struct deps_ctx *c, const char *manifest);

/* Compose builds the Dockerfile at path with context dir. */
void deps_build_context(struct deps_ctx *c, const char *dockerfile, const char *dir);
/* The contexts compose gives the Dockerfile at path, or NULL. */
const struct ry_strlist *deps_build_contexts(const struct deps_ctx *c, const char *dockerfile);

/* Records an edge (ignored when from == to or either is DEPS_NONE/AMBIGUOUS). */
void deps_edge(struct deps_ctx *c, size_t from, size_t to, enum ry_deps_kind kind,
	       const char *detector, const char *file, int line);
/* Records that paths matching glob affect service s. */
void deps_shared(struct deps_ctx *c, const char *glob, size_t s, const char *why);
/* Records that file runs service s (compose, Kubernetes): its change
 * redeploys s. */
void deps_deploy_path(struct deps_ctx *c, const char *file, size_t s, const char *why);
/* deps_shared for every service of ecosystem eco whose root lies under dir. */
void deps_shared_ecosystem(struct deps_ctx *c, const char *glob, const char *dir,
			   const char *eco, const char *why);

/* ---- small text helpers (text.c) -------------------------------------------- */

/* Directory part of a relative path ("a/b/c" -> "a/b", "c" -> "."). */
char *deps_dirname(const char *path);
/* Calls fn(arg, dir) for each directory above path, nearest first, down to
 * "." (included); stops and returns true as soon as fn does. */
bool deps_each_parent(const char *path, bool (*fn)(void *arg, const char *dir), void *arg);
/* Last component ("a/b" -> "b", "." -> "."). */
const char *deps_basename(const char *path);
/* dir joined with a relative path and normalised; NULL when it leaves the
 * repository or rel is absolute. */
char *deps_join(const char *dir, const char *rel);
/* Whether path lies in dir (dir "." holds everything). */
bool deps_path_in(const char *path, const char *dir);
/* 1-based line of byte offset off in data. */
int deps_line_at(const char *data, size_t off);
/* Trimmed copy of [s, s+n). */
char *deps_strip(const char *s, size_t n);
/* Copy of span i of a match, or NULL when the group did not take part. */
char *deps_span(const char *s, const struct ry_match_span *sp);

/*
 * Calls fn(c, arg, line_no, line, len) for every line of data (without the
 * newline; CR stripped).
 */
void deps_each_line(struct deps_ctx *c, void *arg, const char *data, size_t len,
		    void (*fn)(struct deps_ctx *c, void *arg, int line_no, const char *line,
			       size_t len));

/* Compiles a fixed pattern of ours; aborts if it does not (a bug). */
struct ry_match *deps_regex(const char *pattern);

/*
 * Substitutes ${VAR}, ${VAR:-default}, ${VAR-default} and $VAR with
 * lookup(arg, name) (NULL: unset).  Caller frees.
 */
char *deps_expand(const char *s, const char *(*lookup)(void *arg, const char *name), void *arg);

/* Whether a variable name names an address of another service
 * (*_ADDR, *_HOST, *_URL, ...: docs/deps.md). */
bool deps_is_address_var(const char *name);
/*
 * The host names an address value refers to ("http://user@cart:8080/x" ->
 * "cart"; "a:1,b:2" -> "a", "b"), appended to hosts.
 */
void deps_value_hosts(const char *value, struct ry_strlist *hosts);

/* Image reference -> repository without registry, tag or digest
 * ("ghcr.io/acme/cart:1.2" -> "acme/cart"); NULL when empty. */
char *deps_image_repo(const char *image);


/* ---- the YAML/JSON tree (pkg/spec's loader) --------------------------------- */

/* Scalar text of a node (string, number, bool), or NULL. */
const char *deps_node_text(const struct spec_node *n);
/* A mapping's value for key when it is a scalar, else NULL. */
const char *deps_map_text(const struct spec_node *map, const char *key);

/*
 * Loads a YAML stream of one or more documents ("---"), calling fn for
 * each document's root (NULL roots are skipped).  A document that does not
 * parse is a warning naming file:line and stops the file.
 */
void deps_yaml_each(struct deps_ctx *c, const char *path, const char *data, size_t len,
		    void *arg,
		    void (*fn)(struct deps_ctx *c, void *arg, const char *path,
			       const struct spec_node *root));

/* ---- model.c, declare.c: what the scan itself uses ---------------------------- */

/* s when it names a service that is not excluded, else DEPS_NONE. */
size_t deps_usable(const struct deps_ctx *c, size_t s);
/* Letters, digits and _ . : / @ + = -, others become "-"; at most 150. */
char *deps_sanitize_name(const char *s);
/* Appends a service (name is taken over) and indexes it; its index. */
size_t deps_new_service(struct deps_ctx *c, char *name, const char *root, const char *eco,
			const char *manifest, int line, const char *detector);
void deps_cand_release(struct deps_cand *cand);
/* Candidates become services. */
void deps_form_services(struct deps_ctx *c);
/* A zeroed edge at the end of g->edges. */
struct ry_deps_edge *deps_append_edge(struct ry_deps_graph *g);
/* The declarations of cfg (NULL: none), applied in this order by the scan. */
void deps_declare_services(struct deps_ctx *c, const struct ry_deps_config *cfg);
void deps_declare_edges(struct deps_ctx *c, const struct ry_deps_config *cfg);
void deps_declare_shared(struct deps_ctx *c, const struct ry_deps_config *cfg);

/* ---- the scan itself (scan.c) ------------------------------------------------ */

/*
 * Runs the phases over files (the relative paths some detector wants,
 * sorted), applying cfg's declarations, then extra's (the database's), and
 * names the top directory's service root_name when nothing better names it.
 */
void deps_scan(struct deps_source *src, const struct ry_strlist *files, const char *root_name,
	       const struct ry_deps_config *cfg, const struct ry_deps_config *extra,
	       struct ry_deps_graph *g);

/* Sorts edges and paths (services are sorted already). */
void deps_sort_edges_paths(struct ry_deps_graph *g);

/* Is a directory of this name never scanned (hidden, vendored, built)? */
bool deps_skip_dir(const char *name);
/* Does any detector want this file?  (railyard.yaml is read apart.) */
bool deps_wanted(const char *path);

/* The ignore globs of a configuration, compiled. */
struct deps_filter {
	struct ry_match **m;
	size_t n;
};
void deps_filter_init(struct deps_filter *f, const struct ry_deps_config *cfg);
/* Whether path (a file, or a directory given with a trailing "/") is ignored. */
bool deps_filter_hit(const struct deps_filter *f, const char *path);
void deps_filter_release(struct deps_filter *f);

#endif
