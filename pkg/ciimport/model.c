/*
 * The pipeline both importers build: tasks with unique railyard names,
 * notes with file:line, and the pieces GitHub Actions and GitLab CI share
 * (matrix combinations, glob patterns, shell here-documents).
 */
#include "ciimport/internal.h"
#include "match/match.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool ci_fail(struct ci_build *b, const struct ci_node *at, const char *fmt, ...)
{
	va_list ap;
	char msg[1024];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!b->err)
		b->err = at ? ry_asprintf("%s:%d: %s", at->file, at->line, msg) : ry_strdup(msg);
	return false;
}

static void note_add(struct ci_build *b, char *where, const char *msg)
{
	struct ry_ci_pipeline *p = b->p;

	/* The same note for the same place once (matrix copies repeat them). */
	for (size_t i = 0; i < p->nnotes; i++) {
		if (strcmp(p->notes[i].where, where) == 0 && strcmp(p->notes[i].text, msg) == 0) {
			free(where);
			return;
		}
	}
	p->notes = ry_realloc(p->notes, (p->nnotes + 1) * sizeof(*p->notes));
	p->notes[p->nnotes].where = where;
	p->notes[p->nnotes++].text = ry_strdup(msg);
}

void ci_note(struct ci_build *b, const struct ci_node *at, const char *fmt, ...)
{
	va_list ap;
	char msg[1024];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	note_add(b, ci_where(at), msg);
}

void ci_note_task(struct ci_build *b, const struct ry_ci_task *t, const char *fmt, ...)
{
	va_list ap;
	char msg[1024];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	note_add(b, ry_asprintf("%s:%d", t->file, t->line), msg);
}

static bool name_char_ok(char c, bool first)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')
		return true;
	return !first && strchr(".:/@+=-", c) != NULL;
}

static bool name_taken(const struct ry_ci_pipeline *p, const char *name)
{
	for (size_t i = 0; i < p->ntasks; i++)
		if (strcmp(p->tasks[i].name, name) == 0)
			return true;
	return false;
}

/* base as a railyard task name: other characters become _, at most 190 bytes. */
static char *task_name(const struct ry_ci_pipeline *p, const char *base)
{
	struct ry_buf b = RY_BUF_INIT;
	for (const char *s = base; *s && b.len < 190; s++) {
		bool ok = name_char_ok(*s, b.len == 0);
		if (ok)
			ry_buf_putc(&b, *s);
		else if (b.len == 0 || b.data[b.len - 1] != '_')
			ry_buf_putc(&b, '_');	/* "build job" -> build_job, once per run */
	}
	if (b.len == 0)
		ry_buf_puts(&b, "job");
	char *name = ry_buf_detach(&b);
	for (int k = 2; name_taken(p, name); k++) {
		char *n = ry_asprintf("%.190s.%d", name, k);
		if (!name_taken(p, n)) {
			free(name);
			name = n;
			break;
		}
		free(n);
	}
	return name;
}

struct ry_ci_task *ci_task_add(struct ci_build *b, const char *job, const char *base,
			       const struct ci_node *at)
{
	struct ry_ci_pipeline *p = b->p;
	char *name = task_name(p, base);

	p->tasks = ry_realloc(p->tasks, (p->ntasks + 1) * sizeof(*p->tasks));
	struct ry_ci_task *t = &p->tasks[p->ntasks++];
	memset(t, 0, sizeof(*t));
	t->name = name;
	t->job = ry_strdup(job);
	t->file = ry_strdup(at ? at->file : "");
	t->line = at ? at->line : 0;
	return t;
}

void ci_task_setenv(struct ry_ci_task *t, const char *name, const char *value)
{
	for (size_t i = 0; i < t->nenv; i++) {
		if (strcmp(t->env[i].name, name) == 0) {
			free(t->env[i].value);
			t->env[i].value = ry_strdup(value);
			return;
		}
	}
	t->env = ry_realloc(t->env, (t->nenv + 1) * sizeof(*t->env));
	t->env[t->nenv].name = ry_strdup(name);
	t->env[t->nenv++].value = ry_strdup(value);
}

const char *ci_task_getenv(const struct ry_ci_task *t, const char *name)
{
	for (size_t i = 0; i < t->nenv; i++)
		if (strcmp(t->env[i].name, name) == 0)
			return t->env[i].value;
	return NULL;
}

void ci_task_release(struct ry_ci_task *t)
{
	free(t->name);
	free(t->job);
	free(t->command);
	ry_strlist_release(&t->requires);
	free(t->os);
	free(t->arch);
	for (size_t i = 0; i < t->nenv; i++) {
		free(t->env[i].name);
		free(t->env[i].value);
	}
	free(t->env);
	free(t->run_if);
	free(t->only_if_changed);
	free(t->pool);
	ry_strlist_release(&t->needs);
	free(t->file);
}

static void strlist_remove(struct ry_strlist *l, size_t i)
{
	free(l->items[i]);
	memmove(l->items + i, l->items + i + 1, (l->n - i - 1) * sizeof(*l->items));
	l->n--;
}

void ci_task_remove(struct ry_ci_pipeline *p, size_t i, bool bypass)
{
	struct ry_ci_task *gone = &p->tasks[i];

	for (size_t k = 0; k < p->ntasks; k++) {
		struct ry_ci_task *t = &p->tasks[k];
		for (size_t j = 0; k != i && j < t->needs.n; j++) {
			if (strcmp(t->needs.items[j], gone->name) != 0)
				continue;
			strlist_remove(&t->needs, j);
			for (size_t u = 0; bypass && u < gone->needs.n; u++)
				if (!ry_strlist_has(&t->needs, gone->needs.items[u]))
					ry_strlist_add(&t->needs, gone->needs.items[u]);
			break;
		}
	}
	ci_task_release(gone);
	memmove(p->tasks + i, p->tasks + i + 1, (p->ntasks - i - 1) * sizeof(*p->tasks));
	p->ntasks--;
}

