/*
 * Unit tests for pkg/deps as a whole.  Requirements: the walk of a real
 * directory never reads outside it (symbolic links out are refused, link
 * loops are warnings, links to directories are not followed), skips
 * hidden, vendored and built directories, files over 1 MiB and what
 * railyard.yaml ignores; declarations in railyard.yaml add services and
 * edges, replace detected edges, suppress false ones, exclude services and
 * add shared paths; service names are unique; paths normalise and globs
 * match as documented (in PCRE2 here, in PostgreSQL in the integration
 * test).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deps_check.h"
#include "match/match.h"

static char *tmp_dir(void)
{
	char tmpl[] = "/tmp/railyard-test-deps.XXXXXX";
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	return ry_strdup(d);
}

static void write_file(const char *dir, const char *rel, const char *data, size_t len)
{
	char *path = ry_asprintf("%s/%s", dir, rel);
	for (char *p = path + strlen(dir) + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			(void)mkdir(path, 0755);
			*p = '/';
		}
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
	free(path);
}

static void put(const char *dir, const char *rel, const char *data)
{
	write_file(dir, rel, data, strlen(data));
}

static void link_at(const char *dir, const char *target, const char *rel)
{
	char *path = ry_asprintf("%s/%s", dir, rel);
	assert_int_equal(symlink(target, path), 0);
	free(path);
}

static void remove_tree(const char *dir)
{
	char *cmd = ry_asprintf("rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static void the_walk_stays_inside(void **state)
{
	(void)state;
	char *top = tmp_dir(), *outside = tmp_dir();
	put(outside, "go.mod", "module secret\n");
	put(top, "repo/a/go.mod", "module a\nrequire b v1\n");
	put(top, "repo/b/go.mod", "module b\n");
	put(top, "repo/.git/x/go.mod", "module hidden\n");
	put(top, "repo/node_modules/dep/package.json", "{\"name\": \"vendored\"}");
	put(top, "repo/vendor/x/go.mod", "module vendored\n");
	put(top, "repo/gen/go.mod", "module generated\n");
	put(top, "repo/railyard.yaml", "ignore: [gen/]\n");
	char *out = ry_asprintf("%s/go.mod", outside);
	link_at(top, out, "repo/a/Dockerfile");		/* a link out of the tree */
	link_at(top, "loop2", "repo/b/Dockerfile");	/* a loop of links */
	link_at(top, "Dockerfile", "repo/b/loop2");
	link_at(top, "..", "repo/a/up");		/* a link to a directory */
	link_at(top, outside, "repo/c");
	/* 1 MiB + 1 of package.json: skipped, said so */
	size_t big = (1u << 20) + 1;
	char *blob = malloc(big);
	memset(blob, ' ', big);
	blob[0] = '{';
	blob[big - 1] = '}';
	write_file(top, "repo/huge/package.json", blob, big);
	free(blob);

	char *repo = ry_asprintf("%s/repo", top);
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	char *err = NULL;
	assert_true(ry_deps_scan_dir(repo, NULL, &g, &cfg, &err));
	assert_int_equal(g.nservices, 2);	/* a and b, nothing else */
	assert_edge(&g, "a", "b", RY_DEPS_BUILD, "a/go.mod", 2);
	assert_warning(&g, "a/Dockerfile:", "outside the repository");
	assert_warning(&g, "b/Dockerfile:", "loop of symbolic links");
	assert_warning(&g, "huge/package.json:", "larger than 1024 KiB");
	for (size_t i = 0; i < g.nservices; i++)
		assert_null(strstr(g.services[i].name, "secret"));
	release(&g, &cfg);
	free(repo);
	free(out);
	remove_tree(top);
	remove_tree(outside);
	free(top);
	free(outside);
}

static const char declarations[] =
	"team: shop\n"
	"services:\n"
	"  - name: legacy\n"
	"    root: legacy\n"
	"    ecosystem: make\n"
	"    team: old-timers\n"
	"  - name: tools\n"
	"    exclude: true\n"
	"  - name: edge-proxy\n"
	"dependencies:\n"
	"  - {from: web, to: legacy, kind: runtime}\n"
	"  - {from: web, to: api, kind: build, suppress: true}\n"
	"  - {from: api, to: legacy}\n"
	"  - {from: api, to: nobody}\n"
	"shared:\n"
	"  - paths: [Makefile, 'ci/**']\n"
	"    affects: [all]\n"
	"  - paths: ['*.go.tmpl']\n"
	"    affects: [ecosystem:go, web]\n";

