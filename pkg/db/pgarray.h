/*
 * pgarray: PostgreSQL's array text format ({a,"b c",NULL}), both ways — the
 * one codec for array parameters sent with $n and text[] values read back.
 * Plain string work: no libpq needed, so it is cheap to test and to fuzz.
 */
#ifndef RY_PGARRAY_H
#define RY_PGARRAY_H

#include "core/core.h"

/* An array literal being built: zero-initialise, add elements, finish. */
struct ry_pgarray {
	struct ry_buf b;
	size_t n;		/* elements so far */
};

/* Appends s as a quoted element (\ and " escaped); NULL appends SQL NULL. */
void ry_pgarray_add_str(struct ry_pgarray *a, const char *s);
void ry_pgarray_add_int(struct ry_pgarray *a, int64_t v);
/* %.17g: round-trips a double through float8[]. */
void ry_pgarray_add_double(struct ry_pgarray *a, double v);
void ry_pgarray_add_null(struct ry_pgarray *a);
/* The literal ("{}" when empty); the caller frees it.  a is empty after. */
char *ry_pgarray_finish(struct ry_pgarray *a) RY_MUST_CHECK;

/* Appends s to b as one quoted element ("..." with \ and " escaped): the
 * element encoding ry_pgarray_add_str uses, for callers building arrays
 * of their own shape. */
void ry_buf_add_pg_array_elem(struct ry_buf *b, const char *s);

/* Renders a whole list as a text[] literal: {"a","b"}.  Caller frees. */
char *ry_strlist_to_pg_array(const struct ry_strlist *l);

/*
 * Parses a text[] in its text form into out; NULL elements are skipped.
 * False on malformed input (out may hold the elements read so far).
 */
bool ry_db_parse_text_array(const char *s, struct ry_strlist *out) RY_MUST_CHECK;

#endif
