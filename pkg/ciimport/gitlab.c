/*
 * GitLab CI: jobs become tasks (one per parallel/matrix instance),
 * before_script + script (+ after_script, which runs whatever happened)
 * become the command, variables the environment, tags required labels,
 * timeout timeout_s, needs edges (stage order when a job has no needs: it
 * waits for every job of the previous non-empty stage), rules/only/except
 * decide whether a job exists for the branch, tag and source of the
 * options, their changes: become only_if_changed and when: on_failure /
 * always become run_if.  What railyard has no equivalent for is a note.
 */
#include "ciimport/gl_config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INSTANCES 200	/* GitLab's limit for parallel */

struct gl_info {		/* per task, same index as the pipeline's tasks */
	size_t stage;
	const struct ci_node *needs;	/* NULL: stage order */
	const struct ci_node *job;
};

struct gl {
	struct ci_build b;
	struct gl_config cfg;
	struct ci_node *root;
	struct ry_strlist stages;
	struct ry_strlist excluded;	/* jobs that exist in the file but not here */
	struct gl_info *info;
	struct ry_strlist unknown_vars;	/* noted once each */
};

static const char *branch(const struct gl *g)
{
	return g->b.opt->branch ? g->b.opt->branch : "main";
}

static const char *source(const struct gl *g)
{
	return g->b.opt->event ? g->b.opt->event : "push";
}

static bool is_mr(const struct gl *g)
{
	return strcmp(source(g), "merge_request_event") == 0;
}

/* ---- variables ------------------------------------------------------------ */

struct lookup {
	struct gl *g;
	const struct ry_ci_task *t;
};

/* Known before the run: the task's variables, and a few predefined ones. */
static bool lookup_var(void *arg, const char *name, const char **value)
{
	struct lookup *l = arg;
	*value = ci_task_getenv(l->t, name);
	if (*value)
		return true;
	if (strcmp(name, "CI_COMMIT_TAG") == 0 || strcmp(name, "CI_COMMIT_BRANCH") == 0 ||
	    strcmp(name, "CI_PIPELINE_SCHEDULE_DESCRIPTION") == 0 ||
	    (strncmp(name, "CI_MERGE_REQUEST_", 17) == 0 && !is_mr(l->g)))
		return true;	/* not set in this kind of pipeline: null */
	return false;
}

/* $NAME and ${NAME} of known variables replaced, $$ kept as $; others stay. */
static char *expand(struct gl *g, const struct ry_ci_task *t, const struct ci_node *at, const char *s)
{
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_add(&b, "", 0);
	while (*s) {
		if (s[0] == '$' && s[1] == '$') {
			ry_buf_putc(&b, '$');
			s += 2;
			continue;
		}
		if (s[0] != '$') {
			ry_buf_putc(&b, *s++);
			continue;
		}
		bool brace = s[1] == '{';
		const char *start = s + 1 + brace, *end = start;
		while (isalnum((unsigned char)*end) || *end == '_')
			end++;
		if (end == start || (brace && *end != '}')) {
			ry_buf_putc(&b, *s++);
			continue;
		}
		char *name = ry_strndup(start, (size_t)(end - start));
		const char *v = ci_task_getenv(t, name);
		if (v) {
			ry_buf_puts(&b, v);
		} else {
			ry_buf_add(&b, s, (size_t)(end + brace - s));
			if (!ry_strlist_has(&g->unknown_vars, name)) {
				ry_strlist_add(&g->unknown_vars, name);
				ci_note(&g->b, at, "$%s is only known when GitLab runs the job; left as written", name);
			}
		}
		free(name);
		s = end + brace;
	}
	return ry_buf_detach(&b);
}

static bool set_vars(struct gl *g, struct ry_ci_task *t, const struct ci_node *vars,
		     const struct ry_strlist *only)
{
	if (!vars || ci_is_null(vars))
		return true;
	if (vars->type != CI_MAP)
		return ci_fail(&g->b, vars, "variables must be a mapping of NAME: value");
	for (size_t i = 0; i + 1 < vars->n; i += 2) {
		const char *name = vars->items[i]->text;
		const struct ci_node *v = vars->items[i + 1];
		bool raw = false;
		if (only && !ry_strlist_has(only, name))
			continue;
		if (v->type == CI_MAP) {
			raw = ci_bool(ci_get(v, "expand")) == 0;
			v = ci_get(v, "value");
			if (!v)
				continue;	/* a description of a variable set elsewhere */
		}
		if (v->type != CI_SCALAR)
			return ci_fail(&g->b, v, "variable %s: the value must be text", name);
		if (!ci_env_name_ok(name)) {
			ci_note(&g->b, vars->items[i], "variable \"%s\" is not a valid name; left out", name);
			continue;
		}
		const char *text = ci_is_null(v) ? "" : v->text;
		char *val = raw ? ry_strdup(text) : expand(g, t, v, text);
		ci_task_setenv(t, name, val);
		free(val);
	}
	return true;
}

