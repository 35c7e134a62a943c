/*
 * Planning a change (plan.h): ownership of changed paths, the affected
 * set over pkg/graph, reasons, tasks from templates, and the spec JSON.
 */
#include "plan/plan.h"
#include "graph/graph.h"
#include "match/match.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ALTERNATIVES 64	/* beyond, only_if_changed is left out (always run) */
#define MAX_HOPS 3		/* a reason names at most this many steps of its chain */

static const char *const why_names[] = { "changed", "build", "test", "runtime" };
static const char *const task_prefix[RY_DEPS_NTASKS] = { "build", "test", "deploy",
	"integration" };
static const char *const task_kind[RY_DEPS_NTASKS] = { "build", "test", "deploy", "test" };

const char *ry_plan_why_name(enum ry_plan_why why)
{
	return (unsigned)why <= RY_PLAN_RUNTIME ? why_names[why] : "?";
}

/* ---- built-in templates ------------------------------------------------------------ */

struct builtin {
	const char *ecosystem;
	const char *cmd[RY_DEPS_NTASKS];
};

static const struct builtin builtins[] = {
	{ "go", { "cd {root} && go build ./...", "cd {root} && go test ./...", NULL,
		  "cd {root} && go test -tags integration ./..." } },
	{ "node", { "cd {root} && npm run build --if-present", "cd {root} && npm test --if-present",
		    NULL, "cd {root} && npm run test:integration --if-present" } },
	{ "maven", { "mvn -B -q -f {manifest} -DskipTests install", "mvn -B -q -f {manifest} test",
		     NULL, "mvn -B -q -f {manifest} verify" } },
	{ "gradle", { "gradle -p {root} assemble", "gradle -p {root} test", NULL,
		      "gradle -p {root} integrationTest" } },
	{ "dotnet", { "dotnet build {manifest}", "dotnet test {manifest}", NULL, NULL } },
	{ "python", { "python3 -m pip install -q -e {root}", "cd {root} && python3 -m pytest -q",
		      NULL, "cd {root} && python3 -m pytest -q -m integration" } },
	{ "proto", { "buf build {root}", "buf lint {root}", NULL, NULL } },
	{ "docker", { "docker build -t {name} {root}", NULL, NULL, NULL } },
};

static const char *base_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

const char *ry_plan_default_command(const struct ry_deps_service *s, enum ry_deps_task t)
{
	if (t == RY_DEPS_TASK_DEPLOY) {
		if (!s->deploy_file)
			return NULL;
		return strstr(base_of(s->deploy_file), "compose")
			       ? "docker compose -f {deploy_file} up -d --no-deps --build {deploy_name}"
			       : "kubectl apply -f {deploy_file}";
	}
	if (!s->root)
		return NULL;	/* nothing to build or test here */
	if (!s->owns_root)	/* a Maven aggregator: its pom alone */
		return t == RY_DEPS_TASK_BUILD ? "mvn -B -q -N -f {manifest} install" : NULL;
	if (!strcmp(s->ecosystem, "python") && t == RY_DEPS_TASK_BUILD && s->manifest &&
	    strstr(base_of(s->manifest), "requirements"))
		return "python3 -m pip install -q -r {manifest}";
	for (size_t i = 0; i < RY_ARRAY_SIZE(builtins); i++)
		if (!strcmp(builtins[i].ecosystem, s->ecosystem))
			return builtins[i].cmd[t];
	return NULL;
}

/* ---- the planning state ------------------------------------------------------------- */

struct root_ix {
	const char *root;
	size_t service;
};

struct literal {
	const char *path;	/* a literal path, or a regex */
	size_t gpath;		/* index in g->paths */
};

struct planner {
	const struct ry_deps_graph *g;
	const struct ry_deps_config *cfg;
	struct ry_plan *plan;
	size_t n;
	struct root_ix *owns, *aggr;	/* sorted by root */
	size_t nowns, naggr;
	struct literal *lits;		/* literal service paths, sorted */
	size_t nlits;
	struct literal *globs;		/* the other service paths, by regex */
	size_t nglobs;
	struct ry_match **res;		/* one per distinct regex of globs */
	size_t *res_start;		/* its entries: globs[res_start[r] .. res_start[r + 1]) */
	size_t nres;
	/* per service */
	char **seed_reason;		/* NULL: none of its files changed */
	char **deploy_reason;		/* NULL: the file that runs it did not change */
	bool *build_hit;		/* changed or build-affected */
	bool *test_hit;
	bool *runtime_hit;		/* has a runtime dependency on a build_hit one */
	long *parent_edge;		/* the edge that pulled it in (build/test/runtime) */
	long *in_plan;			/* index in plan->svcs, or -1 */
	bool *on_cycle;			/* runtime edges on a runtime cycle */
	struct ry_graph build;		/* dependency -> dependent over build edges */
	struct ry_graph upward;		/* the same, for closures */
};

static int cmp_root(const void *a, const void *b)
{
	return strcmp(((const struct root_ix *)a)->root, ((const struct root_ix *)b)->root);
}

static int cmp_lit(const void *a, const void *b)
{
	return strcmp(((const struct literal *)a)->path, ((const struct literal *)b)->path);
}

static long find_root(const struct root_ix *ix, size_t n, const char *root)
{
	struct root_ix key = { root, 0 };
	const struct root_ix *hit = bsearch(&key, ix, n, sizeof(*ix), cmp_root);
	return hit ? (long)hit->service : -1;
}

