/*
 * Unit tests for the Maven and Gradle detectors of pkg/deps.
 * Requirements, Maven: every pom.xml is a service named by its artifactId
 * (a renamed artifact is found by it), an aggregator (packaging pom) owns
 * only its pom.xml; <parent> and <dependency> on a sibling are build
 * edges, <scope>test</scope> test edges, with the line of the artifactId;
 * groupId is inherited and ${...} expanded along the parent chain; a
 * <module> without a pom.xml and broken XML are warnings with lines.
 * Gradle: settings includes (several per line, over lines, Kotlin DSL,
 * projectDir) are services; project(":x") and projects.x in
 * implementation/api are build edges, in test configurations test edges;
 * a project the settings do not include is a warning.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "deps_check.h"

static const char parent_pom[] =
	"<?xml version=\"1.0\"?>\n"
	"<project xmlns=\"http://maven.apache.org/POM/4.0.0\">\n"
	"  <groupId>com.shop</groupId>\n"
	"  <artifactId>shop-parent</artifactId>\n"
	"  <packaging>pom</packaging>\n"
	"  <properties><shop.group>com.shop</shop.group></properties>\n"
	"  <modules>\n"
	"    <module>orders</module>\n"
	"    <module>payments</module>\n"
	"    <module>missing</module>\n"
	"  </modules>\n"
	"</project>\n";

static const char payments_pom[] =
	"<project>\n"
	"  <parent>\n"
	"    <groupId>com.shop</groupId>\n"
	"    <artifactId>shop-parent</artifactId>\n"
	"  </parent>\n"
	"  <artifactId>payments-core</artifactId>\n"
	"  <dependencies>\n"
	"    <dependency>\n"
	"      <groupId>${project.groupId}</groupId>\n"
	"      <artifactId>orders-api</artifactId>\n"
	"    </dependency>\n"
	"    <dependency>\n"
	"      <groupId>${shop.group}</groupId>\n"
	"      <artifactId>testkit</artifactId>\n"
	"      <scope>test</scope>\n"
	"    </dependency>\n"
	"    <dependency><groupId>org.junit</groupId><artifactId>junit</artifactId></dependency>\n"
	"  </dependencies>\n"
	"</project>\n";

static void maven_modules_parents_and_dependencies(void **state)
{
	(void)state;
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	SCAN(&g, &cfg,
	     { "pom.xml", parent_pom },
	     { "orders/pom.xml", "<project><parent><groupId>com.shop</groupId>"
				 "<artifactId>shop-parent</artifactId></parent>\n"
				 "<artifactId>orders-api</artifactId></project>\n" },
	     { "payments/pom.xml", payments_pom },
	     { "testing/pom.xml", "<project><groupId>com.shop</groupId><artifactId>testkit</artifactId>"
				  "</project>" });
	assert_int_equal(g.nservices, 4);
	size_t parent = svc(&g, "shop-parent");
	assert_false(g.services[parent].owns_root);	/* an aggregator owns only its pom */
	assert_true(g.services[svc(&g, "orders-api")].owns_root);
	assert_edge(&g, "payments-core", "shop-parent", RY_DEPS_BUILD, "payments/pom.xml", 4);
	assert_edge(&g, "payments-core", "orders-api", RY_DEPS_BUILD, "payments/pom.xml", 10);
	assert_edge(&g, "payments-core", "testkit", RY_DEPS_TEST, "payments/pom.xml", 14);
	assert_edge(&g, "orders-api", "shop-parent", RY_DEPS_BUILD, "orders/pom.xml", 1);
	assert_int_equal(active_edges(&g), 4);
	assert_warning(&g, "pom.xml:10:", "module missing: no pom.xml");
	release(&g, &cfg);
}