/* ---- conditions ----------------------------------------------------------- */

static bool globs_of(struct gl *g, const struct ry_ci_task *t, const struct ci_node *n,
		     struct ry_strlist *out, const char *what)
{
	if (n && n->type == CI_MAP) {
		if (ci_get(n, "compare_to"))
			ci_note(&g->b, ci_get(n, "compare_to"), "%s: compare_to is not imported: "
				"changed paths are the pipeline's changed_paths", what);
		n = ci_get(n, "paths");
	}
	if (!n || n->type != CI_SEQ)
		return ci_fail(&g->b, n, "%s takes a list of paths", what);
	for (size_t i = 0; i < n->n; i++) {
		if (!ci_str(n->items[i]))
			return ci_fail(&g->b, n->items[i], "%s takes a list of paths", what);
		char *glob = expand(g, t, n->items[i], n->items[i]->text);
		ry_strlist_add(out, glob);
		free(glob);
	}
	return true;
}

/* Evaluates if: 1, 0, or -1 (unknown, noted: the job is kept). -2 on error. */
static int eval_if(struct gl *g, const struct ry_ci_task *t, const struct ci_node *cond)
{
	struct lookup l = { g, t };
	char *unknown = NULL, *err = NULL;
	if (!ci_str(cond))
		return ci_fail(&g->b, cond, "if: must be an expression"), -2;
	int r = gl_eval(cond->text, lookup_var, &l, &unknown, &err);
	if (r == -2) {
		ci_fail(&g->b, cond, "if: %s", err);
		free(err);
	} else if (r == -1) {
		ci_note(&g->b, cond, "if: %s: %s is only known when GitLab runs the pipeline; "
			"taken as true", cond->text, unknown);
	}
	free(unknown);
	return r;
}

static bool exists(struct gl *g, const struct ry_ci_task *t, const struct ci_node *n, bool *any)
{
	struct ry_strlist globs = { 0 };
	*any = false;
	if (!globs_of(g, t, n, &globs, "exists"))
		return false;
	for (size_t i = 0; i < globs.n && !*any; i++)
		*any = gl_repo_has(&g->cfg, globs.items[i]);
	ry_strlist_release(&globs);
	return true;
}

/* What the rules decide for this instance. */
struct verdict {
	const char *when;	/* on_success on_failure always manual delayed never */
	char *only_if_changed;	/* owned */
	const struct ci_node *at;	/* the deciding rule, for notes */
};

static bool decide_rules(struct gl *g, struct ry_ci_task *t, const struct ci_node *rules,
			 const char *job_when, struct verdict *v)
{
	struct ry_strlist changes = { 0 };
	const char *changes_when = NULL;
	bool ok = true;

	if (rules->type != CI_SEQ)
		return ci_fail(&g->b, rules, "rules must be a list");
	v->when = "never";
	v->at = rules;
	for (size_t i = 0; ok && i < rules->n; i++) {
		const struct ci_node *r = rules->items[i];
		if (r->type != CI_MAP) {
			ok = ci_fail(&g->b, r, "each rule must be a mapping (if, changes, exists, when)");
			break;
		}
		const struct ci_node *cond = ci_get(r, "if"), *ch = ci_get(r, "changes");
		const struct ci_node *ex = ci_get(r, "exists"), *w = ci_get(r, "when");
		const char *when = ci_str(w) ? w->text : job_when;
		if (cond) {
			int e = eval_if(g, t, cond);
			if (e == -2)
				ok = false;
			if (e == 0 || e == -2)
				continue;
		}
		if (ex) {
			bool any;
			if (!(ok = exists(g, t, ex, &any)))
				break;
			if (!any)
				continue;
		}
		if (ci_get(r, "variables") && strcmp(when, "never") != 0)
			ok = set_vars(g, t, ci_get(r, "variables"), NULL);
		if (ch) {
			/* Depends on the changed paths: only_if_changed, decided at run time. */
			if (strcmp(when, "never") == 0) {
				ci_note(&g->b, ch, "rules: changes with when: never (\"not when these "
					"change\") cannot be expressed; the rule is ignored");
				continue;
			}
			if (changes_when && strcmp(changes_when, when) != 0)
				ci_note(&g->b, w ? w : r, "rules with changes: and different when: values; "
					"when: %s is used", changes_when);
			if (!changes_when)
				changes_when = when;
			ok = globs_of(g, t, ch, &changes, "changes");
			continue;
		}
		v->when = when;
		v->at = r;
		break;
	}
	if (ok && strcmp(v->when, "never") == 0 && changes.n > 0) {
		v->when = changes_when;
		v->only_if_changed = ry_globs_regex(changes.items, changes.n, RY_GLOB_BRACES);
		ok = ci_check_regex(&g->b, rules, v->only_if_changed);
	} else if (ok && changes.n > 0 && strcmp(changes_when, v->when) != 0) {
		ci_note(&g->b, v->at, "a rule with changes: (when: %s) comes before this one (when: %s); "
			"the job runs with when: %s whatever changed", changes_when, v->when, v->when);
	}
	ry_strlist_release(&changes);
	return ok;
}

