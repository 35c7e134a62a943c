/*
 * source: the code a pipeline builds, as a tree for each task.
 *
 * A pipeline's `source` is a git repository (a URL git can fetch, or a
 * repository on disk) or a plain directory.  For git, each host keeps one
 * bare mirror per repository under STATE/mirrors, created once and
 * fetched only when the revision asked for is not there yet (a commit id
 * already present costs no network); creation and fetches hold an
 * exclusive flock, so concurrent tasks never fetch twice or see a
 * half-made mirror.  Each commit is unpacked once per host into a
 * read-only snapshot (STATE/snapshots/COMMIT, from `git archive`), and
 * every task gets its own copy of it: parallel tasks never share a file,
 * so none can corrupt another's tree.  docs/cache.md has the measurements
 * that chose copying a snapshot over `git worktree add`, `git archive |
 * tar x` and hard links.
 *
 * Every call blocks (git, disk): the worker runs them on pkg/offload
 * threads.  git runs without a terminal (no password prompts) and with the
 * ext:: transport disabled; a source starting with "-" is refused.
 */
#ifndef RY_SOURCE_H
#define RY_SOURCE_H

#include "core/core.h"
#include "hash/hash.h"

enum ry_source_kind {
	RY_SOURCE_GIT,		/* a repository: URL, or a directory with .git / a bare one */
	RY_SOURCE_DIR,		/* a plain directory, copied as it is */
};

/* What location is; false with *err when it is neither (names it). */
bool ry_source_classify(const char *location, enum ry_source_kind *kind, char **err) RY_MUST_CHECK;

/*
 * Makes sure the mirror of location under state_dir holds revision
 * (cloning or fetching as needed) and resolves it to a full commit id.
 * *mirror receives the mirror's path (caller frees).  A repository that
 * cannot be fetched or a revision it does not have is an error that says
 * which.
 */
bool ry_source_resolve(const char *state_dir, const char *location, const char *revision,
		       char commit[RY_DIGEST_HEX], char **mirror, char **err) RY_MUST_CHECK;

/* Copies the tree of commit into dest (created; must not exist), from
 * the host's snapshot of the commit (made on first use). */
bool ry_source_checkout(const char *state_dir, const char *mirror, const char *commit,
			const char *dest, char **err) RY_MUST_CHECK;

/* Copies the directory src into dest (created; must not exist): regular
 * files (executable bit kept), directories and symlinks. */
bool ry_source_copy_tree(const char *src, const char *dest, char **err) RY_MUST_CHECK;

/*
 * Cache-key values of declared inputs (see pkg/cache): for a git source,
 * from the commit's object ids — "tree OID" (a directory, or "." for the
 * whole tree), "blob OID" (a file), "files SHA256" (a glob: its matches'
 * paths and ids), "absent" — in one `git cat-file --batch-check`, without
 * reading a file.  values gets one item per input, in order.
 */
bool ry_source_git_inputs(const char *mirror, const char *commit, const struct ry_strlist *inputs,
			  struct ry_strlist *values, char **err) RY_MUST_CHECK;

/*
 * The same for a plain tree (a directory source): "file SHA256",
 * "files SHA256" (a directory or glob: relative paths, modes and file
 * digests), "absent".  File digests are remembered in stat_cache (a file
 * of path, device, inode, size, mtime and ctime → digest; NULL: none) and
 * reused while those stay the same.
 */
bool ry_source_dir_inputs(const char *root, const struct ry_strlist *inputs, const char *stat_cache,
			  struct ry_strlist *values, char **err) RY_MUST_CHECK;

/* Removes snapshots not used for max_age_s; returns how many. */
size_t ry_source_prune_snapshots(const char *state_dir, int64_t max_age_s);

#endif
