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

/* ---- reusing a stored scan ---------------------------------------------------------- */

static const char last_scan_sql[] =
	"SELECT revision FROM railyard.dep_scans WHERE repository = $1 "
	"   AND railyard_version = $2 AND id = (SELECT max(id) FROM railyard.dep_scans "
	"                                        WHERE repository = $1)";

char *cmd_deps_stored_revision(struct ry_db *db, const char *repo)
{
	const char *params[] = { repo, RY_VERSION };
	char *err = NULL;
	struct ry_res *r = ry_db_query(db, last_scan_sql, 2, params, &err);
	char *rev = NULL;
	if (r && ry_res_rows(r) == 1 && !ry_res_isnull(r, 0, 0))
		rev = ry_strdup(ry_res_get(r, 0, 0));
	free(err);	/* no stored scan to reuse: scan */
	ry_res_free(r);
	return rev;
}

/* Whether any path in l is one a scan reads. */
static bool reads_any(const struct ry_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (ry_deps_reads(l->items[i]))
			return true;
	return false;
}

bool cmd_deps_unchanged_since(const char *dir, const char *range, bool untracked)
{
	struct ry_strlist paths = { 0 };
	char *err = NULL;
	bool same = cmd_git_diff(dir, range, &paths, &err) && !reads_any(&paths);
	if (same && untracked) {
		const char *args[] = { "ls-files", "--others", "--exclude-standard", "-z", NULL };
		struct ry_buf out = RY_BUF_INIT;
		same = cmd_git(dir, args, &out, &err);
		for (size_t i = 0; same && i < out.len;) {
			size_t n = strlen(out.data + i);
			same = !ry_deps_reads(out.data + i);
			i += n + 1;
		}
		ry_buf_release(&out);
	}
	free(err);
	ry_strlist_release(&paths);
	return same;
}

static const char stored_services_sql[] =
	"SELECT name, root, ecosystem, team, manifest, owns_root, origin::text AS origin, excluded, "
	"       detector, evidence_line, deploy_file, deploy_name "
	"  FROM railyard.services WHERE repository = $1 ORDER BY name COLLATE \"C\"";

static const char stored_edges_sql[] =
	"SELECT from_service, to_service, kind::text AS kind, origin::text AS origin, suppressed, "
	"       detector, evidence_file, evidence_line, more_evidence "
	"  FROM railyard.service_deps WHERE repository = $1";

static const char stored_paths_sql[] =
	"SELECT service, glob, regex, why, deploy, origin::text AS origin "
	"  FROM railyard.service_paths WHERE repository = $1";

static bool is_true(const struct ry_res *r, int row, int c)
{
	return c >= 0 && strcmp(ry_res_get(r, row, c), "t") == 0;
}

static const char *opt_get(const struct ry_res *r, int row, int c)
{
	return c < 0 || ry_res_isnull(r, row, c) ? NULL : ry_res_get(r, row, c);
}