/* One only:/except: ref entry against this pipeline. */
static bool ref_matches(struct gl *g, const char *ref)
{
	const struct ry_ci_options *o = g->b.opt;
	const char *name = o->tag ? o->tag : branch(g);
	char *plain = ry_strndup(ref, strcspn(ref, "@"));	/* main@group/project */
	bool hit;
	if (strcmp(plain, "branches") == 0)
		hit = !o->tag && !is_mr(g);
	else if (strcmp(plain, "tags") == 0)
		hit = o->tag != NULL;
	else if (strcmp(plain, "merge_requests") == 0)
		hit = is_mr(g);
	else if (strcmp(plain, "pushes") == 0)
		hit = strcmp(source(g), "push") == 0;
	else if (strcmp(plain, "schedules") == 0 || strcmp(plain, "web") == 0 ||
		 strcmp(plain, "api") == 0 || strcmp(plain, "triggers") == 0 ||
		 strcmp(plain, "pipelines") == 0 || strcmp(plain, "chat") == 0 ||
		 strcmp(plain, "external") == 0 || strcmp(plain, "external_pull_requests") == 0)
		hit = strcmp(source(g), strcmp(plain, "schedules") == 0 ? "schedule" :
			     strcmp(plain, "triggers") == 0 ? "trigger" :
			     strcmp(plain, "pipelines") == 0 ? "pipeline" : plain) == 0;
	else if (plain[0] == '/') {
		char *expr = ry_asprintf("\"%s\" =~ %s", name, plain), *u = NULL, *err = NULL;
		hit = gl_eval(expr, lookup_var, NULL, &u, &err) == 1;
		free(u);
		free(err);
		free(expr);
	} else {
		hit = strcmp(plain, name) == 0;
	}
	free(plain);
	return hit;
}

/* only:/except: (the legacy keywords): true when this part matches. */
static bool only_matches(struct gl *g, struct ry_ci_task *t, const struct ci_node *n,
			 bool except, struct ry_strlist *changes, bool *matched)
{
	const struct ci_node *refs = n->type == CI_MAP ? ci_get(n, "refs") : n;
	bool refs_hit = !refs, vars_hit = true;
	*matched = false;
	if (refs) {
		if (refs->type != CI_SEQ)
			return ci_fail(&g->b, refs, "only/except refs must be a list");
		for (size_t i = 0; i < refs->n; i++)
			if (ci_str(refs->items[i]))
				refs_hit |= ref_matches(g, refs->items[i]->text);
	}
	const struct ci_node *vars = ci_get(n, "variables");
	if (vars && vars->type == CI_SEQ) {
		vars_hit = false;
		for (size_t i = 0; i < vars->n; i++) {
			int e = eval_if(g, t, vars->items[i]);
			if (e == -2)
				return false;
			vars_hit |= e != 0;
		}
	}
	const struct ci_node *ch = ci_get(n, "changes");
	if (ch && except)
		ci_note(&g->b, ch, "except: changes (\"not when these change\") cannot be expressed; ignored");
	else if (ch && !globs_of(g, t, ch, changes, "only: changes"))
		return false;
	if (ci_get(n, "kubernetes"))
		ci_note(&g->b, ci_get(n, "kubernetes"), "only/except kubernetes is not imported");
	*matched = except ? refs_hit && (vars ? vars_hit : true) && (refs || vars)
			  : refs_hit && vars_hit;
	return true;
}

static bool decide(struct gl *g, struct ry_ci_task *t, const struct ci_node *job, struct verdict *v)
{
	const struct ci_node *w = ci_get(job, "when"), *rules = ci_get(job, "rules");
	const char *job_when = ci_str(w) ? w->text : "on_success";
	const struct ci_node *only = ci_get(job, "only"), *except = ci_get(job, "except");

	memset(v, 0, sizeof(*v));
	v->when = job_when;
	v->at = w ? w : job;
	if (rules)
		return decide_rules(g, t, rules, job_when, v);
	if (!only && !except) {
		if (is_mr(g)) {	/* the default only: [branches, tags] */
			v->when = "never";
			v->at = job;
		}
		return true;
	}
	struct ry_strlist changes = { 0 };
	bool hit = true, ex = false;
	if (only && !only_matches(g, t, only, false, &changes, &hit))
		return ry_strlist_release(&changes), false;
	if (except && !only_matches(g, t, except, true, &changes, &ex))
		return ry_strlist_release(&changes), false;
	if (!hit || ex) {
		v->when = "never";
		v->at = !hit ? only : except;
	}
	v->only_if_changed = ry_globs_regex(changes.items, changes.n, RY_GLOB_BRACES);
	ry_strlist_release(&changes);
	return ci_check_regex(&g->b, only ? only : except, v->only_if_changed);
}

