/*
 * Node: every package.json is a service, except a workspace root (one that
 * declares "workspaces", or sits next to pnpm-workspace.yaml) and, below a
 * workspace root, packages its globs do not list.  Edges from dependencies
 * on workspace packages (by name, "workspace:" ranges, "npm:" aliases) and
 * from file:/link:/portal: paths: devDependencies are test edges, the others
 * build edges.  A workspace root's package.json, lock files, .npmrc and
 * shared tsconfig affect every package of the workspace.
 */
#include "deps/detect.h"

#include <stdlib.h>
#include <string.h>

struct npm_dep {
	char *name;
	char *spec;
	enum ry_deps_kind kind;
	const char *section;
	int line;
};

struct npm_pkg {
	char *path;
	char *dir;
	char *name;
	int line;
	bool workspace_root;
	struct ry_strlist globs;	/* workspaces, as written */
	struct npm_dep *deps;
	size_t n;
};

struct node_state {
	struct npm_pkg *pkgs;
	size_t n;
	struct ry_strlist pnpm;		/* pnpm-workspace.yaml files */
	struct ry_strlist pnpm_globs;	/* "dir\x1fglob" */
};

static struct node_state *state(struct deps_ctx *c)
{
	if (!c->state[DET_NODE])
		c->state[DET_NODE] = ry_calloc(1, sizeof(struct node_state));
	return c->state[DET_NODE];
}

static bool wants(const char *path, const char *base)
{
	(void)path;
	return strcmp(base, "package.json") == 0 || strcmp(base, "pnpm-workspace.yaml") == 0;
}

static const char *const sections[] = { "dependencies", "devDependencies", "peerDependencies",
	"optionalDependencies", NULL };

static void read_globs(const struct spec_node *v, struct ry_strlist *out)
{
	if (v && v->type == SPEC_MAP)
		v = spec_map_get(v, "packages");	/* yarn's {"packages": [...]} */
	if (!v || v->type != SPEC_SEQ)
		return;
	for (size_t i = 0; i < v->n; i++)
		if (deps_node_text(v->items[i]))
			ry_strlist_add(out, v->items[i]->text);
}

static void parse_package(struct deps_ctx *c, const char *path, const char *data, size_t len)
{
	struct node_state *st = state(c);
	struct spec_doc doc = { 0 };
	int line = 1;
	char *err = NULL;
	if (!spec_load_json(&doc, data, len, &line, &err)) {
		deps_warn(c, path, line, "%s", err);
		free(err);
		spec_doc_release(&doc);
		return;
	}
	const struct spec_node *root = doc.root;
	if (!root || root->type != SPEC_MAP) {
		deps_warn(c, path, root ? root->line : 1, "package.json must hold an object");
		spec_doc_release(&doc);
		return;
	}
	st->pkgs = ry_realloc(st->pkgs, (st->n + 1) * sizeof(*st->pkgs));
	struct npm_pkg *p = &st->pkgs[st->n++];
	memset(p, 0, sizeof(*p));
	p->path = ry_strdup(path);
	p->dir = deps_dirname(path);
	const struct spec_node *name = spec_map_get(root, "name");
	if (deps_node_text(name) && name->type == SPEC_STR && *name->text) {
		p->name = ry_strdup(name->text);
		p->line = name->line;
	}
	const struct spec_node *ws = spec_map_get(root, "workspaces");
	if (ws) {
		p->workspace_root = true;
		read_globs(ws, &p->globs);
	}
	for (int s = 0; sections[s]; s++) {
		const struct spec_node *m = spec_map_get(root, sections[s]);
		if (!m)
			continue;
		if (m->type != SPEC_MAP) {
			deps_warn(c, path, m->line, "%s must be an object", sections[s]);
			continue;
		}
		for (size_t i = 0; i + 1 < m->n; i += 2) {
			p->deps = ry_realloc(p->deps, (p->n + 1) * sizeof(*p->deps));
			struct npm_dep *d = &p->deps[p->n++];
			d->name = ry_strdup(m->items[i]->text);
			d->spec = ry_strdup(deps_node_text(m->items[i + 1]) ? m->items[i + 1]->text : "");
			d->kind = s == 1 ? RY_DEPS_TEST : RY_DEPS_BUILD;
			d->section = sections[s];
			d->line = m->items[i]->line;
		}
	}
	spec_doc_release(&doc);
}

