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

/* How a blocking session is opened; zero values mean "not set". */
struct ry_db_options {
	const char *actor;		/* "cli:status": application_name and railyard.actor */
	int connect_timeout_s;		/* libpq connect_timeout */
	int statement_timeout_ms;	/* the server cancels longer statements */
	bool cancel_on_interrupt;	/* SIGINT/SIGTERM cancel the running statement, then
					 * the process dies of the signal as it would have */
};

/*
 * Connects with a libpq conninfo string or URL.  The options go in as
 * defaults: a conninfo that sets connect_timeout or options itself wins.
 * The server also checks every 2 s that the client is still there while a
 * statement runs, so a killed CLI does not leave its query running.  On
 * failure returns NULL and *err holds a message the caller frees.
 */
struct ry_db *ry_db_connect(const char *conninfo, const struct ry_db_options *opt,
			    char **err) RY_MUST_CHECK;
void ry_db_close(struct ry_db *db);

/*
 * conninfo (a key=value string or a URL) with key set to value, as a
 * key=value string (caller frees); NULL with *err set when conninfo does
 * not parse.
 */
char *ry_db_conninfo_set(const char *conninfo, const char *key, const char *value,
			 char **err) RY_MUST_CHECK;

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
/*
 * Looks up columns by name, once per result, so rows are read by name and a
 * reordered SELECT cannot shift meanings: idx[i] = the column named
 * names[i].  False (with *missing set to the name) when one is absent.
 */
bool ry_res_columns(const struct ry_res *r, const char *const *names, int n, int *idx,
		    const char **missing) RY_MUST_CHECK;
/* Value as text; "" for NULL (use ry_res_isnull to tell). */
const char *ry_res_get(const struct ry_res *r, int row, int col);
bool ry_res_isnull(const struct ry_res *r, int row, int col);
long ry_res_get_long(const struct ry_res *r, int row, int col);
double ry_res_get_double(const struct ry_res *r, int row, int col);
/* Command tag row count ("INSERT 0 5" → 5). */
long ry_res_affected(const struct ry_res *r);
void ry_res_free(struct ry_res *r);

/*
 * Makes every value of r safe to print on a terminal, in place: control
 * characters (C0, DEL, and C1 as UTF-8) become '?', so no value from the
 * database can move the cursor, retitle the terminal or hide text.  With
 * multiline, newlines and tabs stay (log tails); without, they become
 * spaces.
 */
void ry_res_make_printable(struct ry_res *r, bool multiline);

/* Builds an error message from a result/connection; used by adb too. */
char *ry_db_format_error(const void *pgresult, const void *pgconn);

#endif
