/*
 * embed: the private PostgreSQL cluster under $RAILYARD_HOME.
 *
 * Layout:  home/.lock    flock held while creating, starting or stopping
 *          home/pg       data directory (initdb), owned by the server user
 *          home/run      Unix socket directory (or /tmp/railyard-<hash> when
 *                        home/run is too long for sun_path)
 *          home/log      postgresql.log
 *
 * The server binaries are run as child processes; when railyard runs as root
 * the children drop to an unprivileged user first (PostgreSQL refuses root).
 */
#include "embed/embed.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EMBED_USER	"railyard"	/* system user for the server under root */
#define EMBED_DB	"railyard"	/* database name */
#define IDENT_MAP	"railyard"	/* the peer authentication map */
#define EMBED_PORT	"5432"		/* only names the socket file; no TCP */
#define START_TIMEOUT_S	60
#define SOCKET_NAME	"/.s.PGSQL." EMBED_PORT

struct embed {
	char *home;		/* absolute */
	char *pgdata;		/* home/pg */
	char *logdir;		/* home/log */
	char *sockdir;		/* home/run, or under /tmp when that is too long */
	bool sock_in_tmp;	/* sockdir is the /tmp fallback */
	char *bindir;		/* server binaries; found on first need */
	bool drop;		/* children run as uid/gid (railyard runs as root) */
	uid_t uid;
	gid_t gid;
	char *user;		/* the server user's name, for messages */
	int lock_fd;		/* home/.lock while held, else -1 */
};

/* The login roles, and which of them the server's own OS user may use. */
static const char *const login_roles[] = { RY_EMBED_OWNER, RY_EMBED_WORKER, RY_EMBED_SUBMITTER,
					   RY_EMBED_READER };

/* ---- paths ---- */

/* Makes p absolute and drops ".", ".." and repeated slashes. */
static char *normalize_path(const char *p)
{
	struct ry_buf raw = RY_BUF_INIT, out = RY_BUF_INIT;

	if (p[0] != '/') {
		char cwd[PATH_MAX];
		if (getcwd(cwd, sizeof(cwd)))
			ry_buf_puts(&raw, cwd);
		ry_buf_putc(&raw, '/');
	}
	ry_buf_puts(&raw, p);
	const char *s = raw.data;
	while (*s) {
		while (*s == '/')
			s++;
		const char *end = strchrnul(s, '/');
		size_t n = (size_t)(end - s);
		if (n == 0 || (n == 1 && s[0] == '.')) {
			/* nothing */
		} else if (n == 2 && s[0] == '.' && s[1] == '.') {
			char *slash = out.len ? strrchr(out.data, '/') : NULL;
			if (slash) {
				out.len = (size_t)(slash - out.data);
				out.data[out.len] = '\0';
			}
		} else {
			ry_buf_putc(&out, '/');
			ry_buf_add(&out, s, n);
		}
		s = end;
	}
	if (!out.len)
		ry_buf_putc(&out, '/');
	ry_buf_release(&raw);
	return ry_buf_detach(&out);
}

/* The canonical absolute home: resolved through symlinks once it exists. */
static char *absolute_home(const char *home)
{
	char *real = realpath(home, NULL);
	if (real) {
		char *copy = ry_strdup(real);
		free(real);
		return copy;
	}
	return normalize_path(home);
}

static void embed_init(struct embed *e, const char *home)
{
	memset(e, 0, sizeof(*e));
	e->lock_fd = -1;
	e->home = absolute_home(home);
	e->pgdata = ry_asprintf("%s/pg", e->home);
	e->logdir = ry_asprintf("%s/log", e->home);
	e->sockdir = ry_asprintf("%s/run", e->home);
	/* sun_path holds 108 bytes including the NUL. */
	if (strlen(e->sockdir) + strlen(SOCKET_NAME) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		free(e->sockdir);
		e->sockdir = ry_asprintf("/tmp/railyard-%016llx",
					 (unsigned long long)ry_fnv1a64(e->home, strlen(e->home)));
		e->sock_in_tmp = true;
	}
}

static void embed_release(struct embed *e)
{
	if (e->lock_fd >= 0)
		close(e->lock_fd);	/* releases the flock */
	free(e->home);
	free(e->pgdata);
	free(e->logdir);
	free(e->sockdir);
	free(e->bindir);
	free(e->user);
}