static void on_pnpm(struct deps_ctx *c, void *arg, const char *path, const struct spec_node *root)
{
	(void)c;
	struct node_state *st = arg;
	struct ry_strlist globs = { 0 };
	read_globs(spec_map_get(root, "packages"), &globs);
	char *dir = deps_dirname(path);
	for (size_t i = 0; i < globs.n; i++) {
		char *key = ry_asprintf("%s\x1f%s", dir, globs.items[i]);
		ry_strlist_add(&st->pnpm_globs, key);
		free(key);
	}
	free(dir);
	ry_strlist_release(&globs);
}

static void parse(struct deps_ctx *c, const char *path, const char *data, size_t len)
{
	if (strcmp(deps_basename(path), "pnpm-workspace.yaml") == 0) {
		ry_strlist_add(&state(c)->pnpm, path);
		deps_yaml_each(c, path, data, len, state(c), on_pnpm);
		return;
	}
	parse_package(c, path, data, len);
}

/* Workspace globs of the root at dir ("dir\x1fglob" entries for pnpm). */
static void root_globs(const struct node_state *st, const char *dir, struct ry_strlist *out)
{
	for (size_t i = 0; i < st->n; i++)
		if (st->pkgs[i].workspace_root && strcmp(st->pkgs[i].dir, dir) == 0)
			for (size_t k = 0; k < st->pkgs[i].globs.n; k++)
				ry_strlist_add(out, st->pkgs[i].globs.items[k]);
	size_t n = strlen(dir);
	for (size_t i = 0; i < st->pnpm_globs.n; i++) {
		const char *g = st->pnpm_globs.items[i];
		if (strncmp(g, dir, n) == 0 && g[n] == '\x1f')
			ry_strlist_add(out, g + n + 1);
	}
}

static bool is_root_dir(const struct node_state *st, const char *dir)
{
	for (size_t i = 0; i < st->n; i++)
		if (st->pkgs[i].workspace_root && strcmp(st->pkgs[i].dir, dir) == 0)
			return true;
	for (size_t i = 0; i < st->pnpm.n; i++) {
		char *d = deps_dirname(st->pnpm.items[i]);
		bool hit = strcmp(d, dir) == 0;
		free(d);
		if (hit)
			return true;
	}
	return false;
}

struct root_search {
	const struct node_state *st;
	char *found;
};

static bool root_here(void *arg, const char *dir)
{
	struct root_search *rs = arg;
	if (!is_root_dir(rs->st, dir))
		return false;
	rs->found = ry_strdup(dir);
	return true;
}

/* The nearest workspace root strictly above dir, or NULL (caller frees). */
static char *workspace_of(const struct node_state *st, const char *dir)
{
	struct root_search rs = { st, NULL };
	(void)deps_each_parent(dir, root_here, &rs);
	return rs.found;
}

/* Whether dir (relative to the workspace root) is listed by its globs. */
static bool member(const struct ry_strlist *globs, const char *rel)
{
	bool in = false;
	for (size_t i = 0; i < globs->n; i++) {
		const char *g = globs->items[i];
		bool neg = g[0] == '!';
		char *clean = ry_deps_path_normalize(neg ? g + 1 : g);
		if (clean && ry_glob_match(clean, rel, RY_GLOB_GIT))
			in = !neg;
		free(clean);
	}
	return in;
}

static char *short_name(const char *name)
{
	const char *slash = name[0] == '@' ? strchr(name, '/') : NULL;
	return ry_strdup(slash && slash[1] ? slash + 1 : name);
}

