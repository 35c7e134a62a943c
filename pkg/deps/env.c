/*
 * .env files (KEY=VALUE lines): the substitution file docker compose reads
 * next to a compose file, the files compose services name in env_file, and
 * a service's own .env.  In the last two, a variable that holds an address
 * (*_ADDR, *_HOST, *_URL, ...) naming another service is a runtime edge.
 */
#include "deps/detect.h"

#include <stdlib.h>
#include <string.h>

struct env_var {
	char *name;
	char *value;
	int line;
};

struct env_file {
	char *path;
	char *dir;
	struct env_var *vars;
	size_t n;
	bool project;	/* compose's substitution file: not a service's environment */
	bool used;	/* its edges were made (through env_file) */
};

struct env_state {
	struct env_file *files;
	size_t n;
	struct ry_match *line_re;
};

static struct env_state *state(struct deps_ctx *c)
{
	if (!c->state[DET_ENV]) {
		struct env_state *st = ry_calloc(1, sizeof(*st));
		st->line_re = deps_regex("^\\s*(?:export\\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\\s*=\\s*(.*)$");
		c->state[DET_ENV] = st;
	}
	return c->state[DET_ENV];
}

static bool wants(const char *path, const char *base)
{
	(void)path;
	size_t n = strlen(base);
	return strcmp(base, ".env") == 0 || strncmp(base, ".env.", 5) == 0 ||
	       (n > 4 && strcmp(base + n - 4, ".env") == 0);
}

/* The value as the shell would see it: quotes removed, a trailing comment cut. */
static char *env_value(const char *s, size_t n)
{
	if (n >= 1 && (s[0] == '"' || s[0] == '\'')) {
		const char *close = memchr(s + 1, s[0], n - 1);
		return ry_strndup(s + 1, close ? (size_t)(close - s - 1) : n - 1);
	}
	for (size_t i = 0; i < n; i++)
		if (s[i] == '#' && (i == 0 || s[i - 1] == ' ' || s[i - 1] == '\t')) {
			n = i;
			break;
		}
	return deps_strip(s, n);
}

static void on_line(struct deps_ctx *c, void *arg, int no, const char *line, size_t len)
{
	struct env_file *f = arg;
	struct ry_match_span sp[3];
	if (!ry_match_find(state(c)->line_re, line, len, 0, sp, 3))
		return;
	f->vars = ry_realloc(f->vars, (f->n + 1) * sizeof(*f->vars));
	struct env_var *v = &f->vars[f->n++];
	v->name = deps_span(line, &sp[1]);
	v->value = env_value(line + sp[2].start, (size_t)(sp[2].end - sp[2].start));
	v->line = no;
}

static struct env_file *add_file(struct deps_ctx *c, const char *path, const char *data, size_t len)
{
	struct env_state *st = state(c);
	st->files = ry_realloc(st->files, (st->n + 1) * sizeof(*st->files));
	struct env_file *f = &st->files[st->n++];
	memset(f, 0, sizeof(*f));
	f->path = ry_strdup(path);
	f->dir = deps_dirname(path);
	deps_each_line(c, f, data, len, on_line);
	return f;
}

static void parse(struct deps_ctx *c, const char *path, const char *data, size_t len)
{
	(void)add_file(c, path, data, len);
}

static struct env_file *find(struct deps_ctx *c, const char *path)
{
	struct env_state *st = state(c);
	for (size_t i = 0; i < st->n; i++)
		if (strcmp(st->files[i].path, path) == 0)
			return &st->files[i];
	return NULL;
}

const char *deps_env_value(struct deps_ctx *c, const char *dir, const char *name)
{
	char *path = strcmp(dir, ".") == 0 ? ry_strdup(".env") : ry_asprintf("%s/.env", dir);
	struct env_file *f = find(c, path);
	free(path);
	const char *value = NULL;
	for (size_t i = 0; f && i < f->n; i++)
		if (strcmp(f->vars[i].name, name) == 0)
			value = f->vars[i].value;	/* the last one wins */
	return value;
}

void deps_env_mark_project(struct deps_ctx *c, const char *dir)
{
	char *path = strcmp(dir, ".") == 0 ? ry_strdup(".env") : ry_asprintf("%s/.env", dir);
	struct env_file *f = find(c, path);
	if (f)
		f->project = true;
	free(path);
}

static void file_edges(struct deps_ctx *c, const struct env_file *f, size_t from)
{
	for (size_t i = 0; i < f->n; i++)
		deps_address_edges(c, from, f->vars[i].name, f->vars[i].value, NULL, "env file",
				   f->path, f->vars[i].line);
}

/* The file at path, read now if the walk did not list it; NULL when absent. */
static struct env_file *load(struct deps_ctx *c, const char *path)
{
	struct env_file *f = find(c, path);
	if (f)
		return f;
	if (c->src->kind(c->src, path) != 1)
		return NULL;
	struct ry_buf buf = RY_BUF_INIT;
	char *err = NULL;
	if (c->src->read(c->src, path, &buf, &err)) {
		f = add_file(c, path, buf.data ? buf.data : "", buf.len);
	} else {
		deps_warn(c, path, 0, "%s", err);
		free(err);
		f = add_file(c, path, "", 0);
	}
	ry_buf_release(&buf);
	return f;
}

bool deps_env_claim(struct deps_ctx *c, const char *path)
{
	struct env_file *f = load(c, path);
	if (f)
		f->used = true;
	return f != NULL;
}

bool deps_env_file_edges(struct deps_ctx *c, const char *path, size_t from)
{
	struct env_file *f = load(c, path);
	if (!f)
		return false;
	f->used = true;
	file_edges(c, f, from);
	return true;
}

/* A service's own environment file: every .env in its tree that compose
 * does not use for substitution or name in env_file. */
static void link(struct deps_ctx *c)
{
	struct env_state *st = state(c);
	for (size_t i = 0; i < st->n; i++) {
		const struct env_file *f = &st->files[i];
		if (f->project || f->used)
			continue;
		size_t s = deps_service_owning(c, f->path);
		if (s != DEPS_NONE)
			file_edges(c, f, s);
	}
}

static void release(struct deps_ctx *c)
{
	struct env_state *st = c->state[DET_ENV];
	if (!st)
		return;
	for (size_t i = 0; i < st->n; i++) {
		for (size_t k = 0; k < st->files[i].n; k++) {
			free(st->files[i].vars[k].name);
			free(st->files[i].vars[k].value);
		}
		free(st->files[i].vars);
		free(st->files[i].path);
		free(st->files[i].dir);
	}
	free(st->files);
	ry_match_free(st->line_re);
	free(st);
	c->state[DET_ENV] = NULL;
}

const struct deps_detector deps_detector_env = {
	.name = ".env",
	.wants = wants,
	.parse = parse,
	.link = link,
	.release = release,
};
