/*
 * memhog: a memory-bound task for the placement benchmark's memory-bound
 * overload row (bench/bench_placement.sh); no part of railyard.
 *
 *   memhog MB RAMP_MS HOLD_MS
 *       allocates MB mebibytes in STEPS equal steps spread over RAMP_MS
 *       milliseconds, writing every page so that it is resident (not only
 *       reserved), holds it all for HOLD_MS milliseconds, exits 0.
 *
 * Exit status 2 with a message naming the argument when one is not a
 * whole number in range; 1 when memory cannot be had (in a memory cgroup
 * at its limit the kernel's OOM killer ends it first, with SIGKILL).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STEPS 20
#define MAX_MB (1L << 20)		/* 1 TiB: a typo, not a task */
#define MAX_MS (24L * 3600 * 1000)	/* a day */

static void usage(void)
{
	fprintf(stderr, "usage: memhog MB RAMP_MS HOLD_MS\n");
	exit(2);
}

/* The argument as a whole number in [0, max]; exits naming it when not. */
static long parse_arg(const char *name, const char *s, long max)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > max) {
		fprintf(stderr, "memhog: bad %s '%s': want a whole number from 0 to %ld\n",
			name, s, max);
		exit(2);
	}
	return v;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	if (argc != 4)
		usage();
	long mb = parse_arg("MB", argv[1], MAX_MB);
	long ramp_ms = parse_arg("RAMP_MS", argv[2], MAX_MS);
	long hold_ms = parse_arg("HOLD_MS", argv[3], MAX_MS);
	long page = sysconf(_SC_PAGESIZE);
	size_t total = (size_t)mb << 20;
	char *chunk[STEPS] = { 0 };
	int rc = 0;

	if (page <= 0)
		page = 4096;
	for (int i = 0; i < STEPS; i++) {
		/* Step i brings the total to (i + 1) / STEPS of MB. */
		size_t want = total / STEPS + (i == STEPS - 1 ? total % STEPS : 0);
		if (want) {
			chunk[i] = malloc(want);
			if (!chunk[i]) {
				fprintf(stderr, "memhog: cannot allocate %zu bytes (step %d of %d): %s\n",
					want, i + 1, STEPS, strerror(errno));
				rc = 1;
				goto out;
			}
			/* Every page written (through volatile: the compiler may
			 * not drop the stores), so every page is resident. */
			volatile char *p = chunk[i];
			for (size_t off = 0; off < want; off += (size_t)page)
				p[off] = (char)(1 + off / (size_t)page % 255);
			p[want - 1] = 1;
		}
		if (i < STEPS - 1)
			sleep_ms(ramp_ms / (STEPS - 1));
	}
	sleep_ms(hold_ms);
out:
	for (int i = 0; i < STEPS; i++)
		free(chunk[i]);
	return rc;
}
