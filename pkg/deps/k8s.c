/*
 * Kubernetes manifests (any other YAML holding apiVersion and kind):
 * workloads (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob,
 * Pod, Rollout, Knative Service) are tied to repository services by their
 * container images, else by their names; others become services without a
 * root.  A Service object's name is another name for the workloads its
 * selector picks.  Runtime edges from container env values (after $(VAR)
 * expansion) and ConfigMap values (configMapKeyRef, envFrom) whose
 * variable holds an address naming another service.  Templated YAML
 * (Helm's {{ }}) is skipped.
 */
#include "deps/detect.h"

#include <stdlib.h>
#include <string.h>

struct k8s_env {
	char *name;
	char *value;		/* NULL with a configMapKeyRef */
	char *cm, *cm_key;
	int line;
};

struct k8s_workload {
	char *file;
	char *name;
	int line;
	struct ry_strlist labels;	/* "k=v" of the pod template */
	struct ry_strlist images;
	struct ry_strlist envfrom;	/* ConfigMap names */
	struct k8s_env *env;
	size_t nenv;
	size_t service;
};

struct k8s_kv {
	char *key;
	char *value;
	int line;
};

struct k8s_configmap {
	char *file;
	char *name;
	struct k8s_kv *data;
	size_t n;
};

struct k8s_svc {
	char *name;
	struct ry_strlist selector;	/* "k=v" */
};

struct k8s_state {
	struct k8s_workload *wl;
	size_t nwl;
	struct k8s_configmap *cms;
	size_t ncms;
	struct k8s_svc *svcs;
	size_t nsvcs;
	size_t templated;
};

static struct k8s_state *state(struct deps_ctx *c)
{
	if (!c->state[DET_K8S])
		c->state[DET_K8S] = ry_calloc(1, sizeof(struct k8s_state));
	return c->state[DET_K8S];
}

static bool wants(const char *path, const char *base)
{
	(void)path;
	size_t n = strlen(base);
	bool yaml = (n > 5 && !strcmp(base + n - 5, ".yaml")) || (n > 4 && !strcmp(base + n - 4, ".yml"));
	return yaml && strcmp(base, "railyard.yaml") != 0;
}

static void map_pairs(const struct spec_node *m, struct ry_strlist *out)
{
	if (!m || m->type != SPEC_MAP)
		return;
	for (size_t i = 0; i + 1 < m->n; i += 2) {
		const char *v = deps_node_text(m->items[i + 1]);
		char *kv = ry_asprintf("%s=%s", m->items[i]->text, v ? v : "");
		ry_strlist_add(out, kv);
		free(kv);
	}
}

static void read_container(struct k8s_workload *w, const struct spec_node *ct)
{
	const char *image = deps_map_text(ct, "image");
	if (image)
		ry_strlist_add(&w->images, image);
	const struct spec_node *env = spec_map_get(ct, "env");
	for (size_t i = 0; env && env->type == SPEC_SEQ && i < env->n; i++) {
		const struct spec_node *e = env->items[i];
		const char *name = deps_map_text(e, "name");
		if (!name)
			continue;
		struct k8s_env ev = { 0 };
		const struct spec_node *v = spec_map_get(e, "value");
		const struct spec_node *ref = spec_map_get(spec_map_get(e, "valueFrom"), "configMapKeyRef");
		if (deps_node_text(v)) {
			ev.value = ry_strdup(v->text);
			ev.line = v->line;
		} else if (ref && deps_map_text(ref, "name") && deps_map_text(ref, "key")) {
			ev.cm = ry_strdup(deps_map_text(ref, "name"));
			ev.cm_key = ry_strdup(deps_map_text(ref, "key"));
			ev.line = ref->line;
		} else {
			continue;
		}
		ev.name = ry_strdup(name);
		w->env = ry_realloc(w->env, (w->nenv + 1) * sizeof(*w->env));
		w->env[w->nenv++] = ev;
	}
	const struct spec_node *ef = spec_map_get(ct, "envFrom");
	for (size_t i = 0; ef && ef->type == SPEC_SEQ && i < ef->n; i++) {
		const char *cm = deps_map_text(spec_map_get(ef->items[i], "configMapRef"), "name");
		if (cm)
			ry_strlist_add(&w->envfrom, cm);
	}
}

/* The pod template of a workload kind, or NULL. */
static const struct spec_node *pod_template(const char *kind, const char *api,
					    const struct spec_node *doc)
{
	const struct spec_node *spec = spec_map_get(doc, "spec");
	static const char *const templated[] = { "Deployment", "StatefulSet", "DaemonSet",
		"ReplicaSet", "Job", "Rollout", NULL };
	for (const char *const *k = templated; *k; k++)
		if (!strcmp(kind, *k))
			return spec_map_get(spec, "template");
	if (!strcmp(kind, "CronJob"))
		return spec_map_get(spec_map_get(spec_map_get(spec, "jobTemplate"), "spec"), "template");
	if (!strcmp(kind, "Service") && api && strstr(api, "serving.knative.dev"))
		return spec_map_get(spec, "template");
	if (!strcmp(kind, "Pod"))
		return doc;
	return NULL;
}

