/*
 * What `railyard deps scan` and `railyard plan` share: the repository's
 * name, and the declarations people inserted in the database (explicit
 * rows not written from railyard.yaml), which override what a scan finds.
 */
#include "cmd_deps.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What railyard.services.repository accepts (migrations/0005_deps.sql). */
static bool repo_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || (!first && strchr(".@+=:/-", c));
}

char *cmd_deps_repo_name(const char *dir, const char *given, char **err)
{
	if (given) {
		size_t n = strlen(given);
		bool ok = n > 0 && n <= 200;
		for (size_t i = 0; ok && i < n; i++)
			ok = repo_char(given[i], i == 0);
		if (!ok) {
			*err = ry_asprintf("--repo \"%s\": use letters, digits and _ . @ + = : / - "
					   "(at most 200, starting with a letter, digit or _)", given);
			return NULL;
		}
		return ry_strdup(given);
	}
	char *real = realpath(dir, NULL);
	if (!real) {
		*err = ry_asprintf("cannot use %s: %s", dir, strerror(errno));
		return NULL;
	}
	const char *base = strrchr(real, '/');
	base = base && base[1] ? base + 1 : "root";
	char *name = ry_strndup(base, 200);
	for (char *p = name; *p; p++)
		if (!repo_char(*p, p == name))
			*p = p == name ? '_' : '-';
	free(real);
	return name;
}

static int col(const struct ry_res *r, const char *name)
{
	for (int i = 0; i < ry_res_cols(r); i++)
		if (strcmp(ry_res_colname(r, i), name) == 0)
			return i;
	return -1;
}

static char *opt_str(const struct ry_res *r, int row, int c)
{
	return c < 0 || ry_res_isnull(r, row, c) ? NULL : ry_strdup(ry_res_get(r, row, c));
}

static const char decl_services_sql[] =
	"SELECT name, root, ecosystem, team, excluded FROM railyard.services "
	" WHERE repository = $1 AND origin = 'explicit' "
	"   AND detector IS DISTINCT FROM 'railyard.yaml' ORDER BY name";

static const char decl_edges_sql[] =
	"SELECT from_service, to_service, kind::text AS kind, suppressed FROM railyard.service_deps "
	" WHERE repository = $1 AND origin = 'explicit' "
	"   AND detector IS DISTINCT FROM 'railyard.yaml' ORDER BY 1, 2, 3";

bool cmd_deps_load_decls(struct ry_db *db, const char *repo, struct ry_deps_config *extra,
			 char **err)
{
	const char *params[] = { repo };
	memset(extra, 0, sizeof(*extra));
	extra->source = ry_strdup("database");
	struct ry_res *r = ry_db_query(db, decl_services_sql, 1, params, err);
	if (!r)
		return false;
	int n = ry_res_rows(r);
	int c_name = col(r, "name"), c_root = col(r, "root"), c_eco = col(r, "ecosystem");
	int c_team = col(r, "team"), c_excl = col(r, "excluded");
	extra->services = ry_calloc((size_t)n + 1, sizeof(*extra->services));
	for (int i = 0; i < n; i++) {
		struct ry_deps_decl_service *d = &extra->services[extra->nservices++];
		d->name = opt_str(r, i, c_name);
		d->root = opt_str(r, i, c_root);
		d->ecosystem = opt_str(r, i, c_eco);
		d->team = opt_str(r, i, c_team);
		d->exclude = strcmp(ry_res_get(r, i, c_excl), "t") == 0;
	}
	ry_res_free(r);

	r = ry_db_query(db, decl_edges_sql, 1, params, err);
	if (!r)
		return false;
	n = ry_res_rows(r);
	int c_from = col(r, "from_service"), c_to = col(r, "to_service"), c_kind = col(r, "kind");
	int c_supp = col(r, "suppressed");
	extra->edges = ry_calloc((size_t)n + 1, sizeof(*extra->edges));
	for (int i = 0; i < n; i++) {
		struct ry_deps_decl_edge *d = &extra->edges[extra->nedges];
		if (!ry_deps_kind_parse(ry_res_get(r, i, c_kind), &d->kind))
			continue;
		d->from = opt_str(r, i, c_from);
		d->to = opt_str(r, i, c_to);
		d->suppress = strcmp(ry_res_get(r, i, c_supp), "t") == 0;
		extra->nedges++;
	}
	ry_res_free(r);
	return true;
}

void cmd_deps_print_warnings(const struct ry_deps_graph *g, size_t max)
{
	for (size_t i = 0; i < g->warnings.n && i < max; i++)
		fprintf(stderr, "railyard: warning: %s\n", g->warnings.items[i]);
	if (g->warnings.n > max)
		fprintf(stderr, "railyard: warning: ... and %zu more (railyard deps scan lists them)\n",
			g->warnings.n - max);
}