/* Appends key=value, quoting the value as libpq conninfo requires. */
static void conninfo_add(struct ry_buf *b, const char *key, const char *val)
{
	bool plain = *val != '\0';
	for (const char *p = val; *p; p++)
		if (*p == ' ' || *p == '\'' || *p == '\\')
			plain = false;
	if (b->len)
		ry_buf_putc(b, ' ');
	ry_buf_printf(b, "%s=", key);
	if (plain) {
		ry_buf_puts(b, val);
		return;
	}
	ry_buf_putc(b, '\'');
	for (const char *p = val; *p; p++) {
		if (*p == '\'' || *p == '\\')
			ry_buf_putc(b, '\\');
		ry_buf_putc(b, *p);
	}
	ry_buf_putc(b, '\'');
}

static char *embed_conninfo(const struct embed *e, const char *user)
{
	struct ry_buf b = RY_BUF_INIT;
	conninfo_add(&b, "host", e->sockdir);
	conninfo_add(&b, "port", EMBED_PORT);
	conninfo_add(&b, "user", user);
	conninfo_add(&b, "dbname", EMBED_DB);
	return ry_buf_detach(&b);
}

static bool is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_executable(const char *dir, const char *name)
{
	char *path = ry_asprintf("%s/%s", dir, name);
	bool ok = is_file(path) && access(path, X_OK) == 0;
	free(path);
	return ok;
}

/* The last n lines of a file, for error messages ("" when unreadable). */
static char *file_tail(const char *path, int n)
{
	struct ry_buf b = RY_BUF_INIT;
	char chunk[4096];
	FILE *f = fopen(path, "r");

	if (!f)
		return ry_buf_detach(&b);
	if (fseek(f, -16384, SEEK_END) != 0)
		rewind(f);
	size_t got;
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
		ry_buf_add(&b, chunk, got);
	fclose(f);
	while (b.len && b.data[b.len - 1] == '\n')
		b.data[--b.len] = '\0';
	size_t start = b.len;
	for (int lines = 0; start > 0; start--)
		if (b.data[start - 1] == '\n' && ++lines == n)
			break;
	char *tail = ry_strdup(b.data ? b.data + start : "");
	ry_buf_release(&b);
	return tail;
}

static void trim_trailing(struct ry_buf *b)
{
	while (b->len && (b->data[b->len - 1] == '\n' || b->data[b->len - 1] == ' '))
		b->data[--b->len] = '\0';
}

/* ---- child processes ---- */

/* Our environment minus libpq's PG* variables, in the C locale. */
static char **child_env(void)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = ry_calloc(n + 3, sizeof(*env));
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const char *v = environ[i];
		if (strncmp(v, "PG", 2) == 0 || strncmp(v, "LC_ALL=", 7) == 0 ||
		    strncmp(v, "LANG=", 5) == 0)
			continue;
		env[k++] = ry_strdup(v);
	}
	env[k++] = ry_strdup("LC_ALL=C");
	env[k++] = ry_strdup("LANG=C");
	env[k] = NULL;
	return env;
}

static void free_env(char **env)
{
	for (size_t i = 0; env[i]; i++)
		free(env[i]);
	free(env);
}

static void close_fds_from(int lowfd)
{
	if (close_range((unsigned)lowfd, ~0U, 0) == 0)
		return;
	long max = sysconf(_SC_OPEN_MAX);
	for (int fd = lowfd; fd < (max > 0 && max < 65536 ? max : 1024); fd++)
		close(fd);
}

/* In a forked child: become the server user.  False if that failed. */
static bool child_drop(const struct embed *e)
{
	return setgroups(1, &e->gid) == 0 && setgid(e->gid) == 0 && setuid(e->uid) == 0;
}

/*
 * Runs argv (PATH is searched when argv[0] has no slash) with stdin from
 * /dev/null and stdout+stderr collected into *out.  as_server drops to the
 * server user first when railyard is root.  Returns the exit status
 * (128+signal when killed), or -1 with *err set when it could not run.
 */
static int run_prog(const struct embed *e, bool as_server, const char *const argv[],
		    struct ry_buf *out, char **err)
{
	int fds[2];
	int status = -1;

