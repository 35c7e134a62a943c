/*
 * Planned agents from Terraform, Pulumi and Kubernetes JSON (jansson).
 */
#include "inventory/inventory.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILE (64 << 20)

struct reader {
	struct ry_inventory *inv;
	const char *file;
	char *err;
};

static char *vformat(const char *path, const char *fmt, va_list ap) RY_PRINTF(2, 0);

/* "PATH: message", whatever its length. */
static char *vformat(const char *path, const char *fmt, va_list ap)
{
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_printf(&b, "%s: ", path);
	ry_buf_vprintf(&b, fmt, ap);
	return ry_buf_detach(&b);
}

static bool rfail(struct reader *r, const char *path, const char *fmt, ...) RY_PRINTF(3, 4);

/* Records the first error as "FILE: PATH: message"; returns false. */
static bool rfail(struct reader *r, const char *path, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = vformat(path, fmt, ap);
	va_end(ap);
	if (!r->err)
		r->err = ry_asprintf("%s: %s", r->file, msg);
	free(msg);
	return false;
}

static void note(struct reader *r, const char *path, const char *fmt, ...) RY_PRINTF(3, 4);

static void note(struct reader *r, const char *path, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *line = vformat(path, fmt, ap);
	va_end(ap);
	ry_strlist_add(&r->inv->notes, line);
	free(line);
}

/* $.a.b, or $["a b"] for keys that are not identifiers. */
static char *child_key(const char *path, const char *key)
{
	bool plain = *key && (isalpha((unsigned char)*key) || *key == '_');
	for (const char *s = key; plain && *s; s++)
		plain = isalnum((unsigned char)*s) || *s == '_' || *s == '-';
	if (plain)
		return ry_asprintf("%s.%s", path, key);
	json_t *s = json_string(key);
	char *quoted = s ? json_dumps(s, JSON_ENCODE_ANY) : ry_strdup("\"?\"");
	json_decref(s);
	char *out = ry_asprintf("%s[%s]", path, quoted);
	free(quoted);
	return out;
}

static char *child_index(const char *path, size_t i)
{
	return ry_asprintf("%s[%zu]", path, i);
}

bool ry_inventory_tool_parse(const char *name, enum ry_inventory_tool *out)
{
	static const char *const names[] = { "terraform", "pulumi", "kubernetes" };
	for (size_t i = 0; i < RY_ARRAY_SIZE(names); i++) {
		if (strcmp(name, names[i]) == 0) {
			*out = (enum ry_inventory_tool)i;
			return true;
		}
	}
	return false;
}

const char *ry_inventory_tool_name(enum ry_inventory_tool tool)
{
	return tool == RY_INVENTORY_TERRAFORM ? "terraform" : tool == RY_INVENTORY_PULUMI ? "pulumi"
											   : "kubernetes";
}

bool ry_inventory_quantity(const char *s, double *out)
{
	static const struct {
		const char *suffix;
		double mult;
	} suffixes[] = {
		{ "Ki", 1024.0 }, { "Mi", 1048576.0 }, { "Gi", 1073741824.0 },
		{ "Ti", 1099511627776.0 }, { "Pi", 1125899906842624.0 }, { "Ei", 1152921504606846976.0 },
		{ "KiB", 1024.0 }, { "MiB", 1048576.0 }, { "GiB", 1073741824.0 }, { "TiB", 1099511627776.0 },
		{ "KB", 1e3 }, { "MB", 1e6 }, { "GB", 1e9 }, { "TB", 1e12 },
		{ "n", -1e9 }, { "u", -1e6 }, { "m", -1e3 }, { "k", 1e3 }, { "M", 1e6 },
		{ "G", 1e9 }, { "T", 1e12 }, { "P", 1e15 }, { "E", 1e18 }, { "", 1 },
	};
	char *end;
	if (!*s || isspace((unsigned char)*s) || *s == '-')
		return false;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || !isfinite(v) || v < 0)
		return false;
	/* strtod took "1e3" as an exponent; "1E" alone is the exa suffix. */
	for (size_t i = 0; i < RY_ARRAY_SIZE(suffixes); i++) {
		if (strcmp(end, suffixes[i].suffix) == 0) {
			double m = suffixes[i].mult;	/* < 0: divide, so 3800m is exactly 3.8 */
			*out = m < 0 ? v / -m : v * m;
			return true;
		}
	}
	return false;
}

