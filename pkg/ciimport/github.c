/*
 * GitHub Actions workflows: jobs become tasks (one per matrix
 * combination), `run` steps are joined into the task's command, `needs`
 * become edges, `runs-on` becomes os/arch/labels, `timeout-minutes`
 * timeout_s, `if:` a run_if (or the job is left out, when it is false for
 * the branch, tag and event of the options), `on.<event>.paths`
 * only_if_changed.  Actions (`uses:`), services, containers and
 * expressions that only the run knows are reported as notes.
 */
#include "ciimport/gh_expr.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COMBOS 256	/* GitHub's own limit per matrix */

struct gh {
	struct ci_build b;
	const struct ci_node *root;
	const struct ci_node *env;	/* workflow env */
	const struct ci_node *defaults;	/* workflow defaults.run */
	char *only_if_changed;		/* from on.<event>.paths */
	struct ry_strlist dropped;	/* job ids whose if: is false */
};

static const char *event(const struct gh *g)
{
	return g->b.opt->event ? g->b.opt->event : "push";
}

/* ---- on: ------------------------------------------------------------------ */

static bool glob_list(struct gh *g, const struct ci_node *n, struct ry_strlist *out, const char *what)
{
	if (!n)
		return true;
	if (n->type == CI_SCALAR && ci_str(n)) {
		ry_strlist_add(out, n->text);
		return true;
	}
	if (n->type != CI_SEQ)
		return ci_fail(&g->b, n, "%s must be a list of patterns", what);
	for (size_t i = 0; i < n->n; i++) {
		if (!ci_str(n->items[i]))
			return ci_fail(&g->b, n->items[i], "%s must be a list of patterns", what);
		ry_strlist_add(out, n->items[i]->text);
	}
	return true;
}

/* Does the ref pass a branches:/tags: filter (with ! negations, last match wins)? */
static bool ref_passes(const struct ry_strlist *filter, const char *ref)
{
	bool in = false;
	for (size_t i = 0; i < filter->n; i++) {
		const char *pat = filter->items[i];
		bool neg = pat[0] == '!';
		if (ry_glob_match(pat + neg, ref, RY_GLOB_BRACES | RY_GLOB_GITHUB))
			in = !neg;
	}
	return in;
}

/* paths: [a, !b] / paths-ignore: [c] as one pattern over changed paths. */
static char *paths_regex(const struct ry_strlist *paths, const struct ry_strlist *ignore)
{
	struct ry_strlist pos = { 0 }, neg = { 0 };
	for (size_t i = 0; i < paths->n; i++) {
		const char *p = paths->items[i];
		ry_strlist_add(p[0] == '!' ? &neg : &pos, p + (p[0] == '!'));
	}
	for (size_t i = 0; i < ignore->n; i++)
		ry_strlist_add(&neg, ignore->items[i]);
	char *r = NULL;
	char *p = ry_globs_regex(pos.items, pos.n, RY_GLOB_BRACES | RY_GLOB_GITHUB),
	     *n = ry_globs_regex(neg.items, neg.n, RY_GLOB_BRACES | RY_GLOB_GITHUB);
	if (p && n)
		r = ry_asprintf("^(?!%s)%s", n + 1, p + 1);	/* both start with ^ */
	else if (n)
		r = ry_asprintf("^(?!%s)", n + 1);
	else if (p)
		r = ry_strdup(p);
	free(p);
	free(n);
	ry_strlist_release(&pos);
	ry_strlist_release(&neg);
	return r;
}

