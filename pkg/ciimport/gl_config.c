/*
 * GitLab CI configuration: includes, !reference, extends, default.
 */
#include "ciimport/gl_config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_INCLUDES 150	/* GitLab's own limit */
#define MAX_NESTING 10		/* extends and !reference depth */

bool gl_reserved_key(const char *key)
{
	static const char *const keys[] = { "image", "services", "stages", "types", "before_script",
		"after_script", "variables", "cache", "include", "workflow", "default", "spec", NULL };
	for (size_t i = 0; keys[i]; i++)
		if (strcmp(key, keys[i]) == 0)
			return true;
	return false;
}

struct ci_node *gl_merge(struct ci_doc *doc, const struct ci_node *base, const struct ci_node *over)
{
	if (!base || base->type != CI_MAP || !over || over->type != CI_MAP)
		return (struct ci_node *)over;
	struct ci_node *m = ci_map_copy(doc, base);
	for (size_t i = 0; i + 1 < over->n; i += 2) {
		const char *k = over->items[i]->text;
		struct ci_node *old = ci_get(m, k);
		ci_map_set(doc, m, k, old ? gl_merge(doc, old, over->items[i + 1]) : over->items[i + 1]);
		/* The merged key keeps the over side's line for messages. */
	}
	m->line = over->line;
	m->file = over->file;
	return m;
}

/* ---- include: local ------------------------------------------------------- */

static bool load_file(struct gl_config *cfg, const char *relpath, const struct ci_node *at,
		      int depth, struct ci_node **out);

/* Repository-relative files matching a glob, sorted (GitLab allows * and **). */
static void walk(const char *repo, const char *rel, const char *glob, struct ry_strlist *out, int depth)
{
	char *dir = *rel ? ry_asprintf("%s/%s", repo, rel) : ry_strdup(repo);
	DIR *d = opendir(dir);
	struct dirent *e;
	free(dir);
	if (!d || depth > 20) {
		if (d)
			closedir(d);
		return;
	}
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || strcmp(e->d_name, ".git") == 0)
			continue;
		char *path = *rel ? ry_asprintf("%s/%s", rel, e->d_name) : ry_strdup(e->d_name);
		char *full = ry_asprintf("%s/%s", repo, path);
		struct stat st;
		if (lstat(full, &st) == 0 && S_ISDIR(st.st_mode))
			walk(repo, path, glob, out, depth + 1);
		else if (ry_glob_match(glob, path, RY_GLOB_BRACES))
			ry_strlist_add(out, path);
		free(full);
		free(path);
	}
	closedir(d);
}

