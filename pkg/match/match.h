/*
 * match: PCRE2 patterns over paths (only_if_changed).  The only module that
 * links PCRE2.
 */
#ifndef RY_MATCH_H
#define RY_MATCH_H

#include "core/core.h"

struct ry_match;

/*
 * Compiles pattern.  On error returns NULL and *err says what and where
 * ("missing closing parenthesis at offset 7"); the caller frees it.
 */
struct ry_match *ry_match_compile(const char *pattern, char **err) RY_MUST_CHECK;
/* True when the pattern matches somewhere in s. */
bool ry_match_test(const struct ry_match *m, const char *s);
/* True when any of the n paths matches. */
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

#endif
