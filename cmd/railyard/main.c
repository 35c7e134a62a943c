/*
 * railyard: one binary, git-style command table.
 */
#include "cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cmd {
	const char *name;
	int (*fn)(struct cmd_ctx *ctx, int argc, char **argv);
	const char *usage;
};

static const struct cmd commands[] = {
	{ "migrate", cmd_migrate, "migrate                      apply migrations/ then sql/ (idempotent)" },
	{ "worker",  cmd_worker,  "worker [--name N] [--labels a,b] [--slots N] [--exit-when-idle] [--dry-run] [--config FILE]" },
	{ "submit",  cmd_submit,  "submit FILE                  JSON or YAML pipeline spec; prints the pipeline id" },
	{ "wait",    cmd_wait,    "wait ID [--follow]           exit 0 succeeded, 1 failed, 2 cancelled or error" },
	{ "status",  cmd_status,  "status [ID]                  pipelines, tasks, agents; why a task waits" },
	{ "cancel",  cmd_cancel,  "cancel ID                    cancel a pipeline and kill its running tasks" },
	{ "forecast", cmd_forecast, "forecast ID [--record]      expected duration, interval, ETA, critical path" },
	{ "history", cmd_history, "history import FILE          past runs (JSON lines) for forecasts from day one" },
	{ "db",      cmd_db,      "db start|stop|url|psql       the embedded PostgreSQL cluster" },
	{ "demo",    cmd_demo,    "demo                         run a 30-service pipeline on three local workers" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: railyard [--db URL] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < RY_ARRAY_SIZE(commands); i++)
		fprintf(out, "  railyard %s\n", commands[i].usage);
	fprintf(out, "  railyard --version\n\n"
		"connection: --db URL, else $RAILYARD_DB, else libpq's environment when\n"
		"PGHOST or PGDATABASE is set, else a private cluster under $RAILYARD_HOME\n"
		"(default ./.railyard), created and started on demand.\n");
}

int main(int argc, char **argv)
{
	struct cmd_ctx ctx = { .argv0 = argv[0] };
	int n = 0;

	/* --db may appear anywhere; take it out so commands never see it. */
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
			ctx.db_url = argv[++i];
			continue;
		}
		if (strncmp(argv[i], "--db=", 5) == 0) {
			ctx.db_url = argv[i] + 5;
			continue;
		}
		argv[n++] = argv[i];
	}
	argc = n;
	argv[argc] = NULL;
	ctx.home = getenv("RAILYARD_HOME");
	if (!ctx.home || !*ctx.home)
		ctx.home = ".railyard";

	if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? RY_EXIT_ERROR : RY_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("railyard %s\n", RY_VERSION);
		return RY_EXIT_OK;
	}
	for (size_t i = 0; i < RY_ARRAY_SIZE(commands); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(&ctx, argc - 1, argv + 1);
	fprintf(stderr, "error: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return RY_EXIT_ERROR;
}
