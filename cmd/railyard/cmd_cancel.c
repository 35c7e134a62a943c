/*
 * railyard cancel ID: cancels a pipeline through railyard.cancel_pipeline —
 * its unfinished tasks become cancelled and workers kill the running ones.
 * A pipeline that already finished keeps its state, which is printed.
 * Exit 0 when the pipeline is (now) final; 2 for a bad or unknown id or a
 * database error.
 */
#include "cmd.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
	fprintf(out, "usage: railyard cancel ID\n"
		"  cancels pipeline ID: its unfinished tasks are cancelled, running ones killed\n");
}

int cmd_cancel(struct cmd_ctx *ctx, int argc, char **argv)
{
	long id;
	int rc = cmd_only_help(argc, argv, usage);

	if (rc >= 0)
		return rc;
	if (argc - optind != 1) {
		usage(stderr);
		return RY_EXIT_ERROR;
	}
	if (!cmd_parse_id(argv[optind], &id))
		return RY_EXIT_ERROR;
	struct ry_db *db = cmd_connect(ctx, "cli:cancel");
	if (!db)
		return RY_EXIT_ERROR;

	char *err = NULL, *idtext = ry_asprintf("%ld", id);
	const char *params[] = { idtext };
	rc = RY_EXIT_OK;
	/* Reads the state first: a pipeline already final is only reported. */
	struct ry_res *r = ry_db_query(db,
		"SELECT state, railyard.cancel_pipeline(id) FROM railyard.pipelines "
		"WHERE id = $1::bigint", 1, params, &err);
	if (!r) {
		cmd_error("cannot cancel pipeline %ld: %s", id, err);
		free(err);
		rc = RY_EXIT_ERROR;
	} else if (ry_res_rows(r) == 0) {
		cmd_error("pipeline %ld does not exist", id);
		rc = RY_EXIT_ERROR;
	} else {
		const char *before = ry_res_get(r, 0, 0), *after = ry_res_get(r, 0, 1);
		if (strcmp(before, "queued") == 0 || strcmp(before, "running") == 0)
			printf("pipeline %ld: %s\n", id, after);
		else if (strcmp(after, "cancelled") == 0)
			printf("pipeline %ld: cancelled (already)\n", id);
		else
			printf("pipeline %ld: %s (already finished)\n", id, after);
	}
	ry_res_free(r);
	free(idtext);
	ry_db_close(db);
	return rc;
}