static bool literal_glob(const char *glob)
{
	return !strpbrk(glob, "*?[") && glob[0] && glob[strlen(glob) - 1] != '/';
}

static void index_graph(struct planner *p)
{
	const struct ry_deps_graph *g = p->g;
	p->owns = ry_malloc((g->nservices + 1) * sizeof(*p->owns));
	p->aggr = ry_malloc((g->nservices + 1) * sizeof(*p->aggr));
	for (size_t i = 0; i < g->nservices; i++) {
		const struct ry_deps_service *s = &g->services[i];
		if (s->excluded || !s->root)
			continue;
		if (s->owns_root)
			p->owns[p->nowns++] = (struct root_ix){ s->root, i };
		else if (s->manifest)
			p->aggr[p->naggr++] = (struct root_ix){ s->root, i };
	}
	if (p->nowns > 1)
		qsort(p->owns, p->nowns, sizeof(*p->owns), cmp_root);
	if (p->naggr > 1)
		qsort(p->aggr, p->naggr, sizeof(*p->aggr), cmp_root);

	p->lits = ry_malloc((g->npaths + 1) * sizeof(*p->lits));
	p->globs = ry_malloc((g->npaths + 1) * sizeof(*p->globs));
	for (size_t i = 0; i < g->npaths; i++) {
		const struct ry_deps_path *dp = &g->paths[i];
		if (g->services[dp->service].excluded)
			continue;
		if (literal_glob(dp->glob))
			p->lits[p->nlits++] = (struct literal){ dp->glob, i };
		else
			p->globs[p->nglobs++] = (struct literal){ dp->regex, i };
	}
	if (p->nlits > 1)
		qsort(p->lits, p->nlits, sizeof(*p->lits), cmp_lit);
	/* many services share a glob (gradle/ and below): compile each regex once */
	if (p->nglobs > 1)
		qsort(p->globs, p->nglobs, sizeof(*p->globs), cmp_lit);
	p->res = ry_malloc((p->nglobs + 1) * sizeof(*p->res));
	p->res_start = ry_malloc((p->nglobs + 2) * sizeof(size_t));
	for (size_t i = 0; i < p->nglobs; i++) {
		if (i > 0 && !strcmp(p->globs[i].path, p->globs[i - 1].path))
			continue;
		char *err = NULL;
		p->res[p->nres] = ry_match_compile(p->globs[i].path, &err);
		free(err);
		p->res_start[p->nres++] = i;
	}
	p->res_start[p->nres] = p->nglobs;

	size_t *up = ry_malloc((g->nedges + 1) * sizeof(size_t));
	size_t *down = ry_malloc((g->nedges + 1) * sizeof(size_t));
	size_t m = 0;
	for (size_t i = 0; i < g->nedges; i++) {
		const struct ry_deps_edge *e = &g->edges[i];
		if (e->kind != RY_DEPS_BUILD || !ry_deps_edge_active(g, e))
			continue;
		up[m] = e->to;
		down[m] = e->from;
		m++;
	}
	if (!ry_graph_init(&p->build, g->nservices, m, up, down))
		abort();	/* indexes come from the graph itself */
	free(up);
	free(down);
}

/* The service owning path: deepest root holding it, or the aggregator
 * whose pom it is; -1 when none. */
static long owner_of(const struct planner *p, const char *path)
{
	char *d = ry_strdup(path);
	long s = -1;
	for (;;) {
		s = find_root(p->owns, p->nowns, d);
		if (s < 0) {
			long a = find_root(p->aggr, p->naggr, d);
			if (a >= 0 && !strcmp(p->g->services[a].manifest, path))
				s = a;
		}
		if (s >= 0 || !strcmp(d, "."))
			break;
		char *slash = strrchr(d, '/');
		if (slash)
			*slash = '\0';
		else
			strcpy(d, ".");
	}
	free(d);
	return s;
}

/* ---- seeds -------------------------------------------------------------------------- */

struct hit {
	size_t service;
	bool deploy;		/* a file that runs it, not one it is built from */
	const char *path;	/* in plan->changed: sorted, so the first is the smallest */
	const char *why;	/* NULL: the service's own file */
};

static int cmp_hit(const void *a, const void *b)
{
	const struct hit *x = a, *y = b;
	if (x->service != y->service)
		return x->service < y->service ? -1 : 1;
	if (x->deploy != y->deploy)
		return x->deploy ? 1 : -1;
	return strcmp(x->path, y->path);
}

static void add_hit(struct hit **hits, size_t *n, size_t *cap, size_t s, const char *path,
		    const struct ry_deps_path *dp)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 16;
		*hits = ry_realloc(*hits, *cap * sizeof(**hits));
	}
	(*hits)[(*n)++] = (struct hit){ s, dp && dp->deploy, path, dp ? dp->why : NULL };
}

