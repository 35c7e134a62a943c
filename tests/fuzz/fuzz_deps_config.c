/*
 * libFuzzer target for railyard.yaml (pkg/deps config.c) and the plans
 * made with it: any bytes must give either a configuration or errors
 * naming railyard.yaml:LINE, and a configuration must plan a change of a
 * small fixed repository into a spec pkg/spec accepts — never a crash, a
 * leak or undefined behaviour.  Built by `make fuzz`, run by
 * `make fuzz-run FUZZ_SECONDS=N` (seeds: tests/fuzz/corpus/deps_config/).
 */
#include "deps/deps.h"
#include "plan/plan.h"
#include "spec/spec.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	const struct ry_deps_file files[] = {
		{ "railyard.yaml", text },
		{ "a/go.mod", "module a\nrequire b v1\n" },
		{ "b/go.mod", "module b\n" },
		{ "web/package.json", "{\"name\": \"web\", \"devDependencies\": {\"b\": \"*\"}}" },
		{ "docker-compose.yml", "services:\n  web: {build: web, depends_on: [a]}\n" },
	};
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	char *err = NULL;
	if (!ry_deps_scan_files(files, sizeof(files) / sizeof(files[0]), NULL, &g, &cfg, &err)) {
		if (strncmp(err, "railyard.yaml", 13) != 0)
			abort();
		free(err);
	} else {
		struct ry_strlist changed = { 0 };
		struct ry_plan plan;
		ry_strlist_add(&changed, "b/x.go");
		if (ry_plan_make(&g, &cfg, &changed, NULL, &plan, &err)) {
			if (plan.spec) {
				struct ry_strlist errors = { 0 };
				struct ry_spec *spec = ry_spec_parse("plan", plan.spec, strlen(plan.spec),
								     RY_SPEC_JSON, &errors);
				/* templates may name pools or labels the spec refuses; never a crash */
				ry_spec_free(spec);
				ry_strlist_release(&errors);
			}
		} else {
			free(err);
		}
		ry_plan_release(&plan);
		ry_strlist_release(&changed);
	}
	ry_deps_graph_release(&g);
	ry_deps_config_release(&cfg);
	free(text);
	return 0;
}
