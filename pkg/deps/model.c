/*
 * The scan's phases (detect.h) and the model they build: candidates become
 * services, found edges are merged with their evidence, declarations from
 * railyard.yaml and the database are applied, everything is sorted.  Also
 * the cycle checks, over pkg/graph.
 */
#include "deps/detect.h"
#include "graph/graph.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MESSAGES 2000	/* warnings and notes kept; more are counted */
#define MAX_NAME 150		/* "integration:" + name stays a valid task name */

static const struct deps_detector *const detectors[DET_COUNT] = {
	[DET_ENV] = &deps_detector_env,
	[DET_GO] = &deps_detector_go,
	[DET_NODE] = &deps_detector_node,
	[DET_MAVEN] = &deps_detector_maven,
	[DET_GRADLE] = &deps_detector_gradle,
	[DET_DOTNET] = &deps_detector_dotnet,
	[DET_PYTHON] = &deps_detector_python,
	[DET_PROTO] = &deps_detector_proto,
	[DET_COMPOSE] = &deps_detector_compose,
	[DET_K8S] = &deps_detector_k8s,
	[DET_DOCKER] = &deps_detector_docker,
};

static const char *const kind_names[RY_DEPS_NKINDS] = { "build", "test", "runtime" };
static const char *const task_names[RY_DEPS_NTASKS] = { "build", "test", "deploy",
	"integration" };

const char *ry_deps_kind_name(enum ry_deps_kind kind)
{
	return (unsigned)kind < RY_DEPS_NKINDS ? kind_names[kind] : "?";
}

bool ry_deps_kind_parse(const char *s, enum ry_deps_kind *kind)
{
	for (int k = 0; k < RY_DEPS_NKINDS; k++) {
		if (s && strcmp(s, kind_names[k]) == 0) {
			*kind = (enum ry_deps_kind)k;
			return true;
		}
	}
	return false;
}

const char *ry_deps_task_name(enum ry_deps_task t)
{
	return (unsigned)t < RY_DEPS_NTASKS ? task_names[t] : "?";
}

/* ---- messages ----------------------------------------------------------------- */

static void add_message(struct ry_strlist *l, char *msg)
{
	if (l->n < MAX_MESSAGES)
		ry_strlist_add(l, msg);
	else if (l->n == MAX_MESSAGES)
		ry_strlist_add(l, "(more messages left out)");
	free(msg);
}

void deps_warn(struct deps_ctx *c, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	struct ry_buf b = RY_BUF_INIT;
	char msg[1024];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		ry_buf_printf(&b, "%s:%d: %s", file, line, msg);
	else
		ry_buf_printf(&b, "%s: %s", file, msg);
	add_message(&c->g->warnings, ry_buf_detach(&b));
}

void deps_note(struct deps_ctx *c, const char *fmt, ...)
{
	va_list ap;
	char msg[1024];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	add_message(&c->g->notes, ry_strdup(msg));
}

/* ---- candidates ----------------------------------------------------------------- */

struct deps_cand *deps_candidate(struct deps_ctx *c, const char *dir, const char *ecosystem,
				 const char *name, const char *manifest, int line,
				 const char *detector, int rank)
{
	if (c->ncands == c->capcands) {
		c->capcands = c->capcands ? 2 * c->capcands : 64;
		c->cands = ry_realloc(c->cands, c->capcands * sizeof(*c->cands));
	}
	struct deps_cand *cand = &c->cands[c->ncands++];
	memset(cand, 0, sizeof(*cand));
	cand->dir = ry_strdup(dir);
	cand->ecosystem = ry_strdup(ecosystem);
	cand->name = name && *name ? ry_strdup(name) : NULL;
	cand->manifest = manifest ? ry_strdup(manifest) : NULL;
	cand->line = line;
	cand->detector = ry_strdup(detector);
	cand->rank = rank;
	return cand;
}

void deps_cand_alias(struct deps_cand *cand, enum deps_ns ns, const char *key)
{
	if (!key || !*key)
		return;
	cand->aliases = ry_realloc(cand->aliases, (cand->naliases + 1) * sizeof(*cand->aliases));
	cand->aliases[cand->naliases].ns = ns;
	cand->aliases[cand->naliases].key = ry_strdup(key);
	cand->naliases++;
}

static void cand_release(struct deps_cand *cand)
{
	free(cand->dir);
	free(cand->ecosystem);
	free(cand->name);
	free(cand->manifest);
	free(cand->detector);
	for (size_t i = 0; i < cand->naliases; i++)
		free(cand->aliases[i].key);
	free(cand->aliases);
}

/* ---- services ------------------------------------------------------------------- */

/* Letters, digits and _ . : / @ + = -, others become "-"; at most MAX_NAME. */
static char *sanitize_name(const char *s)
{
	size_t n = strlen(s);
	if (n > MAX_NAME)
		n = MAX_NAME;
	char *out = ry_strndup(s, n);
	for (char *p = out; *p; p++)
		if (!(isalnum((unsigned char)*p) || strchr("_.:/@+=-", *p)))
			*p = '-';
	if (!*out) {
		free(out);
		out = ry_strdup("service");
	}
	return out;
}

