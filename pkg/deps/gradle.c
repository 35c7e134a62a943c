/*
 * Gradle: settings.gradle(.kts) `include` lists the projects of a build
 * (each a service, in the directory its path names or the projectDir the
 * settings give it); a build without includes is one service.  Edges from
 * the project's own build.gradle(.kts): project(":x") or projects.x in
 * a configuration (implementation, api, ... build edges; test*, *Test*
 * configurations test edges).  A project(":x") the settings do not
 * include is a warning.  The root build files, gradle.properties, gradle/
 * and buildSrc/ affect every project of the build.
 */
#include "deps/detect.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

struct gradle_include {
	char *project;		/* ":a:b" */
	int line;
	char *dir;		/* projectDir override, relative to the settings, or NULL */
};

struct gradle_settings {
	char *path;
	char *dir;
	struct gradle_include *inc;
	size_t n;
};

struct gradle_dep {
	char *config;
	char *target;		/* ":a:b", "x" (relative) or accessor "a.bC" */
	bool accessor;
	int line;
};

struct gradle_build {
	char *path;
	char *dir;
	struct gradle_dep *deps;
	size_t n;
	/* resolved */
	long settings;		/* -1: none */
	char *project;		/* its project path, or NULL */
};

struct gradle_state {
	struct gradle_settings *settings;
	size_t nsettings;
	struct gradle_build *builds;
	size_t nbuilds;
	struct ry_match *include_re, *string_re, *dir_re, *dep_re, *accessor_re;
};

/* The state of one settings file while its lines are read. */
struct settings_parse {
	struct gradle_state *st;
	struct gradle_settings *s;
	bool in_include;	/* a multi-line include( ... ) */
};

static struct gradle_state *state(struct deps_ctx *c)
{
	if (!c->state[DET_GRADLE]) {
		struct gradle_state *st = ry_calloc(1, sizeof(*st));
		st->include_re = deps_regex("^\\s*include\\b\\s*\\(?");
		st->string_re = deps_regex("[\"']([^\"'$]+)[\"']");
		st->dir_re = deps_regex("project\\s*\\(\\s*[\"']([^\"']+)[\"']\\s*\\)\\s*\\.\\s*projectDir"
					"\\s*=\\s*(?:file\\s*\\(|new\\s+File\\s*\\(\\s*(?:rootDir|settingsDir|"
					"rootProject\\.projectDir)\\s*,)\\s*[\"']([^\"']+)[\"']");
		st->dep_re = deps_regex("^\\s*([A-Za-z][A-Za-z0-9_]*)\\s*\\(?\\s*(?:(?:platform|"
					"enforcedPlatform|testFixtures)\\s*\\(\\s*)?project\\s*\\(\\s*"
					"(?:path\\s*[:=]\\s*)?[\"']([^\"']+)[\"']");
		st->accessor_re = deps_regex("^\\s*([A-Za-z][A-Za-z0-9_]*)\\s*\\(?\\s*(?:(?:platform|"
					     "enforcedPlatform|testFixtures)\\s*\\(\\s*)?projects\\."
					     "([A-Za-z0-9_.]+)");
		c->state[DET_GRADLE] = st;
	}
	return c->state[DET_GRADLE];
}

static bool is_settings(const char *base)
{
	return strcmp(base, "settings.gradle") == 0 || strcmp(base, "settings.gradle.kts") == 0;
}

static bool is_build(const char *base)
{
	return strcmp(base, "build.gradle") == 0 || strcmp(base, "build.gradle.kts") == 0;
}

static bool wants(const char *path, const char *base)
{
	(void)path;
	return is_settings(base) || is_build(base);
}

static void add_include(struct gradle_settings *s, const char *name, int line)
{
	s->inc = ry_realloc(s->inc, (s->n + 1) * sizeof(*s->inc));
	struct gradle_include *inc = &s->inc[s->n++];
	inc->project = name[0] == ':' ? ry_strdup(name) : ry_asprintf(":%s", name);
	inc->line = line;
	inc->dir = NULL;
}

/* Strips a "//" comment (not inside a string). */
static size_t code_len(const char *line, size_t len)
{
	char quote = 0;
	for (size_t i = 0; i < len; i++) {
		if (quote) {
			if (line[i] == quote)
				quote = 0;
		} else if (line[i] == '"' || line[i] == '\'') {
			quote = line[i];
		} else if (line[i] == '/' && i + 1 < len && line[i + 1] == '/') {
			return i;
		}
	}
	return len;
}

