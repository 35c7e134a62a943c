/*
 * GitHub Actions expressions: a recursive-descent parser that evaluates as
 * it parses.  Precedence as GitHub documents it: ( ) [] . then ! then
 * < <= > >= then == != then && then ||.  Both operands of && and || are
 * always evaluated so that every status function is seen.
 */
#include "ciimport/gh_expr.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser {
	const char *s;
	struct gh_ctx *ctx;
	char *err;
};

static struct gh_val v_unknown(void) { return (struct gh_val){ .t = GV_UNKNOWN }; }
static struct gh_val v_bool(bool b) { return (struct gh_val){ .t = GV_BOOL, .b = b }; }
static struct gh_val v_str(char *owned) { return (struct gh_val){ .t = GV_STR, .s = owned }; }

void gh_val_release(struct gh_val *v)
{
	free(v->s);
	memset(v, 0, sizeof(*v));
}

/* A scalar from the matrix as the value GitHub would see. */
static struct gh_val v_node(const struct ci_node *n)
{
	if (!n || ci_is_null(n))
		return (struct gh_val){ .t = GV_NULL };
	if (n->type != CI_SCALAR)
		return (struct gh_val){ .t = GV_NODE, .node = n };
	int b = ci_bool(n);
	if (b >= 0)
		return v_bool(b == 1);
	return v_str(ry_strdup(n->text));
}

int gh_truthy(const struct gh_val *v)
{
	switch (v->t) {
	case GV_NULL: return 0;
	case GV_BOOL: return v->b;
	case GV_NUM: return v->num != 0 && !isnan(v->num);
	case GV_STR: return v->s[0] != '\0';
	case GV_NODE: return 1;
	default: return -1;
	}
}

char *gh_val_text(const struct gh_val *v)
{
	switch (v->t) {
	case GV_BOOL: return ry_strdup(v->b ? "true" : "false");
	case GV_NUM:
		if (v->num == floor(v->num) && fabs(v->num) < 1e15)
			return ry_asprintf("%.0f", v->num);
		return ry_asprintf("%g", v->num);
	case GV_STR: return ry_strdup(v->s);
	default: return ry_strdup("");
	}
}

static double to_num(const struct gh_val *v)
{
	char *end;
	switch (v->t) {
	case GV_NULL: return 0;
	case GV_BOOL: return v->b;
	case GV_NUM: return v->num;
	case GV_STR: {
		const char *s = v->s;
		while (isspace((unsigned char)*s))
			s++;
		if (!*s)
			return 0;
		double d = strtod(s, &end);
		while (isspace((unsigned char)*end))
			end++;
		return *end ? NAN : d;
	}
	default: return NAN;
	}
}

/* -1 unknown, else 0/1.  Loose equality as GitHub defines it. */
static int equals(const struct gh_val *a, const struct gh_val *b)
{
	if (a->t == GV_UNKNOWN || b->t == GV_UNKNOWN)
		return -1;
	if (a->t == b->t) {
		switch (a->t) {
		case GV_NULL: return 1;
		case GV_BOOL: return a->b == b->b;
		case GV_NUM: return a->num == b->num;
		case GV_STR: return strcasecmp(a->s, b->s) == 0;
		default: return a->node == b->node;
		}
	}
	double x = to_num(a), y = to_num(b);
	return !isnan(x) && !isnan(y) && x == y;
}

static void skip_ws(struct parser *p)
{
	while (isspace((unsigned char)*p->s))
		p->s++;
}

static bool accept(struct parser *p, const char *tok)
{
	skip_ws(p);
	size_t n = strlen(tok);
	if (strncmp(p->s, tok, n) != 0)
		return false;
	p->s += n;
	return true;
}

static bool perr(struct parser *p, const char *what)
{
	if (!p->err)
		p->err = ry_asprintf("invalid expression: %s at \"%.20s\"", what, p->s);
	return false;
}

static bool parse_or(struct parser *p, struct gh_val *out);
static bool parse_and_op(struct parser *p, struct gh_val *out);

static void note_unknown(struct parser *p, const char *what)
{
	if (!p->ctx->unknown)
		p->ctx->unknown = ry_strdup(what);
}

static char *ident(struct parser *p)
{
	skip_ws(p);
	const char *start = p->s;
	if (!(isalpha((unsigned char)*p->s) || *p->s == '_'))
		return NULL;
	while (isalnum((unsigned char)*p->s) || *p->s == '_' || *p->s == '-')
		p->s++;
	return ry_strndup(start, (size_t)(p->s - start));
}