static bool name_taken(const struct deps_ctx *c, const char *name)
{
	return deps_map_get(&c->names, name) != DEPS_NONE;
}

static char *unique_name(const struct deps_ctx *c, const char *want)
{
	char *base = sanitize_name(want);
	if (!name_taken(c, base))
		return base;
	for (int i = 2;; i++) {
		char *alt = ry_asprintf("%s-%d", base, i);
		if (!name_taken(c, alt)) {
			free(base);
			return alt;
		}
		free(alt);
	}
}

static size_t new_service(struct deps_ctx *c, char *name, const char *root, const char *eco,
			  const char *manifest, int line, const char *detector)
{
	struct ry_deps_graph *g = c->g;
	g->services = ry_realloc(g->services, (g->nservices + 1) * sizeof(*g->services));
	size_t s = g->nservices++;
	struct ry_deps_service *svc = &g->services[s];
	memset(svc, 0, sizeof(*svc));
	svc->name = name;
	svc->root = root ? ry_strdup(root) : NULL;
	svc->ecosystem = ry_strdup(eco);
	svc->manifest = manifest ? ry_strdup(manifest) : NULL;
	svc->line = line;
	svc->detector = ry_strdup(detector);
	svc->owns_root = root != NULL;
	deps_map_put(&c->names, name, s, false);
	if (root)
		deps_map_put(&c->roots, root, s, false);
	if (manifest)
		deps_map_put(&c->manifests, manifest, s, false);
	deps_alias(c, NS_HOST, name, s);
	return s;
}

size_t deps_add_late_service(struct deps_ctx *c, const char *name, const char *root,
			     const char *ecosystem, const char *manifest, int line,
			     const char *detector)
{
	return new_service(c, unique_name(c, name), root, ecosystem, manifest, line, detector);
}

static int cmp_cand(const void *a, const void *b)
{
	const struct deps_cand *x = a, *y = b;
	int d = strcmp(x->dir, y->dir);
	if (d)
		return d;
	if (x->rank != y->rank)
		return x->rank - y->rank;
	return strcmp(x->manifest ? x->manifest : "", y->manifest ? y->manifest : "");
}

/* Whether dir lies strictly below a directory in strong. */
static bool below_strong(const struct deps_map *strong, const char *dir)
{
	if (strcmp(dir, ".") == 0)
		return false;
	char *p = deps_dirname(dir);
	bool hit = false;
	for (;;) {
		if (deps_map_get(strong, p) != DEPS_NONE) {
			hit = true;
			break;
		}
		if (strcmp(p, ".") == 0)
			break;
		char *up = deps_dirname(p);
		free(p);
		p = up;
	}
	free(p);
	return hit;
}

/* Services from candidates: one per directory, the lowest rank names it. */
static void form_services(struct deps_ctx *c)
{
	qsort(c->cands, c->ncands, sizeof(*c->cands), cmp_cand);

	struct deps_map strong = { 0 };
	for (size_t i = 0; i < c->ncands; i++)
		if (!c->cands[i].weak)
			deps_map_put(&strong, c->cands[i].dir, 1, false);

	/* group starts, kept groups and their wanted names */
	size_t ngroups = 0;
	size_t *start = ry_malloc((c->ncands + 1) * sizeof(size_t));
	for (size_t i = 0; i < c->ncands; i++)
		if (i == 0 || strcmp(c->cands[i].dir, c->cands[i - 1].dir) != 0)
			start[ngroups++] = i;
	start[ngroups] = c->ncands;

	bool *keep = ry_calloc(ngroups + 1, sizeof(bool));
	char **want = ry_calloc(ngroups + 1, sizeof(char *));
	struct deps_map count = { 0 };
	for (size_t gi = 0; gi < ngroups; gi++) {
		const struct deps_cand *first = &c->cands[start[gi]];
		bool all_weak = true;
		for (size_t i = start[gi]; i < start[gi + 1]; i++)
			all_weak &= c->cands[i].weak;
		if (all_weak && below_strong(&strong, first->dir)) {
			deps_note(c, "%s: %s inside another service, not a service of its own",
				  first->manifest ? first->manifest : first->dir, first->detector);
			continue;
		}
		keep[gi] = true;
		const struct deps_cand *primary = first;
		if (first->weak)	/* a strong candidate in the same directory names it */
			for (size_t i = start[gi]; i < start[gi + 1]; i++)
				if (!c->cands[i].weak) {
					primary = &c->cands[i];
					break;
				}
		const char *nm = primary->name;
		if (!nm)
			nm = strcmp(first->dir, ".") == 0 ? c->root_name : deps_basename(first->dir);
		want[gi] = sanitize_name(nm);
		size_t k = deps_map_get(&count, want[gi]);
		deps_map_put(&count, want[gi], k == DEPS_NONE ? 1 : k + 1, false);
	}

	for (size_t gi = 0; gi < ngroups; gi++) {
		if (!keep[gi])
			continue;
		const struct deps_cand *first = &c->cands[start[gi]];
		const struct deps_cand *primary = first;
		for (size_t i = start[gi]; i < start[gi + 1] && primary->weak; i++)
			if (!c->cands[i].weak)
				primary = &c->cands[i];
		/* Two services wanting one name are both called by their roots. */
		const char *nm = deps_map_get(&count, want[gi]) > 1 && strcmp(first->dir, ".") != 0
					 ? first->dir : want[gi];
		size_t s = new_service(c, unique_name(c, nm), first->dir, primary->ecosystem,
				       primary->manifest, primary->line, primary->detector);
		struct ry_deps_service *svc = &c->g->services[s];
		svc->owns_root = !primary->aggregator;
		for (size_t i = start[gi]; i < start[gi + 1]; i++) {
			const struct deps_cand *cand = &c->cands[i];
			svc->has_dockerfile |= cand->dockerfile;
			if (cand->manifest)
				deps_map_put(&c->manifests, cand->manifest, s, false);
			for (size_t a = 0; a < cand->naliases; a++)
				deps_alias(c, cand->aliases[a].ns, cand->aliases[a].key, s);
			if (cand->name)
				deps_alias(c, NS_HOST, cand->name, s);
		}
		if (strcmp(first->dir, ".") != 0)
			deps_alias(c, NS_HOST, deps_basename(first->dir), s);
	}
	for (size_t gi = 0; gi < ngroups; gi++)
		free(want[gi]);
	free(want);
	free(keep);
	free(start);
	deps_map_release(&count);
	deps_map_release(&strong);
	c->nservices_detected = c->g->nservices;
}

