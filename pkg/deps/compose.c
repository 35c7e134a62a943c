/*
 * docker compose files: each compose service is tied to a repository
 * service by its build.context (and dockerfile), else by its image, else
 * by its name; one that builds nothing here and matches nothing (a
 * database image) becomes a service of its own without a root.  Runtime
 * edges from depends_on and links, and from environment values (after
 * .env substitution) and env_file entries whose variable holds an address
 * (*_ADDR, *_HOST, *_URL, ...) naming another service.  The compose file
 * affects the deploys of the services it runs.
 */
#include "deps/detect.h"

#include <stdlib.h>
#include <string.h>

struct cs_ref {
	char *name;		/* depends_on / links target, env var name */
	char *value;		/* env value (unexpanded), or NULL */
	int line;
	int what;		/* 0 depends_on, 1 links, 2 environment, 3 env_file */
};

struct cs_service {
	char *name;
	int line;
	char *context, *dockerfile, *image;
	int image_line;
	struct cs_ref *refs;
	size_t n;
	size_t service;		/* the repository service, after late() */
};

struct compose_file {
	char *path;
	char *dir;
	struct cs_service *svcs;
	size_t n;
	struct deps_map local;	/* compose name -> repository service */
};

struct compose_state {
	struct compose_file *files;
	size_t n;
};

static struct compose_state *state(struct deps_ctx *c)
{
	if (!c->state[DET_COMPOSE])
		c->state[DET_COMPOSE] = ry_calloc(1, sizeof(struct compose_state));
	return c->state[DET_COMPOSE];
}

static bool yaml_ext(const char *s)
{
	return !strcmp(s, ".yml") || !strcmp(s, ".yaml");
}

/* docker-compose.yml, docker-compose.prod.yaml, compose.yaml, compose.override.yml */
static bool wants(const char *path, const char *base)
{
	(void)path;
	const char *rest = !strncmp(base, "docker-compose", 14) ? base + 14
			   : !strncmp(base, "compose", 7) ? base + 7 : NULL;
	if (!rest)
		return false;
	if (yaml_ext(rest))
		return true;
	const char *dot = strrchr(rest, '.');
	return (rest[0] == '.' || rest[0] == '-') && dot && dot > rest && yaml_ext(dot);
}

static void add_ref(struct cs_service *s, const char *name, const char *value, int line, int what)
{
	s->refs = ry_realloc(s->refs, (s->n + 1) * sizeof(*s->refs));
	s->refs[s->n].name = ry_strdup(name);
	s->refs[s->n].value = value ? ry_strdup(value) : NULL;
	s->refs[s->n].line = line;
	s->refs[s->n].what = what;
	s->n++;
}

static void read_service(struct cs_service *s, const struct spec_node *m)
{
	const struct spec_node *b = spec_map_get(m, "build");
	if (deps_node_text(b)) {
		s->context = ry_strdup(b->text);
	} else if (b && b->type == SPEC_MAP) {
		const char *ctx = deps_map_text(b, "context");
		const char *df = deps_map_text(b, "dockerfile");
		s->context = ry_strdup(ctx ? ctx : ".");
		s->dockerfile = df ? ry_strdup(df) : NULL;
	}
	const struct spec_node *img = spec_map_get(m, "image");
	if (deps_node_text(img)) {
		s->image = ry_strdup(img->text);
		s->image_line = img->line;
	}
	const struct spec_node *dep = spec_map_get(m, "depends_on");
	if (dep && dep->type == SPEC_SEQ) {
		for (size_t i = 0; i < dep->n; i++)
			if (deps_node_text(dep->items[i]))
				add_ref(s, dep->items[i]->text, NULL, dep->items[i]->line, 0);
	} else if (dep && dep->type == SPEC_MAP) {
		for (size_t i = 0; i + 1 < dep->n; i += 2)
			add_ref(s, dep->items[i]->text, NULL, dep->items[i]->line, 0);
	}
	const struct spec_node *links = spec_map_get(m, "links");
	if (links && links->type == SPEC_SEQ)
		for (size_t i = 0; i < links->n; i++)
			if (deps_node_text(links->items[i])) {
				char *name = ry_strndup(links->items[i]->text,
							strcspn(links->items[i]->text, ":"));
				add_ref(s, name, NULL, links->items[i]->line, 1);
				free(name);
			}
	const struct spec_node *env = spec_map_get(m, "environment");
	if (env && env->type == SPEC_MAP) {
		for (size_t i = 0; i + 1 < env->n; i += 2)
			if (deps_node_text(env->items[i + 1]))
				add_ref(s, env->items[i]->text, env->items[i + 1]->text,
					env->items[i]->line, 2);
	} else if (env && env->type == SPEC_SEQ) {
		for (size_t i = 0; i < env->n; i++) {
			const char *kv = deps_node_text(env->items[i]);
			const char *eq = kv ? strchr(kv, '=') : NULL;
			if (!eq)
				continue;
			char *name = ry_strndup(kv, (size_t)(eq - kv));
			add_ref(s, name, eq + 1, env->items[i]->line, 2);
			free(name);
		}
	}
	const struct spec_node *ef = spec_map_get(m, "env_file");
	if (deps_node_text(ef)) {
		add_ref(s, ef->text, NULL, ef->line, 3);
	} else if (ef && ef->type == SPEC_SEQ) {
		for (size_t i = 0; i < ef->n; i++) {
			const struct spec_node *e = ef->items[i];
			const char *p = deps_node_text(e) ? e->text : deps_map_text(e, "path");
			if (p)
				add_ref(s, p, NULL, e->line, 3);
		}
	}
}

