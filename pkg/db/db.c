#include "db/db.h"
#include "db/db_internal.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

struct ry_db {
	PGconn *conn;
	char sqlstate[6];
};

struct ry_res {
	PGresult *pg;
};

char *ry_db_format_error(const void *pgresult, const void *pgconn)
{
	const PGresult *res = pgresult;
	struct ry_buf b = RY_BUF_INIT;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	if (!msg || !*msg) {
		/* libpq's own messages span lines; ours are one line. */
		msg = pgconn ? PQerrorMessage(pgconn) : "unknown error";
		bool space = false;
		for (const char *p = msg; *p; p++) {
			if (*p == '\n' || *p == '\t' || *p == ' ') {
				space = b.len > 0;
				continue;
			}
			if (space)
				ry_buf_putc(&b, ' ');
			space = false;
			ry_buf_putc(&b, *p);
		}
		return ry_buf_detach(&b);
	}
	ry_buf_puts(&b, msg);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
	if (detail)
		ry_buf_printf(&b, " (%s)", detail);
	if (hint)
		ry_buf_printf(&b, " hint: %s", hint);
	return ry_buf_detach(&b);
}

static void quiet_notice(void *arg, const PGresult *res)
{
	(void)arg;
	(void)res;
}

PGconn *ry_db_start_connect(const char *conninfo, const char *actor, bool async)
{
	const char *keys[] = { "dbname", "application_name", "options", NULL };
	struct ry_buf opts = RY_BUF_INIT;

	/* Recorded by the audit triggers; spaces must be escaped for libpq. */
	ry_buf_puts(&opts, "-c railyard.actor=");
	for (const char *p = actor ? actor : "cli"; *p; p++) {
		if (*p == ' ' || *p == '\\')
			ry_buf_putc(&opts, '\\');
		ry_buf_putc(&opts, *p);
	}
	const char *vals[] = { conninfo, "railyard", opts.data, NULL };
	PGconn *conn = async ? PQconnectStartParams(keys, vals, 1)
			     : PQconnectdbParams(keys, vals, 1);
	ry_buf_release(&opts);
	/* Server notices (and libpq's own FATAL echoes) are not ours to print:
	 * errors reach callers through results. */
	if (conn)
		PQsetNoticeReceiver(conn, quiet_notice, NULL);
	return conn;
}

struct ry_res *ry_res_wrap(PGresult *pg)
{
	struct ry_res *r = ry_malloc(sizeof(*r));
	r->pg = pg;
	return r;
}

struct ry_db *ry_db_connect(const char *conninfo, const char *actor, char **err)
{
	PGconn *conn = ry_db_start_connect(conninfo, actor, false);

	if (!conn || PQstatus(conn) != CONNECTION_OK) {
		*err = ry_db_format_error(NULL, conn);
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeReceiver(conn, quiet_notice, NULL);
	struct ry_db *db = ry_calloc(1, sizeof(*db));
	db->conn = conn;
	return db;
}

void ry_db_close(struct ry_db *db)
{
	if (!db)
		return;
	PQfinish(db->conn);
	free(db);
}

static void note_sqlstate(struct ry_db *db, const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", s ? s : "");
}

struct ry_res *ry_db_query(struct ry_db *db, const char *sql, int nparams,
			   const char *const *params, char **err)
{
	PGresult *res = PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		note_sqlstate(db, res);
		*err = ry_db_format_error(res, db->conn);
		PQclear(res);
		return NULL;
	}
	db->sqlstate[0] = '\0';
	return ry_res_wrap(res);
}

bool ry_db_exec(struct ry_db *db, const char *sql, int nparams,
		const char *const *params, char **err)
{
	struct ry_res *r = ry_db_query(db, sql, nparams, params, err);
	ry_res_free(r);
	return r != NULL;
}

const char *ry_db_last_sqlstate(const struct ry_db *db)
{
	return db->sqlstate;
}

bool ry_db_exec_script(struct ry_db *db, const char *sql, char **err)
{
	PGresult *res = PQexec(db->conn, sql);
	bool ok = true;

	/* PQexec returns the last result; an error stops the script there. */
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
		note_sqlstate(db, res);
		*err = ry_db_format_error(res, db->conn);
		ok = false;
	}
	PQclear(res);
	return ok;
}

bool ry_db_wait_notify(struct ry_db *db, int timeout_ms, char **err)
{
	PGnotify *n;
	int64_t deadline = ry_now_ms() + timeout_ms;

	for (;;) {
		if (!PQconsumeInput(db->conn)) {
			*err = ry_db_format_error(NULL, db->conn);
			return false;
		}
		if ((n = PQnotifies(db->conn)) != NULL) {
			PQfreemem(n);
			/* Drain the rest: one wake-up is enough. */
			while ((n = PQnotifies(db->conn)) != NULL)
				PQfreemem(n);
			return true;
		}
		int left = (int)(deadline - ry_now_ms());
		if (left <= 0)
			return true;
		struct pollfd pfd = { .fd = PQsocket(db->conn), .events = POLLIN };
		if (poll(&pfd, 1, left) < 0 && errno != EINTR) {
			*err = ry_asprintf("cannot wait for notifications: %s", strerror(errno));
			return false;
		}
	}
}

int ry_db_server_version(const struct ry_db *db)
{
	return PQserverVersion(db->conn);
}

int ry_res_rows(const struct ry_res *r)
{
	return PQntuples(r->pg);
}

int ry_res_cols(const struct ry_res *r)
{
	return PQnfields(r->pg);
}

const char *ry_res_colname(const struct ry_res *r, int col)
{
	return PQfname(r->pg, col);
}

const char *ry_res_get(const struct ry_res *r, int row, int col)
{
	return PQgetvalue(r->pg, row, col);
}

bool ry_res_isnull(const struct ry_res *r, int row, int col)
{
	return PQgetisnull(r->pg, row, col);
}

long ry_res_get_long(const struct ry_res *r, int row, int col)
{
	return strtol(PQgetvalue(r->pg, row, col), NULL, 10);
}

double ry_res_get_double(const struct ry_res *r, int row, int col)
{
	return strtod(PQgetvalue(r->pg, row, col), NULL);
}

long ry_res_affected(const struct ry_res *r)
{
	return strtol(PQcmdTuples(r->pg), NULL, 10);
}

void ry_res_free(struct ry_res *r)
{
	if (!r)
		return;
	PQclear(r->pg);
	free(r);
}

