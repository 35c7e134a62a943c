/*
 * libFuzzer target for the spec loader (pkg/spec): any bytes, as YAML and
 * as JSON, must give either a spec or messages naming the source — never a
 * crash, a leak or undefined behaviour — and an accepted spec must turn
 * into JSON for the database.  Built by `make fuzz`, run by `make fuzz-run`
 * (seeds: tests/fuzz/corpus/spec/).
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