static void on_doc(struct deps_ctx *c, void *arg, const char *path, const struct spec_node *root)
{
	struct compose_file *f = arg;
	const struct spec_node *svcs = spec_map_get(root, "services");
	if (!svcs)
		return;
	if (svcs->type != SPEC_MAP) {
		deps_warn(c, path, svcs->line, "services must be a mapping");
		return;
	}
	for (size_t i = 0; i + 1 < svcs->n; i += 2) {
		const struct spec_node *m = svcs->items[i + 1];
		if (m->type != SPEC_MAP && m->type != SPEC_NULL) {
			deps_warn(c, path, m->line, "service %s must be a mapping", svcs->items[i]->text);
			continue;
		}
		f->svcs = ry_realloc(f->svcs, (f->n + 1) * sizeof(*f->svcs));
		struct cs_service *s = &f->svcs[f->n++];
		memset(s, 0, sizeof(*s));
		s->name = ry_strdup(svcs->items[i]->text);
		s->line = svcs->items[i]->line;
		s->service = DEPS_NONE;
		if (m->type == SPEC_MAP)
			read_service(s, m);
	}
}

static void parse(struct deps_ctx *c, const char *path, const char *data, size_t len)
{
	struct compose_state *st = state(c);
	st->files = ry_realloc(st->files, (st->n + 1) * sizeof(*st->files));
	struct compose_file *f = &st->files[st->n++];
	memset(f, 0, sizeof(*f));
	f->path = ry_strdup(path);
	f->dir = deps_dirname(path);
	deps_yaml_each(c, path, data, len, f, on_doc);
}

struct subst {
	struct deps_ctx *c;
	const char *dir;
};

static const char *subst_lookup(void *arg, const char *name)
{
	const struct subst *s = arg;
	return deps_env_value(s->c, s->dir, name);
}

static char *expand(struct deps_ctx *c, const struct compose_file *f, const char *s)
{
	struct subst sub = { c, f->dir };
	return s ? deps_expand(s, subst_lookup, &sub) : NULL;
}

/* The repository service a compose service runs. */
static size_t map_service(struct deps_ctx *c, struct compose_file *f, struct cs_service *s)
{
	size_t svc = DEPS_NONE;
	if (s->context) {
		char *ctx = expand(c, f, s->context);
		char *dir = strstr(ctx, "://") || !strncmp(ctx, "git@", 4) ? NULL : deps_join(f->dir, ctx);
		if (dir) {
			char *df = expand(c, f, s->dockerfile ? s->dockerfile : "Dockerfile");
			char *dfpath = deps_join(dir, df);
			if (dfpath) {
				deps_build_context(c, dfpath, dir);
				char *dfdir = deps_dirname(dfpath);
				svc = deps_service_at(c, dfdir);
				if (svc == DEPS_NONE)
					svc = deps_service_owning(c, dfpath);
				free(dfdir);
			}
			if (svc == DEPS_NONE && c->src->kind(c->src, dir) == 2)
				svc = deps_add_late_service(c, s->name, dir, "docker", f->path, s->line,
							    "compose build");
			free(dfpath);
			free(df);
		}
		free(dir);
		free(ctx);
	}
	char *image = expand(c, f, s->image);
	if (svc == DEPS_NONE && image)
		svc = deps_image_service(c, image, true);
	if (svc == DEPS_NONE)
		svc = deps_lookup(c, NS_HOST, s->name);
	if (svc == DEPS_NONE)
		svc = deps_add_late_service(c, s->name, NULL, "image", f->path, s->line,
					    "compose image");
	if (s->context && image) {	/* this file names the image the service builds */
		char *repo = deps_image_repo(image);
		deps_alias(c, NS_IMAGE, repo, svc);
		free(repo);
	}
	free(image);
	return svc;
}

