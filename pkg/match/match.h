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

#endif
