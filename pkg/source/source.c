#include "source/source.h"
#include "archive/archive.h"
#include "exec/exec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- running git ---------------------------------------------------------- */

/* git's argv: "git", "-c", "protocol.ext.allow=never", then args. */
static char **git_argv(const char *const *args)
{
	size_t n = 0;
	while (args[n])
		n++;
	char **argv = ry_calloc(n + 4, sizeof(*argv));
	argv[0] = (char *)"git";
	argv[1] = (char *)"-c";
	argv[2] = (char *)"protocol.ext.allow=never";
	for (size_t i = 0; i < n; i++)
		argv[3 + i] = (char *)args[i];
	return argv;
}

/* Our environment plus no prompts and the C locale (parseable output). */
static char **git_env(void)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = ry_calloc(n + 4, sizeof(*env));
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "GIT_TERMINAL_PROMPT=", 20) != 0 &&
		    strncmp(environ[i], "LC_ALL=", 7) != 0)
			env[k++] = environ[i];
	env[k++] = (char *)"GIT_TERMINAL_PROMPT=0";
	env[k++] = (char *)"LC_ALL=C";
	return env;
}

/*
 * Runs git with args, feeding input (may be NULL) and collecting stdout
 * into out (may be NULL: discarded).  Returns true on exit 0; otherwise
 * *err holds git's last line of stderr.
 */
static bool run_git(const char *const *args, const char *input, struct ry_buf *out, char **err)
{
	char **argv = git_argv(args), **env = git_env();
	struct ry_buf errbuf = RY_BUF_INIT;
	int status = ry_exec_capture("git", argv, env, input, out, &errbuf);
	bool ok = status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (status < 0) {
		*err = ry_asprintf("cannot run git: %s", strerror(errno));
	} else if (!ok) {
		/* git's last non-empty line says it best ("fatal: ..."). */
		char *msg = errbuf.data ? errbuf.data : (char *)"";
		size_t len = strlen(msg);
		while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
			msg[--len] = '\0';
		char *last = strrchr(msg, '\n');
		*err = ry_strdup(*(last ? last + 1 : msg) ? (last ? last + 1 : msg)
							   : "git failed without a message");
	}
	ry_buf_release(&errbuf);
	free(argv);
	free(env);
	return ok;
}

/* ---- classification and mirrors ------------------------------------------- */

static bool is_dir(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool looks_like_url(const char *s)
{
	if (strstr(s, "://"))
		return true;
	/* scp-like user@host:path — a colon before any slash */
	const char *colon = strchr(s, ':'), *slash = strchr(s, '/');
	return colon && colon != s && (!slash || colon < slash);
}

bool ry_source_classify(const char *location, enum ry_source_kind *kind, char **err)
{
	if (!location || !*location || location[0] == '-') {
		*err = ry_asprintf("source \"%s\" is not a repository or directory",
				   location ? location : "");
		return false;
	}
	if (looks_like_url(location)) {
		*kind = RY_SOURCE_GIT;
		return true;
	}
	if (!is_dir(location)) {
		*err = ry_asprintf("source %s: no such repository or directory", location);
		return false;
	}
	char *dotgit = ry_asprintf("%s/.git", location);
	char *head = ry_asprintf("%s/HEAD", location);
	char *objects = ry_asprintf("%s/objects", location);
	*kind = access(dotgit, F_OK) == 0 || (access(head, F_OK) == 0 && is_dir(objects))
			? RY_SOURCE_GIT : RY_SOURCE_DIR;
	free(dotgit);
	free(head);
	free(objects);
	return true;
}

static char *mirror_name(const char *location)
{
	char hex[RY_DIGEST_HEX];
	ry_hash_hex(location, strlen(location), hex);
	const char *base = strrchr(location, '/');
	base = base && base[1] ? base + 1 : location;
	char *b = ry_strdup(base);
	for (char *p = b; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '-' || *p == '_'))
			*p = '_';
	if (strlen(b) > 40)
		b[40] = '\0';
	char *name = ry_asprintf("%.16s-%s", hex, b);
	free(b);
	return name;
}

