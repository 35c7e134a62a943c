/*
 * libFuzzer target for the PostgreSQL text[] codec (pkg/db): any text must
 * parse or be refused without a crash; whatever parses, written back with
 * ry_strlist_to_pg_array, must parse again to the same items.  Built by
 * `make fuzz`, run by `make fuzz-run` (seeds: tests/fuzz/corpus/pg_array/).
 */
#include "db/db.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = ry_strndup((const char *)data, size);	/* up to a NUL, as libpq gives it */
	struct ry_strlist items = { 0 }, again = { 0 };

	if (ry_db_parse_text_array(text, &items)) {
		char *written = ry_strlist_to_pg_array(&items);
		if (!ry_db_parse_text_array(written, &again) || again.n != items.n)
			abort();
		for (size_t i = 0; i < items.n; i++)
			if (strcmp(items.items[i], again.items[i]) != 0)
				abort();
		free(written);
	}
	ry_strlist_release(&again);
	ry_strlist_release(&items);
	free(text);
	return 0;
}
