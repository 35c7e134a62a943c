/*
 * inventory: planned agents from infrastructure tools' JSON, read with
 * jansson (docs/integrations.md, "Inventory").
 *
 *   terraform   `terraform output -json`, or `terraform show -json` (state
 *               or plan): outputs holding agents, and resources tagged
 *               railyard_labels
 *   pulumi      `pulumi stack output --json`
 *   kubernetes  `kubectl get nodes -o json` (a List of Nodes, or one Node)
 *
 * Outputs hold agents when their value is an object with a name (name,
 * hostname or host) and something about the machine (labels, cpu, memory,
 * os, arch), a list of such objects, or a map of them (the key is the
 * default name).  Sensitive values are never read.  Every error names the
 * place: FILE:LINE:COLUMN for JSON syntax, the JSON path for content.
 */
#ifndef RY_INVENTORY_H
#define RY_INVENTORY_H

#include "core/core.h"

enum ry_inventory_tool {
	RY_INVENTORY_TERRAFORM,
	RY_INVENTORY_PULUMI,
	RY_INVENTORY_KUBERNETES,
};

struct ry_inventory_agent {
	char *name;
	struct ry_strlist labels;	/* without os and arch */
	double cpu;		/* < 0: unknown */
	long long mem_mb;	/* < 0: unknown */
	char *os;		/* NULL: unknown; lower case, as workers report it */
	char *arch;		/* NULL: unknown; x86_64, aarch64 ... as uname says */
	char *origin;		/* JSON path or resource address */
};

struct ry_inventory {
	struct ry_inventory_agent *agents;
	size_t n;
	struct ry_strlist notes;	/* "PATH: what was skipped and why" */
};

/* "terraform", "pulumi", "kubernetes"; false for anything else. */
bool ry_inventory_tool_parse(const char *name, enum ry_inventory_tool *out) RY_MUST_CHECK;
const char *ry_inventory_tool_name(enum ry_inventory_tool tool);

/*
 * Parses len bytes of data (file names it in messages).  False with *err
 * (caller frees) when the input is not that tool's format, holds a bad
 * value, or names an agent twice; out holds nothing then.
 */
bool ry_inventory_parse(enum ry_inventory_tool tool, const char *file, const char *data, size_t len,
			struct ry_inventory *out, char **err) RY_MUST_CHECK;
bool ry_inventory_parse_file(enum ry_inventory_tool tool, const char *path,
			     struct ry_inventory *out, char **err) RY_MUST_CHECK;

/* The agents as the JSON array railyard.inventory_replace() takes. Caller frees. */
char *ry_inventory_json(const struct ry_inventory *inv);

void ry_inventory_release(struct ry_inventory *inv);

/*
 * A Kubernetes quantity ("3800m", "16Gi", "129e6", "1.5") as a number of
 * units (bytes for memory, cores for cpu); false when it is not one.
 */
bool ry_inventory_quantity(const char *s, double *out) RY_MUST_CHECK;

#endif
