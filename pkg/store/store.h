/*
 * store: where artifacts live, behind one interface (struct ry_store_ops).
 *
 * Two namespaces, as bazel-remote lays them out: CAS (content-addressed:
 * the key is the SHA-256 of the bytes, checked on every fetch) and AC (a
 * small record filed under a cache key).  Keys are 64 lowercase hex
 * characters; anything else is refused before it can become a path or URL.
 *
 * Implementations:
 *   local   a directory (store_local.c): atomic puts, quarantine, listing for GC
 *   http    GET/PUT/HEAD/DELETE {base}/cas/{key} and {base}/ac/{key} through
 *           libcurl's multi interface on a libevent loop (store_http.c)
 *   tiered  a local store in front of another store (store_tiered.c)
 *   fake    in memory, with injectable failures, for tests (store_fake.c)
 *
 * Every operation is a request completed by a callback on the store's
 * event_base.  Errors are classified (enum ry_store_status) so the caller
 * can tell "not there" from "broken" from "down"; none is fatal to a task.
 * ry_store_run gives the CLI a blocking call over the same code path.
 */
#ifndef RY_STORE_H
#define RY_STORE_H

#include "core/core.h"
#include "hash/hash.h"

struct event_base;
struct event;
struct ry_store;
struct ry_store_req;

enum ry_store_ns {
	RY_STORE_CAS,		/* key = SHA-256 of the content */
	RY_STORE_AC,		/* key = a cache key; content = its record */
};

enum ry_store_op {
	RY_STORE_HEAD,		/* is it there, how big */
	RY_STORE_GET,		/* copy it into the file at path (atomically) */
	RY_STORE_OPEN,		/* a readable descriptor (req->fd) */
	RY_STORE_PUT,		/* store the content of the file at path */
	RY_STORE_DELETE,	/* remove it */
};

enum ry_store_status {
	RY_STORE_OK,		/* done: found, fetched, stored, removed */
	RY_STORE_MISS,		/* the store has no such key */
	RY_STORE_CORRUPT,	/* content does not match its digest; moved aside where possible */
	RY_STORE_UNAVAILABLE,	/* unreachable, timed out, server or disk error: run uncached */
	RY_STORE_AUTH,		/* the store refused our credentials */
	RY_STORE_REFUSED,	/* not allowed (DELETE on a read-only repository) or a bad key */
};

typedef void (*ry_store_done_fn)(struct ry_store_req *req, void *arg);

struct ry_store_req {
	enum ry_store_op op;
	enum ry_store_ns ns;
	char key[RY_DIGEST_HEX];
	char *path;			/* GET: destination; PUT: source */
	/* results, valid in the done callback */
	enum ry_store_status status;
	int64_t size;			/* bytes (HEAD, GET, OPEN, PUT) */
	int fd;				/* OPEN: readable at offset 0; closed by
					 * ry_store_req_free unless set to -1 */
	char *error;			/* when not OK/MISS: what failed, naming the store */
	char *warning;			/* OK, but part of the work failed (tiered) */
	/* owned by the store */
	struct ry_store *store;
	ry_store_done_fn done;
	void *arg;
	bool cancelled;
	void *priv;			/* the implementation's state */
	struct event *defer;		/* completion scheduled for the next loop turn */
	struct ry_store_req *prev, *next;	/* the store's requests in flight */
};

struct ry_store_ops {
	const char *kind;
	/* Starts req; must complete it (ry_store_complete) from the loop, never
	 * from inside start. */
	void (*start)(struct ry_store *s, struct ry_store_req *req);
	/* Stops work on req soon; it still completes (freed, not reported). */
	void (*cancel)(struct ry_store *s, struct ry_store_req *req);
	void (*release)(struct ry_store *s);
};

struct ry_store {
	const struct ry_store_ops *ops;
	struct event_base *base;
	bool own_base;		/* made for blocking use; freed with the store */
	char *name;		/* "local /var/lib/railyard/cache", "http https://…" */
	struct ry_store_req *inflight;	/* started, not yet completed */
};

const char *ry_store_status_name(enum ry_store_status s);
const char *ry_store_op_name(enum ry_store_op op);
const char *ry_store_ns_name(enum ry_store_ns ns);

/* A request; key is validated when it starts (REFUSED if not 64 hex). */
struct ry_store_req *ry_store_req_new(enum ry_store_op op, enum ry_store_ns ns, const char *key,
				      const char *path);
void ry_store_req_free(struct ry_store_req *req);

/* Starts req; done(req, arg) runs later on the store's loop; the caller
 * frees req after (or in) done. */
void ry_store_start(struct ry_store *s, struct ry_store_req *req, ry_store_done_fn done, void *arg);
/* Abandons a started request: done will not be called; the store frees it. */
void ry_store_cancel(struct ry_store_req *req);
/* Blocking: starts req and runs the store's event_base until it completes.
 * For stores made without a caller's event_base (the CLI). */