static bool read_on(struct gh *g)
{
	const struct ci_node *on = ci_get(g->root, "on");
	const struct ci_node *cfg = NULL;
	const char *ev = event(g);
	bool found = false;

	if (!on)
		return ci_fail(&g->b, g->root, "a workflow needs \"on\" (the events that run it)");
	if (on->type == CI_SCALAR) {
		found = ci_str(on) && strcmp(on->text, ev) == 0;
	} else if (on->type == CI_SEQ) {
		for (size_t i = 0; i < on->n; i++)
			found |= ci_str(on->items[i]) && strcmp(on->items[i]->text, ev) == 0;
	} else {
		for (size_t i = 0; i + 1 < on->n; i += 2) {
			if (strcmp(on->items[i]->text, ev) == 0) {
				found = true;
				cfg = on->items[i + 1];
			}
		}
	}
	if (!found) {
		ci_note(&g->b, on, "the workflow does not run on %s events (on:); imported anyway", ev);
		return true;
	}
	if (!cfg || cfg->type != CI_MAP)
		return true;

	struct ry_strlist paths = { 0 }, ignore = { 0 }, refs = { 0 };
	bool ok = glob_list(g, ci_get(cfg, "paths"), &paths, "paths") &&
		  glob_list(g, ci_get(cfg, "paths-ignore"), &ignore, "paths-ignore");
	if (ok && (paths.n || ignore.n)) {
		g->only_if_changed = paths_regex(&paths, &ignore);
		ok = ci_check_regex(&g->b, cfg, g->only_if_changed);
	}
	const struct ry_ci_options *o = g->b.opt;
	const char *key = o->tag ? "tags" : "branches";
	const char *ref = o->tag ? o->tag : o->branch ? o->branch : "main";
	const struct ci_node *f = ci_get(cfg, key), *fi = NULL;
	char *ignore_key = ry_asprintf("%s-ignore", key);
	fi = ci_get(cfg, ignore_key);
	if (ok && f && (ok = glob_list(g, f, &refs, key)) && !ref_passes(&refs, ref))
		ci_note(&g->b, f, "on.%s.%s does not match %s; imported anyway", ev, key, ref);
	ry_strlist_release(&refs);
	if (ok && fi && (ok = glob_list(g, fi, &refs, ignore_key)) && ref_passes(&refs, ref))
		ci_note(&g->b, fi, "on.%s.%s excludes %s; imported anyway", ev, ignore_key, ref);
	free(ignore_key);
	ry_strlist_release(&paths);
	ry_strlist_release(&ignore);
	ry_strlist_release(&refs);
	return ok;
}

/* ---- matrix --------------------------------------------------------------- */

static bool node_equal(const struct ci_node *a, const struct ci_node *b)
{
	if (a == b)
		return true;
	if (!a || !b || a->type != b->type || a->n != b->n)
		return false;
	if (a->type == CI_SCALAR)
		return strcmp(a->text, b->text) == 0;
	for (size_t i = 0; i < a->n; i++)
		if (!node_equal(a->items[i], b->items[i]))
			return false;
	return true;
}

/* Does combo hold every key: value of the partial combination m? */
static bool combo_has(const struct ci_combo *combo, const struct ci_node *m)
{
	for (size_t i = 0; i + 1 < m->n; i += 2)
		if (!node_equal(ci_combo_get(combo, m->items[i]->text), m->items[i + 1]))
			return false;
	return true;
}

struct combos {
	struct ci_combo *items;
	size_t n;
};

static void combos_push(struct combos *c, struct ci_combo *combo)
{
	c->items = ry_realloc(c->items, (c->n + 1) * sizeof(*c->items));
	c->items[c->n++] = *combo;
}

static void combos_release(struct combos *c)
{
	for (size_t i = 0; i < c->n; i++)
		ci_combo_release(&c->items[i]);
	free(c->items);
	memset(c, 0, sizeof(*c));
}

/*
 * strategy.matrix as GitHub expands it: the product of the lists (first
 * key outermost), minus `exclude` (partial matches), then each `include`
 * entry added to every combination whose original values it does not
 * change, or as a combination of its own when it fits none.
 */
