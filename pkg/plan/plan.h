/*
 * plan: from changed paths to the pipeline that must run (docs/deps.md,
 * "How plan decides").  Pure: it reads a dependency graph (pkg/deps) and
 * railyard.yaml's templates, and writes a pipeline spec (docs/spec.md) as
 * JSON for pkg/spec to validate and `railyard submit`'s code to insert.
 *
 *  1. each changed path belongs to the service with the deepest root
 *     holding it (a Maven aggregator owns only its pom.xml), and to every
 *     service one of whose paths (shared build files, the compose file or
 *     manifest that runs it, railyard.yaml "shared") it matches;
 *  2. those services and everything with a build dependency on them,
 *     transitively, are rebuilt, tested and deployed; a service with a
 *     test dependency on one of them is built (a cache hit) and tested
 *     again, no more; a service with a runtime dependency on one of them
 *     runs its integration tests;
 *  3. tasks come from templates (per service, per ecosystem, else the
 *     built-in defaults) with typed edges and no stage barriers:
 *     build(S) after build(D) for each build dependency D; test(S) after
 *     build(S) and build(T) for each test dependency T; deploy(S) after
 *     test(S) and after deploy(D) for each runtime dependency D that is
 *     not on a runtime cycle; integration(R) after the deploys (else the
 *     tests) of what R needs running.
 */
#ifndef RY_PLAN_H
#define RY_PLAN_H

#include "core/core.h"
#include "deps/deps.h"

enum ry_plan_why {
	RY_PLAN_CHANGED,	/* a changed path is its own (or one of its paths) */
	RY_PLAN_BUILD,		/* build dependency, transitively, on a changed one */
	RY_PLAN_TEST,		/* test dependency on a changed/build one: test again */
	RY_PLAN_RUNTIME,	/* runtime dependency on a changed/build one: integration tests */
};
/* "changed", "build", "test", "runtime" */
const char *ry_plan_why_name(enum ry_plan_why why);

struct ry_plan_service {
	size_t service;		/* index in the graph */
	enum ry_plan_why why;
	char *reason;		/* "build dependency on cart (services/checkout/go.mod:7), cart changed: ..." */
	bool task[RY_DEPS_NTASKS];	/* which of build/test/deploy/integration it gets */
};

struct ry_plan {
	struct ry_plan_service *svcs;	/* by name */
	size_t n;
	struct ry_strlist changed;	/* normalised, sorted, unique */
	struct ry_strlist unowned;	/* changed paths no service owns (ignored) */
	struct ry_strlist warnings;	/* runtime cycles among the planned services */
	size_t ntasks;
	size_t nedges;
	char *spec;			/* the pipeline spec as JSON; NULL when nothing is affected */
};

struct ry_plan_options {
	const char *repository;	/* names the pipeline */
	const char *revision;	/* NULL: none */
	const char *source;	/* the pipeline's source (docs/cache.md): the repository
				   the tasks get a tree of; NULL: none */
};

/*
 * Plans the change: paths are relative to the repository ("./a/../b" is
 * normalised; an absolute path or one that leaves it is an error).  Returns
 * false with *err (caller frees) when a path is invalid or the affected
 * services hold a build/test cycle ("cycle: a -> b -> a (build,
 * b/pom.xml:41)" and a line per edge).  plan must be released either way.
 */
bool ry_plan_make(const struct ry_deps_graph *g, const struct ry_deps_config *cfg,
		  const struct ry_strlist *paths, const struct ry_plan_options *opt,
		  struct ry_plan *plan, char **err) RY_MUST_CHECK;
void ry_plan_release(struct ry_plan *plan);

/* The plan for people (railyard plan --dry-run): each service and why,
 * ignored paths, warnings, each task with what it waits for. */
void ry_plan_format(const struct ry_plan *plan, const struct ry_deps_graph *g, struct ry_buf *out);

/*
 * The built-in command of a task for a service of an ecosystem, before
 * placeholders are replaced ({name} {root} {manifest} {deploy_file}
 * {deploy_name}); NULL: no such task by default.
 */
const char *ry_plan_default_command(const struct ry_deps_service *s, enum ry_deps_task t);

#endif
