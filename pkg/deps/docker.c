/*
 * Dockerfiles: a directory with a Dockerfile and no other manifest is a
 * (weak) service; every service with a Dockerfile builds an image named
 * after it.  Build edges from `FROM` another service's image and `COPY
 * --from=` an image (not a stage of the same file), and from COPY/ADD of
 * paths that belong to another service when the build context is wider
 * than the Dockerfile's directory (compose's build.context says so).
 * ARG defaults are substituted into FROM.
 */
#include "deps/detect.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum df_what { DF_FROM, DF_COPY_FROM, DF_SOURCE };

struct df_ref {
	enum df_what what;
	char *text;		/* image, or a source path */
	int line;
};

struct dockerfile {
	char *path;
	char *dir;
	struct ry_strlist stages;
	struct ry_strlist arg_names, arg_values;
	struct df_ref *refs;
	size_t n;
};

struct docker_state {
	struct dockerfile *files;
	size_t n;
};

static struct docker_state *state(struct deps_ctx *c)
{
	if (!c->state[DET_DOCKER])
		c->state[DET_DOCKER] = ry_calloc(1, sizeof(struct docker_state));
	return c->state[DET_DOCKER];
}

static bool wants(const char *path, const char *base)
{
	(void)path;
	size_t n = strlen(base);
	return strcmp(base, "Dockerfile") == 0 || strcmp(base, "Containerfile") == 0 ||
	       strncmp(base, "Dockerfile.", 11) == 0 ||
	       (n > 11 && strcasecmp(base + n - 11, ".dockerfile") == 0);
}

static void add_ref(struct dockerfile *d, enum df_what what, const char *text, int line)
{
	d->refs = ry_realloc(d->refs, (d->n + 1) * sizeof(*d->refs));
	d->refs[d->n].what = what;
	d->refs[d->n].text = ry_strdup(text);
	d->refs[d->n].line = line;
	d->n++;
}

static const char *arg_lookup(void *arg, const char *name)
{
	const struct dockerfile *d = arg;
	for (size_t i = d->arg_names.n; i-- > 0;)
		if (strcmp(d->arg_names.items[i], name) == 0)
			return d->arg_values.items[i];
	return NULL;
}

/* Splits an instruction's arguments: JSON array form or words. */
static void split_args(const char *s, struct ry_strlist *out)
{
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '[') {
		const char *p = s + 1;
		while (*p && *p != ']') {
			const char *q = strchr(p, '"');
			if (!q)
				break;
			const char *e = strchr(q + 1, '"');
			if (!e)
				break;
			char *w = ry_strndup(q + 1, (size_t)(e - q - 1));
			ry_strlist_add(out, w);
			free(w);
			p = e + 1;
		}
		return;
	}
	while (*s) {
		const char *e = s;
		while (*e && !isspace((unsigned char)*e))
			e++;
		if (e > s) {
			char *w = ry_strndup(s, (size_t)(e - s));
			ry_strlist_add(out, w);
			free(w);
		}
		while (isspace((unsigned char)*e))
			e++;
		s = e;
	}
}

