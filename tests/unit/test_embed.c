/*
 * The embedded cluster's start-up must fail with a message, never crash,
 * when a server program cannot even be started (issue 6, finding 11:
 * createdb's output was read after run_prog failed before making any).
 * The server binaries are fakes found through a fake pg_config first on
 * PATH; pipe2 (linked with --wrap) fails once the fake pg_ctl has run, so
 * exactly createdb cannot start.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "embed/embed.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int __wrap_pipe2(int fds[2], int flags);
int __real_pipe2(int fds[2], int flags);

static char *marker;	/* exists once the fake pg_ctl ran */

int __wrap_pipe2(int fds[2], int flags)
{
	if (marker && access(marker, F_OK) == 0) {
		errno = EMFILE;
		return -1;
	}
	return __real_pipe2(fds, flags);
}

static void write_script(const char *dir, const char *name, const char *body)
{
	char *path = ry_asprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, 0755), 0);
	free(path);
}

static void mkdir_mode(const char *path, mode_t mode)
{
	assert_int_equal(mkdir(path, mode), 0);
	assert_int_equal(chmod(path, mode), 0);	/* past the umask */
}

static void test_createdb_that_cannot_start_is_an_error(void **state)
{
	(void)state;
	char tmpl[] = "/tmp/railyard-embed.XXXXXX";
	char *top = mkdtemp(tmpl);
	assert_non_null(top);
	assert_int_equal(chmod(top, 0755), 0);
	char *bin = ry_asprintf("%s/bin", top), *marks = ry_asprintf("%s/marks", top);
	char *home = ry_asprintf("%s/home", top), *pgdata = ry_asprintf("%s/home/pg", top);
	mkdir_mode(bin, 0755);
	mkdir_mode(marks, 0777);	/* the fakes may run as another user */
	mkdir_mode(home, 0755);
	mkdir_mode(pgdata, 0700);
	marker = ry_asprintf("%s/pg_ctl.ran", marks);

	char *pg_config = ry_asprintf("echo %s", bin), *pg_ctl = ry_asprintf("touch %s", marker);
	write_script(bin, "pg_config", pg_config);
	write_script(bin, "initdb", "exit 0");
	write_script(bin, "pg_ctl", pg_ctl);
	write_script(bin, "createdb", "exit 0");
	/* An existing cluster: no initdb.  Under root it belongs to another
	 * user (the server never runs as root), so nothing is created. */
	char *version = ry_asprintf("%s/PG_VERSION", pgdata);
	write_script(pgdata, "PG_VERSION", "15");
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam("nobody");
		assert_non_null(pw);
		assert_int_equal(chown(pgdata, pw->pw_uid, pw->pw_gid), 0);
		assert_int_equal(chown(version, pw->pw_uid, pw->pw_gid), 0);
	}
	const char *old_path = getenv("PATH");
	char *path = ry_asprintf("%s:%s", bin, old_path ? old_path : "/usr/bin:/bin");
	assert_int_equal(setenv("PATH", path, 1), 0);

	bool created = false;
	char *err = NULL;
	bool ok = ry_embed_start(home, false, &created, &err);
	assert_false(ok);
	assert_false(created);
	assert_int_equal(access(marker, F_OK), 0);	/* pg_ctl did run */
	assert_non_null(err);
	if (!strstr(err, "createdb") || !strstr(err, "pipe"))
		fail_msg("the error does not say createdb could not start: %s", err);

	assert_int_equal(setenv("PATH", old_path ? old_path : "/usr/bin:/bin", 1), 0);
	char *rm = ry_asprintf("rm -rf '%s'", top);
	assert_int_equal(system(rm), 0);
	free(rm);
	free(err);
	free(path);
	free(version);
	free(pg_ctl);
	free(pg_config);
	free(marker);
	marker = NULL;
	free(pgdata);
	free(home);
	free(marks);
	free(bin);
}

/* Without create, a home holding no cluster is an error, and stays empty. */
static void test_no_cluster_is_not_created(void **state)
{
	(void)state;
	char tmpl[] = "/tmp/railyard-embed.XXXXXX";
	char *top = mkdtemp(tmpl);
	assert_non_null(top);
	char *home = ry_asprintf("%s/home", top);
	bool created = true;
	char *err = NULL;

	assert_false(ry_embed_exists(home));
	assert_false(ry_embed_start(home, false, &created, &err));
	assert_false(created);
	if (!err || !strstr(err, "there is none"))
		fail_msg("unexpected error: %s", err ? err : "(none)");
	assert_int_equal(access(home, F_OK), -1);	/* not even the directory */
	free(err);
	free(home);
	assert_int_equal(rmdir(top), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_createdb_that_cannot_start_is_an_error),
		cmocka_unit_test(test_no_cluster_is_not_created),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
