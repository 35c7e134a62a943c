/*
 * railyard migrate: applies migrations/ once each, in order, then re-applies
 * sql/ (functions, triggers, views: all CREATE OR REPLACE).  A session
 * advisory lock, held only while migrating, makes concurrent runs safe.
 */
#include "cmd.h"
#include "sqlfiles.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIGRATE_LOCK_KEY "7418880001"	/* arbitrary, railyard's own */

static bool is_migration(const struct ry_sql_file *f)
{
	return strncmp(f->name, "migrations/", 11) == 0;
}

static bool apply_locked(struct ry_db *db, char **err)
{
	if (!ry_db_exec_script(db,
		"CREATE SCHEMA IF NOT EXISTS railyard;"
		"CREATE TABLE IF NOT EXISTS railyard.schema_migrations ("
		"  version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())", err))
		return false;

	for (size_t i = 0; i < ry_sql_nfiles; i++) {
		const struct ry_sql_file *f = &ry_sql_files[i];
		if (!is_migration(f))
			continue;
		const char *version = f->name + 11;
		const char *params[] = { version };
		struct ry_res *r = ry_db_query(db,
			"SELECT 1 FROM railyard.schema_migrations WHERE version = $1", 1, params, err);
		if (!r)
			return false;
		bool done = ry_res_rows(r) > 0;
		ry_res_free(r);
		if (done)
			continue;
		char *e = NULL;
		if (!ry_db_exec(db, "BEGIN", 0, NULL, err))
			return false;
		if (!ry_db_exec_script(db, f->text, &e) ||
		    !ry_db_exec(db, "INSERT INTO railyard.schema_migrations (version) VALUES ($1)",
				1, params, &e)) {
			*err = ry_asprintf("%s: %s", f->name, e);
			free(e);
			if (!ry_db_exec(db, "ROLLBACK", 0, NULL, &e))
				free(e);
			return false;
		}
		if (!ry_db_exec(db, "COMMIT", 0, NULL, err))
			return false;
		ry_info("applied %s", f->name);
	}

	/* sql/ as one transaction: either every definition changes or none. */
	if (!ry_db_exec(db, "BEGIN", 0, NULL, err))
		return false;
	for (size_t i = 0; i < ry_sql_nfiles; i++) {
		const struct ry_sql_file *f = &ry_sql_files[i];
		char *e = NULL;
		if (is_migration(f))
			continue;
		if (!ry_db_exec_script(db, f->text, &e)) {
			*err = ry_asprintf("%s: %s", f->name, e);
			free(e);
			if (!ry_db_exec(db, "ROLLBACK", 0, NULL, &e))
				free(e);
			return false;
		}
	}
	return ry_db_exec(db, "COMMIT", 0, NULL, err);
}

bool cmd_apply_migrations(struct ry_db *db, char **err)
{
	char *e = NULL;
	if (!ry_db_exec(db, "SET client_min_messages = warning", 0, NULL, err) ||
	    !ry_db_exec(db, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", 0, NULL, err))
		return false;
	bool ok = apply_locked(db, err);
	if (!ry_db_exec(db, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", 0, NULL, &e))
		free(e);	/* the lock ends with the session anyway */
	return ok;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: railyard migrate\n"
		"  applies migrations/ (once each) then sql/ to the database; idempotent and\n"
		"  safe to run concurrently; creates the embedded cluster when none exists\n");
}

int cmd_migrate(struct cmd_ctx *ctx, int argc, char **argv)
{
	int rc = cmd_only_help(argc, argv, usage);

	if (rc >= 0)
		return rc;
	if (optind < argc) {
		cmd_error("migrate takes no arguments, got '%s'", argv[optind]);
		return RY_EXIT_ERROR;
	}
	/* A migration may take as long as it takes. */
	ctx->dbopt.statement_timeout_ms = 0;
	struct ry_db *db = cmd_connect(ctx, "migrate");
	if (!db)
		return RY_EXIT_ERROR;
	char *err = NULL;
	rc = RY_EXIT_OK;
	if (!cmd_apply_migrations(db, &err)) {
		cmd_error("cannot migrate: %s", err);
		free(err);
		rc = RY_EXIT_FAIL;
	}
	ry_db_close(db);
	return rc;
}