/* ---- scripts -------------------------------------------------------------- */

static bool flatten(struct gl *g, const struct ci_node *n, struct ry_buf *out, int depth)
{
	if (!n || ci_is_null(n))
		return true;
	if (n->type == CI_SCALAR) {
		ry_buf_printf(out, "%s\n", n->text);
		return true;
	}
	if (n->type != CI_SEQ || depth > 10)
		return ci_fail(&g->b, n, "a script is a list of commands");
	for (size_t i = 0; i < n->n; i++)
		if (!flatten(g, n->items[i], out, depth + 1))
			return false;
	return true;
}

/* The job's key, else the default's (unless inherit: default says no). */
static const struct ci_node *with_default(struct gl *g, const struct ci_node *job, const char *key)
{
	const struct ci_node *v = ci_get(job, key);
	if (v)
		return v;
	const struct ci_node *inh = ci_get(ci_get(job, "inherit"), "default");
	if (ci_bool(inh) == 0)
		return NULL;
	if (inh && inh->type == CI_SEQ) {
		bool listed = false;
		for (size_t i = 0; i < inh->n; i++)
			listed |= ci_str(inh->items[i]) && strcmp(inh->items[i]->text, key) == 0;
		if (!listed)
			return NULL;
	}
	v = ci_get(ci_get(g->root, "default"), key);
	if (!v && (strcmp(key, "before_script") == 0 || strcmp(key, "after_script") == 0 ||
		   strcmp(key, "image") == 0 || strcmp(key, "services") == 0 || strcmp(key, "cache") == 0))
		v = ci_get(g->root, key);	/* the old global keywords */
	return v;
}

static bool job_command(struct gl *g, struct ry_ci_task *t, const struct ci_node *job)
{
	struct ry_buf main = RY_BUF_INIT, after = RY_BUF_INIT, cmd = RY_BUF_INIT;
	bool ok = flatten(g, with_default(g, job, "before_script"), &main, 0) &&
		  flatten(g, ci_get(job, "script"), &main, 0) &&
		  flatten(g, with_default(g, job, "after_script"), &after, 0);
	if (ok && main.len == 0)
		ok = ci_fail(&g->b, job, "job \"%s\" has an empty script", t->job);
	if (ok) {
		ry_buf_puts(&cmd, "export CI_PROJECT_DIR=\"$PWD\" CI_BUILDS_DIR=\"$PWD\"\n");
		if (after.len) {
			ry_buf_puts(&cmd, "status=0\n");
			ci_heredoc(&cmd, "bash -eo pipefail", main.data, "|| status=$?");
			ry_buf_puts(&cmd, "# after_script: runs whatever happened; its failure is only logged\n");
			ry_buf_puts(&cmd, "export CI_JOB_STATUS=$([ \"$status\" = 0 ] && echo success || echo failed)\n");
			ci_heredoc(&cmd, "bash -eo pipefail", after.data,
				   "|| echo \"railyard: after_script failed\" >&2");
			ry_buf_puts(&cmd, "exit \"$status\"\n");
		} else {
			ci_heredoc(&cmd, "exec bash -eo pipefail", main.data, "");
		}
		t->command = ry_buf_detach(&cmd);
	}
	ry_buf_release(&main);
	ry_buf_release(&after);
	ry_buf_release(&cmd);
	return ok;
}

/* "1h 30m", "90 minutes", "2 hours", "3600" (seconds) into seconds. */
static bool duration(const char *s, long *out)
{
	static const struct {
		const char *unit;
		long mult;
	} units[] = {
		{ "weeks", 604800 }, { "week", 604800 }, { "w", 604800 },
		{ "days", 86400 }, { "day", 86400 }, { "d", 86400 },
		{ "hours", 3600 }, { "hour", 3600 }, { "hrs", 3600 }, { "hr", 3600 }, { "h", 3600 },
		{ "minutes", 60 }, { "minute", 60 }, { "mins", 60 }, { "min", 60 }, { "m", 60 },
		{ "seconds", 1 }, { "second", 1 }, { "secs", 1 }, { "sec", 1 }, { "s", 1 },
	};
	long total = 0;
	bool any = false;
	while (*s) {
		while (*s == ' ' || *s == ',' || strncmp(s, "and ", 4) == 0)
			s += *s == 'a' ? 4 : 1;
		if (!*s)
			break;
		char *end;
		double n = strtod(s, &end);
		if (end == s || n < 0)
			return false;
		s = end;
		while (*s == ' ')
			s++;
		long mult = 1;
		size_t k;
		for (k = 0; k < RY_ARRAY_SIZE(units); k++) {
			size_t len = strlen(units[k].unit);
			if (strncasecmp(s, units[k].unit, len) == 0 && !isalpha((unsigned char)s[len])) {
				mult = units[k].mult;
				s += len;
				break;
			}
		}
		if (k == RY_ARRAY_SIZE(units) && isalpha((unsigned char)*s))
			return false;
		total += (long)(n * (double)mult);
		any = true;
	}
	*out = total;
	return any;
}

