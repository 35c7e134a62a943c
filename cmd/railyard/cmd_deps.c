/*
 * railyard deps scan DIR [--repo NAME] [--json] [--dry-run]
 *
 * Detects the services of the repository in DIR and their dependencies
 * (pkg/deps), applies railyard.yaml and the explicit rows people inserted,
 * stores the result in one transaction (railyard.store_scan) and prints a
 * summary with what was added and removed since the last scan.  --dry-run
 * stores nothing and needs no database; --json prints the whole report as
 * JSON.
 *
 * Exit 0 done (warnings about manifests do not change it); 1 a build or
 * test dependency cycle (still stored: it is what the repository says), or
 * railyard.yaml is invalid; 2 usage, connection or environment errors.
 */
#include "cmd_deps.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char store_sql[] =
	"SELECT change, object, item, detail "
	"  FROM railyard.store_scan($1, $2, $3::jsonb, $4::double precision, $5, $6)";

static void usage(FILE *out)
{
	fprintf(out, "usage: railyard deps scan DIR [--repo NAME] [--json] [--dry-run]\n"
		"  DIR          the repository (a checkout or any directory)\n"
		"  --repo NAME  the repository's name in the database (default: DIR's name)\n"
		"  --json       print the report as JSON\n"
		"  --dry-run    store nothing (no database needed)\n");
}

static void print_text(const struct ry_deps_graph *g, const char *repo, double ms,
		       const struct ry_strlist *cycles, const struct ry_strlist *rcycles,
		       const struct ry_deps_change *changes, size_t nchanges, bool stored)
{
	size_t nk[RY_DEPS_NKINDS] = { 0 }, nedges = 0, wname = 4, weco = 9, wroot = 4;
	for (size_t i = 0; i < g->nedges; i++)
		if (ry_deps_edge_active(g, &g->edges[i])) {
			nk[g->edges[i].kind]++;
			nedges++;
		}
	for (size_t i = 0; i < g->nservices; i++) {
		const struct ry_deps_service *s = &g->services[i];
		size_t a = strlen(s->name), b = strlen(s->ecosystem), c = s->root ? strlen(s->root) : 1;
		wname = a > wname ? a : wname;
		weco = b > weco ? b : weco;
		wroot = c > wroot ? c : wroot;
	}
	if (wroot > 40)
		wroot = 40;
	printf("%s: %zu services, %zu dependencies (%zu build, %zu test, %zu runtime) from %zu "
	       "files in %.0f ms\n", repo, g->nservices, nedges, nk[0], nk[1], nk[2], g->files_read,
	       ms);
	printf("\nservices:\n  %-*s  %-*s  %-*s  %s\n", (int)wname, "NAME", (int)weco, "ECOSYSTEM",
	       (int)wroot, "ROOT", "EVIDENCE");
	for (size_t i = 0; i < g->nservices; i++) {
		const struct ry_deps_service *s = &g->services[i];
		printf("  %-*s  %-*s  %-*s  ", (int)wname, s->name, (int)weco, s->ecosystem,
		       (int)wroot, s->root ? s->root : "-");
		if (s->is_explicit && s->decl_line > 0)
			printf("%s:%d", s->detector, s->decl_line);
		else if (s->is_explicit)
			printf("declared (%s)", s->detector);
		else if (s->manifest)
			printf("%s:%d", s->manifest, s->line);
		if (s->excluded)
			printf("  (excluded)");
		putchar('\n');
	}
	printf("\ndependencies:\n");
	for (size_t i = 0; i < g->nedges; i++) {
		const struct ry_deps_edge *e = &g->edges[i];
		char *ends = ry_asprintf("%s -> %s", g->services[e->from].name, g->services[e->to].name);
		printf("  %-*s  %-7s  ", (int)(2 * wname + 4 > 60 ? 60 : 2 * wname + 4), ends,
		       ry_deps_kind_name(e->kind));
		if (e->file)
			printf("%s:%d (%s)", e->file, e->line, e->detector);
		else
			printf("declared (%s)", e->detector);
		if (e->more.n)
			printf(" +%zu more", e->more.n);
		if (e->suppressed)
			printf("  (suppressed)");
		putchar('\n');
		free(ends);
	}
	if (g->warnings.n) {
		printf("\nwarnings (%zu):\n", g->warnings.n);
		for (size_t i = 0; i < g->warnings.n; i++)
			printf("  %s\n", g->warnings.items[i]);
	}
	if (g->notes.n) {
		printf("\nnotes:\n");
		for (size_t i = 0; i < g->notes.n; i++)
			printf("  %s\n", g->notes.items[i]);
	}
	for (size_t i = 0; i < rcycles->n; i++)
		printf("\nwarning: %s\n", rcycles->items[i]);
	for (size_t i = 0; i < cycles->n; i++)
		printf("\nerror: %s\n", cycles->items[i]);
	if (!stored) {
		printf("\nnot stored (--dry-run)\n");
		return;
	}
	size_t added = 0;
	for (size_t i = 0; i < nchanges; i++)
		added += strcmp(changes[i].change, "added") == 0;
	printf("\nsince the last scan: %zu added, %zu removed\n", added, nchanges - added);
	for (size_t i = 0; i < nchanges; i++)
		printf("  %c %s %s (%s)\n", changes[i].change[0] == 'a' ? '+' : '-', changes[i].object,
		       changes[i].item, changes[i].detail);
}

