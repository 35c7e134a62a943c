/* The local directory store: DIR/{cas,ac}/ab/abcd…, DIR/tmp, DIR/quarantine. */
#include "store/store.h"
#include "exec/exec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536

struct local {
	struct ry_store s;
	char *dir;
};

static struct local *L(struct ry_store *s)
{
	return (struct local *)s;
}

static char *blob_path(struct local *l, enum ry_store_ns ns, const char *key)
{
	return ry_asprintf("%s/%s/%.2s/%s", l->dir, ry_store_ns_name(ns), key, key);
}

const char *ry_store_local_dir(const struct ry_store *s)
{
	return ((const struct local *)s)->dir;
}

char *ry_store_local_path(struct ry_store *s, enum ry_store_ns ns, const char *key)
{
	return blob_path(L(s), ns, key);
}

static void touch_used(int fd)
{
	/* atime = last use, whatever the mount's atime policy. */
	struct timespec ts[2] = { { 0, UTIME_NOW }, { 0, UTIME_OMIT } };
	(void)futimens(fd, ts);
}

static char *fail_msg(struct local *l, const struct ry_store_req *req, const char *what, int e)
{
	return ry_asprintf("local store %s: %s %s/%.12s…: %s: %s", l->dir, ry_store_op_name(req->op),
			   ry_store_ns_name(req->ns), req->key, what, strerror(e));
}

