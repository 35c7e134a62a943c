/*
 * railyard plan DIR [--changed PATH...] [--base REV] [--dry-run] [--json] [--repo NAME]
 *
 * Turns a change into the smallest correct pipeline (pkg/plan): the
 * changed paths (given, or `git diff --name-only BASE...HEAD` in DIR) are
 * mapped to services, the affected set is computed over the dependency
 * graph (a fresh scan of DIR with railyard.yaml and the explicit rows in the
 * database), and one pipeline is submitted through the same code as
 * `railyard submit` (pkg/spec, then cmd_submit_spec).  Its id goes to
 * stdout, a one-line summary of the plan to stderr.
 *
 * --dry-run prints the plan and why each service is in it, and submits
 * nothing (it reads the database's explicit rows when one is configured or
 * the embedded one exists, and goes without them otherwise).  --json prints
 * the pipeline spec instead (with --dry-run: only that), ready for
 * `railyard submit`.  Nothing affected: says so, exit 0.
 *
 * Exit 0 planned (or nothing to do); 1 a build/test cycle among the
 * affected services, railyard.yaml invalid, or the database refused the
 * pipeline; 2 usage, git, connection or environment errors.
 */
#include "cmd_deps.h"
#include "plan/plan.h"
#include "spec/spec.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *out)
{
	fprintf(out, "usage: railyard plan DIR [--changed PATH...] [--base REV] [--dry-run] [--json] "
		"[--repo NAME]\n"
		"  DIR            the repository (railyard.yaml at its top is read)\n"
		"  --changed PATH a changed path, relative to DIR (repeat it, or list paths after it;\n"
		"                 \"-\" reads them from stdin, one per line)\n"
		"  --base REV     the changed paths are `git diff --name-only REV...HEAD` in DIR\n"
		"  --dry-run      print the plan and why each service is in it; submit nothing\n"
		"  --json         print the pipeline spec (JSON, for railyard submit)\n"
		"  --repo NAME    the repository's name in the database (default: DIR's name)\n");
}

/* A path given on the command line, relative to dir (absolute ones must
 * lie inside it); NULL with *err otherwise. */
static char *relative_path(const char *real_dir, const char *path, char **err)
{
	if (path[0] != '/')
		return ry_strdup(path);
	size_t n = strlen(real_dir);
	if (strncmp(path, real_dir, n) == 0 && path[n] == '/')
		return ry_strdup(path + n + 1);
	*err = ry_asprintf("changed path %s is not inside %s", path, real_dir);
	return NULL;
}

static bool read_stdin_paths(struct ry_strlist *paths)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, stdin)) > 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n > 0)
			ry_strlist_add(paths, line);
	}
	free(line);
	return !ferror(stdin);
}

/* Whether a changed path is one a scan reads (a manifest, railyard.yaml). */
static bool changes_manifests(const struct ry_strlist *changed)
{
	for (size_t i = 0; i < changed->n; i++) {
		char *norm = ry_deps_path_normalize(changed->items[i]);
		bool reads = norm && ry_deps_reads(norm);
		free(norm);
		if (reads)
			return true;
	}
	return false;
}

/* Whether the commits from rev to HEAD change no file a scan reads. */
static bool commits_keep_manifests(const char *dir, const char *rev)
{
	char *range = ry_asprintf("%s..HEAD", rev);
	bool same = cmd_deps_unchanged_since(dir, range, false);
	free(range);
	return same;
}

struct plan_args {
	const char *dir;
	const char *base;
	const char *repo;
	bool dry_run;
	bool json;
	bool have_changed;
	struct ry_strlist changed;
};

/* The database's explicit rows, when there is a database to ask. */
static struct ry_db *connect_for_plan(struct cmd_ctx *ctx, const struct plan_args *a)
{
	if (!a->dry_run)
		return cmd_connect(ctx, "cli:plan");
	struct stat st;
	if (cmd_uses_embedded(ctx) && stat(ctx->home, &st) != 0)
		return NULL;	/* no database here: plan without its rows */
	return cmd_connect(ctx, "cli:plan");
}