/* Opens and flocks path (created); -1 with *err. */
static int lock_file(const char *path, char **err)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		*err = ry_asprintf("cannot open lock %s: %s", path, strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			*err = ry_asprintf("cannot lock %s: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
	}
	return fd;
}

static bool is_commit_id(const char *s)
{
	size_t n = strspn(s, "0123456789abcdef");
	return !s[n] && (n == 40 || n == 64);
}

/* The commit revision names in mirror, or false. */
static bool rev_parse(const char *mirror, const char *revision, char commit[RY_DIGEST_HEX])
{
	struct ry_buf out = RY_BUF_INIT;
	char *spec = ry_asprintf("%s^{commit}", revision);
	char *err = NULL;
	const char *args[] = { "-C", mirror, "rev-parse", "--verify", "--quiet", "--end-of-options",
			       spec, NULL };
	bool ok = run_git(args, NULL, &out, &err);
	free(err);
	free(spec);
	if (ok) {
		size_t n = out.data ? strspn(out.data, "0123456789abcdef") : 0;
		ok = n == 40 || n == 64;
		if (ok)
			snprintf(commit, RY_DIGEST_HEX, "%.*s", (int)n, out.data);
	}
	ry_buf_release(&out);
	return ok;
}

/*
 * Commits this process has seen in a mirror: asked again (every task of a
 * pipeline asks for its pinned commit), they cost no git process.  A
 * mirror only gains objects, so an entry stays true.
 */
#define KNOWN_MAX 256
static pthread_mutex_t known_lock = PTHREAD_MUTEX_INITIALIZER;
static char *known_path[KNOWN_MAX];
static char known_commit[KNOWN_MAX][RY_DIGEST_HEX];
static size_t known_next;

static bool known(const char *path, const char *rev)
{
	bool hit = false;
	pthread_mutex_lock(&known_lock);
	for (size_t i = 0; i < KNOWN_MAX && !hit; i++)
		hit = known_path[i] && strcmp(known_commit[i], rev) == 0 &&
		      strcmp(known_path[i], path) == 0;
	pthread_mutex_unlock(&known_lock);
	return hit;
}

static void remember(const char *path, const char *commit)
{
	pthread_mutex_lock(&known_lock);
	size_t i = known_next++ % KNOWN_MAX;
	free(known_path[i]);
	known_path[i] = ry_strdup(path);
	snprintf(known_commit[i], RY_DIGEST_HEX, "%s", commit);
	pthread_mutex_unlock(&known_lock);
}

bool ry_source_resolve(const char *state_dir, const char *location, const char *revision,
		       char commit[RY_DIGEST_HEX], char **mirror, char **err)
{
	char *name = mirror_name(location);
	char *dir = ry_asprintf("%s/mirrors", state_dir);
	char *path = ry_asprintf("%s/%s.git", dir, name);
	char *lock = ry_asprintf("%s/%s.lock", dir, name);
	char *e = NULL;
	int lfd = -1;
	bool ok = false;
	const char *rev = revision && *revision ? revision : "HEAD";

	*mirror = NULL;
	if (rev[0] == '-') {
		*err = ry_asprintf("revision \"%s\" is not a revision", rev);
		goto out;
	}
	if (!ry_exec_mkdirs(dir, &e)) {
		*err = ry_asprintf("cannot create %s: %s", dir, e);
		goto out;
	}
	/* A commit the mirror has: no lock, no network (no git, when seen before). */
	if (is_commit_id(rev) && known(path, rev)) {
		snprintf(commit, RY_DIGEST_HEX, "%s", rev);
		ok = true;
		goto out;
	}
	if (is_commit_id(rev) && is_dir(path) && rev_parse(path, rev, commit)) {
		if (strcmp(commit, rev) == 0)
			remember(path, commit);
		ok = true;
		goto out;
	}
	if ((lfd = lock_file(lock, err)) < 0)
		goto out;
	if (!is_dir(path)) {
		char *tmp = ry_asprintf("%s/%s.tmp-%d", dir, name, (int)getpid());
		ry_exec_remove_tree(tmp);
		const char *args[] = { "clone", "--mirror", "--quiet", "--", location, tmp, NULL };
		if (!run_git(args, NULL, NULL, &e)) {
			*err = ry_asprintf("cannot fetch %s: %s", location, e);
			ry_exec_remove_tree(tmp);
			free(tmp);
			goto out;
		}
		if (rename(tmp, path) < 0) {
			*err = ry_asprintf("cannot create mirror %s: %s", path, strerror(errno));
			ry_exec_remove_tree(tmp);
			free(tmp);
			goto out;
		}
		free(tmp);
	} else if (!(is_commit_id(rev) && rev_parse(path, rev, commit))) {
		/* Fetched while we waited for the lock?  Else fetch now. */
		const char *args[] = { "-C", path, "fetch", "--prune", "--quiet", "origin", NULL };
		if (!run_git(args, NULL, NULL, &e)) {
			*err = ry_asprintf("cannot fetch %s: %s", location, e);
			goto out;
		}
	}
	if (!rev_parse(path, rev, commit)) {
		*err = ry_asprintf("revision %s not found in %s", rev, location);
		goto out;
	}
	ok = true;
out:
	if (lfd >= 0)
		close(lfd);	/* releases the flock */
	if (ok)
		*mirror = ry_strdup(path);
	free(e);
	free(name);
	free(dir);
	free(path);
	free(lock);
	return ok;
}

