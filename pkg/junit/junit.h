/*
 * junit: JUnit XML reports (the format Jenkins' junit step, GitLab's
 * artifacts:reports:junit and the GitHub test-report actions read).
 *
 * One <testsuite> per report, one <testcase> per case.  The XML is written
 * with libxml2's xmlTextWriter, never by hand; text that XML 1.0 cannot
 * carry (control characters, invalid UTF-8 in a log tail) becomes U+FFFD.
 * The only module that includes libxml2's headers.
 */
#ifndef RY_JUNIT_H
#define RY_JUNIT_H

#include "core/core.h"

enum ry_junit_outcome {
	RY_JUNIT_PASSED,	/* no child element */
	RY_JUNIT_FAILED,	/* <failure message= type=>output</failure> */
	RY_JUNIT_SKIPPED,	/* <skipped message=/> */
};

struct ry_junit_case {
	const char *classname;	/* e.g. the pipeline's name */
	const char *name;	/* e.g. the task's name */
	double time_s;		/* duration; < 0: unknown (written as 0) */
	enum ry_junit_outcome outcome;
	const char *message;	/* failure or skip reason; NULL: none */
	const char *type;	/* failure type ("exit", "timeout"); NULL: "failure" */
	const char *output;	/* log tail: the failure's body and <system-out>; NULL: none */
};

struct ry_junit_property {
	const char *name;
	const char *value;
};

struct ry_junit_suite {
	const char *name;		/* required */
	const char *timestamp;		/* ISO 8601 without zone (UTC), NULL: left out */
	double time_s;			/* the whole run */
	const struct ry_junit_property *props;
	size_t nprops;
	const struct ry_junit_case *cases;
	size_t ncases;
};

/*
 * The report as a NUL-terminated UTF-8 document (caller frees); NULL with
 * *err set (caller frees) when libxml2 fails.
 */
char *ry_junit_render(const struct ry_junit_suite *suite, char **err) RY_MUST_CHECK;

/*
 * Renders and writes the report to path atomically: a temporary file in
 * the same directory, fsync, rename.  Readers see the old file or the whole
 * new one, never half.  False with *err set ("cannot write PATH: ...").
 */
bool ry_junit_write_file(const char *path, const struct ry_junit_suite *suite,
			 char **err) RY_MUST_CHECK;

#endif