static bool expand_matrix(struct gh *g, const struct ci_node *m, struct combos *out)
{
	const struct ci_node *include = ci_get(m, "include"), *exclude = ci_get(m, "exclude");
	struct ry_strlist keys = { 0 };
	struct ci_combo empty = { 0 };
	bool ok = true;

	combos_push(out, &empty);
	for (size_t i = 0; i + 1 < m->n; i += 2) {
		const char *k = m->items[i]->text;
		const struct ci_node *vals = m->items[i + 1];
		if (strcmp(k, "include") == 0 || strcmp(k, "exclude") == 0)
			continue;
		if (vals->type != CI_SEQ) {
			ok = ci_fail(&g->b, vals, "matrix key \"%s\" must be a list of values", k);
			goto out;
		}
		ry_strlist_add(&keys, k);
		struct combos next = { 0 };
		for (size_t c = 0; c < out->n; c++) {
			for (size_t v = 0; v < vals->n; v++) {
				struct ci_combo combo;
				ci_combo_copy(&combo, &out->items[c]);
				ci_combo_set(&combo, k, vals->items[v]);
				combos_push(&next, &combo);
			}
		}
		combos_release(out);
		*out = next;
		if (out->n > MAX_COMBOS) {
			ok = ci_fail(&g->b, m, "the matrix has more than %d combinations", MAX_COMBOS);
			goto out;
		}
	}
	if (keys.n == 0)
		combos_release(out);	/* include-only: no base combination */
	if (exclude && exclude->type == CI_SEQ) {
		for (size_t c = 0; c < out->n;) {
			bool gone = false;
			for (size_t e = 0; e < exclude->n && !gone; e++)
				gone = exclude->items[e]->type == CI_MAP && combo_has(&out->items[c], exclude->items[e]);
			if (gone) {
				ci_combo_release(&out->items[c]);
				memmove(out->items + c, out->items + c + 1, (out->n - c - 1) * sizeof(*out->items));
				out->n--;
			} else {
				c++;
			}
		}
	}
	size_t base = out->n;
	for (size_t i = 0; include && include->type == CI_SEQ && i < include->n; i++) {
		const struct ci_node *inc = include->items[i];
		bool fitted = false;
		if (inc->type != CI_MAP) {
			ok = ci_fail(&g->b, inc, "matrix include entries must be mappings");
			goto out;
		}
		for (size_t c = 0; c < base; c++) {
			bool fits = true;
			for (size_t k = 0; k + 1 < inc->n && fits; k += 2)
				if (ry_strlist_has(&keys, inc->items[k]->text))
					fits = node_equal(ci_combo_get(&out->items[c], inc->items[k]->text),
							  inc->items[k + 1]);
			if (!fits)
				continue;
			fitted = true;
			for (size_t k = 0; k + 1 < inc->n; k += 2)
				ci_combo_set(&out->items[c], inc->items[k]->text, inc->items[k + 1]);
		}
		if (!fitted) {
			struct ci_combo combo = { 0 };
			for (size_t k = 0; k + 1 < inc->n; k += 2)
				ci_combo_set(&combo, inc->items[k]->text, inc->items[k + 1]);
			combos_push(out, &combo);
		}
	}
	if (out->n > MAX_COMBOS)
		ok = ci_fail(&g->b, m, "the matrix has more than %d combinations", MAX_COMBOS);
out:
	ry_strlist_release(&keys);
	return ok;
}

/* ---- one job -------------------------------------------------------------- */

/* text with ${{ }} replaced; unknown expressions become "" and a note. */
static char *subst(struct gh *g, const struct ci_node *at, const char *text, struct gh_ctx *ctx)
{
	struct ry_strlist unknown = { 0 };
	char *out = NULL, *err = NULL;
	if (!gh_subst(text, ctx, &out, &unknown, &err)) {
		ci_fail(&g->b, at, "%s", err);
		free(err);
		ry_strlist_release(&unknown);
		return NULL;
	}
	for (size_t i = 0; i < unknown.n; i++)
		ci_note(&g->b, at, "${{ %s }} is only known when GitHub runs the workflow; replaced by \"\"",
			unknown.items[i]);
	ry_strlist_release(&unknown);
	return out;
}

/*
 * An if: under both assumptions (needed jobs succeeded / one failed).
 * *when: "always", "on_success", "on_failure", or NULL for never; returns
 * false on a syntax error.  Without a status function GitHub adds
 * success() &&.
 */
static bool eval_if(struct gh *g, const struct ci_node *cond, struct gh_ctx *ctx, const char **when,
		    bool *unknown)
{
	const char *text = cond->text;
	char *expr;
	size_t n = strlen(text);
	while (*text == ' ')
		text++, n--;
	while (n > 0 && text[n - 1] == ' ')
		n--;
	if (n >= 5 && strncmp(text, "${{", 3) == 0 && strncmp(text + n - 2, "}}", 2) == 0 &&
	    !strstr(text + 3, "${{"))
		expr = ry_strndup(text + 3, n - 5);
	else
		expr = ry_strndup(text, n);

	int result[2];
	*unknown = false;
	for (int failed = 0; failed < 2; failed++) {
		struct gh_val v;
		char *err = NULL;
		ctx->upstream_failed = failed;
		ctx->used_status = false;
		if (!gh_eval(expr, ctx, &v, &err)) {
			ci_fail(&g->b, cond, "if: %s", err);
			free(err);
			free(expr);
			return false;
		}
		int t = gh_truthy(&v);
		gh_val_release(&v);
		if (t < 0) {
			*unknown = true;
			t = 1;	/* kept: the run decides what we cannot */
		}
		if (!ctx->used_status && failed)
			t = 0;	/* implicit success() && */
		result[failed] = t;
	}
	free(expr);
	*when = result[0] && result[1] ? "always" : result[0] ? "on_success" :
		result[1] ? "on_failure" : NULL;
	return true;
}

