/*
 * cache: the cache key and its explanation, and the cache's settings.
 *
 * A key is SHA-256 over a canonical, versioned encoding of named
 * components (docs/cache.md, "The key"):
 *
 *     "railyard-cache-key-v1" NUL  then, sorted bytewise by name,
 *     name NUL value NUL  for every component
 *
 * Names and values are C strings, so neither holds a NUL and the encoding
 * is unambiguous.  Components:
 *   def.command, def.env.NAME (one per variable), def.version, def.kind,
 *   def.outputs (sorted, one per line)                      — the definition
 *   platform.os, platform.arch, platform.toolchain (sorted, comma-joined)
 *   input:PATH  "tree OID" | "blob OID" | "files SHA256" | "absent"
 *   upstream:TASK  "output DIGEST" | "no outputs"           — build-time upstreams
 * Upstreams enter by their OUTPUT digest, not their key: an upstream
 * rebuilt to identical bytes changes nothing downstream (early cutoff).
 * The components are stored with the key, so a miss can be explained by
 * diffing two component sets (ry_cache_explain).
 */
#ifndef RY_CACHE_H
#define RY_CACHE_H

#include "core/core.h"
#include "hash/hash.h"

#define RY_CACHE_KEY_FORMAT "railyard-cache-key-v1"

struct ry_cache_component {
	char *name;
	char *value;
};

struct ry_cache_key {
	struct ry_cache_component *v;	/* unsorted until computed */
	size_t n, cap;
};

/* Sets name to value (replacing an earlier value of that name). */
void ry_cache_key_set(struct ry_cache_key *k, const char *name, const char *value);
/* env: "NAME=value" items; outputs: declared output paths. */
void ry_cache_key_add_definition(struct ry_cache_key *k, const char *command,
				 const struct ry_strlist *env, const char *version, const char *kind,
				 const struct ry_strlist *outputs);
void ry_cache_key_add_platform(struct ry_cache_key *k, const char *os, const char *arch,
			       const struct ry_strlist *toolchain);
/* value: "tree OID", "blob OID", "files SHA256" or "absent". */
void ry_cache_key_add_input(struct ry_cache_key *k, const char *path, const char *value);
/* digest NULL: the upstream produced no outputs. */
void ry_cache_key_add_upstream(struct ry_cache_key *k, const char *task, const char *digest);
/* The canonical encoding (sorts k); *len receives its length (it holds NULs). */
char *ry_cache_key_encode(struct ry_cache_key *k, size_t *len);
/* The key as 64 hex digits. */
void ry_cache_key_compute(struct ry_cache_key *k, char hex[RY_DIGEST_HEX]);
/* Components as a JSON object {name: value} (sorted keys); caller frees. */
char *ry_cache_key_to_json(struct ry_cache_key *k);
/* Reads components back from JSON; false with *err on anything but an
 * object of strings. */
bool ry_cache_key_from_json(struct ry_cache_key *k, const char *json, char **err) RY_MUST_CHECK;
const char *ry_cache_key_get(const struct ry_cache_key *k, const char *name);
void ry_cache_key_release(struct ry_cache_key *k);

/*
 * What changed from before to now, one line per changed component and a
 * line for each unchanged group ("command unchanged"), e.g.
 *   inputs services/cart/: tree 3f2a1c… → 9c1b07…
 *   upstream build:proto output changed (1a2b3c… → 4d5e6f…)
 */
void ry_cache_explain(struct ry_cache_key *before, struct ry_cache_key *now,
		      struct ry_strlist *lines);

/* ---- settings (config.c) ------------------------------------------------- */

struct event_base;
struct ry_store;

struct ry_cache_config {
	char *dir;			/* local store; default WORKDIR/cache */
	char *remote_url;		/* HTTP store base URL; NULL: local only */
	char *remote_username;		/* basic auth, with the password file */
	char *remote_password_file;
	char *remote_token_file;	/* bearer token (instead of basic) */
	char *remote_ca_file;		/* extra CA bundle for TLS */
	long connect_timeout_ms;	/* HTTP connect; default 2000 */
	long stall_timeout_s;		/* HTTP below 1 byte/s for this long; default 10 */
	long timeout_s;			/* HTTP whole request; default 600 */
	struct ry_strlist toolchain;	/* platform.toolchain tags */
	char *nondeterministic;		/* keep-first | no-cache (default keep-first) */
	char *flaky;			/* keep-first | no-cache (default no-cache) */
	int threads;			/* offload threads; default 2 */
	int lookahead;			/* cacheable tasks a claim may take beyond the
					 * free slots, to look up; default 32, 0: off */
};

void ry_cache_config_init(struct ry_cache_config *c);
void ry_cache_config_release(struct ry_cache_config *c);
/* Whether key belongs to the cache (cache_*): the worker's config hands
 * those to ry_cache_config_set. */
bool ry_cache_config_owns(const char *key);
/* Sets one cache_* key; where names the source for errors ("w.conf:7"). */
bool ry_cache_config_set(struct ry_cache_config *c, const char *key, const char *value,
			 const char *where, char **err) RY_MUST_CHECK;