static void on_settings_line(struct deps_ctx *c, void *arg, int no, const char *raw, size_t len)
{
	(void)c;
	struct settings_parse *p = arg;
	struct gradle_state *st = p->st;
	struct ry_match_span sp[3];
	len = code_len(raw, len);
	size_t from = 0;

	if (ry_match_find(st->dir_re, raw, len, 0, sp, 3)) {
		char *proj = deps_span(raw, &sp[1]);
		char *dir = deps_span(raw, &sp[2]);
		char *full = proj[0] == ':' ? ry_strdup(proj) : ry_asprintf(":%s", proj);
		bool found = false;
		for (size_t i = 0; i < p->s->n; i++)
			if (strcmp(p->s->inc[i].project, full) == 0) {
				free(p->s->inc[i].dir);
				p->s->inc[i].dir = ry_strdup(dir);
				found = true;
			}
		if (!found) {	/* projectDir before include: remember it */
			add_include(p->s, full, no);
			p->s->inc[p->s->n - 1].dir = ry_strdup(dir);
			p->s->inc[p->s->n - 1].line = -no;	/* not included (yet) */
		}
		free(full);
		free(dir);
		free(proj);
		return;
	}
	if (!p->in_include) {
		if (!ry_match_find(st->include_re, raw, len, 0, sp, 1))
			return;
		p->in_include = true;
		from = (size_t)sp[0].end;
	}
	while (ry_match_find(st->string_re, raw, len, from, sp, 2)) {
		char *name = deps_span(raw, &sp[1]);
		char *full = name[0] == ':' ? ry_strdup(name) : ry_asprintf(":%s", name);
		bool merged = false;
		for (size_t i = 0; i < p->s->n; i++)
			if (strcmp(p->s->inc[i].project, full) == 0 && p->s->inc[i].line < 0) {
				p->s->inc[i].line = no;
				merged = true;
			}
		if (!merged)
			add_include(p->s, name, no);
		free(full);
		free(name);
		from = (size_t)sp[0].end;
	}
	/* the statement goes on while the line ends with a comma or an open paren */
	size_t end = len;
	while (end > 0 && isspace((unsigned char)raw[end - 1]))
		end--;
	bool open = false;
	int depth = 0;
	for (size_t i = 0; i < len; i++)
		depth += raw[i] == '(' ? 1 : raw[i] == ')' ? -1 : 0;
	open = depth > 0;
	p->in_include = end > 0 && (raw[end - 1] == ',' || open);
}

static void on_build_line(struct deps_ctx *c, void *arg, int no, const char *raw, size_t len)
{
	struct gradle_build *b = arg;
	struct gradle_state *st = state(c);
	struct ry_match_span sp[3];
	len = code_len(raw, len);
	bool accessor = false;
	if (!ry_match_find(st->dep_re, raw, len, 0, sp, 3)) {
		if (!ry_match_find(st->accessor_re, raw, len, 0, sp, 3))
			return;
		accessor = true;
	}
	char *config = deps_span(raw, &sp[1]);
	static const char *const not_configs[] = { "project", "evaluationDependsOn", "include",
		"apply", "plugins", "dependencies", "findProject", "rootProject", NULL };
	for (const char *const *n = not_configs; *n; n++)
		if (strcmp(config, *n) == 0) {
			free(config);
			return;
		}
	b->deps = ry_realloc(b->deps, (b->n + 1) * sizeof(*b->deps));
	struct gradle_dep *d = &b->deps[b->n++];
	d->config = config;
	d->target = deps_span(raw, &sp[2]);
	d->accessor = accessor;
	d->line = no;
}

static void parse(struct deps_ctx *c, const char *path, const char *data, size_t len)
{
	struct gradle_state *st = state(c);
	if (is_settings(deps_basename(path))) {
		st->settings = ry_realloc(st->settings, (st->nsettings + 1) * sizeof(*st->settings));
		struct gradle_settings *s = &st->settings[st->nsettings++];
		memset(s, 0, sizeof(*s));
		s->path = ry_strdup(path);
		s->dir = deps_dirname(path);
		struct settings_parse p = { st, s, false };
		deps_each_line(c, &p, data, len, on_settings_line);
		return;
	}
	st->builds = ry_realloc(st->builds, (st->nbuilds + 1) * sizeof(*st->builds));
	struct gradle_build *b = &st->builds[st->nbuilds++];
	memset(b, 0, sizeof(*b));
	b->path = ry_strdup(path);
	b->dir = deps_dirname(path);
	b->settings = -1;
	deps_each_line(c, b, data, len, on_build_line);
}