/* ---- trees ------------------------------------------------------------------ */

static bool copy_file(int sfd, const char *name, int dfd, mode_t mode, char **err)
{
	int in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int out = in < 0 ? -1 : openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	bool ok = false;
	if (in < 0 || out < 0) {
		*err = ry_asprintf("cannot copy %s: %s", name, strerror(errno));
		goto out;
	}
	for (;;) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
		if (n == 0)
			break;
		if (n > 0)
			continue;
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP) {
			*err = ry_asprintf("cannot copy %s: %s", name, strerror(errno));
			goto out;
		}
		/* another filesystem: plain reads and writes */
		char buf[65536];
		ssize_t r;
		while ((r = read(in, buf, sizeof(buf))) > 0)
			if (write(out, buf, (size_t)r) != r) {
				*err = ry_asprintf("cannot copy %s: %s", name, strerror(errno));
				goto out;
			}
		if (r < 0) {
			*err = ry_asprintf("cannot copy %s: %s", name, strerror(errno));
			goto out;
		}
		break;
	}
	ok = fchmod(out, mode) == 0;
	if (!ok)
		*err = ry_asprintf("cannot copy %s: %s", name, strerror(errno));
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return ok;
}

static bool copy_dir(int sfd, int dfd, const char *where, char **err)
{
	int dup_fd = dup(sfd);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	struct dirent *de;
	bool ok = true;

	if (!d) {
		*err = ry_asprintf("cannot read %s: %s", where, strerror(errno));
		if (dup_fd >= 0)
			close(dup_fd);
		return false;
	}
	while (ok && (de = readdir(d)) != NULL) {
		struct stat sb;
		const char *n = de->d_name;
		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
			continue;
		if (fstatat(sfd, n, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			*err = ry_asprintf("cannot read %s/%s: %s", where, n, strerror(errno));
			ok = false;
		} else if (S_ISDIR(sb.st_mode)) {
			char *sub = ry_asprintf("%s/%s", where, n);
			int s2 = -1, d2 = -1;
			if (mkdirat(dfd, n, 0755) < 0 ||
			    (s2 = openat(sfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
			    (d2 = openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
				*err = ry_asprintf("cannot copy %s: %s", sub, strerror(errno));
				ok = false;
			} else {
				ok = copy_dir(s2, d2, sub, err);
			}
			if (s2 >= 0)
				close(s2);
			if (d2 >= 0)
				close(d2);
			free(sub);
		} else if (S_ISREG(sb.st_mode)) {
			char *e = NULL;
			ok = copy_file(sfd, n, dfd, (sb.st_mode & 0111) ? 0755 : 0644, &e);
			if (!ok) {
				*err = ry_asprintf("%s: %s", where, e);
				free(e);
			}
		} else if (S_ISLNK(sb.st_mode)) {
			char target[PATH_MAX];
			ssize_t len = readlinkat(sfd, n, target, sizeof(target) - 1);
			if (len < 0 || (target[len] = '\0', symlinkat(target, dfd, n) < 0)) {
				*err = ry_asprintf("cannot copy symlink %s/%s: %s", where, n, strerror(errno));
				ok = false;
			}
		} else {
			*err = ry_asprintf("cannot copy %s/%s: not a file, directory or symlink", where, n);
			ok = false;
		}
	}
	closedir(d);
	return ok;
}

bool ry_source_copy_tree(const char *src, const char *dest, char **err)
{
	int sfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC), dfd = -1;
	bool ok = false;
	if (sfd < 0) {
		*err = ry_asprintf("cannot read %s: %s", src, strerror(errno));
		return false;
	}
	if (mkdir(dest, 0755) < 0 || (dfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		*err = ry_asprintf("cannot create %s: %s", dest, strerror(errno));
		goto out;
	}
	ok = copy_dir(sfd, dfd, src, err);
out:
	close(sfd);
	if (dfd >= 0)
		close(dfd);
	return ok;
}

/* Unpacks `git archive commit` into dir (which exists, empty). */
static bool unpack_commit(const char *mirror, const char *commit, const char *dir, char **err)
{
	const char *args[] = { "-C", mirror, "archive", "--format=tar", commit, NULL };
	char **argv = git_argv(args), **env = git_env();
	posix_spawn_file_actions_t fa;
	int o[2];
	pid_t pid;
	int status;
	bool ok;

	if (pipe2(o, O_CLOEXEC) < 0) {
		*err = ry_asprintf("cannot run git archive: %s", strerror(errno));
		free(argv);
		free(env);
		return false;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, o[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	int rc = ry_exec_spawn_private(&pid, "git", &fa, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	close(o[1]);
	free(argv);
	free(env);
	if (rc != 0) {
		close(o[0]);
		*err = ry_asprintf("cannot run git archive: %s", strerror(rc));
		return false;
	}
	char *e = NULL;
	ok = ry_archive_unpack_tar(o[0], dir, &e);
	close(o[0]);
	status = ry_exec_wait_private(pid);
	if (!ok) {
		*err = ry_asprintf("cannot unpack commit %.12s: %s", commit, e);
		free(e);
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		*err = ry_asprintf("git archive of %.12s failed", commit);
		ok = false;
	}
	return ok;
}

bool ry_source_checkout(const char *state_dir, const char *mirror, const char *commit,
			const char *dest, char **err)
{
	char *dir = ry_asprintf("%s/snapshots", state_dir);
	char *snap = ry_asprintf("%s/%s", dir, commit);
	char *lock = ry_asprintf("%s/%s.lock", dir, commit);
	char *e = NULL;
	int lfd = -1;
	bool ok = false;

	if (!ry_exec_mkdirs(dir, &e)) {
		*err = ry_asprintf("cannot create %s: %s", dir, e);
		goto out;
	}
	if (!is_dir(snap)) {
		if ((lfd = lock_file(lock, err)) < 0)
			goto out;
		if (!is_dir(snap)) {
			char *tmp = ry_asprintf("%s.tmp-%d", snap, (int)getpid());
			ry_exec_remove_tree(tmp);
			if (mkdir(tmp, 0755) < 0) {
				*err = ry_asprintf("cannot create %s: %s", tmp, strerror(errno));
				free(tmp);
				goto out;
			}
			bool u = unpack_commit(mirror, commit, tmp, err);
			if (u && rename(tmp, snap) < 0) {
				*err = ry_asprintf("cannot create snapshot %s: %s", snap, strerror(errno));
				u = false;
			}
			if (!u)
				ry_exec_remove_tree(tmp);
			free(tmp);
			if (!u)
				goto out;
		}
	}
	/* last use, for pruning */
	(void)utimensat(AT_FDCWD, snap, NULL, 0);
	ok = ry_source_copy_tree(snap, dest, err);
out:
	if (lfd >= 0)
		close(lfd);
	free(e);
	free(dir);
	free(snap);
	free(lock);
	return ok;
}

size_t ry_source_prune_snapshots(const char *state_dir, int64_t max_age_s)
{
	char *dir = ry_asprintf("%s/snapshots", state_dir);
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;
	time_t now = time(NULL);

	while (d && (de = readdir(d)) != NULL) {
		struct stat sb;
		if (!is_commit_id(de->d_name) || fstatat(dirfd(d), de->d_name, &sb, 0) < 0 ||
		    now - sb.st_mtim.tv_sec <= max_age_s)
			continue;
		char *p = ry_asprintf("%s/%s", dir, de->d_name);
		char *gone = ry_asprintf("%s.gone-%d", p, (int)getpid());
		/* renamed first: a checkout starting now makes a new one */
		if (rename(p, gone) == 0) {
			ry_exec_remove_tree(gone);
			n++;
		}
		free(p);
		free(gone);
	}
	if (d)
		closedir(d);
	free(dir);
	return n;
}

/* ---- input digests: git ------------------------------------------------------- */

static bool has_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

/*
 * The recursive listing (trees included) of the last few commits asked
 * about: every cacheable task of a pipeline asks about the same commit,
 * and one `git ls-tree` then answers all of them without a process each.
 */
#define LISTINGS_MAX 4
static pthread_mutex_t listing_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { char *mirror; char commit[RY_DIGEST_HEX]; struct ry_buf tree; } listings[LISTINGS_MAX];
static size_t listing_next;

/* The value of path (clean, not "." nor a glob) in commit's listing:
 * "TYPE OID", or NULL when the listing is not at hand.  *absent: listed,
 * and not there. */
static char *listed_value(const char *mirror, const char *commit, const char *path, bool *absent)
{
	char *v = NULL;
	*absent = false;
	pthread_mutex_lock(&listing_lock);
	for (size_t i = 0; i < LISTINGS_MAX && !v && !*absent; i++) {
		if (!listings[i].mirror || strcmp(listings[i].commit, commit) != 0 ||
		    strcmp(listings[i].mirror, mirror) != 0)
			continue;
		const struct ry_buf *l = &listings[i].tree;
		*absent = true;
		for (size_t off = 0; off < l->len;) {
			const char *rec = l->data + off;	/* "<mode> <type> <oid>\t<path>" */
			const char *tab = strchr(rec, '\t');
			if (tab && strcmp(tab + 1, path) == 0) {
				char type[16] = "", oid[65] = "";
				if (sscanf(rec, "%*s %15s %64s", type, oid) == 2)
					v = ry_asprintf("%s %s", type, oid);
				*absent = !v;
				break;
			}
			off += strlen(rec) + 1;
		}
	}
	pthread_mutex_unlock(&listing_lock);
	return v;
}

/* Lists commit (trees included) into the memo; false with *err. */
static bool list_commit(const char *mirror, const char *commit, char **err)
{
	struct ry_buf out = RY_BUF_INIT;
	const char *args[] = { "-C", mirror, "ls-tree", "-r", "-t", "-z", "--full-tree", commit, NULL };
	if (!run_git(args, NULL, &out, err)) {
		ry_buf_release(&out);
		return false;
	}
	pthread_mutex_lock(&listing_lock);
	size_t i = listing_next++ % LISTINGS_MAX;
	free(listings[i].mirror);
	ry_buf_release(&listings[i].tree);
	listings[i].mirror = ry_strdup(mirror);
	snprintf(listings[i].commit, RY_DIGEST_HEX, "%s", commit);
	listings[i].tree = out;
	pthread_mutex_unlock(&listing_lock);
	return true;
}

bool ry_source_git_inputs(const char *mirror, const char *commit, const struct ry_strlist *inputs,
			  struct ry_strlist *values, char **err)
{
	struct ry_buf q = RY_BUF_INIT, out = RY_BUF_INIT, listing = RY_BUF_INIT;
	char **vals = ry_calloc(inputs->n + 1, sizeof(*vals));
	bool ok = false, listed = false;

	/* Paths from the commit's listing (made once per commit). */
	bool simple = true;
	for (size_t i = 0; i < inputs->n && simple; i++)
		simple = !has_glob(inputs->items[i]) && strcmp(inputs->items[i], ".") != 0;
	if (simple && is_commit_id(commit)) {
		bool absent, all = true;
		for (int pass = 0; pass < 2 && all; pass++) {
			all = true;
			for (size_t i = 0; i < inputs->n && all; i++) {
				char *p = ry_archive_clean_path(inputs->items[i]);
				free(vals[i]);
				vals[i] = listed_value(mirror, commit, p, &absent);
				if (!vals[i] && absent)
					vals[i] = ry_strdup("absent");
				all = vals[i] != NULL;
				free(p);
			}
			if (!all && pass == 0 && !list_commit(mirror, commit, err))
				goto out;
		}
		if (all) {
			for (size_t i = 0; i < inputs->n; i++)
				ry_strlist_add(values, vals[i]);
			ok = true;
			goto out;
		}
		for (size_t i = 0; i < inputs->n; i++) {	/* evicted meanwhile: ask git */
			free(vals[i]);
			vals[i] = NULL;
		}
	}
	for (size_t i = 0; i < inputs->n; i++) {
		const char *in = inputs->items[i];
		if (has_glob(in))
			continue;
		if (strcmp(in, ".") == 0) {
			ry_buf_printf(&q, "%s^{tree}\n", commit);
		} else {
			char *p = ry_archive_clean_path(in);
			ry_buf_printf(&q, "%s:%s\n", commit, p);
			free(p);
		}
	}
	if (q.len) {
		const char *args[] = { "-C", mirror, "cat-file", "--batch-check", NULL };
		if (!run_git(args, q.data, &out, err))
			goto out;
	}
	const char *line = out.data ? out.data : "";
	for (size_t i = 0; i < inputs->n; i++) {
		const char *in = inputs->items[i];
		if (!has_glob(in)) {
			const char *nl = strchr(line, '\n');
			if (!nl) {
				*err = ry_strdup("git cat-file gave fewer answers than questions");
				goto out;
			}
			char oid[65] = "", type[16] = "";
			if (sscanf(line, "%64s %15s", oid, type) == 2 && strcmp(type, "missing") != 0 &&
			    strspn(oid, "0123456789abcdef") >= 40)
				vals[i] = ry_asprintf("%s %s", type, oid);
			else
				vals[i] = ry_strdup("absent");
			line = nl + 1;
			continue;
		}
		if (!listed) {
			const char *args[] = { "-C", mirror, "ls-tree", "-r", "-z", "--full-tree",
					       commit, NULL };
			if (!run_git(args, NULL, &listing, err))
				goto out;
			listed = true;
		}
		/* "<mode> <type> <oid>\t<path>\0" ... in path order */
		struct ry_hash *h = ry_hash_new();
		size_t matches = 0;
		for (size_t off = 0; off < listing.len;) {
			const char *rec = listing.data + off;
			size_t len = strlen(rec);
			const char *tab = strchr(rec, '\t');
			if (tab && fnmatch(in, tab + 1, FNM_PATHNAME) == 0) {
				ry_hash_update(h, tab + 1, strlen(tab + 1) + 1);
				ry_hash_update(h, rec, (size_t)(tab - rec) + 1);
				matches++;
			}
			off += len + 1;
		}
		char hex[RY_DIGEST_HEX];
		ry_hash_final_hex(h, hex);
		ry_hash_free(h);
		vals[i] = matches ? ry_asprintf("files %s", hex) : ry_strdup("absent");
	}
	for (size_t i = 0; i < inputs->n; i++)
		ry_strlist_add(values, vals[i]);
	ok = true;
out:
	for (size_t i = 0; i < inputs->n; i++)
		free(vals[i]);
	free(vals);
	ry_buf_release(&q);
	ry_buf_release(&out);
	ry_buf_release(&listing);
	return ok;
}

/* ---- input digests: plain trees, with a stat cache ------------------------------ */

struct stat_entry {
	char *path;
	unsigned long long dev, ino, size, mtime_ns, ctime_ns;
	char digest[RY_DIGEST_HEX];
};

struct stat_cache {
	struct stat_entry *v;
	size_t n, cap;
	bool dirty;
};

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct stat_entry *)a)->path, ((const struct stat_entry *)b)->path);
}

static void cache_load(struct stat_cache *c, const char *file)
{
	FILE *f = file ? fopen(file, "r") : NULL;
	char line[PATH_MAX + 256];
	while (f && fgets(line, sizeof(line), f)) {
		struct stat_entry e = { 0 };
		int off = 0;
		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "%llu %llu %llu %llu %llu %64s %n", &e.dev, &e.ino, &e.size,
			   &e.mtime_ns, &e.ctime_ns, e.digest, &off) < 6 || !off ||
		    !ry_hash_is_hex(e.digest))
			continue;
		if (c->n == c->cap) {
			c->cap = c->cap ? 2 * c->cap : 256;
			c->v = ry_realloc(c->v, c->cap * sizeof(*c->v));
		}
		e.path = ry_strdup(line + off);
		c->v[c->n++] = e;
	}
	if (f)
		fclose(f);
	if (c->n)
		qsort(c->v, c->n, sizeof(*c->v), cmp_entry);
}

static void cache_save(struct stat_cache *c, const char *file)
{
	if (!file || !c->dirty)
		return;
	char *tmp = ry_asprintf("%s.tmp-%d-%lx", file, (int)getpid(), (unsigned long)(uintptr_t)c);
	FILE *f = fopen(tmp, "w");
	if (!f) {
		free(tmp);
		return;
	}
	for (size_t i = 0; i < c->n; i++)
		fprintf(f, "%llu %llu %llu %llu %llu %s %s\n", c->v[i].dev, c->v[i].ino,
				c->v[i].size, c->v[i].mtime_ns, c->v[i].ctime_ns, c->v[i].digest,
				c->v[i].path);
	if (fclose(f) == 0)
		(void)rename(tmp, file);
	else
		unlink(tmp);
	free(tmp);
}

static void cache_release(struct stat_cache *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].path);
	free(c->v);
}

