/*
 * Unit tests for the .NET detector of pkg/deps.  Requirements: every
 * .csproj and .fsproj file is a service named after its file; ProjectReference
 * (Windows separators, $(MSBuildThisFileDirectory)) is a build edge, from
 * a test project a test edge; a PackageReference naming a sibling's
 * PackageId or AssemblyName (a renamed artifact) is an edge too; an
 * unknown ProjectReference and broken XML are warnings with lines;
 * Directory.Build.props affects the projects below it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "deps_check.h"

static void project_and_package_references(void **state)
{
	(void)state;
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	SCAN(&g, &cfg,
	     { "src/Cart/Cart.csproj",
	       "<Project Sdk=\"Microsoft.NET.Sdk\">\n"
	       "  <ItemGroup>\n"
	       "    <ProjectReference Include=\"..\\Shared\\Shared.csproj\" />\n"
	       "    <PackageReference Include=\"Shop.Money\" Version=\"1.0.0\" />\n"
	       "    <PackageReference Include=\"Newtonsoft.Json\" Version=\"13.0.1\" />\n"
	       "    <ProjectReference Include=\"$(MSBuildThisFileDirectory)../Gone/Gone.csproj\" />\n"
	       "  </ItemGroup>\n"
	       "</Project>\n" },
	     { "src/Shared/Shared.csproj", "<Project Sdk=\"Microsoft.NET.Sdk\"></Project>" },
	     { "src/Money/Money.fsproj",
	       "<Project>\n  <PropertyGroup>\n    <PackageId>Shop.Money</PackageId>\n"
	       "  </PropertyGroup>\n</Project>\n" },
	     { "tests/Cart.Tests/Cart.Tests.csproj",
	       "<Project Sdk=\"Microsoft.NET.Sdk\">\n"
	       "  <ItemGroup>\n"
	       "    <PackageReference Include=\"xunit\" Version=\"2.4.2\" />\n"
	       "    <ProjectReference Include=\"../../src/Cart/Cart.csproj\" />\n"
	       "  </ItemGroup>\n"
	       "</Project>\n" },
	     { "src/Directory.Build.props", "<Project></Project>" });
	assert_int_equal(g.nservices, 4);
	assert_edge(&g, "Cart", "Shared", RY_DEPS_BUILD, "src/Cart/Cart.csproj", 3);
	assert_edge(&g, "Cart", "Money", RY_DEPS_BUILD, "src/Cart/Cart.csproj", 4);
	assert_edge(&g, "Cart.Tests", "Cart", RY_DEPS_TEST, "tests/Cart.Tests/Cart.Tests.csproj", 4);
	assert_int_equal(active_edges(&g), 3);
	assert_warning(&g, "src/Cart/Cart.csproj:6:", "ProjectReference");
	size_t below = 0;
	for (size_t i = 0; i < g.npaths; i++)
		below += !strcmp(g.paths[i].glob, "src/Directory.Build.props");
	assert_int_equal(below, 3);	/* Cart, Shared, Money; not the tests */
	release(&g, &cfg);
}

static void broken_project_files_are_warnings(void **state)
{
	(void)state;
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	SCAN(&g, &cfg,
	     { "a/A.csproj", "<Project>\n<ItemGroup>\n<ProjectReference Include=\"x\"\n</Project>" },
	     { "b/B.csproj", "<NotAProject/>" },
	     { "c/C.csproj", "<Project><ItemGroup><ProjectReference /><ProjectReference Include=\"$(Root)/d.csproj\"/>"
			     "</ItemGroup></Project>" });
	assert_warning(&g, "a/A.csproj:4:", "invalid XML");
	assert_warning(&g, "b/B.csproj:1:", "not an MSBuild project");
	assert_int_equal(active_edges(&g), 0);
	release(&g, &cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(project_and_package_references),
		cmocka_unit_test(broken_project_files_are_warnings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