static void job_notes(struct gl *g, const struct ci_node *job, const char *name)
{
	static const struct ci_unsupported unsupported[] = {
		{ "image", "the job runs on the agent's host, not in this image" },
		{ "services", "service containers are not started; run them yourself" },
		{ "artifacts", "artifacts are not kept; downstream tasks share $RAILYARD_PIPELINE_DIR on one host" },
		{ "cache", "GitLab's cache is not imported" },
		{ "retry", "failed tasks are not retried (only tasks of a lost agent are)" },
		{ "allow_failure", "a failing task fails the pipeline" },
		{ "environment", "deployment environments do not exist in railyard" },
		{ "release", "releases are not created" },
		{ "secrets", "secrets are not fetched" },
		{ "id_tokens", "ID tokens are not issued" },
		{ "coverage", "coverage is not collected" },
	};
	for (size_t i = 0; i < RY_ARRAY_SIZE(unsupported); i++) {
		const struct ci_node *n = with_default(g, job, unsupported[i].key);
		if (!n || ci_is_null(n) || (strcmp(unsupported[i].key, "allow_failure") == 0 && ci_bool(n) == 0))
			continue;
		ci_note(&g->b, n, "job \"%s\": %s: %s", name, unsupported[i].key, unsupported[i].why);
	}
}

/* ---- jobs ----------------------------------------------------------------- */

static void predefined(struct gl *g, struct ry_ci_task *t, const char *job, const char *stage)
{
	const struct ry_ci_options *o = g->b.opt;
	ci_task_setenv(t, "CI", "true");
	ci_task_setenv(t, "GITLAB_CI", "true");
	ci_task_setenv(t, "CI_JOB_NAME", job);
	ci_task_setenv(t, "CI_JOB_STAGE", stage);
	ci_task_setenv(t, "CI_PIPELINE_SOURCE", source(g));
	ci_task_setenv(t, "CI_DEFAULT_BRANCH", o->default_branch ? o->default_branch : "main");
	ci_task_setenv(t, "CI_COMMIT_REF_NAME", o->tag ? o->tag : branch(g));
	if (o->tag)
		ci_task_setenv(t, "CI_COMMIT_TAG", o->tag);
	else if (!is_mr(g))
		ci_task_setenv(t, "CI_COMMIT_BRANCH", branch(g));
}

static bool job_stage(struct gl *g, const char *name, const struct ci_node *job, size_t *stage)
{
	const struct ci_node *s = ci_get(job, "stage");
	const char *st = ci_str(s) ? s->text : "test";
	for (size_t i = 0; i < g->stages.n; i++) {
		if (strcmp(g->stages.items[i], st) == 0) {
			*stage = i;
			return true;
		}
	}
	return ci_fail(&g->b, s ? s : job, "job \"%s\": stage \"%s\" is not in stages", name, st);
}

