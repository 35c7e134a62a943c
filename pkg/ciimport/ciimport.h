/*
 * ciimport: GitHub Actions workflows and GitLab CI files into railyard
 * pipelines (docs/integrations.md says what maps to what).
 *
 * Each importer reads the CI file(s) with libyaml, keeping file:line for
 * every job, and fills a struct ry_ci_pipeline: tasks with their commands,
 * labels, environment, timeouts, conditions and needs, plus notes for
 * whatever the CI file says that a railyard pipeline cannot express (each
 * with file:line; nothing is dropped silently).  ry_ci_render() writes the
 * pipeline as a railyard spec (docs/spec.md) that `railyard submit` loads.
 */
#ifndef RY_CIIMPORT_H
#define RY_CIIMPORT_H

#include "core/core.h"

/* What the CI system would know when it creates the pipeline. */
struct ry_ci_options {
	const char *branch;		/* NULL: "main" */
	const char *default_branch;	/* NULL: "main" */
	const char *event;		/* NULL: "push" (GitLab: CI_PIPELINE_SOURCE) */
	const char *tag;		/* a tag pipeline for this tag; NULL: none */
	const char *name;		/* the pipeline's name; NULL: from the file */
};

struct ry_ci_env {
	char *name;
	char *value;
};

struct ry_ci_task {
	char *name;		/* railyard task name, unique in the pipeline */
	char *job;		/* the CI job it comes from (id or name) */
	char *command;		/* run with /bin/sh -c */
	struct ry_strlist requires;	/* agent labels */
	char *os;		/* NULL: any */
	char *arch;		/* NULL: any */
	struct ry_ci_env *env;
	size_t nenv;
	int timeout_s;		/* 0: railyard's default */
	char *run_if;		/* NULL: on_success */
	char *only_if_changed;	/* PCRE2 over changed paths; NULL: always */
	char *pool;		/* NULL: none */
	struct ry_strlist needs;	/* railyard names of upstream tasks */
	char *file;		/* where the job is defined */
	int line;
};

struct ry_ci_note {
	char *where;		/* "FILE:LINE" */
	char *text;		/* what was not imported, and why */
};

struct ry_ci_pipeline {
	char *name;
	char *revision;		/* NULL: none (set by the caller) */
	bool has_changed_paths;	/* false: unknown (set by the caller) */
	struct ry_strlist changed_paths;
	struct ry_ci_task *tasks;	/* in file order, matrix combinations in order */
	size_t ntasks;
	struct ry_ci_note *notes;	/* in the order they were found */
	size_t nnotes;
};

/*
 * Import a workflow (one file) / a GitLab CI configuration (the first file
 * is .gitlab-ci.yml; its directory is the repository root that
 * `include: local` resolves against and never leaves).  True on success
 * (notes may still have been added); false with *err "FILE:LINE: ..."
 * (caller frees) when the input is malformed.  Release out either way.
 */
bool ry_ci_import_github(const char *path, const struct ry_ci_options *opt,
			 struct ry_ci_pipeline *out, char **err) RY_MUST_CHECK;
bool ry_ci_import_gitlab(const char *const *paths, size_t npaths, const struct ry_ci_options *opt,
			 struct ry_ci_pipeline *out, char **err) RY_MUST_CHECK;

/* The pipeline as a railyard spec in YAML (caller frees); NULL with *err. */
char *ry_ci_render(const struct ry_ci_pipeline *p, char **err) RY_MUST_CHECK;

void ry_ci_pipeline_release(struct ry_ci_pipeline *p);

#endif
