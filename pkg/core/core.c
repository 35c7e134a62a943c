#include "core/core.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_prefix = "railyard";
static int log_debug = -1;

void ry_log_set_prefix(const char *prefix)
{
	log_prefix = prefix ? prefix : "railyard";
}

void ry_log(enum ry_log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "debug", "info", "warning", "error" };
	char msg[2048];
	va_list ap;

	if (level == RY_LOG_DEBUG) {
		if (log_debug < 0) {
			const char *d = getenv("RAILYARD_DEBUG");
			log_debug = d && *d && strcmp(d, "0") != 0;
		}
		if (!log_debug)
			return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One write per line so lines from concurrent processes do not mix. */
	fprintf(stderr, "%s: %s: %s\n", log_prefix, names[level], msg);
}

static void oom(size_t n)
{
	fprintf(stderr, "railyard: fatal: out of memory allocating %zu bytes\n", n);
	abort();
}

void *ry_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *ry_calloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (!p)
		oom(nmemb * size);
	return p;
}

void *ry_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom(n);
	return q;
}

char *ry_strdup(const char *s)
{
	return ry_strndup(s, strlen(s));
}

char *ry_strndup(const char *s, size_t n)
{
	char *p = ry_malloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *ry_asprintf(const char *fmt, ...)
{
	struct ry_buf b = RY_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	char tmp[512];
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return ry_strdup("");
	if ((size_t)n < sizeof(tmp))
		return ry_strdup(tmp);
	b.cap = (size_t)n + 1;
	b.data = ry_malloc(b.cap);
	va_start(ap, fmt);
	vsnprintf(b.data, b.cap, fmt, ap);
	va_end(ap);
	return b.data;
}

static void buf_grow(struct ry_buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + extra + 1)
		cap *= 2;
	b->data = ry_realloc(b->data, cap);
	b->cap = cap;
}

void ry_buf_add(struct ry_buf *b, const void *data, size_t len)
{
	buf_grow(b, len);
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void ry_buf_puts(struct ry_buf *b, const char *s)
{
	ry_buf_add(b, s, strlen(s));
}

void ry_buf_putc(struct ry_buf *b, char c)
{
	ry_buf_add(b, &c, 1);
}

void ry_buf_vprintf(struct ry_buf *b, const char *fmt, va_list ap)
{
	va_list copy;
	va_copy(copy, ap);
	int n = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (n <= 0)
		return;
	buf_grow(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void ry_buf_printf(struct ry_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ry_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void ry_buf_reset(struct ry_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

char *ry_buf_detach(struct ry_buf *b)
{
	char *s = b->data ? b->data : ry_strdup("");
	b->data = NULL;
	b->len = b->cap = 0;
	return s;
}

void ry_buf_release(struct ry_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void ry_strlist_add(struct ry_strlist *l, const char *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->items = ry_realloc(l->items, l->cap * sizeof(*l->items));
	}
	l->items[l->n++] = ry_strdup(s);
}

bool ry_strlist_has(const struct ry_strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->items[i], s) == 0)
			return true;
	return false;
}

void ry_strlist_split(struct ry_strlist *l, const char *csv, char sep)
{
	const char *p = csv;
	while (p && *p) {
		const char *end = strchr(p, sep);
		if (!end)
			end = p + strlen(p);
		const char *a = p, *z = end;
		while (a < z && isspace((unsigned char)*a))
			a++;
		while (z > a && isspace((unsigned char)z[-1]))
			z--;
		if (z > a) {
			char *item = ry_strndup(a, (size_t)(z - a));
			ry_strlist_add(l, item);
			free(item);
		}
		p = *end ? end + 1 : end;
	}
}

void ry_strlist_release(struct ry_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = l->cap = 0;
}

int64_t ry_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ry_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t ry_wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

bool ry_parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	if (!s || !*s)
		return false;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

void ry_format_duration(char *buf, size_t len, double s)
{
	if (s < 0)
		s = 0;
	long t = (long)s;
	if (s < 10)
		snprintf(buf, len, "%.1fs", s);
	else if (t < 60)
		snprintf(buf, len, "%lds", t);
	else if (t < 3600)
		snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
	else if (t < 86400)
		snprintf(buf, len, "%ldh%02ldm", t / 3600, t % 3600 / 60);
	else
		snprintf(buf, len, "%ldd%02ldh", t / 86400, t % 86400 / 3600);
}

uint64_t ry_fnv1a64(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 14695981039346656037ULL;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

void ry_make_printable(char *s, bool multiline)
{
	for (unsigned char *p = (unsigned char *)s; *p; p++) {
		if (*p == '\n' || *p == '\t') {
			if (!multiline)
				*p = ' ';
		} else if (*p < 0x20 || *p == 0x7f) {
			*p = '?';
		} else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			p[0] = '?';
			p[1] = '?';
			p++;
		}
	}
}

bool ry_read_file(const char *path, size_t max, struct ry_buf *out, char **err)
{
	bool is_stdin = strcmp(path, "-") == 0;
	FILE *f = is_stdin ? stdin : fopen(path, "rb");
	char chunk[65536];
	size_t n;
	bool ok = false;

	if (!f) {
		*err = ry_asprintf("cannot read %s: %s", path, strerror(errno));
		return false;
	}
	while (out->len <= max && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		ry_buf_add(out, chunk, n);
	if (ferror(f))
		*err = ry_asprintf("cannot read %s: %s", path, strerror(errno));
	else if (out->len > max)
		*err = ry_asprintf("cannot read %s: larger than %zu MB", path, max >> 20);
	else
		ok = true;
	ry_buf_add(out, "", 0);	/* NUL-terminated even when empty */
	if (!is_stdin)
		fclose(f);
	return ok;
}

bool ry_read_all(int fd, size_t max, struct ry_buf *b)
{
	char chunk[4096];
	ry_buf_add(b, "", 0);
	while (b->len <= max) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n > 0)
			ry_buf_add(b, chunk, (size_t)n);
		else if (n == 0)
			return true;
		else if (errno != EINTR)
			return false;
	}
	return true;
}
