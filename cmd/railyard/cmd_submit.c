/*
 * railyard submit FILE: parses and validates a pipeline spec (pkg/spec),
 * then inserts the pipeline, all its tasks and all its edges in one
 * statement — one round trip whatever the pipeline's size — and prints
 * the new pipeline's id, alone, on stdout (ID=$(railyard submit x.yaml)).
 * The database checks the whole graph again before it stores the tasks;
 * what it says is printed as "railyard: error: FILE: message" and nothing
 * is left behind.
 *
 * Exit 0 submitted; 1 the spec (or the database's verdict on it) is bad;
 * 2 usage, connection or environment errors.
 */
#include "cmd.h"
#include "spec/spec.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The whole submission is one call in one round trip: submit_pipeline
 * (sql/10_submit.sql) inserts the pipeline, then its tasks and edges from
 * the spec's JSON, checked and ranked before they are stored.  Sent alone,
 * the statement runs in a transaction of its own that commits when it
 * ends: an error anywhere, COMMIT included, leaves nothing behind.
 */
static const char submit_sql[] =
	"SELECT railyard.submit_pipeline($1, $2, $3::integer, $4, $5::text[], $6, $7::jsonb, $8::jsonb)";

/*
 * Did the data cause this error (exit 1), rather than the connection or
 * the environment (exit 2)?  Data exceptions, integrity violations, the
 * validation trigger's RAISEs, and "cycle" (invalid_object_definition).
 */
static bool is_input_error(const char *sqlstate)
{
	return strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0 ||
	       strncmp(sqlstate, "P0", 2) == 0 || strcmp(sqlstate, "42P17") == 0 ||
	       strcmp(sqlstate, "55000") == 0;
}

/*
 * Inserts spec and commits, in one statement.  On success *id is the
 * pipeline id (caller frees).  On failure returns the exit code and
 * prints the error.
 */
static int insert_spec(struct ry_db *db, const struct ry_spec *spec, char **id)
{
	char *err = NULL, *priority = ry_asprintf("%d", spec->priority);
	char *paths = spec->has_changed_paths ? ry_strlist_to_pg_array(&spec->changed_paths) : NULL;
	char *tasks = ry_spec_tasks_json(spec), *edges = ry_spec_edges_json(spec);
	const char *params[] = { spec->name, spec->team, priority, spec->revision, paths,
				 spec->origin, tasks, edges };
	int rc = RY_EXIT_OK;

	*id = NULL;
	struct ry_res *r = ry_db_query(db, submit_sql, 8, params, &err);
	if (r) {
		*id = ry_strdup(ry_res_get(r, 0, 0));
		ry_res_free(r);
		goto out;
	}
	const char *state = ry_db_last_sqlstate(db);
	bool input = is_input_error(state);
	bool lost = state[0] == '\0' || strncmp(state, "08", 2) == 0;
	rc = input ? RY_EXIT_FAIL : RY_EXIT_ERROR;
	if (lost)
		cmd_error("%s: connection lost while submitting: the pipeline may or may not have "
			  "been submitted (see railyard status): %s", spec->source, err);
	else if (input)
		cmd_error("%s: %s", spec->source, err);
	else
		cmd_error("%s: cannot submit: %s", spec->source, err);
	free(err);
out:
	free(priority);
	free(paths);
	free(tasks);
	free(edges);
	return rc;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: railyard submit [--check] FILE\n"
		"  FILE      a YAML or JSON pipeline spec (docs/spec.md); - reads stdin\n"
		"  --check   only validate the spec; touch no database\n");
}

int cmd_submit(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "check", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool check_only = false;
	int c;

	while ((c = cmd_getopt(argc, argv, "h", longopts)) != -1) {
		switch (c) {
		case 'c':
			check_only = true;
			break;
		case 'h':
			usage(stdout);
			return RY_EXIT_OK;
		default:
			usage(stderr);
			return RY_EXIT_ERROR;
		}
	}
	if (argc - optind != 1) {
		if (argc - optind > 1)
			cmd_error("submit takes one FILE, got '%s' and '%s'", argv[optind],
				  argv[optind + 1]);
		usage(stderr);
		return RY_EXIT_ERROR;
	}
	const char *path = argv[optind];

	struct ry_strlist errors = { 0 };
	struct ry_spec *spec = ry_spec_parse_file(path, &errors);
	for (size_t i = 0; i < errors.n; i++)
		cmd_error("%s", errors.items[i]);
	ry_strlist_release(&errors);
	if (!spec)
		return RY_EXIT_FAIL;
	if (check_only) {
		ry_spec_free(spec);
		return RY_EXIT_OK;
	}

	int rc = cmd_submit_spec(ctx, spec, "cli:submit");
	ry_spec_free(spec);
	return rc;
}

/* Connects, inserts spec in one transaction, prints the id (submit, import --submit). */
int cmd_submit_spec(struct cmd_ctx *ctx, const struct ry_spec *spec, const char *actor)
{
	int rc = RY_EXIT_ERROR;
	struct ry_db *db = cmd_connect(ctx, actor);
	if (db) {
		char *id = NULL;
		rc = insert_spec(db, spec, &id);
		if (rc == RY_EXIT_OK)
			printf("%s\n", id);
		free(id);
		ry_db_close(db);
	}
	return rc;
}
