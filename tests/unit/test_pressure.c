/*
 * Unit tests for pkg/agent/pressure: reading PSI, meminfo and loadavg from
 * injected files.  Requirements: "some avg10" is read from cpu, memory and
 * io; a directory without them means no PSI (not an error); MemAvailable
 * and MemTotal are read; runnable per core comes from loadavg only without
 * PSI; a malformed file is an error naming the file and line, leaving the
 * reading unchanged.
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
	struct ry_pressure_source src = { dir, mem, load, 2 };
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
	struct ry_pressure_source src = { dir, mem, NULL, 2 };
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
					  "/nonexistent/loadavg", 2 };
	struct ry_pressure p;
	char *err = NULL;
	assert_true(ry_pressure_read(&src, &p, &err));
	assert_false(p.have_psi);
	assert_false(p.have_mem);
	assert_false(p.have_runnable);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(reads_psi_meminfo_and_loadavg, setup, teardown),
		cmocka_unit_test_setup_teardown(malformed_files_name_file_and_line, setup, teardown),
		cmocka_unit_test(missing_sources_are_not_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
