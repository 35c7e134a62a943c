/*
 * Python: a directory with pyproject.toml, setup.py, setup.cfg or Pipfile
 * is a service; one with only requirements files is a weak one (it does
 * not split a service it lies in).  Edges from local path dependencies
 * (`-e ../lib`, `../lib`, `file:../lib`, `name @ file:../lib`, Poetry's
 * `{path = "../lib"}`, uv's sources) and from names of sibling projects.
 * requirements-test/-dev files, Poetry dev groups, test/dev optional
 * dependencies and dependency groups give test edges.
 *
 * pyproject.toml and Pipfile are read with a small line-based subset of
 * TOML (tables, key = string | array | inline table, arrays over several
 * lines): enough for the dependency tables; other TOML is skipped, not
 * misread (docs/deps.md, Limitations).
 */
#include "deps/detect.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct py_req {
	char *file;
	int line;
	enum ry_deps_kind kind;
	char *path;		/* a local path (relative to base), or NULL */
	char *name;		/* a distribution name, or NULL */
	char *base;		/* directory the path is relative to */
};

struct py_proj {
	char *dir;
	char *manifest;
	char *name;
	int line;
	bool strong;
};

struct python_state {
	struct py_proj *projs;
	size_t nprojs;
	struct py_req *reqs;
	size_t nreqs;
	struct ry_match *name_re, *setup_name_re;
};

static struct python_state *state(struct deps_ctx *c)
{
	if (!c->state[DET_PYTHON]) {
		struct python_state *st = ry_calloc(1, sizeof(*st));
		st->name_re = deps_regex("^\\s*([A-Za-z0-9][A-Za-z0-9._-]*)");
		st->setup_name_re = deps_regex("\\bname\\s*=\\s*[\"']([^\"']+)[\"']");
		c->state[DET_PYTHON] = st;
	}
	return c->state[DET_PYTHON];
}

static bool is_requirements(const char *path, const char *base)
{
	size_t n = strlen(base);
	if (n < 5 || strcmp(base + n - 4, ".txt") != 0)
		return false;
	if (strstr(base, "requirements"))
		return true;
	/* requirements/base.txt, requirements/test.txt */
	const char *slash = strrchr(path, '/');
	return slash && slash - path >= 12 && strncmp(slash - 12, "requirements", 12) == 0 &&
	       (slash - path == 12 || slash[-13] == '/');
}

static bool wants(const char *path, const char *base)
{
	return strcmp(base, "pyproject.toml") == 0 || strcmp(base, "setup.py") == 0 ||
	       strcmp(base, "setup.cfg") == 0 || strcmp(base, "Pipfile") == 0 ||
	       is_requirements(path, base);
}

/* PEP 503: lower case, runs of - _ . as one -. */
static char *normalize_name(const char *s)
{
	char *out = ry_malloc(strlen(s) + 1), *o = out;
	bool sep = false;
	for (const char *p = s; *p; p++) {
		if (*p == '-' || *p == '_' || *p == '.') {
			sep = true;
			continue;
		}
		if (sep && o > out)
			*o++ = '-';
		sep = false;
		*o++ = (char)tolower((unsigned char)*p);
	}
	*o = '\0';
	return out;
}

static void add_proj(struct python_state *st, const char *dir, const char *manifest, bool strong)
{
	for (size_t i = 0; i < st->nprojs; i++) {
		struct py_proj *p = &st->projs[i];
		if (strcmp(p->dir, dir) == 0) {
			if (strong && !p->strong) {
				free(p->manifest);
				p->manifest = ry_strdup(manifest);
			}
			p->strong |= strong;
			return;
		}
	}
	st->projs = ry_realloc(st->projs, (st->nprojs + 1) * sizeof(*st->projs));
	struct py_proj *p = &st->projs[st->nprojs++];
	memset(p, 0, sizeof(*p));
	p->dir = ry_strdup(dir);
	p->manifest = ry_strdup(manifest);
	p->strong = strong;
}