static void find_seeds(struct planner *p)
{
	struct ry_plan *plan = p->plan;
	struct hit *hits = NULL;
	size_t nhits = 0, cap = 0;
	for (size_t i = 0; i < plan->changed.n; i++) {
		const char *path = plan->changed.items[i];
		bool owned = false;
		long s = owner_of(p, path);
		if (s >= 0) {
			add_hit(&hits, &nhits, &cap, (size_t)s, path, NULL);
			owned = true;
		}
		struct literal key = { path, 0 };
		const struct literal *l = bsearch(&key, p->lits, p->nlits, sizeof(*l), cmp_lit);
		if (l) {	/* every literal entry for this path (they are adjacent) */
			while (l > p->lits && !strcmp(l[-1].path, path))
				l--;
			for (; l < p->lits + p->nlits && !strcmp(l->path, path); l++) {
				const struct ry_deps_path *dp = &p->g->paths[l->gpath];
				add_hit(&hits, &nhits, &cap, dp->service, path, dp);
				owned = true;
			}
		}
		for (size_t r = 0; r < p->nres; r++) {
			if (!p->res[r] || !ry_match_test(p->res[r], path))
				continue;
			for (size_t k = p->res_start[r]; k < p->res_start[r + 1]; k++) {
				const struct ry_deps_path *dp = &p->g->paths[p->globs[k].gpath];
				add_hit(&hits, &nhits, &cap, dp->service, path, dp);
				owned = true;
			}
		}
		if (!owned)
			ry_strlist_add(&plan->unowned, path);
	}
	if (nhits > 1)
		qsort(hits, nhits, sizeof(*hits), cmp_hit);
	for (size_t i = 0; i < nhits;) {
		size_t j = i;
		while (j < nhits && hits[j].service == hits[i].service)
			j++;
		struct ry_buf b = RY_BUF_INIT;
		if (hits[i].why)
			ry_buf_printf(&b, "%s: %s", hits[i].why, hits[i].path);
		else
			ry_buf_printf(&b, "changed: %s", hits[i].path);
		if (j - i > 1)
			ry_buf_printf(&b, " (+%zu more)", j - i - 1);
		/* build hits sort first: a file it is built from makes it a seed */
		if (hits[i].deploy) {
			p->deploy_reason[hits[i].service] = ry_buf_detach(&b);
		} else {
			p->seed_reason[hits[i].service] = ry_buf_detach(&b);
			p->build_hit[hits[i].service] = true;
		}
		i = j;
	}
	free(hits);
}

/* ---- the affected set ---------------------------------------------------------------- */

/* Rebuilt, or its deploy configuration changed: it is deployed again. */
static bool redeployed(const struct planner *p, size_t s)
{
	return p->build_hit[s] || p->deploy_reason[s];
}

static void affected(struct planner *p)
{
	const struct ry_deps_graph *g = p->g;
	size_t *seeds = ry_malloc((p->n + 1) * sizeof(size_t)), nseeds = 0;
	for (size_t i = 0; i < p->n; i++)
		if (p->build_hit[i]) {
			seeds[nseeds++] = i;
			p->build_hit[i] = false;	/* reach expands only unmarked seeds */
		}
	(void)ry_graph_reach(&p->build, seeds, nseeds, RY_GRAPH_DOWNSTREAM, p->build_hit);
	free(seeds);

	/* a test dependency on a rebuilt service: test again; a runtime one:
	 * integration tests */
	for (size_t i = 0; i < g->nedges; i++) {
		const struct ry_deps_edge *e = &g->edges[i];
		if (!ry_deps_edge_active(g, e) || e->from == e->to)
			continue;
		if (e->kind == RY_DEPS_TEST && p->build_hit[e->to] && !p->build_hit[e->from] &&
		    !p->test_hit[e->from]) {
			p->test_hit[e->from] = true;
			p->parent_edge[e->from] = (long)i;
		} else if (e->kind == RY_DEPS_RUNTIME && redeployed(p, e->to)) {
			p->runtime_hit[e->from] = true;
		}
	}
}

/* For each build-affected service not changed itself, the dependency that
 * brought it in: a changed one if any, else the earliest in dependency
 * order (so chains of reasons always end at a changed service). */
static void pick_parents(struct planner *p)
{
	const struct ry_deps_graph *g = p->g;
	size_t *order = ry_malloc((p->n + 1) * sizeof(size_t));
	size_t *pos = ry_malloc((p->n + 1) * sizeof(size_t));
	size_t k = ry_graph_topo_order(&p->build, order);
	for (size_t i = 0; i < p->n; i++)
		pos[i] = (size_t)-1;
	for (size_t i = 0; i < k; i++)
		pos[order[i]] = i;
	for (size_t i = 0; i < g->nedges; i++) {
		const struct ry_deps_edge *e = &g->edges[i];
		size_t s = e->from, d = e->to;
		if (e->kind != RY_DEPS_BUILD || !ry_deps_edge_active(g, e) || !p->build_hit[s] ||
		    p->seed_reason[s] || !p->build_hit[d])
			continue;
		long cur = p->parent_edge[s];
		if (cur < 0) {
			p->parent_edge[s] = (long)i;
			continue;
		}
		size_t cd = g->edges[cur].to;
		bool better = (p->seed_reason[d] && !p->seed_reason[cd]) ||
			      (!p->seed_reason[cd] && pos[d] < pos[cd]);
		if (better)
			p->parent_edge[s] = (long)i;
	}
	free(pos);
	free(order);
}

static void add_evidence(struct ry_buf *b, const struct ry_deps_edge *e)
{
	if (e->file)
		ry_buf_printf(b, " (%s:%d)", e->file, e->line);
	else if (e->detector)
		ry_buf_printf(b, " (%s)", e->detector);
}

