/*
 * Helpers for the tests of pkg/deps and pkg/plan: scan a repository given
 * in memory and check what was found.  Included by tests/unit/test_deps_*.c
 * and test_plan.c after <cmocka.h>.
 */
#ifndef RY_TEST_DEPS_CHECK_H
#define RY_TEST_DEPS_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deps/deps.h"

#define FILES(...) ((const struct ry_deps_file[]){ __VA_ARGS__ })
#define NFILES(...) (sizeof((const struct ry_deps_file[]){ __VA_ARGS__ }) / sizeof(struct ry_deps_file))
/* Scans the files given as { path, data } pairs into g (cfg too). */
#define SCAN(g, cfg, ...) scan_into(g, cfg, FILES(__VA_ARGS__), NFILES(__VA_ARGS__))

static inline void scan_into(struct ry_deps_graph *g, struct ry_deps_config *cfg,
			     const struct ry_deps_file *files, size_t n)
{
	char *err = NULL;
	if (!ry_deps_scan_files(files, n, NULL, g, cfg, &err))
		fail_msg("the scan failed: %s", err);
}

static inline void release(struct ry_deps_graph *g, struct ry_deps_config *cfg)
{
	ry_deps_graph_release(g);
	ry_deps_config_release(cfg);
}

/* Prints the graph: what a failing test needs to see. */
static inline void dump(const struct ry_deps_graph *g)
{
	for (size_t i = 0; i < g->nservices; i++)
		fprintf(stderr, "# service %s root=%s eco=%s\n", g->services[i].name,
			g->services[i].root ? g->services[i].root : "-", g->services[i].ecosystem);
	for (size_t i = 0; i < g->nedges; i++)
		fprintf(stderr, "# edge %s -> %s %s %s:%d%s\n", g->services[g->edges[i].from].name,
			g->services[g->edges[i].to].name, ry_deps_kind_name(g->edges[i].kind),
			g->edges[i].file ? g->edges[i].file : "-", g->edges[i].line,
			g->edges[i].suppressed ? " suppressed" : "");
	for (size_t i = 0; i < g->warnings.n; i++)
		fprintf(stderr, "# warning %s\n", g->warnings.items[i]);
}

static inline size_t svc(const struct ry_deps_graph *g, const char *name)
{
	long s = ry_deps_find_service(g, name);
	if (s < 0) {
		dump(g);
		fail_msg("no service named %s", name);
	}
	return (size_t)s;
}

static inline const struct ry_deps_edge *find_edge(const struct ry_deps_graph *g, const char *from,
						   const char *to, enum ry_deps_kind kind)
{
	long f = ry_deps_find_service(g, from), t = ry_deps_find_service(g, to);
	for (size_t i = 0; f >= 0 && t >= 0 && i < g->nedges; i++)
		if (g->edges[i].from == (size_t)f && g->edges[i].to == (size_t)t &&
		    g->edges[i].kind == kind)
			return &g->edges[i];
	return NULL;
}

/* The edge exists, active, with this evidence (file NULL: any). */
static inline void assert_edge(const struct ry_deps_graph *g, const char *from, const char *to,
			       enum ry_deps_kind kind, const char *file, int line)
{
	const struct ry_deps_edge *e = find_edge(g, from, to, kind);
	if (!e || !ry_deps_edge_active(g, e)) {
		dump(g);
		fail_msg("no %s edge %s -> %s", ry_deps_kind_name(kind), from, to);
	}
	if (file && (!e->file || strcmp(e->file, file) != 0 || e->line != line)) {
		dump(g);
		fail_msg("edge %s -> %s: evidence %s:%d, expected %s:%d", from, to,
			 e->file ? e->file : "-", e->line, file, line);
	}
}

/* No active edge of any kind between the two. */
static inline void assert_no_edge(const struct ry_deps_graph *g, const char *from, const char *to)
{
	for (int k = 0; k < RY_DEPS_NKINDS; k++) {
		const struct ry_deps_edge *e = find_edge(g, from, to, (enum ry_deps_kind)k);
		if (e && ry_deps_edge_active(g, e)) {
			dump(g);
			fail_msg("unexpected %s edge %s -> %s", ry_deps_kind_name(e->kind), from, to);
		}
	}
}

/* Active edges in the graph. */
static inline size_t active_edges(const struct ry_deps_graph *g)
{
	size_t n = 0;
	for (size_t i = 0; i < g->nedges; i++)
		n += ry_deps_edge_active(g, &g->edges[i]);
	return n;
}

/* A warning starting with prefix ("file:line: ...") and holding text. */
static inline void assert_warning(const struct ry_deps_graph *g, const char *prefix,
				  const char *text)
{
	for (size_t i = 0; i < g->warnings.n; i++)
		if (!strncmp(g->warnings.items[i], prefix, strlen(prefix)) &&
		    strstr(g->warnings.items[i], text))
			return;
	dump(g);
	fail_msg("no warning %s... %s", prefix, text);
}

#endif
