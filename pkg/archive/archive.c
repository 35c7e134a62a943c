#include "archive/archive.h"
#include "exec/exec.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK 65536
#define ZSTD_LEVEL "3"

enum ent_type { ENT_DIR, ENT_FILE, ENT_LINK };

struct ent {
	char *path;		/* relative, no trailing slash */
	enum ent_type type;
	mode_t mode;		/* 0644, 0755 */
	int64_t size;
	char *target;		/* ENT_LINK */
};

struct ents {
	struct ent *v;
	size_t n, cap;
};

static void ents_add(struct ents *e, const char *path, enum ent_type type, mode_t mode,
		     int64_t size, const char *target)
{
	if (e->n == e->cap) {
		e->cap = e->cap ? 2 * e->cap : 64;
		e->v = ry_realloc(e->v, e->cap * sizeof(*e->v));
	}
	e->v[e->n++] = (struct ent){ ry_strdup(path), type, mode, size,
				     target ? ry_strdup(target) : NULL };
}

static void ents_release(struct ents *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->v[i].path);
		free(e->v[i].target);
	}
	free(e->v);
	memset(e, 0, sizeof(*e));
}

static int cmp_ent(const void *a, const void *b)
{
	return strcmp(((const struct ent *)a)->path, ((const struct ent *)b)->path);
}

/* A symlink at path pointing to target stays inside the tree (lexically). */
static bool link_stays_inside(const char *path, const char *target)
{
	if (!*target || target[0] == '/')
		return false;
	int depth = 0;
	for (const char *p = path; *p; p++)
		depth += *p == '/';	/* directories above the link */
	const char *p = target;
	while (*p) {
		const char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (--depth < 0)
				return false;
		} else if (n > 0 && !(n == 1 && p[0] == '.')) {
			depth++;
		}
		if (!end)
			break;
		p = end + 1;
	}
	return true;
}

/* ---- creation ----------------------------------------------------------- */

static bool collect(const char *root, const char *rel, struct ents *out, char **err)
{
	char *full = ry_asprintf("%s/%s", root, rel);
	struct stat st;
	bool ok = false;
	DIR *d = NULL;

	if (lstat(full, &st) < 0) {
		*err = errno == ENOENT ? ry_asprintf("output %s does not exist", rel)
				       : ry_asprintf("cannot read output %s: %s", rel, strerror(errno));
		goto out;
	}
	if (S_ISREG(st.st_mode)) {
		ents_add(out, rel, ENT_FILE, (st.st_mode & 0111) ? 0755 : 0644, st.st_size, NULL);
	} else if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlink(full, target, sizeof(target) - 1);
		if (n < 0) {
			*err = ry_asprintf("cannot read symlink %s: %s", rel, strerror(errno));
			goto out;
		}
		target[n] = '\0';
		if (!link_stays_inside(rel, target)) {
			*err = ry_asprintf("output %s is a symlink to %s, which leaves the tree", rel,
					   target);
			goto out;
		}
		ents_add(out, rel, ENT_LINK, 0777, 0, target);
	} else if (S_ISDIR(st.st_mode)) {
		ents_add(out, rel, ENT_DIR, 0755, 0, NULL);
		if (!(d = opendir(full))) {
			*err = ry_asprintf("cannot list output %s: %s", rel, strerror(errno));
			goto out;
		}
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			char *child = ry_asprintf("%s/%s", rel, de->d_name);
			bool c = collect(root, child, out, err);
			free(child);
			if (!c)
				goto out;
		}
	} else {
		*err = ry_asprintf("output %s is not a file, directory or symlink", rel);
		goto out;
	}
	ok = true;
out:
	if (d)
		closedir(d);
	free(full);
	return ok;
}

struct writer {
	int fd;
	struct ry_hash *hash;
	int64_t size;
	int error;		/* errno of a failed write */
};

static la_ssize_t write_cb(struct archive *a, void *p, const void *buf, size_t len)
{
	struct writer *w = p;
	const char *b = buf;
	size_t left = len;
	(void)a;
	while (left) {
		ssize_t n = write(w->fd, b, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			w->error = errno;
			archive_set_error(a, errno, "%s", strerror(errno));
			return -1;
		}
		b += n;
		left -= (size_t)n;
	}
	ry_hash_update(w->hash, buf, len);
	w->size += (int64_t)len;
	return (la_ssize_t)len;
}

