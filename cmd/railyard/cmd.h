/*
 * The command table's shared declarations.  Each subcommand lives in its own
 * cmd_<verb>.c and returns the process exit code; only cmd/ may exit.
 */
#ifndef RY_CMD_H
#define RY_CMD_H

#include "core/core.h"
#include "db/db.h"

#include <stdio.h>

/* Exit codes shared by every command. */
enum {
	RY_EXIT_OK = 0,		/* done; for wait: pipeline succeeded */
	RY_EXIT_FAIL = 1,	/* operation failed; for wait: pipeline failed */
	RY_EXIT_ERROR = 2,	/* usage or environment error; wait: cancelled/error */
};

/* The database role a command needs (docs/operations.md, "Roles"). */
enum cmd_role {
	CMD_ROLE_OWNER,		/* migrate, demo, db: owns the schema */
	CMD_ROLE_WORKER,	/* worker: the worker functions */
	CMD_ROLE_SUBMITTER,	/* submit, cancel */
	CMD_ROLE_READER,	/* status, wait */
};

struct cmd_ctx {
	const char *db_url;	/* --db, or NULL */
	const char *home;	/* $RAILYARD_HOME, the .railyard found, or ./.railyard (absolute) */
	bool home_found;	/* $RAILYARD_HOME is set or a .railyard was found */
	const char *looked;	/* where .railyard was looked for: "/a/b, /a, /" */
	enum cmd_role role;	/* who the command connects as in the embedded cluster */
	bool may_create;	/* the command may create the embedded cluster */
	struct ry_db_options dbopt;	/* timeouts for the CLI's sessions */
	const char *argv0;
};

/* Prints "railyard: error: ..." on stderr: the one error format. */
void cmd_error(const char *fmt, ...) RY_PRINTF(1, 2);

struct option;
/*
 * getopt_long (options may follow operands; "--opt value" and
 * "--opt=value"), reporting unknown options and missing values with
 * cmd_error; both come back as '?'.  argv[0] is the command's name.
 */
int cmd_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts);
/*
 * Prints the end of the log of the pipeline's failed tasks (the first few,
 * their last attempt), for wait and status.  False, with the error printed,
 * when the database could not say.
 */
bool cmd_show_failed_logs(struct ry_db *db, const char *pipeline_id);
/*
 * For a command whose only option is --help: parses argv with cmd_getopt.
 * Returns -1 to go on (operands start at optind), else the exit code after
 * printing usage (to stdout for --help, stderr for a bad option).
 */
int cmd_only_help(int argc, char **argv, void (*usage)(FILE *out));
/* A pipeline id from the command line; prints why not. */
bool cmd_parse_id(const char *s, long *id) RY_MUST_CHECK;

/*
 * Where to connect, following PRODUCT.md: --db, $RAILYARD_DB, libpq's own
 * environment when PGHOST or PGDATABASE is set, else the embedded cluster
 * (started on demand, migrated when this binary's schema is newer; created
 * only by commands that may_create), as the login role that fits ctx->role.
 * Returns a conninfo string the caller frees, or NULL with *err set.
 */
char *cmd_conninfo(const struct cmd_ctx *ctx, char **err);
/* The same for an explicit role (railyard db url --role). */
char *cmd_conninfo_as(const struct cmd_ctx *ctx, enum cmd_role role, char **err);
/* Resolves and connects; prints the error and returns NULL on failure.
 * Ctrl-C then cancels the session's running statement before exiting. */
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
int cmd_forecast(struct cmd_ctx *ctx, int argc, char **argv);
int cmd_history(struct cmd_ctx *ctx, int argc, char **argv);

#endif
