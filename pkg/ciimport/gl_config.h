/*
 * Internal to pkg/ciimport: a GitLab CI configuration read as GitLab reads
 * it before it creates jobs — `include: local` followed (never outside the
 * repository), included files merged under the including one,
 * `!reference` tags and `extends` resolved.
 */
#ifndef RY_CIIMPORT_GL_CONFIG_H
#define RY_CIIMPORT_GL_CONFIG_H

#include "ciimport/internal.h"

struct gl_config {
	struct ci_build *b;
	char *repo;		/* realpath of the repository root */
	char *shown;		/* the root as the user named it ("" for .), for messages */
	struct ci_node *root;	/* the merged, resolved configuration */
	struct ry_strlist loaded;	/* repository paths included so far */
};

/* Reads paths[0] (and the others, as if included first) into cfg->root. */
bool gl_config_load(struct gl_config *cfg, const char *const *paths, size_t npaths) RY_MUST_CHECK;
void gl_config_release(struct gl_config *cfg);

/* Whether a file of the repository matches glob (rules:exists). */
bool gl_repo_has(const struct gl_config *cfg, const char *glob);

/* Keys of the top level that are not jobs. */
bool gl_reserved_key(const char *key);

/* Deep merge as GitLab does it: mappings merge, anything else is replaced. */
struct ci_node *gl_merge(struct ci_doc *doc, const struct ci_node *base, const struct ci_node *over);

#endif
