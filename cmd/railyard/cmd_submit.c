/*
 * railyard submit FILE: parses and validates a pipeline spec (pkg/spec),
 * then inserts the pipeline, all its tasks and all its edges in one
 * transaction (submit_spec.c, shared with railyard plan) — three INSERTs
 * whatever the pipeline's size — and prints
 * the new pipeline's id, alone, on stdout (ID=$(railyard submit x.yaml)).
 * The database validates the whole graph again at COMMIT; what it says is
 * printed as "error: FILE: message" and nothing is left behind.
 *
 * Exit 0 submitted; 1 the spec (or the database's verdict on it) is bad;
 * 2 usage, connection or environment errors.
 */
#include "cmd.h"
#include "spec/spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
	fprintf(out, "usage: railyard submit [--check] FILE\n"
		"  FILE      a YAML or JSON pipeline spec (docs/spec.md); - reads stdin\n"
		"  --check   only validate the spec; touch no database\n");
}

int cmd_submit(struct cmd_ctx *ctx, int argc, char **argv)
{
	const char *path = NULL;
	bool check_only = false;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--check") == 0) {
			check_only = true;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return RY_EXIT_OK;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "error: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return RY_EXIT_ERROR;
		} else if (path) {
			fprintf(stderr, "error: submit takes one FILE, got '%s' and '%s'\n", path, argv[i]);
			return RY_EXIT_ERROR;
		} else {
			path = argv[i];
		}
	}
	if (!path) {
		usage(stderr);
		return RY_EXIT_ERROR;
	}

	struct ry_strlist errors = { 0 };
	struct ry_spec *spec = ry_spec_parse_file(path, &errors);
	for (size_t i = 0; i < errors.n; i++)
		fprintf(stderr, "error: %s\n", errors.items[i]);
	ry_strlist_release(&errors);
	if (!spec)
		return RY_EXIT_FAIL;
	if (check_only) {
		ry_spec_free(spec);
		return RY_EXIT_OK;
	}

	int rc = RY_EXIT_ERROR;
	struct ry_db *db = cmd_connect(ctx, "cli:submit");
	if (db) {
		char *id = NULL;
		rc = cmd_submit_spec(db, spec, &id);
		if (rc == RY_EXIT_OK)
			printf("%s\n", id);
		free(id);
		ry_db_close(db);
	}
	ry_spec_free(spec);
	return rc;
}
