/*
 * libFuzzer target for the inventory readers: any bytes, for each tool,
 * must give agents or an error naming the file — never a crash, a leak or
 * undefined behaviour.  Built by `make fuzz`, run by
 * `make fuzz-run FUZZ_SECONDS=N` (seeds: tests/fuzz/corpus/inventory/).
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
