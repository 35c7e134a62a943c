/* Shared between db.c and adb.c only: wraps a PGresult as a ry_res. */
#ifndef RY_DB_INTERNAL_H
#define RY_DB_INTERNAL_H
#include <libpq-fe.h>
#include "db/db.h"

struct ry_res *ry_res_wrap(PGresult *pg);
/* libpq connection keywords for conninfo + railyard's session settings. */
PGconn *ry_db_start_connect(const char *conninfo, const char *actor, bool async);

#endif