/* "X changed: path" or "X: build dependency on Y (...), Y changed: ..." */
static void add_chain(const struct planner *p, struct ry_buf *b, size_t s, int hops)
{
	const char *name = p->g->services[s].name;
	const char *seed = p->seed_reason[s];
	if (!seed && !p->build_hit[s])
		seed = p->deploy_reason[s];
	if (seed) {
		const char *r = seed;
		if (!strncmp(r, "changed: ", 9))
			ry_buf_printf(b, "%s %s", name, r);
		else
			ry_buf_printf(b, "%s: %s", name, r);
		return;
	}
	long e = p->parent_edge[s];
	if (e < 0) {	/* cannot happen: every affected service has a reason */
		ry_buf_printf(b, "%s", name);
		return;
	}
	if (hops >= MAX_HOPS) {
		size_t more = 0, x = s;
		while (!p->seed_reason[x] && p->parent_edge[x] >= 0 && more < p->n) {
			x = p->g->edges[p->parent_edge[x]].to;
			more++;
		}
		ry_buf_printf(b, "... (%zu more), ", more);
		add_chain(p, b, x, 0);
		return;
	}
	const struct ry_deps_edge *edge = &p->g->edges[e];
	ry_buf_printf(b, "%s: %s dependency on %s", name, ry_deps_kind_name(edge->kind),
		      p->g->services[edge->to].name);
	add_evidence(b, edge);
	ry_buf_puts(b, ", ");
	add_chain(p, b, edge->to, hops + 1);
}

static char *reason_of(const struct planner *p, size_t s, enum ry_plan_why why,
		       long runtime_edge)
{
	struct ry_buf b = RY_BUF_INIT;
	long e = why == RY_PLAN_RUNTIME ? runtime_edge : p->parent_edge[s];
	const struct ry_deps_edge *edge = &p->g->edges[e];
	ry_buf_printf(&b, "%s dependency on %s", ry_deps_kind_name(edge->kind),
		      p->g->services[edge->to].name);
	add_evidence(&b, edge);
	if (why == RY_PLAN_RUNTIME)
		ry_buf_puts(&b, ": integration tests");
	ry_buf_puts(&b, ", ");
	add_chain(p, &b, edge->to, 1);
	return ry_buf_detach(&b);
}

/* ---- tasks ----------------------------------------------------------------------------- */

static const struct ry_deps_task_template *find_template(const struct ry_deps_template *set,
							 size_t n, const char *key,
							 enum ry_deps_task t)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(set[i].key, key) && set[i].task[t].set)
			return &set[i].task[t];
	return NULL;
}

/* The template of task t for s: per service, per ecosystem, else NULL (built in). */
static const struct ry_deps_task_template *template_of(const struct planner *p,
						       const struct ry_deps_service *s,
						       enum ry_deps_task t)
{
	if (!p->cfg)
		return NULL;
	const struct ry_deps_task_template *tt =
		find_template(p->cfg->by_service, p->cfg->nby_service, s->name, t);
	return tt ? tt : find_template(p->cfg->by_ecosystem, p->cfg->nby_ecosystem, s->ecosystem, t);
}

static const char *command_template(const struct planner *p, const struct ry_deps_service *s,
				    enum ry_deps_task t)
{
	const struct ry_deps_task_template *tt = template_of(p, s, t);
	return tt ? tt->command : ry_plan_default_command(s, t);
}

/* A word for /bin/sh: as is when plainly safe, else in single quotes. */
static void add_shell_word(struct ry_buf *b, const char *s)
{
	bool plain = *s != '\0';
	for (const char *c = s; *c && plain; c++)
		plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			(*c >= '0' && *c <= '9') || strchr("_./:@%+=,-", *c);
	if (plain) {
		ry_buf_puts(b, s);
		return;
	}
	ry_buf_putc(b, '\'');
	for (const char *c = s; *c; c++) {
		if (*c == '\'')
			ry_buf_puts(b, "'\\''");
		else
			ry_buf_putc(b, *c);
	}
	ry_buf_putc(b, '\'');
}

/* The template with {name} {root} {manifest} {deploy_file} {deploy_name}
 * replaced by shell-quoted values. */
static char *expand_command(const char *tmpl, const struct ry_deps_service *s)
{
	struct { const char *key; const char *value; } vars[] = {
		{ "{name}", s->name }, { "{root}", s->root ? s->root : "." },
		{ "{manifest}", s->manifest ? s->manifest : "" },
		{ "{deploy_file}", s->deploy_file ? s->deploy_file : "" },
		{ "{deploy_name}", s->deploy_name ? s->deploy_name : s->name },
	};
	struct ry_buf b = RY_BUF_INIT;
	for (const char *c = tmpl; *c;) {
		bool done = false;
		for (size_t i = 0; i < RY_ARRAY_SIZE(vars) && !done; i++) {
			size_t n = strlen(vars[i].key);
			if (!strncmp(c, vars[i].key, n)) {
				add_shell_word(&b, vars[i].value);
				c += n;
				done = true;
			}
		}
		if (!done)
			ry_buf_putc(&b, *c++);
	}
	return ry_buf_detach(&b);
}

static bool has_task(const struct planner *p, size_t s, enum ry_deps_task t)
{
	return p->in_plan[s] >= 0 && p->plan->svcs[p->in_plan[s]].task[t];
}

static char *task_name(const struct planner *p, size_t s, enum ry_deps_task t)
{
	return ry_asprintf("%s:%s", task_prefix[t], p->g->services[s].name);
}

/* ---- inputs and only_if_changed ---------------------------------------------------------- */

struct alternatives {
	struct ry_strlist alt;
	bool all;		/* a service at the top: every path */
};

