/*
 * The scan's entry points and where files come from.
 *
 * The directory walk opens every directory relative to its parent with
 * O_NOFOLLOW and never follows a symbolic link to a directory (so it cannot
 * loop or leave the tree); it skips hidden, vendored and built directories
 * (deps_skip_dir) and what railyard.yaml ignores.  Files are opened with
 * openat2(RESOLVE_BENEATH) relative to the top directory: a symbolic link
 * that points outside the tree, or a loop of links, is refused by the
 * kernel and reported as a warning, never read.
 */
#include "deps/detect.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_DEPTH 64

/* ---- the real directory ----------------------------------------------------------- */

struct fs_impl {
	int rootfd;
	char *rootpath;		/* realpath of the top, for the fallback below */
};

/*
 * Opens rel below the top directory, never outside it.  openat2 where the
 * kernel has it (Linux >= 5.6); otherwise realpath and a prefix check.
 */
static int open_beneath(const struct fs_impl *fs, const char *rel, int flags)
{
	struct open_how how = { 0 };
	/* openat2 refuses flags that do not go with O_PATH */
	how.flags = (unsigned long long)(flags | O_CLOEXEC | ((flags & O_PATH) ? 0 : O_NOCTTY));
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
	long fd = syscall(SYS_openat2, fs->rootfd, rel, &how, sizeof(how));
	if (fd >= 0 || errno != ENOSYS)
		return (int)fd;

	char *abs = ry_asprintf("%s/%s", fs->rootpath, rel);
	char *real = realpath(abs, NULL);
	free(abs);
	if (!real)
		return -1;
	size_t n = strlen(fs->rootpath);
	int out = -1;
	if (strncmp(real, fs->rootpath, n) == 0 && (real[n] == '/' || real[n] == '\0'))
		out = open(real, flags | O_CLOEXEC | O_NOCTTY);
	else
		errno = EXDEV;
	free(real);
	return out;
}

static bool fs_read(struct deps_source *s, const char *rel, struct ry_buf *out, char **err)
{
	const struct fs_impl *fs = s->impl;
	struct stat st;
	int fd = open_beneath(fs, rel, O_RDONLY | O_NONBLOCK);
	if (fd < 0) {
		*err = errno == EXDEV ? ry_strdup("not read: a symbolic link leads outside the repository")
		       : errno == ELOOP ? ry_strdup("not read: a loop of symbolic links")
		       : ry_asprintf("cannot read: %s", strerror(errno));
		return false;
	}
	bool ok = false;
	if (fstat(fd, &st) != 0) {
		*err = ry_asprintf("cannot read: %s", strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		*err = ry_strdup("not read: not a regular file");
	} else if (st.st_size > (off_t)RY_DEPS_MAX_FILE) {
		*err = ry_asprintf("not read: larger than %u KiB (%lld bytes)", RY_DEPS_MAX_FILE >> 10,
				   (long long)st.st_size);
	} else {
		char chunk[65536];
		ssize_t n;
		ok = true;
		while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
			if (n < 0) {
				if (errno == EINTR)
					continue;
				*err = ry_asprintf("cannot read: %s", strerror(errno));
				ok = false;
				break;
			}
			ry_buf_add(out, chunk, (size_t)n);
			if (out->len > RY_DEPS_MAX_FILE) {
				*err = ry_asprintf("not read: larger than %u KiB", RY_DEPS_MAX_FILE >> 10);
				ok = false;
				break;
			}
		}
	}
	close(fd);
	return ok;
}

static int fs_kind(struct deps_source *s, const char *rel)
{
	const struct fs_impl *fs = s->impl;
	struct stat st;
	if (strcmp(rel, ".") == 0)
		return 2;
	int fd = open_beneath(fs, rel, O_PATH);
	if (fd < 0)
		return 0;
	int kind = 0;
	if (fstat(fd, &st) == 0)
		kind = S_ISDIR(st.st_mode) ? 2 : S_ISREG(st.st_mode) ? 1 : 0;
	close(fd);
	return kind;
}

/* ---- the walk ----------------------------------------------------------------------- */

struct walk {
	struct ry_deps_graph *g;
	struct deps_filter filter;
	struct ry_strlist files;
	size_t skipped;		/* directories passed over by name */
	size_t links;		/* symbolic links to directories, not followed */
};