bool cmd_deps_load_graph(struct ry_db *db, const char *repo, struct ry_deps_graph *g, char **err)
{
	const char *params[] = { repo };
	memset(g, 0, sizeof(*g));
	struct ry_res *r = ry_db_query(db, stored_services_sql, 1, params, err);
	if (!r)
		return false;
	enum { S_NAME, S_ROOT, S_ECO, S_TEAM, S_MANIFEST, S_OWNS, S_ORIGIN, S_EXCL, S_DET, S_LINE,
	       S_DFILE, S_DNAME, S_N };
	static const char *const scols[S_N] = { "name", "root", "ecosystem", "team", "manifest",
		"owns_root", "origin", "excluded", "detector", "evidence_line", "deploy_file",
		"deploy_name" };
	int sc[S_N];
	for (int k = 0; k < S_N; k++)
		sc[k] = col(r, scols[k]);
	for (int i = 0; i < ry_res_rows(r); i++) {
		const char *det = opt_get(r, i, sc[S_DET]);
		int line = (int)(opt_get(r, i, sc[S_LINE]) ? ry_res_get_long(r, i, sc[S_LINE]) : 0);
		bool yaml = det && !strcmp(det, "railyard.yaml");
		struct ry_deps_service s = {
			.name = (char *)ry_res_get(r, i, sc[S_NAME]),
			.root = (char *)opt_get(r, i, sc[S_ROOT]),
			.ecosystem = (char *)ry_res_get(r, i, sc[S_ECO]),
			.team = (char *)opt_get(r, i, sc[S_TEAM]),
			.manifest = (char *)opt_get(r, i, sc[S_MANIFEST]),
			.owns_root = is_true(r, i, sc[S_OWNS]),
			.is_explicit = !strcmp(ry_res_get(r, i, sc[S_ORIGIN]), "explicit"),
			.excluded = is_true(r, i, sc[S_EXCL]),
			.detector = (char *)(det ? det : "database"),
			.line = yaml ? 0 : line,
			.decl_line = yaml ? line : 0,
			.deploy_file = (char *)opt_get(r, i, sc[S_DFILE]),
			.deploy_name = (char *)opt_get(r, i, sc[S_DNAME]),
		};
		ry_deps_graph_add_service(g, &s);
	}
	ry_res_free(r);

	r = ry_db_query(db, stored_edges_sql, 1, params, err);
	if (!r)
		return false;
	enum { E_FROM, E_TO, E_KIND, E_ORIGIN, E_SUPP, E_DET, E_FILE, E_LINE, E_MORE, E_N };
	static const char *const ecols[E_N] = { "from_service", "to_service", "kind", "origin",
		"suppressed", "detector", "evidence_file", "evidence_line", "more_evidence" };
	int ec[E_N];
	for (int k = 0; k < E_N; k++)
		ec[k] = col(r, ecols[k]);
	for (int i = 0; i < ry_res_rows(r); i++) {
		struct ry_deps_edge e = {
			.is_explicit = !strcmp(ry_res_get(r, i, ec[E_ORIGIN]), "explicit"),
			.suppressed = is_true(r, i, ec[E_SUPP]),
			.detector = (char *)(opt_get(r, i, ec[E_DET]) ? opt_get(r, i, ec[E_DET]) : "database"),
			.file = (char *)opt_get(r, i, ec[E_FILE]),
			.line = (int)(opt_get(r, i, ec[E_LINE]) ? ry_res_get_long(r, i, ec[E_LINE]) : 0),
		};
		if (!ry_deps_kind_parse(ry_res_get(r, i, ec[E_KIND]), &e.kind))
			continue;
		if (!ry_db_parse_text_array(ry_res_get(r, i, ec[E_MORE]), &e.more))
			ry_strlist_release(&e.more);
		(void)ry_deps_graph_add_edge(g, ry_res_get(r, i, ec[E_FROM]), ry_res_get(r, i, ec[E_TO]),
					     &e);
		ry_strlist_release(&e.more);
	}
	ry_res_free(r);

	r = ry_db_query(db, stored_paths_sql, 1, params, err);
	if (!r)
		return false;
	int pc_service = col(r, "service"), pc_glob = col(r, "glob"), pc_regex = col(r, "regex");
	int pc_why = col(r, "why"), pc_deploy = col(r, "deploy"), pc_origin = col(r, "origin");
	for (int i = 0; i < ry_res_rows(r); i++) {
		struct ry_deps_path p = {
			.glob = (char *)ry_res_get(r, i, pc_glob),
			.regex = (char *)ry_res_get(r, i, pc_regex),
			.why = (char *)opt_get(r, i, pc_why),
			.deploy = is_true(r, i, pc_deploy),
			.is_explicit = !strcmp(ry_res_get(r, i, pc_origin), "explicit"),
		};
		(void)ry_deps_graph_add_path(g, ry_res_get(r, i, pc_service), &p);
	}
	ry_res_free(r);
	ry_deps_graph_finish(g);
	return true;
}
