/*
 * railyard: one binary, git-style command table.
 *
 * Global options (--db, --connect-timeout, --statement-timeout) may come
 * before the command or anywhere after it; they are taken out before the
 * command parses its own arguments with getopt_long.
 */
#include "cmd.h"

#include <errno.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_CONNECT_TIMEOUT_S 10
#define DEFAULT_STATEMENT_TIMEOUT_S 60

struct cmd {
	const char *name;
	int (*fn)(struct cmd_ctx *ctx, int argc, char **argv);
	enum cmd_role role;	/* who it connects as in the embedded cluster */
	bool may_create;	/* it may create the embedded cluster */
	const char *usage;
};

static const struct cmd commands[] = {
	{ "migrate", cmd_migrate, CMD_ROLE_OWNER, true,
	  "migrate                      apply migrations/ then sql/ (idempotent)" },
	{ "worker",  cmd_worker, CMD_ROLE_WORKER, false,
	  "worker [--name N] [--labels a,b] [--slots N] [--exit-when-idle] [--dry-run] [--config FILE]" },
	{ "submit",  cmd_submit, CMD_ROLE_SUBMITTER, false,
	  "submit FILE                  JSON or YAML pipeline spec; prints the pipeline id" },
	{ "wait",    cmd_wait, CMD_ROLE_READER, false,
	  "wait ID [--follow] [--junit FILE]  live ETA; exit 0 succeeded, 1 failed, 2 cancelled or error" },
	{ "status",  cmd_status, CMD_ROLE_READER, false,
	  "status [ID]                  pipelines, tasks, agents; why a task waits" },
	{ "cancel",  cmd_cancel, CMD_ROLE_SUBMITTER, false,
	  "cancel ID                    cancel a pipeline and kill its running tasks" },
	{ "forecast", cmd_forecast, CMD_ROLE_SUBMITTER, false,
	  "forecast ID [--record]       expected duration, interval, ETA, critical path" },
	{ "history", cmd_history, CMD_ROLE_OWNER, false,
	  "history import FILE          past runs (JSON lines) for forecasts from day one" },
	{ "cache",   cmd_cache, CMD_ROLE_OWNER, false,
	  "cache gc|stats|explain TASK|revoke   the artifact cache (docs/cache.md)" },
	{ "deps",    cmd_deps, CMD_ROLE_OWNER, false,
	  "deps scan DIR [--repo N] [--json] [--dry-run]  detect services and dependencies, store them" },
	{ "plan",    cmd_plan, CMD_ROLE_SUBMITTER, false,
	  "plan DIR [--changed PATH...] [--base REV] [--dry-run]  submit a pipeline for what a change affects" },
	{ "db",      cmd_db, CMD_ROLE_OWNER, false,
	  "db start|stop|url|psql       the embedded PostgreSQL cluster" },
	{ "import",  cmd_import, CMD_ROLE_SUBMITTER, false,
	  "import github-actions|gitlab-ci FILE... [--submit]  a CI definition as a pipeline" },
	{ "inventory", cmd_inventory, CMD_ROLE_OWNER, false,
	  "inventory import terraform|pulumi|kubernetes FILE  planned agents" },
	{ "demo",    cmd_demo, CMD_ROLE_OWNER, true,
	  "demo                         run a 35-service pipeline on three local workers" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: railyard [--db URL] [--connect-timeout S] [--statement-timeout S] "
		"COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < RY_ARRAY_SIZE(commands); i++)
		fprintf(out, "  railyard %s\n", commands[i].usage);
	fprintf(out, "  railyard --version                    the version, and the libpq linked in\n\n"
		"connection: --db URL, else $RAILYARD_DB, else libpq's environment when\n"
		"PGHOST or PGDATABASE is set, else the private cluster under $RAILYARD_HOME\n"
		"or the .railyard directory found in the current directory or a parent\n"
		"(only db start, migrate and demo create one, in ./.railyard).\n"
		"timeouts: --connect-timeout S (default %d, $RAILYARD_CONNECT_TIMEOUT) and\n"
		"--statement-timeout S (default %d, 0 for none, $RAILYARD_STATEMENT_TIMEOUT)\n"
		"for the commands' own sessions; Ctrl-C cancels a running statement.\n",
		DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_STATEMENT_TIMEOUT_S);
}

enum { OPT_DB = 1000, OPT_CONNECT_TIMEOUT, OPT_STATEMENT_TIMEOUT };

static const struct option global_options[] = {
	{ "db", required_argument, NULL, OPT_DB },
	{ "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT },
	{ "statement-timeout", required_argument, NULL, OPT_STATEMENT_TIMEOUT },
	{ NULL, 0, NULL, 0 },
};

/* Seconds (0 .. a day) from an option or the environment; where names it. */
static bool parse_timeout(const char *where, const char *s, int *out_s)
{
	long v;
	if (!ry_parse_long(s, 0, 86400, &v)) {
		cmd_error("invalid %s '%s': expected whole seconds from 0 to 86400", where, s);
		return false;
	}
	*out_s = (int)v;
	return true;
}

/*
 * Takes the global options out of argv, wherever they are ("--db URL" or
 * "--db=URL"), so the command never sees them.  False on a bad value.
 */
static bool take_global_options(struct cmd_ctx *ctx, int *argc, char **argv,
				int *connect_s, int *statement_s)
{
	int n = 0;
	for (int i = 0; i < *argc; i++) {
		const struct option *o = NULL;
		const char *value = NULL;
		for (const struct option *g = global_options; g->name && !o; g++) {
			size_t len = strlen(g->name);
			if (strncmp(argv[i], "--", 2) != 0 || strncmp(argv[i] + 2, g->name, len) != 0)
				continue;
			if (argv[i][2 + len] == '=') {
				o = g;
				value = argv[i] + 3 + len;
			} else if (argv[i][2 + len] == '\0') {
				o = g;
				if (i + 1 >= *argc) {
					cmd_error("option --%s needs a value", g->name);
					return false;
				}
				value = argv[++i];
			}
		}
		if (!o) {
			argv[n++] = argv[i];
			if (strcmp(argv[i], "--") == 0)	/* the rest is not ours */
				while (++i < *argc)
					argv[n++] = argv[i];
			continue;
		}
		if (o->val == OPT_DB)
			ctx->db_url = value;
		else if (!parse_timeout(o->val == OPT_CONNECT_TIMEOUT ? "--connect-timeout"
					: "--statement-timeout", value,
					o->val == OPT_CONNECT_TIMEOUT ? connect_s : statement_s))
			return false;
	}
	*argc = n;
	argv[n] = NULL;
	return true;
}

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/*
 * $RAILYARD_HOME, else the nearest .railyard in the current directory or a
 * parent (as git finds .git), else ./.railyard (where db start, migrate
 * and demo create one).  Sets ctx->home, ->home_found and ->looked; what
 * it allocates for them goes into *owned, for the caller to free.
 */
static void find_home(struct cmd_ctx *ctx, char *owned[2])
{
	const char *env = getenv("RAILYARD_HOME");
	char cwd[PATH_MAX];
	struct ry_buf looked = RY_BUF_INIT;

	if (env && *env) {
		ctx->home = env;
		ctx->home_found = true;
		ctx->looked = "$RAILYARD_HOME";
		return;
	}
	if (!getcwd(cwd, sizeof(cwd))) {
		ctx->home = ".railyard";
		ctx->looked = "the current directory (which cannot be named)";
		return;
	}
	size_t len = strlen(cwd);
	for (;;) {
		char *candidate = ry_asprintf("%.*s/.railyard", (int)(len == 1 ? 0 : len), cwd);
		ry_buf_printf(&looked, "%s%.*s", looked.len ? ", " : "", (int)len, cwd);
		if (is_dir(candidate)) {
			ctx->home = owned[0] = candidate;
			ctx->home_found = true;
			ry_buf_release(&looked);
			ctx->looked = ctx->home;
			return;
		}
		free(candidate);
		if (len == 1)
			break;
		while (len > 1 && cwd[len - 1] != '/')
			len--;
		if (len > 1)
			len--;	/* the slash before the last component */
	}
	ctx->home = owned[0] = ry_asprintf("%s/.railyard", strcmp(cwd, "/") == 0 ? "" : cwd);
	ctx->looked = owned[1] = ry_buf_detach(&looked);
}

static int env_timeout(const char *name, int fallback, bool *ok)
{
	const char *v = getenv(name);
	int s = fallback;
	if (v && *v && !parse_timeout(name, v, &s))
		*ok = false;
	return s;
}

int main(int argc, char **argv)
{
	struct cmd_ctx ctx = { .argv0 = argv[0] };
	bool ok = true;
	int connect_s = env_timeout("RAILYARD_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT_S, &ok);
	int statement_s = env_timeout("RAILYARD_STATEMENT_TIMEOUT", DEFAULT_STATEMENT_TIMEOUT_S, &ok);

	if (!ok || !take_global_options(&ctx, &argc, argv, &connect_s, &statement_s))
		return RY_EXIT_ERROR;
	ctx.dbopt.connect_timeout_s = connect_s;
	ctx.dbopt.statement_timeout_ms = statement_s * 1000;

	if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? RY_EXIT_ERROR : RY_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		/* libpq is linked in: its security updates come with a rebuild,
		 * so say which one this binary carries. */
		int pq = PQlibVersion();
		printf("railyard %s\nlibpq %d.%d (linked in)\n", RY_VERSION, pq / 10000, pq % 10000);
		return RY_EXIT_OK;
	}
	for (size_t i = 0; i < RY_ARRAY_SIZE(commands); i++) {
		if (strcmp(argv[1], commands[i].name) != 0)
			continue;
		char *owned[2] = { NULL, NULL };
		find_home(&ctx, owned);
		ctx.role = commands[i].role;
		ctx.may_create = commands[i].may_create;
		/* Each command parses its own options from the start. */
		optind = 0;
		int rc = commands[i].fn(&ctx, argc - 1, argv + 1);
		free(owned[0]);
		free(owned[1]);
		return rc;
	}
	cmd_error("unknown command '%s'", argv[1]);
	usage(stderr);
	return RY_EXIT_ERROR;
}