static bool add_instance(struct gl *g, const struct ci_node *key, const struct ci_node *job,
			 const struct ci_combo *combo, int index, int total, size_t stage)
{
	const char *name = key->text;
	char *suffix = combo ? ci_combo_suffix(combo) : index ? ry_asprintf(":%d", index) : ry_strdup("");
	char *base = ry_asprintf("%s%s", name, suffix);
	struct ry_ci_task *t = ci_task_add(&g->b, name, base, key);
	struct verdict v = { 0 };
	bool ok = true;
	free(suffix);
	free(base);

	predefined(g, t, name, g->stages.items[stage]);
	if (total) {
		char buf[16];
		snprintf(buf, sizeof(buf), "%d", index);
		ci_task_setenv(t, "CI_NODE_INDEX", buf);
		snprintf(buf, sizeof(buf), "%d", total);
		ci_task_setenv(t, "CI_NODE_TOTAL", buf);
	}
	const struct ci_node *inh = ci_get(ci_get(job, "inherit"), "variables");
	struct ry_strlist only = { 0 };
	if (inh && inh->type == CI_SEQ)
		for (size_t i = 0; i < inh->n; i++)
			if (ci_str(inh->items[i]))
				ry_strlist_add(&only, inh->items[i]->text);
	if (ci_bool(inh) != 0)
		ok = set_vars(g, t, ci_get(g->root, "variables"), inh && inh->type == CI_SEQ ? &only : NULL);
	ry_strlist_release(&only);
	ok = ok && set_vars(g, t, ci_get(job, "variables"), NULL);
	for (size_t i = 0; ok && combo && i < combo->n; i++)
		ci_task_setenv(t, combo->keys.items[i], combo->values[i]->text);
	ok = ok && decide(g, t, job, &v);

	const char *drop = NULL;
	if (ok && strcmp(v.when, "never") == 0)
		drop = "its rules/only/except leave it out of this pipeline";
	else if (ok && strcmp(v.when, "manual") == 0)
		drop = "when: manual jobs wait for a person; not imported";
	else if (ok && strcmp(v.when, "delayed") == 0)
		ci_note(&g->b, v.at, "job \"%s\": when: delayed runs without the delay", name);
	else if (ok && strcmp(v.when, "on_success") != 0 && strcmp(v.when, "on_failure") != 0 &&
		 strcmp(v.when, "always") != 0)
		ok = ci_fail(&g->b, v.at, "job \"%s\": unknown when: %s", name, v.when);
	if (ok && drop) {
		ci_note(&g->b, v.at, "job \"%s\": %s", name, drop);
		if (!ry_strlist_has(&g->excluded, name))
			ry_strlist_add(&g->excluded, name);
		ci_task_remove(g->b.p, g->b.p->ntasks - 1, false);
		free(v.only_if_changed);
		return true;
	}
	if (ok && (strcmp(v.when, "on_failure") == 0 || strcmp(v.when, "always") == 0))
		t->run_if = ry_strdup(v.when);
	t->only_if_changed = v.only_if_changed;

	const struct ci_node *tags = with_default(g, job, "tags");
	if (ok && tags && tags->type == CI_SEQ) {
		for (size_t i = 0; i < tags->n; i++) {
			if (!ci_str(tags->items[i]))
				return ci_fail(&g->b, tags->items[i], "tags must be text");
			char *tag = expand(g, t, tags->items[i], tags->items[i]->text);
			if (*tag && !ry_strlist_has(&t->requires, tag))
				ry_strlist_add(&t->requires, tag);
			free(tag);
		}
	} else if (ok && tags && !ci_is_null(tags)) {
		return ci_fail(&g->b, tags, "tags must be a list");
	}
	const struct ci_node *timeout = with_default(g, job, "timeout");
	if (ok && timeout) {
		long secs = 0;
		if (!ci_str(timeout) || !duration(timeout->text, &secs) || secs <= 0)
			return ci_fail(&g->b, timeout, "timeout: \"%s\" is not a duration such as 1h 30m",
				       ci_str(timeout) ? timeout->text : "");
		if (secs > 604800) {
			ci_note(&g->b, timeout, "timeout %s is over railyard's limit; 7 days instead", timeout->text);
			secs = 604800;
		}
		t->timeout_s = (int)secs;
	}
	const struct ci_node *rg = ci_get(job, "resource_group");
	if (ok && ci_str(rg)) {
		t->pool = expand(g, t, rg, rg->text);
		if (!*t->pool) {
			free(t->pool);
			t->pool = NULL;
		} else {
			ci_note(&g->b, rg, "resource_group %s is pool %s: give the pool a limit of 1 for "
				"GitLab's one-at-a-time", rg->text, t->pool);
		}
	}
	ok = ok && job_command(g, t, job);
	if (ok) {
		g->info = ry_realloc(g->info, g->b.p->ntasks * sizeof(*g->info));
		g->info[g->b.p->ntasks - 1] = (struct gl_info){ stage, ci_get(job, "needs"), job };
	}
	return ok;
}

/* parallel: matrix: each entry's product, the entries one after another. */
static bool matrix_combos(struct gl *g, const struct ci_node *m, struct ci_combo **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (m->type != CI_SEQ)
		return ci_fail(&g->b, m, "parallel: matrix must be a list of mappings");
	for (size_t e = 0; e < m->n; e++) {
		const struct ci_node *entry = m->items[e];
		if (entry->type != CI_MAP)
			return ci_fail(&g->b, entry, "parallel: matrix entries must be mappings");
		size_t first = *n;
		*out = ry_realloc(*out, (*n + 1) * sizeof(**out));
		memset(&(*out)[(*n)++], 0, sizeof(**out));
		for (size_t k = 0; k + 1 < entry->n; k += 2) {
			const struct ci_node *vals = entry->items[k + 1];
			struct ci_node *const *items = vals->type == CI_SEQ ? vals->items
									     : (struct ci_node *const *)&vals;
			size_t nv = vals->type == CI_SEQ ? vals->n : 1;
			size_t end = *n;
			for (size_t v = 0; v < nv; v++)
				if (!ci_str(items[v]))
					return ci_fail(&g->b, items[v], "parallel: matrix values must be text");
			/* Each existing combination of this entry times each value. */
			struct ci_combo *grown = NULL;
			size_t ngrown = 0;
			for (size_t c = first; c < end; c++)
				for (size_t v = 0; v < nv; v++) {
					grown = ry_realloc(grown, (ngrown + 1) * sizeof(*grown));
					ci_combo_copy(&grown[ngrown], &(*out)[c]);
					ci_combo_set(&grown[ngrown++], entry->items[k]->text, items[v]);
				}
			for (size_t c = first; c < end; c++)
				ci_combo_release(&(*out)[c]);
			*n = first;
			*out = ry_realloc(*out, (first + ngrown + 1) * sizeof(**out));
			memcpy(*out + first, grown, ngrown * sizeof(*grown));
			*n = first + ngrown;
			free(grown);
			if (*n > MAX_INSTANCES)
				return ci_fail(&g->b, m, "parallel: matrix makes more than %d jobs", MAX_INSTANCES);
		}
	}
	return true;
}