/* Workers report uname's names: x86_64, aarch64. */
static const char *arch_name(const char *a)
{
	if (strcasecmp(a, "amd64") == 0 || strcasecmp(a, "x64") == 0 || strcasecmp(a, "x86-64") == 0)
		return "x86_64";
	if (strcasecmp(a, "arm64") == 0)
		return "aarch64";
	if (strcasecmp(a, "386") == 0 || strcasecmp(a, "x86") == 0)
		return "i686";
	return a;
}

static bool label_ok(const char *s)
{
	if (!*s || strlen(s) > 100)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.:/=+-", *s))
			return false;
	return true;
}

static void agent_release(struct ry_inventory_agent *a)
{
	free(a->name);
	ry_strlist_release(&a->labels);
	free(a->os);
	free(a->arch);
	free(a->origin);
}

void ry_inventory_release(struct ry_inventory *inv)
{
	for (size_t i = 0; i < inv->n; i++)
		agent_release(&inv->agents[i]);
	free(inv->agents);
	ry_strlist_release(&inv->notes);
	memset(inv, 0, sizeof(*inv));
}

static bool add_label(struct reader *r, struct ry_inventory_agent *a, const char *label, const char *path)
{
	if (!label_ok(label))
		return rfail(r, path, "label \"%s\": letters, digits and _.:/=+- only", label);
	if (!ry_strlist_has(&a->labels, label))
		ry_strlist_add(&a->labels, label);
	return true;
}

static bool push_agent(struct reader *r, struct ry_inventory_agent *a)
{
	for (size_t i = 0; i < r->inv->n; i++) {
		if (strcmp(r->inv->agents[i].name, a->name) == 0) {
			rfail(r, a->origin, "agent \"%s\" is already planned at %s", a->name,
			      r->inv->agents[i].origin);
			agent_release(a);
			return false;
		}
	}
	r->inv->agents = ry_realloc(r->inv->agents, (r->inv->n + 1) * sizeof(*r->inv->agents));
	r->inv->agents[r->inv->n++] = *a;
	return true;
}

/* ---- agent objects in outputs --------------------------------------------- */

static const char *const name_keys[] = { "name", "hostname", "host", NULL };
static const char *const cpu_keys[] = { "cpu", "cpus", "vcpu", "vcpus", "cores", NULL };
static const char *const mem_mb_keys[] = { "memory_mb", "mem_mb", "ram_mb", NULL };
static const char *const mem_gb_keys[] = { "memory_gb", "mem_gb", "ram_gb", NULL };
static const char *const mem_keys[] = { "memory", "mem", "ram", NULL };

static json_t *first_of(json_t *obj, const char *const *keys, const char **which)
{
	for (size_t i = 0; keys[i]; i++) {
		json_t *v = json_object_get(obj, keys[i]);
		if (v && !json_is_null(v)) {
			*which = keys[i];
			return v;
		}
	}
	return NULL;
}

static bool looks_like_agent(json_t *v, bool named_by_key)
{
	const char *k;
	if (!json_is_object(v))
		return false;
	bool named = named_by_key || first_of(v, name_keys, &k);
	bool facts = json_object_get(v, "labels") || first_of(v, cpu_keys, &k) ||
		     first_of(v, mem_mb_keys, &k) || first_of(v, mem_gb_keys, &k) ||
		     first_of(v, mem_keys, &k) || json_object_get(v, "os") || json_object_get(v, "arch");
	return named && facts;
}