/* Validates the plan's spec as `railyard submit` does and submits it
 * through the same code (cmd_submit_spec: the id on stdout). */
static int submit(struct cmd_ctx *ctx, const struct ry_plan *plan, const struct ry_deps_graph *g)
{
	struct ry_strlist errors = { 0 };
	struct ry_spec *spec = ry_spec_parse("plan", plan->spec, strlen(plan->spec), RY_SPEC_JSON,
					     &errors);
	for (size_t i = 0; i < errors.n; i++)
		fprintf(stderr, "railyard: error: the planned pipeline is invalid: %s\n",
			errors.items[i]);
	ry_strlist_release(&errors);
	if (!spec)
		return RY_EXIT_FAIL;
	fprintf(stderr, "planned %zu tasks for %zu of %zu services:", plan->ntasks, plan->n,
		g->nservices);
	for (size_t i = 0; i < plan->n && i < 10; i++)
		fprintf(stderr, " %s", g->services[plan->svcs[i].service].name);
	fprintf(stderr, "%s\n", plan->n > 10 ? " ..." : "");
	int rc = cmd_submit_spec(ctx, spec, "cli:plan");
	ry_spec_free(spec);
	return rc;
}

static int plan_repo(struct cmd_ctx *ctx, struct plan_args *a)
{
	struct ry_deps_graph g = { 0 };
	struct ry_deps_config cfg = { 0 }, extra = { 0 };
	struct ry_plan plan = { 0 };
	struct ry_strlist changed = { 0 };
	struct ry_db *db = NULL;
	char *err = NULL, *repo = NULL, *rev = NULL, *real = NULL;
	int rc = RY_EXIT_ERROR;
	struct stat st;

	if (stat(a->dir, &st) != 0 || !S_ISDIR(st.st_mode) || !(real = realpath(a->dir, NULL))) {
		fprintf(stderr, "railyard: error: %s is not a directory\n", a->dir);
		return RY_EXIT_ERROR;
	}
	repo = cmd_deps_repo_name(a->dir, a->repo, &err);
	if (!repo)
		goto fail;
	if (a->base) {
		char *range = ry_asprintf("%s...HEAD", a->base);
		bool ok = cmd_git_diff(a->dir, range, &changed, &err);
		free(range);
		if (!ok)
			goto fail;
	}
	for (size_t i = 0; i < a->changed.n; i++) {
		char *p = relative_path(real, a->changed.items[i], &err);
		if (!p)
			goto fail;
		ry_strlist_add(&changed, p);
		free(p);
	}
	rev = cmd_git_head(a->dir);

	db = connect_for_plan(ctx, a);
	if (!db && !a->dry_run)
		goto out;
	/* the stored scan while no manifest changed since it (between its commit
	 * and HEAD, or in the change itself); else a scan */
	char *stored = db ? cmd_deps_stored_revision(db, repo) : NULL;
	if (stored && rev && !changes_manifests(&changed) &&
	    (!strcmp(stored, rev) || commits_keep_manifests(a->dir, stored))) {
		if (!cmd_deps_load_graph(db, repo, &g, &err) ||
		    !ry_deps_config_read(a->dir, &cfg, &err)) {
			free(stored);
			rc = RY_EXIT_FAIL;
			goto fail;
		}
		if (a->dry_run)
			fprintf(stderr, "railyard: note: the stored scan of %.12s is current (no manifest "
					"changed since)\n", stored);
	} else {
		if (db && !cmd_deps_load_decls(db, repo, &extra, &err)) {
			char *why = ry_asprintf("cannot read the declared services of %s: %s", repo, err);
			free(err);
			free(stored);
			err = why;
			goto fail;
		}
		if (!db)
			fprintf(stderr, "railyard: note: no database: explicit rows inserted with SQL are "
					"not consulted (railyard.yaml is)\n");
		if (!ry_deps_scan_dir(a->dir, db ? &extra : NULL, &g, &cfg, &err)) {
			free(stored);
			rc = RY_EXIT_FAIL;
			goto fail;
		}
		cmd_deps_print_warnings(&g, a->dry_run ? 50 : 5);
	}
	free(stored);
	/* the tasks' tree: the checkout (at the revision) or the directory */
	char *top = rev ? cmd_git_toplevel(a->dir) : NULL;
	const char *source = !rev ? real : top && !strcmp(top, real) ? real : NULL;
	if (rev && !source && a->dry_run)
		fprintf(stderr, "railyard: note: %s is inside a larger git checkout: the pipeline "
				"names no source\n", a->dir);
	struct ry_plan_options opt = { repo, rev, source };
	bool planned = ry_plan_make(&g, &cfg, &changed, &opt, &plan, &err);
	free(top);
	if (!planned) {
		rc = RY_EXIT_FAIL;
		goto fail;
	}
	if (a->json && plan.spec)
		printf("%s\n", plan.spec);
	if (a->dry_run || !plan.spec) {
		struct ry_buf text = RY_BUF_INIT;
		ry_plan_format(&plan, &g, &text);
		fputs(text.data ? text.data : "", a->json || !a->dry_run ? stderr : stdout);
		ry_buf_release(&text);
		rc = RY_EXIT_OK;
		goto out;
	}
	ry_db_close(db);	/* submission connects on its own */
	db = NULL;
	rc = submit(ctx, &plan, &g);
	goto out;
fail:
	fprintf(stderr, "railyard: error: %s\n", err);
out:
	free(err);
	free(repo);
	free(rev);
	free(real);
	ry_strlist_release(&changed);
	ry_plan_release(&plan);
	ry_db_close(db);
	ry_deps_graph_release(&g);
	ry_deps_config_release(&cfg);
	ry_deps_config_release(&extra);
	return rc;
}