static void service_alternatives(const struct planner *p, size_t z, bool deploy,
				 struct alternatives *a)
{
	const struct ry_deps_service *s = &p->g->services[z];
	if (s->root && s->owns_root && !strcmp(s->root, ".")) {
		a->all = true;
		return;
	}
	char *re = NULL;
	if (s->root && s->owns_root) {
		char *prefix = ry_deps_prefix_regex(s->root);
		re = ry_asprintf("%s(/|$)", prefix + 1);
		free(prefix);
	} else if (s->root && s->manifest) {
		char *prefix = ry_deps_prefix_regex(s->manifest);
		re = ry_asprintf("%s$", prefix + 1);
		free(prefix);
	}
	if (re && !ry_strlist_has(&a->alt, re))
		ry_strlist_add(&a->alt, re);
	free(re);
	for (size_t i = 0; i < p->g->npaths; i++) {
		const struct ry_deps_path *dp = &p->g->paths[i];
		if (dp->service == z && (deploy || !dp->deploy) &&
		    !ry_strlist_has(&a->alt, dp->regex + 1))
			ry_strlist_add(&a->alt, dp->regex + 1);
	}
}

/* Adds the alternatives of every service marked; with deploy_of, also the
 * files that run the services marked in it. */
static void marked_alternatives(const struct planner *p, const bool *mark, const bool *deploy_of,
				struct alternatives *a)
{
	for (size_t z = 0; z < p->n && !a->all && a->alt.n <= MAX_ALTERNATIVES; z++)
		if (mark[z])
			service_alternatives(p, z, deploy_of && deploy_of[z], a);
}

/* Marks s and what it builds on, transitively. */
static void add_closure(const struct planner *p, size_t s, bool *mark)
{
	if (!mark[s])
		(void)ry_graph_reach(&p->build, &s, 1, RY_GRAPH_UPSTREAM, mark);
}

static json_t *pattern_of(struct alternatives *a)
{
	json_t *v = json_null();
	if (!a->all && a->alt.n > 0 && a->alt.n <= MAX_ALTERNATIVES) {
		struct ry_buf b = RY_BUF_INIT;
		ry_buf_puts(&b, "^(?:");
		for (size_t i = 0; i < a->alt.n; i++)
			ry_buf_printf(&b, "%s%s", i ? "|" : "", a->alt.items[i]);
		ry_buf_putc(&b, ')');
		v = json_string(b.data);
		ry_buf_release(&b);
	}
	ry_strlist_release(&a->alt);
	return v ? v : json_null();
}

static json_t *inputs_of(const struct planner *p, size_t z)
{
	const struct ry_deps_service *s = &p->g->services[z];
	json_t *a = json_array();
	if (s->root && s->owns_root)
		json_array_append_new(a, json_string(!strcmp(s->root, ".") ? "." : s->root));
	else if (s->root && s->manifest)
		json_array_append_new(a, json_string(s->manifest));
	for (size_t i = 0; i < p->g->npaths; i++)
		if (p->g->paths[i].service == z && !p->g->paths[i].deploy)
			json_array_append_new(a, json_string(p->g->paths[i].glob));
	return a;
}

/* ---- the spec ------------------------------------------------------------------------------ */

struct needs {
	json_t *arr;
	struct ry_strlist seen;
};

static void need(struct needs *n, char *task, const char *kind)
{
	if (!ry_strlist_has(&n->seen, task)) {
		ry_strlist_add(&n->seen, task);
		json_t *o = json_object();
		json_object_set_new(o, "task", json_string(task));
		json_object_set_new(o, "kind", json_string(kind));
		json_array_append_new(n->arr, o);
	}
	free(task);
}

/* The last task of s that its dependents' integration tests wait for. */
static long running_task(const struct planner *p, size_t s)
{
	for (int t = RY_DEPS_TASK_DEPLOY; t >= RY_DEPS_TASK_BUILD; t--)
		if (has_task(p, s, (enum ry_deps_task)t))
			return t;
	return -1;
}

static void add_needs(const struct planner *p, size_t s, enum ry_deps_task t, struct needs *n)
{
	const struct ry_deps_graph *g = p->g;
	switch (t) {
	case RY_DEPS_TASK_BUILD:
		for (size_t i = 0; i < g->nedges; i++) {
			const struct ry_deps_edge *e = &g->edges[i];
			if (e->from == s && e->kind == RY_DEPS_BUILD && ry_deps_edge_active(g, e) &&
			    has_task(p, e->to, RY_DEPS_TASK_BUILD))
				need(n, task_name(p, e->to, RY_DEPS_TASK_BUILD), "build");
		}
		break;
	case RY_DEPS_TASK_TEST:
		if (has_task(p, s, RY_DEPS_TASK_BUILD))
			need(n, task_name(p, s, RY_DEPS_TASK_BUILD), "build");
		for (size_t i = 0; i < g->nedges; i++) {
			const struct ry_deps_edge *e = &g->edges[i];
			if (e->from == s && e->kind == RY_DEPS_TEST && ry_deps_edge_active(g, e) &&
			    has_task(p, e->to, RY_DEPS_TASK_BUILD))
				need(n, task_name(p, e->to, RY_DEPS_TASK_BUILD), "test");
		}
		break;
	case RY_DEPS_TASK_DEPLOY:
		if (has_task(p, s, RY_DEPS_TASK_BUILD))
			need(n, task_name(p, s, RY_DEPS_TASK_BUILD), "build");
		if (has_task(p, s, RY_DEPS_TASK_TEST))
			need(n, task_name(p, s, RY_DEPS_TASK_TEST), "test");
		for (size_t i = 0; i < g->nedges; i++) {
			const struct ry_deps_edge *e = &g->edges[i];
			if (e->from == s && e->kind == RY_DEPS_RUNTIME && ry_deps_edge_active(g, e) &&
			    !p->on_cycle[i] && has_task(p, e->to, RY_DEPS_TASK_DEPLOY))
				need(n, task_name(p, e->to, RY_DEPS_TASK_DEPLOY), "runtime");
		}
		break;
	case RY_DEPS_TASK_INTEGRATION: {
		long own = running_task(p, s);
		if (own >= 0)
			need(n, task_name(p, s, (enum ry_deps_task)own), own == RY_DEPS_TASK_DEPLOY
				? "runtime" : ry_deps_task_name((enum ry_deps_task)own));
		for (size_t i = 0; i < g->nedges; i++) {
			const struct ry_deps_edge *e = &g->edges[i];
			if (e->from != s || e->kind != RY_DEPS_RUNTIME || !ry_deps_edge_active(g, e) ||
			    !redeployed(p, e->to) || e->to == s)
				continue;
			long t2 = running_task(p, e->to);
			if (t2 >= 0)
				need(n, task_name(p, e->to, (enum ry_deps_task)t2), "runtime");
		}
		break;
	}
	}
}

