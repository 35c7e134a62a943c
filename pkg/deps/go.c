/*
 * Go: every go.mod is a service (a module).  Build edges from `require` of
 * a sibling module's path and from `replace` directives to local paths (a
 * replace to a missing directory is a warning).  go.work and go.work.sum
 * affect the modules the workspace uses.
 */
#include "deps/detect.h"

#include <stdlib.h>
#include <string.h>

struct go_ref {
	char *target;		/* module path, or local path for a replace */
	int line;
	bool replace;
	bool local;		/* replace => ./dir */
};

struct go_mod {
	char *path;
	char *dir;
	char *module;
	int line;
	struct go_ref *refs;
	size_t n;
};

/* A directory a go.work file uses. */
struct go_use {
	char *work;
	char *dir;		/* as written */
	int line;
};

struct go_state {
	struct go_mod *mods;
	size_t n;
	struct go_use *uses;
	size_t nuses;
	struct ry_match *module_re, *block_re, *require_re, *replace_re, *use_re;
};

/* Parsing one file: the open block, if any. */
struct go_parse {
	struct go_state *st;
	struct go_mod *mod;	/* NULL: a go.work file */
	char block[16];		/* "require", "replace", "use", ... or "" */
	const char *path;
};

static struct go_state *state(struct deps_ctx *c)
{
	if (!c->state[DET_GO]) {
		struct go_state *st = ry_calloc(1, sizeof(*st));
		st->module_re = deps_regex("^\\s*module\\s+\"?([^\\s\"]+)\"?");
		st->block_re = deps_regex("^\\s*([a-z]+)\\s*\\(\\s*$");
		st->require_re = deps_regex("^\\s*(?:require\\s+)?\"?([^\\s\"()]+)\"?\\s+v\\S+");
		st->replace_re = deps_regex("^\\s*(?:replace\\s+)?\"?([^\\s\"()]+)\"?(?:\\s+v\\S+)?"
					    "\\s*=>\\s*\"?([^\\s\"]+)\"?");
		st->use_re = deps_regex("^\\s*(?:use\\s+)?\"?([^\\s\"()]+)\"?\\s*$");
		c->state[DET_GO] = st;
	}
	return c->state[DET_GO];
}

static bool wants(const char *path, const char *base)
{
	(void)path;
	return strcmp(base, "go.mod") == 0 || strcmp(base, "go.work") == 0;
}

static void add_use(struct go_state *st, const char *work, char *dir, int line)
{
	st->uses = ry_realloc(st->uses, (st->nuses + 1) * sizeof(*st->uses));
	st->uses[st->nuses].work = ry_strdup(work);
	st->uses[st->nuses].dir = dir;
	st->uses[st->nuses].line = line;
	st->nuses++;
}

static void add_ref(struct go_mod *m, char *target, int line, bool replace)
{
	m->refs = ry_realloc(m->refs, (m->n + 1) * sizeof(*m->refs));
	struct go_ref *r = &m->refs[m->n++];
	r->target = target;
	r->line = line;
	r->replace = replace;
	r->local = replace && (target[0] == '.' || target[0] == '/');
}

static void on_line(struct deps_ctx *c, void *arg, int no, const char *raw, size_t len)
{
	(void)c;
	struct go_parse *p = arg;
	struct go_state *st = p->st;
	struct ry_match_span sp[3];
	/* comments: go.mod has no "//" inside tokens */
	const char *cm = NULL;
	for (size_t i = 0; i + 1 < len; i++)
		if (raw[i] == '/' && raw[i + 1] == '/') {
			cm = raw + i;
			break;
		}
	if (cm)
		len = (size_t)(cm - raw);
	char *line = ry_strndup(raw, len);
	const char *s = line + strspn(line, " \t");

	if (p->block[0]) {
		if (*s == ')') {
			p->block[0] = '\0';
		} else if (p->mod && strcmp(p->block, "require") == 0 &&
			   ry_match_find(st->require_re, line, len, 0, sp, 2)) {
			add_ref(p->mod, deps_span(line, &sp[1]), no, false);
		} else if (p->mod && strcmp(p->block, "replace") == 0 &&
			   ry_match_find(st->replace_re, line, len, 0, sp, 3)) {
			free(deps_span(line, &sp[1]));
			add_ref(p->mod, deps_span(line, &sp[2]), no, true);
		} else if (!p->mod && strcmp(p->block, "use") == 0 &&
			   ry_match_find(st->use_re, line, len, 0, sp, 2)) {
			add_use(st, p->path, deps_span(line, &sp[1]), no);
		}
		free(line);
		return;
	}
	if (ry_match_find(st->block_re, line, len, 0, sp, 2)) {
		size_t n = (size_t)(sp[1].end - sp[1].start);
		if (n < sizeof(p->block)) {
			memcpy(p->block, line + sp[1].start, n);
			p->block[n] = '\0';
		}
	} else if (p->mod && ry_match_find(st->module_re, line, len, 0, sp, 2)) {
		if (!p->mod->module) {
			p->mod->module = deps_span(line, &sp[1]);
			p->mod->line = no;
		}
	} else if (!p->mod && strncmp(s, "use", 3) == 0 &&
		   ry_match_find(st->use_re, line, len, 0, sp, 2)) {
		add_use(st, p->path, deps_span(line, &sp[1]), no);
	} else if (p->mod && strncmp(s, "require", 7) == 0 &&
		   ry_match_find(st->require_re, line, len, 0, sp, 2)) {
		add_ref(p->mod, deps_span(line, &sp[1]), no, false);
	} else if (p->mod && strncmp(s, "replace", 7) == 0 &&
		   ry_match_find(st->replace_re, line, len, 0, sp, 3)) {
		add_ref(p->mod, deps_span(line, &sp[2]), no, true);
	}
	free(line);
}