/* A file's digest, from the cache when its stat is unchanged. */
static bool file_digest(struct stat_cache *c, const char *path, const struct stat *sb,
			char out[RY_DIGEST_HEX], char **err)
{
	struct stat_entry key = { .path = (char *)path };
	struct stat_entry *e = c->n ? bsearch(&key, c->v, c->n, sizeof(*c->v), cmp_entry) : NULL;
	unsigned long long m = (unsigned long long)sb->st_mtim.tv_sec * 1000000000ULL + (unsigned long long)sb->st_mtim.tv_nsec;
	unsigned long long ct = (unsigned long long)sb->st_ctim.tv_sec * 1000000000ULL + (unsigned long long)sb->st_ctim.tv_nsec;
	if (e && e->dev == (unsigned long long)sb->st_dev && e->ino == (unsigned long long)sb->st_ino &&
	    e->size == (unsigned long long)sb->st_size && e->mtime_ns == m && e->ctime_ns == ct) {
		memcpy(out, e->digest, RY_DIGEST_HEX);
		return true;
	}
	int64_t size;
	if (!ry_hash_file(path, out, &size, err))
		return false;
	/* A file changed within the last two seconds may change again within
	 * the same timestamp: not trusted to the cache ("racy git"). */
	if (time(NULL) - sb->st_mtim.tv_sec < 2)
		return true;
	if (!e) {
		/* appended unsorted; re-sorted before the next lookup */
		if (c->n == c->cap) {
			c->cap = c->cap ? 2 * c->cap : 256;
			c->v = ry_realloc(c->v, c->cap * sizeof(*c->v));
		}
		e = &c->v[c->n++];
		memset(e, 0, sizeof(*e));
		e->path = ry_strdup(path);
		qsort(c->v, c->n, sizeof(*c->v), cmp_entry);
		e = bsearch(&key, c->v, c->n, sizeof(*c->v), cmp_entry);
	}
	e->dev = (unsigned long long)sb->st_dev;
	e->ino = (unsigned long long)sb->st_ino;
	e->size = (unsigned long long)sb->st_size;
	e->mtime_ns = m;
	e->ctime_ns = ct;
	memcpy(e->digest, out, RY_DIGEST_HEX);
	c->dirty = true;
	return true;
}

