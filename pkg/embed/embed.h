/*
 * embed: the private PostgreSQL cluster under $RAILYARD_HOME, used when no
 * other database is configured.  Created with initdb on first use, served on
 * a Unix socket only (listen_addresses=''), run as an unprivileged user when
 * railyard itself runs as root.  Depends only on core (it runs the server
 * binaries; it never speaks libpq).
 */
#ifndef RY_EMBED_H
#define RY_EMBED_H

#include "core/core.h"

/*
 * Makes sure the cluster under home exists and runs.  *conninfo receives a
 * libpq conninfo for it (caller frees); *created is set when initdb ran now.
 * A second start is harmless; a stale postmaster.pid after a crash is
 * handled.  On failure returns false and *err says what failed.
 */
bool ry_embed_start(const char *home, char **conninfo, bool *created, char **err) RY_MUST_CHECK;
/* Stops the cluster (fast shutdown); stopping a stopped cluster is fine. */
bool ry_embed_stop(const char *home, char **err) RY_MUST_CHECK;
/* Whether the cluster under home is running now. */
bool ry_embed_running(const char *home);
/*
 * The directory holding PostgreSQL program prog ("initdb", "psql"):
 * pg_config --bindir when it has it, else the newest
 * /usr/lib/postgresql/N/bin that does.  Caller frees; NULL when none.
 */
char *ry_embed_pg_bindir(const char *prog);
/* Conninfo for the cluster (whether or not it runs).  Caller frees. */
char *ry_embed_conninfo(const char *home);

#endif
