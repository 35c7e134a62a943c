/*
 * The graph as JSON, written with jansson: what `railyard deps scan --json`
 * prints and what it sends to railyard.store_scan().
 */
#include "deps/deps.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Length of the UTF-8 sequence at p, or 0 when it is not valid UTF-8. */
static size_t utf8_len(const unsigned char *p)
{
	if (p[0] < 0x80)
		return 1;
	size_t n = (p[0] & 0xE0) == 0xC0 ? 2 : (p[0] & 0xF0) == 0xE0 ? 3 : (p[0] & 0xF8) == 0xF0 ? 4 : 0;
	if (n == 0 || (n == 2 && p[0] < 0xC2))
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	return n;
}

/* Manifests and file names need not be UTF-8; JSON and PostgreSQL text
 * must: bytes that are not become "?". */
static json_t *jstr(const char *s)
{
	if (!s)
		return json_null();
	json_t *v = json_string(s);
	if (v)
		return v;
	char *clean = ry_strdup(s);
	for (unsigned char *p = (unsigned char *)clean; *p;) {
		size_t n = utf8_len(p);
		if (n == 0) {
			*p++ = '?';
			continue;
		}
		p += n;
	}
	v = json_string(clean);
	free(clean);
	return v ? v : json_string("?");
}

static json_t *jlist(const struct ry_strlist *l)
{
	json_t *a = json_array();
	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(a, jstr(l->items[i]));
	return a;
}

static bool from_db(const char *detector)
{
	return detector && strcmp(detector, "database") == 0;
}

static json_t *graph_object(const struct ry_deps_graph *g, bool with_db)
{
	json_t *root = json_object(), *svcs = json_array(), *edges = json_array();
	json_t *paths = json_array();
	for (size_t i = 0; i < g->nservices; i++) {
		const struct ry_deps_service *s = &g->services[i];
		if (!with_db && from_db(s->detector))
			continue;
		json_t *o = json_object();
		bool yaml = s->is_explicit && s->decl_line > 0;
		json_object_set_new(o, "name", jstr(s->name));
		json_object_set_new(o, "root", jstr(s->root));
		json_object_set_new(o, "ecosystem", jstr(s->ecosystem));
		json_object_set_new(o, "team", jstr(s->team));
		json_object_set_new(o, "manifest", jstr(s->manifest));
		json_object_set_new(o, "owns_root", json_boolean(s->owns_root));
		json_object_set_new(o, "origin", json_string(s->is_explicit ? "explicit" : "detected"));
		json_object_set_new(o, "excluded", json_boolean(s->excluded));
		json_object_set_new(o, "detector", jstr(s->detector));
		json_object_set_new(o, "evidence_file", jstr(yaml ? s->detector : s->manifest));
		json_object_set_new(o, "evidence_line",
				    (yaml ? s->decl_line : s->line) > 0
					    ? json_integer(yaml ? s->decl_line : s->line) : json_null());
		json_object_set_new(o, "deploy_file", jstr(s->deploy_file));
		json_object_set_new(o, "deploy_name", jstr(s->deploy_name));
		json_array_append_new(svcs, o);
	}
	for (size_t i = 0; i < g->nedges; i++) {
		const struct ry_deps_edge *e = &g->edges[i];
		if (!with_db && from_db(e->detector))
			continue;
		json_t *o = json_object();
		json_object_set_new(o, "from", jstr(g->services[e->from].name));
		json_object_set_new(o, "to", jstr(g->services[e->to].name));
		json_object_set_new(o, "kind", json_string(ry_deps_kind_name(e->kind)));
		json_object_set_new(o, "origin", json_string(e->is_explicit ? "explicit" : "detected"));
		json_object_set_new(o, "suppressed", json_boolean(e->suppressed));
		json_object_set_new(o, "detector", jstr(e->detector));
		json_object_set_new(o, "evidence_file", jstr(e->file));
		json_object_set_new(o, "evidence_line", e->file ? json_integer(e->line) : json_null());
		json_object_set_new(o, "more_evidence", jlist(&e->more));
		json_array_append_new(edges, o);
	}
	for (size_t i = 0; i < g->npaths; i++) {
		const struct ry_deps_path *p = &g->paths[i];
		json_t *o = json_object();
		json_object_set_new(o, "service", jstr(g->services[p->service].name));
		json_object_set_new(o, "glob", jstr(p->glob));
		json_object_set_new(o, "regex", jstr(p->regex));
		json_object_set_new(o, "why", jstr(p->why));
		json_object_set_new(o, "origin", json_string(p->is_explicit ? "explicit" : "detected"));
		json_object_set_new(o, "deploy", json_boolean(p->deploy));
		json_array_append_new(paths, o);
	}
	json_object_set_new(root, "services", svcs);
	json_object_set_new(root, "edges", edges);
	json_object_set_new(root, "paths", paths);
	json_object_set_new(root, "warnings", jlist(&g->warnings));
	json_object_set_new(root, "notes", jlist(&g->notes));
	json_object_set_new(root, "files_seen", json_integer((json_int_t)g->files_seen));
	json_object_set_new(root, "files_read", json_integer((json_int_t)g->files_read));
	return root;
}

static char *dump(json_t *root, size_t flags)
{
	char *s = json_dumps(root, flags);
	json_decref(root);
	char *out = ry_strdup(s ? s : "{}");
	free(s);
	return out;
}

char *ry_deps_graph_json(const struct ry_deps_graph *g, bool with_db)
{
	return dump(graph_object(g, with_db), JSON_COMPACT);
}

char *ry_deps_report_json(const struct ry_deps_graph *g, const char *repository,
			  const struct ry_strlist *cycles, const struct ry_strlist *runtime_cycles,
			  const struct ry_deps_change *changes, size_t nchanges, bool stored)
{
	json_t *root = graph_object(g, true);
	json_object_set_new(root, "repository", jstr(repository));
	json_object_set_new(root, "cycles", jlist(cycles));
	json_object_set_new(root, "runtime_cycles", jlist(runtime_cycles));
	json_object_set_new(root, "stored", json_boolean(stored));
	json_t *ch = json_array();
	for (size_t i = 0; i < nchanges; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "change", jstr(changes[i].change));
		json_object_set_new(o, "object", jstr(changes[i].object));
		json_object_set_new(o, "item", jstr(changes[i].item));
		json_object_set_new(o, "detail", jstr(changes[i].detail));
		json_array_append_new(ch, o);
	}
	json_object_set_new(root, "changes", stored ? ch : (json_decref(ch), json_null()));
	return dump(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
}