/* The directory of an included project. */
static char *project_dir(const struct gradle_settings *s, const struct gradle_include *inc)
{
	if (inc->dir)
		return deps_join(s->dir, inc->dir);
	char *rel = ry_strdup(inc->project + 1);
	for (char *p = rel; *p; p++)
		if (*p == ':')
			*p = '/';
	char *dir = deps_join(s->dir, rel);
	free(rel);
	return dir;
}

/* ":foo-bar:baz_qux" -> ":foobar:bazqux" (how type-safe accessors see it) */
static char *normalized(const char *project)
{
	char *out = ry_malloc(strlen(project) + 1), *o = out;
	for (const char *p = project; *p; p++)
		if (*p != '-' && *p != '_')
			*o++ = (char)tolower((unsigned char)*p);
	*o = '\0';
	return out;
}

static char *alias_of(const char *settings_dir, const char *project)
{
	return ry_asprintf("%s|%s", settings_dir, project);
}

/* The build file in dir, if any. */
static const struct gradle_build *build_in(const struct gradle_state *st, const char *dir)
{
	for (size_t i = 0; i < st->nbuilds; i++)
		if (strcmp(st->builds[i].dir, dir) == 0)
			return &st->builds[i];
	return NULL;
}

static void declare(struct deps_ctx *c)
{
	struct gradle_state *st = state(c);
	for (size_t si = 0; si < st->nsettings; si++) {
		struct gradle_settings *s = &st->settings[si];
		size_t included = 0;
		for (size_t i = 0; i < s->n; i++) {
			struct gradle_include *inc = &s->inc[i];
			if (inc->line < 0)
				continue;	/* a projectDir for a project never included */
			included++;
			char *dir = project_dir(s, inc);
			if (!dir || c->src->kind(c->src, dir) != 2) {
				deps_warn(c, s->path, inc->line, "include %s: no directory %s",
					  inc->project, dir ? dir : "(outside the repository)");
				free(dir);
				continue;
			}
			const struct gradle_build *b = build_in(st, dir);
			const char *last = strrchr(inc->project, ':') + 1;
			struct deps_cand *cand = deps_candidate(c, dir, "gradle", last,
								b ? b->path : s->path,
								b ? 1 : inc->line, "settings.gradle", 20);
			char *key = alias_of(s->dir, inc->project);
			char *norm = normalized(key);
			deps_cand_alias(cand, NS_GRADLE, key);
			deps_cand_alias(cand, NS_GRADLE_NORM, norm);
			free(norm);
			free(key);
			for (size_t bi = 0; bi < st->nbuilds; bi++)
				if (strcmp(st->builds[bi].dir, dir) == 0) {
					st->builds[bi].settings = (long)si;
					free(st->builds[bi].project);
					st->builds[bi].project = ry_strdup(inc->project);
				}
			free(dir);
		}
		if (!included) {	/* a single-project build: the root is the project */
			const struct gradle_build *b = build_in(st, s->dir);
			if (b)
				(void)deps_candidate(c, s->dir, "gradle", NULL, b->path, 1,
						     "build.gradle", 20);
		}
	}
	/* build files no settings own: standalone projects, unless below a
	 * multi-project build (then they are not part of it: say so) */
	for (size_t bi = 0; bi < st->nbuilds; bi++) {
		struct gradle_build *b = &st->builds[bi];
		if (b->settings >= 0)
			continue;
		bool root_of_settings = false, below = false;
		for (size_t si = 0; si < st->nsettings; si++) {
			root_of_settings |= strcmp(st->settings[si].dir, b->dir) == 0;
			below |= deps_path_in(b->dir, st->settings[si].dir) &&
				 strcmp(st->settings[si].dir, b->dir) != 0;
		}
		if (root_of_settings)
			continue;
		if (below && strcmp(deps_basename(b->dir), "buildSrc") != 0)
			deps_note(c, "%s: not included by its settings.gradle, not a service", b->path);
		else if (!below)
			(void)deps_candidate(c, b->dir, "gradle", NULL, b->path, 1, "build.gradle", 20);
	}
}

