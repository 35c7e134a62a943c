#include "db/db.h"
#include "db/db_internal.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* While a statement runs the server checks this often (ms) that the client
 * is still connected, so a killed CLI does not leave its query running. */
#define CLIENT_CHECK_MS "2000"

struct ry_db {
	PGconn *conn;
	PGcancel *cancel;	/* set when Ctrl-C cancels this session's statements */
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
		goto out;
	}
	ry_buf_puts(&b, msg);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
	if (detail)
		ry_buf_printf(&b, " (%s)", detail);
	if (hint)
		ry_buf_printf(&b, " hint: %s", hint);
out:;
	/* Messages quote names and values from the database: never raw. */
	char *text = ry_buf_detach(&b);
	ry_make_printable(text, false);
	return text;
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

/* The session whose statement SIGINT/SIGTERM cancel; read by the handler. */
static PGcancel *volatile interrupt_cancel;

static void on_interrupt(int sig)
{
	PGcancel *c = interrupt_cancel;
	char errbuf[256];

	/* PQcancel is safe in a signal handler; the server stops the query. */
	if (c)
		(void)PQcancel(c, errbuf, sizeof(errbuf));
	signal(sig, SIG_DFL);
	raise(sig);
}

static void set_interrupt_cancel(PGcancel *c)
{
	sigset_t block, old;

	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &old);
	interrupt_cancel = c;
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static void install_interrupt_handler(void)
{
	static const int sigs[] = { SIGINT, SIGTERM };
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_interrupt;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < RY_ARRAY_SIZE(sigs); i++) {
		struct sigaction old;
		/* A signal someone chose to ignore stays ignored. */
		if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
			sigaction(sigs[i], &sa, NULL);
	}
}

/* Appends "-c name=value" to a libpq options string (spaces escaped). */
static void add_guc(struct ry_buf *b, const char *name, const char *value)
{
	if (b->len)
		ry_buf_putc(b, ' ');
	ry_buf_printf(b, "-c %s=", name);
	for (const char *p = value; *p; p++) {
		if (*p == ' ' || *p == '\\')
			ry_buf_putc(b, '\\');
		ry_buf_putc(b, *p);
	}
}

struct ry_db *ry_db_connect(const char *conninfo, const struct ry_db_options *opt, char **err)
{
	struct ry_buf opts = RY_BUF_INIT;
	char connect_timeout[16] = "", statement_timeout[16];
	const char *actor = opt->actor ? opt->actor : "cli";

	add_guc(&opts, "railyard.actor", actor);
	add_guc(&opts, "client_connection_check_interval", CLIENT_CHECK_MS);
	/* A command's queries are small; compiling them would cost more than
	 * it saves (half a second and more on a big pipeline's estimates). */
	add_guc(&opts, "jit", "off");
	if (opt->statement_timeout_ms > 0) {
		snprintf(statement_timeout, sizeof(statement_timeout), "%d", opt->statement_timeout_ms);
		add_guc(&opts, "statement_timeout", statement_timeout);
	}
	if (opt->connect_timeout_s > 0)
		snprintf(connect_timeout, sizeof(connect_timeout), "%d", opt->connect_timeout_s);
	char *appname = ry_asprintf("railyard %s", actor);
	/* Ours first: what the conninfo (dbname, expanded) says wins. */
	const char *keys[] = { "application_name", "options", "connect_timeout", "dbname", NULL };
	const char *vals[] = { appname, opts.data, connect_timeout, conninfo, NULL };
	PGconn *conn = PQconnectdbParams(keys, vals, 1);
	free(appname);
	ry_buf_release(&opts);

	if (!conn || PQstatus(conn) != CONNECTION_OK) {
		*err = ry_db_format_error(NULL, conn);
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeReceiver(conn, quiet_notice, NULL);
	struct ry_db *db = ry_calloc(1, sizeof(*db));
	db->conn = conn;
	if (opt->cancel_on_interrupt && (db->cancel = PQgetCancel(conn)) != NULL) {
		set_interrupt_cancel(db->cancel);
		install_interrupt_handler();
	}
	return db;
}

void ry_db_close(struct ry_db *db)
{
	if (!db)
		return;
	if (db->cancel) {
		if (interrupt_cancel == db->cancel)
			set_interrupt_cancel(NULL);
		PQfreeCancel(db->cancel);
	}
	PQfinish(db->conn);
	free(db);
}

char *ry_db_conninfo_set(const char *conninfo, const char *key, const char *value, char **err)
{
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
	struct ry_buf b = RY_BUF_INIT;
	bool seen = false;

	if (!opts) {
		*err = ry_asprintf("cannot read the connection string: %s",
				   perr ? perr : "out of memory");
		if (perr)
			PQfreemem(perr);
		return NULL;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		const char *v = o->val;
		if (strcmp(o->keyword, key) == 0) {
			v = value;
			seen = true;
		}
		if (!v)
			continue;
		if (b.len)
			ry_buf_putc(&b, ' ');
		ry_buf_printf(&b, "%s='", o->keyword);
		for (const char *p = v; *p; p++) {
			if (*p == '\'' || *p == '\\')
				ry_buf_putc(&b, '\\');
			ry_buf_putc(&b, *p);
		}
		ry_buf_putc(&b, '\'');
	}
	PQconninfoFree(opts);
	if (!seen) {
		*err = ry_asprintf("cannot set %s: libpq knows no such connection option", key);
		ry_buf_release(&b);
		return NULL;
	}
	return ry_buf_detach(&b);
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

bool ry_res_columns(const struct ry_res *r, const char *const *names, int n, int *idx,
		    const char **missing)
{
	for (int i = 0; i < n; i++) {
		/* Quoted: the names are taken as written, not case-folded. */
		char *quoted = ry_asprintf("\"%s\"", names[i]);
		idx[i] = PQfnumber(r->pg, quoted);
		free(quoted);
		if (idx[i] < 0) {
			*missing = names[i];
			return false;
		}
	}
	return true;
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

void ry_res_make_printable(struct ry_res *r, bool multiline)
{
	int rows = PQntuples(r->pg), cols = PQnfields(r->pg);

	/* The values live in the result's own storage; lengths do not change. */
	for (int i = 0; i < rows; i++)
		for (int j = 0; j < cols; j++)
			if (!PQgetisnull(r->pg, i, j))
				ry_make_printable(PQgetvalue(r->pg, i, j), multiline);
}

void ry_res_free(struct ry_res *r)
{
	if (!r)
		return;
	PQclear(r->pg);
	free(r);
}