static json_t *task_json(const struct planner *p, size_t s, enum ry_deps_task t, bool *mark)
{
	const struct ry_deps_service *svc = &p->g->services[s];
	const struct ry_deps_task_template *tt = template_of(p, svc, t);
	char *cmd = expand_command(command_template(p, svc, t), svc);
	json_t *o = json_object();
	char *name = task_name(p, s, t);
	json_object_set_new(o, "name", json_string(name));
	free(name);
	json_object_set_new(o, "service", json_string(svc->name));
	json_object_set_new(o, "kind", json_string(task_kind[t]));
	json_object_set_new(o, "command", json_string(cmd));
	free(cmd);
	if (tt) {
		if (tt->requires.n) {
			json_t *r = json_array();
			for (size_t i = 0; i < tt->requires.n; i++)
				json_array_append_new(r, json_string(tt->requires.items[i]));
			json_object_set_new(o, "requires", r);
		}
		if (tt->cpu)
			json_object_set_new(o, "cpu", json_integer(tt->cpu));
		if (tt->mem_mb)
			json_object_set_new(o, "mem_mb", json_integer(tt->mem_mb));
		if (tt->timeout_s)
			json_object_set_new(o, "timeout_s", json_integer(tt->timeout_s));
		if (tt->pool)
			json_object_set_new(o, "pool", json_string(tt->pool));
	}
	bool cacheable = t == RY_DEPS_TASK_BUILD || t == RY_DEPS_TASK_TEST;
	json_object_set_new(o, "cacheable", json_boolean(cacheable));
	if (cacheable)
		json_object_set_new(o, "inputs", inputs_of(p, s));

	/* only_if_changed: the roots and paths this task's work depends on */
	struct alternatives a = { 0 };
	bool *deploy_of = ry_calloc(p->n + 1, sizeof(bool));
	if (t == RY_DEPS_TASK_INTEGRATION) {
		memset(mark, 0, p->n * sizeof(bool));
		for (size_t i = 0; i < p->g->nedges; i++) {
			const struct ry_deps_edge *e = &p->g->edges[i];
			if (e->from == s && e->kind == RY_DEPS_RUNTIME && redeployed(p, e->to) &&
			    ry_deps_edge_active(p->g, e)) {
				add_closure(p, e->to, mark);
				deploy_of[e->to] = true;
			}
		}
		marked_alternatives(p, mark, deploy_of, &a);
	} else if (p->build_hit[s] || t == RY_DEPS_TASK_DEPLOY || t == RY_DEPS_TASK_TEST) {
		memset(mark, 0, p->n * sizeof(bool));
		add_closure(p, s, mark);
		if (t == RY_DEPS_TASK_TEST)
			for (size_t i = 0; i < p->g->nedges; i++) {
				const struct ry_deps_edge *e = &p->g->edges[i];
				if (e->from == s && e->kind == RY_DEPS_TEST && ry_deps_edge_active(p->g, e))
					add_closure(p, e->to, mark);
			}
		deploy_of[s] = t == RY_DEPS_TASK_DEPLOY;
		marked_alternatives(p, mark, deploy_of, &a);
	} else {
		a.all = true;	/* built only so its tests have it: always */
	}
	free(deploy_of);
	json_object_set_new(o, "only_if_changed", pattern_of(&a));

	struct needs n = { json_array(), { 0 } };
	add_needs(p, s, t, &n);
	json_object_set_new(o, "needs", n.arr);
	p->plan->nedges += n.seen.n;
	ry_strlist_release(&n.seen);
	return o;
}

