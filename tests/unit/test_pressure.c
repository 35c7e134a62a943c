/*
 * Unit tests for pkg/agent/pressure: reading PSI, meminfo and loadavg from
 * injected files.  Requirements: "some avg10" is read from cpu, memory and
 * io; a directory without them means no PSI (not an error); MemAvailable
 * and MemTotal are read; runnable per core comes from loadavg only without
 * PSI; a malformed file is an error naming the file and line, leaving the
 * reading unchanged.  With the worker's memory cgroup (v1 or v2 files),
 * memory is judged by whichever of the host and the cgroup has the smaller
 * available share, the cgroup only where it has a limit below MemTotal;
 * a v2 limit is the smallest memory.max up the tree; a cgroup that is gone
 * is no figures, not an error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/pressure.h"

static char dir[64];

static void put(const char *name, const char *text)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ry-pressure-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *const psi_cpu =
	"some avg10=82.66 avg60=86.76 avg300=73.67 total=4853486970\n"
	"full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";

static void reads_psi_meminfo_and_loadavg(void **state)
{
	(void)state;
	char mem[160], load[160];
	snprintf(mem, sizeof(mem), "%s/meminfo", dir);
	snprintf(load, sizeof(load), "%s/loadavg", dir);
	put("cpu", psi_cpu);
	put("memory", "some avg10=1.50 avg60=0.00 avg300=0.00 total=13860524\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1\n");
	put("io", "some avg10=6.87 avg60=8.48 avg300=6.41 total=589155304\nfull avg10=0.00 avg60=0.04 avg300=0.80 total=2\n");
	put("meminfo", "MemTotal:       24683656 kB\nMemFree:         1000 kB\nMemAvailable:   23797176 kB\n");
	put("loadavg", "6.40 5.95 3.87 5/148 10631\n");
	struct ry_pressure_source src = { dir, mem, load, 2, NULL };
	struct ry_pressure p;
	char *err = NULL;
	assert_true(ry_pressure_read(&src, &p, &err));
	assert_true(p.have_psi);
	assert_float_equal(p.cpu, 82.66, 1e-9);
	assert_float_equal(p.memory, 1.5, 1e-9);
	assert_float_equal(p.io, 6.87, 1e-9);
	assert_true(p.have_mem);
	assert_int_equal(p.mem_total_kb, 24683656);
	assert_int_equal(p.mem_available_kb, 23797176);
	assert_false(p.have_runnable);	/* PSI is there */

	/* No PSI files (an older kernel): runnable per core instead. */
	unlink(strcat(strcpy(mem, dir), "/io"));
	snprintf(mem, sizeof(mem), "%s/meminfo", dir);
	assert_true(ry_pressure_read(&src, &p, &err));
	assert_false(p.have_psi);
	assert_true(p.have_runnable);
	assert_float_equal(p.runnable_per_core, 2.5, 1e-9);
}

static void malformed_files_name_file_and_line(void **state)
{
	(void)state;
	char mem[160];
	snprintf(mem, sizeof(mem), "%s/meminfo", dir);
	put("cpu", "full avg10=0.00\nsome avg10=lots\n");
	put("memory", psi_cpu);
	put("io", psi_cpu);
	put("meminfo", "MemTotal: 100 kB\nMemAvailable: 50 kB\n");
	struct ry_pressure_source src = { dir, mem, NULL, 2, NULL };
	struct ry_pressure p = { .cpu = 7 };
	char *err = NULL;
	assert_false(ry_pressure_read(&src, &p, &err));
	assert_non_null(strstr(err, "/cpu:2: expected \"some avg10=PERCENT"));
	assert_float_equal(p.cpu, 7, 0);	/* unchanged */
	free(err);
	err = NULL;
	put("cpu", psi_cpu);
	put("meminfo", "MemTotal: 100 kB\n");
	assert_false(ry_pressure_read(&src, &p, &err));
	assert_non_null(strstr(err, "meminfo: no MemAvailable: line"));
	free(err);
	err = NULL;
	put("meminfo", "MemTotal: 100 kB\nMemAvailable: x kB\n");
	assert_false(ry_pressure_read(&src, &p, &err));
	assert_non_null(strstr(err, "meminfo:2: MemAvailable: expects a size in kB"));
	free(err);
	double v;
	err = NULL;
	assert_false(ry_pressure_parse_psi("some avg10=101.0\n", "f", &v, &err));
	free(err);
}