/* One logical line (continuations joined), starting at line no. */
static void instruction(struct dockerfile *d, const char *text, int no, bool *seen_from)
{
	const char *p = text;
	while (isspace((unsigned char)*p))
		p++;
	if (!*p || *p == '#')
		return;
	const char *end = p;
	while (*end && !isspace((unsigned char)*end))
		end++;
	char *word = ry_strndup(p, (size_t)(end - p));
	struct ry_strlist args = { 0 };
	split_args(end, &args);

	if (!strcasecmp(word, "ARG") && args.n >= 1 && !*seen_from) {
		char *eq = strchr(args.items[0], '=');
		char *name = eq ? ry_strndup(args.items[0], (size_t)(eq - args.items[0]))
				: ry_strdup(args.items[0]);
		const char *v = eq ? eq + 1 : "";
		if (*v == '"' || *v == '\'') {
			char *unq = ry_strndup(v + 1, strlen(v) > 1 ? strlen(v) - 2 : 0);
			ry_strlist_add(&d->arg_values, unq);
			free(unq);
		} else {
			ry_strlist_add(&d->arg_values, v);
		}
		ry_strlist_add(&d->arg_names, name);
		free(name);
	} else if (!strcasecmp(word, "FROM")) {
		*seen_from = true;
		size_t i = 0;
		while (i < args.n && !strncmp(args.items[i], "--", 2))
			i++;	/* --platform=... */
		if (i < args.n) {
			char *image = deps_expand(args.items[i], arg_lookup, d);
			add_ref(d, DF_FROM, image, no);
			free(image);
			if (i + 2 < args.n && !strcasecmp(args.items[i + 1], "AS"))
				ry_strlist_add(&d->stages, args.items[i + 2]);
		}
	} else if (!strcasecmp(word, "COPY") || !strcasecmp(word, "ADD")) {
		size_t i = 0;
		const char *from = NULL;
		for (; i < args.n && !strncmp(args.items[i], "--", 2); i++)
			if (!strncmp(args.items[i], "--from=", 7))
				from = args.items[i] + 7;
		if (from) {
			char *image = deps_expand(from, arg_lookup, d);
			add_ref(d, DF_COPY_FROM, image, no);
			free(image);
		} else if (args.n >= i + 2) {
			for (size_t k = i; k + 1 < args.n; k++)	/* the last is the destination */
				if (!strstr(args.items[k], "://") && args.items[k][0] != '$')
					add_ref(d, DF_SOURCE, args.items[k], no);
		}
	}
	ry_strlist_release(&args);
	free(word);
}

static void parse(struct deps_ctx *c, const char *path, const char *data, size_t len)
{
	struct docker_state *st = state(c);
	st->files = ry_realloc(st->files, (st->n + 1) * sizeof(*st->files));
	struct dockerfile *d = &st->files[st->n++];
	memset(d, 0, sizeof(*d));
	d->path = ry_strdup(path);
	d->dir = deps_dirname(path);

	struct ry_buf logical = RY_BUF_INIT;
	bool seen_from = false;
	int start = 0, no = 0;
	size_t i = 0;
	(void)c;
	while (i < len) {
		const char *nl = memchr(data + i, '\n', len - i);
		size_t e = nl ? (size_t)(nl - data) : len;
		size_t n = e - i;
		no++;
		if (n > 0 && data[i + n - 1] == '\r')
			n--;
		const char *line = data + i;
		bool comment = false;
		size_t lead = 0;
		while (lead < n && isspace((unsigned char)line[lead]))
			lead++;
		comment = lead < n && line[lead] == '#';
		if (!comment) {
			if (!logical.len)
				start = no;
			bool cont = n > 0 && line[n - 1] == '\\';
			ry_buf_add(&logical, line, cont ? n - 1 : n);
			ry_buf_putc(&logical, ' ');
			if (!cont) {
				instruction(d, logical.data, start, &seen_from);
				ry_buf_reset(&logical);
			}
		}
		i = e + 1;
	}
	if (logical.len)
		instruction(d, logical.data, start, &seen_from);
	ry_buf_release(&logical);
}

static void declare(struct deps_ctx *c)
{
	struct docker_state *st = state(c);
	for (size_t i = 0; i < st->n; i++) {
		struct deps_cand *cand = deps_candidate(c, st->files[i].dir, "docker", NULL,
							st->files[i].path, 1, "Dockerfile", 80);
		cand->weak = true;
		cand->dockerfile = true;
	}
}

