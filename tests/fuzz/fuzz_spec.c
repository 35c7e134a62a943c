/*
 * libFuzzer target for the spec parser: any bytes, as YAML and as JSON,
 * must give either a spec or messages naming FILE:LINE — never a crash, a
 * leak or undefined behaviour.  Not built by `make`; build and run with:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE \
 *       -Ipkg -o build/fuzz_spec tests/fuzz/fuzz_spec.c pkg/spec/load.c pkg/spec/spec.c \
 *       pkg/archive/path.c \
 *       pkg/core/core.c pkg/match/match.c -lyaml -ljansson -lpcre2-8
 *   mkdir -p build/fuzz-corpus && cp examples/shop.* build/fuzz-corpus/
 *   build/fuzz_spec -max_total_time=60 build/fuzz-corpus
 */
#include "spec/spec.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *source, const uint8_t *data, size_t size, enum ry_spec_format f)
{
	struct ry_strlist errors = { 0 };
	struct ry_spec *spec = ry_spec_parse(source, (const char *)data, size, f, &errors);

	/* Exactly one of: a spec, or at least one message about this source. */
	if (!spec == !errors.n)
		abort();
	for (size_t i = 0; i < errors.n; i++)
		if (strncmp(errors.items[i], source, strlen(source)) != 0)
			abort();
	if (spec) {
		char *t = ry_spec_tasks_json(spec), *e = ry_spec_edges_json(spec);
		if (t[0] != '[' || e[0] != '[')
			abort();
		free(t);
		free(e);
	}
	ry_spec_free(spec);
	ry_strlist_release(&errors);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check("fuzz.yaml", data, size, RY_SPEC_YAML);
	check("fuzz.json", data, size, RY_SPEC_JSON);
	return 0;
}
