/*
 * Unit tests for pkg/config: the worker's key = value file and flags.
 * Requirements: every key parses; bad values and unknown keys are refused
 * naming the file and line; later settings win.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

static char *write_temp(const char *text)
{
	char *path = ry_strdup("/tmp/ry-test-config-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void file_sets_every_key(void **state)
{
	(void)state;
	struct ry_worker_config c;
	char *err = NULL;
	char *path = write_temp("# farm host\n\n"
				"db = host=/run/pg dbname=railyard\n"
				"name = farm-07\n"
				"labels = docker, gpu ,linux\n"
				"slots = 12\n"
				"claim_ahead = 6\n"
				"claim_ahead_hold_ms = 500\n"
				"cpus = 24\n"
				"mem_mb = 32768\n"
				"heartbeat_s = 3\n"
				"lease_s = 15\n"
				"workdir = /var/lib/railyard\n"
				"drain_timeout_s = 60\n"
				"cgroup = off\n"
				"task_user = build-runner\n"
				"task_ids = user\n"
				"db_passfile = /etc/railyard/pgpass\n"
				"log_max_mb = 10\n"
				"secrets_dir = /etc/railyard/secrets\n"
				"match_limit = 50000\n"
				"match_depth_limit = 500\n"
				"min_free_mb = 128\n"
				"retention_s = 86400\n"
				"retention_min_s = 600\n"
				"retention_mb = 20480\n"
				"throttle_slow_start = off\n"
				"throttle_start_slots = 3\n"
				"webhooks = off\n"
				"memory_cgroup = /sys/fs/cgroup/system.slice/railyard.service\n");
	ry_config_init(&c);
	assert_string_equal(c.memory_cgroup, "auto");	/* the default */
	assert_int_equal(c.claim_ahead, 0);		/* off unless asked for */
	assert_int_equal(c.claim_ahead_hold_ms, 2000);
	assert_int_equal(c.throttle_start_slots, 0);	/* the host's cores */
	assert_true(ry_config_load_file(&c, path, &err));
	assert_string_equal(c.db, "host=/run/pg dbname=railyard");
	assert_string_equal(c.name, "farm-07");
	assert_int_equal(c.labels.n, 3);
	assert_string_equal(c.labels.items[1], "gpu");
	assert_int_equal(c.slots, 12);
	assert_int_equal(c.claim_ahead, 6);
	assert_int_equal(c.claim_ahead_hold_ms, 500);
	assert_int_equal(c.cpus, 24);
	assert_int_equal(c.mem_mb, 32768);
	assert_int_equal(c.heartbeat_s, 3);
	assert_int_equal(c.lease_s, 15);
	assert_string_equal(c.workdir, "/var/lib/railyard");
	assert_int_equal(c.drain_timeout_s, 60);
	assert_false(c.cgroups);
	assert_string_equal(c.task_user, "build-runner");
	assert_false(c.task_uid_per_task);
	assert_string_equal(c.db_passfile, "/etc/railyard/pgpass");
	assert_int_equal(c.log_max_mb, 10);
	assert_string_equal(c.secrets_dir, "/etc/railyard/secrets");
	assert_int_equal(c.match_limit, 50000);
	assert_int_equal(c.match_depth_limit, 500);
	assert_int_equal(c.min_free_mb, 128);
	assert_int_equal(c.retention_s, 86400);
	assert_int_equal(c.retention_min_s, 600);
	assert_int_equal(c.retention_mb, 20480);
	assert_string_equal(c.memory_cgroup, "/sys/fs/cgroup/system.slice/railyard.service");
	assert_false(c.throttle_slow_start);
	assert_int_equal(c.throttle_start_slots, 3);
	assert_false(c.webhooks);
	assert_true(ry_config_check(&c, &err));
	/* A copy owns its own strings. */
	struct ry_worker_config d;
	ry_config_copy(&d, &c);
	assert_true(d.secrets_dir != c.secrets_dir);
	assert_true(d.memory_cgroup != c.memory_cgroup);
	assert_string_equal(d.labels.items[2], "linux");
	ry_config_release(&d);
	ry_config_release(&c);
	unlink(path);
	free(path);
}

struct bad_case {
	const char *text;
	const char *want;	/* substring of the error */
};

