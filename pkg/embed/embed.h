/*
 * embed: the private PostgreSQL cluster under $RAILYARD_HOME, used when no
 * other database is configured.  Created with initdb on first use, served on
 * a Unix socket only (listen_addresses=''), run as an unprivileged user when
 * railyard itself runs as root.  Depends only on core (it runs the server
 * binaries; it never speaks libpq).
 *
 * Authentication is peer, through the ident map "railyard": the OS user
 * that runs railyard may log in as any of the login roles below, the
 * server's own OS user only as the owner, and nobody else at all.
 */
#ifndef RY_EMBED_H
#define RY_EMBED_H

#include "core/core.h"

/* The embedded cluster's login roles; all but the owner are made by the
 * caller once the schema (and so the group roles) exists. */
#define RY_EMBED_OWNER		"railyard"	/* superuser; owns database and schema */
#define RY_EMBED_WORKER		"ry_worker"	/* member of railyard_worker */
#define RY_EMBED_SUBMITTER	"ry_submitter"	/* member of railyard_submitter */
#define RY_EMBED_READER		"ry_reader"	/* member of railyard_reader */

/*
 * Makes sure the cluster under home runs; with create, initdb makes it
 * first when home holds none (else that is an error saying so).  *created
 * is set when initdb ran now.  A second start is harmless; a stale
 * postmaster.pid after a crash is handled.  On failure returns false and
 * *err says what failed.
 */
bool ry_embed_start(const char *home, bool create, bool *created, char **err) RY_MUST_CHECK;
/* Whether home holds a cluster (running or not). */
bool ry_embed_exists(const char *home);
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
/* Conninfo for the cluster as login role user (whether or not it runs).
 * Caller frees. */
char *ry_embed_conninfo(const char *home, const char *user);

#endif
