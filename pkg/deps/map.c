/*
 * A string -> index map for the scan's lookups (names, roots, aliases):
 * open addressing with linear probing, FNV-1a, grown at half full.
 */
#include "deps/detect.h"

#include <stdlib.h>
#include <string.h>

static size_t slot_of(const struct deps_map *m, const char *key)
{
	size_t i = (size_t)ry_fnv1a64(key, strlen(key)) & (m->cap - 1);
	while (m->slots[i].key && strcmp(m->slots[i].key, key) != 0)
		i = (i + 1) & (m->cap - 1);
	return i;
}

size_t deps_map_get(const struct deps_map *m, const char *key)
{
	if (!m->cap)
		return DEPS_NONE;
	size_t i = slot_of(m, key);
	return m->slots[i].key ? m->slots[i].value : DEPS_NONE;
}

static void grow(struct deps_map *m)
{
	struct deps_map bigger = { 0 };
	bigger.cap = m->cap ? 2 * m->cap : 64;
	bigger.slots = ry_calloc(bigger.cap, sizeof(*bigger.slots));
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->slots[i].key)
			continue;
		size_t j = slot_of(&bigger, m->slots[i].key);
		bigger.slots[j] = m->slots[i];
		bigger.n++;
	}
	free(m->slots);
	*m = bigger;
}

void deps_map_put(struct deps_map *m, const char *key, size_t value, bool ambiguous)
{
	if (2 * (m->n + 1) > m->cap)
		grow(m);
	size_t i = slot_of(m, key);
	if (!m->slots[i].key) {
		m->slots[i].key = ry_strdup(key);
		m->slots[i].value = value;
		m->n++;
	} else if (m->slots[i].value != value) {
		m->slots[i].value = ambiguous ? DEPS_AMBIGUOUS : value;
	}
}

void deps_map_release(struct deps_map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->slots[i].key);
	free(m->slots);
	memset(m, 0, sizeof(*m));
}
