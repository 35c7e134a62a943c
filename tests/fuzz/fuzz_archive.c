/*
 * libFuzzer target for artifact extraction: any bytes offered as an
 * artifact (under their own digest, so the digest check passes and the
 * tar/zstd parsing and entry checks are what gets exercised) must either
 * extract inside the destination or be refused — never a crash, a leak,
 * or a file outside it.  Built by `make fuzz`, run by
 * `make fuzz-run FUZZ_SECONDS=N` (seeds: tests/fuzz/corpus/archive/).
 */
#include "archive/archive.h"
#include "exec/exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char top[] = "/tmp/ry-fuzz-archive-XXXXXX";
	if (!mkdtemp(top))
		abort();
	char *dest = ry_asprintf("%s/dest", top), *in = ry_asprintf("%s/in", top);
	char *err = NULL, digest[RY_DIGEST_HEX];
	FILE *f = fopen(in, "wb");
	if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0 || mkdir(dest, 0755) < 0)
		abort();
	ry_hash_hex(data, size, digest);
	FILE *r = fopen(in, "rb");
	enum ry_archive_status st = ry_archive_extract(fileno(r), digest, dest, &err);
	fclose(r);
	if (st != RY_ARCHIVE_OK && !err)
		abort();	/* a refusal always says why */
	free(err);
	/* nothing but dest and the input in top: no escape */
	char *check = ry_asprintf("test \"$(ls -A %s | tr '\\n' ' ')\" = \"dest in \"", top);
	if (system(check) != 0)
		abort();
	ry_exec_remove_tree(top);
	free(check);
	free(dest);
	free(in);
	return 0;
}
