/*
 * offload: runs blocking work (archiving, extraction with digest checks,
 * git, hashing input files) on a few threads so the event loop never waits
 * for it.  A job's work function runs on a pool thread; its done function
 * runs afterwards on the loop thread, from the event_base the pool was made
 * with.  Threads share nothing but the queue: a job owns its own data.
 *
 * Why threads and not a child process: the jobs are library calls
 * (libarchive, OpenSSL, posix_spawn of git) that block; a child would have
 * to ship results back and fork the worker's page tables, while a thread
 * hands back a pointer.  The loop learns of a finished job through a pipe,
 * so libevent needs no thread support.
 */
#ifndef RY_OFFLOAD_H
#define RY_OFFLOAD_H

#include "core/core.h"

struct event_base;
struct ry_offload;

typedef void (*ry_offload_fn)(void *arg);

/* nthreads 1..64.  NULL with *err when a thread or the pipe cannot be made. */
struct ry_offload *ry_offload_new(struct event_base *base, int nthreads, char **err) RY_MUST_CHECK;
/* Queues work(arg) for a pool thread; done(arg) follows on the loop. */
void ry_offload_run(struct ry_offload *o, ry_offload_fn work, ry_offload_fn done, void *arg);
/* Jobs queued or running. */
size_t ry_offload_pending(const struct ry_offload *o);
/* Waits for running and queued work to finish (their done functions run
 * first, on the calling thread), then stops the threads. */
void ry_offload_free(struct ry_offload *o);

#endif