static const struct bad_case bad[] = {
	{ "slots = 0\n", ":1: slots must be a whole number from 1 to 100000, not \"0\"" },
	{ "\n# c\nslots = many\n", ":3: slots must be a whole number" },
	{ "slot = 4\n", ":1: unknown setting \"slot\"" },
	{ "labels = gpu, bad label\n", ":1: invalid label \"bad label\"" },
	{ "heartbeat_s\n", ":1: expected \"key = value\"" },
	{ "lease_s = 1\n", ":1: lease_s must be a whole number from 2" },
	{ "name = a/b\n", ":1: invalid name \"a/b\"" },
	{ "cgroup = maybe\n", ":1: cgroup must be auto or off" },
	{ "task_user = Root;rm\n", ":1: invalid task_user" },
	{ "task_ids = mine\n", ":1: task_ids must be per-task or user" },
	{ "secrets_dir = relative/dir\n", ":1: secrets_dir must be an absolute path" },
	{ "match_limit = 10\n", ":1: match_limit must be a whole number from 1000" },
	{ "log_max_mb = -1\n", ":1: log_max_mb must be a whole number from 0" },
	{ "\nmemory_cgroup = system.slice\n",
	  ":2: memory_cgroup must be auto, off or an absolute directory, not \"system.slice\"" },
	{ "throttle_slow_start = yes\n", ":1: throttle_slow_start must be on or off, not \"yes\"" },
	{ "webhooks = 1\n", ":1: webhooks must be on or off, not \"1\"" },
	{ "throttle_start_slots = -1\n", ":1: throttle_start_slots must be a whole number from 0 to 100000" },
	{ "claim_ahead = 129\n", ":1: claim_ahead must be a whole number from 0 to 128, not \"129\"" },
	{ "\nclaim_ahead_hold_ms = 5\n", ":2: claim_ahead_hold_ms must be a whole number from 10" },
};

static void bad_values_name_file_and_line(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ry_worker_config c;
		char *err = NULL;
		char *path = write_temp(bad[i].text);
		ry_config_init(&c);
		assert_false(ry_config_load_file(&c, path, &err));
		if (!strstr(err, bad[i].want) || strncmp(err, path, strlen(path)) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\" after the path", i, err, bad[i].want);
		free(err);
		ry_config_release(&c);
		unlink(path);
		free(path);
	}
}

static void flags_override_and_cross_check(void **state)
{
	(void)state;
	struct ry_worker_config c;
	char *err = NULL;
	ry_config_init(&c);
	assert_int_equal(c.slots, 4);	/* the documented defaults */
	assert_int_equal(c.heartbeat_s, 2);
	assert_int_equal(c.lease_s, 10);
	assert_true(c.cgroups);
	assert_string_equal(c.task_user, "railyard-task");
	assert_true(c.task_uid_per_task);
	assert_int_equal(c.log_max_mb, 100);
	assert_true(ry_config_set(&c, "slots", "7", "option --slots", &err));
	assert_true(ry_config_set(&c, "slots", "9", "option --slots", &err));
	assert_int_equal(c.slots, 9);
	assert_true(ry_config_set(&c, "heartbeat_s", "6", "option --heartbeat", &err));
	assert_false(ry_config_check(&c, &err));	/* lease 10 < 2 x 6 */
	assert_non_null(strstr(err, "lease_s (10) must be at least twice heartbeat_s (6)"));
	free(err);
	assert_true(ry_config_set(&c, "heartbeat_s", "2", "option --heartbeat", &err));
	assert_true(ry_config_set(&c, "retention_s", "60", "f:1", &err));
	assert_false(ry_config_check(&c, &err));	/* min 3600 > 60 */
	assert_non_null(strstr(err, "retention_min_s (3600) must not exceed retention_s (60)"));
	free(err);
	ry_config_release(&c);
}

static void missing_file_is_named(void **state)
{
	(void)state;
	struct ry_worker_config c;
	char *err = NULL;
	ry_config_init(&c);
	assert_false(ry_config_load_file(&c, "/nonexistent/worker.conf", &err));
	assert_non_null(strstr(err, "cannot read /nonexistent/worker.conf"));
	free(err);
	ry_config_release(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(file_sets_every_key),
		cmocka_unit_test(bad_values_name_file_and_line),
		cmocka_unit_test(flags_override_and_cross_check),
		cmocka_unit_test(missing_file_is_named),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