static void missing_sources_are_not_errors(void **state)
{
	(void)state;
	struct ry_pressure_source src = { "/nonexistent/ry-pressure", "/nonexistent/meminfo",
					  "/nonexistent/loadavg", 2, NULL };
	struct ry_pressure p;
	char *err = NULL;
	assert_true(ry_pressure_read(&src, &p, &err));
	assert_false(p.have_psi);
	assert_false(p.have_mem);
	assert_false(p.have_runnable);
}

/* ---- the worker's memory cgroup ------------------------------------------ */

#define MB (1024L * 1024L)
#define HOST_TOTAL_KB 24683656L		/* 23.5 GiB */
#define HOST_AVAIL_KB 20000000L		/* 81 % available */

/* dir/sub, created. */
static char *sub(const char *name)
{
	char *path = malloc(256);
	snprintf(path, 256, "%s/%s", dir, name);
	assert_int_equal(mkdir(path, 0755), 0);
	return path;
}

/* A v1 memory cgroup in dir/name: usage, hierarchical limit and inactive
 * file cache, in bytes, as the kernel writes them. */
static char *v1_cgroup(const char *name, long long usage, const char *limit, long long inactive)
{
	char *path = sub(name), file[320], text[512];
	snprintf(file, sizeof(file), "%s/memory.usage_in_bytes", name);
	snprintf(text, sizeof(text), "%lld\n", usage);
	put(file, text);
	snprintf(file, sizeof(file), "%s/memory.stat", name);
	snprintf(text, sizeof(text),
		 "cache 1000\nrss 2000\ninactive_file 4096\nhierarchical_memory_limit %s\n"
		 "hierarchical_memsw_limit 9223372036854771712\ntotal_cache 1000\n"
		 "total_inactive_file %lld\ntotal_active_file 0\n",
		 limit, inactive);
	put(file, text);
	return path;
}

static void host_meminfo(char *path, size_t len, long avail_kb)
{
	char text[160];
	snprintf(path, len, "%s/meminfo", dir);
	snprintf(text, sizeof(text), "MemTotal:       %ld kB\nMemFree:   1000 kB\nMemAvailable:   %ld kB\n",
		 HOST_TOTAL_KB, avail_kb);
	put("meminfo", text);
}

static void a_limited_cgroup_tighter_than_the_host_is_judged(void **state)
{
	(void)state;
	char mem[160];
	char *cg = v1_cgroup("v1", 480 * MB, "536870912", 16 * MB);	/* 512 MiB */
	host_meminfo(mem, sizeof(mem), HOST_AVAIL_KB);
	struct ry_pressure_source src = { NULL, mem, NULL, 2, cg };
	struct ry_pressure p;
	char *err = NULL;
	assert_true(ry_pressure_read(&src, &p, &err));
	/* available = limit - usage + inactive file = 512 - 480 + 16 MiB;
	 * the host's figures stay beside them. */
	assert_true(p.have_mem);
	assert_int_equal(p.mem_available_kb, HOST_AVAIL_KB);
	assert_true(p.have_memcg);
	assert_int_equal(p.memcg_total_kb, 512 * 1024);
	assert_int_equal(p.memcg_available_kb, 48 * 1024);

	/* Without the host's figures the cgroup's stand alone. */
	src.meminfo = "/nonexistent/meminfo";
	assert_true(ry_pressure_read(&src, &p, &err));
	assert_true(!p.have_mem && p.have_memcg);
	assert_int_equal(p.memcg_available_kb, 48 * 1024);

	/* The host tighter than the cgroup (5 % against 9 %): both are read,
	 * the throttle judges the worse. */
	host_meminfo(mem, sizeof(mem), HOST_TOTAL_KB / 20);
	src.meminfo = mem;
	assert_true(ry_pressure_read(&src, &p, &err));
	assert_true(p.have_memcg);
	assert_int_equal(p.mem_total_kb, HOST_TOTAL_KB);
	assert_int_equal(p.mem_available_kb, HOST_TOTAL_KB / 20);
	free(cg);

	/* Over its limit (usage counts what reclaim has not caught up with):
	 * nothing available but the file cache, never less than none. */
	cg = v1_cgroup("full", 600 * MB, "536870912", 0);
	src.memcg = cg;
	assert_true(ry_pressure_read(&src, &p, &err));
	assert_true(p.have_memcg);
	assert_int_equal(p.memcg_available_kb, 0);
	free(cg);
}

