/* The SQL files compiled into the binary (build/gen/sqlfiles.c). */
#ifndef RY_SQLFILES_H
#define RY_SQLFILES_H
#include <stddef.h>

struct ry_sql_file {
	const char *name;	/* "migrations/0001_init.sql" or "sql/10_submit.sql" */
	const char *text;
};
/* Sorted: migrations/ in order, then sql/ in order. */
extern const struct ry_sql_file ry_sql_files[];
extern const size_t ry_sql_nfiles;
#endif