static bool add_file_data(struct archive *a, const char *root, const struct ent *e,
			  char digest[RY_DIGEST_HEX], char **err)
{
	char *full = ry_asprintf("%s/%s", root, e->path);
	int fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct ry_hash *h = ry_hash_new();
	char *buf = ry_malloc(CHUNK);
	int64_t left = e->size;
	bool ok = false;

	if (fd < 0) {
		*err = ry_asprintf("cannot read output %s: %s", e->path, strerror(errno));
		goto out;
	}
	while (left > 0) {
		ssize_t n = read(fd, buf, left < CHUNK ? (size_t)left : CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*err = ry_asprintf("cannot read output %s: %s", e->path, strerror(errno));
			goto out;
		}
		if (n == 0) {
			*err = ry_asprintf("output %s shrank while it was archived", e->path);
			goto out;
		}
		if (archive_write_data(a, buf, (size_t)n) != n) {
			*err = ry_asprintf("cannot write the archive: %s", archive_error_string(a));
			goto out;
		}
		ry_hash_update(h, buf, (size_t)n);
		left -= n;
	}
	ry_hash_final_hex(h, digest);
	ok = true;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(full);
	ry_hash_free(h);
	return ok;
}

bool ry_archive_create(const char *root, const struct ry_strlist *outputs, int out_fd,
		       struct ry_archive_info *info, char **err)
{
	struct ents ents = { 0 };
	struct writer w = { out_fd, ry_hash_new(), 0, 0 };
	struct archive *a = archive_write_new();
	struct archive_entry *ae = archive_entry_new();
	json_t *manifest = json_object();
	bool ok = false, opened = false;

	memset(info, 0, sizeof(*info));
	for (size_t i = 0; i < outputs->n; i++) {
		char *why = ry_archive_check_path(outputs->items[i]);
		if (why) {
			*err = ry_asprintf("invalid output: %s", why);
			free(why);
			goto out;
		}
		char *rel = ry_archive_clean_path(outputs->items[i]);
		bool c = collect(root, rel, &ents, err);
		free(rel);
		if (!c)
			goto out;
	}
	if (ents.n)
		qsort(ents.v, ents.n, sizeof(*ents.v), cmp_ent);

	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_add_filter_zstd(a) != ARCHIVE_OK ||
	    archive_write_set_filter_option(a, "zstd", "compression-level", ZSTD_LEVEL) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open(a, &w, NULL, write_cb, NULL) != ARCHIVE_OK) {
		*err = ry_asprintf("cannot start the archive: %s", archive_error_string(a));
		goto out;
	}
	opened = true;
	for (size_t i = 0; i < ents.n; i++) {
		const struct ent *e = &ents.v[i];
		if (i > 0 && strcmp(e->path, ents.v[i - 1].path) == 0)
			continue;	/* overlapping outputs: "dist" and "dist/app" */
		archive_entry_clear(ae);
		archive_entry_set_pathname(ae, e->path);
		archive_entry_set_mtime(ae, 0, 0);
		archive_entry_set_uid(ae, 0);
		archive_entry_set_gid(ae, 0);
		archive_entry_set_perm(ae, e->mode);
		archive_entry_set_filetype(ae, e->type == ENT_DIR ? AE_IFDIR :
					   e->type == ENT_LINK ? AE_IFLNK : AE_IFREG);
		archive_entry_set_size(ae, e->type == ENT_FILE ? e->size : 0);
		if (e->type == ENT_LINK)
			archive_entry_set_symlink(ae, e->target);
		if (archive_write_header(a, ae) != ARCHIVE_OK) {
			*err = ry_asprintf("cannot archive %s: %s", e->path, archive_error_string(a));
			goto out;
		}
		/* Manifest keys must be UTF-8 for jansson; other bytes become '?'. */
		char *key = ry_strdup(e->path);
		ry_exec_sanitize_utf8(key);
		if (e->type == ENT_FILE) {
			char digest[RY_DIGEST_HEX], *val;
			if (!add_file_data(a, root, e, digest, err)) {
				free(key);
				goto out;
			}
			val = ry_asprintf("sha256:%s", digest);
			json_object_set_new(manifest, key, json_string(val));
			free(val);
			info->content_bytes += e->size;
		} else if (e->type == ENT_LINK) {
			char *val = ry_asprintf("symlink:%s", e->target);
			ry_exec_sanitize_utf8(val);
			json_object_set_new(manifest, key, json_string(val));
			free(val);
		} else {
			json_object_set_new(manifest, key, json_string("dir"));
		}
		free(key);
		info->entries++;
	}
	opened = false;
	if (archive_write_close(a) != ARCHIVE_OK) {
		*err = ry_asprintf("cannot finish the archive: %s", w.error ? strerror(w.error)
							: archive_error_string(a));
		goto out;
	}
	ry_hash_final_hex(w.hash, info->digest);
	info->size = w.size;
	char *m = json_dumps(manifest, JSON_COMPACT | JSON_SORT_KEYS);
	info->manifest = ry_strdup(m ? m : "{}");
	free(m);
	ok = true;
