/*
 * hostinfo: what a farm host is, read from the kernel (uname, sysconf,
 * sysinfo, statvfs).  The agent row is built from this plus configuration.
 */
#ifndef RY_HOSTINFO_H
#define RY_HOSTINFO_H

#include "core/core.h"

struct ry_hostinfo {
	char hostname[256];
	char os[80];		/* lower-case kernel name: "linux" */
	char arch[80];		/* machine: "x86_64", "aarch64" */
	int cores;		/* online CPUs */
	long mem_mb;		/* physical memory */
	long disk_mb;		/* free space where tasks run; -1 if unknown */
};

void ry_hostinfo_collect(struct ry_hostinfo *h, const char *workdir);

#endif