/* github.*, runner.*, env.*: what is known before the run. */
static struct gh_val context_value(struct parser *p, const struct ry_strlist *path)
{
	const struct ry_ci_options *o = p->ctx->opt;
	const char *ctx = path->items[0], *key = path->n > 1 ? path->items[1] : "";
	const char *branch = o->branch ? o->branch : "main";

	if (strcmp(ctx, "github") == 0 && path->n == 2) {
		if (strcmp(key, "ref") == 0)
			return v_str(o->tag ? ry_asprintf("refs/tags/%s", o->tag)
					    : ry_asprintf("refs/heads/%s", branch));
		if (strcmp(key, "ref_name") == 0)
			return v_str(ry_strdup(o->tag ? o->tag : branch));
		if (strcmp(key, "ref_type") == 0)
			return v_str(ry_strdup(o->tag ? "tag" : "branch"));
		if (strcmp(key, "event_name") == 0)
			return v_str(ry_strdup(o->event ? o->event : "push"));
		if ((strcmp(key, "head_ref") == 0 || strcmp(key, "base_ref") == 0) &&
		    strcmp(o->event ? o->event : "push", "push") == 0)
			return v_str(ry_strdup(""));
	}
	if (strcmp(ctx, "runner") == 0 && strcmp(key, "os") == 0 && path->n == 2)
		return v_str(ry_strdup("Linux"));
	if (strcmp(ctx, "env") == 0 && path->n == 2 && p->ctx->env) {
		const char *v = ci_task_getenv(p->ctx->env, key);
		if (v)
			return v_str(ry_strdup(v));
		return (struct gh_val){ .t = GV_NULL };
	}
	if (strcmp(ctx, "matrix") == 0) {
		const struct ci_node *n = NULL;
		if (!p->ctx->matrix || path->n < 2)
			return (struct gh_val){ .t = GV_NULL };
		n = ci_combo_get(p->ctx->matrix, key);
		for (size_t i = 2; n && i < path->n; i++)
			n = ci_get(n, path->items[i]);
		return v_node(n);
	}
	struct ry_buf b = RY_BUF_INIT;
	for (size_t i = 0; i < path->n; i++)
		ry_buf_printf(&b, "%s%s", i ? "." : "", path->items[i]);
	note_unknown(p, b.data);
	ry_buf_release(&b);
	return v_unknown();
}

static struct gh_val call(struct parser *p, const char *fn, struct gh_val *args, size_t n)
{
	static const char *const status[] = { "success", "failure", "always", "cancelled" };
	for (size_t i = 0; i < RY_ARRAY_SIZE(status); i++) {
		if (strcasecmp(fn, status[i]) == 0) {
			p->ctx->used_status = true;
			bool failed = p->ctx->upstream_failed;
			return v_bool(i == 0 ? !failed : i == 1 ? failed : i == 2);
		}
	}
	for (size_t i = 0; i < n; i++)
		if (args[i].t == GV_UNKNOWN)
			return v_unknown();
	if ((strcasecmp(fn, "startsWith") == 0 || strcasecmp(fn, "endsWith") == 0 ||
	     strcasecmp(fn, "contains") == 0) && n == 2) {
		if (strcasecmp(fn, "contains") == 0 && args[0].t == GV_NODE) {
			const struct ci_node *arr = args[0].node;
			for (size_t i = 0; arr->type == CI_SEQ && i < arr->n; i++) {
				struct gh_val e = v_node(arr->items[i]);
				int eq = equals(&e, &args[1]);
				gh_val_release(&e);
				if (eq == 1)
					return v_bool(true);
			}
			return v_bool(false);
		}
		char *a = gh_val_text(&args[0]), *b = gh_val_text(&args[1]);
		size_t la = strlen(a), lb = strlen(b);
		bool r;
		if (strcasecmp(fn, "contains") == 0)
			r = strcasestr(a, b) != NULL;
		else if (strcasecmp(fn, "startsWith") == 0)
			r = la >= lb && strncasecmp(a, b, lb) == 0;
		else
			r = la >= lb && strcasecmp(a + la - lb, b) == 0;
		free(a);
		free(b);
		return v_bool(r);
	}
	if (strcasecmp(fn, "format") == 0 && n >= 1) {
		struct ry_buf b = RY_BUF_INIT;
		char *f = gh_val_text(&args[0]);
		ry_buf_add(&b, "", 0);
		for (const char *s = f; *s; s++) {
			char *end;
			if ((s[0] == '{' && s[1] == '{') || (s[0] == '}' && s[1] == '}')) {
				ry_buf_putc(&b, *s++);
			} else if (*s == '{' && isdigit((unsigned char)s[1])) {
				long k = strtol(s + 1, &end, 10);
				if (*end == '}' && k + 1 < (long)n) {
					char *t = gh_val_text(&args[k + 1]);
					ry_buf_puts(&b, t);
					free(t);
					s = end;
				} else {
					ry_buf_putc(&b, *s);
				}
			} else {
				ry_buf_putc(&b, *s);
			}
		}
		free(f);
		return v_str(ry_buf_detach(&b));
	}
	char *what = ry_asprintf("%s()", fn);
	note_unknown(p, what);
	free(what);
	return v_unknown();
}

