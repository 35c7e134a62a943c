/*
 * Unit tests for pkg/inventory: planned agents from each tool's real JSON
 * format (fixtures in tests/fixtures/inventory), Kubernetes quantities,
 * sensitive values never read, and malformed input refused with the place
 * named and nothing returned.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/pgarray.h"
#include "inventory/inventory.h"

#define FIX "tests/fixtures/inventory/"

struct want_agent {
	const char *name;
	const char *labels;	/* as ry_strlist_to_pg_array renders them */
	double cpu;		/* -1: unknown */
	long long mem_mb;	/* -1: unknown */
	const char *os;
	const char *arch;
	const char *origin;
};

struct fixture_case {
	enum ry_inventory_tool tool;
	const char *file;
	size_t nagents;
	struct want_agent agents[6];
	const char *note;	/* a note that must be there, or NULL */
};

static const struct fixture_case fixtures[] = {
	{ RY_INVENTORY_TERRAFORM, FIX "terraform-output.json", 5, {
		{ "build-01", "{\"docker\"}", 8, 16384, "linux", "x86_64", "$.build_agents.value[0]" },
		{ "build-02", "{\"docker\"}", 8, 16384, "linux", "x86_64", "$.build_agents.value[1]" },
		{ "build-arm-01", "{}", 4, 8192, "linux", "aarch64", "$.build_agents.value[2]" },
		{ "gpu-01", "{\"gpu\",\"cuda=12\"}", 16, 65536, NULL, NULL, "$.gpu_pool.value.gpu-01" },
		{ "gpu-02", "{\"gpu\",\"cuda=12\"}", 16, 65536, NULL, NULL, "$.gpu_pool.value.gpu-02" },
	  }, "$.db_admin: sensitive output skipped" },
	{ RY_INVENTORY_TERRAFORM, FIX "terraform-show.json", 3, {
		{ "mac-01", "{\"macos\",\"xcode\"}", 10, 32768, "darwin", "aarch64",
		  "$.values.outputs.mac_agents.value[0]" },
		{ "runner-01", "{\"docker\",\"large\"}", 8, 16384, "linux", "x86_64", "aws_instance.runner[0]" },
		{ "lab-01", "{\"fuzzing\"}", 4, 8192, NULL, NULL, "module.lab.libvirt_domain.agent[\"lab-01\"]" },
	  }, "$.values.outputs.api_token: sensitive output skipped" },
	{ RY_INVENTORY_PULUMI, FIX "pulumi.json", 2, {
		{ "pulumi-build-01", "{\"docker\",\"large\"}", 16, 32768, "linux", "x86_64", "$.agents[0]" },
		{ "pulumi-build-02", "{\"docker\"}", 8, 16384, "linux", "x86_64", "$.agents[1]" },
	  }, "$.registryPassword: secret output skipped" },
	{ RY_INVENTORY_KUBERNETES, FIX "kubectl-nodes.json", 3, {
		/* 65842312Ki = 64299.1 MiB; 129e9 bytes = 123024.0 MiB */
		{ "k8s-build-a", "{\"docker\"}", 16, 64299, "linux", "x86_64", "$.items[0] (node k8s-build-a)" },
		{ "k8s-arm-b", "{\"docker\",\"arm-tests\"}", 3.8, 16384, "linux", "aarch64",
		  "$.items[1] (node k8s-arm-b)" },
		{ "k8s-gpu-c", "{\"gpu\"}", 32, 123024, "linux", "x86_64", "$.items[2] (node k8s-gpu-c)" },
	  }, "cordoned" },
};

static bool has_note(const struct ry_inventory *inv, const char *text)
{
	for (size_t i = 0; i < inv->notes.n; i++)
		if (strstr(inv->notes.items[i], text))
			return true;
	return false;
}

