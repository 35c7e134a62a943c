/*
 * Spec validation's shared parts (pkg/spec only): the messages a check
 * collects, "did you mean" hints, and readers of typed fields that report
 * what is wrong with a field where it is, FILE:LINE and task.
 */
#ifndef RY_SPEC_CHECK_H
#define RY_SPEC_CHECK_H

#include "core/core.h"
#include "spec/doc.h"

/* Validation state: where messages go and what they are about. */
struct problem {
	int line;
	char *msg;		/* "FILE:LINE: ..." */
};

struct check {
	const char *source;
	struct problem *problems;	/* reported sorted by line at the end */
	size_t count;
	const char *task;	/* name of the task being read, or NULL */
	size_t task_no;		/* 1-based, for a task without a usable name */
};

/* Records "SOURCE:LINE: task \"NAME\": message" (counted past the cap). */
void spec_fail(struct check *c, int line, const char *fmt, ...) RY_PRINTF(3, 4);

/* Hands the messages to errors in line order, at most MAX_ERRORS. */
void spec_report(struct check *c, struct ry_strlist *errors);

/* Edit distance, for "did you mean" hints. */
size_t spec_levenshtein(const char *a, const char *b);

/* How many edits still read as a typo: none for tiny words. */
size_t spec_typo_budget(const char *s);

/* Reports every key of map not in known, with the closest known one as a hint. */
void spec_check_keys(struct check *c, const struct spec_node *map, const char *const *known);

/* Characters (not bytes) of a UTF-8 string. */
size_t spec_utf8_chars(const char *s);

/* Does s consist of characters of set only? */
bool spec_only_chars(const char *s, const char *set);

/*
 * A string-valued node: strings, and numbers as written (version: 2,
 * revision: 1234567).  Reports and returns NULL for anything else.
 */
const char *spec_as_string(struct check *c, const struct spec_node *v, const char *what);

/*
 * Reads an optional string field (null counts as absent); false when it
 * is present but wrong.  nonempty rejects "" and blanks.
 */
bool spec_get_str(struct check *c, const struct spec_node *map, const char *key,
		  bool nonempty, char **out);

/* spec_get_str that reports a missing key at map_line. */
bool spec_get_required_str(struct check *c, const struct spec_node *map, int map_line,
			   const char *key, char **out);

/* An optional integer in [min, max]; reports a bad one. */
bool spec_get_int(struct check *c, const struct spec_node *map, const char *key,
		  long min, long max, int *out, bool *present);

/* An optional true/false. */
bool spec_get_bool(struct check *c, const struct spec_node *map, const char *key, bool *out);

/* An optional string that must be one of choices. */
bool spec_get_choice(struct check *c, const struct spec_node *map, const char *key,
		     const char *const *choices, char **out);

/* A list of non-empty strings (labels, inputs, paths). */
bool spec_get_list(struct check *c, const struct spec_node *map, const char *key,
		   struct ry_strlist *out, bool *present);

#endif