out:
	if (opened)
		archive_write_close(a);
	archive_write_free(a);
	archive_entry_free(ae);
	json_decref(manifest);
	ry_hash_free(w.hash);
	ents_release(&ents);
	return ok;
}

void ry_archive_info_release(struct ry_archive_info *info)
{
	free(info->manifest);
	info->manifest = NULL;
}

/* ---- extraction ---------------------------------------------------------- */

struct reader {
	int fd;
	struct ry_hash *hash;
	char *buf;
	int error;
};

static la_ssize_t read_cb(struct archive *a, void *p, const void **out)
{
	struct reader *r = p;
	ssize_t n;
	(void)a;
	do
		n = read(r->fd, r->buf, CHUNK);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		r->error = errno;
		archive_set_error(a, errno, "%s", strerror(errno));
		return -1;
	}
	ry_hash_update(r->hash, r->buf, (size_t)n);
	*out = r->buf;
	return n;
}

/* Reads what libarchive left unread so the digest covers every byte. */
static bool drain(struct reader *r)
{
	const void *unused;
	while (read_cb(NULL, r, &unused) > 0)
		;
	return r->error == 0;
}

/*
 * The directory holding path's last component, under dirfd, walking every
 * component without following symlinks; missing directories are created
 * when create.  *leaf points into path.  -1 with errno on failure.
 */
static int open_parent(int dirfd, const char *path, bool create, const char **leaf)
{
	int fd = dup(dirfd);
	const char *p = path;
	for (;;) {
		const char *slash = strchr(p, '/');
		if (!slash || slash[1] == '\0') {
			*leaf = p;
			return fd;
		}
		char *comp = ry_strndup(p, (size_t)(slash - p));
		int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT && create) {
			if (mkdirat(fd, comp, 0755) == 0 || errno == EEXIST)
				next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		int saved = errno;
		free(comp);
		close(fd);
		if (next < 0) {
			errno = saved;
			return -1;
		}
		fd = next;
		p = slash + 1;
	}
}