static bool add_job(struct gl *g, const struct ci_node *key, const struct ci_node *job)
{
	const char *name = key->text;
	size_t stage = 0;
	if (job->type != CI_MAP)
		return ci_fail(&g->b, job, "job \"%s\" must be a mapping", name);
	if (ci_get(job, "trigger")) {
		ci_note(&g->b, ci_get(job, "trigger"), "job \"%s\" triggers another pipeline: "
			"not imported", name);
		ry_strlist_add(&g->excluded, name);
		return true;
	}
	if (!ci_get(job, "script"))
		return ci_fail(&g->b, job, "job \"%s\" has no script (nor trigger)", name);
	if (!job_stage(g, name, job, &stage))
		return false;
	job_notes(g, job, name);
	const struct ci_node *par = ci_get(job, "parallel");
	if (!par)
		return add_instance(g, key, job, NULL, 0, 0, stage);
	if (par->type == CI_MAP) {
		struct ci_combo *combos;
		size_t n;
		bool ok = matrix_combos(g, ci_get(par, "matrix") ? ci_get(par, "matrix") : par, &combos, &n);
		for (size_t i = 0; ok && i < n; i++)
			ok = add_instance(g, key, job, &combos[i], (int)i + 1, (int)n, stage);
		for (size_t i = 0; i < n; i++)
			ci_combo_release(&combos[i]);
		free(combos);
		return ok;
	}
	long n = 0;
	if (!ci_str(par) || !ry_parse_long(par->text, 1, MAX_INSTANCES, &n))
		return ci_fail(&g->b, par, "parallel must be 1 to %d or a matrix", MAX_INSTANCES);
	bool ok = true;
	for (long i = 1; ok && i <= n; i++)
		ok = add_instance(g, key, job, NULL, (int)i, (int)n, stage);
	return ok;
}

/* ---- edges ---------------------------------------------------------------- */

/* Does task t carry every variable of the partial combination m? */
static bool instance_of(const struct ry_ci_task *t, const struct ci_node *entry)
{
	for (size_t k = 0; k + 1 < entry->n; k += 2) {
		const char *have = ci_task_getenv(t, entry->items[k]->text);
		const struct ci_node *want = entry->items[k + 1];
		bool any = false;
		struct ci_node *const *items = want->type == CI_SEQ ? want->items
								    : (struct ci_node *const *)&want;
		size_t n = want->type == CI_SEQ ? want->n : 1;
		for (size_t i = 0; i < n; i++)
			any |= have && ci_str(items[i]) && strcmp(have, items[i]->text) == 0;
		if (!any)
			return false;
	}
	return true;
}

static bool need(struct gl *g, size_t d, const struct ci_node *item)
{
	struct ry_ci_pipeline *p = g->b.p;
	const struct ci_node *matrix = NULL;
	const char *up = ci_str(item);
	bool optional = false;

	if (item->type == CI_MAP) {
		if (ci_get(item, "pipeline") || ci_get(item, "project")) {
			ci_note(&g->b, item, "needs from another pipeline or project: not imported");
			return true;
		}
		up = ci_str(ci_get(item, "job"));
		optional = ci_bool(ci_get(item, "optional")) == 1;
		matrix = ci_get(ci_get(item, "parallel"), "matrix");
	}
	if (!up)
		return ci_fail(&g->b, item, "needs takes job names");
	if (!ci_get(g->root, up) || gl_reserved_key(up))
		return ci_fail(&g->b, item, "job \"%s\" needs unknown job \"%s\"", p->tasks[d].job, up);
	if (ry_strlist_has(&g->excluded, up)) {
		if (!optional)
			ci_note(&g->b, item, "job \"%s\" needs \"%s\", which is not in this pipeline; "
				"the edge is left out", p->tasks[d].job, up);
		return true;
	}
	bool found = false;
	for (size_t u = 0; u < p->ntasks; u++) {
		if (strcmp(p->tasks[u].job, up) != 0)
			continue;
		bool wanted = !matrix;
		for (size_t e = 0; matrix && matrix->type == CI_SEQ && e < matrix->n; e++)
			wanted |= matrix->items[e]->type == CI_MAP && instance_of(&p->tasks[u], matrix->items[e]);
		if (wanted && u != d && !ry_strlist_has(&p->tasks[d].needs, p->tasks[u].name))
			ry_strlist_add(&p->tasks[d].needs, p->tasks[u].name);
		found |= wanted;
	}
	if (!found && matrix)
		return ci_fail(&g->b, item, "needs: no instance of \"%s\" matches this parallel: matrix", up);
	return true;
}