	/* out holds text on every path, even when nothing could run. */
	ry_buf_puts(out, "");
	if (pipe2(fds, O_CLOEXEC) != 0) {
		*err = ry_asprintf("cannot run %s: pipe: %s", argv[0], strerror(errno));
		return -1;
	}
	char **env = child_env();
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		*err = ry_asprintf("cannot run %s: fork: %s", argv[0], strerror(errno));
		close(fds[0]);
		close(fds[1]);
		free_env(env);
		return -1;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(fds[1], 1) < 0 || dup2(fds[1], 2) < 0)
			_exit(127);
		if (as_server && e->drop && !child_drop(e)) {
			dprintf(2, "cannot switch to user %s: %s\n", e->user, strerror(errno));
			_exit(126);
		}
		/* The server binaries take absolute paths; our cwd may be closed to them. */
		if (chdir("/") != 0)
			_exit(126);
		close_fds_from(3);
		execvpe(argv[0], (char *const *)argv, env);
		dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	free_env(env);
	char chunk[4096];
	for (;;) {
		ssize_t got = read(fds[0], chunk, sizeof(chunk));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		ry_buf_add(out, chunk, (size_t)got);
	}
	close(fds[0]);
	trim_trailing(out);
	int ws;
	while (waitpid(pid, &ws, 0) < 0) {
		if (errno != EINTR) {
			*err = ry_asprintf("cannot run %s: waitpid: %s", argv[0], strerror(errno));
			return -1;
		}
	}
	if (WIFEXITED(ws))
		status = WEXITSTATUS(ws);
	else if (WIFSIGNALED(ws))
		status = 128 + WTERMSIG(ws);
	if (status == 126 || status == 127) {
		*err = ry_asprintf("%s", out->len ? out->data : "cannot run the program");
		return -1;
	}
	return status;
}

/* ---- the server user ---- */

static bool set_user_from_pw(struct embed *e, const struct passwd *pw)
{
	e->uid = pw->pw_uid;
	e->gid = pw->pw_gid;
	e->user = ry_strdup(pw->pw_name);
	return true;
}

/*
 * Decides who runs the server.  Not root: ourselves.  Root: the owner of an
 * existing cluster, else the system user "railyard" (created if missing).
 */
static bool resolve_user(struct embed *e, char **err)
{
	struct stat st;
	struct passwd *pw;

	if (geteuid() != 0) {
		e->uid = geteuid();
		e->gid = getegid();
		pw = getpwuid(e->uid);
		e->user = ry_strdup(pw ? pw->pw_name : "current user");
		return true;
	}
	e->drop = true;
	if (stat(e->pgdata, &st) == 0 && st.st_uid != 0) {
		pw = getpwuid(st.st_uid);
		if (pw)
			return set_user_from_pw(e, pw);
		e->uid = st.st_uid;
		e->gid = st.st_gid;
		e->user = ry_asprintf("uid %u", (unsigned)st.st_uid);
		return true;
	}
	pw = getpwnam(EMBED_USER);
	if (pw)
		return set_user_from_pw(e, pw);

	const char *useradd = access("/usr/sbin/useradd", X_OK) == 0 ? "/usr/sbin/useradd" : "useradd";
	const char *argv[] = { useradd, "--system", "--no-create-home", "--shell",
			       "/usr/sbin/nologin", EMBED_USER, NULL };
	struct ry_buf out = RY_BUF_INIT;
	char *e2 = NULL;
	int rc = run_prog(e, false, argv, &out, &e2);
	/* Another railyard may have created it meanwhile: look again either way. */
	pw = getpwnam(EMBED_USER);
	if (pw) {
		free(e2);
		ry_buf_release(&out);
		return set_user_from_pw(e, pw);
	}
	if (rc < 0)
		*err = ry_asprintf("cannot create the system user %s (the embedded PostgreSQL "
				   "cannot run as root): %s", EMBED_USER, e2);
	else
		*err = ry_asprintf("cannot create the system user %s (the embedded PostgreSQL "
				   "cannot run as root): useradd: %s", EMBED_USER, out.data);
	free(e2);
	ry_buf_release(&out);
	return false;
}

/*
 * When the server runs as another user, every directory above home/pg must
 * be traversable by it.  We never loosen someone's directory permissions;
 * the check runs in a child holding the server user's credentials so that
 * groups and ACLs count exactly as they will for the server.
 */