enum ry_store_status ry_store_run(struct ry_store *s, struct ry_store_req *req);
/* Pending requests complete (UNAVAILABLE) before the store goes. */
void ry_store_free(struct ry_store *s);

/* ---- for implementations ---- */
void ry_store_init(struct ry_store *s, const struct ry_store_ops *ops, struct event_base *base,
		   const char *name);
/* Sets the result (error is taken over) and reports it now / on the next
 * loop turn.  A cancelled request is freed instead of reported. */
void ry_store_complete(struct ry_store_req *req, enum ry_store_status st, char *error);
void ry_store_complete_later(struct ry_store_req *req, enum ry_store_status st, char *error);

/* ---- local directory store (store_local.c) ---- */

/*
 * Layout: DIR/cas/ab/abcd…, DIR/ac/ab/abcd…, DIR/tmp (uploads in progress),
 * DIR/quarantine (corrupt blobs moved aside).  Blobs are read-only files;
 * puts go to DIR/tmp, are fsynced and renamed into place, so a reader sees
 * a whole blob or none, and two writers of one key both succeed.  A read
 * sets the blob's atime: least-recent use for GC.  base NULL: blocking use.
 */
struct ry_store *ry_store_local_new(struct event_base *base, const char *dir, char **err) RY_MUST_CHECK;
const char *ry_store_local_dir(const struct ry_store *s);
/* Where key's blob lives (it may not exist); caller frees. */
char *ry_store_local_path(struct ry_store *s, enum ry_store_ns ns, const char *key);
/* Synchronous primitives (also usable from offload threads). */
enum ry_store_status ry_store_local_do(struct ry_store *s, struct ry_store_req *req);
/* A new empty file under DIR/tmp for content to be adopted; caller closes. */
int ry_store_local_tmpfile(struct ry_store *s, char **path, char **err) RY_MUST_CHECK;
/* fsyncs tmp_path and renames it into place as key. */
enum ry_store_status ry_store_local_adopt(struct ry_store *s, enum ry_store_ns ns, const char *key,
					  const char *tmp_path, char **err);
/* Moves a blob found corrupt to DIR/quarantine; *moved_to names it. */
bool ry_store_local_quarantine(struct ry_store *s, enum ry_store_ns ns, const char *key,
			       char **moved_to, char **err) RY_MUST_CHECK;

struct ry_store_blob {
	char key[RY_DIGEST_HEX];
	int64_t size;
	int64_t used_s;		/* last use (atime), seconds since the epoch */
};
/* Every blob of ns (unsorted); *out freed by the caller. */
bool ry_store_local_list(struct ry_store *s, enum ry_store_ns ns, struct ry_store_blob **out,
			 size_t *n, char **err) RY_MUST_CHECK;
/* Removes files in DIR/tmp older than max_age_s (uploads that died). */
size_t ry_store_local_clean_tmp(struct ry_store *s, int64_t max_age_s);

/* ---- HTTP store (store_http.c) ---- */

struct ry_store_http_config {
	const char *url;		/* base URL; cas/ and ac/ go below it */
	const char *username;		/* basic auth (with password) */
	const char *password;
	const char *bearer_token;	/* Authorization: Bearer (instead of basic) */
	const char *ca_file;		/* extra CA bundle; NULL: the system's */
	const char *tmp_dir;		/* OPEN downloads here (default /tmp) */
	long connect_timeout_ms;	/* default 2000 */
	long stall_timeout_s;		/* give up below 1 byte/s for this long; default 10 */
	long timeout_s;			/* whole request; default 600 */
	long max_connections;		/* per host; default 8 */
};
struct ry_store *ry_store_http_new(struct event_base *base, const struct ry_store_http_config *cfg,
				   char **err) RY_MUST_CHECK;

/* ---- tiered (store_tiered.c) ---- */

/*
 * local in front of remote (both owned by the tiered store from here):
 * HEAD/GET/OPEN try local, then fetch from remote into local; PUT stores
 * locally, then uploads (a remote failure becomes req->warning); DELETE
 * removes from both.  Both must share one event_base.
 */
struct ry_store *ry_store_tiered_new(struct ry_store *local, struct ry_store *remote);
struct ry_store *ry_store_tiered_local(struct ry_store *tiered);

/* ---- fake (store_fake.c), for tests ---- */

struct ry_store *ry_store_fake_new(struct event_base *base);
/* Every later request of op fails with st (OK: back to normal). */
void ry_store_fake_fail(struct ry_store *s, enum ry_store_op op, enum ry_store_status st);
/* Flips a byte of a stored blob; false if absent. */
bool ry_store_fake_corrupt(struct ry_store *s, enum ry_store_ns ns, const char *key);
/* Requests of op seen so far. */
size_t ry_store_fake_calls(const struct ry_store *s, enum ry_store_op op);
size_t ry_store_fake_count(const struct ry_store *s);

#endif
