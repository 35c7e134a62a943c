/*
 * railyard import github-actions FILE / gitlab-ci FILE [FILE...]
 *
 * Converts a CI definition (pkg/ciimport) into a railyard spec: printed as
 * YAML on stdout, or with --submit parsed back by pkg/spec (so the printed
 * file and the submitted pipeline are the same thing) and inserted through
 * submit's own code path, printing the new pipeline's id.  Whatever the CI
 * file says that railyard cannot express is printed on stderr as
 * "note: FILE:LINE: ..." and does not change the exit code.
 *
 * Exit 0 converted (and submitted); 1 malformed input or a pipeline the
 * database refused; 2 usage, connection or environment errors.
 */
#include "cmd.h"
#include "ciimport/ciimport.h"
#include "spec/spec.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
	fprintf(out,
		"usage: railyard import github-actions FILE [OPTIONS]\n"
		"       railyard import gitlab-ci FILE [FILE...] [OPTIONS]\n"
		"  prints the pipeline as a railyard spec (YAML); notes go to stderr\n"
		"  --submit            submit it instead and print the pipeline id\n"
		"  --name NAME         the pipeline's name (default: the workflow's name or file)\n"
		"  --branch B          branch the pipeline is for, for if:/rules: (default main)\n"
		"  --default-branch B  the repository's default branch (default main)\n"
		"  --tag T             a pipeline for tag T instead of a branch\n"
		"  --event E           GitHub event / GitLab CI_PIPELINE_SOURCE (default push)\n"
		"  --revision REV      the pipeline's revision\n"
		"  --changed PATH      a changed path, for only_if_changed (repeat it)\n");
}

int cmd_import(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "submit", no_argument, NULL, 's' },
		{ "name", required_argument, NULL, 'n' },
		{ "branch", required_argument, NULL, 'b' },
		{ "default-branch", required_argument, NULL, 'd' },
		{ "tag", required_argument, NULL, 't' },
		{ "event", required_argument, NULL, 'e' },
		{ "revision", required_argument, NULL, 'r' },
		{ "changed", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ry_ci_options opt = { 0 };
	struct ry_ci_pipeline p = { 0 };
	struct ry_strlist changed = { 0 }, errors = { 0 };
	struct ry_spec *spec = NULL;
	const char *revision = NULL;
	bool submit = false, has_changed = false;
	char *err = NULL, *yaml = NULL;
	int rc = RY_EXIT_ERROR, c;

	optind = 0;	/* glibc: re-initialise (another command may have run getopt) */
	opterr = 0;
	/* GNU getopt moves the operands after the options. */
	while ((c = cmd_getopt(argc, argv, "h", longopts)) != -1) {
		switch (c) {
		case 's': submit = true; break;
		case 'n': opt.name = optarg; break;
		case 'b': opt.branch = optarg; break;
		case 'd': opt.default_branch = optarg; break;
		case 't': opt.tag = optarg; break;
		case 'e': opt.event = optarg; break;
		case 'r': revision = optarg; break;
		case 'c': ry_strlist_add(&changed, optarg); has_changed = true; break;
		case 'h': usage(stdout); rc = RY_EXIT_OK; goto out;
		default:
			usage(stderr);
			goto out;
		}
	}
	struct ry_strlist operands = { 0 };
	for (int i = optind; i < argc; i++)
		ry_strlist_add(&operands, argv[i]);
	if (operands.n < 2) {
		usage(stderr);
		ry_strlist_release(&operands);
		goto out;
	}
	const char *system = operands.items[0];
	bool ok;
	if (strcmp(system, "github-actions") == 0) {
		if (operands.n != 2) {
			cmd_error("import github-actions takes one workflow file");
			ry_strlist_release(&operands);
			goto out;
		}
		ok = ry_ci_import_github(operands.items[1], &opt, &p, &err);
	} else if (strcmp(system, "gitlab-ci") == 0) {
		ok = ry_ci_import_gitlab((const char *const *)operands.items + 1, operands.n - 1,
					 &opt, &p, &err);
	} else {
		cmd_error("import: unknown CI system '%s' (github-actions, gitlab-ci)", system);
		ry_strlist_release(&operands);
		goto out;
	}
	char *source = ry_strdup(operands.items[1]);
	ry_strlist_release(&operands);
	for (size_t i = 0; i < p.nnotes; i++)
		fprintf(stderr, "note: %s: %s\n", p.notes[i].where, p.notes[i].text);
	if (!ok) {
		cmd_error("%s", err);
		free(source);
		rc = RY_EXIT_FAIL;
		goto out;
	}
	p.revision = revision ? ry_strdup(revision) : NULL;
	p.has_changed_paths = has_changed;
	p.changed_paths = changed;
	memset(&changed, 0, sizeof(changed));

	yaml = ry_ci_render(&p, &err);
	if (!yaml) {
		cmd_error("%s: %s", source, err);
		free(source);
		goto out;
	}
	/* What is printed is what submit would load: check it the same way. */
	char *display = ry_asprintf("%s (converted)", source);
	spec = ry_spec_parse(display, yaml, strlen(yaml), RY_SPEC_YAML, &errors);
	free(display);
	free(source);
	if (!spec) {
		for (size_t i = 0; i < errors.n; i++)
			cmd_error("%s", errors.items[i]);
		rc = RY_EXIT_FAIL;
		goto out;
	}
	if (!submit) {
		fputs(yaml, stdout);
		rc = fflush(stdout) == 0 ? RY_EXIT_OK : RY_EXIT_ERROR;
		goto out;
	}
	rc = cmd_submit_spec(ctx, spec, "cli:import");
out:
	ry_spec_free(spec);
	free(yaml);
	free(err);
	ry_strlist_release(&errors);
	ry_strlist_release(&changed);
	ry_ci_pipeline_release(&p);
	return rc;
}