static void no_limit_or_one_above_the_host_changes_nothing(void **state)
{
	(void)state;
	static const char *const limits[] = {
		"9223372036854771712",		/* v1 without a limit */
		"68719476736",			/* 64 GiB, above MemTotal */
	};
	char mem[160];
	host_meminfo(mem, sizeof(mem), HOST_AVAIL_KB);
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		char name[16];
		snprintf(name, sizeof(name), "cg%zu", i);
		/* Nearly everything used: it would win if its limit counted. */
		char *cg = v1_cgroup(name, 4000 * MB, limits[i], 0);
		struct ry_pressure_source src = { NULL, mem, NULL, 2, cg };
		struct ry_pressure p;
		char *err = NULL;
		assert_true(ry_pressure_read(&src, &p, &err));
		assert_false(p.have_memcg);
		assert_int_equal(p.mem_total_kb, HOST_TOTAL_KB);
		assert_int_equal(p.mem_available_kb, HOST_AVAIL_KB);
		free(cg);
	}
	/* v2 "max" all the way up. */
	char *top = sub("max"), *leaf = sub("max/leaf");
	put("max/memory.max", "max\n");
	put("max/leaf/memory.max", "max\n");
	put("max/leaf/memory.current", "4194304000\n");
	put("max/leaf/memory.stat", "anon 4000\nfile 0\ninactive_file 0\n");
	struct ry_pressure_source src = { NULL, mem, NULL, 2, leaf };
	struct ry_pressure p;
	char *err = NULL;
	assert_true(ry_pressure_read(&src, &p, &err));
	assert_false(p.have_memcg);
	assert_int_equal(p.mem_available_kb, HOST_AVAIL_KB);
	free(top);
	free(leaf);
}

static void v2_the_smallest_memory_max_up_the_tree_is_the_limit(void **state)
{
	(void)state;
	/* dir (the hierarchy's root: no memory.max) / slice (256 MiB, as
	 * systemd's MemoryMax= on a slice) / service (max) / worker (1 GiB). */
	char *slice = sub("slice"), *svc = sub("slice/svc"), *leaf = sub("slice/svc/worker");
	put("slice/memory.max", "268435456\n");
	put("slice/svc/memory.max", "max\n");
	put("slice/svc/worker/memory.max", "1073741824\n");
	put("slice/svc/worker/memory.current", "230686720\n");	/* 220 MiB */
	put("slice/svc/worker/memory.stat",
	    "anon 200000000\nfile 20000000\nactive_file 100\ninactive_file 8388608\n");
	struct ry_memcg_reading m;
	char *err = NULL, mem[160];
	assert_true(ry_pressure_read_memcg(leaf, &m, &err));
	assert_true(m.have && m.limited);
	assert_int_equal(m.limit, 256 * MB);
	assert_int_equal(m.usage, 220 * MB);
	assert_int_equal(m.inactive_file, 8 * MB);

	host_meminfo(mem, sizeof(mem), HOST_AVAIL_KB);
	struct ry_pressure_source src = { NULL, mem, NULL, 2, leaf };
	struct ry_pressure p;
	assert_true(ry_pressure_read(&src, &p, &err));
	assert_true(p.have_memcg);
	assert_int_equal(p.memcg_total_kb, 256 * 1024);
	assert_int_equal(p.memcg_available_kb, (256 - 220 + 8) * 1024);
	free(slice);
	free(svc);
	free(leaf);
}