/* A number, or a string holding one (Terraform outputs strings for numbers often). */
static bool number_of(struct reader *r, json_t *v, const char *path, bool quantity, double *out)
{
	if (json_is_number(v)) {
		*out = json_number_value(v);
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end = NULL;
		bool good = quantity ? ry_inventory_quantity(s, out) : (*out = strtod(s, &end), end != s && !*end);
		if (!good)
			return rfail(r, path, "\"%s\" is not a %s", s, quantity ? "quantity such as 16Gi" : "number");
	} else {
		return rfail(r, path, "expected a number");
	}
	if (!(*out > 0) || !isfinite(*out))
		return rfail(r, path, "must be more than 0");
	return true;
}

static bool labels_of(struct reader *r, struct ry_inventory_agent *a, json_t *v, const char *path)
{
	bool ok = true;
	if (json_is_string(v)) {
		struct ry_strlist l = { 0 };
		ry_strlist_split(&l, json_string_value(v), ',');
		for (size_t i = 0; ok && i < l.n; i++)
			ok = add_label(r, a, l.items[i], path);
		ry_strlist_release(&l);
	} else if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) {
			char *p = child_index(path, i);
			ok = json_is_string(e) ? add_label(r, a, json_string_value(e), p)
					       : rfail(r, p, "a label must be a string");
			free(p);
			if (!ok)
				break;
		}
	} else if (json_is_object(v)) {
		/* {gpu: true, docker: "true", zone: "a"}: true-ish keys; key=value otherwise. */
		const char *k;
		json_t *e;
		json_object_foreach(v, k, e) {
			char *p = child_key(path, k);
			if (json_is_true(e) || (json_is_string(e) && (strcmp(json_string_value(e), "true") == 0 ||
								     !*json_string_value(e)))) {
				ok = add_label(r, a, k, p);
			} else if (json_is_string(e) && strcmp(json_string_value(e), "false") != 0) {
				char *l = ry_asprintf("%s=%s", k, json_string_value(e));
				ok = add_label(r, a, l, p);
				free(l);
			} else if (!json_is_false(e) && !json_is_string(e)) {
				ok = rfail(r, p, "a label value must be true, false or a string");
			}
			free(p);
			if (!ok)
				break;
		}
	} else {
		ok = rfail(r, path, "labels must be a list, a comma-separated string or a map");
	}
	return ok;
}

static bool agent_from(struct reader *r, json_t *obj, const char *path, const char *default_name)
{
	struct ry_inventory_agent a = { .cpu = -1, .mem_mb = -1 };
	const char *which = NULL;
	json_t *v;
	bool ok = true;
	char *p = NULL;

	v = first_of(obj, name_keys, &which);
	if (v && !json_is_string(v)) {
		p = child_key(path, which);
		ok = rfail(r, p, "the agent's name must be a string");
		goto out;
	}
	const char *name = v ? json_string_value(v) : default_name;
	if (!name || !*name || strlen(name) > 200) {
		ok = rfail(r, path, "an agent needs a name (name, hostname or host), 1 to 200 characters");
		goto out;
	}
	a.name = ry_strdup(name);
	a.origin = ry_strdup(path);
	if ((v = json_object_get(obj, "labels")) && !json_is_null(v)) {
		p = child_key(path, "labels");
		if (!(ok = labels_of(r, &a, v, p)))
			goto out;
		free(p);
		p = NULL;
	}
	if ((v = first_of(obj, cpu_keys, &which))) {
		p = child_key(path, which);
		if (!(ok = number_of(r, v, p, json_is_string(v), &a.cpu)))
			goto out;
		free(p);
		p = NULL;
	}
	double mem;
	if ((v = first_of(obj, mem_mb_keys, &which)) || (v = first_of(obj, mem_gb_keys, &which))) {
		bool gb = strstr(which, "_gb") != NULL;
		p = child_key(path, which);
		if (!(ok = number_of(r, v, p, false, &mem)))
			goto out;
		a.mem_mb = (long long)llround(gb ? mem * 1024 : mem);
	} else if ((v = first_of(obj, mem_keys, &which))) {
		/* A bare number is MB; a string is a quantity ("16Gi", "64GB"). */
		p = child_key(path, which);
		if (!(ok = number_of(r, v, p, json_is_string(v), &mem)))
			goto out;
		a.mem_mb = (long long)llround(json_is_string(v) ? mem / 1048576.0 : mem);
	}
	if (a.mem_mb == 0)
		a.mem_mb = 1;	/* less than 1 MB planned: still known */
	if ((v = json_object_get(obj, "os")) && json_is_string(v)) {
		a.os = ry_strdup(json_string_value(v));
		for (char *c = a.os; *c; c++)
			*c = (char)tolower((unsigned char)*c);
	}
	if ((v = first_of(obj, (const char *const[]){ "arch", "architecture", NULL }, &which)) &&
	    json_is_string(v))
		a.arch = ry_strdup(arch_name(json_string_value(v)));
	ok = push_agent(r, &a);
	memset(&a, 0, sizeof(a));
out:
	free(p);
	agent_release(&a);
	return ok;
}

