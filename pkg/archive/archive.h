/*
 * archive: the artifact format.  A task's declared outputs become one
 * zstd-compressed tar (pax) whose bytes depend only on the outputs' names,
 * types, executable bits, symlink targets and contents: entries sorted by
 * path, every mtime 0, uid/gid 0 without names, modes 0644/0755 (dirs
 * 0755).  Its SHA-256 is the artifact's digest.
 *
 * Creation refuses what cannot be restored safely: absolute or ".." output
 * paths, symlinks whose target leaves the tree, devices, fifos, sockets.
 * Extraction hashes the archive bytes as it reads them, unpacks into a
 * staging directory inside the destination, and moves the entries into
 * place only when the digest matched, never through a symlink.  An archive
 * that does not match its digest, or holds an entry no honest archive
 * holds (absolute path, "..", a hard link, a symlink leaving the tree), is
 * corrupt and leaves the destination untouched.
 *
 * Both calls block (disk I/O, compression): in the worker they run on
 * pkg/offload threads.  The only module that calls libarchive (through
 * pkg/lazylib, which loads it on first use).
 */
#ifndef RY_ARCHIVE_H
#define RY_ARCHIVE_H

#include "core/core.h"
#include "hash/hash.h"

struct ry_archive_info {
	char digest[RY_DIGEST_HEX];	/* SHA-256 of the archive bytes */
	int64_t size;			/* archive bytes */
	size_t entries;			/* files, directories and symlinks */
	int64_t content_bytes;		/* bytes of regular files before compression */
	char *manifest;			/* JSON {"path": "sha256:…" | "dir" | "symlink:T"}; caller frees */
};

enum ry_archive_status {
	RY_ARCHIVE_OK,
	RY_ARCHIVE_CORRUPT,	/* digest mismatch, unreadable or unsafe archive */
	RY_ARCHIVE_FAILED,	/* the destination could not be written (disk full, a directory in the way) */
};

/*
 * Checks one declared path (an output or input): relative, not empty, no
 * "." or ".." component, no control characters.  Returns NULL when fine,
 * else why not (caller frees).
 */
char *ry_archive_check_path(const char *path);
/* path without its trailing slash ("dist/" → "dist"); caller frees. */
char *ry_archive_clean_path(const char *path);

/*
 * Archives outputs (paths relative to root; directories recursively) into
 * out_fd, which must be empty and writable.  Every output must exist.
 * On success fills info (release with ry_archive_info_release).
 */
bool ry_archive_create(const char *root, const struct ry_strlist *outputs, int out_fd,
		       struct ry_archive_info *info, char **err) RY_MUST_CHECK;

/*
 * Extracts the archive read from fd (to EOF) into the directory root, which
 * must exist, verifying that its bytes hash to expect_digest.  Files get
 * the current time as mtime (restored outputs look new to make).
 */
enum ry_archive_status ry_archive_extract(int fd, const char *expect_digest, const char *root,
					  char **err) RY_MUST_CHECK;

/*
 * Unpacks an uncompressed tar read from fd (git archive's output) into the
 * empty directory dest, with the same refusals of ".." and absolute paths
 * and never writing through a symlink; symlinks themselves may point
 * anywhere (a repository's own links).  For source snapshots.
 */
bool ry_archive_unpack_tar(int fd, const char *dest, char **err) RY_MUST_CHECK;

void ry_archive_info_release(struct ry_archive_info *info);

#endif