static void a_bad_cgroup_file_is_named_and_a_gone_cgroup_is_not_an_error(void **state)
{
	(void)state;
	char mem[160];
	host_meminfo(mem, sizeof(mem), HOST_AVAIL_KB);
	char *cg = v1_cgroup("bad", 100 * MB, "lots", 0);
	struct ry_pressure_source src = { NULL, mem, NULL, 2, cg };
	struct ry_pressure p = { .mem_total_kb = 7 };
	char *err = NULL;
	assert_false(ry_pressure_read(&src, &p, &err));
	assert_non_null(strstr(err, "/bad/memory.stat:4: hierarchical_memory_limit expects a number of bytes"));
	assert_int_equal(p.mem_total_kb, 7);	/* unchanged */
	free(err);
	err = NULL;
	put("bad/memory.stat", "cache 0\nhierarchical_memory_limit 104857600\n");
	assert_false(ry_pressure_read(&src, &p, &err));
	assert_non_null(strstr(err, "/bad/memory.stat: no total_inactive_file line"));
	free(err);
	err = NULL;
	put("bad/memory.usage_in_bytes", "12x\n");
	assert_false(ry_pressure_read(&src, &p, &err));
	assert_non_null(strstr(err, "/bad/memory.usage_in_bytes:1: expected a number of bytes"));
	free(err);
	free(cg);

	char *v2 = sub("badv2");
	put("badv2/memory.current", "1000\n");
	put("badv2/memory.max", "unlimited\n");
	src.memcg = v2;
	err = NULL;
	assert_false(ry_pressure_read(&src, &p, &err));
	assert_non_null(strstr(err, "/badv2/memory.max:1: expected a number of bytes or \"max\""));
	free(err);
	free(v2);

	/* The worker moved, or its cgroup is gone: the host's figures. */
	char gone[160];
	snprintf(gone, sizeof(gone), "%s/gone", dir);
	src.memcg = gone;
	err = NULL;
	assert_true(ry_pressure_read(&src, &p, &err));
	assert_null(err);
	assert_true(p.have_mem);
	assert_false(p.have_memcg);
	assert_int_equal(p.mem_available_kb, HOST_AVAIL_KB);
}

static void memcg_value_files(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		bool max_ok, ok;
		uint64_t value;
	} cases[] = {
		{ "0\n", false, true, 0 },
		{ "536870912\n", true, true, 536870912 },
		{ "9223372036854771712\n", false, true, UINT64_C(9223372036854771712) },
		{ "max\n", true, true, UINT64_MAX },
		{ "max\n", false, false, 0 },
		{ "", true, false, 0 },
		{ "-1\n", true, false, 0 },
		{ "12 kB\n", true, false, 0 },
		{ "1\n2\n", true, false, 0 },
		{ "99999999999999999999999\n", true, false, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 0;
		char *err = NULL;
		bool ok = ry_pressure_parse_memcg_value(cases[i].text, "f", cases[i].max_ok, &v, &err);
		if (ok != cases[i].ok)
			fail_msg("case %zu (\"%s\"): %s", i, cases[i].text, err ? err : "accepted");
		if (ok)
			assert_true(v == cases[i].value);
		else
			assert_non_null(strstr(err, "f:1: expected a number of bytes"));
		free(err);
	}
	uint64_t v = 0;
	char *err = NULL;
	assert_true(ry_pressure_parse_memcg_stat("inactive_file_x 1\ninactive_file 42\n", "s",
						 "inactive_file", &v, &err));
	assert_true(v == 42);
	assert_false(ry_pressure_parse_memcg_stat("anon 1\ninactive_file\n", "s", "inactive_file", &v,
						  &err));
	assert_string_equal(err, "s: no inactive_file line");
	free(err);
	err = NULL;
	assert_false(ry_pressure_parse_memcg_stat("anon 1\ninactive_file -3\n", "s", "inactive_file",
						  &v, &err));
	assert_string_equal(err, "s:2: inactive_file expects a number of bytes");
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(reads_psi_meminfo_and_loadavg, setup, teardown),
		cmocka_unit_test_setup_teardown(malformed_files_name_file_and_line, setup, teardown),
		cmocka_unit_test(missing_sources_are_not_errors),
		cmocka_unit_test_setup_teardown(a_limited_cgroup_tighter_than_the_host_is_judged, setup,
						teardown),
		cmocka_unit_test_setup_teardown(no_limit_or_one_above_the_host_changes_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(v2_the_smallest_memory_max_up_the_tree_is_the_limit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_bad_cgroup_file_is_named_and_a_gone_cgroup_is_not_an_error,
						setup, teardown),
		cmocka_unit_test(memcg_value_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
