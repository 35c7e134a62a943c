/*
 * Choosing the database, as PRODUCT.md orders it.
 */
#include "cmd.h"
#include "embed/embed.h"
#include "sqlfiles.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
 * whenever the marker under home does not name this binary's SQL.  This
 * also covers processes that raced the one that created the cluster (the
 * migration's advisory lock makes them wait, then find nothing to do).
 */
static bool embedded_schema_current(const struct cmd_ctx *ctx, const char *conninfo, char **err)
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
		struct ry_db *db = ry_db_connect(conninfo, "migrate", err);
		ok = db && cmd_apply_migrations(db, err);
		ry_db_close(db);
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
	if (!embedded_schema_current(ctx, conninfo, err)) {
		free(conninfo);
		return NULL;
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
