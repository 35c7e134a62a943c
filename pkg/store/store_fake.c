/* An in-memory store for tests: behaves like a remote one (verifies CAS
 * content on GET/OPEN), counts requests, fails on demand. */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct blob {
	enum ry_store_ns ns;
	char key[RY_DIGEST_HEX];
	struct ry_buf data;
};

struct fake {
	struct ry_store s;
	struct blob *blobs;
	size_t n, cap;
	enum ry_store_status fail[RY_STORE_DELETE + 1];
	size_t calls[RY_STORE_DELETE + 1];
};

static struct fake *F(struct ry_store *s)
{
	return (struct fake *)s;
}

static struct blob *find(struct fake *f, enum ry_store_ns ns, const char *key)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->blobs[i].ns == ns && strcmp(f->blobs[i].key, key) == 0)
			return &f->blobs[i];
	return NULL;
}

static bool read_file(const char *path, struct ry_buf *b)
{
	char chunk[8192];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ry_buf_puts(b, "");
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		ry_buf_add(b, chunk, (size_t)n);
	close(fd);
	return n == 0;
}

static bool write_all(int fd, const struct ry_buf *b)
{
	return b->len == 0 || write(fd, b->data, b->len) == (ssize_t)b->len;
}

static void fake_start(struct ry_store *s, struct ry_store_req *req)
{
	struct fake *f = F(s);
	struct blob *b = find(f, req->ns, req->key);
	enum ry_store_status st = RY_STORE_OK;
	char *err = NULL;

	f->calls[req->op]++;
	if (f->fail[req->op] != RY_STORE_OK) {
		st = f->fail[req->op];
		err = ry_asprintf("fake store: %s %s: %s (injected)", ry_store_op_name(req->op),
				  req->key, ry_store_status_name(st));
		goto out;
	}
	if (req->op != RY_STORE_PUT && !b) {
		st = RY_STORE_MISS;
		goto out;
	}
	if ((req->op == RY_STORE_GET || req->op == RY_STORE_OPEN) && req->ns == RY_STORE_CAS) {
		char got[RY_DIGEST_HEX];
		ry_hash_hex(b->data.data, b->data.len, got);
		if (strcmp(got, req->key) != 0) {
			st = RY_STORE_CORRUPT;
			err = ry_asprintf("fake store: %s does not match its digest", req->key);
			goto out;
		}
	}
	switch (req->op) {
	case RY_STORE_HEAD:
		req->size = (int64_t)b->data.len;
		break;
	case RY_STORE_GET: {
		int fd = open(req->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || !write_all(fd, &b->data)) {
			st = RY_STORE_UNAVAILABLE;
			err = ry_asprintf("fake store: cannot write %s: %s", req->path, strerror(errno));
		}
		if (fd >= 0)
			close(fd);
		req->size = (int64_t)b->data.len;
		break;
	}
	case RY_STORE_OPEN: {
		char tmpl[] = "/tmp/ry-fake-open-XXXXXX";
		int fd = mkostemp(tmpl, O_CLOEXEC);
		if (fd < 0 || !write_all(fd, &b->data) || lseek(fd, 0, SEEK_SET) < 0) {
			st = RY_STORE_UNAVAILABLE;
			err = ry_asprintf("fake store: cannot stage %s", req->key);
			if (fd >= 0)
				close(fd);
		} else {
			req->fd = fd;
			req->size = (int64_t)b->data.len;
		}
		if (fd >= 0)
			unlink(tmpl);
		break;
	}
	case RY_STORE_PUT:
		if (!b) {
			if (f->n == f->cap) {
				f->cap = f->cap ? 2 * f->cap : 16;
				f->blobs = ry_realloc(f->blobs, f->cap * sizeof(*f->blobs));
			}
			b = &f->blobs[f->n++];
			memset(b, 0, sizeof(*b));
			b->ns = req->ns;
			memcpy(b->key, req->key, RY_DIGEST_HEX);
		}
		ry_buf_reset(&b->data);
		if (!read_file(req->path, &b->data)) {
			st = RY_STORE_REFUSED;
			err = ry_asprintf("fake store: cannot read %s", req->path);
		}
		req->size = (int64_t)b->data.len;
		break;
	case RY_STORE_DELETE:
		ry_buf_release(&b->data);
		*b = f->blobs[--f->n];
		break;
	}
out:
	ry_store_complete_later(req, st, err);
}

static void fake_cancel(struct ry_store *s, struct ry_store_req *req)
{
	(void)s;
	(void)req;
}

static void fake_release(struct ry_store *s)
{
	struct fake *f = F(s);
	for (size_t i = 0; i < f->n; i++)
		ry_buf_release(&f->blobs[i].data);
	free(f->blobs);
	free(f);
}

static const struct ry_store_ops fake_ops = { "fake", fake_start, fake_cancel, fake_release };

struct ry_store *ry_store_fake_new(struct event_base *base)
{
	struct fake *f = ry_calloc(1, sizeof(*f));
	ry_store_init(&f->s, &fake_ops, base, "fake store");
	return &f->s;
}

void ry_store_fake_fail(struct ry_store *s, enum ry_store_op op, enum ry_store_status st)
{
	F(s)->fail[op] = st;
}

bool ry_store_fake_corrupt(struct ry_store *s, enum ry_store_ns ns, const char *key)
{
	struct blob *b = find(F(s), ns, key);
	if (!b || b->data.len == 0)
		return false;
	b->data.data[b->data.len / 2] ^= 0x01;
	return true;
}

size_t ry_store_fake_calls(const struct ry_store *s, enum ry_store_op op)
{
	return ((const struct fake *)s)->calls[op];
}

size_t ry_store_fake_count(const struct ry_store *s)
{
	return ((const struct fake *)s)->n;
}