static void fixtures_give_the_planned_agents(void **state)
{
	(void)state;
	for (size_t f = 0; f < RY_ARRAY_SIZE(fixtures); f++) {
		const struct fixture_case *c = &fixtures[f];
		struct ry_inventory inv;
		char *err = NULL;
		if (!ry_inventory_parse_file(c->tool, c->file, &inv, &err))
			fail_msg("%s: %s", c->file, err);
		if (inv.n != c->nagents)
			fail_msg("%s: %zu agents, want %zu", c->file, inv.n, c->nagents);
		for (size_t i = 0; i < inv.n; i++) {
			const struct ry_inventory_agent *a = &inv.agents[i];
			const struct want_agent *w = &c->agents[i];
			char *labels = ry_strlist_to_pg_array(&a->labels);
			if (strcmp(a->name, w->name) != 0 || strcmp(labels, w->labels) != 0 ||
			    (a->cpu < 0 ? w->cpu >= 0 : a->cpu != w->cpu) || a->mem_mb != w->mem_mb ||
			    (a->os ? !w->os || strcmp(a->os, w->os) != 0 : w->os != NULL) ||
			    (a->arch ? !w->arch || strcmp(a->arch, w->arch) != 0 : w->arch != NULL) ||
			    strcmp(a->origin, w->origin) != 0)
				fail_msg("%s: agent %zu is %s %s cpu=%g mem=%lld os=%s arch=%s at %s; want %s %s "
					 "cpu=%g mem=%lld os=%s arch=%s at %s", c->file, i, a->name, labels,
					 a->cpu, a->mem_mb, a->os, a->arch, a->origin, w->name, w->labels,
					 w->cpu, w->mem_mb, w->os, w->arch, w->origin);
			free(labels);
		}
		if (c->note && !has_note(&inv, c->note))
			fail_msg("%s: no note \"%s\"", c->file, c->note);
		ry_inventory_release(&inv);
	}
}

static void secrets_are_never_read(void **state)
{
	(void)state;
	static const char *const files[] = { FIX "terraform-output.json", FIX "terraform-show.json" };
	for (size_t f = 0; f < RY_ARRAY_SIZE(files); f++) {
		struct ry_inventory inv;
		char *err = NULL;
		assert_true(ry_inventory_parse_file(RY_INVENTORY_TERRAFORM, files[f], &inv, &err));
		char *json = ry_inventory_json(&inv);
		assert_null(strstr(json, "never-stored"));
		assert_null(strstr(json, "db-admin"));
		free(json);
		ry_inventory_release(&inv);
	}
}

struct bad_case {
	enum ry_inventory_tool tool;
	const char *file;	/* a fixture, or NULL to use text */
	const char *text;
	const char *error;	/* must appear in the message */
};

static const struct bad_case bad[] = {
	{ RY_INVENTORY_KUBERNETES, FIX "kubectl-bad-quantity.json", NULL,
	  "kubectl-bad-quantity.json: $.items[1].status.capacity.memory: \"16Qi\" is not a memory quantity" },
	{ RY_INVENTORY_KUBERNETES, FIX "kubectl-truncated.json", NULL,
	  "kubectl-truncated.json:7:0: invalid JSON" },
	{ RY_INVENTORY_PULUMI, FIX "pulumi-duplicate.json", NULL,
	  "$.pool_b[0]: agent \"dup-01\" is already planned at $.pool_a[0]" },
	{ RY_INVENTORY_TERRAFORM, FIX "terraform-not-output.json", NULL,
	  "$.agents: not Terraform output: expected an object with \"value\"" },
	{ RY_INVENTORY_PULUMI, FIX "missing.json", NULL,
	  "cannot read tests/fixtures/inventory/missing.json: No such file or directory" },
	{ RY_INVENTORY_KUBERNETES, NULL, "{\"kind\": \"Pod\", \"items\": []}", "expected `kubectl get nodes -o json`" },
	{ RY_INVENTORY_KUBERNETES, NULL, "{\"kind\": \"List\", \"items\": [{\"kind\": \"Node\", \"metadata\": {}}]}",
	  "$.items[0].metadata.name: a Node needs a name" },
	{ RY_INVENTORY_KUBERNETES, NULL,
	  "{\"kind\": \"Node\", \"metadata\": {\"name\": \"n\"}, \"status\": {\"capacity\": {\"cpu\": \"-4\"}}}",
	  "$.status.capacity.cpu: \"-4\" is not a cpu quantity" },
	{ RY_INVENTORY_PULUMI, NULL, "{\"a\": [{\"name\": \"x\", \"labels\": [\"has space\"]}]}",
	  "$.a[0].labels[0]: label \"has space\"" },
	{ RY_INVENTORY_PULUMI, NULL, "{\"a\": [{\"name\": \"x\", \"cpus\": 0}]}", "$.a[0].cpus: must be more than 0" },
	{ RY_INVENTORY_PULUMI, NULL, "{\"a\": [{\"name\": \"x\", \"memory\": \"lots\"}]}",
	  "$.a[0].memory: \"lots\" is not a quantity" },
	{ RY_INVENTORY_PULUMI, NULL, "{\"a\": [{\"name\": \"x\", \"cpu\": 2}, {\"size\": 3}]}",
	  "$.a[1]: not an agent like the other elements" },
	{ RY_INVENTORY_PULUMI, NULL, "{\"region\": \"eu\"}", "no agents found" },
	{ RY_INVENTORY_PULUMI, NULL, "[1, 2]", "expected `pulumi stack output --json`" },
	{ RY_INVENTORY_TERRAFORM, NULL, "{\"a\": {\"value\": 1, \"sensitive\": false}, \"a\": {}}",
	  "duplicate object key" },
};