static void runs_on_label(struct ry_ci_task *t, const char *label)
{
	char lower[64];
	snprintf(lower, sizeof(lower), "%s", label);
	for (char *p = lower; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (strcmp(lower, "self-hosted") == 0)
		return;	/* every railyard agent is */
	const char *os = strncmp(lower, "ubuntu", 6) == 0 || strcmp(lower, "linux") == 0 ? "linux" :
			 strncmp(lower, "windows", 7) == 0 ? "windows" :
			 strncmp(lower, "macos", 5) == 0 ? "darwin" : NULL;
	if (os) {
		free(t->os);
		t->os = ry_strdup(os);
		return;
	}
	const char *arch = ci_arch_name(lower);
	if (arch != lower) {
		free(t->arch);
		t->arch = ry_strdup(arch);
		return;
	}
	if (!ry_strlist_has(&t->requires, label))
		ry_strlist_add(&t->requires, label);
}

static bool runs_on(struct gh *g, struct ry_ci_task *t, const struct ci_node *n, struct gh_ctx *ctx)
{
	if (!n)
		return ci_fail(&g->b, NULL, "%s:%d: job \"%s\" has no runs-on", t->file, t->line, t->job);
	if (n->type == CI_MAP) {
		if (ci_get(n, "group"))
			ci_note(&g->b, n, "runs-on group \"%s\": runner groups do not exist in railyard; "
				"only its labels are required", ci_str(ci_get(n, "group")) ?
				ci_get(n, "group")->text : "?");
		n = ci_get(n, "labels");
		if (!n)
			return true;
	}
	struct ci_node *const *items = n->type == CI_SEQ ? n->items : (struct ci_node *const *)&n;
	size_t count = n->type == CI_SEQ ? n->n : 1;
	for (size_t i = 0; i < count; i++) {
		if (!ci_str(items[i]))
			return ci_fail(&g->b, items[i], "runs-on takes labels (text)");
		char *label = subst(g, items[i], items[i]->text, ctx);
		if (!label)
			return false;
		/* A matrix value may hold several: runs-on: ${{ matrix.runner }}. */
		struct ry_strlist parts = { 0 };
		ry_strlist_split(&parts, label, ',');
		for (size_t k = 0; k < parts.n; k++)
			runs_on_label(t, parts.items[k]);
		ry_strlist_release(&parts);
		free(label);
	}
	return true;
}

/*
 * env into the task (or, with exports, into a step's script).  shadow, when
 * given, gets every variable, also those whose names cannot be exported
 * (bearssl-version): ${{ env.X }} reads them there.
 */
static bool set_env(struct gh *g, struct ry_ci_task *t, const struct ci_node *env, struct gh_ctx *ctx,
		    struct ry_buf *exports, struct ry_ci_task *shadow)
{
	if (!env)
		return true;
	if (env->type == CI_SCALAR) {
		ci_note(&g->b, env, "env from an expression is only known when GitHub runs it; left out");
		return true;
	}
	if (env->type != CI_MAP)
		return ci_fail(&g->b, env, "env must be a mapping of NAME: value");
	for (size_t i = 0; i + 1 < env->n; i += 2) {
		const struct ci_node *k = env->items[i], *v = env->items[i + 1];
		if (v->type != CI_SCALAR)
			return ci_fail(&g->b, v, "env %s: the value must be text", k->text);
		char *val = subst(g, v, ci_is_null(v) ? "" : v->text, ctx);
		if (!val)
			return false;
		if (shadow)
			ci_task_setenv(shadow, k->text, val);
		if (!ci_env_name_ok(k->text)) {
			ci_note(&g->b, k, "env name \"%s\" cannot be an environment variable; only "
				"${{ env.%s }} sees it", k->text, k->text);
		} else if (exports) {
			ry_buf_printf(exports, "export %s=", k->text);
			ci_shell_quote(exports, val);
			ry_buf_putc(exports, '\n');
		} else {
			ci_task_setenv(t, k->text, val);
		}
		free(val);
	}
	return true;
}

/* Minutes (a number, maybe from an expression) into seconds; 0: none. */
static bool minutes(struct gh *g, const struct ci_node *n, struct gh_ctx *ctx, int *seconds)
{
	*seconds = 0;
	if (!n)
		return true;
	char *text = ci_str(n) ? subst(g, n, n->text, ctx) : NULL;
	char *end = NULL;
	double m = text ? strtod(text, &end) : NAN;
	bool ok = text && end != text && *end == '\0' && m > 0;
	free(text);
	if (!ok) {
		if (g->b.err)
			return false;
		return ci_fail(&g->b, n, "timeout-minutes must be a positive number");
	}
	double s = ceil(m * 60);
	if (s > 604800) {
		ci_note(&g->b, n, "timeout-minutes %g is over railyard's limit; 7 days instead", m);
		s = 604800;
	}
	*seconds = (int)s;
	return true;
}

static const char *step_label(const struct ci_node *step, size_t i, char *buf, size_t len)
{
	const char *name = ci_str(ci_get(step, "name"));
	if (name)
		snprintf(buf, len, "step %zu (%s)", i + 1, name);
	else
		snprintf(buf, len, "step %zu", i + 1);
	return buf;
}

/* GitHub's shells as commands reading the script on stdin. */
static char *shell_command(struct gh *g, const struct ci_node *at, const char *shell)
{
	if (!shell || strcmp(shell, "bash") == 0)
		return ry_strdup(shell ? "bash --noprofile --norc -eo pipefail" : "bash -e");
	if (strcmp(shell, "sh") == 0)
		return ry_strdup("sh -e");
	if (strcmp(shell, "python") == 0)
		return ry_strdup("python3 -");
	if (strcmp(shell, "pwsh") == 0)
		return ry_strdup("pwsh -NoLogo -NoProfile -NonInteractive -Command -");
	if (strstr(shell, "{0}")) {
		/* A custom shell reads the script from a file: give it one. */
		struct ry_buf b = RY_BUF_INIT;
		const char *p = strstr(shell, "{0}");
		ry_buf_add(&b, shell, (size_t)(p - shell));
		ry_buf_puts(&b, "/dev/stdin");
		ry_buf_puts(&b, p + 3);
		return ry_buf_detach(&b);
	}
	ci_note(&g->b, at, "shell \"%s\" cannot run on a railyard agent; the step is left out", shell);
	return NULL;
}

struct steps {
	const char *task;	/* for notes: which matrix combination */
	struct ry_buf cmd;
	bool tracked;	/* some step runs after a failure: keep the status by hand */
	size_t nrun;
};

static bool step_runs_after_failure(struct gh *g, const struct ci_node *steps, struct gh_ctx *ctx)
{
	for (size_t i = 0; i < steps->n; i++) {
		const struct ci_node *cond = ci_get(steps->items[i], "if");
		const char *when;
		bool unknown;
		if (ci_str(cond) && ci_get(steps->items[i], "run")) {
			if (!eval_if(g, cond, ctx, &when, &unknown))
				return false;
			if (when && strcmp(when, "on_success") != 0)
				return true;
		}
	}
	return false;
}

static bool add_step(struct gh *g, struct steps *s, const struct ci_node *step, size_t i,
		     const struct ci_node *job, struct gh_ctx *ctx)
{
	char label[256];
	const struct ci_node *run = ci_get(step, "run"), *uses = ci_get(step, "uses");

	step_label(step, i, label, sizeof(label));
	if (step->type != CI_MAP)
		return ci_fail(&g->b, step, "%s must be a mapping", label);
	if (uses) {
		ci_note(&g->b, uses, "%s uses %s: actions run only on GitHub; left out", label,
			ci_str(uses) ? uses->text : "an action");
		return true;
	}
	if (!ci_str(run))
		return ci_fail(&g->b, step, "%s has neither run nor uses", label);

	const char *when = "on_success";
	bool unknown = false;
	const struct ci_node *cond = ci_get(step, "if");
	if (cond && ci_str(cond)) {
		if (!eval_if(g, cond, ctx, &when, &unknown))
			return false;
		if (unknown)
			ci_note(&g->b, cond, "task %s, %s: if: %s is only known when GitHub runs it; "
				"the step is kept", s->task, label, cond->text);
		if (!when) {
			ci_note(&g->b, cond, "task %s, %s: if: %s is false here; left out", s->task, label,
				cond->text);
			return true;
		}
	}
	const struct ci_node *shell_n = ci_get(step, "shell");
	const char *shell = ci_str(shell_n);
	const struct ci_node *wd = ci_get(step, "working-directory");
	const struct ci_node *jdef = ci_get(ci_get(ci_get(job, "defaults"), "run"), "shell");
	const struct ci_node *jwd = ci_get(ci_get(ci_get(job, "defaults"), "run"), "working-directory");
	if (!shell)
		shell = ci_str(jdef) ? jdef->text : ci_str(ci_get(g->defaults, "shell"));
	if (!wd)
		wd = jwd ? jwd : ci_get(g->defaults, "working-directory");
	char *sh = shell_command(g, shell_n ? shell_n : step, shell);
	if (!sh)
		return true;

	struct ry_buf script = RY_BUF_INIT;
	ry_buf_add(&script, "", 0);
	bool ok = set_env(g, NULL, ci_get(step, "env"), ctx, &script, NULL);
	char *body = ok ? subst(g, run, run->text, ctx) : NULL;
	char *dir = ok && ci_str(wd) ? subst(g, wd, wd->text, ctx) : NULL;
	int timeout = 0;
	ok = body && minutes(g, ci_get(step, "timeout-minutes"), ctx, &timeout);
	if (ok) {
		if (dir) {
			ry_buf_puts(&script, "cd -- ");
			ci_shell_quote(&script, dir);
			ry_buf_putc(&script, '\n');
		}
		ry_buf_puts(&script, body);
		struct ry_buf line = RY_BUF_INIT;
		ry_buf_printf(&s->cmd, "# %s, %s:%d\n", label, step->file, step->line);
		if (timeout)
			ry_buf_printf(&line, "timeout %d ", timeout);
		ry_buf_puts(&line, sh);
		int coe = ci_bool(ci_get(step, "continue-on-error"));
		const char *suffix = coe == 1 ? "|| echo \"railyard: step failed, continuing (continue-on-error)\" >&2"
				   : s->tracked ? "|| status=$?" : "";
		if (s->tracked)
			ry_buf_printf(&s->cmd, "if %s; then\n", strcmp(when, "always") == 0 ? "true" :
				      strcmp(when, "on_failure") == 0 ? "[ \"$status\" != 0 ]" : "[ \"$status\" = 0 ]");
		ci_heredoc(&s->cmd, line.data, script.data, suffix);
		if (s->tracked)
			ry_buf_puts(&s->cmd, "fi\n");
		ry_buf_release(&line);
		s->nrun++;
	}
	free(dir);
	free(body);
	free(sh);
	ry_buf_release(&script);
	return ok;
}

static bool job_command(struct gh *g, struct ry_ci_task *t, const struct ci_node *job, struct gh_ctx *ctx)
{
	const struct ci_node *steps = ci_get(job, "steps");
	struct steps s = { t->name, RY_BUF_INIT, false, 0 };
	bool ok = true;

	if (!steps || steps->type != CI_SEQ)
		return ci_fail(&g->b, steps ? steps : job, "job \"%s\" needs a list of steps", t->job);
	s.tracked = step_runs_after_failure(g, steps, ctx);
	if (g->b.err)
		return false;
	ry_buf_puts(&s.cmd, s.tracked ? "status=0\n" : "set -e\n");
	ry_buf_puts(&s.cmd, "export GITHUB_WORKSPACE=\"$PWD\"\n");
	for (size_t i = 0; ok && i < steps->n; i++)
		ok = add_step(g, &s, steps->items[i], i, job, ctx);
	if (s.tracked)
		ry_buf_puts(&s.cmd, "exit \"$status\"\n");
	if (ok && s.nrun > 0)
		t->command = ry_buf_detach(&s.cmd);
	ry_buf_release(&s.cmd);
	return ok;
}

static void job_notes(struct gh *g, const struct ci_node *job, const char *id)
{
	static const struct ci_unsupported unsupported[] = {
		{ "services", "service containers are not started; run them yourself" },
		{ "container", "the job runs on the agent's host, not in this container" },
		{ "continue-on-error", "a failing task fails the pipeline" },
		{ "environment", "deployment environments (protection rules, secrets) do not exist in railyard" },
		{ "concurrency", "concurrency groups are not imported (a pool can cap concurrency)" },
		{ "outputs", "job outputs are not passed between tasks" },
	};
	for (size_t i = 0; i < RY_ARRAY_SIZE(unsupported); i++) {
		const struct ci_node *n = ci_get(job, unsupported[i].key);
		if (n && !(strcmp(unsupported[i].key, "continue-on-error") == 0 && ci_bool(n) == 0))
			ci_note(&g->b, n, "job \"%s\": %s: %s", id, unsupported[i].key, unsupported[i].why);
	}
	const struct ci_node *strategy = ci_get(job, "strategy");
	if (ci_get(strategy, "max-parallel"))
		ci_note(&g->b, ci_get(strategy, "max-parallel"),
			"job \"%s\": max-parallel is not imported (a pool can cap concurrency)", id);
}

static bool add_job_task(struct gh *g, const struct ci_node *key, const struct ci_node *job,
			 const struct ci_combo *combo)
{
	struct ry_ci_task *t;
	const char *id = key->text;
	char *suffix = combo ? ci_combo_suffix(combo) : ry_strdup("");
	char *base = ry_asprintf("%s%s", id, suffix);
	struct gh_ctx ctx = { .matrix = combo, .opt = g->b.opt };
	struct ry_ci_task shadow = { 0 };
	const char *when = NULL;
	bool unknown = false, ok;

	free(suffix);
	t = ci_task_add(&g->b, id, base, key);
	free(base);
	ctx.env = &shadow;
	ok = set_env(g, t, g->env, &ctx, NULL, &shadow) &&
	     set_env(g, t, ci_get(job, "env"), &ctx, NULL, &shadow);
	const struct ci_node *cond = ci_get(job, "if");
	if (ok && cond) {
		if (!ci_str(cond) && ci_bool(cond) < 0)
			ok = ci_fail(&g->b, cond, "if: must be an expression");
		else if (ci_bool(cond) >= 0) {
			when = ci_bool(cond) ? "on_success" : NULL;
		} else {
			ok = eval_if(g, cond, &ctx, &when, &unknown);
			if (ok && unknown)
				ci_note(&g->b, cond, "job \"%s\": if: %s is only known when GitHub runs it "
					"(%s); the job is kept", id, cond->text, ctx.unknown ? ctx.unknown : "?");
		}
		if (ok && !when) {
			ci_note(&g->b, cond, "job \"%s\": if: %s is false for this branch and event; "
				"left out, with the jobs that need it", id, cond->text);
			if (!ry_strlist_has(&g->dropped, t->name))
				ry_strlist_add(&g->dropped, t->name);
		} else if (ok && strcmp(when, "on_success") != 0) {
			t->run_if = ry_strdup(when);
		}
	}
	free(ctx.unknown);
	ctx.unknown = NULL;
	if (!ok)
		goto out;
	ci_task_setenv(t, "CI", "true");
	ci_task_setenv(t, "GITHUB_JOB", id);
	ci_task_setenv(t, "GITHUB_EVENT_NAME", event(g));
	ok = runs_on(g, t, ci_get(job, "runs-on"), &ctx) &&
	     minutes(g, ci_get(job, "timeout-minutes"), &ctx, &t->timeout_s) &&
	     job_command(g, t, job, &ctx);
	if (ok && g->only_if_changed)
		t->only_if_changed = ry_strdup(g->only_if_changed);
out:
	free(ctx.unknown);
	ci_task_release(&shadow);
	return ok;
}

static bool add_job(struct gh *g, const struct ci_node *key, const struct ci_node *job)
{
	const char *id = key->text;
	for (const char *s = id; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '-') ||
		    (s == id && !(isalpha((unsigned char)*s) || *s == '_')))
			return ci_fail(&g->b, key, "job id \"%s\": letters, digits, _ and - only, "
				       "starting with a letter or _", id);
	if (job->type != CI_MAP)
		return ci_fail(&g->b, job, "job \"%s\" must be a mapping", id);
	if (ci_get(job, "uses")) {
		ci_note(&g->b, ci_get(job, "uses"), "job \"%s\" calls the reusable workflow %s: not "
			"imported (import that workflow on its own)", id,
			ci_str(ci_get(job, "uses")) ? ci_get(job, "uses")->text : "?");
		return true;
	}
	job_notes(g, job, id);
	const struct ci_node *matrix = ci_get(ci_get(job, "strategy"), "matrix");
	if (!matrix)
		return add_job_task(g, key, job, NULL);
	if (matrix->type != CI_MAP) {
		ci_note(&g->b, matrix, "job \"%s\": a matrix from an expression is only known when "
			"GitHub runs it; one task without matrix values", id);
		return add_job_task(g, key, job, NULL);
	}
	struct combos combos = { 0 };
	bool ok = expand_matrix(g, matrix, &combos);
	if (ok && combos.n == 0)
		ci_note(&g->b, matrix, "job \"%s\": the matrix has no combination; no task", id);
	for (size_t i = 0; ok && i < combos.n; i++)
		ok = add_job_task(g, key, job, &combos.items[i]);
	combos_release(&combos);
	return ok;
}

