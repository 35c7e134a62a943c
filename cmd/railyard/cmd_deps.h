/*
 * Shared by cmd_deps.c and cmd_plan.c (deps_db.c).
 */
#ifndef RY_CMD_DEPS_H
#define RY_CMD_DEPS_H

#include "cmd.h"
#include "deps/deps.h"

/*
 * The repository's name: given (checked), else the directory's own name
 * with characters railyard.services does not take replaced.  NULL with
 * *err on failure.
 */
char *cmd_deps_repo_name(const char *dir, const char *given, char **err);

/* Explicit rows people inserted for repo, as declarations (source "database"). */
bool cmd_deps_load_decls(struct ry_db *db, const char *repo, struct ry_deps_config *extra,
			 char **err) RY_MUST_CHECK;

/* Runs git -C dir ARGS (git.c); its stdout in *out.  False with *err
 * (git's first line of complaint). */
bool cmd_git(const char *dir, const char *const *args, struct ry_buf *out, char **err)
	RY_MUST_CHECK;
/* The paths `git diff --name-only` gives for range ("A...B", or a commit:
 * against the working tree), relative to dir, appended to paths. */
bool cmd_git_diff(const char *dir, const char *range, struct ry_strlist *paths, char **err)
	RY_MUST_CHECK;
/* HEAD's commit, or NULL when dir is no git checkout. */
char *cmd_git_head(const char *dir);
/* The checkout's top directory (real path), or NULL. */
char *cmd_git_toplevel(const char *dir);

/*
 * The commit of repo's latest stored scan when this railyard stored it and
 * its manifests had no uncommitted change then, else NULL (caller frees).
 */
char *cmd_deps_stored_revision(struct ry_db *db, const char *repo);
/*
 * Whether no file a scan reads differs over range, as `git diff` takes it:
 * a commit (against the working tree's tracked files; with untracked, the
 * untracked ones count too) or "A..B" (two commits).  False when git
 * cannot tell.
 */
bool cmd_deps_unchanged_since(const char *dir, const char *rev, bool untracked);
/* repo's stored graph (railyard.services, service_deps, service_paths). */
bool cmd_deps_load_graph(struct ry_db *db, const char *repo, struct ry_deps_graph *g,
			 char **err) RY_MUST_CHECK;

/* The scan's warnings on stderr, at most max of them. */
void cmd_deps_print_warnings(const struct ry_deps_graph *g, size_t max);

#endif