static bool check_traversable(const struct embed *e, char **err)
{
	int fds[2];

	if (!e->drop)
		return true;
	if (pipe2(fds, O_CLOEXEC) != 0) {
		*err = ry_asprintf("cannot check access to %s: pipe: %s", e->home, strerror(errno));
		return false;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		*err = ry_asprintf("cannot check access to %s: fork: %s", e->home, strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return false;
	}
	if (pid == 0) {
		if (!child_drop(e))
			_exit(2);
		/* Every ancestor ("/a", "/a/b", ...), then home itself. */
		const char *path = e->home;
		size_t len = strlen(path);
		for (size_t i = 1; i <= len; i++) {
			if (i < len && path[i] != '/')
				continue;
			char prefix[PATH_MAX];
			size_t n = i;
			if (n >= sizeof(prefix))
				_exit(2);
			memcpy(prefix, path, n);
			prefix[n] = '\0';
			if (access(prefix, X_OK) != 0) {
				(void)!write(fds[1], prefix, n);
				_exit(1);
			}
		}
		_exit(0);
	}
	close(fds[1]);
	struct ry_buf dir = RY_BUF_INIT;
	char chunk[512];
	ssize_t got;
	while ((got = read(fds[0], chunk, sizeof(chunk))) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			break;
		ry_buf_add(&dir, chunk, (size_t)got);
	}
	close(fds[0]);
	int ws = 0;
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	bool ok = WIFEXITED(ws) && WEXITSTATUS(ws) == 0;
	if (!ok && dir.len)
		*err = ry_asprintf("directory %s is not accessible to user %s, which runs the "
				   "embedded PostgreSQL because railyard runs as root; set "
				   "RAILYARD_HOME to a directory outside it (e.g. /var/lib/railyard)",
				   dir.data, e->user);
	else if (!ok)
		*err = ry_asprintf("cannot check access to %s as user %s", e->home, e->user);
	ry_buf_release(&dir);
	return ok;
}

/* ---- directories ---- */

/* mkdir -p; directories made here (ours) get mode, existing ones are left alone. */
static bool make_dirs(const char *path, mode_t mode, char **err)
{
	char *p = ry_strdup(path);
	bool ok = true;
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char saved = *s;
		*s = '\0';
		if (mkdir(p, mode) == 0) {
			if (chmod(p, mode) != 0) {	/* past the umask */
				*err = ry_asprintf("cannot set the mode of %s: %s", p, strerror(errno));
				ok = false;
				break;
			}
		} else if (errno != EEXIST) {
			*err = ry_asprintf("cannot create directory %s: %s", p, strerror(errno));
			ok = false;
			break;
		}
		*s = saved;
		if (!saved)
			break;
	}
	free(p);
	return ok;
}

/*
 * A directory for the server user (created if missing, never a symlink).
 * One that existed already must belong to the server user; under home, a
 * root-owned one is ours from an earlier run and is handed over.  In /tmp
 * (shared with everyone) only one we made or one the server user owns is
 * trusted.
 */
static bool private_dir(const struct embed *e, const char *path, mode_t mode, bool in_home,
			char **err)
{
	struct stat st;
	bool made = mkdir(path, mode) == 0;

	if (!made && errno != EEXIST) {
		*err = ry_asprintf("cannot create directory %s: %s", path, strerror(errno));
		return false;
	}
	if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
		*err = ry_asprintf("%s is not a directory", path);
		return false;
	}
	if (!made && st.st_uid == e->uid)
		return true;
	if (!made && !(in_home && e->drop && st.st_uid == 0)) {
		*err = ry_asprintf("directory %s belongs to uid %u, not to %s", path,
				   (unsigned)st.st_uid, e->user);
		return false;
	}
	if ((e->drop && chown(path, e->uid, e->gid) != 0) || chmod(path, mode) != 0) {
		*err = ry_asprintf("cannot hand %s to user %s: %s", path, e->user, strerror(errno));
		return false;
	}
	return true;
}

static bool prepare_dirs(const struct embed *e, char **err)
{
	return private_dir(e, e->logdir, 0755, true, err) &&
	       private_dir(e, e->sockdir, 0700, !e->sock_in_tmp, err);
}

static bool take_lock(struct embed *e, char **err)
{
	char *path = ry_asprintf("%s/.lock", e->home);
	bool ok = false;

	e->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (e->lock_fd < 0) {
		*err = ry_asprintf("cannot open %s: %s", path, strerror(errno));
		goto out;
	}
	while (flock(e->lock_fd, LOCK_EX) != 0) {
		if (errno != EINTR) {
			*err = ry_asprintf("cannot lock %s: %s", path, strerror(errno));
			goto out;
		}
	}
	ok = true;
out:
	free(path);
	return ok;
}

