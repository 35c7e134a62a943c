/*
 * libFuzzer target for the CI importers: any bytes, as a GitHub workflow
 * and as a .gitlab-ci.yml, must give either a pipeline whose rendered spec
 * pkg/spec loads, or an error naming the file — never a crash, a leak or
 * undefined behaviour.  Not built by `make`; build and run with:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE \
 *       -Ipkg -o build/fuzz_ciimport tests/fuzz/fuzz_ciimport.c pkg/ciimport/[a-z]*.c \
 *       pkg/spec/load.c pkg/spec/spec.c pkg/core/core.c pkg/match/match.c \
 *       -lyaml -ljansson -lpcre2-8 -lm
 *   mkdir -p build/fuzz-ci && cp tests/fixtures/ci/github/ci.yml tests/fixtures/ci/gitlab/.gitlab-ci.yml build/fuzz-ci/
 *   build/fuzz_ciimport -max_total_time=60 build/fuzz-ci
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
	/* Only the graph checks may refuse what an importer built (a needs cycle). */
	if (!spec && !strstr(errors.items[0], "cycle: "))
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
