/*
 * glob: path globs translated to regular expressions, one dialect switch
 * per caller.  The output uses only syntax PCRE2 and PostgreSQL's advanced
 * regular expressions read alike (escaped literals, "[^/]", simple bracket
 * classes, "(?:...)"), because pkg/deps stores the regex for SQL to match
 * while the worker matches the same text with PCRE2.
 */
#include "match/match.h"

#include <stdlib.h>
#include <string.h>

/* Characters either engine gives a meaning: escaped when literal. */
static void add_literal(struct ry_buf *b, char ch)
{
	if (strchr("\\^$.|?*+()[]{}", ch))
		ry_buf_putc(b, '\\');
	ry_buf_putc(b, ch);
}

void ry_regex_quote(struct ry_buf *b, const char *s)
{
	for (; *s; s++)
		add_literal(b, *s);
}

/*
 * A bracket class at p ("[abc]", "[!a-z]"): appended and its closing "]"
 * returned, or NULL when it is not a simple class (then "[" is literal).
 * Slashes, nested brackets and escapes are refused: the two engines read
 * those differently.
 */
static const char *add_class(struct ry_buf *b, const char *p)
{
	const char *q = p + 1;
	bool negate = *q == '!' || *q == '^';
	if (negate)
		q++;
	const char *first = q;
	while (*q && (*q != ']' || q == first)) {
		if (*q == '/' || *q == '[' || *q == '\\')
			return NULL;
		q++;
	}
	if (*q != ']')
		return NULL;
	ry_buf_putc(b, '[');
	if (negate)
		ry_buf_putc(b, '^');
	for (const char *c = first; c < q; c++)
		ry_buf_putc(b, *c);
	ry_buf_putc(b, ']');
	return q;
}

/* Appends the regex of one glob, unanchored. */
static void add_glob(struct ry_buf *b, const char *glob, unsigned flags)
{
	const char *p = glob;
	int braces = 0;

	if (flags & RY_GLOB_GIT)
		while (*p == '/')
			p++;	/* relative to the repository either way */
	while (*p) {
		bool seg_start = p == glob || p[-1] == '/';
		if (p[0] == '*' && p[1] == '*') {
			const char *end = p;
			while (*end == '*')
				end++;
			if (seg_start && *end == '/') {
				ry_buf_puts(b, "(?:.*/)?");	/* zero or more directories */
				p = end + 1;
			} else if ((seg_start && *end == '\0') || (flags & RY_GLOB_GITHUB)) {
				ry_buf_puts(b, ".*");		/* anything, slashes too */
				p = end;
			} else {
				ry_buf_puts(b, "[^/]*");	/* "a**b" is "a*b" */
				p = end;
			}
			continue;
		}
		if ((flags & RY_GLOB_GIT) && p[0] == '/' && p[1] == '*' && p[2] == '*' && p[3] == '\0') {
			ry_buf_puts(b, "(?:/.*)?");	/* the directory and all below */
			p += 3;
			continue;
		}
		if ((flags & RY_GLOB_GIT) && p[0] == '/' && p[1] == '\0') {
			ry_buf_puts(b, "/.*");		/* "dir/": everything below */
			p++;
			continue;
		}
		switch (*p) {
		case '*':
			ry_buf_puts(b, "[^/]*");
			break;
		case '?':
			ry_buf_puts(b, "[^/]");
			break;
		case '[': {
			const char *end = add_class(b, p);
			if (end)
				p = end;
			else
				add_literal(b, *p);
			break;
		}
		case '{':
			if (!(flags & RY_GLOB_BRACES) || !strchr(p, '}')) {
				add_literal(b, *p);
				break;
			}
			braces++;
			ry_buf_puts(b, "(?:");
			break;
		case '}':
			if (braces > 0) {
				braces--;
				ry_buf_putc(b, ')');
			} else {
				add_literal(b, *p);
			}
			break;
		case ',':
			if (braces > 0)
				ry_buf_putc(b, '|');
			else
				add_literal(b, *p);
			break;
		case '+':
			/* GitHub: one or more of the character before. */
			if ((flags & RY_GLOB_GITHUB) && p != glob)
				ry_buf_putc(b, '+');
			else
				add_literal(b, *p);
			break;
		case '\\':
			/* escapes the next character; a trailing one is itself */
			add_literal(b, p[1] ? *++p : *p);
			break;
		default:
			add_literal(b, *p);
			break;
		}
		p++;
	}
	while (braces-- > 0)
		ry_buf_putc(b, ')');
}

char *ry_glob_regex(const char *glob, unsigned flags)
{
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_putc(&b, '^');
	add_glob(&b, glob, flags);
	ry_buf_putc(&b, '$');
	return ry_buf_detach(&b);
}

char *ry_globs_regex(char *const *globs, size_t n, unsigned flags)
{
	if (n == 0)
		return NULL;
	struct ry_buf b = RY_BUF_INIT;
	ry_buf_puts(&b, "^(?:");
	for (size_t i = 0; i < n; i++) {
		if (i)
			ry_buf_putc(&b, '|');
		add_glob(&b, globs[i], flags);
	}
	ry_buf_puts(&b, ")$");
	return ry_buf_detach(&b);
}

bool ry_glob_match(const char *glob, const char *path, unsigned flags)
{
	char *re = ry_glob_regex(glob, flags), *err = NULL;
	struct ry_match *m = ry_match_compile(re, &err);
	bool hit = m && ry_match_test(m, path);
	ry_match_free(m);
	free(err);
	free(re);
	return hit;
}
