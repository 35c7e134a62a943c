/*
 * Choosing the database, as PRODUCT.md orders it, and the role to use in it.
 */
#include "cmd.h"
#include "embed/embed.h"
#include "sqlfiles.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The embedded cluster's login roles for the group roles
 * (migrations/0002_hardening.sql makes those), created once the schema is
 * there.  Its peer map lets the OS user running railyard use each of them
 * (pkg/embed).  Concurrent first starts may race: a role made meanwhile is
 * fine.
 */
static const char embedded_logins_sql[] =
	"DO $$ DECLARE r text; g text; BEGIN "
	"FOR r, g IN VALUES ('" RY_EMBED_WORKER "', 'railyard_worker'), "
	"  ('" RY_EMBED_SUBMITTER "', 'railyard_submitter'), "
	"  ('" RY_EMBED_READER "', 'railyard_reader') LOOP "
	"  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN "
	"    BEGIN EXECUTE format('CREATE ROLE %I LOGIN', r); "
	"    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END; "
	"  END IF; "
	"  EXECUTE format('GRANT %I TO %I', g, r); "
	"END LOOP; END $$";

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

bool cmd_uses_embedded(const struct cmd_ctx *ctx)
{
	return !ctx->db_url && !env_nonempty("RAILYARD_DB") && !env_nonempty("PGHOST") &&
	       !env_nonempty("PGDATABASE");
}

/* FNV-1a over every SQL file compiled in: names the schema this binary has. */
static char *schema_fingerprint(void)
{
	struct ry_buf all = RY_BUF_INIT;
	for (size_t i = 0; i < ry_sql_nfiles; i++)
		ry_buf_puts(&all, ry_sql_files[i].text);
	uint64_t h = ry_fnv1a64(all.data, all.len);
	ry_buf_release(&all);
	return ry_asprintf("%016llx", (unsigned long long)h);
}

/*
 * The embedded cluster is ours, so its schema follows the binary: migrate
 * (and make the login roles) whenever the marker under home does not name
 * this binary's SQL.  This also covers processes that raced the one that
 * created the cluster (the migration's advisory lock makes them wait, then
 * find nothing to do).
 */
static bool embedded_schema_current(const struct cmd_ctx *ctx, char **err)
{
	char *want = schema_fingerprint();
	char *marker = ry_asprintf("%s/schema.applied", ctx->home);
	char have[64] = "";
	bool ok = true;
	FILE *f = fopen(marker, "r");

	if (f) {
		if (!fgets(have, sizeof(have), f))
			have[0] = '\0';
		fclose(f);
		have[strcspn(have, "\n")] = '\0';
	}
	if (strcmp(have, want) != 0) {
		char *conninfo = ry_embed_conninfo(ctx->home, RY_EMBED_OWNER);
		struct ry_db_options opt = ctx->dbopt;
		opt.actor = "migrate";
		opt.statement_timeout_ms = 0;
		opt.cancel_on_interrupt = false;
		struct ry_db *db = ry_db_connect(conninfo, &opt, err);
		ok = db && cmd_apply_migrations(db, err) &&
		     ry_db_exec(db, embedded_logins_sql, 0, NULL, err);
		ry_db_close(db);
		free(conninfo);
		char *tmp = ry_asprintf("%s.tmp", marker);
		if (ok && (f = fopen(tmp, "w")) != NULL) {
			fprintf(f, "%s\n", want);
			fclose(f);
			(void)rename(tmp, marker);
		}
		free(tmp);
	}
	free(want);
	free(marker);
	return ok;
}

static const char *embedded_login(enum cmd_role role)
{
	switch (role) {
	case CMD_ROLE_WORKER:
		return RY_EMBED_WORKER;
	case CMD_ROLE_SUBMITTER:
		return RY_EMBED_SUBMITTER;
	case CMD_ROLE_READER:
		return RY_EMBED_READER;
	case CMD_ROLE_OWNER:
		break;
	}
	return RY_EMBED_OWNER;
}

char *cmd_conninfo_as(const struct cmd_ctx *ctx, enum cmd_role role, char **err)
{
	if (ctx->db_url)
		return ry_strdup(ctx->db_url);
	if (env_nonempty("RAILYARD_DB"))
		return ry_strdup(env_nonempty("RAILYARD_DB"));
	if (!cmd_uses_embedded(ctx))
		return ry_strdup("");	/* libpq reads PGHOST, PGDATABASE, ... */

	if (!ctx->home_found && !ctx->may_create) {
		*err = ry_asprintf("no database: no .railyard directory in %s, and none of --db, "
				   "RAILYARD_DB, PGHOST, PGDATABASE or RAILYARD_HOME is set; "
				   "`railyard db start` creates one in ./.railyard", ctx->looked);
		return NULL;
	}
	bool created = false;
	if (!ry_embed_start(ctx->home, ctx->may_create, &created, err) ||
	    !embedded_schema_current(ctx, err))
		return NULL;
	return ry_embed_conninfo(ctx->home, embedded_login(role));
}

char *cmd_conninfo(const struct cmd_ctx *ctx, char **err)
{
	return cmd_conninfo_as(ctx, ctx->role, err);
}

struct ry_db *cmd_connect(const struct cmd_ctx *ctx, const char *actor)
{
	char *err = NULL;
	char *conninfo = cmd_conninfo(ctx, &err);
	if (!conninfo) {
		cmd_error("%s", err);
		free(err);
		return NULL;
	}
	struct ry_db_options opt = ctx->dbopt;
	opt.actor = actor;
	opt.cancel_on_interrupt = true;
	struct ry_db *db = ry_db_connect(conninfo, &opt, &err);
	free(conninfo);
	if (!db) {
		cmd_error("cannot connect to the database: %s", err);
		free(err);
	}
	return db;
}