bool gl_repo_has(const struct gl_config *cfg, const char *glob)
{
	struct ry_strlist files = { 0 };
	while (*glob == '/')
		glob++;
	walk(cfg->repo, "", glob, &files, 0);
	bool any = files.n > 0;
	ry_strlist_release(&files);
	return any;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The include rules: if: is evaluated with what is known (else kept). */
static bool include_wanted(struct gl_config *cfg, const struct ci_node *inc)
{
	const struct ci_node *rules = ci_get(inc, "rules");
	if (!rules)
		return true;
	ci_note(cfg->b, rules, "include rules are not evaluated at import; the file is included");
	return true;
}

static bool include_one(struct gl_config *cfg, const struct ci_node *inc, int depth, struct ci_node **merged)
{
	const char *local = NULL;
	if (inc->type == CI_SCALAR && ci_str(inc)) {
		if (strncmp(inc->text, "http://", 7) == 0 || strncmp(inc->text, "https://", 8) == 0) {
			ci_note(cfg->b, inc, "include %s: remote includes cannot be fetched at import; "
				"not included", inc->text);
			return true;
		}
		local = inc->text;
	} else if (inc->type == CI_MAP) {
		static const char *const remote[] = { "remote", "project", "template", "component" };
		for (size_t i = 0; i < RY_ARRAY_SIZE(remote); i++) {
			const struct ci_node *v = ci_get(inc, remote[i]);
			if (v) {
				ci_note(cfg->b, v, "include %s: %s: only GitLab can resolve it; not included",
					remote[i], ci_str(v) ? v->text : "?");
				return true;
			}
		}
		local = ci_str(ci_get(inc, "local"));
		if (!local)
			return ci_fail(cfg->b, inc, "include: expected local, remote, project, template or component");
		if (!include_wanted(cfg, inc))
			return true;
	} else {
		return ci_fail(cfg->b, inc, "include: expected a file name or a mapping");
	}
	while (*local == '/')
		local++;
	struct ry_strlist files = { 0 };
	if (strpbrk(local, "*?[{")) {
		walk(cfg->repo, "", local, &files, 0);
		if (files.n > 1)
			qsort(files.items, files.n, sizeof(*files.items), cmp_str);
		if (files.n == 0)
			ci_note(cfg->b, inc, "include %s matches no file", local);
	} else {
		ry_strlist_add(&files, local);
	}
	bool ok = true;
	for (size_t i = 0; ok && i < files.n; i++) {
		struct ci_node *root = NULL;
		ok = load_file(cfg, files.items[i], inc, depth + 1, &root);
		if (ok && root)
			*merged = gl_merge(&cfg->b->doc, *merged, root);
	}
	ry_strlist_release(&files);
	return ok;
}

/* A file with its includes merged under it; *out NULL when it was loaded before. */
static bool load_file(struct gl_config *cfg, const char *relpath, const struct ci_node *at,
		      int depth, struct ci_node **out)
{
	char *full = ry_asprintf("%s/%s", cfg->repo, relpath), resolved[PATH_MAX];
	size_t rlen = strlen(cfg->repo);
	bool ok = false;

	*out = NULL;
	if (!realpath(full, resolved)) {
		ci_fail(cfg->b, at, "include %s: %s", relpath, strerror(errno));
		goto out;
	}
	if (strncmp(resolved, cfg->repo, rlen) != 0 || (resolved[rlen] != '/' && resolved[rlen] != '\0')) {
		ci_fail(cfg->b, at, "include %s: outside the repository (%s)", relpath, cfg->repo);
		goto out;
	}
	if (ry_strlist_has(&cfg->loaded, resolved)) {
		ok = true;	/* GitLab includes a file once */
		goto out;
	}
	if (cfg->loaded.n >= MAX_INCLUDES || depth > 100) {
		ci_fail(cfg->b, at, "more than %d included files", MAX_INCLUDES);
		goto out;
	}
	ry_strlist_add(&cfg->loaded, resolved);
	char *display = *cfg->shown ? ry_asprintf("%s/%s", cfg->shown, relpath) : ry_strdup(relpath);
	struct ci_node *root = NULL;
	bool loaded = ci_load_file(&cfg->b->doc, full, display, &root, &cfg->b->err);
	free(display);
	if (!loaded)
		goto out;
	if (!root) {
		ok = true;
		goto out;
	}
	if (root->type != CI_MAP) {
		ci_fail(cfg->b, root, "a GitLab CI file is a mapping of jobs and settings");
		goto out;
	}
	const struct ci_node *inc = ci_get(root, "include");
	struct ci_node *merged = NULL;
	ok = true;
	if (inc) {
		struct ci_node *const *items = inc->type == CI_SEQ ? inc->items : (struct ci_node *const *)&inc;
		size_t n = inc->type == CI_SEQ ? inc->n : 1;
		for (size_t i = 0; ok && i < n; i++)
			ok = include_one(cfg, items[i], depth, &merged);
	}
	if (ok) {
		struct ci_node *own = ci_node_new(&cfg->b->doc, CI_MAP, root->file, root->line);
		for (size_t i = 0; i + 1 < root->n; i += 2)
			if (strcmp(root->items[i]->text, "include") != 0) {
				ci_push(own, root->items[i]);
				ci_push(own, root->items[i + 1]);
			}
		*out = merged ? gl_merge(&cfg->b->doc, merged, own) : own;
	}
out:
	free(full);
	return ok;
}

/* ---- !reference ----------------------------------------------------------- */

static struct ci_node *resolve_refs(struct gl_config *cfg, struct ci_node *n, int depth);

static struct ci_node *reference(struct gl_config *cfg, struct ci_node *ref, int depth)
{
	if (depth > MAX_NESTING) {
		ci_fail(cfg->b, ref, "!reference nested more than %d levels", MAX_NESTING);
		return NULL;
	}
	struct ci_node *target = cfg->root;
	for (size_t i = 0; i < ref->n; i++) {
		const char *key = ci_str(ref->items[i]);
		struct ci_node *next = key ? ci_get(target, key) : NULL;
		if (!next) {
			ci_fail(cfg->b, ref, "!reference: %s not found", key ? key : "a non-text key");
			return NULL;
		}
		target = next;
	}
	return resolve_refs(cfg, target, depth + 1);
}

/* n with every !reference replaced; n itself when it holds none. */
static struct ci_node *resolve_refs(struct gl_config *cfg, struct ci_node *n, int depth)
{
	if (!n || cfg->b->err)
		return n;
	if (n->tag && strcmp(n->tag, "!reference") == 0) {
		if (n->type != CI_SEQ || n->n == 0)
			return ci_fail(cfg->b, n, "!reference takes a list: [job, key, ...]"), NULL;
		return reference(cfg, n, depth);
	}
	if (n->type == CI_SCALAR)
		return n;
	struct ci_node *copy = NULL;
	for (size_t i = 0; i < n->n; i++) {
		struct ci_node *r = resolve_refs(cfg, n->items[i], depth);
		if (!r)
			return NULL;
		if (r != n->items[i] && !copy) {
			copy = ci_node_new(&cfg->b->doc, n->type, n->file, n->line);
			for (size_t k = 0; k < i; k++)
				ci_push(copy, n->items[k]);
		}
		if (copy)
			ci_push(copy, r);
	}
	return copy ? copy : n;
}

/* ---- extends -------------------------------------------------------------- */

static struct ci_node *extended(struct gl_config *cfg, const char *job, int depth, struct ry_strlist *done)
{
	struct ci_node *node = ci_get(cfg->root, job);
	const struct ci_node *ext = ci_get(node, "extends");
	if (!ext || ry_strlist_has(done, job))
		return node;
	if (depth > MAX_NESTING) {
		ci_fail(cfg->b, ext, "extends nested more than %d levels (or a cycle through \"%s\")",
			MAX_NESTING, job);
		return NULL;
	}
	struct ci_node *const *items = ext->type == CI_SEQ ? ext->items : (struct ci_node *const *)&ext;
	size_t n = ext->type == CI_SEQ ? ext->n : 1;
	struct ci_node *merged = NULL;
	for (size_t i = 0; i < n; i++) {
		const char *parent = ci_str(items[i]);
		if (!parent)
			return ci_fail(cfg->b, items[i], "extends takes job names"), NULL;
		if (!ci_get(cfg->root, parent))
			return ci_fail(cfg->b, items[i], "\"%s\" extends unknown job \"%s\"%s", job, parent,
				       cfg->loaded.n > 1 ? "" : " (from an include railyard cannot read?)"), NULL;
		struct ci_node *p = extended(cfg, parent, depth + 1, done);
		if (!p)
			return NULL;
		if (p->type != CI_MAP)
			return ci_fail(cfg->b, items[i], "\"%s\" extends \"%s\", which is not a mapping", job,
				       parent), NULL;
		merged = merged ? gl_merge(&cfg->b->doc, merged, p) : p;
	}
	struct ci_node *own = ci_node_new(&cfg->b->doc, CI_MAP, node->file, node->line);
	for (size_t i = 0; i + 1 < node->n; i += 2)
		if (strcmp(node->items[i]->text, "extends") != 0) {
			ci_push(own, node->items[i]);
			ci_push(own, node->items[i + 1]);
		}
	struct ci_node *result = gl_merge(&cfg->b->doc, merged, own);
	ci_map_set(&cfg->b->doc, cfg->root, job, result);
	ry_strlist_add(done, job);
	return result;
}

bool gl_config_load(struct gl_config *cfg, const char *const *paths, size_t npaths)
{
	char dir[PATH_MAX], *slash;
	struct ci_node *merged = NULL;

	snprintf(dir, sizeof(dir), "%s", paths[0]);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	char resolved[PATH_MAX];
	if (!realpath(dir, resolved))
		return ci_fail(cfg->b, NULL, "%s: %s", paths[0], strerror(errno));
	cfg->repo = ry_strdup(resolved);
	cfg->shown = ry_strdup(slash ? dir : "");

	/* Files after the first come in as if the first included them, first. */
	for (size_t i = 1; i <= npaths; i++) {
		const char *path = paths[i % npaths];
		char full[PATH_MAX];
		if (!realpath(path, full))
			return ci_fail(cfg->b, NULL, "%s: %s", path, strerror(errno));
		size_t rlen = strlen(cfg->repo);
		if (strncmp(full, cfg->repo, rlen) != 0 || full[rlen] != '/')
			return ci_fail(cfg->b, NULL, "%s: outside the repository %s (the first file's directory)",
				       path, cfg->repo);
		struct ci_node *root = NULL;
		if (!load_file(cfg, full + rlen + 1, NULL, 0, &root))
			return false;
		if (root)
			merged = merged ? gl_merge(&cfg->b->doc, merged, root) : root;
		if (npaths == 1)
			break;
	}
	if (!merged)
		return ci_fail(cfg->b, NULL, "%s:1: the configuration is empty", paths[0]);
	cfg->root = merged;

	/* !reference first, then extends, as GitLab does. */
	struct ci_node *resolved_root = resolve_refs(cfg, cfg->root, 0);
	if (!resolved_root)
		return false;
	cfg->root = resolved_root;
	struct ry_strlist done = { 0 };
	bool ok = true;
	for (size_t i = 0; ok && i + 1 < cfg->root->n; i += 2) {
		const char *key = cfg->root->items[i]->text;
		if (!gl_reserved_key(key) && cfg->root->items[i + 1]->type == CI_MAP)
			ok = extended(cfg, key, 0, &done) != NULL;
	}
	ry_strlist_release(&done);
	return ok;
}

void gl_config_release(struct gl_config *cfg)
{
	free(cfg->repo);
	free(cfg->shown);
	ry_strlist_release(&cfg->loaded);
	memset(cfg, 0, sizeof(*cfg));
}