void ry_ci_pipeline_release(struct ry_ci_pipeline *p)
{
	for (size_t i = 0; i < p->ntasks; i++)
		ci_task_release(&p->tasks[i]);
	free(p->tasks);
	for (size_t i = 0; i < p->nnotes; i++) {
		free(p->notes[i].where);
		free(p->notes[i].text);
	}
	free(p->notes);
	free(p->name);
	free(p->revision);
	ry_strlist_release(&p->changed_paths);
	memset(p, 0, sizeof(*p));
}

void ci_set_name(struct ry_ci_pipeline *p, const char *name, const char *path)
{
	char *fallback = NULL;
	if (!name || !*name) {
		const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
		while (*base == '.')
			base++;
		const char *dot = strrchr(base, '.');
		fallback = ry_strndup(base, dot ? (size_t)(dot - base) : strlen(base));
		name = *fallback ? fallback : "pipeline";
	}
	/* At most 200 bytes, cut on a UTF-8 character boundary. */
	size_t n = strlen(name);
	if (n > 200)
		for (n = 200; n > 0 && ((unsigned char)name[n] & 0xC0) == 0x80; n--)
			;
	free(p->name);
	p->name = ry_strndup(name, n);
	free(fallback);
}

const char *ci_arch_name(const char *arch)
{
	static const char *const names[][2] = {
		{ "x64", "x86_64" }, { "amd64", "x86_64" }, { "x86_64", "x86_64" },
		{ "arm64", "aarch64" }, { "aarch64", "aarch64" }, { "x86", "i686" }, { "386", "i686" },
		{ "arm", "armv7l" },
	};
	for (size_t i = 0; i < RY_ARRAY_SIZE(names); i++)
		if (strcasecmp(arch, names[i][0]) == 0)
			return names[i][1];
	return arch;
}

/* ---- matrices ------------------------------------------------------------ */

void ci_combo_set(struct ci_combo *c, const char *key, struct ci_node *value)
{
	for (size_t i = 0; i < c->n; i++) {
		if (strcmp(c->keys.items[i], key) == 0) {
			c->values[i] = value;
			return;
		}
	}
	ry_strlist_add(&c->keys, key);
	c->values = ry_realloc(c->values, (c->n + 1) * sizeof(*c->values));
	c->values[c->n++] = value;
}

struct ci_node *ci_combo_get(const struct ci_combo *c, const char *key)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->keys.items[i], key) == 0)
			return c->values[i];
	return NULL;
}

void ci_combo_copy(struct ci_combo *dst, const struct ci_combo *src)
{
	memset(dst, 0, sizeof(*dst));
	for (size_t i = 0; i < src->n; i++)
		ci_combo_set(dst, src->keys.items[i], src->values[i]);
}

void ci_combo_release(struct ci_combo *c)
{
	ry_strlist_release(&c->keys);
	free(c->values);
	memset(c, 0, sizeof(*c));
}

char *ci_combo_suffix(const struct ci_combo *c)
{
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_add(&b, "", 0);
	for (size_t i = 0; i < c->n; i++) {
		const struct ci_node *v = c->values[i];
		if (v->type != CI_SCALAR) {
			/* An object value: name it by its first scalar member. */
			for (size_t k = 1; v->type == CI_MAP && k < v->n; k += 2)
				if (v->items[k]->type == CI_SCALAR) {
					v = v->items[k];
					break;
				}
		}
		ry_buf_printf(&b, ":%s", v->type == CI_SCALAR ? v->text : c->keys.items[i]);
	}
	return ry_buf_detach(&b);
}

bool ci_check_regex(struct ci_build *b, const struct ci_node *at, const char *re)
{
	char *err = NULL;
	struct ry_match *m = re ? ry_match_compile(re, &err) : NULL;
	bool ok = !re || m;
	if (!ok)
		ci_fail(b, at, "these path patterns do not make a valid pattern (%s): %s", re, err);
	ry_match_free(m);
	free(err);
	return ok;
}

/* ---- shell --------------------------------------------------------------- */

static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
			return true;
	return false;
}

void ci_heredoc(struct ry_buf *cmd, const char *shell, const char *script, const char *suffix)
{
	char delim[40] = "RAILYARD_EOF";
	for (int k = 2; has_line(script, delim); k++)
		snprintf(delim, sizeof(delim), "RAILYARD_EOF_%d", k);
	ry_buf_printf(cmd, "%s <<'%s'%s%s\n%s", shell, delim, suffix && *suffix ? " " : "",
		      suffix ? suffix : "", script);
	if (!*script || script[strlen(script) - 1] != '\n')
		ry_buf_putc(cmd, '\n');
	ry_buf_printf(cmd, "%s\n", delim);
}

void ci_shell_quote(struct ry_buf *b, const char *s)
{
	ry_buf_putc(b, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			ry_buf_puts(b, "'\\''");
		else
			ry_buf_putc(b, *s);
	}
	ry_buf_putc(b, '\'');
}

bool ci_env_name_ok(const char *s)
{
	if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
		return false;
	for (s++; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_' ||
		      (*s >= '0' && *s <= '9')))
			return false;
	return true;
}
