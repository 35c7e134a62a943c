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

/* The scan's warnings on stderr, at most max of them. */
void cmd_deps_print_warnings(const struct ry_deps_graph *g, size_t max);

#endif
