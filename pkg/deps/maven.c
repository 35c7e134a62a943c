/*
 * Maven: every pom.xml is a service named by its artifactId; one with
 * packaging "pom" (a parent or aggregator) owns only its pom.xml.  Build
 * edges from <parent> and from <dependency> (default, compile, provided,
 * runtime, system and BOM imports) and build plugins naming a sibling
 * groupId:artifactId; test edges from <scope>test</scope>.  groupId is
 * inherited from the parent and ${properties} are expanded along the
 * parent chain.  A <module> without a pom.xml is a warning.
 */
#include "deps/xml.h"

#include <stdlib.h>
#include <string.h>

struct pom_dep {
	char *group;		/* as written, maybe ${...} or NULL */
	char *artifact;
	enum ry_deps_kind kind;
	const char *what;	/* "maven dependency", "maven plugin", ... */
	int line;
};

struct pom_prop {
	char *name;
	char *value;
};

struct pom {
	char *path;
	char *dir;
	char *group;		/* own, NULL: the parent's */
	char *artifact;
	char *version;
	int line;
	bool aggregator;
	char *parent_group, *parent_artifact, *parent_version, *parent_path;
	int parent_line;
	struct pom_prop *props;
	size_t nprops;
	struct pom_dep *deps;
	size_t ndeps;
	struct ry_strlist modules;
	int *module_lines;
	/* resolved */
	long parent_ix;		/* index of the parent pom in this repository, or -1 */
	char *eff_group;
};

struct maven_state {
	struct pom *poms;
	size_t n;
	struct deps_map by_ga;		/* "g:a" -> pom index */
	struct deps_map by_path;	/* pom path -> pom index */
};

static struct maven_state *state(struct deps_ctx *c)
{
	if (!c->state[DET_MAVEN])
		c->state[DET_MAVEN] = ry_calloc(1, sizeof(struct maven_state));
	return c->state[DET_MAVEN];
}

static bool wants(const char *path, const char *base)
{
	(void)path;
	return strcmp(base, "pom.xml") == 0;
}

static void add_dep(struct pom *p, xmlNodePtr d, enum ry_deps_kind kind, const char *what,
		    const char *default_group)
{
	char *a = deps_xml_child_text(d, "artifactId");
	if (!a)
		return;
	char *g = deps_xml_child_text(d, "groupId");
	if (!g && default_group)
		g = ry_strdup(default_group);
	p->deps = ry_realloc(p->deps, (p->ndeps + 1) * sizeof(*p->deps));
	struct pom_dep *dep = &p->deps[p->ndeps++];
	dep->group = g;
	dep->artifact = a;
	dep->kind = kind;
	dep->what = what;
	dep->line = deps_xml_line(deps_xml_child(d, "artifactId"));
}

static void read_deps(struct pom *p, xmlNodePtr deps, bool management)
{
	for (xmlNodePtr d = deps_xml_child(deps, "dependency"); d; d = deps_xml_next(d, "dependency")) {
		char *scope = deps_xml_child_text(d, "scope");
		if (management) {
			/* only a BOM import is a dependency of this pom */
			if (scope && strcmp(scope, "import") == 0)
				add_dep(p, d, RY_DEPS_BUILD, "maven BOM import", NULL);
		} else {
			bool test = scope && strcmp(scope, "test") == 0;
			add_dep(p, d, test ? RY_DEPS_TEST : RY_DEPS_BUILD,
				test ? "maven test dependency" : "maven dependency", NULL);
		}
		free(scope);
	}
}

static void read_plugins(struct pom *p, xmlNodePtr build)
{
	xmlNodePtr plugins = deps_xml_child(build, "plugins");
	for (xmlNodePtr pl = deps_xml_child(plugins, "plugin"); pl; pl = deps_xml_next(pl, "plugin")) {
		add_dep(p, pl, RY_DEPS_BUILD, "maven plugin", "org.apache.maven.plugins");
		xmlNodePtr deps = deps_xml_child(pl, "dependencies");
		for (xmlNodePtr d = deps_xml_child(deps, "dependency"); d;
		     d = deps_xml_next(d, "dependency"))
			add_dep(p, d, RY_DEPS_BUILD, "maven plugin dependency", NULL);
	}
}