static bool fsync_dir_of(const char *path)
{
	char *dir = ry_strdup(path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (fd < 0)
		return false;
	bool ok = fsync(fd) == 0;
	close(fd);
	return ok;
}

int ry_store_local_tmpfile(struct ry_store *s, char **path, char **err)
{
	struct local *l = L(s);
	char *p = ry_asprintf("%s/tmp/up-XXXXXX", l->dir);
	int fd = mkostemp(p, O_CLOEXEC);
	if (fd < 0) {
		*err = ry_asprintf("local store %s: cannot create a temporary file: %s", l->dir,
				   strerror(errno));
		free(p);
		return -1;
	}
	*path = p;
	return fd;
}

enum ry_store_status ry_store_local_adopt(struct ry_store *s, enum ry_store_ns ns, const char *key,
					  const char *tmp_path, char **err)
{
	struct local *l = L(s);
	char *dest = blob_path(l, ns, key);
	char *sub = ry_strdup(dest);
	enum ry_store_status st = RY_STORE_UNAVAILABLE;
	int fd = -1;

	*strrchr(sub, '/') = '\0';
	if (mkdir(sub, 0755) < 0 && errno != EEXIST) {
		*err = ry_asprintf("local store %s: cannot create %s: %s", l->dir, sub, strerror(errno));
		goto out;
	}
	fd = open(tmp_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0 || fchmod(fd, 0444) < 0) {
		*err = ry_asprintf("local store %s: cannot sync %s: %s", l->dir, tmp_path,
				   strerror(errno));
		goto out;
	}
	/* rename replaces: a concurrent writer of the same key wins or loses
	 * the race harmlessly, and a reader sees one whole blob either way. */
	if (rename(tmp_path, dest) < 0) {
		*err = ry_asprintf("local store %s: cannot store %.12s…: %s", l->dir, key,
				   strerror(errno));
		goto out;
	}
	(void)fsync_dir_of(dest);
	st = RY_STORE_OK;
out:
	if (fd >= 0)
		close(fd);
	if (st != RY_STORE_OK)
		unlink(tmp_path);
	free(dest);
	free(sub);
	return st;
}

bool ry_store_local_quarantine(struct ry_store *s, enum ry_store_ns ns, const char *key,
			       char **moved_to, char **err)
{
	struct local *l = L(s);
	char *from = blob_path(l, ns, key);
	char *to = ry_asprintf("%s/quarantine/%s-%s-%lld", l->dir, ry_store_ns_name(ns), key,
			       (long long)time(NULL));
	bool ok = rename(from, to) == 0;
	if (!ok)
		*err = ry_asprintf("local store %s: cannot quarantine %.12s…: %s", l->dir, key,
				   strerror(errno));
	free(from);
	if (ok && moved_to)
		*moved_to = to;
	else
		free(to);
	return ok;
}

/* Copies src_fd to a new file beside dest and renames it there; hashes
 * the bytes when want is given (CAS) and refuses a mismatch. */
static enum ry_store_status copy_in(struct local *l, struct ry_store_req *req, int src_fd,
				    const char *dest, const char *want, bool dest_readonly)
{
	char *tmp = ry_asprintf("%s.part-XXXXXX", dest);
	struct ry_hash *h = want ? ry_hash_new() : NULL;
	char *buf = ry_malloc(CHUNK);
	enum ry_store_status st = RY_STORE_UNAVAILABLE;
	int64_t total = 0;
	int out = mkostemp(tmp, O_CLOEXEC);

	if (out < 0) {
		req->error = fail_msg(l, req, "cannot create a temporary file", errno);
		goto out;
	}
	for (;;) {
		ssize_t n = read(src_fd, buf, CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			req->error = fail_msg(l, req, "cannot read", errno);
			goto out;
		}
		if (n == 0)
			break;
		if (h)
			ry_hash_update(h, buf, (size_t)n);
		if (write(out, buf, (size_t)n) != n) {
			req->error = fail_msg(l, req, "cannot write", errno ? errno : ENOSPC);
			goto out;
		}
		total += n;
	}
	if (h) {
		char got[RY_DIGEST_HEX];
		ry_hash_final_hex(h, got);
		if (strcmp(got, want) != 0) {
			st = RY_STORE_CORRUPT;
			req->error = ry_asprintf("local store %s: %s %s/%.12s…: content does not match "
						 "its digest (got %.12s…)", l->dir,
						 ry_store_op_name(req->op), ry_store_ns_name(req->ns),
						 req->key, got);
			goto out;
		}
	}
	if (fsync(out) < 0 || (dest_readonly && fchmod(out, 0444) < 0) || rename(tmp, dest) < 0) {
		req->error = fail_msg(l, req, "cannot store", errno);
		goto out;
	}
	(void)fsync_dir_of(dest);
	req->size = total;
	st = RY_STORE_OK;
out:
	if (out >= 0)
		close(out);
	if (st != RY_STORE_OK)
		unlink(tmp);
	free(tmp);
	free(buf);
	ry_hash_free(h);
	return st;
}

enum ry_store_status ry_store_local_do(struct ry_store *s, struct ry_store_req *req)
{
	struct local *l = L(s);
	char *path = blob_path(l, req->ns, req->key);
	enum ry_store_status st = RY_STORE_UNAVAILABLE;
	struct stat sb;
	int fd = -1;

	switch (req->op) {
	case RY_STORE_HEAD:
		if (stat(path, &sb) == 0) {
			req->size = sb.st_size;
			st = RY_STORE_OK;
		} else if (errno == ENOENT) {
			st = RY_STORE_MISS;
		} else {
			req->error = fail_msg(l, req, "cannot stat", errno);
		}
		break;
	case RY_STORE_OPEN:
	case RY_STORE_GET:
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT)
				st = RY_STORE_MISS;
			else
				req->error = fail_msg(l, req, "cannot open", errno);
			break;
		}
		touch_used(fd);
		if (req->op == RY_STORE_OPEN) {
			/* The open descriptor keeps the blob readable even if GC
			 * unlinks it meanwhile. */
			if (fstat(fd, &sb) == 0)
				req->size = sb.st_size;
			req->fd = fd;
			fd = -1;
			st = RY_STORE_OK;
			break;
		}
		st = copy_in(l, req, fd, req->path, req->ns == RY_STORE_CAS ? req->key : NULL, false);
		if (st == RY_STORE_CORRUPT) {
			char *e = NULL;
			if (!ry_store_local_quarantine(s, req->ns, req->key, NULL, &e))
				free(e);
		}
		break;
	case RY_STORE_PUT:
		if (req->ns == RY_STORE_CAS && stat(path, &sb) == 0) {
			req->size = sb.st_size;	/* content-addressed: already there */
			st = RY_STORE_OK;
			break;
		}
		fd = open(req->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			req->error = fail_msg(l, req, req->path, errno);
			st = RY_STORE_REFUSED;
			break;
		}
		{
			char *sub = ry_strdup(path);
			*strrchr(sub, '/') = '\0';
			if (mkdir(sub, 0755) < 0 && errno != EEXIST) {
				req->error = fail_msg(l, req, "cannot create its directory", errno);
				free(sub);
				break;
			}
			free(sub);
		}
		st = copy_in(l, req, fd, path, req->ns == RY_STORE_CAS ? req->key : NULL, true);
		if (st == RY_STORE_CORRUPT)
			st = RY_STORE_REFUSED;	/* the caller's file is not what it claims */
		break;
	case RY_STORE_DELETE:
		if (unlink(path) == 0)
			st = RY_STORE_OK;
		else if (errno == ENOENT)
			st = RY_STORE_MISS;
		else
			req->error = fail_msg(l, req, "cannot remove", errno);
		break;
	}
	if (fd >= 0)
		close(fd);
	free(path);
	req->status = st;
	return st;
}

