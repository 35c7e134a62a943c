/*
 * Protocol buffers: `import "a/b/c.proto";` is a build edge to the service
 * that owns the imported file, found by path suffix among the repository's
 * .proto files (an import that several services could own is left out and
 * noted).  A directory with buf.yaml is a (weak) service; .proto files that
 * no service owns make one service per top-level directory holding them.
 */
#include "deps/detect.h"

#include <stdlib.h>
#include <string.h>

struct proto_import {
	char *path;
	int line;
};

struct proto_file {
	char *path;
	struct proto_import *imports;
	size_t n;
};

struct proto_list {
	size_t *ix;
	size_t n;
};

struct proto_state {
	struct proto_file *files;
	size_t n;
	struct ry_strlist bufs;		/* buf.yaml files */
	struct ry_match *import_re;
	struct deps_map by_suffix;	/* path suffix -> index in lists */
	struct proto_list *lists;	/* the files ending in each suffix */
	size_t nlists;
};

static struct proto_state *state(struct deps_ctx *c)
{
	if (!c->state[DET_PROTO]) {
		struct proto_state *st = ry_calloc(1, sizeof(*st));
		st->import_re = deps_regex("^\\s*import\\s+(?:public\\s+|weak\\s+)?[\"']([^\"']+)[\"']");
		c->state[DET_PROTO] = st;
	}
	return c->state[DET_PROTO];
}

static bool wants(const char *path, const char *base)
{
	(void)path;
	size_t n = strlen(base);
	return (n > 6 && strcmp(base + n - 6, ".proto") == 0) || strcmp(base, "buf.yaml") == 0;
}

static void on_line(struct deps_ctx *c, void *arg, int no, const char *line, size_t len)
{
	struct proto_file *f = arg;
	struct ry_match_span sp[2];
	if (!ry_match_find(state(c)->import_re, line, len, 0, sp, 2))
		return;
	f->imports = ry_realloc(f->imports, (f->n + 1) * sizeof(*f->imports));
	f->imports[f->n].path = deps_span(line, &sp[1]);
	f->imports[f->n].line = no;
	f->n++;
}

static void parse(struct deps_ctx *c, const char *path, const char *data, size_t len)
{
	struct proto_state *st = state(c);
	if (strcmp(deps_basename(path), "buf.yaml") == 0) {
		ry_strlist_add(&st->bufs, path);
		return;
	}
	st->files = ry_realloc(st->files, (st->n + 1) * sizeof(*st->files));
	struct proto_file *f = &st->files[st->n++];
	memset(f, 0, sizeof(*f));
	f->path = ry_strdup(path);
	deps_each_line(c, f, data, len, on_line);
}

static void declare(struct deps_ctx *c)
{
	struct proto_state *st = state(c);
	for (size_t i = 0; i < st->bufs.n; i++) {
		char *dir = deps_dirname(st->bufs.items[i]);
		struct deps_cand *cand = deps_candidate(c, dir, "proto", NULL, st->bufs.items[i], 1,
							"buf.yaml", 70);
		cand->weak = true;
		free(dir);
	}
}

/* Orphan .proto files: one service per top-level directory holding them. */
static void late(struct deps_ctx *c)
{
	struct proto_state *st = state(c);
	for (size_t i = 0; i < st->n; i++) {
		const char *path = st->files[i].path;
		if (deps_service_owning(c, path) != DEPS_NONE)
			continue;
		const char *slash = strchr(path, '/');
		if (!slash) {
			deps_note(c, "%s: a .proto file at the top of the repository belongs to no "
				  "service", path);
			continue;
		}
		char *top = ry_strndup(path, (size_t)(slash - path));
		(void)deps_add_late_service(c, top, top, "proto", path, 1, ".proto");
		free(top);
	}
	/* every suffix of every path: "a/b/c.proto", "b/c.proto", "c.proto" */
	for (size_t i = 0; i < st->n; i++) {
		for (const char *p = st->files[i].path; p;) {
			size_t id = deps_map_get(&st->by_suffix, p);
			if (id == DEPS_NONE) {
				id = st->nlists++;
				st->lists = ry_realloc(st->lists, st->nlists * sizeof(*st->lists));
				memset(&st->lists[id], 0, sizeof(*st->lists));
				deps_map_put(&st->by_suffix, p, id, false);
			}
			struct proto_list *l = &st->lists[id];
			l->ix = ry_realloc(l->ix, (l->n + 1) * sizeof(size_t));
			l->ix[l->n++] = i;
			const char *slash = strchr(p, '/');
			p = slash ? slash + 1 : NULL;
		}
	}
}

static void link(struct deps_ctx *c)
{
	struct proto_state *st = state(c);
	for (size_t i = 0; i < st->n; i++) {
		const struct proto_file *f = &st->files[i];
		size_t from = deps_service_owning(c, f->path);
		for (size_t k = 0; k < f->n; k++) {
			const char *imp = f->imports[k].path;
			if (!strncmp(imp, "google/protobuf/", 16))
				continue;
			size_t to = DEPS_NONE;
			bool mine = false, ambiguous = false;
			size_t id = deps_map_get(&st->by_suffix, imp);
			const struct proto_list *l = id == DEPS_NONE ? NULL : &st->lists[id];
			for (size_t j = 0; l && j < l->n; j++) {
				size_t s = deps_service_owning(c, st->files[l->ix[j]].path);
				if (s == from)
					mine = true;
				else if (to == DEPS_NONE)
					to = s;
				else if (s != to)
					ambiguous = true;
			}
			if (mine || to == DEPS_NONE)
				continue;
			if (ambiguous) {
				deps_note(c, "%s:%d: import \"%s\": several services have such a file, "
					  "no edge", f->path, f->imports[k].line, imp);
				continue;
			}
			deps_edge(c, from, to, RY_DEPS_BUILD, "proto import", f->path, f->imports[k].line);
		}
	}
}

static void release(struct deps_ctx *c)
{
	struct proto_state *st = c->state[DET_PROTO];
	if (!st)
		return;
	for (size_t i = 0; i < st->n; i++) {
		for (size_t k = 0; k < st->files[i].n; k++)
			free(st->files[i].imports[k].path);
		free(st->files[i].imports);
		free(st->files[i].path);
	}
	free(st->files);
	ry_strlist_release(&st->bufs);
	ry_match_free(st->import_re);
	deps_map_release(&st->by_suffix);
	for (size_t i = 0; i < st->nlists; i++)
		free(st->lists[i].ix);
	free(st->lists);
	free(st);
	c->state[DET_PROTO] = NULL;
}

const struct deps_detector deps_detector_proto = {
	.name = ".proto",
	.wants = wants,
	.parse = parse,
	.declare = declare,
	.late = late,
	.link = link,
	.release = release,
};