static void declarations_override_detection(void **state)
{
	(void)state;
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	SCAN(&g, &cfg,
	     { "railyard.yaml", declarations },
	     { "web/package.json", "{\"name\": \"web\", \"dependencies\": {\"api\": \"*\"}}" },
	     { "api/package.json", "{\"name\": \"api\", \"dependencies\": {\"legacy\": \"*\"}}" },
	     { "tools/package.json", "{\"name\": \"tools\", \"dependencies\": {\"api\": \"*\"}}" },
	     { "legacy/package.json", "{\"name\": \"legacy\"}" },
	     { "go/go.mod", "module x\n" });
	assert_string_equal(cfg.team, "shop");
	size_t legacy = svc(&g, "legacy");
	assert_true(g.services[legacy].is_explicit);
	assert_string_equal(g.services[legacy].root, "legacy");
	assert_string_equal(g.services[legacy].ecosystem, "make");
	assert_string_equal(g.services[legacy].team, "old-timers");
	assert_true(g.services[svc(&g, "tools")].excluded);
	assert_null(g.services[svc(&g, "edge-proxy")].root);
	assert_edge(&g, "web", "legacy", RY_DEPS_RUNTIME, "railyard.yaml", 11);
	/* declared over detected: the declaration is the evidence, detection is kept */
	const struct ry_deps_edge *e = find_edge(&g, "api", "legacy", RY_DEPS_BUILD);
	assert_non_null(e);
	assert_true(e->is_explicit);
	assert_string_equal(e->file, "railyard.yaml");
	assert_int_equal(e->line, 13);
	assert_int_equal(e->more.n, 1);
	assert_string_equal(e->more.items[0], "api/package.json:1");
	/* suppressed: stored, not part of the graph */
	e = find_edge(&g, "web", "api", RY_DEPS_BUILD);
	assert_non_null(e);
	assert_true(e->suppressed);
	assert_false(ry_deps_edge_active(&g, e));
	assert_no_edge(&g, "tools", "api");
	assert_warning(&g, "railyard.yaml:14:", "no service named \"nobody\"");
	size_t makefile = 0, tmpl = 0;
	for (size_t i = 0; i < g.npaths; i++) {
		makefile += !strcmp(g.paths[i].glob, "Makefile");
		tmpl += !strcmp(g.paths[i].glob, "*.go.tmpl");
	}
	assert_int_equal(makefile, 5);	/* every service but the excluded one */
	assert_int_equal(tmpl, 2);	/* go and web */
	release(&g, &cfg);
}

static void names_are_unique(void **state)
{
	(void)state;
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	SCAN(&g, &cfg,
	     { "shop/cart/go.mod", "module cart\n" },
	     { "legacy/cart/package.json", "{\"name\": \"cart\"}" },
	     { "x/package.json", "{\"name\": \"we ird/na$me\"}" });
	svc(&g, "shop/cart");
	svc(&g, "legacy/cart");
	svc(&g, "we-ird/na-me");
	release(&g, &cfg);
}

struct norm_case {
	const char *in;
	const char *out;	/* NULL: refused */
};

static void paths_normalise(void **state)
{
	(void)state;
	static const struct norm_case cases[] = {
		{ "a/b", "a/b" }, { "./a//b/", "a/b" }, { "a/../b", "b" }, { "a/..", "." },
		{ "../a", NULL }, { "/etc/passwd", NULL }, { "", NULL }, { "a/../../b", NULL },
		{ ".", "." },
	};
	for (size_t i = 0; i < RY_ARRAY_SIZE(cases); i++) {
		char *got = ry_deps_path_normalize(cases[i].in);
		if (!cases[i].out)
			assert_null(got);
		else
			assert_string_equal(got, cases[i].out);
		free(got);
	}
}

struct glob_case {
	const char *glob;
	const char *path;
	bool match;
};

static void globs_match_as_documented(void **state)
{
	(void)state;
	static const struct glob_case cases[] = {
		{ "Makefile", "Makefile", true }, { "Makefile", "a/Makefile", false },
		{ "*.md", "README.md", true }, { "*.md", "docs/x.md", false },
		{ "**/*.md", "docs/x.md", true }, { "**/*.md", "x.md", true },
		{ "ci/**", "ci/a/b.yml", true }, { "ci/**", "ci", true }, { "ci/**", "cix/a", false },
		{ "docs/", "docs/a/b", true }, { "docs/", "docs", false },
		{ "a?c", "abc", true }, { "a?c", "a/c", false },
		{ "[ab].txt", "b.txt", true }, { "[!ab].txt", "b.txt", false },
		{ "a.b", "axb", false }, { "a+(b)", "a+(b)", true }, { "[x", "[x", true },
	};
	for (size_t i = 0; i < RY_ARRAY_SIZE(cases); i++) {
		char *re = ry_glob_regex(cases[i].glob, RY_GLOB_GIT), *err = NULL;
		struct ry_match *m = ry_match_compile(re, &err);
		if (!m)
			fail_msg("glob %s -> %s does not compile: %s", cases[i].glob, re, err);
		if (ry_match_test(m, cases[i].path) != cases[i].match)
			fail_msg("glob %s (%s) on %s: expected %s", cases[i].glob, re, cases[i].path,
				 cases[i].match ? "a match" : "no match");
		ry_match_free(m);
		free(re);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_walk_stays_inside),
		cmocka_unit_test(declarations_override_detection),
		cmocka_unit_test(names_are_unique),
		cmocka_unit_test(paths_normalise),
		cmocka_unit_test(globs_match_as_documented),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
