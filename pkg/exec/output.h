/*
 * output: what a task prints, on its way from the task's pipe to its log
 * file.  The worker reads the pipe on its loop and feeds the bytes here,
 * which
 *   - masks secret values (each occurrence becomes ***, also when a value
 *     is split across two reads),
 *   - caps the file: past the cap a marker line is written and the rest is
 *     discarded (the task keeps running; its pipe keeps being drained),
 *   - remembers the first write error (ENOSPC, EDQUOT, EIO ...) instead of
 *     losing it, and discards what follows.
 * The log file is created 0600: only the worker's user reads it.
 */
#ifndef RY_OUTPUT_H
#define RY_OUTPUT_H

#include "core/core.h"

struct ry_output;

/* Creates (truncates) path; cap_bytes 0 means no cap. */
struct ry_output *ry_output_open(const char *path, uint64_t cap_bytes, char **err) RY_MUST_CHECK;
/* Adds a value to mask (empty values are ignored). */
void ry_output_mask(struct ry_output *o, const char *value);
void ry_output_feed(struct ry_output *o, const char *data, size_t len);
/* End of output: writes what was held back for masking. */
void ry_output_finish(struct ry_output *o);
/* The first write error's errno, 0 if none. */
int ry_output_error(const struct ry_output *o);
bool ry_output_truncated(const struct ry_output *o);
/* Bytes in the file. */
uint64_t ry_output_size(const struct ry_output *o);
void ry_output_close(struct ry_output *o);

/* Masks every value of masks (n of them) in s, in place where it fits;
 * returns s or a new string (the caller frees whichever it gets). */
char *ry_output_mask_string(char *s, char *const *masks, size_t n);

#endif
