/*
 * The scan's model: candidates become services (one per directory, strong
 * manifests over weak ones, unique names), the names others use for them,
 * and the edges and paths detectors record as they link.
 */
#include "deps/detect.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MESSAGES 2000	/* warnings and notes kept; more are counted */
#define MAX_NAME 150		/* "integration:" + name stays a valid task name */

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

void deps_cand_release(struct deps_cand *cand)
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
char *deps_sanitize_name(const char *s)
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
	char *base = deps_sanitize_name(want);
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

size_t deps_new_service(struct deps_ctx *c, char *name, const char *root, const char *eco,
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
	/* a service declared by that name is this one: it keeps what was declared */
	char *clean = deps_sanitize_name(name);
	size_t s = deps_map_get(&c->names, clean);
	free(clean);
	if (s < c->g->nservices && c->g->services[s].is_explicit) {
		struct ry_deps_service *svc = &c->g->services[s];
		if (!svc->root && root) {
			svc->root = ry_strdup(root);
			svc->owns_root = true;
			if (!svc->excluded)
				deps_map_put(&c->roots, root, s, false);
		}
		if (!svc->manifest && manifest) {
			svc->manifest = ry_strdup(manifest);
			svc->line = line;
		}
		return s;
	}
	return deps_new_service(c, unique_name(c, name), root, ecosystem, manifest, line, detector);
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

static bool in_map(void *arg, const char *dir)
{
	return deps_map_get(arg, dir) != DEPS_NONE;
}

/* Whether dir lies strictly below a directory in strong. */
static bool below_strong(const struct deps_map *strong, const char *dir)
{
	return deps_each_parent(dir, in_map, (void *)strong);
}

/* Services from candidates: one per directory, the lowest rank names it. */
void deps_form_services(struct deps_ctx *c)
{
	if (c->ncands > 1)
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
		want[gi] = deps_sanitize_name(nm);
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
		size_t s = deps_new_service(c, unique_name(c, nm), first->dir, primary->ecosystem,
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

size_t deps_usable(const struct deps_ctx *c, size_t s)
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
	return deps_usable(c, s);
}

size_t deps_service_at(const struct deps_ctx *c, const char *dir)
{
	return deps_usable(c, deps_map_get(&c->roots, dir));
}

size_t deps_service_owning(const struct deps_ctx *c, const char *path)
{
	char *p = ry_strdup(path);
	size_t s = DEPS_NONE;
	for (;;) {
		s = deps_usable(c, deps_map_get(&c->roots, p));
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
	return deps_usable(c, deps_map_get(&c->manifests, manifest));
}

/* ---- edges and paths as found ---------------------------------------------------- */

void deps_edge(struct deps_ctx *c, size_t from, size_t to, enum ry_deps_kind kind,
	       const char *detector, const char *file, int line)
{
	if (deps_usable(c, from) == DEPS_NONE || deps_usable(c, to) == DEPS_NONE || from == to)
		return;
	if (c->nfound == c->capfound) {
		c->capfound = c->capfound ? 2 * c->capfound : 256;
		c->found = ry_realloc(c->found, c->capfound * sizeof(*c->found));
	}
	struct deps_found_edge *e = &c->found[c->nfound];
	e->seq = c->nfound++;
	e->from = from;
	e->to = to;
	e->kind = kind;
	e->detector = ry_strdup(detector);
	e->file = file ? ry_strdup(file) : NULL;
	e->line = line;
}

static void add_path(struct deps_ctx *c, const char *glob, size_t s, const char *why, bool deploy)
{
	if (deps_usable(c, s) == DEPS_NONE || !glob || !*glob)
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

void deps_build_context(struct deps_ctx *c, const char *dockerfile, const char *dir)
{
	size_t ix = deps_map_get(&c->contexts, dockerfile);
	if (ix == DEPS_NONE) {
		ix = c->nctxlists++;
		c->ctxlists = ry_realloc(c->ctxlists, c->nctxlists * sizeof(*c->ctxlists));
		memset(&c->ctxlists[ix], 0, sizeof(*c->ctxlists));
		deps_map_put(&c->contexts, dockerfile, ix, false);
	}
	if (!ry_strlist_has(&c->ctxlists[ix], dir))
		ry_strlist_add(&c->ctxlists[ix], dir);
}

const struct ry_strlist *deps_build_contexts(const struct deps_ctx *c, const char *dockerfile)
{
	size_t ix = deps_map_get(&c->contexts, dockerfile);
	return ix < c->nctxlists ? &c->ctxlists[ix] : NULL;
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
		size_t to = local ? deps_usable(c, deps_map_get(local, hosts.items[i])) : DEPS_NONE;
		if (to == DEPS_NONE)
			to = deps_lookup(c, NS_HOST, hosts.items[i]);
		deps_edge(c, from, to, RY_DEPS_RUNTIME, detector, file, line);
	}
	ry_strlist_release(&hosts);
}