/* ---- the running server ---- */

/*
 * Whether pid is alive and, where /proc says, a postgres process.  A killed
 * postmaster stays a zombie until its new parent reaps it: that is dead.
 */
static bool pid_is_postgres(long pid)
{
	if (pid <= 0 || pid > INT_MAX)
		return false;
	if (kill((pid_t)pid, 0) != 0 && errno != EPERM)
		return false;
	char path[64], stat[512] = "";
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? false : true;	/* no /proc: trust the pid */
	size_t n = fread(stat, 1, sizeof(stat) - 1, f);
	fclose(f);
	stat[n] = '\0';
	/* "pid (comm) S ...": comm may hold spaces and parentheses. */
	const char *open = strchr(stat, '(');
	const char *close = strrchr(stat, ')');
	if (!open || !close || close < open)
		return false;
	bool named = (size_t)(close - open - 1) >= 8 && strncmp(open + 1, "postgres", 8) == 0;
	char state = close[1] == ' ' ? close[2] : '?';
	return named && state != 'Z' && state != 'X';
}

/*
 * Reads postmaster.pid: whether its postmaster is alive, and whether it
 * reports "ready" (accepting connections).
 */
static bool server_alive(const struct embed *e, bool *ready)
{
	char *path = ry_asprintf("%s/postmaster.pid", e->pgdata);
	FILE *f = fopen(path, "r");
	char line[1024];
	long pid = 0;
	bool alive = false;

	*ready = false;
	free(path);
	if (!f)
		return false;
	for (int i = 1; fgets(line, sizeof(line), f); i++) {
		if (i == 1)
			pid = strtol(line, NULL, 10);
		if (i == 8)
			*ready = strncmp(line, "ready", 5) == 0;
	}
	fclose(f);
	alive = pid_is_postgres(pid);
	if (!alive)
		*ready = false;
	return alive;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

char *ry_embed_pg_bindir(const char *prog)
{
	char *found = NULL;
	FILE *f = popen("pg_config --bindir 2>/dev/null", "r");

	if (f) {
		char line[4096];
		if (fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\n")] = '\0';
			if (*line && is_executable(line, prog))
				found = ry_strdup(line);
		}
		pclose(f);
	}
	if (found)
		return found;

	DIR *d = opendir("/usr/lib/postgresql");
	long best = -1;
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			long v;
			if (!ry_parse_long(de->d_name, 1, 10000, &v) || v <= best)
				continue;
			char *bin = ry_asprintf("/usr/lib/postgresql/%s/bin", de->d_name);
			if (is_executable(bin, prog)) {
				best = v;
				free(found);
				found = bin;
			} else {
				free(bin);
			}
		}
		closedir(d);
	}
	return found;
}

static bool find_bindir(struct embed *e, char **err)
{
	e->bindir = ry_embed_pg_bindir("initdb");
	if (!e->bindir || !is_executable(e->bindir, "pg_ctl")) {
		*err = ry_strdup("cannot find the PostgreSQL server binaries (initdb, pg_ctl): "
				 "neither pg_config --bindir nor /usr/lib/postgresql/*/bin has them; "
				 "install postgresql-15 or set RAILYARD_DB");
		return false;
	}
	return true;
}

/* Runs a server binary from bindir as the server user; on failure *err names it. */
static bool run_server_prog(const struct embed *e, const char *prog, const char *const args[],
			    struct ry_buf *out, char **err)
{
	const char *argv[16];
	size_t n = 0;
	char *path = ry_asprintf("%s/%s", e->bindir, prog);

	argv[n++] = path;
	for (size_t i = 0; args[i] && n < RY_ARRAY_SIZE(argv) - 1; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	ry_buf_reset(out);
	char *e2 = NULL;
	int rc = run_prog(e, true, argv, out, &e2);
	if (rc != 0 && e2) {
		*err = ry_asprintf("%s: %s", prog, e2);
		free(e2);
	} else if (rc != 0) {
		*err = ry_asprintf("%s failed (status %d): %s", prog, rc, out->data);
	}
	free(path);
	return rc == 0;
}

/* Quotes a postgresql.conf string value. */
static void conf_quote(struct ry_buf *b, const char *s)
{
	ry_buf_putc(b, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			ry_buf_putc(b, '\'');
		else if (*s == '\\')
			ry_buf_putc(b, '\\');
		ry_buf_putc(b, *s);
	}
	ry_buf_putc(b, '\'');
}

/* Writes path (mode 0600, owned by the server user) with text. */
static bool write_server_file(const struct embed *e, const char *path, const char *text,
			      bool append, char **err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0600);
	size_t len = strlen(text);
	bool ok = fd >= 0 && write(fd, text, len) == (ssize_t)len;
	if (ok && e->drop && fchown(fd, e->uid, e->gid) != 0)
		ok = false;
	if (!ok)
		*err = ry_asprintf("cannot write %s: %s", path, strerror(errno));
	if (fd >= 0 && close(fd) != 0 && ok) {
		*err = ry_asprintf("cannot write %s: %s", path, strerror(errno));
		ok = false;
	}
	return ok;
}