/* ---- needs ---------------------------------------------------------------- */

static bool add_needs(struct gh *g, const struct ci_node *jobs)
{
	struct ry_ci_pipeline *p = g->b.p;
	for (size_t j = 0; j + 1 < jobs->n; j += 2) {
		const char *id = jobs->items[j]->text;
		const struct ci_node *needs = ci_get(jobs->items[j + 1], "needs");
		if (!needs)
			continue;
		struct ci_node *const *items = needs->type == CI_SEQ ? needs->items
								     : (struct ci_node *const *)&needs;
		size_t n = needs->type == CI_SEQ ? needs->n : 1;
		for (size_t i = 0; i < n; i++) {
			const char *up = ci_str(items[i]);
			if (!up)
				return ci_fail(&g->b, items[i], "needs takes job ids");
			if (!ci_get(jobs, up))
				return ci_fail(&g->b, items[i], "job \"%s\" needs unknown job \"%s\"", id, up);
			if (strcmp(up, id) == 0)
				return ci_fail(&g->b, items[i], "job \"%s\" needs itself", id);
			for (size_t d = 0; d < p->ntasks; d++) {
				if (strcmp(p->tasks[d].job, id) != 0)
					continue;
				for (size_t u = 0; u < p->ntasks; u++)
					if (strcmp(p->tasks[u].job, up) == 0 &&
					    !ry_strlist_has(&p->tasks[d].needs, p->tasks[u].name))
						ry_strlist_add(&p->tasks[d].needs, p->tasks[u].name);
			}
		}
	}
	return true;
}

