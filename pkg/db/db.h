/*
 * db: the only module that speaks libpq.
 *
 * Two faces:
 *  - a blocking connection (struct ry_db) for the CLI commands, where one
 *    query at a time is exactly right;
 *  - an asynchronous connection (struct ry_adb, adb.h) for the worker, driven
 *    by libevent and never blocking the loop.
 * Results are handed out as struct ry_res so callers never see a PGresult.
 */
#ifndef RY_DB_H
#define RY_DB_H

#include "core/core.h"
#include "db/pgarray.h"	/* text[] codec: ry_db_parse_text_array, ... */

struct ry_db;
struct ry_res;

/*
 * Connects with a libpq conninfo string or URL.  application_name and the
 * railyard.actor setting (recorded in the audit log) are set from actor.
 * On failure returns NULL and *err holds a message the caller frees.
 */
struct ry_db *ry_db_connect(const char *conninfo, const char *actor, char **err) RY_MUST_CHECK;
void ry_db_close(struct ry_db *db);

/*
 * Runs one statement with text parameters (NULL element = SQL NULL).
 * Returns the result (free with ry_res_free) or NULL on error, with *err set
 * to "message (detail, hint)" as PostgreSQL reported it; *sqlstate, when
 * non-NULL, receives the five-character SQLSTATE ("" when not from server).
 */
struct ry_res *ry_db_query(struct ry_db *db, const char *sql, int nparams,
			   const char *const *params, char **err) RY_MUST_CHECK;
/* Like ry_db_query for statements whose rows do not matter. */
bool ry_db_exec(struct ry_db *db, const char *sql, int nparams,
		const char *const *params, char **err) RY_MUST_CHECK;
/* SQLSTATE of the last failed statement on db, "" if none/not from server. */
const char *ry_db_last_sqlstate(const struct ry_db *db);
/* Runs a whole SQL script (several statements, no parameters). */
bool ry_db_exec_script(struct ry_db *db, const char *sql, char **err) RY_MUST_CHECK;
/* Waits up to timeout_ms for a NOTIFY on a channel LISTENed before. */
bool ry_db_wait_notify(struct ry_db *db, int timeout_ms, char **err) RY_MUST_CHECK;
/* Server version number (150004) or 0. */
int ry_db_server_version(const struct ry_db *db);

int ry_res_rows(const struct ry_res *r);
int ry_res_cols(const struct ry_res *r);
const char *ry_res_colname(const struct ry_res *r, int col);
/* Value as text; "" for NULL (use ry_res_isnull to tell). */
const char *ry_res_get(const struct ry_res *r, int row, int col);
bool ry_res_isnull(const struct ry_res *r, int row, int col);
long ry_res_get_long(const struct ry_res *r, int row, int col);
double ry_res_get_double(const struct ry_res *r, int row, int col);
/* Command tag row count ("INSERT 0 5" → 5). */
long ry_res_affected(const struct ry_res *r);
void ry_res_free(struct ry_res *r);

/* Builds an error message from a result/connection; used by adb too. */
char *ry_db_format_error(const void *pgresult, const void *pgconn);

#endif