static bool parse_primary(struct parser *p, struct gh_val *out)
{
	skip_ws(p);
	if (accept(p, "(")) {
		if (!parse_or(p, out))
			return false;
		if (accept(p, ")"))
			return true;
		gh_val_release(out);
		return perr(p, "missing )");
	}
	if (*p->s == '\'') {
		struct ry_buf b = RY_BUF_INIT;
		ry_buf_add(&b, "", 0);
		for (p->s++;; p->s++) {
			if (!*p->s) {
				ry_buf_release(&b);
				return perr(p, "unterminated string");
			}
			if (*p->s == '\'' && p->s[1] == '\'') {
				ry_buf_putc(&b, '\'');
				p->s++;
			} else if (*p->s == '\'') {
				p->s++;
				break;
			} else {
				ry_buf_putc(&b, *p->s);
			}
		}
		*out = v_str(ry_buf_detach(&b));
		return true;
	}
	if (isdigit((unsigned char)*p->s) || *p->s == '-' || *p->s == '.') {
		char *end;
		double d = strtod(p->s, &end);
		if (end == p->s)
			return perr(p, "bad number");
		p->s = end;
		*out = (struct gh_val){ .t = GV_NUM, .num = d };
		return true;
	}
	char *id = ident(p);
	if (!id)
		return perr(p, "expected a value");
	if (strcmp(id, "true") == 0 || strcmp(id, "false") == 0 || strcmp(id, "null") == 0) {
		*out = strcmp(id, "null") == 0 ? (struct gh_val){ .t = GV_NULL } : v_bool(id[0] == 't');
		free(id);
		return true;
	}
	if (accept(p, "(")) {
		struct gh_val args[16];
		size_t n = 0;
		bool ok = true;
		if (!accept(p, ")")) {
			do {
				if (n == RY_ARRAY_SIZE(args)) {
					ok = perr(p, "too many arguments");
					break;
				}
				ok = parse_or(p, &args[n]);
				n += ok;
			} while (ok && accept(p, ","));
			ok = ok && (accept(p, ")") || perr(p, "missing ) after arguments"));
		}
		if (ok)
			*out = call(p, id, args, n);
		for (size_t i = 0; i < n; i++)
			gh_val_release(&args[i]);
		free(id);
		return ok;
	}
	/* A context path: a.b['c'].d; a * filter makes it unknown. */
	struct ry_strlist path = { 0 };
	bool ok = true, star = false;
	ry_strlist_add(&path, id);
	free(id);
	for (;;) {
		if (accept(p, ".")) {
			if (accept(p, "*")) {
				star = true;
				continue;
			}
			char *k = ident(p);
			if (!k) {
				ok = perr(p, "expected a property name after .");
				break;
			}
			ry_strlist_add(&path, k);
			free(k);
		} else if (accept(p, "[")) {
			struct gh_val k;
			if (!(ok = parse_or(p, &k)))
				break;
			char *t = gh_val_text(&k);
			star |= k.t == GV_UNKNOWN;
			gh_val_release(&k);
			ry_strlist_add(&path, t);
			free(t);
			if (!(ok = accept(p, "]") || perr(p, "missing ]")))
				break;
		} else {
			break;
		}
	}
	if (ok && star) {
		note_unknown(p, path.items[0]);
		*out = v_unknown();
	} else if (ok) {
		*out = context_value(p, &path);
	}
	ry_strlist_release(&path);
	return ok;
}

static bool parse_unary(struct parser *p, struct gh_val *out)
{
	skip_ws(p);
	if (p->s[0] == '!' && p->s[1] != '=') {
		p->s++;
		struct gh_val v;
		if (!parse_unary(p, &v))
			return false;
		int t = gh_truthy(&v);
		gh_val_release(&v);
		*out = t < 0 ? v_unknown() : v_bool(!t);
		return true;
	}
	return parse_primary(p, out);
}

