/*
 * .NET: every *.csproj / *.fsproj / *.vbproj is a service named after its
 * file.  Edges from <ProjectReference Include="..\lib\lib.csproj"> (a
 * reference to a project that does not exist is a warning) and from
 * <PackageReference> naming a sibling's package id or assembly name (a
 * renamed artifact).  A test project's (IsTestProject, or a test SDK
 * package) references are test edges.  Directory.Build.props/.targets,
 * Directory.Packages.props, global.json and NuGet.config affect every
 * project below them.
 */
#include "deps/xml.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct proj_ref {
	char *target;		/* ProjectReference path or PackageReference id */
	bool package;
	int line;
};

struct proj {
	char *path;
	char *dir;
	char *name;
	bool test;
	struct ry_strlist ids;	/* AssemblyName, PackageId */
	struct proj_ref *refs;
	size_t n;
};

struct dotnet_state {
	struct proj *projs;
	size_t n;
	struct ry_strlist shared;	/* Directory.Build.props, ... */
};

static struct dotnet_state *state(struct deps_ctx *c)
{
	if (!c->state[DET_DOTNET])
		c->state[DET_DOTNET] = ry_calloc(1, sizeof(struct dotnet_state));
	return c->state[DET_DOTNET];
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a > b && strcasecmp(s + a - b, suffix) == 0;
}

static bool is_project(const char *base)
{
	return has_suffix(base, ".csproj") || has_suffix(base, ".fsproj") ||
	       has_suffix(base, ".vbproj");
}

static bool is_shared(const char *base)
{
	static const char *const names[] = { "Directory.Build.props", "Directory.Build.targets",
		"Directory.Packages.props", "global.json", "NuGet.config", NULL };
	for (const char *const *n = names; *n; n++)
		if (strcasecmp(base, *n) == 0)
			return true;
	return false;
}

static bool wants(const char *path, const char *base)
{
	(void)path;
	return is_project(base) || is_shared(base);
}

static void add_ref(struct proj *p, char *target, bool package, int line)
{
	p->refs = ry_realloc(p->refs, (p->n + 1) * sizeof(*p->refs));
	p->refs[p->n].target = target;
	p->refs[p->n].package = package;
	p->refs[p->n].line = line;
	p->n++;
}

static bool test_package(const char *id)
{
	static const char *const ids[] = { "Microsoft.NET.Test.Sdk", "xunit", "NUnit",
		"MSTest.TestFramework", "MSTest", NULL };
	for (const char *const *i = ids; *i; i++)
		if (strcasecmp(id, *i) == 0)
			return true;
	return false;
}

static void parse(struct deps_ctx *c, const char *path, const char *data, size_t len)
{
	struct dotnet_state *st = state(c);
	if (is_shared(deps_basename(path))) {
		ry_strlist_add(&st->shared, path);
		return;
	}
	xmlDocPtr doc = deps_xml_load(c, path, data, len);
	if (!doc)
		return;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	if (strcmp((const char *)root->name, "Project") != 0) {
		deps_warn(c, path, deps_xml_line(root), "not an MSBuild project: the root element is <%s>",
			  (const char *)root->name);
		xmlFreeDoc(doc);
		return;
	}
	st->projs = ry_realloc(st->projs, (st->n + 1) * sizeof(*st->projs));
	struct proj *p = &st->projs[st->n++];
	memset(p, 0, sizeof(*p));
	p->path = ry_strdup(path);
	p->dir = deps_dirname(path);
	const char *base = deps_basename(path);
	p->name = ry_strndup(base, (size_t)(strrchr(base, '.') - base));
	p->test = has_suffix(p->name, ".Tests") || has_suffix(p->name, ".Test") ||
		  has_suffix(p->name, ".UnitTests") || has_suffix(p->name, ".IntegrationTests");
	for (xmlNodePtr pg = deps_xml_child(root, "PropertyGroup"); pg;
	     pg = deps_xml_next(pg, "PropertyGroup")) {
		static const char *const idprops[] = { "AssemblyName", "PackageId", NULL };
		for (const char *const *k = idprops; *k; k++) {
			char *v = deps_xml_child_text(pg, *k);
			if (v && !strchr(v, '$') && !ry_strlist_has(&p->ids, v))
				ry_strlist_add(&p->ids, v);
			free(v);
		}
		char *t = deps_xml_child_text(pg, "IsTestProject");
		if (t && strcasecmp(t, "true") == 0)
			p->test = true;
		free(t);
	}
	for (xmlNodePtr ig = deps_xml_child(root, "ItemGroup"); ig; ig = deps_xml_next(ig, "ItemGroup")) {
		for (xmlNodePtr r = ig->children; r; r = r->next) {
			if (r->type != XML_ELEMENT_NODE)
				continue;
			bool project = strcmp((const char *)r->name, "ProjectReference") == 0;
			bool package = strcmp((const char *)r->name, "PackageReference") == 0;
			if (!project && !package)
				continue;
			char *inc = deps_xml_attr(r, "Include");
			if (!inc)
				continue;
			if (package && test_package(inc))
				p->test = true;
			add_ref(p, inc, package, deps_xml_line(r));
		}
	}
	xmlFreeDoc(doc);
}