int cmd_plan(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "changed", required_argument, NULL, 'c' },
		{ "base", required_argument, NULL, 'b' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "repo", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct plan_args a = { 0 };
	struct ry_strlist rest = { 0 };
	int c, rc = RY_EXIT_ERROR;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			a.have_changed = true;
			if (!strcmp(optarg, "-")) {
				if (!read_stdin_paths(&a.changed)) {
					fprintf(stderr, "railyard: error: cannot read paths from stdin\n");
					goto out;
				}
			} else {
				ry_strlist_add(&a.changed, optarg);
			}
			break;
		case 'b':
			a.base = optarg;
			break;
		case 'n':
			a.dry_run = true;
			break;
		case 'j':
			a.json = true;
			break;
		case 'r':
			a.repo = optarg;
			break;
		case 'h':
			usage(stdout);
			rc = RY_EXIT_OK;
			goto out;
		case ':':
			fprintf(stderr, "railyard: error: option '%s' needs a value\n", argv[optind - 1]);
			usage(stderr);
			goto out;
		default:
			fprintf(stderr, "railyard: error: unknown option '%s'\n", argv[optind - 1]);
			usage(stderr);
			goto out;
		}
	}
	for (int i = optind; i < argc; i++)
		ry_strlist_add(&rest, argv[i]);
	if (rest.n == 0) {
		fprintf(stderr, "railyard: error: plan needs the repository's directory\n");
		usage(stderr);
		goto out;
	}
	a.dir = rest.items[0];
	/* "--changed a b c": the paths after the first are positional */
	if (rest.n > 1 && !a.have_changed) {
		fprintf(stderr, "railyard: error: plan takes one DIR, got '%s' and '%s'\n",
			rest.items[0], rest.items[1]);
		goto out;
	}
	for (size_t i = 1; i < rest.n; i++)
		ry_strlist_add(&a.changed, rest.items[i]);
	if (!a.have_changed && !a.base) {
		fprintf(stderr, "railyard: error: plan needs --changed PATH... or --base REV\n");
		usage(stderr);
		goto out;
	}
	rc = plan_repo(ctx, &a);
out:
	ry_strlist_release(&a.changed);
	ry_strlist_release(&rest);
	return rc;
}
