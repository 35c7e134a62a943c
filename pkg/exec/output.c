#include "exec/output.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MASK "***"

struct ry_output {
	int fd;
	uint64_t cap;		/* 0: none */
	uint64_t size;		/* bytes in the file */
	bool truncated;
	bool discarding;	/* capped or failed: read and drop */
	int err;
	struct ry_strlist masks;
	size_t longest;		/* longest mask */
	struct ry_buf carry;	/* held back: may be the start of a secret */
};

struct ry_output *ry_output_open(const char *path, uint64_t cap_bytes, char **err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		*err = ry_asprintf("cannot create log %s: %s", path, strerror(errno));
		return NULL;
	}
	struct ry_output *o = ry_calloc(1, sizeof(*o));
	o->fd = fd;
	o->cap = cap_bytes;
	return o;
}

void ry_output_mask(struct ry_output *o, const char *value)
{
	size_t n = strlen(value);
	if (!n || ry_strlist_has(&o->masks, value))
		return;
	ry_strlist_add(&o->masks, value);
	if (n > o->longest)
		o->longest = n;
}

static void write_all(struct ry_output *o, const char *p, size_t n)
{
	while (n && !o->err) {
		ssize_t w = write(o->fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			o->err = errno;
			o->discarding = true;
			return;
		}
		p += w;
		n -= (size_t)w;
		o->size += (uint64_t)w;
	}
}

static void emit(struct ry_output *o, const char *p, size_t n)
{
	if (o->discarding || !n)
		return;
	if (o->cap && o->size + n > o->cap) {
		write_all(o, p, (size_t)(o->cap - o->size));
		char marker[160];
		snprintf(marker, sizeof(marker),
			 "\n[railyard: output truncated at %llu MB (log_max_mb); the rest was "
			 "discarded]\n", (unsigned long long)(o->cap >> 20));
		write_all(o, marker, strlen(marker));
		o->truncated = true;
		o->discarding = true;
		return;
	}
	write_all(o, p, n);
}

/* The length of the mask that starts at p (room bytes available), or 0. */
static size_t mask_at(const struct ry_output *o, const char *p, size_t room)
{
	for (size_t i = 0; i < o->masks.n; i++) {
		const char *m = o->masks.items[i];
		size_t l = strlen(m);
		if (l <= room && *p == *m && memcmp(p, m, l) == 0)
			return l;
	}
	return 0;
}

/* Masks and emits buf up to 'upto' (or past it to finish a mask); keeps
 * the rest as the carry. */
static void process(struct ry_output *o, const char *buf, size_t len, size_t upto)
{
	struct ry_buf out = RY_BUF_INIT;
	size_t p = 0, plain = 0;
	while (p < upto) {
		size_t l = mask_at(o, buf + p, len - p);
		if (l) {
			ry_buf_add(&out, buf + plain, p - plain);
			ry_buf_puts(&out, MASK);
			p += l;
			plain = p;
		} else {
			p++;
		}
	}
	ry_buf_add(&out, buf + plain, p - plain);
	emit(o, out.data ? out.data : "", out.len);
	ry_buf_release(&out);
	struct ry_buf rest = RY_BUF_INIT;
	ry_buf_add(&rest, buf + p, len - p);
	ry_buf_release(&o->carry);
	o->carry = rest;
}

void ry_output_feed(struct ry_output *o, const char *data, size_t len)
{
	if (o->discarding)
		return;
	if (!o->masks.n) {
		emit(o, data, len);
		return;
	}
	struct ry_buf all = RY_BUF_INIT;
	ry_buf_add(&all, o->carry.data ? o->carry.data : "", o->carry.len);
	ry_buf_add(&all, data, len);
	/* The last longest-1 bytes may begin a secret the next read ends. */
	size_t keep = o->longest - 1;
	process(o, all.data, all.len, all.len > keep ? all.len - keep : 0);
	ry_buf_release(&all);
}

void ry_output_finish(struct ry_output *o)
{
	if (o->carry.len && !o->discarding) {
		struct ry_buf all = o->carry;
		o->carry = (struct ry_buf)RY_BUF_INIT;
		process(o, all.data, all.len, all.len);
		ry_buf_release(&all);
	}
	ry_buf_release(&o->carry);
}

int ry_output_error(const struct ry_output *o)
{
	return o->err;
}

bool ry_output_truncated(const struct ry_output *o)
{
	return o->truncated;
}

uint64_t ry_output_size(const struct ry_output *o)
{
	return o->size;
}

void ry_output_close(struct ry_output *o)
{
	if (!o)
		return;
	close(o->fd);
	/* The masks are secret values: cleared before the memory goes back. */
	for (size_t i = 0; i < o->masks.n; i++)
		explicit_bzero(o->masks.items[i], strlen(o->masks.items[i]));
	ry_strlist_release(&o->masks);
	if (o->carry.data)
		explicit_bzero(o->carry.data, o->carry.cap);
	ry_buf_release(&o->carry);
	free(o);
}

char *ry_output_mask_string(char *s, char *const *masks, size_t n)
{
	if (!s || !n)
		return s;
	struct ry_buf out = RY_BUF_INIT;
	size_t len = strlen(s), p = 0, plain = 0;
	bool any = false;
	while (p < len) {
		size_t l = 0;
		for (size_t i = 0; i < n && !l; i++) {
			size_t ml = strlen(masks[i]);
			if (ml && ml <= len - p && memcmp(s + p, masks[i], ml) == 0)
				l = ml;
		}
		if (l) {
			ry_buf_add(&out, s + plain, p - plain);
			ry_buf_puts(&out, MASK);
			p += l;
			plain = p;
			any = true;
		} else {
			p++;
		}
	}
	if (!any) {
		ry_buf_release(&out);
		return s;
	}
	ry_buf_add(&out, s + plain, len - plain);
	free(s);
	return ry_buf_detach(&out);
}