/* The agents in an output's value: one, a list, or a map of them. */
static bool collect(struct reader *r, json_t *v, const char *path, bool *found)
{
	*found = false;
	if (looks_like_agent(v, false)) {
		*found = true;
		return agent_from(r, v, path, NULL);
	}
	if (json_is_array(v) && json_array_size(v) > 0) {
		size_t i, agents = 0;
		json_t *e;
		json_array_foreach(v, i, e)
			agents += looks_like_agent(e, false);
		if (agents == 0)
			return true;
		*found = true;
		json_array_foreach(v, i, e) {
			char *p = child_index(path, i);
			bool ok = looks_like_agent(e, false) ? agent_from(r, e, p, NULL)
				  : rfail(r, p, "not an agent like the other elements (an object with a "
					  "name and labels, cpu, memory, os or arch)");
			free(p);
			if (!ok)
				return false;
		}
		return true;
	}
	if (json_is_object(v) && json_object_size(v) > 0) {
		const char *k;
		json_t *e;
		json_object_foreach(v, k, e)
			if (!looks_like_agent(e, true))
				return true;
		*found = true;
		json_object_foreach(v, k, e) {
			char *p = child_key(path, k);
			bool ok = agent_from(r, e, p, k);
			free(p);
			if (!ok)
				return false;
		}
	}
	return true;
}

/* Terraform and Pulumi outputs: {name: {value, sensitive, type}} / {name: value}. */
static bool outputs(struct reader *r, json_t *outs, const char *path, bool terraform)
{
	const char *k;
	json_t *o;
	if (!json_is_object(outs))
		return rfail(r, path, "expected an object of outputs");
	json_object_foreach(outs, k, o) {
		char *p = child_key(path, k);
		json_t *value = o;
		bool ok = true, found = false;
		if (terraform) {
			if (!json_is_object(o) || !json_object_get(o, "value")) {
				ok = rfail(r, p, "not Terraform output: expected an object with \"value\"");
			} else if (json_is_true(json_object_get(o, "sensitive"))) {
				note(r, p, "sensitive output skipped: the inventory never stores secrets");
				value = NULL;
			} else {
				value = json_object_get(o, "value");
				free(p);
				p = child_key(path, k);
				char *vp = ry_asprintf("%s.value", p);
				free(p);
				p = vp;
			}
		} else if (json_is_string(o) && strcmp(json_string_value(o), "[secret]") == 0) {
			note(r, p, "secret output skipped: the inventory never stores secrets");
			value = NULL;
		}
		if (ok && value && !(ok = collect(r, value, p, &found)))
			;
		else if (ok && value && !found)
			note(r, p, "no agents in this output");
		free(p);
		if (!ok)
			return false;
	}
	return true;
}

/* ---- terraform show -json: resources tagged railyard_labels -------------- */

