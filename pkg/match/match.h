/*
 * match: PCRE2 patterns over paths (only_if_changed).  The only module that
 * links PCRE2.
 *
 * Every match is bounded: a match limit and a depth limit (PCRE2's own
 * counters) stop a pattern that backtracks without end, and reaching one
 * is an error the caller sees — never "no match".
 */
#ifndef RY_MATCH_H
#define RY_MATCH_H

#include "core/core.h"

#define RY_MATCH_LIMIT_DEFAULT 100000UL		/* ~0.5 ms with JIT on a 2020s core */
#define RY_MATCH_DEPTH_DEFAULT 10000UL

struct ry_match;

/*
 * Compiles pattern (UTF-8), with the default limits.  On error returns NULL
 * and *err says what and where ("missing closing parenthesis at offset
 * 7"); the caller frees it.
 */
struct ry_match *ry_match_compile(const char *pattern, char **err) RY_MUST_CHECK;
/* Bounds each later match: PCRE2's match limit and depth limit. */
void ry_match_set_limits(struct ry_match *m, unsigned long match_limit,
			 unsigned long depth_limit);
/*
 * Matches s: 1 when the pattern matches somewhere in it, 0 when it does
 * not, -1 when it cannot tell (a limit was reached, ...; *err says which,
 * e.g. "match limit exceeded", and the caller frees it).
 */
int ry_match_run(const struct ry_match *m, const char *s, char **err) RY_MUST_CHECK;
/*
 * True when the pattern matches somewhere in s.  A match that cannot be
 * decided (a limit reached) answers false: callers for whom that must be
 * an error (only_if_changed) use ry_match_run.
 */
bool ry_match_test(const struct ry_match *m, const char *s);
/* True when any of the n paths matches (ry_match_test's answer). */
bool ry_match_any(const struct ry_match *m, char *const *paths, size_t n);
void ry_match_free(struct ry_match *m);

/* A captured group: bytes [start, end) of the subject; start < 0 when unset. */
struct ry_match_span {
	long start;
	long end;
};

/*
 * Matches s[0..len) (not NUL-terminated necessarily) from byte offset
 * from; on a match fills spans[0..nspans) (span 0 is the whole match,
 * then the groups) and returns true.  No match, a bad offset or a
 * backtracking-limit error (the subject is untrusted) return false.
 * Line-format parsers of pkg/deps use it to pull names out of manifests.
 */
bool ry_match_find(const struct ry_match *m, const char *s, size_t len, size_t from,
		   struct ry_match_span *spans, size_t nspans);

/*
 * Globs over repository paths, as regular expressions anchored at both
 * ends ("^...$") that PCRE2 and PostgreSQL (~) read alike.  Every dialect:
 * "*" and "?" stop at "/", "**" as a whole segment spans directories
 * ("**" + "/" zero or more), simple bracket classes ("[a-c]", "[!x]"),
 * "\" escapes the next character, anything else is literal.
 */
enum ry_glob_flags {
	RY_GLOB_BRACES = 1 << 0,	/* "{a,b}" alternatives (GitLab, GitHub) */
	RY_GLOB_GITHUB = 1 << 1,	/* "+" repeats the character before, "**" anywhere spans "/" */
	/* gitignore style: a leading "/" is ignored; a trailing "/", or "/"
	 * then "**" at the end, matches the directory's whole subtree */
	RY_GLOB_GIT = 1 << 2,
};

char *ry_glob_regex(const char *glob, unsigned flags);
/* Appends s as literal text of a regex (either engine). */
void ry_regex_quote(struct ry_buf *b, const char *s);
/* One regex matching any of the n globs; NULL when n is 0. */
char *ry_globs_regex(char *const *globs, size_t n, unsigned flags);
/* Whether path matches glob (a glob that cannot compile matches nothing). */
bool ry_glob_match(const char *glob, const char *path, unsigned flags);

#endif