/* Feeds "rel\0x|-|l\0digest-or-target\0" for path (recursively) into h. */
static bool hash_tree(struct stat_cache *c, const char *root, const char *rel, struct ry_hash *h,
		      char **err)
{
	char *full = ry_asprintf("%s/%s", root, rel);
	struct stat sb;
	bool ok = false;
	if (lstat(full, &sb) < 0) {
		*err = ry_asprintf("cannot read input %s: %s", rel, strerror(errno));
		goto out;
	}
	if (S_ISDIR(sb.st_mode)) {
		struct dirent **names;
		int n = scandir(full, &names, NULL, alphasort);
		if (n < 0) {
			*err = ry_asprintf("cannot list input %s: %s", rel, strerror(errno));
			goto out;
		}
		ok = true;
		for (int i = 0; i < n; i++) {
			const char *nm = names[i]->d_name;
			if (ok && strcmp(nm, ".") != 0 && strcmp(nm, "..") != 0) {
				char *sub = *rel ? ry_asprintf("%s/%s", rel, nm) : ry_strdup(nm);
				ok = hash_tree(c, root, sub, h, err);
				free(sub);
			}
			free(names[i]);
		}
		free(names);
		goto out;
	}
	char val[PATH_MAX + 2];
	const char *type = "-";
	if (S_ISREG(sb.st_mode)) {
		type = (sb.st_mode & 0111) ? "x" : "-";
		if (!file_digest(c, full, &sb, val, err))
			goto out;
	} else if (S_ISLNK(sb.st_mode)) {
		type = "l";
		ssize_t len = readlink(full, val, sizeof(val) - 1);
		val[len < 0 ? 0 : len] = '\0';
	} else {
		ok = true;	/* sockets, fifos: not content */
		goto out;
	}
	ry_hash_update(h, rel, strlen(rel) + 1);
	ry_hash_update(h, type, 2);
	ry_hash_update(h, val, strlen(val) + 1);
	ok = true;
out:
	free(full);
	return ok;
}