/* Every service with a Dockerfile in its tree builds an image named after it. */
static void late(struct deps_ctx *c)
{
	struct docker_state *st = state(c);
	for (size_t i = 0; i < st->n; i++) {
		size_t s = deps_service_owning(c, st->files[i].path);
		if (s == DEPS_NONE)
			continue;
		struct ry_deps_service *svc = &c->g->services[s];
		svc->has_dockerfile = true;
		deps_alias(c, NS_IMAGE_LAST, svc->name, s);
		if (svc->root && strcmp(svc->root, ".") != 0)
			deps_alias(c, NS_IMAGE_LAST, deps_basename(svc->root), s);
	}
}

size_t deps_image_service(const struct deps_ctx *c, const char *image, bool bare_ok)
{
	char *repo = deps_image_repo(image);
	if (!repo)
		return DEPS_NONE;
	size_t s = deps_lookup(c, NS_IMAGE, repo);
	if (s == DEPS_NONE && (bare_ok || strchr(repo, '/')))
		s = deps_lookup(c, NS_IMAGE_LAST, deps_basename(repo));
	if (s == DEPS_NONE && bare_ok) {
		/* compose and Kubernetes run images built without a Dockerfile too
		 * (Jib, buildpacks): one named exactly like a service with code */
		s = deps_lookup(c, NS_HOST, deps_basename(repo));
		if (s != DEPS_NONE && !c->g->services[s].root)
			s = DEPS_NONE;
	}
	free(repo);
	return s;
}

static void link(struct deps_ctx *c)
{
	struct docker_state *st = state(c);
	for (size_t i = 0; i < st->n; i++) {
		const struct dockerfile *d = &st->files[i];
		size_t from = deps_service_owning(c, d->path);
		if (from == DEPS_NONE)
			continue;
		/* the contexts it is built with: compose's, else its directory */
		const struct ry_strlist *given = deps_build_contexts(c, d->path);
		struct ry_strlist own = { 0 };
		if (!given)
			ry_strlist_add(&own, d->dir);
		const struct ry_strlist *ctx = given ? given : &own;
		for (size_t k = 0; k < d->n; k++) {
			const struct df_ref *r = &d->refs[k];
			if (r->what == DF_SOURCE) {
				/* the part of a source before any wildcard */
				char *src = ry_strndup(r->text, strcspn(r->text, "*?["));
				for (size_t x = 0; x < ctx->n; x++) {
					char *p = deps_join(ctx->items[x], src);
					if (p && strcmp(p, ctx->items[x]) != 0 &&
					    deps_path_in(p, ctx->items[x]) && c->src->kind(c->src, p))
						deps_edge(c, from, deps_service_owning(c, p), RY_DEPS_BUILD,
							  "Dockerfile COPY", d->path, r->line);
					free(p);
				}
				free(src);
				continue;
			}
			if (ry_strlist_has(&d->stages, r->text) ||
			    strspn(r->text, "0123456789") == strlen(r->text))
				continue;	/* a stage of this Dockerfile */
			deps_edge(c, from, deps_image_service(c, r->text, false), RY_DEPS_BUILD,
				  r->what == DF_FROM ? "Dockerfile FROM" : "Dockerfile COPY --from",
				  d->path, r->line);
		}
		ry_strlist_release(&own);
	}
}

static void release(struct deps_ctx *c)
{
	struct docker_state *st = c->state[DET_DOCKER];
	if (!st)
		return;
	for (size_t i = 0; i < st->n; i++) {
		struct dockerfile *d = &st->files[i];
		for (size_t k = 0; k < d->n; k++)
			free(d->refs[k].text);
		free(d->refs);
		free(d->path);
		free(d->dir);
		ry_strlist_release(&d->stages);
		ry_strlist_release(&d->arg_names);
		ry_strlist_release(&d->arg_values);
	}
	free(st->files);
	free(st);
	c->state[DET_DOCKER] = NULL;
}

const struct deps_detector deps_detector_docker = {
	.name = "Dockerfile",
	.wants = wants,
	.parse = parse,
	.declare = declare,
	.late = late,
	.link = link,
	.release = release,
};
