/*
 * railyard db start|stop|url|psql: the embedded cluster by hand.
 *
 * start and stop manage only the embedded cluster under $RAILYARD_HOME; url
 * and psql follow the same connection order as every other command, so
 * `psql "$(railyard db url)"` reaches whatever railyard itself would use.
 */
#include "cmd.h"
#include "embed/embed.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int usage(void)
{
	fprintf(stderr, "usage: railyard db start|stop|url|psql [PSQL ARGS...]\n");
	return RY_EXIT_ERROR;
}

/* start/stop on an external database would silently do nothing: refuse. */
static bool refuse_external(const struct cmd_ctx *ctx, const char *verb)
{
	const char *rdb = getenv("RAILYARD_DB");
	const char *source = ctx->db_url ? "--db" : rdb && *rdb ? "RAILYARD_DB" : "PGHOST/PGDATABASE";

	if (cmd_uses_embedded(ctx))
		return false;
	fprintf(stderr, "error: cannot %s the embedded database: an external database is "
		"configured (%s); railyard db %s manages only the cluster under $RAILYARD_HOME\n",
		verb, source, verb);
	return true;
}

static char *conninfo_or_report(const struct cmd_ctx *ctx)
{
	char *err = NULL;
	char *conninfo = cmd_conninfo(ctx, &err);
	if (!conninfo) {
		fprintf(stderr, "error: cannot start the embedded database: %s\n", err);
		free(err);
	}
	return conninfo;
}

static int db_start(struct cmd_ctx *ctx)
{
	if (refuse_external(ctx, "start"))
		return RY_EXIT_ERROR;
	char *conninfo = conninfo_or_report(ctx);
	if (!conninfo)
		return RY_EXIT_ERROR;
	ry_info("the embedded database is running under %s", ctx->home);
	free(conninfo);
	return RY_EXIT_OK;
}

static int db_stop(struct cmd_ctx *ctx)
{
	char *err = NULL;

	if (refuse_external(ctx, "stop"))
		return RY_EXIT_ERROR;
	if (!ry_embed_stop(ctx->home, &err)) {
		fprintf(stderr, "error: %s\n", err);
		free(err);
		return RY_EXIT_FAIL;
	}
	return RY_EXIT_OK;
}

static int db_url(struct cmd_ctx *ctx)
{
	char *conninfo = conninfo_or_report(ctx);
	if (!conninfo)
		return RY_EXIT_ERROR;
	printf("%s\n", conninfo);
	free(conninfo);
	return fflush(stdout) == 0 ? RY_EXIT_OK : RY_EXIT_FAIL;
}

static bool executable(const char *path)
{
	return access(path, X_OK) == 0;
}

/* psql: on PATH, else beside pg_config's server binaries, else the newest
 * /usr/lib/postgresql/N/bin.  Caller frees; NULL when there is none. */
static char *find_psql(void)
{
	const char *path = getenv("PATH");
	struct ry_strlist dirs = { 0 };
	char *found = NULL;

	ry_strlist_split(&dirs, path ? path : "/usr/bin:/bin", ':');
	for (size_t i = 0; i < dirs.n && !found; i++) {
		char *p = ry_asprintf("%s/psql", dirs.items[i]);
		if (executable(p))
			found = p;
		else
			free(p);
	}
	ry_strlist_release(&dirs);
	if (!found) {
		char *bin = ry_embed_pg_bindir("psql");
		if (bin)
			found = ry_asprintf("%s/psql", bin);
		free(bin);
	}
	return found;
}

static int db_psql(struct cmd_ctx *ctx, int argc, char **argv)
{
	char *psql = find_psql();
	if (!psql) {
		fprintf(stderr, "error: cannot find psql on PATH or under /usr/lib/postgresql; "
			"install postgresql-client-15\n");
		return RY_EXIT_ERROR;
	}
	char *conninfo = conninfo_or_report(ctx);
	if (!conninfo) {
		free(psql);
		return RY_EXIT_ERROR;
	}
	/* psql ["--dbname=CONNINFO"] ARGS...; "" means libpq's environment. */
	char **args = ry_calloc((size_t)argc + 3, sizeof(*args));
	size_t n = 0;
	args[n++] = psql;
	char *dbname = *conninfo ? ry_asprintf("--dbname=%s", conninfo) : NULL;
	if (dbname)
		args[n++] = dbname;
	for (int i = 0; i < argc; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	fflush(NULL);
	execv(psql, args);
	fprintf(stderr, "error: cannot run %s: %s\n", psql, strerror(errno));
	free(dbname);
	free(args);
	free(conninfo);
	free(psql);
	return RY_EXIT_ERROR;
}

int cmd_db(struct cmd_ctx *ctx, int argc, char **argv)
{
	if (argc < 2)
		return usage();
	const char *verb = argv[1];
	if (strcmp(verb, "psql") == 0)
		return db_psql(ctx, argc - 2, argv + 2);
	if (argc > 2)
		return usage();
	if (strcmp(verb, "start") == 0)
		return db_start(ctx);
	if (strcmp(verb, "stop") == 0)
		return db_stop(ctx);
	if (strcmp(verb, "url") == 0)
		return db_url(ctx);
	return usage();
}