/* Appends a pg_hba/pg_ident token, double-quoted. */
static void auth_token(struct ry_buf *b, const char *s)
{
	ry_buf_putc(b, '"');
	for (; *s; s++) {
		if (*s == '"')
			ry_buf_putc(b, '"');
		ry_buf_putc(b, *s);
	}
	ry_buf_putc(b, '"');
}

/* One ident map line: OS user sys may log in as database role role. */
static void ident_line(struct ry_buf *b, const char *sys, const char *role)
{
	ry_buf_puts(b, IDENT_MAP " ");
	auth_token(b, sys);
	ry_buf_putc(b, ' ');
	auth_token(b, role);
	ry_buf_putc(b, '\n');
}

/*
 * Who may log in: peer authentication on the socket, through one ident
 * map.  The OS user running railyard now may use every login role; the
 * server's own OS user (createdb runs as it) only the owner.  Any other OS
 * user is refused, even one that can reach the socket.
 */
static bool write_auth_files(const struct embed *e, char **err)
{
	struct ry_buf hba = RY_BUF_INIT, ident = RY_BUF_INIT;
	struct passwd *pw = getpwuid(geteuid());
	char *invoker = pw ? ry_strdup(pw->pw_name) : NULL;
	bool ok = false;

	if (!invoker) {
		*err = ry_asprintf("cannot name the OS user %u for the cluster's peer authentication",
				   (unsigned)geteuid());
		return false;
	}
	ry_buf_puts(&hba, "# written by railyard before every start: do not edit\n"
		    "# peer authentication on the Unix socket only, through the ident map\n"
		    "local all all peer map=" IDENT_MAP "\n");
	ry_buf_puts(&ident, "# written by railyard before every start: do not edit\n");
	for (size_t i = 0; i < RY_ARRAY_SIZE(login_roles); i++)
		ident_line(&ident, invoker, login_roles[i]);
	if (strcmp(invoker, e->user) != 0)
		ident_line(&ident, e->user, RY_EMBED_OWNER);
	char *hba_path = ry_asprintf("%s/railyard_hba.conf", e->pgdata);
	char *ident_path = ry_asprintf("%s/railyard_ident.conf", e->pgdata);
	ok = write_server_file(e, hba_path, hba.data, false, err) &&
	     write_server_file(e, ident_path, ident.data, false, err);
	free(ident_path);
	free(hba_path);
	ry_buf_release(&ident);
	ry_buf_release(&hba);
	free(invoker);
	return ok;
}

/*
 * railyard's settings live in pgdata/railyard.conf, rewritten before every
 * start (a moved home gets its new socket directory), and postgresql.conf
 * ends by including it, so they win over postgresql.conf; ALTER SYSTEM
 * (postgresql.auto.conf, read last) still overrides them.  Authentication
 * comes from railyard_hba.conf and railyard_ident.conf beside it, written
 * at the same time: a cluster made by an older railyard (trust) gets peer
 * authentication at its next start.
 */
#define INCLUDE_LINE "include_if_exists = 'railyard.conf'"

