/*
 * journal: the worker's local, append-only record of task results, so a
 * result the database could not take yet survives a worker restart.
 *
 * One JSON object per line (jansson): a result record as the task ends,
 * an acknowledgement record once the database has answered for a batch
 * (stored, or refused by fencing: either way it is done).  Results are made
 * durable (fdatasync, once per batch) before they are sent.  On open the
 * file is replayed: the results without an acknowledgement are handed back
 * to be sent again, and the file is rewritten with only those.  While
 * running it is emptied (one ftruncate) whenever nothing is pending, and
 * rewritten when it has grown while few results are pending — the work
 * stays bounded either way.
 *
 * Internal to pkg/worker; no database, no event loop: unit-tested on files.
 */
#ifndef RY_WORKER_JOURNAL_H
#define RY_WORKER_JOURNAL_H

#include "core/core.h"

struct ry_journal;

/* A task result as the journal keeps it (strings owned; NULL = absent). */
struct ry_journal_result {
	int64_t agent_id;	/* the agent that reports it */
	int64_t task_id;
	int attempt;
	int64_t pipeline_id;
	char *name;
	char *outcome;		/* succeeded, failed, skipped */
	int exit_code;		/* -1: none */
	char *reason;
	int64_t started_us;	/* wall clock */
	int64_t finished_us;
	double duration_s;	/* < 0: unknown */
	char *log_path;
	char *log_tail;
	double cpu_s;		/* < 0: unknown */
	int64_t mem_peak_bytes;	/* < 0: unknown */
	int64_t io_read_bytes;	/* < 0: unknown */
	int64_t io_write_bytes;
	char *cache;		/* its railyard.cache_record element (JSON), or NULL */
};

void ry_journal_result_release(struct ry_journal_result *r);

/*
 * Opens (creating) the journal at path, replays it and compacts it.  The
 * results still pending are returned in *pending (*n of them; the caller
 * releases each and frees the array).  NULL with *err when the file cannot
 * be used; lines that cannot be read are skipped with a warning naming the
 * line.
 */
struct ry_journal *ry_journal_open(const char *path, struct ry_journal_result **pending,
				   size_t *n, char **err) RY_MUST_CHECK;
/* Appends a result (not yet durable).  False when the write failed: the
 * error (errno) is kept for ry_journal_error and later writes still try. */
bool ry_journal_add(struct ry_journal *j, const struct ry_journal_result *r);
/* Makes what was added durable (fdatasync, only when something is new). */
bool ry_journal_sync(struct ry_journal *j);
/* The database answered for these: they are no longer pending. */
void ry_journal_ack(struct ry_journal *j, const int64_t *task_ids, const int *attempts, size_t n);
/* The last write or sync error (errno), 0 if none since the last success. */
int ry_journal_error(const struct ry_journal *j);
/* Results added and not acknowledged. */
size_t ry_journal_pending(const struct ry_journal *j);
/* Bytes in the file. */
uint64_t ry_journal_size(const struct ry_journal *j);
void ry_journal_close(struct ry_journal *j);

#endif