static void late(struct deps_ctx *c)
{
	struct compose_state *st = state(c);
	for (size_t i = 0; i < st->n; i++) {
		struct compose_file *f = &st->files[i];
		deps_env_mark_project(c, f->dir);
		for (size_t k = 0; k < f->n; k++) {
			struct cs_service *s = &f->svcs[k];
			s->service = map_service(c, f, s);
			deps_map_put(&f->local, s->name, s->service, false);
			deps_alias(c, NS_HOST, s->name, s->service);
			struct ry_deps_service *svc = &c->g->services[s->service];
			if (!svc->deploy_file) {
				svc->deploy_file = ry_strdup(f->path);
				svc->deploy_name = ry_strdup(s->name);
			}
			deps_deploy_path(c, f->path, s->service, "compose file that runs it");
			for (size_t r = 0; r < s->n; r++) {
				if (s->refs[r].what != 3)
					continue;
				char *p = expand(c, f, s->refs[r].name);
				char *path = deps_join(f->dir, p);
				if (path && !deps_env_claim(c, path))
					deps_warn(c, f->path, s->refs[r].line, "env_file %s: no such file",
						  s->refs[r].name);
				free(path);
				free(p);
			}
		}
	}
}

static void link(struct deps_ctx *c)
{
	struct compose_state *st = state(c);
	static const char *const detectors[] = { "compose depends_on", "compose links",
		"compose environment" };
	for (size_t i = 0; i < st->n; i++) {
		struct compose_file *f = &st->files[i];
		for (size_t k = 0; k < f->n; k++) {
			const struct cs_service *s = &f->svcs[k];
			for (size_t r = 0; r < s->n; r++) {
				const struct cs_ref *ref = &s->refs[r];
				if (ref->what == 3) {
					char *p = expand(c, f, ref->name);
					char *path = deps_join(f->dir, p);
					if (path)
						(void)deps_env_file_edges(c, path, s->service);
					free(path);
					free(p);
				} else if (ref->what == 2) {
					char *v = expand(c, f, ref->value);
					deps_address_edges(c, s->service, ref->name, v, &f->local,
							   detectors[2], f->path, ref->line);
					free(v);
				} else {
					size_t to = deps_map_get(&f->local, ref->name);
					if (to == DEPS_NONE)
						to = deps_lookup(c, NS_HOST, ref->name);
					if (to == DEPS_NONE)
						deps_warn(c, f->path, ref->line, "%s: no service \"%s\"",
							  ref->what ? "links" : "depends_on", ref->name);
					deps_edge(c, s->service, to, RY_DEPS_RUNTIME, detectors[ref->what],
						  f->path, ref->line);
				}
			}
		}
	}
}

static void release(struct deps_ctx *c)
{
	struct compose_state *st = c->state[DET_COMPOSE];
	if (!st)
		return;
	for (size_t i = 0; i < st->n; i++) {
		struct compose_file *f = &st->files[i];
		for (size_t k = 0; k < f->n; k++) {
			struct cs_service *s = &f->svcs[k];
			for (size_t r = 0; r < s->n; r++) {
				free(s->refs[r].name);
				free(s->refs[r].value);
			}
			free(s->refs);
			free(s->name);
			free(s->context);
			free(s->dockerfile);
			free(s->image);
		}
		free(f->svcs);
		free(f->path);
		free(f->dir);
		deps_map_release(&f->local);
	}
	free(st->files);
	free(st);
	c->state[DET_COMPOSE] = NULL;
}

const struct deps_detector deps_detector_compose = {
	.name = "compose",
	.wants = wants,
	.parse = parse,
	.late = late,
	.link = link,
	.release = release,
};
