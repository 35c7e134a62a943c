/*
 * Choosing the database, as PRODUCT.md orders it.
 */
#include "cmd.h"
#include "embed/embed.h"

#include <stdio.h>
#include <stdlib.h>

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

char *cmd_conninfo(const struct cmd_ctx *ctx, char **err)
{
	if (ctx->db_url)
		return ry_strdup(ctx->db_url);
	if (env_nonempty("RAILYARD_DB"))
		return ry_strdup(env_nonempty("RAILYARD_DB"));
	if (!cmd_uses_embedded(ctx))
		return ry_strdup("");	/* libpq reads PGHOST, PGDATABASE, ... */

	char *conninfo = NULL;
	bool created = false;
	if (!ry_embed_start(ctx->home, &conninfo, &created, err))
		return NULL;
	if (created) {
		/* A cluster we just made is ours to prepare: apply the schema. */
		struct ry_db *db = ry_db_connect(conninfo, "migrate", err);
		if (!db) {
			free(conninfo);
			return NULL;
		}
		bool ok = cmd_apply_migrations(db, err);
		ry_db_close(db);
		if (!ok) {
			free(conninfo);
			return NULL;
		}
	}
	return conninfo;
}

struct ry_db *cmd_connect(const struct cmd_ctx *ctx, const char *actor)
{
	char *err = NULL;
	char *conninfo = cmd_conninfo(ctx, &err);
	if (!conninfo) {
		fprintf(stderr, "error: cannot start the embedded database: %s\n", err);
		free(err);
		return NULL;
	}
	struct ry_db *db = ry_db_connect(conninfo, actor, &err);
	free(conninfo);
	if (!db) {
		fprintf(stderr, "error: cannot connect to the database: %s\n", err);
		free(err);
	}
	return db;
}
