/*
 * Unit tests for the Python detector of pkg/deps.  Requirements: a
 * directory with pyproject.toml/setup.py is a service; local path
 * dependencies in requirements files (-e, file:, name @ file:, ./path) and
 * pyproject.toml (Poetry path tables, PEP 621 "name @ file:") are build
 * edges, and requirements-dev/-test files, Poetry dev groups and test
 * extras test edges; a sibling named by its distribution name (any case,
 * - _ .) is an edge; a path to nothing is a warning with its line;
 * requirements files inside another service do not make a service.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "deps_check.h"

static const char pyproject[] =
	"[tool.poetry]\n"
	"name = \"orders-service\"\n"
	"\n"
	"[tool.poetry.dependencies]\n"
	"python = \"^3.11\"\n"
	"shop-common = { path = \"../../libs/common\", develop = true }\n"
	"requests = \"^2.31\"\n"
	"\n"
	"[tool.poetry.group.dev.dependencies]\n"
	"shop_testing = \"*\"\n";

static const char pep621[] =
	"[project]\n"
	"name = \"Shop.Testing\"\n"
	"dependencies = [\n"
	"    \"pytest>=7\",\n"
	"    \"shop-common @ file:../common\",  # a comment\n"
	"]\n"
	"[project.optional-dependencies]\n"
	"test = [\"fakes @ file:../fakes\"]\n";

static void requirements_and_pyproject(void **state)
{
	(void)state;
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	SCAN(&g, &cfg,
	     { "services/orders/pyproject.toml", pyproject },
	     { "services/api/requirements.txt",
	       "# api\n"
	       "flask==3.0\n"
	       "-e ../../libs/common\n"
	       "orders-service\n"
	       "-r base.txt\n" },
	     { "services/api/requirements-dev.txt", "file:../../libs/fakes#egg=fakes\n" },
	     { "services/api/Dockerfile", "FROM python:3.12\n" },
	     { "libs/common/setup.py", "from setuptools import setup\nsetup(name='shop-common')\n" },
	     { "libs/testing/pyproject.toml", pep621 },
	     { "libs/fakes/pyproject.toml", "[project]\nname = \"fakes\"\n" },
	     { "libs/common/tools/requirements.txt", "black\n" });
	assert_int_equal(g.nservices, 5);
	assert_edge(&g, "orders-service", "shop-common", RY_DEPS_BUILD,
		    "services/orders/pyproject.toml", 6);
	assert_edge(&g, "orders-service", "Shop.Testing", RY_DEPS_TEST,
		    "services/orders/pyproject.toml", 10);
	assert_edge(&g, "api", "shop-common", RY_DEPS_BUILD, "services/api/requirements.txt", 3);
	assert_edge(&g, "api", "orders-service", RY_DEPS_BUILD, "services/api/requirements.txt", 4);
	assert_edge(&g, "api", "fakes", RY_DEPS_TEST, "services/api/requirements-dev.txt", 1);
	assert_edge(&g, "Shop.Testing", "shop-common", RY_DEPS_BUILD, "libs/testing/pyproject.toml", 3);
	assert_edge(&g, "Shop.Testing", "fakes", RY_DEPS_TEST, "libs/testing/pyproject.toml", 8);
	assert_int_equal(active_edges(&g), 7);
	release(&g, &cfg);
}

static void bad_python_files_are_warnings(void **state)
{
	(void)state;
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	SCAN(&g, &cfg,
	     { "a/requirements.txt", "-e ../nowhere\n\n--index-url https://x\n" },
	     { "b/pyproject.toml", "[project]\nname = \"b\"\ndependencies = [\n  \"x @ file:../a\"\n" },
	     { "c/pyproject.toml", "[[[ = = ]]\n\"unterminated\n[tool.poetry.dependencies]\n"
				   "z = { path = \"/etc\" }\n" });
	assert_warning(&g, "a/requirements.txt:1:", "../nowhere: no such directory");
	assert_warning(&g, "b/pyproject.toml:3:", "not closed");
	assert_int_equal(active_edges(&g), 0);
	release(&g, &cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(requirements_and_pyproject),
		cmocka_unit_test(bad_python_files_are_warnings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
