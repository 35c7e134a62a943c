#include "agent/hostinfo.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

void ry_hostinfo_collect(struct ry_hostinfo *h, const char *workdir)
{
	struct utsname u;
	struct sysinfo si;
	struct statvfs vfs;

	memset(h, 0, sizeof(*h));
	if (gethostname(h->hostname, sizeof(h->hostname) - 1) != 0)
		snprintf(h->hostname, sizeof(h->hostname), "unknown");
	if (uname(&u) == 0) {
		snprintf(h->os, sizeof(h->os), "%.63s", u.sysname);
		snprintf(h->arch, sizeof(h->arch), "%.63s", u.machine);
	} else {
		snprintf(h->os, sizeof(h->os), "unknown");
		snprintf(h->arch, sizeof(h->arch), "unknown");
	}
	for (char *p = h->os; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	h->cores = n > 0 ? (int)n : 1;
	h->mem_mb = sysinfo(&si) == 0 ? (long)((unsigned long long)si.totalram * si.mem_unit >> 20) : 0;
	h->disk_mb = workdir && statvfs(workdir, &vfs) == 0
		     ? (long)((unsigned long long)vfs.f_bavail * vfs.f_frsize >> 20) : -1;
}