/*
 * Jobs whose if: is false are left out; so are the on_success jobs that
 * need them (GitHub skips those too); always/on_failure jobs lose the edge.
 * Jobs left with nothing to run are left out too, their dependents then
 * waiting for what they waited for.
 */
static void prune(struct gh *g)
{
	struct ry_ci_pipeline *p = g->b.p;
	bool changed = true;
	while (changed) {
		changed = false;
		for (size_t i = 0; i < p->ntasks && !changed; i++) {
			struct ry_ci_task *t = &p->tasks[i];
			if (ry_strlist_has(&g->dropped, t->name)) {
				for (size_t k = 0; k < p->ntasks; k++) {
					struct ry_ci_task *d = &p->tasks[k];
					if (ry_strlist_has(&d->needs, t->name) && !d->run_if &&
					    !ry_strlist_has(&g->dropped, d->name)) {
						ci_note_task(&g->b, d, "job \"%s\" needs \"%s\", which is "
							     "left out; left out too", d->job, t->job);
						ry_strlist_add(&g->dropped, d->name);
					}
				}
				ci_task_remove(p, i, false);
				changed = true;
			} else if (!t->command) {
				ci_note_task(&g->b, t, "job \"%s\" has no step railyard can run; left out",
					     t->job);
				ci_task_remove(p, i, true);
				changed = true;
			}
		}
	}
}

