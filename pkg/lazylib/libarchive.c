/* libarchive on first use (lazylib.h).  The functions pkg/archive calls. */
#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>

#include "lazylib/wrap.h"

#define ARCHIVE_SYMBOLS(F, V, H) \
	F(struct archive *, archive_read_new, (void), ()) \
	F(int, archive_read_support_filter_zstd, (struct archive *a), (a)) \
	F(int, archive_read_support_format_tar, (struct archive *a), (a)) \
	F(int, archive_read_open, (struct archive *a, void *data, archive_open_callback *open, \
				   archive_read_callback *read, archive_close_callback *close), \
	  (a, data, open, read, close)) \
	F(int, archive_read_next_header, (struct archive *a, struct archive_entry **e), (a, e)) \
	F(int, archive_read_data_block, (struct archive *a, const void **buf, size_t *size, \
					 la_int64_t *offset), (a, buf, size, offset)) \
	F(int, archive_read_free, (struct archive *a), (a)) \
	F(struct archive *, archive_write_new, (void), ()) \
	F(int, archive_write_add_filter_zstd, (struct archive *a), (a)) \
	F(int, archive_write_set_filter_option, (struct archive *a, const char *m, const char *o, \
						 const char *v), (a, m, o, v)) \
	F(int, archive_write_set_format_pax_restricted, (struct archive *a), (a)) \
	F(int, archive_write_set_bytes_in_last_block, (struct archive *a, int n), (a, n)) \
	F(int, archive_write_open, (struct archive *a, void *data, archive_open_callback *open, \
				    archive_write_callback *write, archive_close_callback *close), \
	  (a, data, open, write, close)) \
	F(int, archive_write_header, (struct archive *a, struct archive_entry *e), (a, e)) \
	F(la_ssize_t, archive_write_data, (struct archive *a, const void *buf, size_t n), (a, buf, n)) \
	F(int, archive_write_close, (struct archive *a), (a)) \
	F(int, archive_write_free, (struct archive *a), (a)) \
	F(const char *, archive_error_string, (struct archive *a), (a)) \
	H(archive_set_error) \
	F(struct archive_entry *, archive_entry_new, (void), ()) \
	F(struct archive_entry *, archive_entry_clear, (struct archive_entry *e), (e)) \
	V(archive_entry_free, (struct archive_entry *e), (e)) \
	F(const char *, archive_entry_pathname, (struct archive_entry *e), (e)) \
	F(const char *, archive_entry_hardlink, (struct archive_entry *e), (e)) \
	F(const char *, archive_entry_symlink, (struct archive_entry *e), (e)) \
	F(mode_t, archive_entry_filetype, (struct archive_entry *e), (e)) \
	F(mode_t, archive_entry_perm, (struct archive_entry *e), (e)) \
	F(la_int64_t, archive_entry_size, (struct archive_entry *e), (e)) \
	V(archive_entry_set_pathname, (struct archive_entry *e, const char *s), (e, s)) \
	V(archive_entry_set_symlink, (struct archive_entry *e, const char *s), (e, s)) \
	V(archive_entry_set_filetype, (struct archive_entry *e, unsigned int t), (e, t)) \
	V(archive_entry_set_perm, (struct archive_entry *e, mode_t m), (e, m)) \
	V(archive_entry_set_size, (struct archive_entry *e, la_int64_t n), (e, n)) \
	V(archive_entry_set_uid, (struct archive_entry *e, la_int64_t id), (e, id)) \
	V(archive_entry_set_gid, (struct archive_entry *e, la_int64_t id), (e, id)) \
	V(archive_entry_set_mtime, (struct archive_entry *e, time_t s, long ns), (e, s, ns))

RY_LAZYLIB(archive, ARCHIVE_SYMBOLS, "libarchive.so.13", "libarchive13")

void archive_set_error(struct archive *a, int err, const char *fmt, ...)
{
	RY_LAZY_FORMAT(msg, fmt);
	load();
	real.archive_set_error(a, err, "%s", msg);
	free(msg);
}