bool ry_source_dir_inputs(const char *root, const struct ry_strlist *inputs, const char *stat_cache,
			  struct ry_strlist *values, char **err)
{
	struct stat_cache c = { 0 };
	struct ry_strlist vals = { 0 };
	bool ok = true;

	cache_load(&c, stat_cache);
	for (size_t i = 0; ok && i < inputs->n; i++) {
		const char *in = inputs->items[i];
		struct ry_hash *h = ry_hash_new();
		char hex[RY_DIGEST_HEX];
		size_t found = 0;
		if (has_glob(in)) {
			char *pat = ry_asprintf("%s/%s", root, in);
			glob_t g;
			if (glob(pat, 0, NULL, &g) == 0) {
				size_t skip = strlen(root) + 1;
				for (size_t k = 0; ok && k < g.gl_pathc; k++, found++)
					ok = hash_tree(&c, root, g.gl_pathv[k] + skip, h, err);
				globfree(&g);
			}
			free(pat);
		} else {
			char *rel = strcmp(in, ".") == 0 ? ry_strdup("") : ry_archive_clean_path(in);
			char *full = *rel ? ry_asprintf("%s/%s", root, rel) : ry_strdup(root);
			struct stat sb;
			if (lstat(full, &sb) == 0) {
				found = 1;
				if (S_ISREG(sb.st_mode)) {
					ok = file_digest(&c, full, &sb, hex, err);
					free(full);
					free(rel);
					ry_hash_free(h);
					if (ok) {
						char *v = ry_asprintf("file %s", hex);
						ry_strlist_add(&vals, v);
						free(v);
					}
					continue;
				}
				ok = hash_tree(&c, root, rel, h, err);
			}
			free(full);
			free(rel);
		}
		ry_hash_final_hex(h, hex);
		ry_hash_free(h);
		if (ok) {
			char *v = found ? ry_asprintf("files %s", hex) : ry_strdup("absent");
			ry_strlist_add(&vals, v);
			free(v);
		}
	}
	if (ok) {
		for (size_t i = 0; i < vals.n; i++)
			ry_strlist_add(values, vals.items[i]);
		cache_save(&c, stat_cache);
	}
	ry_strlist_release(&vals);
	cache_release(&c);
	return ok;
}
