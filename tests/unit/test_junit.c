/*
 * Unit tests for pkg/junit: the report is well-formed XML whatever the log
 * tails hold, has the structure CI tools read (counts, one testcase per
 * case, failure with message and output, skipped), and is written
 * atomically.  Checked by parsing it back with libxml2 and XPath.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "junit/junit.h"

static const struct ry_junit_case shop_cases[] = {
	{ "shop@9f3c2e1", "build:cart", 1.5, RY_JUNIT_PASSED, NULL, NULL, "compiling cart\nok\n" },
	{ "shop@9f3c2e1", "test:cart", 0.25, RY_JUNIT_FAILED, "exit 2", "exit",
	  "FAIL TestCheckout <expected> & \"got\"\n" },
	{ "shop@9f3c2e1", "deploy:cart", 0, RY_JUNIT_SKIPPED, "upstream failed", NULL, NULL },
	{ "shop@9f3c2e1", "build:proto", 0, RY_JUNIT_SKIPPED, "cached", NULL, NULL },
};

static const struct ry_junit_property shop_props[] = {
	{ "railyard.pipeline_id", "42" },
	{ "railyard.state", "failed" },
};

static const struct ry_junit_suite shop = {
	.name = "shop@9f3c2e1", .timestamp = "2024-05-01T10:00:00", .time_s = 3.75,
	.props = shop_props, .nprops = 2, .cases = shop_cases, .ncases = 4,
};

static xmlDocPtr parse_or_fail(const char *xml)
{
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "report.xml", NULL,
				      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc)
		fail_msg("the report is not well-formed XML:\n%s", xml);
	return doc;
}

/* The string value of an XPath expression ("" when it selects nothing). */
static char *xpath(xmlDocPtr doc, const char *expr)
{
	xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
	xmlXPathObjectPtr obj = xmlXPathEvalExpression(BAD_CAST expr, ctx);
	assert_non_null(obj);
	xmlChar *s = xmlXPathCastToString(obj);
	char *out = strdup((const char *)s);
	xmlFree(s);
	xmlXPathFreeObject(obj);
	xmlXPathFreeContext(ctx);
	return out;
}

static void expect_xpath(xmlDocPtr doc, const char *expr, const char *want)
{
	char *got = xpath(doc, expr);
	if (strcmp(got, want) != 0)
		fail_msg("%s: want \"%s\", got \"%s\"", expr, want, got);
	free(got);
}

static void report_has_the_structure_ci_tools_read(void **state)
{
	(void)state;
	char *err = NULL;
	char *xml = ry_junit_render(&shop, &err);
	assert_non_null(xml);
	assert_non_null(strstr(xml, "encoding=\"UTF-8\""));
	xmlDocPtr doc = parse_or_fail(xml);

	expect_xpath(doc, "name(/*)", "testsuites");
	expect_xpath(doc, "count(/testsuites/testsuite)", "1");
	expect_xpath(doc, "/testsuites/@tests", "4");
	expect_xpath(doc, "/testsuites/testsuite/@name", "shop@9f3c2e1");
	expect_xpath(doc, "/testsuites/testsuite/@tests", "4");
	expect_xpath(doc, "/testsuites/testsuite/@failures", "1");
	expect_xpath(doc, "/testsuites/testsuite/@errors", "0");
	expect_xpath(doc, "/testsuites/testsuite/@skipped", "2");
	expect_xpath(doc, "/testsuites/testsuite/@time", "3.750");
	expect_xpath(doc, "/testsuites/testsuite/@timestamp", "2024-05-01T10:00:00");
	expect_xpath(doc, "//property[@name='railyard.pipeline_id']/@value", "42");
	expect_xpath(doc, "count(//testcase)", "4");
	expect_xpath(doc, "count(//testcase[@classname='shop@9f3c2e1'])", "4");
	expect_xpath(doc, "//testcase[@name='build:cart']/@time", "1.500");
	expect_xpath(doc, "count(//testcase[@name='build:cart']/*[not(self::system-out)])", "0");
	expect_xpath(doc, "//testcase[@name='build:cart']/system-out", "compiling cart\nok\n");
	expect_xpath(doc, "//testcase[@name='test:cart']/failure/@message", "exit 2");
	expect_xpath(doc, "//testcase[@name='test:cart']/failure/@type", "exit");
	/* Escaping is libxml2's: the text comes back exactly. */
	expect_xpath(doc, "//testcase[@name='test:cart']/failure",
		     "FAIL TestCheckout <expected> & \"got\"\n");
	expect_xpath(doc, "//testcase[@name='deploy:cart']/skipped/@message", "upstream failed");
	expect_xpath(doc, "//testcase[@name='build:proto']/skipped/@message", "cached");
	expect_xpath(doc, "count(//testcase[@name='deploy:cart']/system-out)", "0");
	xmlFreeDoc(doc);
	free(xml);
}

static void log_tails_with_any_bytes_stay_well_formed(void **state)
{
	(void)state;
	/* ANSI colours, NUL-free control bytes, invalid and overlong UTF-8, a
	 * surrogate, CDATA's terminator, and valid multibyte text. */
	static const char nasty[] = "\x1b[31mred\x1b[0m\x01\x02\x0b\x0c\x7f|\xff\xfe|\xc0\xaf|"
				    "\xed\xa0\x80|]]>|caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x9a\x82|\xe2\x9c";
	struct ry_junit_case c = { "p\x01", "t\xff", 1, RY_JUNIT_FAILED, "exit\x1b 1", NULL, nasty };
	struct ry_junit_suite s = { .name = "p", .cases = &c, .ncases = 1 };
	char *err = NULL;
	char *xml = ry_junit_render(&s, &err);
	assert_non_null(xml);
	xmlDocPtr doc = parse_or_fail(xml);
	char *body = xpath(doc, "//failure");
	assert_non_null(strstr(body, "red"));
	assert_non_null(strstr(body, "]]>"));
	assert_non_null(strstr(body, "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x9a\x82"));
	assert_null(strchr(body, '\x1b'));
	assert_null(strstr(body, "\xff"));
	assert_non_null(strstr(body, "\xEF\xBF\xBD"));	/* U+FFFD in place of each */
	free(body);
	expect_xpath(doc, "//failure/@type", "failure");
	xmlFreeDoc(doc);
	free(xml);
}

static void written_atomically(void **state)
{
	(void)state;
	char dir[] = "/tmp/test_junit.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256], leftover[300];
	snprintf(path, sizeof(path), "%s/report.xml", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("old", f);
	fclose(f);

	char *err = NULL;
	assert_true(ry_junit_write_file(path, &shop, &err));
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	xmlDocPtr doc = xmlReadFile(path, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR);
	assert_non_null(doc);
	expect_xpath(doc, "count(//testcase)", "4");
	xmlFreeDoc(doc);
	/* Nothing but the report is left in the directory. */
	snprintf(leftover, sizeof(leftover), "ls -A %s | grep -qv '^report.xml$'", dir);
	assert_int_not_equal(system(leftover), 0);

	/* An unwritable place fails with the path named, and leaves nothing. */
	char bad[300];
	snprintf(bad, sizeof(bad), "%s/missing/report.xml", dir);
	assert_false(ry_junit_write_file(bad, &shop, &err));
	assert_non_null(strstr(err, bad));
	free(err);
	unlink(path);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(report_has_the_structure_ci_tools_read),
		cmocka_unit_test(log_tails_with_any_bytes_stay_well_formed),
		cmocka_unit_test(written_atomically),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	xmlCleanupParser();
	return rc;
}