static void read_modules(struct pom *p, xmlNodePtr modules)
{
	for (xmlNodePtr m = deps_xml_child(modules, "module"); m; m = deps_xml_next(m, "module")) {
		char *name = deps_xml_text(m);
		if (!name)
			continue;
		ry_strlist_add(&p->modules, name);
		p->module_lines = ry_realloc(p->module_lines, p->modules.n * sizeof(int));
		p->module_lines[p->modules.n - 1] = deps_xml_line(m);
		free(name);
	}
}

static void parse(struct deps_ctx *c, const char *path, const char *data, size_t len)
{
	xmlDocPtr doc = deps_xml_load(c, path, data, len);
	if (!doc)
		return;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	if (strcmp((const char *)root->name, "project") != 0) {
		deps_warn(c, path, deps_xml_line(root), "not a Maven POM: the root element is <%s>",
			  (const char *)root->name);
		xmlFreeDoc(doc);
		return;
	}
	char *artifact = deps_xml_child_text(root, "artifactId");
	if (!artifact) {
		deps_warn(c, path, deps_xml_line(root), "no <artifactId>: not a Maven project");
		xmlFreeDoc(doc);
		return;
	}
	struct maven_state *st = state(c);
	st->poms = ry_realloc(st->poms, (st->n + 1) * sizeof(*st->poms));
	struct pom *p = &st->poms[st->n++];
	memset(p, 0, sizeof(*p));
	p->path = ry_strdup(path);
	p->dir = deps_dirname(path);
	p->artifact = artifact;
	p->line = deps_xml_line(deps_xml_child(root, "artifactId"));
	p->group = deps_xml_child_text(root, "groupId");
	p->version = deps_xml_child_text(root, "version");
	p->parent_ix = -1;
	char *packaging = deps_xml_child_text(root, "packaging");
	p->aggregator = packaging && strcmp(packaging, "pom") == 0;
	free(packaging);

	xmlNodePtr parent = deps_xml_child(root, "parent");
	if (parent) {
		p->parent_group = deps_xml_child_text(parent, "groupId");
		p->parent_artifact = deps_xml_child_text(parent, "artifactId");
		p->parent_version = deps_xml_child_text(parent, "version");
		p->parent_path = deps_xml_child_text(parent, "relativePath");
		p->parent_line = deps_xml_line(deps_xml_child(parent, "artifactId"));
		if (!p->parent_line)
			p->parent_line = deps_xml_line(parent);
	}
	xmlNodePtr props = deps_xml_child(root, "properties");
	for (xmlNodePtr k = props ? props->children : NULL; k; k = k->next) {
		if (k->type != XML_ELEMENT_NODE)
			continue;
		p->props = ry_realloc(p->props, (p->nprops + 1) * sizeof(*p->props));
		p->props[p->nprops].name = ry_strdup((const char *)k->name);
		char *v = deps_xml_text(k);
		p->props[p->nprops].value = v ? v : ry_strdup("");
		p->nprops++;
	}
	read_modules(p, deps_xml_child(root, "modules"));
	read_deps(p, deps_xml_child(root, "dependencies"), false);
	read_deps(p, deps_xml_child(deps_xml_child(root, "dependencyManagement"), "dependencies"),
		  true);
	read_plugins(p, deps_xml_child(root, "build"));
	xmlNodePtr profiles = deps_xml_child(root, "profiles");
	for (xmlNodePtr pr = deps_xml_child(profiles, "profile"); pr; pr = deps_xml_next(pr, "profile")) {
		read_modules(p, deps_xml_child(pr, "modules"));
		read_deps(p, deps_xml_child(pr, "dependencies"), false);
		read_plugins(p, deps_xml_child(pr, "build"));
	}
	xmlFreeDoc(doc);
}

/* ---- properties along the parent chain ------------------------------------------- */

struct prop_scope {
	const struct maven_state *st;
	const struct pom *p;
};