/* Writes one entry's data into staging; false with *err (corrupt archive). */
static bool stage_entry(struct archive *a, struct archive_entry *ae, int stage_fd,
			const char *path, struct ents *staged, char **err, bool *io_error,
			bool any_link)
{
	const char *leaf;
	mode_t type = archive_entry_filetype(ae);
	int pfd = open_parent(stage_fd, path, true, &leaf);
	bool ok = false;
	int fd = -1;

	if (pfd < 0) {
		*err = ry_asprintf("entry %s: cannot create its directory: %s", path, strerror(errno));
		goto out;
	}
	if (type == AE_IFDIR) {
		if (mkdirat(pfd, leaf, 0755) < 0 && errno != EEXIST) {
			*io_error = true;
			*err = ry_asprintf("cannot create %s: %s", path, strerror(errno));
			goto out;
		}
		ents_add(staged, path, ENT_DIR, 0755, 0, NULL);
	} else if (type == AE_IFLNK) {
		const char *target = archive_entry_symlink(ae);
		if (!target || (!any_link && !link_stays_inside(path, target))) {
			*err = ry_asprintf("entry %s is a symlink leaving the tree", path);
			goto out;
		}
		if (symlinkat(target, pfd, leaf) < 0) {
			*io_error = errno != EEXIST;
			*err = ry_asprintf("cannot create symlink %s: %s", path, strerror(errno));
			goto out;
		}
		ents_add(staged, path, ENT_LINK, 0777, 0, target);
	} else if (type == AE_IFREG) {
		mode_t mode = (archive_entry_perm(ae) & 0111) ? 0755 : 0644;
		fd = openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
		if (fd < 0) {
			*io_error = errno != EEXIST;
			*err = ry_asprintf("cannot create %s: %s", path, strerror(errno));
			goto out;
		}
		for (;;) {
			const void *buf;
			size_t len;
			la_int64_t off;
			int rc = archive_read_data_block(a, &buf, &len, &off);
			if (rc == ARCHIVE_EOF)
				break;
			if (rc != ARCHIVE_OK) {
				*err = ry_asprintf("entry %s: %s", path, archive_error_string(a));
				goto out;
			}
			if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len) {
				*io_error = true;
				*err = ry_asprintf("cannot write %s: %s", path, strerror(errno));
				goto out;
			}
		}
		if (ftruncate(fd, archive_entry_size(ae)) < 0 || fchmod(fd, mode) < 0) {
			*io_error = true;
			*err = ry_asprintf("cannot write %s: %s", path, strerror(errno));
			goto out;
		}
		ents_add(staged, path, ENT_FILE, mode, archive_entry_size(ae), NULL);
	} else {
		*err = ry_asprintf("entry %s is not a file, directory or symlink", path);
		goto out;
	}
	ok = true;
out:
	if (fd >= 0)
		close(fd);
	if (pfd >= 0)
		close(pfd);
	return ok;
}

/* Moves staged entries (sorted: parents first) into dest_fd. */
static bool move_into_place(int stage_fd, int dest_fd, const struct ents *staged, char **err)
{
	for (size_t i = 0; i < staged->n; i++) {
		const struct ent *e = &staged->v[i];
		const char *leaf, *sleaf;
		int dfd = open_parent(dest_fd, e->path, true, &leaf);
		if (dfd < 0) {
			*err = ry_asprintf("cannot restore %s: %s in the way", e->path,
					   errno == ENOTDIR || errno == ELOOP ? "a file or symlink is"
									       : strerror(errno));
			return false;
		}
		bool ok = true;
		if (e->type == ENT_DIR) {
			struct stat st;
			if (mkdirat(dfd, leaf, 0755) < 0 &&
			    (errno != EEXIST || fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			     !S_ISDIR(st.st_mode))) {
				*err = ry_asprintf("cannot restore directory %s: %s", e->path,
						   errno == EEXIST ? "a file or symlink is in the way"
								   : strerror(errno));
				ok = false;
			}
		} else {
			int sfd = open_parent(stage_fd, e->path, false, &sleaf);
			if (sfd < 0 || renameat(sfd, sleaf, dfd, leaf) < 0) {
				*err = ry_asprintf("cannot restore %s: %s", e->path,
						   errno == EISDIR || errno == ENOTEMPTY
							   ? "a directory is in the way" : strerror(errno));
				ok = false;
			}
			if (sfd >= 0)
				close(sfd);
		}
		close(dfd);
		if (!ok)
			return false;
	}
	return true;
}

/*
 * Reads every entry of a tar (through r) into dir_fd, refusing unsafe
 * ones; returns NULL, or why it stopped (*io_error: the destination
 * failed, not the archive).  any_link: symlinks may point anywhere.
 */
