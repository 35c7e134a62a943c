/*
 * libFuzzer target for the CI importers: any bytes, as a GitHub workflow
 * and as a .gitlab-ci.yml, must give either a pipeline whose rendered spec
 * pkg/spec loads, or an error naming the file — never a crash, a leak or
 * undefined behaviour.  Built by `make fuzz`, run by
 * `make fuzz-run FUZZ_SECONDS=N` (seeds: tests/fuzz/corpus/ciimport/).
 */
#include "ciimport/ciimport.h"
#include "spec/spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void check(bool ok, struct ry_ci_pipeline *p, char *err, const char *file)
{
	if (!ok) {
		if (!err || !strstr(err, file))
			abort();	/* an error must name the file */
		free(err);
		ry_ci_pipeline_release(p);
		return;
	}
	char *yaml = ry_ci_render(p, &err);
	if (!yaml)
		abort();
	struct ry_strlist errors = { 0 };
	struct ry_spec *spec = ry_spec_parse("x", yaml, strlen(yaml), RY_SPEC_YAML, &errors);
	/* Only the graph checks (a needs cycle) and label syntax (a runs-on or
	 * tags entry no agent label can have: railyard.valid_label) may refuse
	 * what an importer built. */
	if (!spec && !strstr(errors.items[0], "cycle: ") &&
	    !strstr(errors.items[0], "\" in requires is invalid: "))
		abort();
	ry_spec_free(spec);
	ry_strlist_release(&errors);
	free(yaml);
	ry_ci_pipeline_release(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[128];
	struct ry_ci_pipeline p;
	char *err = NULL;

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/fuzz_ciimport.%d", (int)getpid());
		if (mkdtemp(strcpy(path, "/tmp/fuzz_ciimport.XXXXXX")))
			snprintf(dir, sizeof(dir), "%s", path);
	}
	snprintf(path, sizeof(path), "%s/.gitlab-ci.yml", dir);
	FILE *f = fopen(path, "wb");
	if (!f)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	check(ry_ci_import_github(path, NULL, &p, &err), &p, err, path);
	err = NULL;
	const char *paths[] = { path };
	check(ry_ci_import_gitlab(paths, 1, NULL, &p, &err), &p, err, ".gitlab-ci.yml");
	return 0;
}