static void declare(struct deps_ctx *c)
{
	struct dotnet_state *st = state(c);
	for (size_t i = 0; i < st->n; i++) {
		struct proj *p = &st->projs[i];
		struct deps_cand *cand = deps_candidate(c, p->dir, "dotnet", p->name, p->path, 1,
							deps_basename(p->path) + strlen(p->name) + 1, 30);
		deps_cand_alias(cand, NS_NUGET, p->name);
		for (size_t k = 0; k < p->ids.n; k++)
			deps_cand_alias(cand, NS_NUGET, p->ids.items[k]);
	}
}

/* "..\lib\$(MSBuildThisFileDirectory)x.csproj" -> "../lib/x.csproj"; NULL
 * when a property we cannot know is left. */
static char *reference_path(const char *inc)
{
	static const char *const here[] = { "$(MSBuildThisFileDirectory)",
		"$(MSBuildProjectDirectory)/", "$(MSBuildProjectDirectory)\\",
		"$(MSBuildProjectDirectory)", NULL };
	char *s = ry_strdup(inc);
	for (const char *const *h = here; *h; h++) {
		char *at;
		while ((at = strstr(s, *h)) != NULL)
			memmove(at, at + strlen(*h), strlen(at + strlen(*h)) + 1);
	}
	for (char *p = s; *p; p++)
		if (*p == '\\')
			*p = '/';
	if (strstr(s, "$(")) {
		free(s);
		return NULL;
	}
	return s;
}

static void link(struct deps_ctx *c)
{
	struct dotnet_state *st = state(c);
	for (size_t i = 0; i < st->n; i++) {
		const struct proj *p = &st->projs[i];
		size_t from = deps_service_owning(c, p->path);
		enum ry_deps_kind kind = p->test ? RY_DEPS_TEST : RY_DEPS_BUILD;
		for (size_t k = 0; k < p->n; k++) {
			const struct proj_ref *r = &p->refs[k];
			if (r->package) {
				deps_edge(c, from, deps_lookup(c, NS_NUGET, r->target), kind,
					  "PackageReference", p->path, r->line);
				continue;
			}
			char *rel = reference_path(r->target);
			char *target = rel ? deps_join(p->dir, rel) : NULL;
			if (!rel) {
				deps_note(c, "%s:%d: ProjectReference %s: uses an MSBuild property, not "
					  "followed", p->path, r->line, r->target);
			} else if (!target || c->src->kind(c->src, target) != 1) {
				deps_warn(c, p->path, r->line, "ProjectReference %s: no such project",
					  r->target);
			} else {
				size_t to = deps_service_of_manifest(c, target);
				if (to == DEPS_NONE)
					to = deps_service_owning(c, target);
				deps_edge(c, from, to, kind, "ProjectReference", p->path, r->line);
			}
			free(target);
			free(rel);
		}
	}
	for (size_t i = 0; i < st->shared.n; i++) {
		char *dir = deps_dirname(st->shared.items[i]);
		deps_shared_ecosystem(c, st->shared.items[i], dir, "dotnet", ".NET build settings");
		free(dir);
	}
}

static void release(struct deps_ctx *c)
{
	struct dotnet_state *st = c->state[DET_DOTNET];
	if (!st)
		return;
	for (size_t i = 0; i < st->n; i++) {
		struct proj *p = &st->projs[i];
		for (size_t k = 0; k < p->n; k++)
			free(p->refs[k].target);
		free(p->refs);
		free(p->path);
		free(p->dir);
		free(p->name);
		ry_strlist_release(&p->ids);
	}
	free(st->projs);
	ry_strlist_release(&st->shared);
	free(st);
	c->state[DET_DOTNET] = NULL;
}

const struct deps_detector deps_detector_dotnet = {
	.name = "csproj",
	.wants = wants,
	.parse = parse,
	.declare = declare,
	.link = link,
	.release = release,
};