static void broken_poms_are_warnings(void **state)
{
	(void)state;
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	SCAN(&g, &cfg,
	     { "a/pom.xml", "<project>\n  <artifactId>a</artifactId>\n  <dependencies>\n</project>\n" },
	     { "b/pom.xml", "<settings><x/></settings>" },
	     { "c/pom.xml", "<project><groupId>g</groupId></project>" },
	     { "d/pom.xml", "<!DOCTYPE p [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
			    "<project><artifactId>&x;</artifactId></project>" },
	     { "e/pom.xml", "" });
	assert_warning(&g, "a/pom.xml:5:", "invalid XML: Premature end of data");
	assert_warning(&g, "b/pom.xml:1:", "not a Maven POM");
	assert_warning(&g, "c/pom.xml:1:", "no <artifactId>");
	assert_warning(&g, "e/pom.xml:1:", "invalid XML");
	assert_warning(&g, "d/pom.xml:1:", "no <artifactId>");
	/* an external entity is never loaded: whatever d is named, not /etc/passwd's text */
	for (size_t i = 0; i < g.nservices; i++)
		assert_null(strstr(g.services[i].name, "root"));
	release(&g, &cfg);
}

static const char settings[] =
	"rootProject.name = 'shop'\n"
	"include ':services:orders', ':services:payments'\n"
	"include(\n"
	"    \"libs:money\",\n"
	"    \"testing\"\n"
	")\n"
	"// include ':commented'\n"
	"include ':legacy'\n"
	"project(':legacy').projectDir = file('old/legacy-code')\n"
	"include ':ghost'\n";

static void gradle_settings_and_project_dependencies(void **state)
{
	(void)state;
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	SCAN(&g, &cfg,
	     { "settings.gradle", settings },
	     { "build.gradle", "allprojects { repositories { mavenCentral() } }\n" },
	     { "services/orders/build.gradle",
	       "dependencies {\n"
	       "    implementation project(':libs:money')\n"
	       "    api(project(path: \":legacy\"))\n"
	       "    testImplementation project(':testing')\n"
	       "    implementation 'org.slf4j:slf4j-api:2.0.9'\n"
	       "    implementation project(':nope')\n"
	       "}\n" },
	     { "services/payments/build.gradle.kts",
	       "dependencies {\n"
	       "    implementation(projects.libs.money)\n"
	       "    integrationTestImplementation(projects.services.orders)\n"
	       "}\n" },
	     { "libs/money/build.gradle", "" },
	     { "testing/build.gradle", "" },
	     { "old/legacy-code/build.gradle", "" },
	     { "tools/build.gradle", "// a stray build below the settings\n" });
	assert_int_equal(g.nservices, 5);
	assert_string_equal(g.services[svc(&g, "legacy")].root, "old/legacy-code");
	assert_edge(&g, "orders", "money", RY_DEPS_BUILD, "services/orders/build.gradle", 2);
	assert_edge(&g, "orders", "legacy", RY_DEPS_BUILD, "services/orders/build.gradle", 3);
	assert_edge(&g, "orders", "testing", RY_DEPS_TEST, "services/orders/build.gradle", 4);
	assert_edge(&g, "payments", "money", RY_DEPS_BUILD, "services/payments/build.gradle.kts", 2);
	assert_edge(&g, "payments", "orders", RY_DEPS_TEST, "services/payments/build.gradle.kts", 3);
	assert_int_equal(active_edges(&g), 5);
	assert_warning(&g, "settings.gradle:10:", "include :ghost: no directory");
	assert_warning(&g, "services/orders/build.gradle:6:", "project :nope: no such project");
	assert_int_equal(ry_deps_find_service(&g, "tools"), -1);
	release(&g, &cfg);
}

static void a_single_project_build_is_one_service(void **state)
{
	(void)state;
	struct ry_deps_graph g;
	struct ry_deps_config cfg;
	SCAN(&g, &cfg,
	     { "svc/settings.gradle.kts", "rootProject.name = \"svc\"\n" },
	     { "svc/build.gradle.kts", "plugins { java }\n" },
	     { "alone/build.gradle", "apply plugin: 'java'\n" });
	assert_int_equal(g.nservices, 2);
	assert_string_equal(g.services[svc(&g, "svc")].ecosystem, "gradle");
	assert_string_equal(g.services[svc(&g, "alone")].ecosystem, "gradle");
	release(&g, &cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(maven_modules_parents_and_dependencies),
		cmocka_unit_test(broken_poms_are_warnings),
		cmocka_unit_test(gradle_settings_and_project_dependencies),
		cmocka_unit_test(a_single_project_build_is_one_service),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
