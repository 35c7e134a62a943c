#include "sched/sched.h"

size_t ry_sched_choose(const struct ry_sched_capacity *free_cap,
		       const struct ry_sched_candidate *c, size_t n, size_t *chosen)
{
	struct ry_sched_capacity left = *free_cap;
	size_t k = 0;

	for (size_t i = 0; i < n && left.slots > 0; i++) {
		if (c[i].cpu > left.cpu || c[i].mem_mb > left.mem_mb)
			continue;
		left.slots--;
		left.cpu -= c[i].cpu;
		left.mem_mb -= c[i].mem_mb;
		chosen[k++] = i;
	}
	return k;
}
