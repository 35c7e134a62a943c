/*
 * hash: SHA-256 through OpenSSL's EVP interface, streaming.  The only
 * module that includes OpenSSL headers.  Digests are shown as 64 lowercase
 * hex characters everywhere (store keys, cache keys, the database).
 */
#ifndef RY_HASH_H
#define RY_HASH_H

#include "core/core.h"

#define RY_DIGEST_LEN 32
#define RY_DIGEST_HEX 65	/* 64 hex characters and the NUL */

struct ry_hash;

/* A fresh SHA-256 context; never NULL (aborts if OpenSSL cannot make one). */
struct ry_hash *ry_hash_new(void);
void ry_hash_update(struct ry_hash *h, const void *data, size_t len);
/* Writes the digest as hex into out and resets h for reuse. */
void ry_hash_final_hex(struct ry_hash *h, char out[RY_DIGEST_HEX]);
void ry_hash_free(struct ry_hash *h);

/* One-shot digest of a buffer / of a string, as hex. */
void ry_hash_hex(const void *data, size_t len, char out[RY_DIGEST_HEX]);
/* Digest of an open file's content from its current offset to EOF; reads
 * in 64 KiB chunks.  false with *err on a read error. */
bool ry_hash_fd(int fd, char out[RY_DIGEST_HEX], int64_t *size, char **err) RY_MUST_CHECK;
/* Digest of a file's content (O_NOFOLLOW: a symlink is an error). */
bool ry_hash_file(const char *path, char out[RY_DIGEST_HEX], int64_t *size, char **err) RY_MUST_CHECK;
/* HMAC-SHA256 of data keyed with key, as hex (webhook signatures). */
void ry_hash_hmac_hex(const void *key, size_t key_len, const void *data, size_t len,
		      char out[RY_DIGEST_HEX]);
/* Whether s is exactly 64 lowercase hex characters. */
bool ry_hash_is_hex(const char *s);

#endif