static void set_name(struct python_state *st, const char *dir, const char *name, int line)
{
	for (size_t i = 0; i < st->nprojs; i++)
		if (strcmp(st->projs[i].dir, dir) == 0 && !st->projs[i].name) {
			st->projs[i].name = ry_strdup(name);
			st->projs[i].line = line;
		}
}

static void add_req(struct python_state *st, const char *file, int line, enum ry_deps_kind kind,
		    char *path, char *name, const char *base)
{
	st->reqs = ry_realloc(st->reqs, (st->nreqs + 1) * sizeof(*st->reqs));
	struct py_req *r = &st->reqs[st->nreqs++];
	r->file = ry_strdup(file);
	r->line = line;
	r->kind = kind;
	r->path = path;
	r->name = name;
	r->base = ry_strdup(base);
}

static bool test_group(const char *name)
{
	char *lower = ry_strdup(name);
	for (char *p = lower; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	bool test = strstr(lower, "test") || strstr(lower, "dev") || strstr(lower, "lint");
	free(lower);
	return test;
}

/*
 * One requirement as pip reads it ("-e ../lib", "lib @ file:../lib",
 * "requests>=2", "./lib[extra]"); adds it when it is a path or a name.
 */
static void add_requirement(struct deps_ctx *c, const char *file, int line, const char *text,
			    enum ry_deps_kind kind, const char *base)
{
	struct python_state *st = state(c);
	char *s = deps_strip(text, strlen(text));
	char *p = s;
	if (!strncmp(p, "-e", 2) && (p[2] == ' ' || p[2] == '\t'))
		p += 3;
	else if (!strncmp(p, "--editable", 10) && (p[10] == ' ' || p[10] == '='))
		p += 11;
	else if (p[0] == '-') {
		free(s);
		return;	/* -r, -c, --index-url, ... */
	}
	while (*p == ' ' || *p == '\t')
		p++;
	char *at = strstr(p, " @ ");
	if (!at)
		at = strstr(p, "@file:");
	if (at) {	/* "name @ url" */
		p = at + (at[0] == ' ' ? 3 : 1);
		while (*p == ' ')
			p++;
	}
	if (!strncmp(p, "file://", 7)) {
		free(s);
		return;	/* an absolute URL: not inside the repository */
	}
	if (!strncmp(p, "file:", 5))
		p += 5;
	char *cut = strpbrk(p, "#;[ \t");
	if (cut)
		*cut = '\0';
	if (p[0] == '.' && (p[1] == '\0' || p[1] == '/' || (p[1] == '.' && (p[2] == '/' || !p[2])))) {
		add_req(st, file, line, kind, ry_strdup(p), NULL, base);
	} else if (!at) {
		struct ry_match_span sp[2];
		if (ry_match_find(st->name_re, p, strlen(p), 0, sp, 2)) {
			char *name = deps_span(p, &sp[1]);
			add_req(st, file, line, kind, NULL, normalize_name(name), base);
			free(name);
		}
	}
	free(s);
}

/* ---- requirements files ---------------------------------------------------------- */

struct req_parse {
	const char *path;
	const char *dir;
	enum ry_deps_kind kind;
};

static void on_req_line(struct deps_ctx *c, void *arg, int no, const char *line, size_t len)
{
	struct req_parse *rp = arg;
	char *s = ry_strndup(line, len);
	char *hash = s;
	while ((hash = strchr(hash, '#')) != NULL) {	/* a comment starts with " #" */
		if (hash == s || hash[-1] == ' ' || hash[-1] == '\t') {
			*hash = '\0';
			break;
		}
		hash++;
	}
	add_requirement(c, rp->path, no, s, rp->kind, rp->dir);
	free(s);
}

/* ---- TOML, the subset pyproject.toml and Pipfile need ---------------------------------- */

struct toml_parse {
	const char *path;
	const char *dir;
	char table[256];	/* current [table] */
	bool array_table;	/* [[...]]: skipped */
	/* a value that goes on over lines */
	char key[128];
	struct ry_buf value;
	int value_line;
	int depth;
};

/* Reads a TOML string at p ('...' or "..."); returns its end or NULL. */
static const char *toml_string(const char *p, struct ry_buf *out)
{
	char q = *p++;
	while (*p && *p != q) {
		if (q == '"' && *p == '\\' && p[1]) {
			p++;
			ry_buf_putc(out, *p == 'n' ? '\n' : *p == 't' ? '\t' : *p);
			p++;
			continue;
		}
		ry_buf_putc(out, *p++);
	}
	return *p == q ? p + 1 : NULL;
}

/* Calls fn for every string in an array value "[...]" (nested arrays too). */
static void toml_each_string(const char *v, void (*fn)(void *arg, const char *s), void *arg)
{
	for (const char *p = v; p && *p;) {
		if (*p == '"' || *p == '\'') {
			struct ry_buf b = RY_BUF_INIT;
			ry_buf_puts(&b, "");
			const char *end = toml_string(p, &b);
			fn(arg, b.data);
			ry_buf_release(&b);
			p = end;
		} else if (*p == '#') {
			p = strchr(p, '\n');
		} else {
			p++;
		}
	}
}

/* The string value of key in an inline table "{ path = "../x", ... }", or NULL. */
static char *toml_inline(const char *v, const char *key)
{
	size_t n = strlen(key);
	for (const char *p = v; p && *p; p++) {
		if (*p == '"' || *p == '\'') {
			struct ry_buf skip = RY_BUF_INIT;
			p = toml_string(p, &skip);
			ry_buf_release(&skip);
			if (!p)
				return NULL;
			p--;
			continue;
		}
		if (strncmp(p, key, n) == 0 && (p == v || strchr("{, \t", p[-1]))) {
			const char *q = p + n;
			while (*q == ' ' || *q == '\t')
				q++;
			if (*q != '=')
				continue;
			q++;
			while (*q == ' ' || *q == '\t')
				q++;
			if (*q != '"' && *q != '\'')
				return NULL;
			struct ry_buf b = RY_BUF_INIT;
			ry_buf_puts(&b, "");
			if (!toml_string(q, &b)) {
				ry_buf_release(&b);
				return NULL;
			}
			return ry_buf_detach(&b);
		}
	}
	return NULL;
}

struct toml_req {
	struct deps_ctx *c;
	const struct toml_parse *tp;
	int line;
	enum ry_deps_kind kind;
};

static void on_toml_req(void *arg, const char *s)
{
	struct toml_req *r = arg;
	add_requirement(r->c, r->tp->path, r->line, s, r->kind, r->tp->dir);
}

/* A key = value of a table that holds dependencies. */
static void toml_value(struct deps_ctx *c, struct toml_parse *tp, const char *key, const char *v,
		       int line)
{
	struct python_state *st = state(c);
	const char *t = tp->table;
	if (tp->array_table)
		return;
	if ((!strcmp(t, "project") || !strcmp(t, "tool.poetry")) && !strcmp(key, "name")) {
		struct ry_buf b = RY_BUF_INIT;
		ry_buf_puts(&b, "");
		if ((*v == '"' || *v == '\'') && toml_string(v, &b) && *b.data)
			set_name(st, tp->dir, b.data, line);
		ry_buf_release(&b);
		return;
	}
	struct toml_req r = { c, tp, line, RY_DEPS_BUILD };
	/* PEP 621 / PEP 735 lists of requirement strings */
	if (!strcmp(t, "project") && !strcmp(key, "dependencies")) {
		toml_each_string(v, on_toml_req, &r);
		return;
	}
	if (!strcmp(t, "project.optional-dependencies") || !strcmp(t, "dependency-groups") ||
	    !strcmp(t, "tool.pdm.dev-dependencies")) {
		r.kind = test_group(key) || !strcmp(t, "tool.pdm.dev-dependencies") ? RY_DEPS_TEST
											: RY_DEPS_BUILD;
		toml_each_string(v, on_toml_req, &r);
		return;
	}
	/* name = "version" | { path = "../x" } tables (Poetry, uv sources, Pipfile) */
	bool poetry = !strcmp(t, "tool.poetry.dependencies") || !strcmp(t, "packages");
	bool poetry_dev = !strcmp(t, "tool.poetry.dev-dependencies") || !strcmp(t, "dev-packages");
	bool group = !strncmp(t, "tool.poetry.group.", 18) && strlen(t) > 31 &&
		     !strcmp(t + strlen(t) - 13, ".dependencies");
	bool uv = !strcmp(t, "tool.uv.sources");
	if (!poetry && !poetry_dev && !group && !uv)
		return;
	if (!strcasecmp(key, "python"))
		return;
	enum ry_deps_kind kind = RY_DEPS_BUILD;
	if (poetry_dev)
		kind = RY_DEPS_TEST;
	if (group) {
		char *g = ry_strndup(t + 18, strlen(t) - 18 - 13);
		kind = test_group(g) ? RY_DEPS_TEST : RY_DEPS_BUILD;
		free(g);
	}
	char *path = *v == '{' ? toml_inline(v, "path") : NULL;
	if (path) {
		char *self = deps_join(tp->dir, path);	/* "." is the project itself */
		if (*path && (!self || strcmp(self, tp->dir) != 0))
			add_req(st, tp->path, line, kind, path, NULL, tp->dir);
		else
			free(path);
		free(self);
	} else if (!uv) {
		add_req(st, tp->path, line, kind, NULL, normalize_name(key), tp->dir);
	}
}

/* Brackets still open in s (strings and comments skipped). */
static int bracket_depth(const char *s)
{
	int depth = 0;
	for (const char *p = s; *p; p++) {
		if (*p == '"' || *p == '\'') {
			char q = *p++;
			while (*p && *p != q)
				p += (*p == '\\' && q == '"' && p[1]) ? 2 : 1;
			if (!*p)
				break;
		} else if (*p == '#') {
			break;
		} else if (*p == '[' || *p == '{') {
			depth++;
		} else if (*p == ']' || *p == '}') {
			depth--;
		}
	}
	return depth;
}

static void on_toml_line(struct deps_ctx *c, void *arg, int no, const char *line, size_t len)
{
	struct toml_parse *tp = arg;
	char *s = deps_strip(line, len);
	if (tp->depth > 0) {	/* inside a value that spans lines */
		ry_buf_putc(&tp->value, '\n');
		ry_buf_puts(&tp->value, s);
		tp->depth += bracket_depth(s);
		if (tp->depth <= 0) {
			toml_value(c, tp, tp->key, tp->value.data, tp->value_line);
			tp->depth = 0;
		}
		free(s);
		return;
	}
	if (s[0] == '[') {
		tp->array_table = s[1] == '[';
		const char *start = s + (tp->array_table ? 2 : 1);
		const char *end = strchr(start, ']');
		size_t n = end ? (size_t)(end - start) : 0;
		if (n >= sizeof(tp->table))
			n = 0;
		char *name = deps_strip(start, n);
		/* quoted parts ("tool"."poetry") lose their quotes */
		size_t k = 0;
		for (const char *p = name; *p && k + 1 < sizeof(tp->table); p++)
			if (*p != '"' && *p != '\'' && *p != ' ')
				tp->table[k++] = *p;
		tp->table[k] = '\0';
		free(name);
		free(s);
		return;
	}
	char *eq = strchr(s, '=');
	if (!eq || s[0] == '#' || s[0] == '\0') {
		free(s);
		return;
	}
	char *key = deps_strip(s, (size_t)(eq - s));
	char *value = deps_strip(eq + 1, strlen(eq + 1));
	if ((key[0] == '"' || key[0] == '\'') && strlen(key) >= 2) {
		memmove(key, key + 1, strlen(key));
		key[strlen(key) - 1] = '\0';
	}
	int depth = bracket_depth(value);
	if (depth > 0 && strlen(key) < sizeof(tp->key)) {
		strcpy(tp->key, key);
		ry_buf_reset(&tp->value);
		ry_buf_puts(&tp->value, value);
		tp->value_line = no;
		tp->depth = depth;
	} else {
		toml_value(c, tp, key, value, no);
	}
	free(key);
	free(value);
	free(s);
}

/* ---- the detector ------------------------------------------------------------------------ */

static void parse(struct deps_ctx *c, const char *path, const char *data, size_t len)
{
	struct python_state *st = state(c);
	const char *base = deps_basename(path);
	char *dir = deps_dirname(path);
	if (is_requirements(path, base)) {
		/* requirements/test.txt belongs to the project above requirements/ */
		char *proj = strcmp(deps_basename(dir), "requirements") == 0 ? deps_dirname(dir)
									      : ry_strdup(dir);
		char *lower = ry_strdup(base);
		for (char *p = lower; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		struct req_parse rp = { path, dir, test_group(lower) ? RY_DEPS_TEST : RY_DEPS_BUILD };
		free(lower);
		add_proj(st, proj, path, false);
		deps_each_line(c, &rp, data, len, on_req_line);
		free(proj);
	} else if (!strcmp(base, "setup.py") || !strcmp(base, "setup.cfg")) {
		add_proj(st, dir, path, true);
		struct ry_match_span sp[2];
		if (ry_match_find(st->setup_name_re, data, len, 0, sp, 2)) {
			char *name = deps_span(data, &sp[1]);
			set_name(st, dir, name, deps_line_at(data, (size_t)sp[1].start));
			free(name);
		}
	} else {	/* pyproject.toml, Pipfile */
		add_proj(st, dir, path, !strcmp(base, "pyproject.toml") || !strcmp(base, "Pipfile"));
		struct toml_parse tp = { .path = path, .dir = dir };
		deps_each_line(c, &tp, data, len, on_toml_line);
		if (tp.depth > 0)
			deps_warn(c, path, tp.value_line, "%s: the value is not closed", tp.key);
		ry_buf_release(&tp.value);
	}
	free(dir);
}

static void declare(struct deps_ctx *c)
{
	struct python_state *st = state(c);
	for (size_t i = 0; i < st->nprojs; i++) {
		const struct py_proj *p = &st->projs[i];
		struct deps_cand *cand = deps_candidate(c, p->dir, "python", p->name, p->manifest,
							p->line ? p->line : 1,
							deps_basename(p->manifest), 50);
		cand->weak = !p->strong;
		if (p->name) {	/* only a declared name is one others install by */
			char *norm = normalize_name(p->name);
			deps_cand_alias(cand, NS_PYTHON, norm);
			free(norm);
		}
	}
}

static void link(struct deps_ctx *c)
{
	struct python_state *st = state(c);
	for (size_t i = 0; i < st->nreqs; i++) {
		const struct py_req *r = &st->reqs[i];
		size_t from = deps_service_owning(c, r->file);
		if (r->name) {
			deps_edge(c, from, deps_lookup(c, NS_PYTHON, r->name), r->kind,
				  "python dependency", r->file, r->line);
			continue;
		}
		/* pip resolves from where it runs: the file's directory, else the top */
		char *dir = deps_join(r->base, r->path);
		if (!dir || c->src->kind(c->src, dir) == 0) {
			char *top = ry_deps_path_normalize(r->path);
			if (top && c->src->kind(c->src, top) != 0) {
				free(dir);
				dir = top;
			} else {
				free(top);
				deps_warn(c, r->file, r->line, "%s: no such directory", r->path);
				free(dir);
				continue;
			}
		}
		deps_edge(c, from, deps_service_owning(c, dir), r->kind, "python path dependency",
			  r->file, r->line);
		free(dir);
	}
}

static void release(struct deps_ctx *c)
{
	struct python_state *st = c->state[DET_PYTHON];
	if (!st)
		return;
	for (size_t i = 0; i < st->nprojs; i++) {
		free(st->projs[i].dir);
		free(st->projs[i].manifest);
		free(st->projs[i].name);
	}
	free(st->projs);
	for (size_t i = 0; i < st->nreqs; i++) {
		free(st->reqs[i].file);
		free(st->reqs[i].path);
		free(st->reqs[i].name);
		free(st->reqs[i].base);
	}
	free(st->reqs);
	ry_match_free(st->name_re);
	ry_match_free(st->setup_name_re);
	free(st);
	c->state[DET_PYTHON] = NULL;
}

const struct deps_detector deps_detector_python = {
	.name = "python",
	.wants = wants,
	.parse = parse,
	.declare = declare,
	.link = link,
	.release = release,
};
