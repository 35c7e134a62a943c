/*
 * railyard inventory import terraform|pulumi|kubernetes FILE [--source S]
 *
 * Reads the planned agents (pkg/inventory) and replaces the rows of their
 * source in railyard.inventory with one call of railyard.inventory_replace
 * (one statement: the old inventory or the new one, never a mix).  Notes
 * (sensitive outputs skipped, outputs without agents) go to stderr.
 *
 * Exit 0 stored; 1 the file is malformed or the database refused it (nothing
 * stored); 2 usage, connection or environment errors.
 */
#include "cmd.h"
#include "inventory/inventory.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char replace_sql[] =
	"SELECT railyard.inventory_replace($1, $2, $3, $4::jsonb)";

static void usage(FILE *out)
{
	fprintf(out,
		"usage: railyard inventory import terraform|pulumi|kubernetes FILE [--source NAME]\n"
		"  terraform   `terraform output -json` or `terraform show -json`\n"
		"  pulumi      `pulumi stack output --json`\n"
		"  kubernetes  `kubectl get nodes -o json`\n"
		"  FILE        - reads stdin\n"
		"  --source    what a re-import replaces (default: the tool's name)\n"
		"  --dry-run   print the agents found; touch no database\n");
}

int cmd_inventory(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "source", required_argument, NULL, 's' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum ry_inventory_tool tool;
	struct ry_inventory inv = { 0 };
	const char *source = NULL;
	bool dry_run = false;
	char *err = NULL, *json = NULL;
	int rc = RY_EXIT_ERROR, c;

	optind = 0;
	opterr = 0;
	while ((c = cmd_getopt(argc, argv, "h", longopts)) != -1) {
		switch (c) {
		case 's': source = optarg; break;
		case 'n': dry_run = true; break;
		case 'h': usage(stdout); return RY_EXIT_OK;
		default:
			usage(stderr);
			return RY_EXIT_ERROR;
		}
	}
	if (argc - optind != 3 || strcmp(argv[optind], "import") != 0) {
		usage(stderr);
		return RY_EXIT_ERROR;
	}
	const char *tool_name = argv[optind + 1], *path = argv[optind + 2];
	if (!ry_inventory_tool_parse(tool_name, &tool)) {
		cmd_error("inventory import: unknown tool '%s' (terraform, pulumi, kubernetes)",
			tool_name);
		return RY_EXIT_ERROR;
	}
	if (!source)
		source = tool_name;

	bool parsed = ry_inventory_parse_file(tool, path, &inv, &err);
	for (size_t i = 0; i < inv.notes.n; i++)
		fprintf(stderr, "note: %s: %s\n", path, inv.notes.items[i]);
	if (!parsed) {
		cmd_error("%s", err);
		rc = RY_EXIT_FAIL;
		goto out;
	}
	if (dry_run) {
		for (size_t i = 0; i < inv.n; i++) {
			const struct ry_inventory_agent *a = &inv.agents[i];
			char *labels = ry_strlist_to_pg_array(&a->labels);
			printf("%s\tlabels=%s\tcpu=%g\tmem_mb=%lld\tos=%s\tarch=%s\t%s\n", a->name, labels,
			       a->cpu, a->mem_mb, a->os ? a->os : "?", a->arch ? a->arch : "?", a->origin);
			free(labels);
		}
		rc = RY_EXIT_OK;
		goto out;
	}
	json = ry_inventory_json(&inv);
	struct ry_db *db = cmd_connect(ctx, "cli:inventory");
	if (!db)
		goto out;
	const char *params[] = { source, ry_inventory_tool_name(tool), path, json };
	struct ry_res *r = ry_db_query(db, replace_sql, 4, params, &err);
	if (!r) {
		const char *state = ry_db_last_sqlstate(db);
		bool input = strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0;
		cmd_error("%s: cannot store the inventory: %s", path, err);
		rc = input ? RY_EXIT_FAIL : RY_EXIT_ERROR;
	} else {
		printf("%s: %s planned agents from %s (source %s)\n", tool_name, ry_res_get(r, 0, 0),
		       path, source);
		ry_res_free(r);
		rc = RY_EXIT_OK;
	}
	ry_db_close(db);
out:
	free(json);
	free(err);
	ry_inventory_release(&inv);
	return rc;
}
