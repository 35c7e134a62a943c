/*
 * The memory cgroup the throttle judges besides the host (memory_cgroup):
 * the worker's own (auto), whose usage includes every task's, so a worker
 * under MemoryMax= backs off before its cgroup's OOM killer acts, however
 * much the host has free.  Resolved at start and at every reload.
 */
#include "worker/internal.h"

#include "agent/pressure.h"

#include <stdlib.h>
#include <string.h>

/* What the throttle judges, in words, for the log. */
static char *describe(const char *dir, const char *why)
{
	struct ry_memcg_reading m;
	char *err = NULL, *said;
	if (!dir)
		return ry_asprintf("throttle judges host memory only: %s", why);
	if (!ry_pressure_read_memcg(dir, &m, &err)) {
		said = ry_asprintf("throttle judges memory of cgroup %s and the host (%s)", dir, err);
		free(err);
	} else if (!m.have) {
		said = ry_asprintf("throttle judges host memory only: %s holds no memory cgroup "
				   "(memory.current or memory.usage_in_bytes)", dir);
	} else if (m.limited) {
		said = ry_asprintf("throttle judges memory of cgroup %s (limit %llu MB) and the host",
				   dir, (unsigned long long)(m.limit >> 20));
	} else {
		said = ry_asprintf("throttle judges memory of cgroup %s (no limit now: the host's "
				   "figures decide) and the host", dir);
	}
	return said;
}

void ry_worker_memcg_resolve(struct ry_worker *w)
{
	const char *want = w->cfg.memory_cgroup;
	char *why = NULL;

	free(w->memcg_dir);
	w->memcg_dir = NULL;
	if (!want || strcmp(want, "off") == 0)
		why = ry_strdup("memory_cgroup = off");
	else if (strcmp(want, "auto") == 0)
		w->memcg_dir = ry_cgroup_self_memory_dir(&why);
	else
		w->memcg_dir = ry_strdup(want);
	if (w->cfg.throttle) {
		char *said = describe(w->memcg_dir, why);
		if (!w->memcg_said || strcmp(said, w->memcg_said) != 0) {
			ry_info("%s", said);
			free(w->memcg_said);
			w->memcg_said = said;
		} else {
			free(said);
		}
	}
	free(why);
}

void ry_worker_memcg_release(struct ry_worker *w)
{
	free(w->memcg_dir);
	free(w->memcg_said);
	w->memcg_dir = w->memcg_said = NULL;
}