static bool write_railyard_conf(const struct embed *e, char **err)
{
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_puts(&b, "# written by railyard before every start: do not edit\n"
		    "# a private cluster on a Unix socket only\n"
		    "listen_addresses = ''\n"
		    "port = " EMBED_PORT "\n"
		    "max_connections = 200\n"
		    "shared_buffers = 128MB\n"
		    "logging_collector = off\n"
		    "unix_socket_directories = ");
	conf_quote(&b, e->sockdir);
	ry_buf_puts(&b, "\nhba_file = ");
	char *hba = ry_asprintf("%s/railyard_hba.conf", e->pgdata);
	conf_quote(&b, hba);
	free(hba);
	ry_buf_puts(&b, "\nident_file = ");
	char *ident = ry_asprintf("%s/railyard_ident.conf", e->pgdata);
	conf_quote(&b, ident);
	free(ident);
	ry_buf_puts(&b, "\n");
	char *path = ry_asprintf("%s/railyard.conf", e->pgdata);
	bool ok = write_auth_files(e, err) && write_server_file(e, path, b.data, false, err);
	free(path);
	ry_buf_release(&b);
	if (!ok)
		return false;

	/* The include goes in once, at the end of postgresql.conf (so its tail
	 * is where to look; a second include would be harmless anyway). */
	char *conf = ry_asprintf("%s/postgresql.conf", e->pgdata);
	char *text = file_tail(conf, 100);
	if (!strstr(text, INCLUDE_LINE))
		ok = write_server_file(e, conf, "\n# added by railyard\n" INCLUDE_LINE "\n", true, err);
	free(text);
	free(conf);
	return ok;
}

static bool dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	bool empty = true;

	if (!d)
		return errno == ENOENT;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			empty = false;
	closedir(d);
	return empty;
}

static bool init_cluster(const struct embed *e, char **err)
{
	struct ry_buf out = RY_BUF_INIT;
	bool ok;

	if (!dir_is_empty(e->pgdata)) {
		*err = ry_asprintf("%s is not empty but holds no PostgreSQL cluster (no PG_VERSION); "
				   "move it away", e->pgdata);
		return false;
	}
	if (!private_dir(e, e->pgdata, 0700, true, err))
		return false;
	const char *args[] = { "-D", e->pgdata, "-U", RY_EMBED_OWNER, "--auth-local=peer",
			       "--auth-host=reject", "--encoding=UTF8", "--locale=C", NULL };
	ok = run_server_prog(e, "initdb", args, &out, err);
	ry_buf_release(&out);
	return ok;
}

/*
 * pg_ctl start.  Right after a crash (kill -9 of the postmaster) its old
 * backends can still hold the shared memory segment for a moment, and the
 * dead postmaster can linger as a zombie that makes its lock files look
 * held; the new postmaster then refuses to start.  Those cases are retried
 * until the deadline (the caller saw the old postmaster dead).
 */
static bool start_server(const struct embed *e, char **err)
{
	char *logfile = ry_asprintf("%s/postgresql.log", e->logdir);
	char *timeout = ry_asprintf("%d", START_TIMEOUT_S);
	const char *args[] = { "-D", e->pgdata, "-l", logfile, "-w", "-t", timeout, "start", NULL };
	struct ry_buf out = RY_BUF_INIT;
	int64_t deadline = ry_now_ms() + START_TIMEOUT_S * 1000;
	bool ok = false;

	for (;;) {
		char *e2 = NULL;
		if (run_server_prog(e, "pg_ctl", args, &out, &e2)) {
			ok = true;
			break;
		}
		char *tail = file_tail(logfile, 3);
		/* The lock files name a process we saw dead: a zombie not reaped yet. */
		bool busy = strstr(tail, "pre-existing shared memory block") != NULL ||
			    (strstr(tail, "lock file") && strstr(tail, "already exists"));
		if (!busy || ry_now_ms() > deadline) {
			*err = ry_asprintf("%s%s%s", e2, *tail ? "; server log: " : "", tail);
			free(e2);
			free(tail);
			break;
		}
		free(e2);
		free(tail);
		sleep_ms(100);
	}
	ry_buf_release(&out);
	free(timeout);
	free(logfile);
	return ok;
}

/* Creates the database "railyard"; *created tells whether it was new. */
static bool create_database(const struct embed *e, bool *created, char **err)
{
	const char *args[] = { "-h", e->sockdir, "-p", EMBED_PORT, "-U", RY_EMBED_OWNER, EMBED_DB,
			       NULL };
	struct ry_buf out = RY_BUF_INIT;
	char *e2 = NULL;
	bool ok = run_server_prog(e, "createdb", args, &out, &e2);

	if (ok) {
		*created = true;
	} else if (out.data && strstr(out.data, "already exists")) {
		ok = true;
	} else {
		*err = e2;
		e2 = NULL;
	}
	free(e2);
	ry_buf_release(&out);
	return ok;
}

/* ---- public ---- */