static json_t *tag(json_t *values, json_t *sensitive, const char *key)
{
	static const char *const maps[] = { "tags", "labels", "tags_all", NULL };
	for (size_t i = 0; maps[i]; i++) {
		json_t *m = json_object_get(values, maps[i]);
		json_t *v = json_object_get(m, key);
		json_t *secret = json_object_get(json_object_get(sensitive, maps[i]), key);
		if (v && json_is_string(v) && !json_is_true(secret))
			return v;
	}
	return NULL;
}

static bool resource_agent(struct reader *r, json_t *res, const char *path)
{
	json_t *values = json_object_get(res, "values"), *sens = json_object_get(res, "sensitive_values");
	json_t *labels = tag(values, sens, "railyard_labels");
	if (!labels)
		labels = tag(values, sens, "railyard-labels");
	if (!labels)
		return true;
	const char *addr = json_string_value(json_object_get(res, "address"));
	char *origin = addr ? ry_strdup(addr) : ry_strdup(path);
	struct ry_inventory_agent a = { .cpu = -1, .mem_mb = -1 };
	json_t *v;
	bool ok = true;

	a.origin = origin;
	v = tag(values, sens, "Name");
	if (!v)
		v = tag(values, sens, "railyard_name");
	if (!v && !json_is_true(json_object_get(sens, "name")))
		v = json_object_get(values, "name");
	if (!v && !json_is_true(json_object_get(sens, "hostname")))
		v = json_object_get(values, "hostname");
	a.name = ry_strdup(v && json_is_string(v) ? json_string_value(v) : origin);
	/* "gpu,docker"; GCP label values cannot hold commas, so + ; and spaces separate too. */
	struct ry_strlist l = { 0 };
	char *text = ry_strdup(json_string_value(labels));
	for (char *c = text; *c; c++)
		if (*c == ';' || *c == '+' || *c == ' ')
			*c = ',';
	ry_strlist_split(&l, text, ',');
	free(text);
	for (size_t i = 0; ok && i < l.n; i++)
		ok = add_label(r, &a, l.items[i], origin);
	ry_strlist_release(&l);
	static const char *const cpu_attrs[] = { "vcpu", "vcpus", "cpus", "cores", "cpu", NULL };
	const char *which;
	double d;
	if (ok && ((v = tag(values, sens, "railyard_cpu")) ||
		   ((v = first_of(values, cpu_attrs, &which)) && !json_is_true(json_object_get(sens, which))))) {
		if ((ok = number_of(r, v, origin, false, &d)))
			a.cpu = d;
	}
	if (ok && ((v = tag(values, sens, "railyard_mem_mb")) ||
		   ((v = json_object_get(values, "memory")) && json_is_number(v) &&
		    !json_is_true(json_object_get(sens, "memory"))))) {
		if ((ok = number_of(r, v, origin, false, &d)))
			a.mem_mb = (long long)llround(d);	/* libvirt, proxmox: MB */
	}
	if (ok && (v = tag(values, sens, "railyard_os")))
		a.os = ry_strdup(json_string_value(v));
	if (ok && (v = tag(values, sens, "railyard_arch")))
		a.arch = ry_strdup(arch_name(json_string_value(v)));
	if (!ok) {
		agent_release(&a);
		return false;
	}
	return push_agent(r, &a);
}

static bool module_resources(struct reader *r, json_t *mod, const char *path, int depth)
{
	size_t i;
	json_t *e;
	bool ok = true;
	if (!mod || depth > 50)
		return true;
	json_t *res = json_object_get(mod, "resources");
	json_array_foreach(res, i, e) {
		char *p = ry_asprintf("%s.resources[%zu]", path, i);
		ok = resource_agent(r, e, p);
		free(p);
		if (!ok)
			return false;
	}
	json_t *children = json_object_get(mod, "child_modules");
	json_array_foreach(children, i, e) {
		char *p = ry_asprintf("%s.child_modules[%zu]", path, i);
		ok = module_resources(r, e, p, depth + 1);
		free(p);
		if (!ok)
			return false;
	}
	return true;
}

