/*
 * demo: the pipeline `railyard demo` runs — an imaginary shop of 35
 * services (five shared libraries at the bottom) built, tested, packaged and
 * deployed with typed cross-service edges.  Pure: no I/O, no database;
 * depends only on core (the summary's critical path comes from pkg/graph).
 */
#ifndef RY_DEMO_H
#define RY_DEMO_H

#include "core/core.h"

struct ry_demo_need {
	size_t task;		/* index of the upstream task in the pipeline */
	const char *kind;	/* edge kind: "build", "test" or "runtime" */
};

struct ry_demo_task {
	char *name;			/* "build:cart" */
	const char *service;		/* "cart" */
	const char *kind;		/* build, test, deploy, package, lint, publish, other */
	char *command;			/* /bin/sh -c text */
	struct ry_strlist requires;	/* labels an agent must have */
	const char *run_if;		/* NULL: on_success */
	const char *only_if_changed;	/* PCRE2 over changed paths, or NULL */
	const char *env_name;		/* one task env entry, or NULL */
	const char *env_value;
	int cpu;
	int mem_mb;
	int timeout_s;
	unsigned sleep_ms;		/* how long its command sleeps */
	struct ry_demo_need *needs;	/* upstreams, all at lower indexes */
	size_t nneeds;
};

struct ry_demo_pipeline {
	char *name;			/* "shop@<revision>" */
	char *revision;
	struct ry_strlist changed_paths;
	struct ry_demo_task *tasks;	/* in a topological order */
	size_t ntasks;
	size_t cap;
	size_t nservices;		/* libraries included */
};

/*
 * How long the build of a service sleeps: 200..1500 ms, a fixed function of
 * its name so every run of the demo has the same shape.
 */
unsigned ry_demo_sleep_ms(const char *service);

/*
 * Fills p (zero-initialised by the caller) with the shop pipeline at the
 * given revision.  fail_service, when not NULL, names a service whose tests
 * fail, to show failure handling; an unknown name is an error (*err set).
 */
bool ry_demo_generate(struct ry_demo_pipeline *p, const char *revision,
		      const char *fail_service, char **err) RY_MUST_CHECK;
/* Index of the task called name, or -1. */
long ry_demo_find(const struct ry_demo_pipeline *p, const char *name);
/* The pipeline as a `railyard submit` JSON spec.  Caller frees. */
char *ry_demo_to_json(const struct ry_demo_pipeline *p);
void ry_demo_release(struct ry_demo_pipeline *p);

#endif