/* Reads the cache_* lines of a worker config file (key = value), ignoring
 * the worker's own keys. */
bool ry_cache_config_load_file(struct ry_cache_config *c, const char *path, char **err) RY_MUST_CHECK;
/*
 * The store the settings describe: the local store at dir (workdir/cache
 * when unset), behind which the HTTP store sits when remote_url is set.
 * Credentials come from the files named here, never from the database;
 * a credential file readable by others is refused.  base NULL: blocking.
 */
struct ry_store *ry_cache_config_open_store(const struct ry_cache_config *c,
					    struct event_base *base, const char *workdir,
					    char **err) RY_MUST_CHECK;

/* "10G", "512M", "1.5GB", "123" (bytes) → bytes; false on junk. */
bool ry_cache_parse_size(const char *s, int64_t *bytes) RY_MUST_CHECK;
/* "7d", "12h", "30m", "90s", "2w" → seconds; false on junk. */
bool ry_cache_parse_age(const char *s, int64_t *seconds) RY_MUST_CHECK;
/* 1536 → "1.5 KB"; into buf. */
void ry_cache_format_size(char *buf, size_t len, int64_t bytes);

/* ---- restoring and saving artifacts on the event loop (artifacts.c) ---- */

struct ry_cache_ctx;
struct ry_cache_op;
struct ry_offload;

enum ry_cache_status {
	RY_CACHE_OK,		/* restored / saved */
	RY_CACHE_MISS,		/* no store has the artifact */
	RY_CACHE_CORRUPT,	/* it did not match its digest: quarantined (see moved_to) */
	RY_CACHE_UNAVAILABLE,	/* a store is down, slow or refused us: run uncached, warn */
	RY_CACHE_FAILED,	/* the tree could not be read or written (disk, an output missing) */
};

struct ry_cache_result {
	enum ry_cache_status status;
	const char *error;		/* when not OK/MISS: what failed, naming the store or path */
	const char *warning;		/* OK, but the remote store did not get it */
	const char *quarantined;	/* CORRUPT: where the bad copy went ("local DIR/quarantine/…") */
	char digest[RY_DIGEST_HEX];	/* the artifact */
	int64_t size;			/* its bytes */
	size_t entries;			/* save: files, directories and symlinks archived */
	int64_t content_bytes;		/* save: bytes before compression */
	const char *manifest;		/* save: JSON path -> content digest */
};

typedef void (*ry_cache_done_fn)(void *arg, const struct ry_cache_result *res);

/*
 * The cache at run time: the store the settings describe (local, or local
 * in front of HTTP) on base, and cfg->threads offload threads for the
 * blocking parts (archiving, extraction with the digest check).
 */
struct ry_cache_ctx *ry_cache_ctx_new(struct event_base *base, const struct ry_cache_config *cfg,
				      const char *workdir, char **err) RY_MUST_CHECK;
/* The same over a store made by the caller (owned from here; tests). */
struct ry_cache_ctx *ry_cache_ctx_new_with_store(struct event_base *base, struct ry_store *store,
						 int threads, char **err) RY_MUST_CHECK;
struct ry_store *ry_cache_ctx_store(struct ry_cache_ctx *c);
/* The offload threads, for the worker's other blocking cache work (pkg/source). */
struct ry_offload *ry_cache_ctx_offload(struct ry_cache_ctx *c);
/* Waits for work on the offload threads, then frees; operations still
 * pending end without their callbacks. */
void ry_cache_ctx_free(struct ry_cache_ctx *c);

/*
 * Restores artifact digest into the directory tree: the store opens it
 * (fetching from the remote into the local store when needed), then an
 * offload thread extracts it, checking the digest as it reads.  A local
 * copy that fails the check is quarantined and reported CORRUPT.
 */
struct ry_cache_op *ry_cache_restore(struct ry_cache_ctx *c, const char *digest, const char *tree,
				     ry_cache_done_fn done, void *arg);
/*
 * A cache hit's check: the store opens the artifact (fetching it into the
 * local store when needed) and an offload thread reads it through against
 * its digest, unpacking nothing (the task does not run; its dependants
 * restore the artifact themselves).  Results as ry_cache_restore's: a
 * local copy that fails the check is quarantined and reported CORRUPT;
 * size is the artifact's bytes.
 */
struct ry_cache_op *ry_cache_verify(struct ry_cache_ctx *c, const char *digest,
				    ry_cache_done_fn done, void *arg);
/*
 * Archives outputs of tree on an offload thread into the local store,
 * then uploads it to the remote store (a failed upload is a warning: the
 * local copy serves this host).
 */
struct ry_cache_op *ry_cache_save(struct ry_cache_ctx *c, const char *tree,
				  const struct ry_strlist *outputs, ry_cache_done_fn done, void *arg);
/* Abandons an operation: its callback will not run. */
void ry_cache_op_cancel(struct ry_cache_op *op);

#endif
