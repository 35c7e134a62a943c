/*
 * GitLab CI/CD variable expressions (rules:if, only:variables): $VAR,
 * "strings", /regex/flags, null, == != =~ !~, && ||, parentheses.  A bare
 * $VAR is true when the variable is defined and not empty.  Variables
 * unknown at import make the result unknown (three-valued && and ||).
 * Regular expressions go through pkg/match (PCRE2 for GitLab's RE2).
 */
#include "ciimport/internal.h"
#include "match/match.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum gl_type { GL_NULL, GL_STR, GL_REGEX, GL_UNKNOWN };

struct gl_val {
	enum gl_type t;
	char *s;		/* GL_STR text / GL_REGEX pattern (PCRE2) */
};

struct gl_parser {
	const char *s;
	gl_lookup_fn lookup;
	void *arg;
	char **unknown;
	char *err;
};

static void skip(struct gl_parser *p)
{
	while (isspace((unsigned char)*p->s))
		p->s++;
}

static bool eat(struct gl_parser *p, const char *tok)
{
	skip(p);
	if (strncmp(p->s, tok, strlen(tok)) != 0)
		return false;
	p->s += strlen(tok);
	return true;
}

static int fail(struct gl_parser *p, const char *what)
{
	if (!p->err)
		p->err = ry_asprintf("invalid expression: %s at \"%.20s\"", what, p->s);
	return -2;
}

/* "/pattern/flags" into a PCRE2 pattern; NULL if s is not one. */
static char *regex_from(const char *s)
{
	const char *end = strrchr(s, '/');
	if (s[0] != '/' || end == s)
		return NULL;
	for (const char *f = end + 1; *f; f++)
		if (!strchr("imsx", *f))
			return NULL;
	struct ry_buf b = RY_BUF_INIT;
	if (end[1])
		ry_buf_printf(&b, "(?%s)", end + 1);
	/* In GitLab's syntax \/ is a slash; PCRE2 reads / as is. */
	for (const char *c = s + 1; c < end; c++) {
		if (c[0] == '\\' && c[1] == '/')
			c++;
		ry_buf_putc(&b, *c);
	}
	return ry_buf_detach(&b);
}

static int operand(struct gl_parser *p, struct gl_val *v)
{
	skip(p);
	memset(v, 0, sizeof(*v));
	if (*p->s == '$') {
		p->s++;
		bool brace = *p->s == '{';
		p->s += brace;
		const char *start = p->s;
		while (isalnum((unsigned char)*p->s) || *p->s == '_')
			p->s++;
		if (p->s == start || (brace && *p->s != '}'))
			return fail(p, "bad variable name");
		char *name = ry_strndup(start, (size_t)(p->s - start));
		p->s += brace;
		const char *value = NULL;
		if (!p->lookup(p->arg, name, &value)) {
			v->t = GL_UNKNOWN;
			if (!*p->unknown)
				*p->unknown = ry_asprintf("$%s", name);
		} else if (value) {
			v->t = GL_STR;
			v->s = ry_strdup(value);
		}
		free(name);
		return 0;
	}
	if (*p->s == '"' || *p->s == '\'') {
		char q = *p->s++;
		const char *start = p->s;
		while (*p->s && *p->s != q)
			p->s++;
		if (!*p->s)
			return fail(p, "unterminated string");
		v->t = GL_STR;
		v->s = ry_strndup(start, (size_t)(p->s - start));
		p->s++;
		return 0;
	}
	if (*p->s == '/') {
		const char *start = p->s++;
		while (*p->s && *p->s != '/')
			p->s += (*p->s == '\\' && p->s[1]) ? 2 : 1;
		if (!*p->s)
			return fail(p, "unterminated /regex/");
		p->s++;
		while (*p->s && strchr("imsx", *p->s))
			p->s++;
		char *lit = ry_strndup(start, (size_t)(p->s - start));
		v->t = GL_REGEX;
		v->s = regex_from(lit);
		free(lit);
		return 0;
	}
	if (strncmp(p->s, "null", 4) == 0 && !isalnum((unsigned char)p->s[4])) {
		p->s += 4;
		return 0;
	}
	return fail(p, "expected $VARIABLE, \"string\", /regex/ or null");
}

static int truthy(const struct gl_val *v)
{
	return v->t == GL_UNKNOWN ? -1 : v->t == GL_STR ? v->s[0] != '\0' : v->t == GL_REGEX;
}

static int compare(struct gl_parser *p)
{
	struct gl_val a, b;
	int rc = operand(p, &a);
	if (rc < 0)
		return rc;
	bool eq = eat(p, "=="), ne = !eq && eat(p, "!=");
	bool m = !eq && !ne && eat(p, "=~"), nm = !eq && !ne && !m && eat(p, "!~");
	if (!eq && !ne && !m && !nm) {
		rc = truthy(&a);
		free(a.s);
		return rc;
	}
	if ((rc = operand(p, &b)) < 0) {
		free(a.s);
		return rc;
	}
	if (a.t == GL_UNKNOWN || b.t == GL_UNKNOWN) {
		rc = -1;
	} else if (eq || ne) {
		bool same = a.t == b.t && (a.t == GL_NULL || strcmp(a.s, b.s) == 0);
		rc = eq ? same : !same;
	} else {
		/* The right side is a regex, or a variable holding "/regex/". */
		char *pattern = b.t == GL_REGEX ? ry_strdup(b.s) : b.t == GL_STR ? regex_from(b.s) : NULL;
		char *err = NULL;
		struct ry_match *re = pattern ? ry_match_compile(pattern, &err) : NULL;
		if (!re) {
			rc = fail(p, err ? err : "=~ needs a /regex/ on its right");
		} else {
			bool hit = a.t == GL_STR && ry_match_test(re, a.s);
			rc = m ? hit : !hit;
		}
		ry_match_free(re);
		free(err);
		free(pattern);
	}
	free(a.s);
	free(b.s);
	return rc;
}

static int or_expr(struct gl_parser *p);

static int primary(struct gl_parser *p)
{
	if (eat(p, "(")) {
		int rc = or_expr(p);
		if (rc >= -1 && !eat(p, ")"))
			return fail(p, "missing )");
		return rc;
	}
	return compare(p);
}

static int and_expr(struct gl_parser *p)
{
	int a = primary(p);
	while (a >= -1 && eat(p, "&&")) {
		int b = primary(p);
		if (b < -1)
			return b;
		a = (a == 0 || b == 0) ? 0 : (a < 0 || b < 0) ? -1 : 1;
	}
	return a;
}

static int or_expr(struct gl_parser *p)
{
	int a = and_expr(p);
	while (a >= -1 && eat(p, "||")) {
		int b = and_expr(p);
		if (b < -1)
			return b;
		a = (a == 1 || b == 1) ? 1 : (a < 0 || b < 0) ? -1 : 0;
	}
	return a;
}

int gl_eval(const char *expr, gl_lookup_fn lookup, void *arg, char **unknown, char **err)
{
	struct gl_parser p = { .s = expr, .lookup = lookup, .arg = arg, .unknown = unknown };
	*unknown = NULL;
	int rc = or_expr(&p);
	skip(&p);
	if (rc >= -1 && *p.s)
		rc = fail(&p, "unexpected text");
	if (rc == -2)
		*err = p.err;
	else
		free(p.err);
	return rc;
}
