/*
 * Internal to pkg/ciimport: GitHub Actions expressions (`${{ ... }}` and
 * `if:`), evaluated at import time where the answer is known then: matrix
 * values, static env, the branch, tag and event of the options, and the
 * status functions under one of two assumptions (every needed job
 * succeeded / one failed).  Everything else (secrets, needs outputs,
 * steps, most of github.*) is unknown; unknown propagates like SQL's NULL
 * through &&, || and !.
 */
#ifndef RY_CIIMPORT_GH_EXPR_H
#define RY_CIIMPORT_GH_EXPR_H

#include "ciimport/internal.h"

enum gh_vtype {
	GV_NULL,
	GV_BOOL,
	GV_NUM,
	GV_STR,
	GV_NODE,	/* an object or array from the matrix */
	GV_UNKNOWN,	/* not known before the run */
};

struct gh_val {
	enum gh_vtype t;
	bool b;
	double num;
	char *s;			/* GV_STR, owned */
	const struct ci_node *node;	/* GV_NODE */
};

struct gh_ctx {
	const struct ci_combo *matrix;	/* NULL: the job has no matrix */
	const struct ry_ci_task *env;	/* static env so far (workflow + job) */
	const struct ry_ci_options *opt;
	bool upstream_failed;		/* the assumption for success()/failure() */
	bool used_status;		/* set when a status function was called */
	char *unknown;			/* the first unknown reference, for notes */
};

/* Evaluates expr; false with *err on a syntax error. */
bool gh_eval(const char *expr, struct gh_ctx *ctx, struct gh_val *out, char **err) RY_MUST_CHECK;
void gh_val_release(struct gh_val *v);
/* GitHub's truthiness; unknown stays unknown (-1). */
int gh_truthy(const struct gh_val *v);
/* The value as text, as ${{ }} substitutes it ("" for null); caller frees. */
char *gh_val_text(const struct gh_val *v);

/*
 * Replaces every ${{ expr }} in text.  An expression whose value is not
 * known at import becomes "" (as GitHub does for a missing value) and is
 * appended to unknown.  False with *err on a syntax error.
 */
bool gh_subst(const char *text, struct gh_ctx *ctx, char **out, struct ry_strlist *unknown,
	      char **err) RY_MUST_CHECK;

#endif
