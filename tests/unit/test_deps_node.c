/*
 * Unit tests for the Node detector of pkg/deps.  Requirements: packages of
 * a workspace (package.json "workspaces", array or object, or
 * pnpm-workspace.yaml) are services and the workspace root is not;
 * package.json files a workspace does not list are not services; a
 * dependency on a workspace package (by name, workspace: range, npm:
 * alias, file:/link: path) is a build edge, a devDependency a test edge,
 * with the package.json line as evidence; a renamed package is found by
 * its name; broken JSON is a warning with its line; the root's lock file
 * affects every package.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "deps_check.h"

static void workspace_packages_and_their_edges(void **state)
{
	(void)state;
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	SCAN(&g, &cfg,
	     { "package.json", "{\"name\": \"shop\", \"private\": true,\n"
			       " \"workspaces\": [\"apps/*\", \"packages/*\", \"!packages/old\"]}\n" },
	     { "package-lock.json", "{}" },
	     { "apps/web/package.json",
	       "{\n"
	       "  \"name\": \"@shop/web\",\n"
	       "  \"dependencies\": {\n"
	       "    \"@shop/ui\": \"workspace:*\",\n"
	       "    \"react\": \"^18.2.0\",\n"
	       "    \"money\": \"npm:@shop/money-lib@^1\"\n"
	       "  },\n"
	       "  \"devDependencies\": {\"@shop/testkit\": \"*\"},\n"
	       "  \"peerDependencies\": {\"@shop/theme\": \"file:../../packages/theme\"}\n"
	       "}\n" },
	     { "packages/ui/package.json", "{\"name\": \"@shop/ui\"}" },
	     { "packages/money/package.json", "{\"name\": \"@shop/money-lib\"}" },
	     { "packages/testkit/package.json", "{\"name\": \"@shop/testkit\"}" },
	     { "packages/theme/package.json", "{\"name\": \"theme-renamed\"}" },
	     { "packages/old/package.json", "{\"name\": \"@shop/old\"}" },
	     { "tools/scripts/package.json", "{\"name\": \"scripts\"}" });
	/* the root and what the globs leave out are no services */
	assert_int_equal(g.nservices, 5);
	assert_int_equal(ry_deps_find_service(&g, "shop"), -1);
	assert_int_equal(ry_deps_find_service(&g, "old"), -1);
	assert_int_equal(ry_deps_find_service(&g, "scripts"), -1);
	assert_edge(&g, "web", "ui", RY_DEPS_BUILD, "apps/web/package.json", 4);
	assert_edge(&g, "web", "money-lib", RY_DEPS_BUILD, "apps/web/package.json", 6);
	assert_edge(&g, "web", "testkit", RY_DEPS_TEST, "apps/web/package.json", 8);
	assert_edge(&g, "web", "theme-renamed", RY_DEPS_BUILD, "apps/web/package.json", 9);
	assert_int_equal(active_edges(&g), 4);
	/* the root's files affect the packages */
	bool lock = false;
	for (size_t i = 0; i < g.npaths; i++)
		lock |= !strcmp(g.paths[i].glob, "package-lock.json") &&
			g.paths[i].service == svc(&g, "ui");
	assert_true(lock);
	release(&g, &cfg);
}

static void pnpm_workspace_and_yarn_object_form(void **state)
{
	(void)state;
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	SCAN(&g, &cfg,
	     { "pnpm-workspace.yaml", "packages:\n  - 'libs/**'\n" },
	     { "package.json", "{\"name\": \"root\"}" },
	     { "libs/a/b/package.json", "{\"name\": \"b\", \"dependencies\": {\"c\": \"workspace:^\"}}" },
	     { "libs/c/package.json", "{\"name\": \"c\"}" },
	     { "other/package.json", "{\"name\": \"o\", \"workspaces\": {\"packages\": [\"x\"]}}" },
	     { "other/x/package.json", "{\"name\": \"x\", \"devDependencies\": {\"c\": \"1\"}}" });
	assert_int_equal(ry_deps_find_service(&g, "root"), -1);
	assert_int_equal(ry_deps_find_service(&g, "o"), -1);
	assert_edge(&g, "b", "c", RY_DEPS_BUILD, "libs/a/b/package.json", 1);
	assert_edge(&g, "x", "c", RY_DEPS_TEST, "other/x/package.json", 1);
	release(&g, &cfg);
}

static void broken_package_json_is_a_warning(void **state)
{
	(void)state;
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	SCAN(&g, &cfg,
	     { "a/package.json", "{\n  \"name\": \"a\",\n  \"dependencies\": {\"b\": \"1\",}\n}\n" },
	     { "b/package.json", "[1, 2]" },
	     { "c/package.json", "{\"name\": \"c\", \"dependencies\": [\"b\"]}" },
	     { "d/package.json", "{\"name\": \"d\", \"dependencies\": {\"gone\": \"file:../nowhere\"}}" },
	     { "e/package.json", "{\"name\": \"e\", \"name\": \"twice\"}" });
	assert_warning(&g, "a/package.json:3:", "invalid JSON");
	assert_warning(&g, "b/package.json:1:", "must hold an object");
	assert_warning(&g, "c/package.json:1:", "dependencies must be an object");
	assert_warning(&g, "d/package.json:1:", "no such path");
	assert_warning(&g, "e/package.json:1:", "invalid JSON");
	assert_int_equal(active_edges(&g), 0);
	release(&g, &cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(workspace_packages_and_their_edges),
		cmocka_unit_test(pnpm_workspace_and_yarn_object_form),
		cmocka_unit_test(broken_package_json_is_a_warning),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
