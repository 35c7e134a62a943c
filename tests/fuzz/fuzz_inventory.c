/*
 * libFuzzer target for the inventory readers: any bytes, for each tool,
 * must give agents or an error naming the file — never a crash, a leak or
 * undefined behaviour.  Not built by `make`; build and run with:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE \
 *       -Ipkg -o build/fuzz_inventory tests/fuzz/fuzz_inventory.c pkg/inventory/inventory.c \
 *       pkg/core/core.c -ljansson -lm
 *   mkdir -p build/fuzz-inv && cp tests/fixtures/inventory/[a-z]*.json build/fuzz-inv/
 *   build/fuzz_inventory -max_total_time=60 build/fuzz-inv
 */
#include "inventory/inventory.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int tool = RY_INVENTORY_TERRAFORM; tool <= RY_INVENTORY_KUBERNETES; tool++) {
		struct ry_inventory inv;
		char *err = NULL;
		if (ry_inventory_parse((enum ry_inventory_tool)tool, "in.json", (const char *)data, size,
				       &inv, &err)) {
			if (inv.n == 0)
				abort();
			free(ry_inventory_json(&inv));
			ry_inventory_release(&inv);
		} else {
			if (!err || strncmp(err, "in.json", 7) != 0 || inv.n != 0)
				abort();
			free(err);
		}
	}
	return 0;
}