static bool terraform(struct reader *r, json_t *root)
{
	if (!json_is_object(root))
		return rfail(r, "$", "expected `terraform output -json` or `terraform show -json` output (an object)");
	if (!json_object_get(root, "format_version"))
		return outputs(r, root, "$", true);
	/* show -json: a state ("values") or a plan ("planned_values"). */
	const char *key = json_object_get(root, "values") ? "values" : "planned_values";
	json_t *vals = json_object_get(root, key);
	if (!vals) {
		note(r, "$", "an empty state: no outputs, no resources");
		return true;
	}
	char *p = ry_asprintf("$.%s.outputs", key);
	bool ok = !json_object_get(vals, "outputs") || outputs(r, json_object_get(vals, "outputs"), p, true);
	free(p);
	p = ry_asprintf("$.%s.root_module", key);
	ok = ok && module_resources(r, json_object_get(vals, "root_module"), p, 0);
	free(p);
	return ok;
}

/* ---- kubectl get nodes -o json -------------------------------------------- */

static bool node(struct reader *r, json_t *n, const char *path)
{
	struct ry_inventory_agent a = { .cpu = -1, .mem_mb = -1 };
	json_t *meta = json_object_get(n, "metadata"), *status = json_object_get(n, "status");
	json_t *labels = json_object_get(meta, "labels"), *cap = json_object_get(status, "capacity");
	json_t *info = json_object_get(status, "nodeInfo");
	const char *name = json_string_value(json_object_get(meta, "name"));
	bool ok = true;
	char *p = NULL;

	if (!json_is_object(n) || strcmp(json_string_value(json_object_get(n, "kind")) ?
					 json_string_value(json_object_get(n, "kind")) : "", "Node") != 0)
		return rfail(r, path, "expected a Node (kind: Node)");
	if (!name || !*name) {
		p = ry_asprintf("%s.metadata.name", path);
		ok = rfail(r, p, "a Node needs a name");
		free(p);
		return ok;
	}
	a.name = ry_strdup(name);
	a.origin = ry_asprintf("%s (node %s)", path, name);
	const char *k;
	json_t *v;
	json_object_foreach(labels, k, v) {
		if (strncmp(k, "railyard.dev/", 13) != 0 || !json_is_string(v) ||
		    strcmp(json_string_value(v), "false") == 0)
			continue;
		p = ry_asprintf("%s.metadata.labels[\"%s\"]", path, k);
		ok = add_label(r, &a, k + 13, p);
		free(p);
		p = NULL;
		if (!ok)
			goto out;
	}
	const char *os = json_string_value(json_object_get(labels, "kubernetes.io/os"));
	const char *arch = json_string_value(json_object_get(labels, "kubernetes.io/arch"));
	if (!os)
		os = json_string_value(json_object_get(info, "operatingSystem"));
	if (!arch)
		arch = json_string_value(json_object_get(info, "architecture"));
	a.os = os ? ry_strdup(os) : NULL;
	a.arch = arch ? ry_strdup(arch_name(arch)) : NULL;
	double q;
	if ((v = json_object_get(cap, "cpu"))) {
		p = ry_asprintf("%s.status.capacity.cpu", path);
		if (!json_is_string(v) || !ry_inventory_quantity(json_string_value(v), &q) || q <= 0) {
			ok = rfail(r, p, "\"%s\" is not a cpu quantity such as 16 or 3800m",
				   json_is_string(v) ? json_string_value(v) : "(not a string)");
			goto out;
		}
		a.cpu = q;
		free(p);
		p = NULL;
	}
	if ((v = json_object_get(cap, "memory"))) {
		p = ry_asprintf("%s.status.capacity.memory", path);
		if (!json_is_string(v) || !ry_inventory_quantity(json_string_value(v), &q) || q <= 0) {
			ok = rfail(r, p, "\"%s\" is not a memory quantity such as 16Gi",
				   json_is_string(v) ? json_string_value(v) : "(not a string)");
			goto out;
		}
		a.mem_mb = (long long)llround(q / 1048576.0);
		if (a.mem_mb == 0)
			a.mem_mb = 1;
		free(p);
		p = NULL;
	}
	if (json_is_true(json_object_get(json_object_get(n, "spec"), "unschedulable")))
		note(r, a.origin, "cordoned (unschedulable); still planned");
	ok = push_agent(r, &a);
	memset(&a, 0, sizeof(a));
out:
	free(p);
	agent_release(&a);
	return ok;
}