static void declare(struct deps_ctx *c)
{
	struct node_state *st = state(c);
	for (size_t i = 0; i < st->n; i++) {
		struct npm_pkg *p = &st->pkgs[i];
		if (is_root_dir(st, p->dir)) {
			p->workspace_root = true;
			continue;	/* the workspace itself, not a package of it */
		}
		char *ws = workspace_of(st, p->dir);
		if (ws) {
			struct ry_strlist globs = { 0 };
			root_globs(st, ws, &globs);
			size_t n = strcmp(ws, ".") == 0 ? 0 : strlen(ws) + 1;
			bool in = member(&globs, p->dir + n);
			ry_strlist_release(&globs);
			if (!in) {
				deps_note(c, "%s: not a package of the workspace at %s, not a service",
					  p->path, ws);
				free(ws);
				continue;
			}
			free(ws);
		}
		char *name = p->name ? short_name(p->name) : NULL;
		struct deps_cand *cand = deps_candidate(c, p->dir, "node", name, p->path,
							p->line ? p->line : 1, "package.json", 60);
		deps_cand_alias(cand, NS_NPM, p->name);
		free(name);
	}
}

static void link(struct deps_ctx *c)
{
	static const char *const shared[] = { "package.json", "package-lock.json", "yarn.lock",
		"pnpm-lock.yaml", "pnpm-workspace.yaml", ".npmrc", ".yarnrc.yml", "tsconfig*.json",
		NULL };
	struct node_state *st = state(c);
	for (size_t i = 0; i < st->n; i++) {
		const struct npm_pkg *p = &st->pkgs[i];
		if (p->workspace_root) {
			for (const char *const *f = shared; *f; f++) {
				char *glob = strcmp(p->dir, ".") == 0 ? ry_strdup(*f)
								      : ry_asprintf("%s/%s", p->dir, *f);
				deps_shared_ecosystem(c, glob, p->dir, "node", "node workspace file");
				free(glob);
			}
			continue;
		}
		size_t from = deps_service_of_manifest(c, p->path);
		if (from == DEPS_NONE)
			continue;
		for (size_t k = 0; k < p->n; k++) {
			const struct npm_dep *d = &p->deps[k];
			char *detector = ry_asprintf("package.json %s", d->section);
			size_t to = DEPS_NONE;
			const char *colon = strchr(d->spec, ':');
			if (colon && (strncmp(d->spec, "file:", 5) == 0 ||
				      strncmp(d->spec, "link:", 5) == 0 ||
				      strncmp(d->spec, "portal:", 7) == 0)) {
				char *dir = deps_join(p->dir, colon + 1);
				if (!dir || c->src->kind(c->src, dir) == 0)
					deps_warn(c, p->path, d->line, "%s: %s: no such path", d->name,
						  d->spec);
				else
					to = deps_service_owning(c, dir);
				free(dir);
			} else if (strncmp(d->spec, "npm:", 4) == 0) {
				/* "npm:real-name@^1": an alias of another package */
				const char *real = d->spec + 4;
				const char *at = strchr(real + (real[0] == '@'), '@');
				char *nm = at ? ry_strndup(real, (size_t)(at - real)) : ry_strdup(real);
				to = deps_lookup(c, NS_NPM, nm);
				free(nm);
			} else {
				to = deps_lookup(c, NS_NPM, d->name);
			}
			deps_edge(c, from, to, d->kind, detector, p->path, d->line);
			free(detector);
		}
	}
}

static void release(struct deps_ctx *c)
{
	struct node_state *st = c->state[DET_NODE];
	if (!st)
		return;
	for (size_t i = 0; i < st->n; i++) {
		struct npm_pkg *p = &st->pkgs[i];
		for (size_t k = 0; k < p->n; k++) {
			free(p->deps[k].name);
			free(p->deps[k].spec);
		}
		free(p->deps);
		free(p->path);
		free(p->dir);
		free(p->name);
		ry_strlist_release(&p->globs);
	}
	free(st->pkgs);
	ry_strlist_release(&st->pnpm);
	ry_strlist_release(&st->pnpm_globs);
	free(st);
	c->state[DET_NODE] = NULL;
}

const struct deps_detector deps_detector_node = {
	.name = "package.json",
	.wants = wants,
	.parse = parse,
	.declare = declare,
	.link = link,
	.release = release,
};
