/*
 * libFuzzer target for the manifest parsers of pkg/deps: the first byte
 * picks a file name (go.mod, requirements-dev.txt, Dockerfile, .env,
 * x.proto, settings.gradle, build.gradle.kts, pyproject.toml, Pipfile,
 * package.json, pom.xml, App.csproj, docker-compose.yml, a Kubernetes
 * manifest, pnpm-workspace.yaml); the rest is that file in a repository
 * next to a few fixed manifests it can refer to.  Any bytes must give a
 * scan whose warnings name a file of the repository, and no crash, leak
 * or undefined behaviour.  Built by `make fuzz`, run by
 * `make fuzz-run FUZZ_SECONDS=N` (seeds: tests/fuzz/corpus/deps_lines/).
 */
#include "deps/deps.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {
	"svc/go.mod", "svc/requirements-dev.txt", "svc/Dockerfile", "svc/.env", "svc/api/x.proto",
	"settings.gradle", "svc/build.gradle.kts", "svc/pyproject.toml", "svc/Pipfile",
	"svc/package.json", "svc/pom.xml", "svc/App.csproj", "docker-compose.yml", "k8s/app.yaml",
	"pnpm-workspace.yaml", "go.work",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *name = names[data[0] % (sizeof(names) / sizeof(names[0]))];
	char *text = malloc(size);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';	/* files in memory are C strings: stop at a NUL */
	const struct ry_deps_file files[] = {
		{ name, text },
		{ "lib/go.mod", "module example.com/lib\n" },
		{ "lib/package.json", "{\"name\": \"lib\"}" },
		{ "lib/pom.xml", "<project><groupId>g</groupId><artifactId>lib</artifactId></project>" },
		{ "lib/Lib.csproj", "<Project></Project>" },
		{ "lib/setup.py", "setup(name='lib')" },
		{ "lib/Dockerfile", "FROM scratch\n" },
		{ "lib/lib.proto", "syntax = \"proto3\";\n" },
		{ "settings.gradle", "include ':svc', ':lib'\n" },
	};
	size_t n = sizeof(files) / sizeof(files[0]);
	if (!strcmp(name, "settings.gradle"))
		n--;	/* the fuzzed one takes its place */
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	char *err = NULL;
	if (!ry_deps_scan_files(files, n, NULL, &g, &cfg, &err))
		abort();	/* no railyard.yaml: a scan always completes */
	for (size_t i = 0; i < g.warnings.n; i++) {
		const char *w = g.warnings.items[i];
		bool named = false;
		for (size_t k = 0; k < n && !named; k++)
			named = !strncmp(w, files[k].path, strlen(files[k].path));
		if (!named && strcmp(w, "(more messages left out)") != 0)
			abort();
	}
	struct ry_strlist errors = { 0 }, warnings = { 0 };
	(void)ry_deps_check_cycles(&g, NULL, &errors, &warnings, 3);
	char *json = ry_deps_graph_json(&g, true);
	if (json[0] != '{')
		abort();
	free(json);
	ry_strlist_release(&errors);
	ry_strlist_release(&warnings);
	ry_deps_graph_release(&g);
	ry_deps_config_release(&cfg);
	free(text);
	return 0;
}
