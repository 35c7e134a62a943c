/*
 * The command table's shared declarations.  Each subcommand lives in its own
 * cmd_<verb>.c and returns the process exit code; only cmd/ may exit.
 */
#ifndef RY_CMD_H
#define RY_CMD_H

#include "core/core.h"
#include "db/db.h"

/* Exit codes shared by every command. */
enum {
	RY_EXIT_OK = 0,		/* done; for wait: pipeline succeeded */
	RY_EXIT_FAIL = 1,	/* operation failed; for wait: pipeline failed */
	RY_EXIT_ERROR = 2,	/* usage or environment error; wait: cancelled/error */
};

struct cmd_ctx {
	const char *db_url;	/* --db, or NULL */
	const char *home;	/* $RAILYARD_HOME or ./.railyard */
	const char *argv0;
};

/*
 * Where to connect, following PRODUCT.md: --db, $RAILYARD_DB, libpq's own
 * environment when PGHOST or PGDATABASE is set, else the embedded cluster
 * (created, started and migrated on demand).  Returns a conninfo string the
 * caller frees, or NULL with *err set.
 */
char *cmd_conninfo(const struct cmd_ctx *ctx, char **err);
/* Resolves and connects; prints the error and returns NULL on failure. */
struct ry_db *cmd_connect(const struct cmd_ctx *ctx, const char *actor);
/* True when cmd_conninfo would use the embedded cluster. */
bool cmd_uses_embedded(const struct cmd_ctx *ctx);

/* Applies migrations/ and sql/ (see cmd_migrate.c). */
bool cmd_apply_migrations(struct ry_db *db, char **err) RY_MUST_CHECK;

/*
 * wait --junit: writes pipeline_id's tasks as a JUnit report to path
 * (wait_junit.c).  Returns rc, or RY_EXIT_ERROR after printing why the
 * report could not be written.
 */
int cmd_wait_junit(struct ry_db *db, const char *pipeline_id, const char *path, int rc);

/*
 * Connects as actor and inserts a parsed spec in one transaction
 * (cmd_submit.c), printing the new pipeline's id on stdout.  Returns the
 * exit code, after printing the error when it is not RY_EXIT_OK.
 */
struct ry_spec;
int cmd_submit_spec(struct cmd_ctx *ctx, const struct ry_spec *spec, const char *actor);

int cmd_migrate(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_worker(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_submit(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_wait(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_status(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_cancel(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_db(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_demo(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_import(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_inventory(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_cache(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_deps(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_plan(struct cmd_ctx *ctx, int argc, char **argv);

#endif