static bool parse_compare(struct parser *p, struct gh_val *out)
{
	if (!parse_unary(p, out))
		return false;
	for (;;) {
		const char *op = accept(p, "<=") ? "<=" : accept(p, ">=") ? ">=" :
				 accept(p, "<") ? "<" : accept(p, ">") ? ">" : NULL;
		if (!op)
			return true;
		struct gh_val r;
		if (!parse_unary(p, &r)) {
			gh_val_release(out);
			return false;
		}
		struct gh_val res = v_unknown();
		if (out->t != GV_UNKNOWN && r.t != GV_UNKNOWN) {
			double c;
			if (out->t == GV_STR && r.t == GV_STR)
				c = strcasecmp(out->s, r.s);
			else
				c = to_num(out) - to_num(&r);
			bool v = isnan(c) ? false : op[0] == '<' ? (op[1] ? c <= 0 : c < 0)
								 : (op[1] ? c >= 0 : c > 0);
			res = v_bool(v);
		}
		gh_val_release(out);
		gh_val_release(&r);
		*out = res;
	}
}

static bool parse_equality(struct parser *p, struct gh_val *out)
{
	if (!parse_compare(p, out))
		return false;
	for (;;) {
		bool eq = accept(p, "==");
		if (!eq && !accept(p, "!="))
			return true;
		struct gh_val r;
		if (!parse_compare(p, &r)) {
			gh_val_release(out);
			return false;
		}
		int e = equals(out, &r);
		gh_val_release(out);
		gh_val_release(&r);
		*out = e < 0 ? v_unknown() : v_bool(eq ? e : !e);
	}
}

/*
 * && (is_and) or ||: the value of one operand, as GitHub returns it.  An
 * unknown operand decides nothing unless the other one does (false for
 * &&, true for ||).
 */
static bool parse_logic(struct parser *p, struct gh_val *out, bool is_and)
{
	bool (*operand)(struct parser *, struct gh_val *) = is_and ? parse_equality : parse_and_op;
	int decisive = is_and ? 0 : 1;

	if (!operand(p, out))
		return false;
	while (accept(p, is_and ? "&&" : "||")) {
		struct gh_val r;
		if (!operand(p, &r)) {
			gh_val_release(out);
			return false;
		}
		int a = gh_truthy(out), b = gh_truthy(&r);
		if (a == decisive || (a < 0 && b != decisive)) {
			gh_val_release(&r);
			if (a < 0) {
				gh_val_release(out);
				*out = v_unknown();
			}
		} else {
			gh_val_release(out);
			*out = r;	/* the other operand decides (unknown stays unknown) */
		}
	}
	return true;
}

static bool parse_and_op(struct parser *p, struct gh_val *out)
{
	return parse_logic(p, out, true);
}

static bool parse_or(struct parser *p, struct gh_val *out)
{
	return parse_logic(p, out, false);
}

bool gh_eval(const char *expr, struct gh_ctx *ctx, struct gh_val *out, char **err)
{
	struct parser p = { .s = expr, .ctx = ctx };
	memset(out, 0, sizeof(*out));
	if (!parse_or(&p, out)) {
		*err = p.err;
		return false;
	}
	skip_ws(&p);
	if (*p.s) {
		gh_val_release(out);
		perr(&p, "unexpected text");
		*err = p.err;
		return false;
	}
	return true;
}

bool gh_subst(const char *text, struct gh_ctx *ctx, char **out, struct ry_strlist *unknown,
	      char **err)
{
	struct ry_buf b = RY_BUF_INIT;
	const char *s = text;

	ry_buf_add(&b, "", 0);
	for (;;) {
		const char *open = strstr(s, "${{");
		if (!open)
			break;
		const char *close = strstr(open + 3, "}}");
		if (!close) {
			*err = ry_strdup("invalid expression: ${{ without }}");
			ry_buf_release(&b);
			return false;
		}
		ry_buf_add(&b, s, (size_t)(open - s));
		char *expr = ry_strndup(open + 3, (size_t)(close - open - 3));
		struct gh_val v;
		if (!gh_eval(expr, ctx, &v, err)) {
			free(expr);
			ry_buf_release(&b);
			return false;
		}
		if (v.t == GV_UNKNOWN) {
			char *trimmed = expr;
			while (isspace((unsigned char)*trimmed))
				trimmed++;
			size_t n = strlen(trimmed);
			while (n > 0 && isspace((unsigned char)trimmed[n - 1]))
				n--;
			char *e = ry_strndup(trimmed, n);
			if (unknown && !ry_strlist_has(unknown, e))
				ry_strlist_add(unknown, e);
			free(e);
		} else {
			char *t = gh_val_text(&v);
			ry_buf_puts(&b, t);
			free(t);
		}
		gh_val_release(&v);
		free(expr);
		s = close + 2;
	}
	ry_buf_puts(&b, s);
	*out = ry_buf_detach(&b);
	return true;
}
