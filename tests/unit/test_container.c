/*
 * Unit tests for pkg/container: the podman/docker command a task with an
 * image runs as.  The limits, ids, mounts and init are passed; the
 * environment goes by name only (no value in the argv); the container
 * name is safe; the kill command names the container.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "container/container.h"

static char *joined(char **argv)
{
	struct ry_buf b = RY_BUF_INIT;
	for (char **a = argv; *a; a++)
		ry_buf_printf(&b, "%s%s", a == argv ? "" : " ", *a);
	return ry_buf_detach(&b);
}

static void run_argv_carries_everything(void **state)
{
	(void)state;
	char *env[] = { (char *)"PATH=/usr/bin:/bin", (char *)"TOKEN=s3cret", (char *)"=bad",
			(char *)"TZ=UTC", NULL };
	const char *mounts[] = { "/w/pipelines/7/shared" };
	struct ry_strlist opts = { 0 };
	ry_strlist_add(&opts, "--network");
	ry_strlist_add(&opts, "none");
	struct ry_container_spec s = {
		.runtime = "/usr/bin/podman", .name = "railyard-a1-42-2", .image = "debian:bookworm",
		.command = "make test", .workdir = "/w/pipelines/7/42-t", .mounts = mounts,
		.nmounts = 1, .env = env, .set_user = true, .uid = 60001, .gid = 70007, .cpus = 2,
		.mem_mb = 512, .init = true, .options = &opts,
	};
	char **argv = ry_container_argv(&s);
	char *line = joined(argv);
	assert_string_equal(line,
		"/usr/bin/podman run --rm --init --name railyard-a1-42-2 --interactive=false "
		"--tty=false --user 60001:70007 --memory 512m --memory-swap 512m --cpus 2 "
		"--workdir /w/pipelines/7/42-t --volume /w/pipelines/7/42-t:/w/pipelines/7/42-t "
		"--volume /w/pipelines/7/shared:/w/pipelines/7/shared --env PATH --env TOKEN --env TZ "
		"--network none debian:bookworm /bin/sh -c make test");
	/* The command stays one argument; no secret value anywhere. */
	size_t n = 0;
	while (argv[n])
		n++;
	assert_string_equal(argv[n - 1], "make test");
	assert_null(strstr(line, "s3cret"));
	free(line);
	ry_container_argv_free(argv);
	ry_strlist_release(&opts);
}

static void minimal_argv(void **state)
{
	(void)state;
	struct ry_container_spec s = {
		.runtime = "/usr/bin/docker", .name = "n", .image = "alpine", .command = "true",
		.workdir = "/ws",
	};
	char **argv = ry_container_argv(&s);
	char *line = joined(argv);
	assert_string_equal(line, "/usr/bin/docker run --rm --name n --interactive=false --tty=false "
				  "--workdir /ws --volume /ws:/ws alpine /bin/sh -c true");
	free(line);
	ry_container_argv_free(argv);
}

static void kill_and_name(void **state)
{
	(void)state;
	char **argv = ry_container_kill_argv("/usr/bin/podman", "podman", "railyard-x-1-1");
	char *line = joined(argv);
	assert_string_equal(line, "/usr/bin/podman rm --force --time 0 railyard-x-1-1");
	free(line);
	ry_container_argv_free(argv);
	argv = ry_container_kill_argv("/usr/bin/docker", "docker", "railyard-x-1-1");
	line = joined(argv);
	assert_string_equal(line, "/usr/bin/docker rm --force railyard-x-1-1");
	free(line);
	ry_container_argv_free(argv);
	char *name = ry_container_name("build host@eu", 12, 3);
	assert_string_equal(name, "railyard-build_host_eu-12-3");
	free(name);
}

static void find_runtime(void **state)
{
	(void)state;
	const char *kind = NULL;
	/* Not on this PATH: nothing; an absolute path that is not there: nothing. */
	assert_null(ry_container_find("auto", "/nonexistent", &kind));
	assert_null(ry_container_find("/nonexistent/podman", NULL, &kind));
	/* An absolute path names the kind by its file name. */
	char *p = ry_container_find("/bin/sh", NULL, &kind);
	assert_non_null(p);
	assert_string_equal(kind, "podman");
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(run_argv_carries_everything),
		cmocka_unit_test(minimal_argv),
		cmocka_unit_test(kill_and_name),
		cmocka_unit_test(find_runtime),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