/* ---- lookups -------------------------------------------------------------------- */

/* Host, package and image names compare without case. */
static char *alias_key(enum deps_ns ns, const char *key)
{
	char *k = ry_strdup(key);
	if (ns == NS_HOST || ns == NS_NUGET || ns == NS_IMAGE || ns == NS_IMAGE_LAST)
		for (char *p = k; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	return k;
}

void deps_alias(struct deps_ctx *c, enum deps_ns ns, const char *key, size_t s)
{
	if (!key || !*key || s >= c->g->nservices)
		return;
	char *k = alias_key(ns, key);
	deps_map_put(&c->alias[ns], k, s, true);
	free(k);
}

static size_t usable(const struct deps_ctx *c, size_t s)
{
	if (s >= c->g->nservices || c->g->services[s].excluded)
		return DEPS_NONE;
	return s;
}

size_t deps_lookup(const struct deps_ctx *c, enum deps_ns ns, const char *key)
{
	if (!key || !*key)
		return DEPS_NONE;
	char *k = alias_key(ns, key);
	size_t s = deps_map_get(&c->alias[ns], k);
	free(k);
	return usable(c, s);
}

size_t deps_service_at(const struct deps_ctx *c, const char *dir)
{
	return usable(c, deps_map_get(&c->roots, dir));
}

size_t deps_service_owning(const struct deps_ctx *c, const char *path)
{
	char *p = ry_strdup(path);
	size_t s = DEPS_NONE;
	for (;;) {
		s = usable(c, deps_map_get(&c->roots, p));
		if (s != DEPS_NONE || strcmp(p, ".") == 0)
			break;
		char *up = deps_dirname(p);
		free(p);
		p = up;
	}
	free(p);
	return s;
}

size_t deps_service_of_manifest(const struct deps_ctx *c, const char *manifest)
{
	return usable(c, deps_map_get(&c->manifests, manifest));
}

/* ---- edges and paths as found ---------------------------------------------------- */

void deps_edge(struct deps_ctx *c, size_t from, size_t to, enum ry_deps_kind kind,
	       const char *detector, const char *file, int line)
{
	if (usable(c, from) == DEPS_NONE || usable(c, to) == DEPS_NONE || from == to)
		return;
	if (c->nfound == c->capfound) {
		c->capfound = c->capfound ? 2 * c->capfound : 256;
		c->found = ry_realloc(c->found, c->capfound * sizeof(*c->found));
	}
	struct deps_found_edge *e = &c->found[c->nfound++];
	e->from = from;
	e->to = to;
	e->kind = kind;
	e->detector = ry_strdup(detector);
	e->file = file ? ry_strdup(file) : NULL;
	e->line = line;
}

static void add_path(struct deps_ctx *c, const char *glob, size_t s, const char *why, bool deploy)
{
	if (usable(c, s) == DEPS_NONE || !glob || !*glob)
		return;
	if (c->nfpaths == c->capfpaths) {
		c->capfpaths = c->capfpaths ? 2 * c->capfpaths : 64;
		c->fpaths = ry_realloc(c->fpaths, c->capfpaths * sizeof(*c->fpaths));
	}
	struct deps_found_path *p = &c->fpaths[c->nfpaths++];
	p->glob = ry_strdup(glob);
	p->service = s;
	p->why = ry_strdup(why);
	p->deploy = deploy;
}

void deps_shared(struct deps_ctx *c, const char *glob, size_t s, const char *why)
{
	add_path(c, glob, s, why, false);
}

void deps_deploy_path(struct deps_ctx *c, const char *file, size_t s, const char *why)
{
	add_path(c, file, s, why, true);
}

void deps_shared_ecosystem(struct deps_ctx *c, const char *glob, const char *dir,
			   const char *eco, const char *why)
{
	for (size_t s = 0; s < c->g->nservices; s++) {
		const struct ry_deps_service *svc = &c->g->services[s];
		if (svc->root && strcmp(svc->ecosystem, eco) == 0 && deps_path_in(svc->root, dir))
			deps_shared(c, glob, s, why);
	}
}

/* ---- declarations ---------------------------------------------------------------- */

static void set_str(char **dst, const char *v)
{
	char *copy = v ? ry_strdup(v) : NULL;
	free(*dst);
	*dst = copy;
}

static void declare_services(struct deps_ctx *c, const struct ry_deps_config *cfg)
{
	if (!cfg)
		return;
	const char *src = cfg->source ? cfg->source : "railyard.yaml";
	for (size_t i = 0; i < cfg->nservices; i++) {
		const struct ry_deps_decl_service *d = &cfg->services[i];
		size_t s = deps_map_get(&c->names, d->name);
		if (s == DEPS_NONE && d->root)	/* the detected service at that root, renamed */
			s = deps_map_get(&c->roots, d->root);
		if (s == DEPS_NONE || s >= c->g->nservices) {
			char *name = sanitize_name(d->name);
			s = new_service(c, name, d->root, d->ecosystem ? d->ecosystem : "other",
					NULL, 0, src);
		}
		struct ry_deps_service *svc = &c->g->services[s];
		if (strcmp(svc->name, d->name) != 0) {
			deps_map_put(&c->names, svc->name, DEPS_NONE, false);
			set_str(&svc->name, d->name);
			deps_map_put(&c->names, svc->name, s, false);
			deps_alias(c, NS_HOST, svc->name, s);
		}
		if (d->root && (!svc->root || strcmp(svc->root, d->root) != 0)) {
			if (svc->root)
				deps_map_put(&c->roots, svc->root, DEPS_NONE, false);
			set_str(&svc->root, d->root);
			deps_map_put(&c->roots, svc->root, s, false);
			svc->owns_root = true;
		}
		if (d->ecosystem)
			set_str(&svc->ecosystem, d->ecosystem);
		if (d->team)
			set_str(&svc->team, d->team);
		set_str(&svc->detector, src);
		svc->is_explicit = true;
		svc->decl_line = d->line;
		svc->excluded = d->exclude;
		if (d->exclude && svc->root)
			deps_map_put(&c->roots, svc->root, DEPS_NONE, false);
	}
}

static long find_edge(const struct ry_deps_graph *g, size_t from, size_t to, enum ry_deps_kind k)
{
	for (size_t i = 0; i < g->nedges; i++)
		if (g->edges[i].from == from && g->edges[i].to == to && g->edges[i].kind == k)
			return (long)i;
	return -1;
}

static struct ry_deps_edge *append_edge(struct ry_deps_graph *g)
{
	g->edges = ry_realloc(g->edges, (g->nedges + 1) * sizeof(*g->edges));
	struct ry_deps_edge *e = &g->edges[g->nedges++];
	memset(e, 0, sizeof(*e));
	return e;
}

static void declare_edges(struct deps_ctx *c, const struct ry_deps_config *cfg)
{
	if (!cfg)
		return;
	const char *src = cfg->source ? cfg->source : "railyard.yaml";
	bool is_file = strcmp(src, "database") != 0;
	for (size_t i = 0; i < cfg->nedges; i++) {
		const struct ry_deps_decl_edge *d = &cfg->edges[i];
		size_t from = usable(c, deps_map_get(&c->names, d->from));
		size_t to = usable(c, deps_map_get(&c->names, d->to));
		if (from == DEPS_NONE || to == DEPS_NONE) {
			deps_warn(c, src, d->line, "dependency %s -> %s: no service named \"%s\"",
				  d->from, d->to, from == DEPS_NONE ? d->from : d->to);
			continue;
		}
		long at = find_edge(c->g, from, to, d->kind);
		struct ry_deps_edge *e;
		if (at >= 0) {
			e = &c->g->edges[at];
			if (e->file && !e->is_explicit) {	/* keep what detection found, first */
				char *ev = ry_asprintf("%s:%d", e->file, e->line);
				ry_strlist_add(&e->more, ev);
				free(ev);
				char *last = e->more.items[e->more.n - 1];
				memmove(e->more.items + 1, e->more.items,
					(e->more.n - 1) * sizeof(char *));
				e->more.items[0] = last;
			}
		} else {
			e = append_edge(c->g);
			e->from = from;
			e->to = to;
			e->kind = d->kind;
		}
		e->is_explicit = true;
		e->suppressed = d->suppress;
		set_str(&e->detector, src);
		set_str(&e->file, is_file ? src : NULL);
		e->line = is_file ? d->line : 0;
	}
}

static void declare_shared(struct deps_ctx *c, const struct ry_deps_config *cfg)
{
	if (!cfg)
		return;
	const char *src = cfg->source ? cfg->source : "railyard.yaml";
	for (size_t i = 0; i < cfg->nshared; i++) {
		const struct ry_deps_decl_shared *d = &cfg->shared[i];
		char *why = d->line > 0 ? ry_asprintf("%s:%d shared", src, d->line)
					: ry_asprintf("%s shared", src);
		for (size_t a = 0; a < d->affects.n; a++) {
			const char *what = d->affects.items[a];
			bool all = strcmp(what, "all") == 0;
			bool eco = strncmp(what, "ecosystem:", 10) == 0;
			size_t hits = 0;
			for (size_t s = 0; s < c->g->nservices; s++) {
				const struct ry_deps_service *svc = &c->g->services[s];
				if (svc->excluded)
					continue;
				if (all || (eco && strcmp(svc->ecosystem, what + 10) == 0) ||
				    (!all && !eco && strcmp(svc->name, what) == 0)) {
					for (size_t k = 0; k < d->globs.n; k++)
						deps_shared(c, d->globs.items[k], s, why);
					hits++;
				}
			}
			if (!hits && !all)
				deps_warn(c, src, d->line, "shared paths: %s names no service", what);
		}
		free(why);
	}
}

/* ---- merging and sorting ------------------------------------------------------------ */

static int cmp_found(const void *a, const void *b)
{
	const struct deps_found_edge *x = a, *y = b;
	if (x->from != y->from)
		return x->from < y->from ? -1 : 1;
	if (x->to != y->to)
		return x->to < y->to ? -1 : 1;
	if (x->kind != y->kind)
		return (int)x->kind - (int)y->kind;
	int d = strcmp(x->file ? x->file : "", y->file ? y->file : "");
	if (d)
		return d;
	return x->line - y->line;
}

static void merge_edges(struct deps_ctx *c)
{
	qsort(c->found, c->nfound, sizeof(*c->found), cmp_found);
	for (size_t i = 0; i < c->nfound; i++) {
		const struct deps_found_edge *f = &c->found[i];
		struct ry_deps_edge *e;
		if (i > 0 && f->from == f[-1].from && f->to == f[-1].to && f->kind == f[-1].kind) {
			e = &c->g->edges[c->g->nedges - 1];
			char *ev = ry_asprintf("%s:%d", f->file ? f->file : "?", f->line);
			bool same = e->file && f->file && strcmp(e->file, f->file) == 0 &&
				    e->line == f->line;
			if (!same && !ry_strlist_has(&e->more, ev))
				ry_strlist_add(&e->more, ev);
			free(ev);
			continue;
		}
		e = append_edge(c->g);
		e->from = f->from;
		e->to = f->to;
		e->kind = f->kind;
		e->detector = ry_strdup(f->detector);
		e->file = f->file ? ry_strdup(f->file) : NULL;
		e->line = f->line;
	}
}

static void finish_paths(struct deps_ctx *c)
{
	struct deps_map seen = { 0 };
	struct ry_deps_graph *g = c->g;
	for (size_t i = 0; i < c->nfpaths; i++) {
		const struct deps_found_path *f = &c->fpaths[i];
		char *key = ry_asprintf("%zu\x1f%s", f->service, f->glob);
		bool dup = deps_map_get(&seen, key) != DEPS_NONE;
		deps_map_put(&seen, key, 1, false);
		free(key);
		if (dup)
			continue;
		g->paths = ry_realloc(g->paths, (g->npaths + 1) * sizeof(*g->paths));
		struct ry_deps_path *p = &g->paths[g->npaths++];
		p->glob = ry_strdup(f->glob);
		p->regex = ry_deps_glob_regex(f->glob);
		p->service = f->service;
		p->why = ry_strdup(f->why);
		p->is_explicit = strstr(f->why, " shared") != NULL;
		p->deploy = f->deploy;
	}
	deps_map_release(&seen);
}

static const struct ry_deps_graph *sort_graph_g;

static int cmp_service_ix(const void *a, const void *b)
{
	const size_t *x = a, *y = b;
	return strcmp(sort_graph_g->services[*x].name, sort_graph_g->services[*y].name);
}

static int cmp_edge(const void *a, const void *b)
{
	const struct ry_deps_edge *x = a, *y = b;
	if (x->from != y->from)
		return x->from < y->from ? -1 : 1;
	if (x->to != y->to)
		return x->to < y->to ? -1 : 1;
	return (int)x->kind - (int)y->kind;
}

static int cmp_path(const void *a, const void *b)
{
	const struct ry_deps_path *x = a, *y = b;
	if (x->service != y->service)
		return x->service < y->service ? -1 : 1;
	return strcmp(x->glob, y->glob);
}

/* Services by name; edges and paths renumbered and sorted with them. */
static void sort_graph(struct ry_deps_graph *g)
{
	size_t n = g->nservices;
	size_t *order = ry_malloc((n ? n : 1) * sizeof(size_t));
	size_t *where = ry_malloc((n ? n : 1) * sizeof(size_t));
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	sort_graph_g = g;
	qsort(order, n, sizeof(size_t), cmp_service_ix);
	sort_graph_g = NULL;
	struct ry_deps_service *sorted = ry_malloc((n ? n : 1) * sizeof(*sorted));
	for (size_t i = 0; i < n; i++) {
		sorted[i] = g->services[order[i]];
		where[order[i]] = i;
	}
	free(g->services);
	g->services = sorted;
	for (size_t i = 0; i < g->nedges; i++) {
		g->edges[i].from = where[g->edges[i].from];
		g->edges[i].to = where[g->edges[i].to];
	}
	for (size_t i = 0; i < g->npaths; i++)
		g->paths[i].service = where[g->paths[i].service];
	qsort(g->edges, g->nedges, sizeof(*g->edges), cmp_edge);
	qsort(g->paths, g->npaths, sizeof(*g->paths), cmp_path);
	free(order);
	free(where);
}

/* Edges that touch an excluded service are no part of the graph. */
static void drop_excluded_edges(struct ry_deps_graph *g)
{
	size_t k = 0;
	for (size_t i = 0; i < g->nedges; i++) {
		struct ry_deps_edge *e = &g->edges[i];
		if (g->services[e->from].excluded || g->services[e->to].excluded) {
			free(e->detector);
			free(e->file);
			ry_strlist_release(&e->more);
			continue;
		}
		g->edges[k++] = *e;
	}
	g->nedges = k;
	k = 0;
	for (size_t i = 0; i < g->npaths; i++) {
		struct ry_deps_path *p = &g->paths[i];
		if (g->services[p->service].excluded) {
			free(p->glob);
			free(p->regex);
			free(p->why);
			continue;
		}
		g->paths[k++] = *p;
	}
	g->npaths = k;
}

/* ---- the scan ---------------------------------------------------------------------- */

void deps_scan(struct deps_source *src, const struct ry_strlist *files, const char *root_name,
	       const struct ry_deps_config *cfg, const struct ry_deps_config *extra,
	       struct ry_deps_graph *g)
{
	struct deps_ctx c = { .src = src, .g = g, .cfg = cfg, .root_name = root_name };
	struct ry_buf buf = RY_BUF_INIT;

	for (size_t i = 0; i < files->n; i++) {
		const char *path = files->items[i];
		const char *base = deps_basename(path);
		for (int d = 0; d < DET_COUNT; d++) {
			if (!detectors[d]->wants(path, base))
				continue;
			char *err = NULL;
			ry_buf_reset(&buf);
			if (!src->read(src, path, &buf, &err)) {
				deps_warn(&c, path, 0, "%s", err);
				free(err);
			} else {
				g->files_read++;
				detectors[d]->parse(&c, path, buf.data ? buf.data : "", buf.len);
			}
			break;
		}
	}
	ry_buf_release(&buf);

	for (int d = 0; d < DET_COUNT; d++)
		if (detectors[d]->declare)
			detectors[d]->declare(&c);
	form_services(&c);
	declare_services(&c, cfg);
	declare_services(&c, extra);
	for (int d = 0; d < DET_COUNT; d++)
		if (detectors[d]->late)
			detectors[d]->late(&c);
	for (int d = 0; d < DET_COUNT; d++)
		if (detectors[d]->link)
			detectors[d]->link(&c);
	merge_edges(&c);
	declare_edges(&c, cfg);
	declare_edges(&c, extra);
	declare_shared(&c, cfg);
	declare_shared(&c, extra);
	finish_paths(&c);
	drop_excluded_edges(g);
	sort_graph(g);

	for (int d = 0; d < DET_COUNT; d++)
		detectors[d]->release(&c);
	for (size_t i = 0; i < c.ncands; i++)
		cand_release(&c.cands[i]);
	free(c.cands);
	for (size_t i = 0; i < c.nfound; i++) {
		free(c.found[i].detector);
		free(c.found[i].file);
	}
	free(c.found);
	for (size_t i = 0; i < c.nfpaths; i++) {
		free(c.fpaths[i].glob);
		free(c.fpaths[i].why);
	}
	free(c.fpaths);
	deps_map_release(&c.roots);
	deps_map_release(&c.manifests);
	deps_map_release(&c.names);
	deps_map_release(&c.contexts);
	for (int ns = 0; ns < NS_COUNT; ns++)
		deps_map_release(&c.alias[ns]);
}

bool deps_skip_dir(const char *name)
{
	static const char *const skipped[] = { "node_modules", "vendor", "target", "bin", "obj",
		"__pycache__", "venv", "bower_components", "testdata", "Pods", NULL };
	if (name[0] == '.')
		return true;	/* .git, .venv, .idea, .railyard, ... */
	for (const char *const *s = skipped; *s; s++)
		if (strcmp(name, *s) == 0)
			return true;
	return false;
}

bool deps_wanted(const char *path)
{
	const char *base = deps_basename(path);
	for (int d = 0; d < DET_COUNT; d++)
		if (detectors[d]->wants(path, base))
			return true;
	return false;
}

void deps_filter_init(struct deps_filter *f, const struct ry_deps_config *cfg)
{
	memset(f, 0, sizeof(*f));
	if (!cfg || !cfg->ignore.n)
		return;
	f->m = ry_calloc(cfg->ignore.n, sizeof(*f->m));
	for (size_t i = 0; i < cfg->ignore.n; i++) {
		char *re = ry_deps_glob_regex(cfg->ignore.items[i]), *err = NULL;
		f->m[f->n] = ry_match_compile(re, &err);
		if (f->m[f->n])
			f->n++;
		free(err);
		free(re);
	}
}

bool deps_filter_hit(const struct deps_filter *f, const char *path)
{
	if (!f->n)
		return false;
	size_t len = strlen(path);
	char *bare = len > 1 && path[len - 1] == '/' ? ry_strndup(path, len - 1) : NULL;
	bool hit = false;
	for (size_t i = 0; i < f->n && !hit; i++)
		hit = ry_match_test(f->m[i], path) || (bare && ry_match_test(f->m[i], bare));
	free(bare);
	return hit;
}

void deps_filter_release(struct deps_filter *f)
{
	for (size_t i = 0; i < f->n; i++)
		ry_match_free(f->m[i]);
	free(f->m);
	memset(f, 0, sizeof(*f));
}

/* ---- the graph's public helpers ------------------------------------------------------ */

void ry_deps_graph_release(struct ry_deps_graph *g)
{
	for (size_t i = 0; i < g->nservices; i++) {
		struct ry_deps_service *s = &g->services[i];
		free(s->name);
		free(s->root);
		free(s->ecosystem);
		free(s->manifest);
		free(s->detector);
		free(s->team);
		free(s->deploy_file);
		free(s->deploy_name);
	}
	free(g->services);
	for (size_t i = 0; i < g->nedges; i++) {
		free(g->edges[i].detector);
		free(g->edges[i].file);
		ry_strlist_release(&g->edges[i].more);
	}
	free(g->edges);
	for (size_t i = 0; i < g->npaths; i++) {
		free(g->paths[i].glob);
		free(g->paths[i].regex);
		free(g->paths[i].why);
	}
	free(g->paths);
	ry_strlist_release(&g->warnings);
	ry_strlist_release(&g->notes);
	memset(g, 0, sizeof(*g));
}

long ry_deps_find_service(const struct ry_deps_graph *g, const char *name)
{
	size_t lo = 0, hi = g->nservices;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int d = strcmp(g->services[mid].name, name);
		if (d == 0)
			return (long)mid;
		if (d < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

bool ry_deps_edge_active(const struct ry_deps_graph *g, const struct ry_deps_edge *e)
{
	return !e->suppressed && !g->services[e->from].excluded && !g->services[e->to].excluded;
}

/* ---- cycles ---------------------------------------------------------------------------- */

static bool kind_in(enum ry_deps_kind k, bool runtime)
{
	return runtime ? k == RY_DEPS_RUNTIME : k != RY_DEPS_RUNTIME;
}

/* The graph of active edges of one family, minus the edges marked in skip. */
static bool family_graph(const struct ry_deps_graph *g, bool runtime, const bool *skip,
			 const bool *among, struct ry_graph *out)
{
	size_t *up = ry_malloc((g->nedges + 1) * sizeof(size_t));
	size_t *down = ry_malloc((g->nedges + 1) * sizeof(size_t));
	size_t m = 0;
	for (size_t i = 0; i < g->nedges; i++) {
		const struct ry_deps_edge *e = &g->edges[i];
		if (!ry_deps_edge_active(g, e) || !kind_in(e->kind, runtime) || (skip && skip[i]) ||
		    (among && (!among[e->from] || !among[e->to])))
			continue;
		up[m] = e->from;
		down[m] = e->to;
		m++;
	}
	bool ok = ry_graph_init(out, g->nservices, m, up, down);
	free(up);
	free(down);
	return ok;
}

/* The first active edge of the family from a to b not yet skipped. */
static long edge_between(const struct ry_deps_graph *g, size_t a, size_t b, bool runtime,
			 const bool *skip)
{
	for (size_t i = 0; i < g->nedges; i++) {
		const struct ry_deps_edge *e = &g->edges[i];
		if (e->from == a && e->to == b && kind_in(e->kind, runtime) && !skip[i] &&
		    ry_deps_edge_active(g, e))
			return (long)i;
	}
	return -1;
}

static void add_evidence(struct ry_buf *b, const struct ry_deps_edge *e)
{
	ry_buf_printf(b, "%s, ", ry_deps_kind_name(e->kind));
	if (e->file)
		ry_buf_printf(b, "%s:%d", e->file, e->line);
	else
		ry_buf_puts(b, e->detector ? e->detector : "declared");
}

static size_t report_family(const struct ry_deps_graph *g, bool runtime, const bool *among,
			    struct ry_strlist *out, size_t max)
{
	bool *skip = ry_calloc(g->nedges + 1, sizeof(bool));
	const char **names = ry_malloc((g->nservices + 1) * sizeof(char *));
	size_t found = 0;
	for (size_t i = 0; i < g->nservices; i++)
		names[i] = g->services[i].name;
	while (found < max) {
		struct ry_graph gr;
		size_t *cycle = NULL, len = 0;
		if (!family_graph(g, runtime, skip, among, &gr))
			break;
		len = ry_graph_find_cycle(&gr, &cycle);
		ry_graph_release(&gr);
		if (!len)
			break;
		long *edges = ry_malloc(len * sizeof(long));
		bool whole = true;
		for (size_t i = 0; i < len; i++) {
			edges[i] = edge_between(g, cycle[i], cycle[(i + 1) % len], runtime, skip);
			whole &= edges[i] >= 0;
		}
		if (!whole) {	/* cannot happen: the cycle follows edges of the family */
			free(edges);
			free(cycle);
			break;
		}
		struct ry_buf b = RY_BUF_INIT;
		ry_buf_puts(&b, runtime ? "runtime cycle (deploys are not ordered along it): "
					: "cycle: ");
		ry_graph_format_cycle(&b, names, cycle, len);
		ry_buf_puts(&b, " (");
		add_evidence(&b, &g->edges[edges[len - 1]]);
		ry_buf_putc(&b, ')');
		for (size_t i = 0; i < len && i < 2 * RY_GRAPH_CYCLE_SHOWN; i++) {
			const struct ry_deps_edge *e = &g->edges[edges[i]];
			ry_buf_printf(&b, "\n  %s -> %s: ", names[e->from], names[e->to]);
			add_evidence(&b, e);
		}
		ry_strlist_add(out, b.data);
		ry_buf_release(&b);
		skip[edges[len - 1]] = true;	/* look for another cycle without this edge */
		found++;
		free(edges);
		free(cycle);
	}
	free(names);
	free(skip);
	return found;
}

size_t ry_deps_check_cycles(const struct ry_deps_graph *g, const bool *among,
			    struct ry_strlist *errors, struct ry_strlist *warnings, size_t max)
{
	if (warnings)
		(void)report_family(g, true, among, warnings, max);
	if (!errors)
		return 0;
	return report_family(g, false, among, errors, max);
}

void ry_deps_runtime_cycle_edges(const struct ry_deps_graph *g, bool *on_cycle)
{
	struct ry_graph gr;
	memset(on_cycle, 0, g->nedges * sizeof(bool));
	if (!family_graph(g, true, NULL, NULL, &gr))
		return;
	size_t *order = ry_malloc((g->nservices + 1) * sizeof(size_t));
	bool *placed = ry_calloc(g->nservices + 1, sizeof(bool));
	size_t k = ry_graph_topo_order(&gr, order);
	for (size_t i = 0; i < k; i++)
		placed[order[i]] = true;
	if (k < g->nservices) {
		bool *mark = ry_malloc((g->nservices + 1) * sizeof(bool));
		for (size_t i = 0; i < g->nedges; i++) {
			const struct ry_deps_edge *e = &g->edges[i];
			if (e->kind != RY_DEPS_RUNTIME || !ry_deps_edge_active(g, e) ||
			    placed[e->from] || placed[e->to])
				continue;
			/* u -> v lies on a cycle when v reaches u */
			memset(mark, 0, g->nservices * sizeof(bool));
			(void)ry_graph_reach(&gr, &e->to, 1, RY_GRAPH_DOWNSTREAM, mark);
			on_cycle[i] = mark[e->from];
		}
		free(mark);
	}
	free(placed);
	free(order);
	ry_graph_release(&gr);
}

/* ---- address variables ------------------------------------------------------------------ */

void deps_address_edges(struct deps_ctx *c, size_t from, const char *name, const char *value,
			const struct deps_map *local, const char *detector, const char *file,
			int line)
{
	if (!name || !value || !deps_is_address_var(name))
		return;
	struct ry_strlist hosts = { 0 };
	deps_value_hosts(value, &hosts);
	for (size_t i = 0; i < hosts.n; i++) {
		size_t to = local ? usable(c, deps_map_get(local, hosts.items[i])) : DEPS_NONE;
		if (to == DEPS_NONE)
			to = deps_lookup(c, NS_HOST, hosts.items[i]);
		deps_edge(c, from, to, RY_DEPS_RUNTIME, detector, file, line);
	}
	ry_strlist_release(&hosts);
}