static const char *lookup_prop(void *arg, const char *name)
{
	const struct prop_scope *sc = arg;
	const struct pom *p = sc->p;
	if (!strcmp(name, "project.groupId") || !strcmp(name, "pom.groupId") ||
	    !strcmp(name, "groupId"))
		return p->eff_group ? p->eff_group : p->group ? p->group : p->parent_group;
	if (!strcmp(name, "project.artifactId") || !strcmp(name, "pom.artifactId"))
		return p->artifact;
	if (!strcmp(name, "project.parent.groupId"))
		return p->parent_group;
	if (!strcmp(name, "project.version") || !strcmp(name, "pom.version") ||
	    !strcmp(name, "version"))
		return p->version ? p->version : p->parent_version;
	if (!strcmp(name, "project.parent.version"))
		return p->parent_version;
	/* user properties: this pom, then its parents in the repository */
	int hops = 0;
	for (const struct pom *q = p; q && hops < 64; hops++) {
		for (size_t i = 0; i < q->nprops; i++)
			if (strcmp(q->props[i].name, name) == 0)
				return q->props[i].value;
		q = q->parent_ix >= 0 ? &sc->st->poms[q->parent_ix] : NULL;
	}
	return NULL;
}

static char *expand(const struct maven_state *st, const struct pom *p, const char *s)
{
	if (!s)
		return NULL;
	struct prop_scope sc = { st, p };
	char *once = deps_expand(s, lookup_prop, &sc);
	/* a property may name another ("${a}" -> "${b}") */
	char *twice = strstr(once, "${") ? deps_expand(once, lookup_prop, &sc) : ry_strdup(once);
	free(once);
	return twice;
}

static long find_pom(const struct maven_state *st, const char *g, const char *a)
{
	if (!g || !a)
		return -1;
	char *key = ry_asprintf("%s:%s", g, a);
	size_t ix = deps_map_get(&st->by_ga, key);
	free(key);
	return ix == DEPS_NONE || ix == DEPS_AMBIGUOUS ? -1 : (long)ix;
}

static void effective_groups(struct maven_state *st)
{
	/* a few passes settle chains of inheritance */
	for (int pass = 0; pass < 8; pass++) {
		for (size_t i = 0; i < st->n; i++) {
			struct pom *p = &st->poms[i];
			char *g = p->group ? expand(st, p, p->group)
					   : p->parent_group ? expand(st, p, p->parent_group) : NULL;
			free(p->eff_group);
			p->eff_group = g;
		}
	}
	deps_map_release(&st->by_ga);
	for (size_t i = 0; i < st->n; i++) {
		const struct pom *p = &st->poms[i];
		if (!p->eff_group)
			continue;
		char *key = ry_asprintf("%s:%s", p->eff_group, p->artifact);
		deps_map_put(&st->by_ga, key, i, true);
		free(key);
	}
}

/* Parents within the repository (by relativePath, then by coordinates)
 * and each pom's effective groupId. */
static void resolve(struct maven_state *st)
{
	for (size_t i = 0; i < st->n; i++)
		deps_map_put(&st->by_path, st->poms[i].path, i, false);
	for (size_t i = 0; i < st->n; i++) {
		struct pom *p = &st->poms[i];
		if (!p->parent_artifact)
			continue;
		const char *rel = p->parent_path ? p->parent_path : "../pom.xml";
		char *pp = deps_join(p->dir, rel);
		if (pp && (strlen(pp) < 4 || strcmp(pp + strlen(pp) - 4, ".xml") != 0)) {
			char *with = deps_join(pp, "pom.xml");
			free(pp);
			pp = with;
		}
		size_t ix = pp ? deps_map_get(&st->by_path, pp) : DEPS_NONE;
		free(pp);
		if (ix != DEPS_NONE && ix != i && strcmp(st->poms[ix].artifact, p->parent_artifact) == 0)
			p->parent_ix = (long)ix;
	}
	effective_groups(st);
	/* parents found by coordinates when relativePath did not lead to them */
	bool more = false;
	for (size_t i = 0; i < st->n; i++) {
		struct pom *p = &st->poms[i];
		if (p->parent_ix >= 0 || !p->parent_artifact)
			continue;
		char *g = expand(st, p, p->parent_group);
		long ix = find_pom(st, g, p->parent_artifact);
		if (ix >= 0 && (size_t)ix != i) {
			p->parent_ix = ix;
			more = true;
		}
		free(g);
	}
	if (more)
		effective_groups(st);
}