/* ---- putting it together ---------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool normalize_paths(const struct ry_strlist *paths, struct ry_strlist *out, char **err)
{
	for (size_t i = 0; i < paths->n; i++) {
		char *norm = ry_deps_path_normalize(paths->items[i]);
		if (!norm || !strcmp(norm, ".")) {
			*err = ry_asprintf("changed path \"%s\" is not a path inside the repository "
					   "(relative to it)", paths->items[i]);
			free(norm);
			return false;
		}
		ry_strlist_add(out, norm);
		free(norm);
	}
	if (out->n > 1)
		qsort(out->items, out->n, sizeof(char *), cmp_str);
	size_t k = 0;
	for (size_t i = 0; i < out->n; i++) {
		if (k > 0 && !strcmp(out->items[k - 1], out->items[i])) {
			free(out->items[i]);
			continue;
		}
		out->items[k++] = out->items[i];
	}
	out->n = k;
	return true;
}

/* The planned services (by name: the graph's order) and their tasks. */
static void collect(struct planner *p)
{
	const struct ry_deps_graph *g = p->g;
	struct ry_plan *plan = p->plan;
	plan->svcs = ry_calloc(p->n + 1, sizeof(*plan->svcs));
	for (size_t s = 0; s < p->n; s++) {
		enum ry_plan_why why;
		long runtime_edge = -1;
		const char *changed = p->seed_reason[s];
		if (changed)
			why = RY_PLAN_CHANGED;
		else if (p->build_hit[s])
			why = RY_PLAN_BUILD;
		else if ((changed = p->deploy_reason[s]) != NULL)
			why = RY_PLAN_CHANGED;	/* only the file that runs it */
		else if (p->test_hit[s])
			why = RY_PLAN_TEST;
		else if (p->runtime_hit[s])
			why = RY_PLAN_RUNTIME;
		else
			continue;
		if (why == RY_PLAN_RUNTIME)
			for (size_t i = 0; i < g->nedges && runtime_edge < 0; i++) {
				const struct ry_deps_edge *e = &g->edges[i];
				if (e->from == s && e->kind == RY_DEPS_RUNTIME && redeployed(p, e->to) &&
				    ry_deps_edge_active(g, e))
					runtime_edge = (long)i;
			}
		struct ry_plan_service *ps = &plan->svcs[plan->n];
		ps->service = s;
		ps->why = why;
		ps->reason = why == RY_PLAN_CHANGED ? ry_strdup(changed)
						    : reason_of(p, s, why, runtime_edge);
		const struct ry_deps_service *svc = &g->services[s];
		bool built = p->build_hit[s] || p->test_hit[s];
		ps->task[RY_DEPS_TASK_BUILD] = built;
		ps->task[RY_DEPS_TASK_TEST] = built;
		ps->task[RY_DEPS_TASK_DEPLOY] = redeployed(p, s);
		ps->task[RY_DEPS_TASK_INTEGRATION] = p->runtime_hit[s];
		for (int t = 0; t < RY_DEPS_NTASKS; t++)
			if (ps->task[t] && !command_template(p, svc, (enum ry_deps_task)t))
				ps->task[t] = false;
		p->in_plan[s] = (long)plan->n;
		plan->n++;
	}
}

static char *spec_json(struct planner *p, const struct ry_plan_options *opt)
{
	struct ry_plan *plan = p->plan;
	json_t *tasks = json_array();
	bool *mark = ry_calloc(p->n + 1, sizeof(bool));
	for (size_t i = 0; i < plan->n; i++)
		for (int t = 0; t < RY_DEPS_NTASKS; t++)
			if (plan->svcs[i].task[t]) {
				json_array_append_new(tasks, task_json(p, plan->svcs[i].service,
								       (enum ry_deps_task)t, mark));
				plan->ntasks++;
			}
	free(mark);
	if (!plan->ntasks) {
		json_decref(tasks);
		return NULL;
	}
	json_t *root = json_object();
	const char *repo = opt && opt->repository ? opt->repository : "repository";
	char *name = opt && opt->revision ? ry_asprintf("%s@%.12s", repo, opt->revision)
					  : ry_asprintf("%s change", repo);
	json_object_set_new(root, "name", json_string(name));
	free(name);
	if (p->cfg && p->cfg->team)
		json_object_set_new(root, "team", json_string(p->cfg->team));
	if (opt && opt->revision)
		json_object_set_new(root, "revision", json_string(opt->revision));
	if (opt && opt->source)
		json_object_set_new(root, "source", json_string(opt->source));
	json_t *changed = json_array();
	for (size_t i = 0; i < plan->changed.n; i++)
		json_array_append_new(changed, json_string(plan->changed.items[i]));
	json_object_set_new(root, "changed_paths", changed);
	json_object_set_new(root, "tasks", tasks);
	char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	char *out = ry_strdup(s ? s : "{}");
	free(s);
	return out;
}

static void planner_release(struct planner *p)
{
	free(p->owns);
	free(p->aggr);
	free(p->lits);
	for (size_t i = 0; i < p->nres; i++)
		ry_match_free(p->res[i]);
	free(p->res);
	free(p->res_start);
	free(p->globs);
	for (size_t i = 0; i < p->n; i++) {
		free(p->seed_reason ? p->seed_reason[i] : NULL);
		free(p->deploy_reason ? p->deploy_reason[i] : NULL);
	}
	free(p->seed_reason);
	free(p->deploy_reason);
	free(p->build_hit);
	free(p->test_hit);
	free(p->runtime_hit);
	free(p->parent_edge);
	free(p->in_plan);
	free(p->on_cycle);
	ry_graph_release(&p->build);
}

bool ry_plan_make(const struct ry_deps_graph *g, const struct ry_deps_config *cfg,
		  const struct ry_strlist *paths, const struct ry_plan_options *opt,
		  struct ry_plan *plan, char **err)
{
	struct planner p = { .g = g, .cfg = cfg, .plan = plan, .n = g->nservices };
	bool ok = false;

