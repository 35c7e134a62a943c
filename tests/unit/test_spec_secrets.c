/*
 * Unit tests for the spec's secrets field (pkg/spec): secrets: {NAME: file}
 * names env values the worker reads from files under its secrets_dir.
 * Names follow env's rules; a file is relative and stays inside the
 * directory; a name is not both in env and secrets; the submission JSON
 * carries the mapping (names and files only).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "spec/spec.h"

static struct ry_spec *parse(const char *yaml, struct ry_strlist *errors)
{
	return ry_spec_parse("s.yaml", yaml, strlen(yaml), RY_SPEC_AUTO, errors);
}

static void secrets_are_read_and_carried(void **state)
{
	(void)state;
	struct ry_strlist errors = { 0 };
	struct ry_spec *s = parse("name: p\n"
				  "tasks:\n"
				  "  - name: deploy\n"
				  "    command: ./deploy\n"
				  "    env: {REGION: eu}\n"
				  "    secrets: {API_TOKEN: deploy/token, DB_PASSWORD: db.pw}\n", &errors);
	if (!s)
		fail_msg("%s", errors.n ? errors.items[0] : "no spec");
	assert_int_equal(s->tasks[0].nsecrets, 2);
	assert_string_equal(s->tasks[0].secrets[0].name, "API_TOKEN");
	assert_string_equal(s->tasks[0].secrets[0].value, "deploy/token");
	char *json = ry_spec_tasks_json(s);
	json_t *a = json_loads(json, 0, NULL);
	json_t *sec = json_object_get(json_array_get(a, 0), "secrets");
	assert_string_equal(json_string_value(json_object_get(sec, "DB_PASSWORD")), "db.pw");
	json_decref(a);
	free(json);
	ry_spec_free(s);
}

struct bad_case {
	const char *secrets;	/* the task's secrets: value */
	const char *error;	/* expected first error */
};

static const struct bad_case bad[] = {
	{ "{1TOKEN: t}", "s.yaml:5: task \"t\": secret name \"1TOKEN\" is invalid" },
	{ "{TOKEN: /etc/shadow}", "s.yaml:5: task \"t\": secret \"TOKEN\": \"/etc/shadow\" must be a file name relative" },
	{ "{TOKEN: ../outside}", "s.yaml:5: task \"t\": secret \"TOKEN\": \"../outside\" must be a file name relative" },
	{ "{TOKEN: a/../../b}", "s.yaml:5: task \"t\": secret \"TOKEN\": \"a/../../b\" must be a file name relative" },
	{ "{TOKEN: a//b}", "s.yaml:5: task \"t\": secret \"TOKEN\": \"a//b\" must be a file name relative" },
	{ "{TOKEN: dir/}", "s.yaml:5: task \"t\": secret \"TOKEN\": \"dir/\" must be a file name relative" },
	{ "{REGION: region}", "s.yaml:5: task \"t\": \"REGION\" is both in env and in secrets" },
	{ "[TOKEN]", "s.yaml:5: task \"t\": secrets must be a mapping of NAME: file" },
};

static void bad_secrets_are_named(void **state)
{
	(void)state;
	for (size_t i = 0; i < RY_ARRAY_SIZE(bad); i++) {
		struct ry_strlist errors = { 0 };
		char *yaml = ry_asprintf("name: p\ntasks:\n  - name: t\n    command: x\n"
					 "    secrets: %s\n    env: {REGION: eu}\n", bad[i].secrets);
		struct ry_spec *s = parse(yaml, &errors);
		if (s || !errors.n || strncmp(errors.items[0], bad[i].error, strlen(bad[i].error)) != 0)
			fail_msg("%s: got %s", bad[i].secrets, errors.n ? errors.items[0] : "a spec");
		ry_spec_free(s);
		ry_strlist_release(&errors);
		free(yaml);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(secrets_are_read_and_carried),
		cmocka_unit_test(bad_secrets_are_named),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