static void on_doc(struct deps_ctx *c, void *arg, const char *path, const struct spec_node *doc)
{
	struct k8s_state *st = arg;
	const char *kind = deps_map_text(doc, "kind");
	const char *api = deps_map_text(doc, "apiVersion");
	if (!kind || !api)
		return;
	if (!strcmp(kind, "List")) {
		const struct spec_node *items = spec_map_get(doc, "items");
		for (size_t i = 0; items && items->type == SPEC_SEQ && i < items->n; i++)
			if (items->items[i]->type == SPEC_MAP)
				on_doc(c, arg, path, items->items[i]);
		return;
	}
	const struct spec_node *meta = spec_map_get(doc, "metadata");
	const char *name = deps_map_text(meta, "name");
	if (!name)
		return;
	const struct spec_node *tpl = pod_template(kind, api, doc);
	if (tpl) {
		st->wl = ry_realloc(st->wl, (st->nwl + 1) * sizeof(*st->wl));
		struct k8s_workload *w = &st->wl[st->nwl++];
		memset(w, 0, sizeof(*w));
		w->file = ry_strdup(path);
		w->name = ry_strdup(name);
		w->line = spec_map_get(meta, "name")->line;
		w->service = DEPS_NONE;
		map_pairs(spec_map_get(spec_map_get(tpl, "metadata"), "labels"), &w->labels);
		const struct spec_node *pod = tpl == doc ? spec_map_get(doc, "spec")
							 : spec_map_get(tpl, "spec");
		static const char *const lists[] = { "containers", "initContainers", NULL };
		for (const char *const *l = lists; *l; l++) {
			const struct spec_node *cs = spec_map_get(pod, *l);
			for (size_t i = 0; cs && cs->type == SPEC_SEQ && i < cs->n; i++)
				if (cs->items[i]->type == SPEC_MAP)
					read_container(w, cs->items[i]);
		}
	} else if (!strcmp(kind, "Service")) {
		st->svcs = ry_realloc(st->svcs, (st->nsvcs + 1) * sizeof(*st->svcs));
		struct k8s_svc *s = &st->svcs[st->nsvcs++];
		memset(s, 0, sizeof(*s));
		s->name = ry_strdup(name);
		map_pairs(spec_map_get(spec_map_get(doc, "spec"), "selector"), &s->selector);
	} else if (!strcmp(kind, "ConfigMap")) {
		st->cms = ry_realloc(st->cms, (st->ncms + 1) * sizeof(*st->cms));
		struct k8s_configmap *cm = &st->cms[st->ncms++];
		memset(cm, 0, sizeof(*cm));
		cm->file = ry_strdup(path);
		cm->name = ry_strdup(name);
		const struct spec_node *data = spec_map_get(doc, "data");
		for (size_t i = 0; data && data->type == SPEC_MAP && i + 1 < data->n; i += 2) {
			const char *v = deps_node_text(data->items[i + 1]);
			if (!v)
				continue;
			cm->data = ry_realloc(cm->data, (cm->n + 1) * sizeof(*cm->data));
			cm->data[cm->n].key = ry_strdup(data->items[i]->text);
			cm->data[cm->n].value = ry_strdup(v);
			cm->data[cm->n].line = data->items[i]->line;
			cm->n++;
		}
	}
}

static void parse(struct deps_ctx *c, const char *path, const char *data, size_t len)
{
	struct k8s_state *st = state(c);
	/* cheap tests first: most YAML in a repository is not a manifest */
	if (!memmem(data, len, "apiVersion", 10) || !memmem(data, len, "kind", 4))
		return;
	if (memmem(data, len, "{{", 2)) {
		st->templated++;
		return;
	}
	deps_yaml_each(c, path, data, len, st, on_doc);
}

/* Whether every "k=v" of sel is among labels. */
static bool selects(const struct ry_strlist *sel, const struct ry_strlist *labels)
{
	if (!sel->n)
		return false;
	for (size_t i = 0; i < sel->n; i++)
		if (!ry_strlist_has(labels, sel->items[i]))
			return false;
	return true;
}