static void walk_note(struct walk *w, const char *fmt, const char *path)
{
	if (w->g->notes.n < 200) {
		char *msg = ry_asprintf(fmt, path);
		ry_strlist_add(&w->g->notes, msg);
		free(msg);
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void walk_dir(struct walk *w, int fd, const char *rel, int depth)
{
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		walk_note(w, "%s: cannot list the directory", rel[0] ? rel : ".");
		return;
	}
	w->g->dirs_seen++;
	/* entries with their type: d_type where the file system gives it */
	struct ry_strlist names = { 0 };
	struct dirent *ent;
	while ((ent = readdir(d)) != NULL)
		if (strcmp(ent->d_name, ".") != 0 && strcmp(ent->d_name, "..") != 0) {
			/* the type rides after the name, plus one: DT_UNKNOWN is 0 */
			char *typed = ry_asprintf("%s%c", ent->d_name, (char)(ent->d_type + 1));
			ry_strlist_add(&names, typed);
			free(typed);
		}
	if (names.n > 1)
		qsort(names.items, names.n, sizeof(char *), cmp_str);

	for (size_t i = 0; i < names.n; i++) {
		char *name = names.items[i];
		size_t len = strlen(name);
		unsigned char type = (unsigned char)(name[len - 1] - 1);
		name[len - 1] = '\0';
		char *path = rel[0] ? ry_asprintf("%s/%s", rel, name) : ry_strdup(name);
		struct stat st = { 0 };
		if (type == DT_DIR)
			st.st_mode = S_IFDIR;
		else if (type == DT_REG)
			st.st_mode = S_IFREG;
		else if (type == DT_LNK)
			st.st_mode = S_IFLNK;
		else if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			free(path);
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			char *slashed = ry_asprintf("%s/", path);
			if (deps_skip_dir(name)) {
				w->skipped++;
			} else if (deps_filter_hit(&w->filter, slashed)) {
				walk_note(w, "%s/: ignored (railyard.yaml)", path);
			} else if (depth >= MAX_DEPTH) {
				walk_note(w, "%s/: deeper than 64 directories, not scanned", path);
			} else {
				int sub = openat(dirfd(d), name,
						 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (sub >= 0)
					walk_dir(w, sub, path, depth + 1);
			}
			free(slashed);
		} else if (S_ISLNK(st.st_mode)) {
			struct stat target;
			if (fstatat(dirfd(d), name, &target, 0) != 0) {
				if (deps_wanted(path))
					ry_strlist_add(&w->files, path);	/* read says why */
			} else if (S_ISDIR(target.st_mode)) {
				w->links++;
			} else if (S_ISREG(target.st_mode)) {
				w->g->files_seen++;
				if (!deps_filter_hit(&w->filter, path) && deps_wanted(path))
					ry_strlist_add(&w->files, path);
			}
		} else if (S_ISREG(st.st_mode)) {
			w->g->files_seen++;
			if (!deps_filter_hit(&w->filter, path) && deps_wanted(path))
				ry_strlist_add(&w->files, path);
		}
		free(path);
	}
	ry_strlist_release(&names);
	closedir(d);
}

/* ---- railyard.yaml -------------------------------------------------------------------- */

static bool load_config(struct deps_source *src, struct ry_deps_config *cfg, char **err)
{
	struct ry_buf buf = RY_BUF_INIT;
	char *rerr = NULL;
	bool ok = true;
	if (src->kind(src, "railyard.yaml") != 1) {
		memset(cfg, 0, sizeof(*cfg));
		return true;
	}
	if (!src->read(src, "railyard.yaml", &buf, &rerr)) {
		*err = ry_asprintf("railyard.yaml: %s", rerr);
		free(rerr);
		ok = false;
	} else {
		struct ry_strlist errors = { 0 };
		ok = ry_deps_config_parse(cfg, "railyard.yaml", buf.data ? buf.data : "", buf.len,
					  &errors);
		if (!ok) {
			struct ry_buf b = RY_BUF_INIT;
			for (size_t i = 0; i < errors.n; i++)
				ry_buf_printf(&b, "%s%s", i ? "\n" : "", errors.items[i]);
			*err = ry_buf_detach(&b);
		}
		ry_strlist_release(&errors);
	}
	ry_buf_release(&buf);
	return ok;
}

static void finish_walk(struct walk *w)
{
	if (w->skipped) {
		char *msg = ry_asprintf("%zu directories skipped by name (hidden, node_modules, vendor, "
					"target, bin, obj, testdata, ...)", w->skipped);
		ry_strlist_add(&w->g->notes, msg);
		free(msg);
	}
	if (w->links) {
		char *msg = ry_asprintf("%zu symbolic links to directories not followed", w->links);
		ry_strlist_add(&w->g->notes, msg);
		free(msg);
	}
	if (w->files.n > 1)
		qsort(w->files.items, w->files.n, sizeof(char *), cmp_str);
}

bool ry_deps_scan_dir(const char *dir, const struct ry_deps_config *extra,
		      struct ry_deps_graph *g, struct ry_deps_config *cfg, char **err)
{
	struct fs_impl fs = { -1, NULL };
	struct deps_source src = { fs_read, fs_kind, &fs };
	struct walk w = { .g = g };
	bool ok = false;

	memset(g, 0, sizeof(*g));
	memset(cfg, 0, sizeof(*cfg));
	fs.rootpath = realpath(dir, NULL);
	if (!fs.rootpath) {
		*err = ry_asprintf("cannot scan %s: %s", dir, strerror(errno));
		goto out;
	}
	fs.rootfd = open(fs.rootpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs.rootfd < 0) {
		*err = ry_asprintf("cannot scan %s: %s", dir, strerror(errno));
		goto out;
	}
	if (!load_config(&src, cfg, err))
		goto out;
	deps_filter_init(&w.filter, cfg);
	int fd = dup(fs.rootfd);
	if (fd < 0) {
		*err = ry_asprintf("cannot scan %s: %s", dir, strerror(errno));
		goto out;
	}
	walk_dir(&w, fd, "", 0);
	finish_walk(&w);
	const char *base = deps_basename(fs.rootpath);
	deps_scan(&src, &w.files, *base ? base : "root", cfg, extra, g);
	ok = true;
out:
	deps_filter_release(&w.filter);
	ry_strlist_release(&w.files);
	if (fs.rootfd >= 0)
		close(fs.rootfd);
	free(fs.rootpath);
	return ok;
}

bool ry_deps_config_read(const char *dir, struct ry_deps_config *cfg, char **err)
{
	struct fs_impl fs = { -1, NULL };
	struct deps_source src = { fs_read, fs_kind, &fs };
	bool ok = false;
	memset(cfg, 0, sizeof(*cfg));
	fs.rootpath = realpath(dir, NULL);
	if (fs.rootpath)
		fs.rootfd = open(fs.rootpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs.rootfd < 0)
		*err = ry_asprintf("cannot read %s: %s", dir, strerror(errno));
	else
		ok = load_config(&src, cfg, err);
	if (fs.rootfd >= 0)
		close(fs.rootfd);
	free(fs.rootpath);
	return ok;
}

bool ry_deps_reads(const char *path)
{
	return strcmp(path, "railyard.yaml") == 0 || deps_wanted(path);
}

/* ---- a repository in memory ------------------------------------------------------------ */

struct mem_impl {
	const struct ry_deps_file *files;
	size_t n;
};

static bool mem_read(struct deps_source *s, const char *rel, struct ry_buf *out, char **err)
{
	const struct mem_impl *m = s->impl;
	for (size_t i = 0; i < m->n; i++) {
		if (strcmp(m->files[i].path, rel) != 0)
			continue;
		size_t len = strlen(m->files[i].data);
		if (len > RY_DEPS_MAX_FILE) {
			*err = ry_asprintf("not read: larger than %u KiB (%zu bytes)",
					   RY_DEPS_MAX_FILE >> 10, len);
			return false;
		}
		ry_buf_add(out, m->files[i].data, len);
		return true;
	}
	*err = ry_strdup("cannot read: No such file or directory");
	return false;
}

static int mem_kind(struct deps_source *s, const char *rel)
{
	const struct mem_impl *m = s->impl;
	size_t n = strlen(rel);
	if (strcmp(rel, ".") == 0)
		return 2;
	for (size_t i = 0; i < m->n; i++) {
		const char *p = m->files[i].path;
		if (strcmp(p, rel) == 0)
			return 1;
		if (strncmp(p, rel, n) == 0 && p[n] == '/')
			return 2;
	}
	return 0;
}

/* Whether a directory on the way to path is one the walk would skip. */
static bool under_skipped_dir(const char *path)
{
	char *copy = ry_strdup(path);
	bool skip = false;
	char *slash, *p = copy;
	while (!skip && (slash = strchr(p, '/')) != NULL) {
		*slash = '\0';
		skip = deps_skip_dir(p);
		p = slash + 1;
	}
	free(copy);
	return skip;
}

bool ry_deps_scan_files(const struct ry_deps_file *files, size_t n,
			const struct ry_deps_config *extra, struct ry_deps_graph *g,
			struct ry_deps_config *cfg, char **err)
{
	struct mem_impl mem = { files, n };
	struct deps_source src = { mem_read, mem_kind, &mem };
	struct walk w = { .g = g };

	memset(g, 0, sizeof(*g));
	memset(cfg, 0, sizeof(*cfg));
	if (!load_config(&src, cfg, err))
		return false;
	deps_filter_init(&w.filter, cfg);
	for (size_t i = 0; i < n; i++) {
		char *norm = ry_deps_path_normalize(files[i].path);
		if (norm && strcmp(norm, files[i].path) == 0 && !under_skipped_dir(norm)) {
			g->files_seen++;
			if (!deps_filter_hit(&w.filter, norm) && deps_wanted(norm))
				ry_strlist_add(&w.files, norm);
		}
		free(norm);
	}
	finish_walk(&w);
	deps_scan(&src, &w.files, "root", cfg, extra, g);
	deps_filter_release(&w.filter);
	ry_strlist_release(&w.files);
	return true;
}