static bool test_config(const char *config)
{
	return strncmp(config, "test", 4) == 0 || strstr(config, "Test") != NULL;
}

static void link(struct deps_ctx *c)
{
	struct gradle_state *st = state(c);
	for (size_t bi = 0; bi < st->nbuilds; bi++) {
		const struct gradle_build *b = &st->builds[bi];
		if (b->settings < 0 || !b->project)
			continue;
		const struct gradle_settings *s = &st->settings[b->settings];
		size_t from = deps_service_owning(c, b->path);
		for (size_t k = 0; k < b->n; k++) {
			const struct gradle_dep *d = &b->deps[k];
			enum ry_deps_kind kind = test_config(d->config) ? RY_DEPS_TEST : RY_DEPS_BUILD;
			char *detector = ry_asprintf("gradle %s", d->config);
			size_t to;
			if (d->accessor) {
				char *path = ry_strdup(d->target);
				for (char *p = path; *p; p++)
					if (*p == '.')
						*p = ':';
				char *full = ry_asprintf(":%s", path);
				char *key = alias_of(s->dir, full);
				char *norm = normalized(key);
				to = deps_lookup(c, NS_GRADLE_NORM, norm);
				free(norm);
				free(key);
				free(full);
				free(path);
			} else {
				char *full = d->target[0] == ':' ? ry_strdup(d->target)
								 : ry_asprintf("%s:%s", b->project, d->target);
				char *key = alias_of(s->dir, full);
				to = deps_lookup(c, NS_GRADLE, key);
				free(key);
				free(full);
			}
			if (to == DEPS_NONE)
				deps_warn(c, b->path, d->line, "%s%s: no such project in %s",
					  d->accessor ? "projects." : "project ", d->target, s->path);
			deps_edge(c, from, to, kind, detector, b->path, d->line);
			free(detector);
		}
	}
	static const char *const shared[] = { "settings.gradle", "settings.gradle.kts",
		"build.gradle", "build.gradle.kts", "gradle.properties", "gradle/**", "buildSrc/**",
		NULL };
	for (size_t si = 0; si < st->nsettings; si++) {
		const struct gradle_settings *s = &st->settings[si];
		bool root_is_service = deps_service_at(c, s->dir) != DEPS_NONE &&
				       strcmp(c->g->services[deps_service_at(c, s->dir)].ecosystem,
					      "gradle") == 0;
		for (const char *const *f = shared; *f; f++) {
			if (root_is_service && strncmp(*f, "build.gradle", 12) == 0)
				continue;	/* the root project's own build file */
			char *glob = strcmp(s->dir, ".") == 0 ? ry_strdup(*f)
							       : ry_asprintf("%s/%s", s->dir, *f);
			deps_shared_ecosystem(c, glob, s->dir, "gradle", "gradle build file");
			free(glob);
		}
	}
}

static void release(struct deps_ctx *c)
{
	struct gradle_state *st = c->state[DET_GRADLE];
	if (!st)
		return;
	for (size_t i = 0; i < st->nsettings; i++) {
		for (size_t k = 0; k < st->settings[i].n; k++) {
			free(st->settings[i].inc[k].project);
			free(st->settings[i].inc[k].dir);
		}
		free(st->settings[i].inc);
		free(st->settings[i].path);
		free(st->settings[i].dir);
	}
	free(st->settings);
	for (size_t i = 0; i < st->nbuilds; i++) {
		for (size_t k = 0; k < st->builds[i].n; k++) {
			free(st->builds[i].deps[k].config);
			free(st->builds[i].deps[k].target);
		}
		free(st->builds[i].deps);
		free(st->builds[i].path);
		free(st->builds[i].dir);
		free(st->builds[i].project);
	}
	free(st->builds);
	ry_match_free(st->include_re);
	ry_match_free(st->string_re);
	ry_match_free(st->dir_re);
	ry_match_free(st->dep_re);
	ry_match_free(st->accessor_re);
	free(st);
	c->state[DET_GRADLE] = NULL;
}

const struct deps_detector deps_detector_gradle = {
	.name = "gradle",
	.wants = wants,
	.parse = parse,
	.declare = declare,
	.link = link,
	.release = release,
};
