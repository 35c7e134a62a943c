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

int cmd_migrate(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_worker(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_submit(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_wait(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_status(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_cancel(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_db(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_demo(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_forecast(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_history(struct cmd_ctx *ctx, int argc, char **argv);

#endif
