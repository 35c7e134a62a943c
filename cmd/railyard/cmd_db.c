/*
 * railyard db start|stop|url|psql: the embedded cluster by hand.
 *
 * start and stop manage only the embedded cluster ($RAILYARD_HOME or the
 * .railyard found); start is the one that creates it.  url and psql follow
 * the same connection order as every other command, so
 * `psql "$(railyard db url)"` reaches whatever railyard itself would use;
 * url --role names the login role that fits a kind of client.
 */
#include "cmd.h"
#include "embed/embed.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out)
{
	fprintf(out, "usage: railyard db start|stop|psql [PSQL ARGS...]\n"
		"       railyard db url [--role owner|worker|submitter|reader]\n"
		"  start   create (first time) and start the embedded cluster\n"
		"  stop    stop it\n"
		"  url     print the connection string railyard uses; --role: as that kind of\n"
		"          client (embedded cluster only; default owner)\n"
		"  psql    run psql on it, as the owner\n");
}

/* start/stop on an external database would silently do nothing: refuse. */
static bool refuse_external(const struct cmd_ctx *ctx, const char *verb)
{
	const char *rdb = getenv("RAILYARD_DB");
	const char *source = ctx->db_url ? "--db" : rdb && *rdb ? "RAILYARD_DB" : "PGHOST/PGDATABASE";

	if (cmd_uses_embedded(ctx))
		return false;
	cmd_error("cannot %s the embedded database: an external database is configured (%s); "
		  "railyard db %s manages only the cluster under $RAILYARD_HOME or .railyard",
		  verb, source, verb);
	return true;
}

static char *conninfo_or_report(const struct cmd_ctx *ctx, enum cmd_role role)
{
	char *err = NULL;
	char *conninfo = cmd_conninfo_as(ctx, role, &err);
	if (!conninfo) {
		cmd_error("%s", err);
		free(err);
	}
	return conninfo;
}

static int db_start(struct cmd_ctx *ctx)
{
	if (refuse_external(ctx, "start"))
		return RY_EXIT_ERROR;
	ctx->may_create = true;
	char *conninfo = conninfo_or_report(ctx, CMD_ROLE_OWNER);
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
	if (!ctx->home_found) {
		cmd_error("no embedded database to stop: no .railyard directory in %s", ctx->looked);
		return RY_EXIT_ERROR;
	}
	if (!ry_embed_stop(ctx->home, &err)) {
		cmd_error("%s", err);
		free(err);
		return RY_EXIT_FAIL;
	}
	return RY_EXIT_OK;
}

static bool parse_role(const char *s, enum cmd_role *role)
{
	static const struct {
		const char *name;
		enum cmd_role role;
	} roles[] = {
		{ "owner", CMD_ROLE_OWNER }, { "worker", CMD_ROLE_WORKER },
		{ "submitter", CMD_ROLE_SUBMITTER }, { "reader", CMD_ROLE_READER },
	};
	for (size_t i = 0; i < RY_ARRAY_SIZE(roles); i++) {
		if (strcmp(s, roles[i].name) == 0) {
			*role = roles[i].role;
			return true;
		}
	}
	return false;
}

static int db_url(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "role", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum cmd_role role = CMD_ROLE_OWNER;
	bool role_given = false;
	int c;

	while ((c = cmd_getopt(argc, argv, "h", longopts)) != -1) {
		switch (c) {
		case 'r':
			if (!parse_role(optarg, &role)) {
				cmd_error("invalid --role '%s': expected owner, worker, submitter or reader",
					  optarg);
				return RY_EXIT_ERROR;
			}
			role_given = true;
			break;
		case 'h':
			usage(stdout);
			return RY_EXIT_OK;
		default:
			usage(stderr);
			return RY_EXIT_ERROR;
		}
	}
	if (optind < argc) {
		cmd_error("db url takes no arguments, got '%s'", argv[optind]);
		return RY_EXIT_ERROR;
	}
	if (role_given && role != CMD_ROLE_OWNER && !cmd_uses_embedded(ctx)) {
		cmd_error("db url --role maps roles only in the embedded cluster; with an external "
			  "database give each client a login role that is a member of railyard_worker, "
			  "railyard_submitter or railyard_reader (docs/operations.md, \"Roles\")");
		return RY_EXIT_ERROR;
	}
	char *conninfo = conninfo_or_report(ctx, role);
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
		cmd_error("cannot find psql on PATH or under /usr/lib/postgresql; "
			  "install postgresql-client-15");
		return RY_EXIT_ERROR;
	}
	char *conninfo = conninfo_or_report(ctx, CMD_ROLE_OWNER);
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
	cmd_error("cannot run %s: %s", psql, strerror(errno));
	free(dbname);
	free(args);
	free(conninfo);
	free(psql);
	return RY_EXIT_ERROR;
}

int cmd_db(struct cmd_ctx *ctx, int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return RY_EXIT_ERROR;
	}
	const char *verb = argv[1];
	if (strcmp(verb, "-h") == 0 || strcmp(verb, "--help") == 0) {
		usage(stdout);
		return RY_EXIT_OK;
	}
	if (strcmp(verb, "psql") == 0)
		return db_psql(ctx, argc - 2, argv + 2);
	if (strcmp(verb, "url") == 0)
		return db_url(ctx, argc - 1, argv + 1);
	if (argc > 2) {
		cmd_error("db %s takes no arguments, got '%s'", verb, argv[2]);
		return RY_EXIT_ERROR;
	}
	if (strcmp(verb, "start") == 0)
		return db_start(ctx);
	if (strcmp(verb, "stop") == 0)
		return db_stop(ctx);
	cmd_error("unknown db command '%s'", verb);
	usage(stderr);
	return RY_EXIT_ERROR;
}
