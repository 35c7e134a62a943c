/*
 * libFuzzer target for the worker's config parser (pkg/config): any file
 * must load or be refused with a message naming the file (and line) —
 * never a crash, a leak or undefined behaviour — and a file that loads must
 * pass or fail the cross-field check cleanly.  The bytes are given as a
 * memfd, so nothing is written to disk.  Built by `make fuzz`, run by
 * `make fuzz-run` (seeds: tests/fuzz/corpus/config/).
 */
#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("worker.conf", MFD_CLOEXEC);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

	struct ry_worker_config cfg;
	char *err = NULL;
	ry_config_init(&cfg);
	bool ok = ry_config_load_file(&cfg, path, &err);
	if (ok == (err != NULL))
		abort();
	if (!ok && strncmp(err, path, strlen(path)) != 0)
		abort();
	free(err);
	err = NULL;
	if (ok && !ry_config_check(&cfg, &err) && !err)
		abort();
	free(err);
	ry_config_release(&cfg);
	close(fd);
	return 0;
}
