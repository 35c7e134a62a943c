/*
 * Unit tests for the Go detector of pkg/deps.  Requirements: every go.mod
 * is a service named after its module; `require` of a sibling module and
 * `replace` to a local directory are build edges with the go.mod line as
 * evidence; nested modules are services of their own; a replace to a
 * missing directory, a go.work `use` without go.mod and a go.mod without a
 * module line are warnings naming file:line; go.work affects the modules
 * below it; malformed files never crash and add no edges.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "deps_check.h"

static void require_and_replace_are_build_edges(void **state)
{
	(void)state;
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	SCAN(&g, &cfg,
	     { "services/cart/go.mod",
	       "module example.com/shop/cart\n"
	       "\n"
	       "go 1.22\n"
	       "\n"
	       "require (\n"
	       "\texample.com/shop/money v1.0.0 // indirect\n"
	       "\tgithub.com/google/uuid v1.6.0\n"
	       ")\n" },
	     { "services/checkout/go.mod",
	       "module example.com/shop/checkout\n"
	       "require example.com/shop/cart v0.0.0-20240101000000-abcdef012345\n"
	       "replace example.com/shop/lib => ../../libs/lib\n" },
	     { "libs/money/go.mod", "module example.com/shop/money\n" },
	     { "libs/lib/go.mod", "module example.com/shop/lib/v2\n" });
	assert_int_equal(g.nservices, 4);
	assert_edge(&g, "cart", "money", RY_DEPS_BUILD, "services/cart/go.mod", 6);
	assert_edge(&g, "checkout", "cart", RY_DEPS_BUILD, "services/checkout/go.mod", 2);
	/* the module path ends in a major version: the service is "lib" */
	assert_edge(&g, "checkout", "lib", RY_DEPS_BUILD, "services/checkout/go.mod", 3);
	assert_int_equal(active_edges(&g), 3);	/* uuid is not in the repository */
	assert_int_equal(g.warnings.n, 0);
	release(&g, &cfg);
}

static void nested_modules_are_services_of_their_own(void **state)
{
	(void)state;
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	SCAN(&g, &cfg,
	     { "platform/go.mod", "module acme.io/platform\nrequire acme.io/platform/tools v0.1.0\n" },
	     { "platform/tools/go.mod", "module acme.io/platform/tools\n" },
	     { "platform/tools/main.go", "package main\n" });
	assert_int_equal(g.nservices, 2);
	size_t p = svc(&g, "platform"), t = svc(&g, "tools");
	assert_string_equal(g.services[p].root, "platform");
	assert_string_equal(g.services[t].root, "platform/tools");
	assert_edge(&g, "platform", "tools", RY_DEPS_BUILD, "platform/go.mod", 2);
	release(&g, &cfg);
}

static void bad_go_files_are_warnings_with_lines(void **state)
{
	(void)state;
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	SCAN(&g, &cfg,
	     { "a/go.mod", "module a\nreplace (\n  b => ../gone\n  c => /etc\n)\n" },
	     { "odd/go.mod", "this is not go.mod at all )) ( =>\n\x01\x02\xff\n" },
	     { "go.work", "go 1.22\nuse (\n  ./a\n  ./nothing\n)\n" },
	     { "b/go.mod", "module b\nrequire a" /* no version: not a requirement */ });
	assert_warning(&g, "a/go.mod:3:", "no such directory");
	assert_warning(&g, "a/go.mod:4:", "outside the repository");
	assert_warning(&g, "odd/go.mod:1:", "no module directive");
	assert_warning(&g, "go.work:4:", "use ./nothing: no go.mod");
	assert_int_equal(active_edges(&g), 0);
	/* the module without a name is still a service, named after its directory */
	svc(&g, "odd");
	release(&g, &cfg);
}

static void go_work_affects_the_modules_below_it(void **state)
{
	(void)state;
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	SCAN(&g, &cfg,
	     { "go.work", "go 1.22\nuse ./a\nuse ./b\n" },
	     { "a/go.mod", "module a\n" },
	     { "b/go.mod", "module b\n" });
	size_t found = 0;
	for (size_t i = 0; i < g.npaths; i++)
		if (!strcmp(g.paths[i].glob, "go.work") || !strcmp(g.paths[i].glob, "go.work.sum"))
			found++;
	assert_int_equal(found, 4);	/* two files for each module it uses */
	assert_int_equal(g.warnings.n, 0);
	release(&g, &cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(require_and_replace_are_build_edges),
		cmocka_unit_test(nested_modules_are_services_of_their_own),
		cmocka_unit_test(bad_go_files_are_warnings_with_lines),
		cmocka_unit_test(go_work_affects_the_modules_below_it),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
