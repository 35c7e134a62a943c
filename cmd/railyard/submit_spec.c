/*
 * Inserting a validated pipeline spec (pkg/spec) in one transaction: what
 * `railyard submit` and `railyard plan` share.  Three INSERTs whatever the
 * pipeline's size; the database validates the whole graph again at
 * COMMIT, and what it says is printed as "error: SOURCE: message" with
 * nothing left behind.
 */
#include "cmd.h"
#include "spec/spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char insert_pipeline_sql[] =
	"INSERT INTO railyard.pipelines (name, team, priority, revision, changed_paths) "
	"VALUES ($1, $2, $3::integer, $4, $5::text[]) RETURNING id";

/* One round trip for every task: the spec's JSON, one row per element. */
static const char insert_tasks_sql[] =
	"INSERT INTO railyard.tasks (pipeline_id, name, service, kind, command, env, requires, "
	"  os, arch, cpu, mem_mb, pool, priority, version, cacheable, inputs, run_if, "
	"  only_if_changed, max_attempts, timeout_s) "
	"SELECT $1::bigint, x.name, x.service, x.kind, x.command, x.env, x.requires, "
	"  x.os, x.arch, x.cpu, x.mem_mb, x.pool, x.priority, x.version, x.cacheable, x.inputs, "
	"  x.run_if, x.only_if_changed, x.max_attempts, x.timeout_s "
	"FROM jsonb_to_recordset($2::jsonb) AS x(name text, service text, kind text, "
	"  command text, env jsonb, requires text[], os text, arch text, cpu integer, "
	"  mem_mb integer, pool text, priority integer, version text, cacheable boolean, "
	"  inputs text[], run_if railyard.run_if, only_if_changed text, max_attempts integer, "
	"  timeout_s integer)";

static const char insert_edges_sql[] =
	"INSERT INTO railyard.edges (pipeline_id, upstream, downstream, kind) "
	"SELECT $1::bigint, x.upstream, x.downstream, x.kind "
	"FROM jsonb_to_recordset($2::jsonb) "
	"  AS x(upstream text, downstream text, kind railyard.edge_kind)";

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

static void rollback(struct ry_db *db)
{
	char *err = NULL;
	if (!ry_db_exec(db, "ROLLBACK", 0, NULL, &err))
		free(err);	/* the connection is gone: the server rolls back */
}

int cmd_submit_spec(struct ry_db *db, const struct ry_spec *spec, char **id)
{
	char *err = NULL, *priority = ry_asprintf("%d", spec->priority);
	char *paths = spec->has_changed_paths ? ry_strlist_to_pg_array(&spec->changed_paths) : NULL;
	char *tasks = ry_spec_tasks_json(spec), *edges = ry_spec_edges_json(spec);
	const char *step = "BEGIN";
	struct ry_res *r = NULL;
	int rc = RY_EXIT_OK;
	bool began = false;

	*id = NULL;
	if (!ry_db_exec(db, "BEGIN", 0, NULL, &err))
		goto fail;
	began = true;
	step = "INSERT INTO railyard.pipelines";
	const char *pparams[] = { spec->name, spec->team, priority, spec->revision, paths };
	r = ry_db_query(db, insert_pipeline_sql, 5, pparams, &err);
	if (!r)
		goto fail;
	*id = ry_strdup(ry_res_get(r, 0, 0));
	ry_res_free(r);

	step = "INSERT INTO railyard.tasks";
	const char *tparams[] = { *id, tasks };
	if (!ry_db_exec(db, insert_tasks_sql, 2, tparams, &err))
		goto fail;
	if (spec->nedges > 0) {
		step = "INSERT INTO railyard.edges";
		const char *eparams[] = { *id, edges };
		if (!ry_db_exec(db, insert_edges_sql, 2, eparams, &err))
			goto fail;
	}
	/* The graph is validated here, by the deferred trigger. */
	step = "COMMIT";
	began = false;
	if (!ry_db_exec(db, "COMMIT", 0, NULL, &err))
		goto fail;
	goto out;

fail: {
		const char *state = ry_db_last_sqlstate(db);
		bool input = is_input_error(state);
		bool lost = state[0] == '\0' || strncmp(state, "08", 2) == 0;
		rc = input ? RY_EXIT_FAIL : RY_EXIT_ERROR;
		if (began)
			rollback(db);
		if (lost && strcmp(step, "COMMIT") == 0)
			fprintf(stderr, "error: %s: connection lost during COMMIT: pipeline %s may or "
				"may not have been submitted (see railyard status): %s\n",
				spec->source, *id, err);
		else if (input)
			fprintf(stderr, "error: %s: %s\n", spec->source, err);
		else
			fprintf(stderr, "error: %s: cannot submit (%s): %s\n", spec->source, step, err);
		free(err);
		free(*id);
		*id = NULL;
	}
out:
	free(priority);
	free(paths);
	free(tasks);
	free(edges);
	return rc;
}