static void malformed_input_names_the_place(void **state)
{
	(void)state;
	for (size_t i = 0; i < RY_ARRAY_SIZE(bad); i++) {
		struct ry_inventory inv;
		char *err = NULL;
		bool ok = bad[i].file ? ry_inventory_parse_file(bad[i].tool, bad[i].file, &inv, &err)
				      : ry_inventory_parse(bad[i].tool, "x.json", bad[i].text,
							   strlen(bad[i].text), &inv, &err);
		if (ok)
			fail_msg("case %zu accepted; want \"%s\"", i, bad[i].error);
		if (!strstr(err, bad[i].error))
			fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, bad[i].error);
		assert_int_equal(inv.n, 0);	/* nothing comes back half-read */
		assert_null(inv.agents);
		free(err);
	}
}

static void quantities(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		double want;
	} ok[] = {
		{ "16", 16 }, { "3800m", 3.8 }, { "250m", 0.25 }, { "1.5", 1.5 }, { "16Gi", 17179869184.0 },
		{ "65842312Ki", 67422527488.0 }, { "129e6", 129e6 }, { "1E", 1e18 }, { "128974848", 128974848 },
		{ "64GB", 64e9 }, { "2k", 2000 }, { "1Mi", 1048576 },
	};
	static const char *const no[] = { "", "Gi", "16Qi", "-1", "1 Gi", "abc", "16gi", " 4" };
	for (size_t i = 0; i < RY_ARRAY_SIZE(ok); i++) {
		double v = -1;
		if (!ry_inventory_quantity(ok[i].text, &v) || v != ok[i].want)
			fail_msg("%s: got %g, want %g", ok[i].text, v, ok[i].want);
	}
	for (size_t i = 0; i < RY_ARRAY_SIZE(no); i++) {
		double v;
		if (ry_inventory_quantity(no[i], &v))
			fail_msg("\"%s\" accepted as %g", no[i], v);
	}
}

static void json_for_the_database(void **state)
{
	(void)state;
	struct ry_inventory inv;
	char *err = NULL;
	assert_true(ry_inventory_parse_file(RY_INVENTORY_KUBERNETES, FIX "kubectl-nodes.json", &inv, &err));
	char *text = ry_inventory_json(&inv);
	json_error_t jerr;
	json_t *arr = json_loads(text, 0, &jerr);
	assert_non_null(arr);
	assert_int_equal(json_array_size(arr), 3);
	json_t *arm = json_array_get(arr, 1);
	assert_string_equal(json_string_value(json_object_get(arm, "name")), "k8s-arm-b");
	assert_true(json_number_value(json_object_get(arm, "cpu")) == 3.8);
	assert_int_equal(json_integer_value(json_object_get(arm, "mem_mb")), 16384);
	assert_string_equal(json_string_value(json_array_get(json_object_get(arm, "labels"), 1)), "arm-tests");
	json_decref(arr);
	free(text);
	ry_inventory_release(&inv);

	enum ry_inventory_tool t;
	assert_true(ry_inventory_tool_parse("pulumi", &t));
	assert_int_equal(t, RY_INVENTORY_PULUMI);
	assert_false(ry_inventory_tool_parse("ansible", &t));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fixtures_give_the_planned_agents),
		cmocka_unit_test(secrets_are_never_read),
		cmocka_unit_test(malformed_input_names_the_place),
		cmocka_unit_test(quantities),
		cmocka_unit_test(json_for_the_database),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
