/*
 * libFuzzer target for railyard.yaml (pkg/deps config.c) and the plans
 * made with it: any bytes must give either a configuration or errors
 * naming railyard.yaml:LINE, and a configuration must plan a change of a
 * small fixed repository into a spec pkg/spec accepts — never a crash, a
 * leak or undefined behaviour.  Not built by `make`; build and run with:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE \
 *       -Ipkg $(pkg-config --cflags libxml-2.0) -o build/fuzz_deps_config \
 *       tests/fuzz/fuzz_deps_config.c pkg/deps/[a-z]*.c pkg/plan/plan.c pkg/spec/[a-z]*.c \
 *       pkg/core/core.c pkg/match/match.c pkg/graph/graph.c \
 *       -lyaml -ljansson -lpcre2-8 -lxml2
 *   mkdir -p build/fuzz-deps-config && cp -r tests/fuzz/corpus/fuzz_deps_config/. build/fuzz-deps-config/
 *   build/fuzz_deps_config -max_total_time=60 build/fuzz-deps-config
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