/* Whether pgdata holds a cluster; false with *err set when that cannot be told. */
static bool cluster_exists(const struct embed *e, char **err)
{
	char *version = ry_asprintf("%s/PG_VERSION", e->pgdata);
	struct stat st;
	bool exists = stat(version, &st) == 0 && S_ISREG(st.st_mode);

	if (!exists && errno != ENOENT && errno != ENOTDIR)
		*err = ry_asprintf("cannot look for %s: %s", version, strerror(errno));
	free(version);
	return exists;
}

bool ry_embed_exists(const char *home)
{
	struct embed e;
	char *err = NULL;

	embed_init(&e, home);
	bool exists = cluster_exists(&e, &err);
	free(err);
	embed_release(&e);
	return exists;
}

bool ry_embed_start(const char *home, bool create, bool *created, char **err)
{
	struct embed e;
	bool ready;
	bool ok = false;
	char *e2 = NULL;

	*created = false;
	embed_init(&e, home);
	/* Fast path, no lock and no child process: it already runs. */
	if (server_alive(&e, &ready) && ready) {
		embed_release(&e);
		return true;
	}
	if (!create && !cluster_exists(&e, &e2)) {
		if (!e2)
			e2 = ry_strdup("there is none (railyard db start, migrate or demo creates it)");
		goto out;
	}
	if (!make_dirs(e.home, 0755, &e2))
		goto out;
	/* home exists now: its canonical name may differ from the lexical one. */
	embed_release(&e);
	embed_init(&e, home);
	if (!take_lock(&e, &e2) || !resolve_user(&e, &e2) || !check_traversable(&e, &e2))
		goto out;

	/* Someone else may be starting or stopping it: wait for either to finish. */
	int64_t deadline = ry_now_ms() + START_TIMEOUT_S * 1000;
	while (server_alive(&e, &ready) && !ready) {
		if (ry_now_ms() > deadline) {
			e2 = ry_asprintf("the server in %s has not become ready in %d s (see %s/postgresql.log)",
					 e.pgdata, START_TIMEOUT_S, e.logdir);
			goto out;
		}
		sleep_ms(50);
	}
	if (!ready) {
		bool fresh = false;
		char *version = ry_asprintf("%s/PG_VERSION", e.pgdata);
		bool exists = is_file(version);
		free(version);
		if (!prepare_dirs(&e, &e2) || !find_bindir(&e, &e2))
			goto out;
		if (!exists) {
			if (!init_cluster(&e, &e2))
				goto out;
			fresh = true;
		}
		if (!write_railyard_conf(&e, &e2) || !start_server(&e, &e2) ||
		    !create_database(&e, created, &e2))
			goto out;
		if (fresh)
			ry_info("created the embedded database under %s", e.home);
	}
	ok = true;
out:
	if (!ok) {
		*err = ry_asprintf("embedded database under %s: %s", e.home, e2 ? e2 : "unknown error");
		free(e2);
	}
	embed_release(&e);
	return ok;
}

bool ry_embed_stop(const char *home, char **err)
{
	struct embed e;
	bool ready;
	bool ok = false;
	char *e2 = NULL;
	struct ry_buf out = RY_BUF_INIT;

	embed_init(&e, home);
	if (!server_alive(&e, &ready)) {
		ok = true;	/* never made, already stopped, or crashed */
		goto out;
	}
	if (!take_lock(&e, &e2) || !resolve_user(&e, &e2) || !find_bindir(&e, &e2))
		goto out;
	if (!server_alive(&e, &ready)) {
		ok = true;
		goto out;
	}
	char *timeout = ry_asprintf("%d", START_TIMEOUT_S);
	const char *args[] = { "-D", e.pgdata, "-m", "fast", "-w", "-t", timeout, "stop", NULL };
	ok = run_server_prog(&e, "pg_ctl", args, &out, &e2);
	free(timeout);
out:
	if (!ok) {
		*err = ry_asprintf("cannot stop the embedded database under %s: %s", e.home,
				   e2 ? e2 : "unknown error");
		free(e2);
	}
	ry_buf_release(&out);
	embed_release(&e);
	return ok;
}

bool ry_embed_running(const char *home)
{
	struct embed e;
	bool ready;

	embed_init(&e, home);
	bool alive = server_alive(&e, &ready);
	embed_release(&e);
	return alive;
}

char *ry_embed_conninfo(const char *home, const char *user)
{
	struct embed e;

	embed_init(&e, home);
	char *conninfo = embed_conninfo(&e, user);
	embed_release(&e);
	return conninfo;
}