static void late(struct deps_ctx *c)
{
	struct k8s_state *st = state(c);
	if (st->templated)
		deps_note(c, "%zu templated YAML files (Helm, {{ }}) skipped", st->templated);
	for (size_t i = 0; i < st->nwl; i++) {
		struct k8s_workload *w = &st->wl[i];
		size_t s = DEPS_NONE;
		for (size_t k = 0; k < w->images.n && s == DEPS_NONE; k++)
			s = deps_image_service(c, w->images.items[k], true);
		if (s == DEPS_NONE)
			s = deps_lookup(c, NS_HOST, w->name);
		if (s == DEPS_NONE)
			s = deps_add_late_service(c, w->name, NULL, "image", w->file, w->line,
						  "kubernetes");
		w->service = s;
		deps_alias(c, NS_HOST, w->name, s);
		struct ry_deps_service *svc = &c->g->services[s];
		if (!svc->deploy_file) {
			svc->deploy_file = ry_strdup(w->file);
			svc->deploy_name = ry_strdup(w->name);
		}
		deps_deploy_path(c, w->file, s, "Kubernetes manifest that runs it");
	}
	for (size_t i = 0; i < st->nsvcs; i++)
		for (size_t k = 0; k < st->nwl; k++)
			if (selects(&st->svcs[i].selector, &st->wl[k].labels))
				deps_alias(c, NS_HOST, st->svcs[i].name, st->wl[k].service);
}

static const struct k8s_configmap *find_cm(const struct k8s_state *st, const char *name)
{
	for (size_t i = 0; i < st->ncms; i++)
		if (!strcmp(st->cms[i].name, name))
			return &st->cms[i];
	return NULL;
}

/* $(VAR) refers to an earlier variable of the same container. */
static const char *env_lookup(void *arg, const char *name)
{
	const struct k8s_workload *w = arg;
	for (size_t i = 0; i < w->nenv; i++)
		if (w->env[i].value && !strcmp(w->env[i].name, name))
			return w->env[i].value;
	return NULL;
}

static char *k8s_expand(const struct k8s_workload *w, const char *v)
{
	/* $(VAR) -> ${VAR}, then the shared expansion */
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_puts(&b, "");
	for (const char *p = v; *p; p++) {
		if (p[0] == '$' && p[1] == '(') {
			const char *close = strchr(p, ')');
			if (close) {
				ry_buf_puts(&b, "${");
				ry_buf_add(&b, p + 2, (size_t)(close - p - 2));
				ry_buf_putc(&b, '}');
				p = close;
				continue;
			}
		}
		if (*p == '$')
			ry_buf_putc(&b, '$');	/* a literal $ stays literal */
		ry_buf_putc(&b, *p);
	}
	char *out = deps_expand(b.data, env_lookup, (void *)w);
	ry_buf_release(&b);
	return out;
}

static void link(struct deps_ctx *c)
{
	struct k8s_state *st = state(c);
	for (size_t i = 0; i < st->nwl; i++) {
		const struct k8s_workload *w = &st->wl[i];
		for (size_t k = 0; k < w->nenv; k++) {
			const struct k8s_env *e = &w->env[k];
			if (e->value) {
				char *v = k8s_expand(w, e->value);
				deps_address_edges(c, w->service, e->name, v, NULL, "kubernetes env",
						   w->file, e->line);
				free(v);
				continue;
			}
			const struct k8s_configmap *cm = find_cm(st, e->cm);
			for (size_t d = 0; cm && d < cm->n; d++)
				if (!strcmp(cm->data[d].key, e->cm_key))
					deps_address_edges(c, w->service, e->name, cm->data[d].value,
							   NULL, "kubernetes configMapKeyRef", cm->file,
							   cm->data[d].line);
		}
		for (size_t k = 0; k < w->envfrom.n; k++) {
			const struct k8s_configmap *cm = find_cm(st, w->envfrom.items[k]);
			for (size_t d = 0; cm && d < cm->n; d++)
				deps_address_edges(c, w->service, cm->data[d].key, cm->data[d].value,
						   NULL, "kubernetes envFrom", cm->file, cm->data[d].line);
		}
	}
}

static void release(struct deps_ctx *c)
{
	struct k8s_state *st = c->state[DET_K8S];
	if (!st)
		return;
	for (size_t i = 0; i < st->nwl; i++) {
		struct k8s_workload *w = &st->wl[i];
		for (size_t k = 0; k < w->nenv; k++) {
			free(w->env[k].name);
			free(w->env[k].value);
			free(w->env[k].cm);
			free(w->env[k].cm_key);
		}
		free(w->env);
		free(w->file);
		free(w->name);
		ry_strlist_release(&w->labels);
		ry_strlist_release(&w->images);
		ry_strlist_release(&w->envfrom);
	}
	free(st->wl);
	for (size_t i = 0; i < st->ncms; i++) {
		for (size_t k = 0; k < st->cms[i].n; k++) {
			free(st->cms[i].data[k].key);
			free(st->cms[i].data[k].value);
		}
		free(st->cms[i].data);
		free(st->cms[i].file);
		free(st->cms[i].name);
	}
	free(st->cms);
	for (size_t i = 0; i < st->nsvcs; i++) {
		free(st->svcs[i].name);
		ry_strlist_release(&st->svcs[i].selector);
	}
	free(st->svcs);
	free(st);
	c->state[DET_K8S] = NULL;
}

const struct deps_detector deps_detector_k8s = {
	.name = "kubernetes",
	.wants = wants,
	.parse = parse,
	.late = late,
	.link = link,
	.release = release,
};