	memset(plan, 0, sizeof(*plan));
	if (!normalize_paths(paths, &plan->changed, err))
		return false;
	p.seed_reason = ry_calloc(p.n + 1, sizeof(char *));
	p.deploy_reason = ry_calloc(p.n + 1, sizeof(char *));
	p.build_hit = ry_calloc(p.n + 1, sizeof(bool));
	p.test_hit = ry_calloc(p.n + 1, sizeof(bool));
	p.runtime_hit = ry_calloc(p.n + 1, sizeof(bool));
	p.parent_edge = ry_malloc((p.n + 1) * sizeof(long));
	p.in_plan = ry_malloc((p.n + 1) * sizeof(long));
	p.on_cycle = ry_calloc(g->nedges + 1, sizeof(bool));
	for (size_t i = 0; i < p.n; i++)
		p.parent_edge[i] = p.in_plan[i] = -1;
	index_graph(&p);
	find_seeds(&p);
	affected(&p);

	/* a build/test cycle among what must be rebuilt cannot be planned */
	bool *among = ry_calloc(p.n + 1, sizeof(bool));
	for (size_t i = 0; i < p.n; i++)
		among[i] = p.build_hit[i] || p.test_hit[i];
	struct ry_strlist cycles = { 0 };
	if (ry_deps_check_cycles(g, among, &cycles, NULL, 3) > 0) {
		struct ry_buf b = RY_BUF_INIT;
		for (size_t i = 0; i < cycles.n; i++)
			ry_buf_printf(&b, "%s%s", i ? "\n" : "", cycles.items[i]);
		*err = ry_buf_detach(&b);
		ry_strlist_release(&cycles);
		free(among);
		goto out;
	}
	for (size_t i = 0; i < p.n; i++)
		among[i] |= p.runtime_hit[i] || p.deploy_reason[i];
	(void)ry_deps_check_cycles(g, among, NULL, &plan->warnings, 5);
	free(among);
	ry_deps_runtime_cycle_edges(g, p.on_cycle);

	pick_parents(&p);
	collect(&p);
	plan->spec = spec_json(&p, opt);
	ok = true;
out:
	planner_release(&p);
	return ok;
}

void ry_plan_release(struct ry_plan *plan)
{
	for (size_t i = 0; i < plan->n; i++)
		free(plan->svcs[i].reason);
	free(plan->svcs);
	ry_strlist_release(&plan->changed);
	ry_strlist_release(&plan->unowned);
	ry_strlist_release(&plan->warnings);
	free(plan->spec);
	memset(plan, 0, sizeof(*plan));
}

/* ---- for people ---------------------------------------------------------------------------- */

void ry_plan_format(const struct ry_plan *plan, const struct ry_deps_graph *g, struct ry_buf *out)
{
	size_t width = 0;
	for (size_t i = 0; i < plan->n; i++) {
		size_t w = strlen(g->services[plan->svcs[i].service].name);
		width = w > width ? w : width;
	}
	if (!plan->n) {
		ry_buf_printf(out, "nothing to do: no service is affected by the %zu changed path%s\n",
			      plan->changed.n, plan->changed.n == 1 ? "" : "s");
	} else {
		ry_buf_printf(out, "%zu of %zu services affected by %zu changed path%s:\n", plan->n,
			      g->nservices, plan->changed.n, plan->changed.n == 1 ? "" : "s");
		for (size_t i = 0; i < plan->n; i++) {
			const struct ry_plan_service *ps = &plan->svcs[i];
			ry_buf_printf(out, "  %s: %s\n", g->services[ps->service].name, ps->reason);
			bool any = false;
			for (int t = 0; t < RY_DEPS_NTASKS; t++)
				any |= ps->task[t];
			if (!any)
				ry_buf_printf(out, "  %*s  (no task: no template for ecosystem %s)\n",
					      (int)width, "", g->services[ps->service].ecosystem);
		}
	}
	if (plan->unowned.n) {
		ry_buf_printf(out, "not in any service (ignored):");
		for (size_t i = 0; i < plan->unowned.n; i++)
			ry_buf_printf(out, " %s", plan->unowned.items[i]);
		ry_buf_putc(out, '\n');
	}
	for (size_t i = 0; i < plan->warnings.n; i++)
		ry_buf_printf(out, "warning: %s\n", plan->warnings.items[i]);
	if (!plan->spec)
		return;
	json_error_t jerr;
	json_t *root = json_loads(plan->spec, 0, &jerr);
	json_t *tasks = json_object_get(root, "tasks");
	ry_buf_printf(out, "tasks (%zu, %zu edges):\n", plan->ntasks, plan->nedges);
	size_t i;
	json_t *t;
	json_array_foreach(tasks, i, t) {
		ry_buf_printf(out, "  %s\n      %s\n", json_string_value(json_object_get(t, "name")),
			      json_string_value(json_object_get(t, "command")));
		json_t *needs = json_object_get(t, "needs");
		if (json_array_size(needs)) {
			ry_buf_puts(out, "      after");
			size_t k;
			json_t *nd;
			json_array_foreach(needs, k, nd)
				ry_buf_printf(out, "%s %s (%s)", k ? "," : "",
					      json_string_value(json_object_get(nd, "task")),
					      json_string_value(json_object_get(nd, "kind")));
			ry_buf_putc(out, '\n');
		}
	}
	json_decref(root);
}
