/*
 * core: the few helpers every module shares — logging, allocation that
 * cannot return NULL, a growable string buffer, monotonic time.
 * Depends on nothing but libc.
 */
#ifndef RY_CORE_H
#define RY_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RY_MUST_CHECK __attribute__((warn_unused_result))
#define RY_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define RY_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

enum ry_log_level {
	RY_LOG_DEBUG,	/* only with RAILYARD_DEBUG=1 */
	RY_LOG_INFO,	/* normal progress, one line per event */
	RY_LOG_WARN,	/* something degraded but work goes on */
	RY_LOG_ERROR,	/* an operation failed */
};

/* Prefix for log lines ("railyard worker w1"); NULL means "railyard". */
void ry_log_set_prefix(const char *prefix);
void ry_log(enum ry_log_level level, const char *fmt, ...) RY_PRINTF(2, 3);
#define ry_debug(...) ry_log(RY_LOG_DEBUG, __VA_ARGS__)
#define ry_info(...)  ry_log(RY_LOG_INFO, __VA_ARGS__)
#define ry_warn(...)  ry_log(RY_LOG_WARN, __VA_ARGS__)
#define ry_error(...) ry_log(RY_LOG_ERROR, __VA_ARGS__)

/* Allocation: abort with a message on exhaustion, never return NULL. */
void *ry_malloc(size_t n);
void *ry_calloc(size_t nmemb, size_t size);
void *ry_realloc(void *p, size_t n);
char *ry_strdup(const char *s);
char *ry_strndup(const char *s, size_t n);
char *ry_asprintf(const char *fmt, ...) RY_PRINTF(1, 2);

/* Growable NUL-terminated buffer.  Zero-initialise or use RY_BUF_INIT. */
struct ry_buf {
	char *data;	/* always NUL-terminated once anything was added */
	size_t len;	/* bytes used, excluding the NUL */
	size_t cap;	/* bytes allocated */
};
#define RY_BUF_INIT { NULL, 0, 0 }
void ry_buf_add(struct ry_buf *b, const void *data, size_t len);
void ry_buf_puts(struct ry_buf *b, const char *s);
void ry_buf_putc(struct ry_buf *b, char c);
void ry_buf_printf(struct ry_buf *b, const char *fmt, ...) RY_PRINTF(2, 3);
void ry_buf_vprintf(struct ry_buf *b, const char *fmt, va_list ap) RY_PRINTF(2, 0);
void ry_buf_reset(struct ry_buf *b);
/* Hands the string to the caller (never NULL) and empties the buffer. */
char *ry_buf_detach(struct ry_buf *b);
void ry_buf_release(struct ry_buf *b);

/* A list of owned strings. */
struct ry_strlist {
	char **items;
	size_t n;
	size_t cap;
};
void ry_strlist_add(struct ry_strlist *l, const char *s);
bool ry_strlist_has(const struct ry_strlist *l, const char *s);
/* Splits "a,b , c" into trimmed non-empty items appended to l. */
void ry_strlist_split(struct ry_strlist *l, const char *csv, char sep);
void ry_strlist_release(struct ry_strlist *l);

/* Milli- and microseconds on CLOCK_MONOTONIC / microseconds of wall clock. */
int64_t ry_now_ms(void);
int64_t ry_now_us(void);
int64_t ry_wall_us(void);

/* Appends what fd holds (to its end, or past max bytes) to b; false with
 * errno set on a read error.  Interrupted reads are retried. */
bool ry_read_all(int fd, size_t max, struct ry_buf *b) RY_MUST_CHECK;

/* FNV-1a: small, stable hash for names (not for security). */
uint64_t ry_fnv1a64(const void *data, size_t len);

/*
 * Makes s safe to print on a terminal, in place: C0 controls, DEL and the
 * C1 controls (U+0080..U+009F as UTF-8) become '?', so text from a database
 * or a task cannot move the cursor, retitle the terminal or hide itself.
 * With multiline, newlines and tabs stay; without, they become spaces.
 * The length never changes.
 */
void ry_make_printable(char *s, bool multiline);

/* Seconds for people: "0.4s", "42s", "5m07s", "2h05m", "3d04h". */
void ry_format_duration(char *buf, size_t len, double seconds);

/* Parses a whole decimal integer in [min,max]; false on any junk. */
bool ry_parse_long(const char *s, long min, long max, long *out) RY_MUST_CHECK;

/*
 * Reads the whole file path ("-" is stdin) into out, at most max bytes.
 * False with *err ("cannot read PATH: why", caller frees) otherwise.
 */
bool ry_read_file(const char *path, size_t max, struct ry_buf *out, char **err) RY_MUST_CHECK;

#endif