static void declare(struct deps_ctx *c)
{
	struct maven_state *st = state(c);
	resolve(st);
	for (size_t i = 0; i < st->n; i++) {
		const struct pom *p = &st->poms[i];
		char *artifact = expand(st, p, p->artifact);
		struct deps_cand *cand = deps_candidate(c, p->dir, "maven", artifact, p->path,
							p->line ? p->line : 1, "pom.xml", 10);
		cand->aggregator = p->aggregator;
		if (p->eff_group) {
			char *ga = ry_asprintf("%s:%s", p->eff_group, artifact);
			deps_cand_alias(cand, NS_MAVEN, ga);
			free(ga);
		}
		deps_cand_alias(cand, NS_MAVEN_ARTIFACT, artifact);
		free(artifact);
	}
}

/* The service for coordinates g:a (g may be unresolved: then a alone). */
static size_t find_service(struct deps_ctx *c, const char *g, const char *a)
{
	if (g && !strstr(g, "${")) {
		char *ga = ry_asprintf("%s:%s", g, a);
		size_t s = deps_lookup(c, NS_MAVEN, ga);
		free(ga);
		return s;
	}
	return deps_lookup(c, NS_MAVEN_ARTIFACT, a);
}

static void link(struct deps_ctx *c)
{
	struct maven_state *st = state(c);
	for (size_t i = 0; i < st->n; i++) {
		const struct pom *p = &st->poms[i];
		size_t from = deps_service_of_manifest(c, p->path);
		if (from == DEPS_NONE)
			continue;
		if (p->parent_ix >= 0)
			deps_edge(c, from, deps_service_of_manifest(c, st->poms[p->parent_ix].path),
				  RY_DEPS_BUILD, "maven parent", p->path, p->parent_line);
		for (size_t k = 0; k < p->ndeps; k++) {
			const struct pom_dep *d = &p->deps[k];
			char *g = expand(st, p, d->group);
			char *a = expand(st, p, d->artifact);
			deps_edge(c, from, find_service(c, g, a), d->kind, d->what, p->path, d->line);
			free(g);
			free(a);
		}
		for (size_t k = 0; k < p->modules.n; k++) {
			char *dir = deps_join(p->dir, p->modules.items[k]);
			char *pom = NULL;
			if (dir)
				pom = strlen(dir) > 4 && !strcmp(dir + strlen(dir) - 4, ".xml")
					      ? ry_strdup(dir) : deps_join(dir, "pom.xml");
			if (!pom || c->src->kind(c->src, pom) != 1)
				deps_warn(c, p->path, p->module_lines[k], "module %s: no pom.xml there",
					  p->modules.items[k]);
			free(pom);
			free(dir);
		}
		/* the outermost pom's .mvn/ settings affect every module below it */
		if (p->parent_ix < 0 && p->modules.n) {
			char *mvn = deps_join(p->dir, ".mvn");
			if (mvn && c->src->kind(c->src, mvn) == 2) {
				char *glob = ry_asprintf("%s/**", mvn);
				deps_shared_ecosystem(c, glob, p->dir, "maven", "maven settings (.mvn)");
				free(glob);
			}
			free(mvn);
		}
	}
}

static void release(struct deps_ctx *c)
{
	struct maven_state *st = c->state[DET_MAVEN];
	if (!st)
		return;
	for (size_t i = 0; i < st->n; i++) {
		struct pom *p = &st->poms[i];
		free(p->path);
		free(p->dir);
		free(p->group);
		free(p->artifact);
		free(p->version);
		free(p->parent_group);
		free(p->parent_artifact);
		free(p->parent_version);
		free(p->parent_path);
		for (size_t k = 0; k < p->nprops; k++) {
			free(p->props[k].name);
			free(p->props[k].value);
		}
		free(p->props);
		for (size_t k = 0; k < p->ndeps; k++) {
			free(p->deps[k].group);
			free(p->deps[k].artifact);
		}
		free(p->deps);
		ry_strlist_release(&p->modules);
		free(p->module_lines);
		free(p->eff_group);
	}
	free(st->poms);
	deps_map_release(&st->by_ga);
	deps_map_release(&st->by_path);
	free(st);
	c->state[DET_MAVEN] = NULL;
}

const struct deps_detector deps_detector_maven = {
	.name = "pom.xml",
	.wants = wants,
	.parse = parse,
	.declare = declare,
	.link = link,
	.release = release,
};
