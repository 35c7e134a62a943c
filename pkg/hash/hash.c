#include "hash/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ry_hash {
	EVP_MD_CTX *ctx;
};

static void reset(struct ry_hash *h)
{
	if (EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
		fprintf(stderr, "railyard: fatal: cannot initialise SHA-256\n");
		abort();
	}
}

struct ry_hash *ry_hash_new(void)
{
	struct ry_hash *h = ry_malloc(sizeof(*h));
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx) {
		fprintf(stderr, "railyard: fatal: cannot allocate a SHA-256 context\n");
		abort();
	}
	reset(h);
	return h;
}

void ry_hash_update(struct ry_hash *h, const void *data, size_t len)
{
	if (len)
		EVP_DigestUpdate(h->ctx, data, len);
}

void ry_hash_final_hex(struct ry_hash *h, char out[RY_DIGEST_HEX])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_DigestFinal_ex(h->ctx, md, &n);
	for (unsigned int i = 0; i < n && i < RY_DIGEST_LEN; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[2 * RY_DIGEST_LEN] = '\0';
	reset(h);
}

void ry_hash_free(struct ry_hash *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

void ry_hash_hex(const void *data, size_t len, char out[RY_DIGEST_HEX])
{
	struct ry_hash *h = ry_hash_new();
	ry_hash_update(h, data, len);
	ry_hash_final_hex(h, out);
	ry_hash_free(h);
}

bool ry_hash_fd(int fd, char out[RY_DIGEST_HEX], int64_t *size, char **err)
{
	struct ry_hash *h = ry_hash_new();
	char *buf = ry_malloc(65536);
	int64_t total = 0;
	bool ok = false;

	for (;;) {
		ssize_t n = read(fd, buf, 65536);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*err = ry_asprintf("cannot read: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		ry_hash_update(h, buf, (size_t)n);
		total += n;
	}
	ry_hash_final_hex(h, out);
	if (size)
		*size = total;
	ok = true;
out:
	free(buf);
	ry_hash_free(h);
	return ok;
}

bool ry_hash_file(const char *path, char out[RY_DIGEST_HEX], int64_t *size, char **err)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		*err = ry_asprintf("cannot open %s: %s", path, strerror(errno));
		return false;
	}
	char *e = NULL;
	bool ok = ry_hash_fd(fd, out, size, &e);
	if (!ok) {
		*err = ry_asprintf("%s: %s", path, e);
		free(e);
	}
	close(fd);
	return ok;
}

bool ry_hash_is_hex(const char *s)
{
	size_t i;
	if (!s)
		return false;
	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == 2 * RY_DIGEST_LEN;
}

void ry_hash_hmac_hex(const void *key, size_t key_len, const void *data, size_t len,
		      char out[RY_DIGEST_HEX])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (!HMAC(EVP_sha256(), key, (int)key_len, data, len, md, &n) || n != RY_DIGEST_LEN) {
		fprintf(stderr, "railyard: fatal: cannot compute HMAC-SHA256\n");
		abort();
	}
	for (unsigned int i = 0; i < n; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[2 * n] = '\0';
}