static void parse(struct deps_ctx *c, const char *path, const char *data, size_t len)
{
	struct go_state *st = state(c);
	struct go_parse p = { .st = st, .path = path };
	if (strcmp(deps_basename(path), "go.work") == 0) {
		deps_each_line(c, &p, data, len, on_line);
		return;
	}
	st->mods = ry_realloc(st->mods, (st->n + 1) * sizeof(*st->mods));
	struct go_mod *m = &st->mods[st->n++];
	memset(m, 0, sizeof(*m));
	m->path = ry_strdup(path);
	m->dir = deps_dirname(path);
	p.mod = m;
	deps_each_line(c, &p, data, len, on_line);
	if (!m->module)
		deps_warn(c, path, 1, "no module directive: the module is named after its directory");
}

/* "example.com/shop/cart/v2" -> "cart" */
static char *module_name(const char *module)
{
	const char *end = module + strlen(module);
	const char *slash = strrchr(module, '/');
	const char *last = slash ? slash + 1 : module;
	if (slash && last[0] == 'v' && last[1] && strspn(last + 1, "0123456789") == strlen(last + 1)) {
		end = slash;
		const char *prev = slash;
		while (prev > module && prev[-1] != '/')
			prev--;
		last = prev;
	}
	return ry_strndup(last, (size_t)(end - last));
}

static void declare(struct deps_ctx *c)
{
	struct go_state *st = state(c);
	for (size_t i = 0; i < st->n; i++) {
		struct go_mod *m = &st->mods[i];
		char *name = m->module ? module_name(m->module) : NULL;
		struct deps_cand *cand = deps_candidate(c, m->dir, "go", name, m->path,
							m->line ? m->line : 1, "go.mod", 40);
		if (m->module)
			deps_cand_alias(cand, NS_GO, m->module);
		free(name);
	}
}

static void link(struct deps_ctx *c)
{
	struct go_state *st = state(c);
	for (size_t i = 0; i < st->n; i++) {
		const struct go_mod *m = &st->mods[i];
		size_t from = deps_service_of_manifest(c, m->path);
		if (from == DEPS_NONE)
			from = deps_service_owning(c, m->path);
		for (size_t k = 0; k < m->n; k++) {
			const struct go_ref *r = &m->refs[k];
			if (!r->local) {
				deps_edge(c, from, deps_lookup(c, NS_GO, r->target), RY_DEPS_BUILD,
					  r->replace ? "go.mod replace" : "go.mod require", m->path,
					  r->line);
				continue;
			}
			char *dir = deps_join(m->dir, r->target);
			if (!dir) {
				deps_warn(c, m->path, r->line,
					  "replace => %s: outside the repository, not followed",
					  r->target);
				continue;
			}
			if (c->src->kind(c->src, dir) != 2) {
				deps_warn(c, m->path, r->line, "replace => %s: no such directory (%s)",
					  r->target, dir);
			} else {
				size_t to = deps_service_at(c, dir);
				if (to == DEPS_NONE)
					to = deps_service_owning(c, dir);
				deps_edge(c, from, to, RY_DEPS_BUILD, "go.mod replace", m->path, r->line);
			}
			free(dir);
		}
	}
	for (size_t i = 0; i < st->nuses; i++) {
		const struct go_use *u = &st->uses[i];
		char *wdir = deps_dirname(u->work);
		char *dir = deps_join(wdir, u->dir);
		char *mod = dir ? deps_join(dir, "go.mod") : NULL;
		if (!mod || c->src->kind(c->src, mod) != 1) {
			deps_warn(c, u->work, u->line, "use %s: no go.mod there", u->dir);
		} else {	/* the workspace files affect the modules it uses */
			char *sum = ry_asprintf("%s.sum", u->work);
			deps_shared(c, u->work, deps_service_at(c, dir), "go workspace file");
			deps_shared(c, sum, deps_service_at(c, dir), "go workspace file");
			free(sum);
		}
		free(mod);
		free(dir);
		free(wdir);
	}
}

static void release(struct deps_ctx *c)
{
	struct go_state *st = c->state[DET_GO];
	if (!st)
		return;
	for (size_t i = 0; i < st->n; i++) {
		for (size_t k = 0; k < st->mods[i].n; k++)
			free(st->mods[i].refs[k].target);
		free(st->mods[i].refs);
		free(st->mods[i].path);
		free(st->mods[i].dir);
		free(st->mods[i].module);
	}
	free(st->mods);
	for (size_t i = 0; i < st->nuses; i++) {
		free(st->uses[i].work);
		free(st->uses[i].dir);
	}
	free(st->uses);
	ry_match_free(st->module_re);
	ry_match_free(st->block_re);
	ry_match_free(st->require_re);
	ry_match_free(st->replace_re);
	ry_match_free(st->use_re);
	free(st);
	c->state[DET_GO] = NULL;
}

const struct deps_detector deps_detector_go = {
	.name = "go.mod",
	.wants = wants,
	.parse = parse,
	.declare = declare,
	.link = link,
	.release = release,
};