static bool kubernetes(struct reader *r, json_t *root)
{
	const char *kind = json_string_value(json_object_get(root, "kind"));
	if (kind && strcmp(kind, "Node") == 0)
		return node(r, root, "$");
	json_t *items = json_object_get(root, "items");
	if (!kind || (strcmp(kind, "List") != 0 && strcmp(kind, "NodeList") != 0) || !json_is_array(items))
		return rfail(r, "$", "expected `kubectl get nodes -o json` output (kind List or NodeList with items, or a Node)");
	size_t i;
	json_t *e;
	json_array_foreach(items, i, e) {
		char *p = ry_asprintf("$.items[%zu]", i);
		bool ok = node(r, e, p);
		free(p);
		if (!ok)
			return false;
	}
	return true;
}

bool ry_inventory_parse(enum ry_inventory_tool tool, const char *file, const char *data, size_t len,
			struct ry_inventory *out, char **err)
{
	struct reader r = { .inv = out, .file = file };
	json_error_t jerr;
	bool ok;

	memset(out, 0, sizeof(*out));
	json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		*err = ry_asprintf("%s:%d:%d: invalid JSON: %s", file, jerr.line, jerr.column, jerr.text);
		return false;
	}
	if (tool == RY_INVENTORY_TERRAFORM)
		ok = terraform(&r, root);
	else if (tool == RY_INVENTORY_PULUMI)
		ok = json_is_object(root) ? outputs(&r, root, "$", false)
			: rfail(&r, "$", "expected `pulumi stack output --json` output (an object of outputs)");
	else
		ok = kubernetes(&r, root);
	json_decref(root);
	if (ok && out->n == 0)
		ok = rfail(&r, "$", "no agents found (see docs/integrations.md for what counts as one)");
	if (!ok) {
		*err = r.err;
		ry_inventory_release(out);
	}
	return ok;
}

bool ry_inventory_parse_file(enum ry_inventory_tool tool, const char *path,
			     struct ry_inventory *out, char **err)
{
	struct ry_buf b = RY_BUF_INIT;
	bool ok = false;

	memset(out, 0, sizeof(*out));
	if (ry_read_file(path, MAX_FILE, &b, err))
		ok = ry_inventory_parse(tool, strcmp(path, "-") == 0 ? "<stdin>" : path, b.data, b.len,
					out, err);
	ry_buf_release(&b);
	return ok;
}

char *ry_inventory_json(const struct ry_inventory *inv)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < inv->n; i++) {
		const struct ry_inventory_agent *a = &inv->agents[i];
		json_t *labels = json_array();
		for (size_t k = 0; k < a->labels.n; k++)
			json_array_append_new(labels, json_string(a->labels.items[k]));
		json_t *o = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:s}",
				      "name", a->name, "labels", labels,
				      "cpu", a->cpu < 0 ? json_null() : a->cpu == floor(a->cpu) && a->cpu < 1e15
					     ? json_integer((json_int_t)a->cpu) : json_real(a->cpu),
				      "mem_mb", a->mem_mb >= 0 ? json_integer(a->mem_mb) : json_null(),
				      "os", a->os ? json_string(a->os) : json_null(),
				      "arch", a->arch ? json_string(a->arch) : json_null(),
				      "origin", a->origin);
		json_array_append_new(arr, o);
	}
	char *s = json_dumps(arr, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_decref(arr);
	char *out = ry_strdup(s ? s : "[]");
	free(s);
	return out;
}