/* Stores the scan; fills the changes (pointing into *res). */
static bool store(struct ry_db *db, const char *repo, const char *dir,
		  const struct ry_deps_graph *g, double ms, struct ry_res **res,
		  struct ry_deps_change **changes, size_t *n, char **err)
{
	char *real = realpath(dir, NULL);
	char *payload = ry_deps_graph_json(g, false);
	char *msstr = ry_asprintf("%.3f", ms);
	/* the commit, when the manifests scanned are exactly that commit's:
	 * railyard plan may then reuse this scan while they stay so */
	char *rev = cmd_git_head(dir);
	if (rev && !cmd_deps_unchanged_since(dir, rev, true)) {
		free(rev);
		rev = NULL;
	}
	const char *params[] = { repo, real ? real : dir, payload, msstr, rev, RY_VERSION };
	*res = ry_db_query(db, store_sql, 6, params, err);
	free(rev);
	free(msstr);
	free(payload);
	free(real);
	if (!*res)
		return false;
	*n = (size_t)ry_res_rows(*res);
	*changes = ry_calloc(*n + 1, sizeof(**changes));
	for (size_t i = 0; i < *n; i++) {
		(*changes)[i].change = ry_res_get(*res, (int)i, 0);
		(*changes)[i].object = ry_res_get(*res, (int)i, 1);
		(*changes)[i].item = ry_res_get(*res, (int)i, 2);
		(*changes)[i].detail = ry_res_get(*res, (int)i, 3);
	}
	return true;
}

static int scan(struct cmd_ctx *ctx, const char *dir, const char *repo_opt, bool json,
		bool dry_run)
{
	struct ry_deps_graph g = { 0 };
	struct ry_deps_config cfg = { 0 }, extra = { 0 };
	struct ry_strlist cycles = { 0 }, rcycles = { 0 };
	struct ry_deps_change *changes = NULL;
	struct ry_res *res = NULL;
	struct ry_db *db = NULL;
	size_t nchanges = 0;
	char *err = NULL, *repo = NULL;
	int rc = RY_EXIT_ERROR;
	struct stat st;

	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "railyard: error: %s is not a directory\n", dir);
		return RY_EXIT_ERROR;
	}
	repo = cmd_deps_repo_name(dir, repo_opt, &err);
	if (!repo)
		goto fail;
	if (!dry_run) {
		db = cmd_connect(ctx, "cli:deps");
		if (!db)
			goto out;
		if (!cmd_deps_load_decls(db, repo, &extra, &err)) {
			char *why = ry_asprintf("cannot read the declared services of %s: %s", repo, err);
			free(err);
			err = why;
			goto fail;
		}
	}
	int64_t t0 = ry_now_ms();
	if (!ry_deps_scan_dir(dir, dry_run ? NULL : &extra, &g, &cfg, &err)) {
		rc = RY_EXIT_FAIL;
		goto fail;
	}
	double ms = (double)(ry_now_ms() - t0);
	size_t ncycles = ry_deps_check_cycles(&g, NULL, &cycles, &rcycles, 10);
	if (db && !store(db, repo, dir, &g, ms, &res, &changes, &nchanges, &err)) {
		char *why = ry_asprintf("cannot store the scan of %s: %s", repo, err);
		free(err);
		err = why;
		goto fail;
	}
	if (json) {
		char *report = ry_deps_report_json(&g, repo, &cycles, &rcycles, changes, nchanges,
						   db != NULL);
		printf("%s\n", report);
		free(report);
	} else {
		print_text(&g, repo, ms, &cycles, &rcycles, changes, nchanges, db != NULL);
	}
	for (size_t i = 0; i < cycles.n; i++)
		fprintf(stderr, "railyard: error: %s\n", cycles.items[i]);
	rc = ncycles ? RY_EXIT_FAIL : RY_EXIT_OK;
	goto out;
fail:
	fprintf(stderr, "railyard: error: %s\n", err);
out:
	free(err);
	free(repo);
	free(changes);
	ry_res_free(res);
	ry_db_close(db);
	ry_strlist_release(&cycles);
	ry_strlist_release(&rcycles);
	ry_deps_graph_release(&g);
	ry_deps_config_release(&cfg);
	ry_deps_config_release(&extra);
	return rc;
}

int cmd_deps(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *repo = NULL;
	bool json = false, dry_run = false;
	int c;

	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return RY_EXIT_OK;
	}
	if (argc < 2 || strcmp(argv[1], "scan") != 0) {
		if (argc >= 2)
			fprintf(stderr, "railyard: error: unknown deps command '%s'\n", argv[1]);
		usage(stderr);
		return RY_EXIT_ERROR;
	}
	argc--;
	argv++;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			repo = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'n':
			dry_run = true;
			break;
		case 'h':
			usage(stdout);
			return RY_EXIT_OK;
		case ':':
			fprintf(stderr, "railyard: error: option '%s' needs a value\n", argv[optind - 1]);
			usage(stderr);
			return RY_EXIT_ERROR;
		default:
			fprintf(stderr, "railyard: error: unknown option '%s'\n", argv[optind - 1]);
			usage(stderr);
			return RY_EXIT_ERROR;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "railyard: error: deps scan takes one DIR\n");
		usage(stderr);
		return RY_EXIT_ERROR;
	}
	return scan(ctx, argv[optind], repo, json, dry_run);
}
