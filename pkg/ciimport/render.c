/*
 * The imported pipeline as a railyard spec (docs/spec.md), written with
 * libyaml's emitter: quoting and block scalars are libyaml's business.
 * Strings that the YAML 1.2 core schema would read as something else
 * (true, 12, null, 1.5) are emitted quoted, so `railyard submit` reads back
 * exactly what was written.
 */
#include "ciimport/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct emit {
	yaml_emitter_t e;
	yaml_event_t ev;
	bool ok;
};

static int write_to_buf(void *data, unsigned char *buffer, size_t size)
{
	ry_buf_add(data, buffer, size);
	return 1;
}

/* Could a plain scalar with this text be read as anything but a string? */
static bool looks_typed(const char *s)
{
	static const char *const words[] = { "null", "Null", "NULL", "~", "true", "True", "TRUE",
		"false", "False", "FALSE", ".inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN", NULL };
	if (!*s)
		return true;
	for (size_t i = 0; words[i]; i++)
		if (strcmp(s, words[i]) == 0)
			return true;
	/* Anything that starts like a number is quoted; quoting more than needed is harmless. */
	return strchr("0123456789+-.", s[0]) != NULL;
}

static void emit(struct emit *m)
{
	if (m->ok && !yaml_emitter_emit(&m->e, &m->ev))
		m->ok = false;
	else if (!m->ok)
		yaml_event_delete(&m->ev);
}

static void str(struct emit *m, const char *s)
{
	bool multiline = strchr(s, '\n') != NULL;
	yaml_scalar_event_initialize(&m->ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s),
				     !looks_typed(s), 1,
				     multiline ? YAML_LITERAL_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE);
	emit(m);
}

static void num(struct emit *m, long v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%ld", v);
	yaml_scalar_event_initialize(&m->ev, NULL, NULL, (yaml_char_t *)buf, (int)strlen(buf), 1, 0,
				     YAML_PLAIN_SCALAR_STYLE);
	emit(m);
}

static void map_start(struct emit *m, bool flow)
{
	yaml_mapping_start_event_initialize(&m->ev, NULL, NULL, 1,
					    flow ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE);
	emit(m);
}

static void map_end(struct emit *m)
{
	yaml_mapping_end_event_initialize(&m->ev);
	emit(m);
}

static void seq_start(struct emit *m, bool flow)
{
	yaml_sequence_start_event_initialize(&m->ev, NULL, NULL, 1,
					     flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE);
	emit(m);
}

static void seq_end(struct emit *m)
{
	yaml_sequence_end_event_initialize(&m->ev);
	emit(m);
}

static void kv(struct emit *m, const char *key, const char *value)
{
	if (!value)
		return;
	str(m, key);
	str(m, value);
}

static void list(struct emit *m, const char *key, const struct ry_strlist *l)
{
	if (l->n == 0)
		return;
	str(m, key);
	seq_start(m, true);
	for (size_t i = 0; i < l->n; i++)
		str(m, l->items[i]);
	seq_end(m);
}

static void task(struct emit *m, const struct ry_ci_task *t)
{
	map_start(m, false);
	kv(m, "name", t->name);
	kv(m, "command", t->command);
	list(m, "requires", &t->requires);
	kv(m, "os", t->os);
	kv(m, "arch", t->arch);
	if (t->nenv > 0) {
		str(m, "env");
		map_start(m, false);
		for (size_t i = 0; i < t->nenv; i++)
			kv(m, t->env[i].name, t->env[i].value);
		map_end(m);
	}
	if (t->timeout_s > 0) {
		str(m, "timeout_s");
		num(m, t->timeout_s);
	}
	kv(m, "run_if", t->run_if);
	kv(m, "only_if_changed", t->only_if_changed);
	kv(m, "pool", t->pool);
	list(m, "needs", &t->needs);
	map_end(m);
}

char *ry_ci_render(const struct ry_ci_pipeline *p, char **err)
{
	struct emit m = { .ok = true };
	struct ry_buf out = RY_BUF_INIT;

	yaml_emitter_initialize(&m.e);
	yaml_emitter_set_output(&m.e, write_to_buf, &out);
	yaml_emitter_set_unicode(&m.e, 1);
	yaml_emitter_set_width(&m.e, -1);
	yaml_emitter_set_indent(&m.e, 2);
	yaml_stream_start_event_initialize(&m.ev, YAML_UTF8_ENCODING);
	emit(&m);
	yaml_document_start_event_initialize(&m.ev, NULL, NULL, NULL, 1);
	emit(&m);
	map_start(&m, false);
	kv(&m, "name", p->name);
	kv(&m, "revision", p->revision);
	if (p->has_changed_paths) {
		str(&m, "changed_paths");
		seq_start(&m, false);
		for (size_t i = 0; i < p->changed_paths.n; i++)
			str(&m, p->changed_paths.items[i]);
		seq_end(&m);
	}
	str(&m, "tasks");
	seq_start(&m, false);
	for (size_t i = 0; i < p->ntasks; i++)
		task(&m, &p->tasks[i]);
	seq_end(&m);
	map_end(&m);
	yaml_document_end_event_initialize(&m.ev, 1);
	emit(&m);
	yaml_stream_end_event_initialize(&m.ev);
	emit(&m);
	if (m.ok && !yaml_emitter_flush(&m.e))
		m.ok = false;
	if (!m.ok)
		*err = ry_asprintf("cannot write the pipeline as YAML: %s",
				   m.e.problem ? m.e.problem : "libyaml's emitter failed");
	yaml_emitter_delete(&m.e);
	if (!m.ok) {
		ry_buf_release(&out);
		return NULL;
	}
	if (out.len == 0 || out.data[out.len - 1] != '\n')
		ry_buf_putc(&out, '\n');
	return ry_buf_detach(&out);
}