static bool add_edges(struct gl *g)
{
	struct ry_ci_pipeline *p = g->b.p;
	for (size_t d = 0; d < p->ntasks; d++) {
		const struct ci_node *needs = g->info[d].needs;
		if (needs && !ci_is_null(needs)) {
			if (needs->type != CI_SEQ)
				return ci_fail(&g->b, needs, "needs must be a list");
			for (size_t i = 0; i < needs->n; i++)
				if (!need(g, d, needs->items[i]))
					return false;
			continue;
		}
		if (needs)
			continue;	/* needs: [] starts at once */
		/* Stage order: every task of the nearest earlier stage that has any. */
		size_t s = g->info[d].stage;
		while (s-- > 0) {
			bool any = false;
			for (size_t u = 0; u < p->ntasks; u++) {
				if (g->info[u].stage == s) {
					any = true;
					ry_strlist_add(&p->tasks[d].needs, p->tasks[u].name);
				}
			}
			if (any)
				break;
		}
	}
	return true;
}

static bool read_stages(struct gl *g)
{
	const struct ci_node *st = ci_get(g->root, "stages");
	if (!st)
		st = ci_get(g->root, "types");
	ry_strlist_add(&g->stages, ".pre");
	if (!st || ci_is_null(st)) {
		ry_strlist_add(&g->stages, "build");
		ry_strlist_add(&g->stages, "test");
		ry_strlist_add(&g->stages, "deploy");
	} else if (st->type != CI_SEQ) {
		return ci_fail(&g->b, st, "stages must be a list");
	} else {
		struct ry_buf flat = RY_BUF_INIT;
		bool ok = flatten(g, st, &flat, 0);	/* !reference may nest lists */
		if (ok)
			ry_strlist_split(&g->stages, flat.data ? flat.data : "", '\n');
		ry_buf_release(&flat);
		if (!ok)
			return false;
	}
	ry_strlist_add(&g->stages, ".post");
	return true;
}

static bool workflow(struct gl *g)
{
	const struct ci_node *wf = ci_get(g->root, "workflow");
	const struct ci_node *rules = ci_get(wf, "rules");
	const char *name = ci_str(ci_get(wf, "name"));
	if (name && *name && !g->b.opt->name)
		ci_set_name(g->b.p, name, "");
	if (!rules)
		return true;
	/* A throwaway task holds the global variables the rules may read. */
	struct ry_ci_task *t = ci_task_add(&g->b, "(workflow)", "workflow", wf);
	struct verdict v = { 0 };
	predefined(g, t, "", "");
	bool ok = set_vars(g, t, ci_get(g->root, "variables"), NULL) && decide_rules(g, t, rules, "always", &v);
	if (ok && strcmp(v.when, "never") == 0)
		ci_note(&g->b, v.at, "workflow: rules create no pipeline for this branch and source; "
			"imported anyway");
	if (ok && v.only_if_changed)
		ci_note(&g->b, rules, "workflow: rules with changes: are not imported");
	free(v.only_if_changed);
	ci_task_remove(g->b.p, g->b.p->ntasks - 1, false);
	return ok;
}

bool ry_ci_import_gitlab(const char *const *paths, size_t npaths, const struct ry_ci_options *opt,
			 struct ry_ci_pipeline *out, char **err)
{
	static const struct ry_ci_options defaults = { 0 };
	struct gl g = { .b = { .p = out, .opt = opt ? opt : &defaults } };
	bool ok = false;

	memset(out, 0, sizeof(*out));
	g.cfg.b = &g.b;
	if (npaths == 0) {
		*err = ry_strdup("no file to import");
		return false;
	}
	if (!gl_config_load(&g.cfg, paths, npaths))
		goto out;
	g.root = g.cfg.root;
	ci_set_name(out, g.b.opt->name, paths[0]);
	if (!read_stages(&g) || !workflow(&g))
		goto out;
	for (size_t i = 0; i + 1 < g.root->n; i += 2) {
		const char *key = g.root->items[i]->text;
		if (gl_reserved_key(key) || key[0] == '.')
			continue;
		if (!add_job(&g, g.root->items[i], g.root->items[i + 1]))
			goto out;
	}
	if (out->ntasks == 0) {
		ci_fail(&g.b, g.root, "no job is left to import (see the notes)");
		goto out;
	}
	if (!add_edges(&g))
		goto out;
	ok = true;
out:
	if (!ok)
		*err = g.b.err ? g.b.err : ry_strdup("cannot import the GitLab CI configuration");
	else
		free(g.b.err);
	free(g.info);
	ry_strlist_release(&g.stages);
	ry_strlist_release(&g.excluded);
	ry_strlist_release(&g.unknown_vars);
	gl_config_release(&g.cfg);
	ci_doc_release(&g.b.doc);
	return ok;
}