static char *read_entries(struct archive *a, struct reader *r, int dir_fd, struct ents *done,
			  bool any_link, bool *io_error)
{
	char *why = NULL;
	archive_read_support_format_tar(a);
	if (archive_read_open(a, r, NULL, read_cb, NULL) != ARCHIVE_OK)
		return ry_asprintf("unreadable archive: %s", archive_error_string(a));
	while (!why) {
		struct archive_entry *ae;
		int rc = archive_read_next_header(a, &ae);
		if (rc == ARCHIVE_EOF)
			break;
		if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
			why = ry_asprintf("unreadable archive: %s", archive_error_string(a));
			break;
		}
		/* a pax global header (git archive's commit id) is not a file */
		if (archive_entry_filetype(ae) == 0 && any_link)
			continue;
		char *path = ry_archive_clean_path(archive_entry_pathname(ae));
		char *bad = ry_archive_check_path(path);
		if (bad) {
			why = ry_asprintf("unsafe entry: %s", bad);
			free(bad);
		} else if (archive_entry_hardlink(ae)) {
			why = ry_asprintf("entry %s is a hard link", path);
		} else {
			(void)stage_entry(a, ae, dir_fd, path, done, &why, io_error, any_link);
		}
		free(path);
	}
	return why;
}

enum ry_archive_status ry_archive_extract(int fd, const char *expect_digest, const char *root,
					  char **err)
{
	struct reader r = { fd, ry_hash_new(), ry_malloc(CHUNK), 0 };
	struct archive *a = archive_read_new();
	struct ents staged = { 0 };
	enum ry_archive_status st = RY_ARCHIVE_CORRUPT;
	char *stage = NULL, *why = NULL;
	char real[PATH_MAX], digest[RY_DIGEST_HEX];
	int stage_fd = -1, dest_fd = -1;
	bool io_error = false;

	if (!realpath(root, real) || (dest_fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		*err = ry_asprintf("cannot open %s: %s", root, strerror(errno));
		st = RY_ARCHIVE_FAILED;
		goto out;
	}
	stage = ry_asprintf("%s/.railyard-restore-XXXXXX", real);
	if (!mkdtemp(stage) || (stage_fd = open(stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		*err = ry_asprintf("cannot create a staging directory in %s: %s", root, strerror(errno));
		st = RY_ARCHIVE_FAILED;
		free(stage);
		stage = NULL;
		goto out;
	}
	archive_read_support_filter_zstd(a);
	why = read_entries(a, &r, stage_fd, &staged, false, &io_error);
	if (r.error) {
		*err = ry_asprintf("cannot read the archive: %s", strerror(r.error));
		st = RY_ARCHIVE_FAILED;
		goto out;
	}
	if (!drain(&r)) {
		*err = ry_asprintf("cannot read the archive: %s", strerror(r.error));
		st = RY_ARCHIVE_FAILED;
		goto out;
	}
	ry_hash_final_hex(r.hash, digest);
	if (strcmp(digest, expect_digest) != 0) {
		*err = ry_asprintf("content does not match its digest: expected %.12s…, got %.12s…",
				   expect_digest, digest);
		st = RY_ARCHIVE_CORRUPT;
		goto out;
	}
	if (why) {
		*err = why;
		why = NULL;
		st = io_error ? RY_ARCHIVE_FAILED : RY_ARCHIVE_CORRUPT;
		goto out;
	}
	if (staged.n)
		qsort(staged.v, staged.n, sizeof(*staged.v), cmp_ent);
	st = move_into_place(stage_fd, dest_fd, &staged, err) ? RY_ARCHIVE_OK : RY_ARCHIVE_FAILED;
out:
	free(why);
	archive_read_free(a);
	if (stage_fd >= 0)
		close(stage_fd);
	if (dest_fd >= 0)
		close(dest_fd);
	if (stage) {
		ry_exec_remove_tree(stage);
		free(stage);
	}
	ents_release(&staged);
	ry_hash_free(r.hash);
	free(r.buf);
	return st;
}

bool ry_archive_unpack_tar(int fd, const char *dest, char **err)
{
	struct reader r = { fd, ry_hash_new(), ry_malloc(CHUNK), 0 };
	struct archive *a = archive_read_new();
	struct ents done = { 0 };
	char *why = NULL;
	bool io_error = false;
	int dest_fd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dest_fd < 0) {
		why = ry_asprintf("cannot open %s: %s", dest, strerror(errno));
		goto out;
	}
	why = read_entries(a, &r, dest_fd, &done, true, &io_error);
	if (!why)
		(void)drain(&r);
out:
	if (why)
		*err = why;
	if (dest_fd >= 0)
		close(dest_fd);
	archive_read_free(a);
	ents_release(&done);
	ry_hash_free(r.hash);
	free(r.buf);
	return why == NULL;
}