bool ry_ci_import_github(const char *path, const struct ry_ci_options *opt,
			 struct ry_ci_pipeline *out, char **err)
{
	static const struct ry_ci_options defaults = { 0 };
	struct gh g = { .b = { .p = out, .opt = opt ? opt : &defaults } };
	struct ci_node *root = NULL;
	bool ok = false;

	memset(out, 0, sizeof(*out));
	if (!ci_load_file(&g.b.doc, path, path, &root, &g.b.err))
		goto out;
	if (!root || root->type != CI_MAP) {
		if (root)
			ci_fail(&g.b, root, "a workflow is a mapping with \"on\" and \"jobs\"");
		else
			g.b.err = ry_asprintf("%s:1: the file is empty", path);
		goto out;
	}
	g.root = root;
	g.env = ci_get(root, "env");
	g.defaults = ci_get(ci_get(root, "defaults"), "run");
	const struct ci_node *jobs = ci_get(root, "jobs");
	if (!jobs || jobs->type != CI_MAP || jobs->n == 0) {
		ci_fail(&g.b, jobs ? jobs : root, "a workflow needs \"jobs\": a mapping of job ids to jobs");
		goto out;
	}
	ci_set_name(out, g.b.opt->name ? g.b.opt->name : ci_str(ci_get(root, "name")), path);
	if (!read_on(&g))
		goto out;
	for (size_t i = 0; i + 1 < jobs->n; i += 2)
		if (!add_job(&g, jobs->items[i], jobs->items[i + 1]))
			goto out;
	if (!add_needs(&g, jobs))
		goto out;
	prune(&g);
	if (out->ntasks == 0) {
		ci_fail(&g.b, jobs, "no job is left to import (see the notes)");
		goto out;
	}
	ok = true;
out:
	if (!ok)
		*err = g.b.err ? g.b.err : ry_strdup("cannot import the workflow");
	else
		free(g.b.err);
	free(g.only_if_changed);
	ry_strlist_release(&g.dropped);
	ci_doc_release(&g.b.doc);
	return ok;
}