static void local_start(struct ry_store *s, struct ry_store_req *req)
{
	/* Local operations take microseconds (a stat, an open, a rename of a
	 * file already written); the copy of GET/PUT is for the CLI and
	 * tests.  Reported on the next loop turn, never from inside start. */
	enum ry_store_status st = ry_store_local_do(s, req);
	ry_store_complete_later(req, st, NULL);
}

static void local_cancel(struct ry_store *s, struct ry_store_req *req)
{
	(void)s;
	(void)req;	/* completes on the next turn anyway */
}

static void local_release(struct ry_store *s)
{
	free(L(s)->dir);
	free(s);
}

static const struct ry_store_ops local_ops = {
	"local", local_start, local_cancel, local_release,
};

struct ry_store *ry_store_local_new(struct event_base *base, const char *dir, char **err)
{
	static const char *const subdirs[] = { "cas", "ac", "tmp", "quarantine" };
	char *e = NULL;
	if (!ry_exec_mkdirs(dir, &e)) {
		*err = ry_asprintf("local store %s: %s", dir, e);
		free(e);
		return NULL;
	}
	for (size_t i = 0; i < RY_ARRAY_SIZE(subdirs); i++) {
		char *p = ry_asprintf("%s/%s", dir, subdirs[i]);
		bool ok = mkdir(p, 0755) == 0 || errno == EEXIST;
		if (!ok)
			*err = ry_asprintf("local store %s: cannot create %s: %s", dir, p,
					   strerror(errno));
		free(p);
		if (!ok)
			return NULL;
	}
	struct local *l = ry_calloc(1, sizeof(*l));
	char *name = ry_asprintf("local %s", dir);
	ry_store_init(&l->s, &local_ops, base, name);
	free(name);
	l->dir = ry_strdup(dir);
	return &l->s;
}

bool ry_store_local_list(struct ry_store *s, enum ry_store_ns ns, struct ry_store_blob **out,
			 size_t *n, char **err)
{
	struct local *l = L(s);
	char *top = ry_asprintf("%s/%s", l->dir, ry_store_ns_name(ns));
	DIR *d = opendir(top);
	size_t cap = 0;
	struct dirent *de;

	*out = NULL;
	*n = 0;
	if (!d) {
		*err = ry_asprintf("local store %s: cannot list %s: %s", l->dir, top, strerror(errno));
		free(top);
		return false;
	}
	while ((de = readdir(d)) != NULL) {
		if (strlen(de->d_name) != 2 || de->d_name[0] == '.')
			continue;
		char *sub = ry_asprintf("%s/%s", top, de->d_name);
		DIR *sd = opendir(sub);
		struct dirent *be;
		while (sd && (be = readdir(sd)) != NULL) {
			struct stat sb;
			if (!ry_hash_is_hex(be->d_name) ||
			    fstatat(dirfd(sd), be->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISREG(sb.st_mode))
				continue;
			if (*n == cap) {
				cap = cap ? 2 * cap : 256;
				*out = ry_realloc(*out, cap * sizeof(**out));
			}
			struct ry_store_blob *b = &(*out)[(*n)++];
			memcpy(b->key, be->d_name, RY_DIGEST_HEX);
			b->size = sb.st_size;
			b->used_s = sb.st_atim.tv_sec > sb.st_mtim.tv_sec ? sb.st_atim.tv_sec
									  : sb.st_mtim.tv_sec;
		}
		if (sd)
			closedir(sd);
		free(sub);
	}
	closedir(d);
	free(top);
	return true;
}

size_t ry_store_local_clean_tmp(struct ry_store *s, int64_t max_age_s)
{
	struct local *l = L(s);
	char *tmp = ry_asprintf("%s/tmp", l->dir);
	DIR *d = opendir(tmp);
	struct dirent *de;
	size_t removed = 0;
	time_t now = time(NULL);

	while (d && (de = readdir(d)) != NULL) {
		struct stat sb;
		if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(sb.st_mode) && now - sb.st_mtim.tv_sec > max_age_s &&
		    unlinkat(dirfd(d), de->d_name, 0) == 0)
			removed++;
	}
	if (d)
		closedir(d);
	free(tmp);
	return removed;
}
