/*
 * worker: one farm agent.  A single libevent loop drives one asynchronous
 * database connection (claims, completions, heartbeats, LISTEN) and every
 * task process; nothing in it blocks on the network.
 */
#ifndef RY_WORKER_H
#define RY_WORKER_H

#include "config/config.h"

struct ry_worker;

/*
 * Builds a worker for cfg (copied) against conninfo.  config_path, when not
 * NULL, is re-read on SIGHUP; flags are the flag settings to re-apply over it
 * (key, value pairs), so flags keep winning after a reload.
 */
struct ry_worker *ry_worker_new(const struct ry_worker_config *cfg, const char *conninfo,
				const char *config_path, const struct ry_strlist *flags);
/*
 * Runs until stopped (SIGTERM/SIGINT drain, a second one kills) or, with
 * exit_when_idle, until nothing it could run remains.  Returns 0 on a clean
 * exit, 1 when the worker could not register or lost its agent.
 */
int ry_worker_run(struct ry_worker *w);
void ry_worker_free(struct ry_worker *w);

#endif
