/*
 * bench_cache_lookup: what a cache lookup costs on a worker, and what a
 * task's tree costs.  Run by bench/bench_cache_lookup.sh; prints
 * "name value" lines.
 *
 *   bench_cache_lookup lookup DIR BLOBS LOOKUPS
 *     A local store in DIR holding BLOBS records; LOOKUPS lookups of random
 *     ones, each timed: the key computed from a realistic component set
 *     (definition with 6 env variables, platform, 3 inputs, 2 upstreams)
 *     plus a HEAD of its record in the local store — synchronously, and
 *     through the asynchronous API on an event loop (the worker's path).
 *     Baseline in the same run: a bare stat() of the same file, path
 *     precomputed.  Latencies in microseconds (p50, p99, max).
 *
 *   bench_cache_lookup checkout STATE SOURCE RUNS DEST
 *     RUNS trees of SOURCE's HEAD through pkg/source (the first makes the
 *     host's snapshot and is reported apart); milliseconds per tree.
 */
#include "cache/cache.h"
#include "exec/exec.h"
#include "source/source.h"
#include "store/store.h"

#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void report(const char *name, double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_d);
	printf("%s_p50 %.2f\n%s_p99 %.2f\n%s_max %.2f\n", name, v[n / 2], name,
	       v[(size_t)((double)(n - 1) * 0.99)], name, v[n - 1]);
}

/* The components of task i, as a worker would gather them. */
static void key_of(unsigned i, char hex[RY_DIGEST_HEX])
{
	struct ry_cache_key k = { 0 };
	struct ry_strlist env = { 0 }, outs = { 0 }, tc = { 0 };
	char buf[128];
	for (int e = 0; e < 6; e++) {
		snprintf(buf, sizeof(buf), "VAR_%d=value-%d", e, e * 7);
		ry_strlist_add(&env, buf);
	}
	ry_strlist_add(&outs, "dist/");
	ry_strlist_add(&tc, "gcc-12");
	snprintf(buf, sizeof(buf), "make -C services/svc%u build", i);
	ry_cache_key_add_definition(&k, buf, &env, "1", "build", &outs);
	ry_cache_key_add_platform(&k, "linux", "x86_64", &tc);
	snprintf(buf, sizeof(buf), "tree %040x", i);
	ry_cache_key_add_input(&k, "services/svc/", buf);
	ry_cache_key_add_input(&k, "go.sum", "blob 1234567890abcdef1234567890abcdef12345678");
	ry_cache_key_add_input(&k, "proto/*.proto", "files 1234567890abcdef1234567890abcdef1234567890abcdef1234567890ab");
	ry_cache_key_add_upstream(&k, "build:lib", "1111111111111111111111111111111111111111111111111111111111111111");
	ry_cache_key_add_upstream(&k, "build:proto", "2222222222222222222222222222222222222222222222222222222222222222");
	ry_cache_key_compute(&k, hex);
	ry_cache_key_release(&k);
	ry_strlist_release(&env);
	ry_strlist_release(&outs);
	ry_strlist_release(&tc);
}

static int done_flag;

static void on_head(struct ry_store_req *r, void *arg)
{
	(void)arg;
	done_flag = r->status == RY_STORE_OK ? 1 : -1;
	ry_store_req_free(r);
}

static int lookup(const char *dir, unsigned blobs, unsigned lookups)
{
	char *err = NULL;
	struct event_base *base = event_base_new();
	struct ry_store *s = ry_store_local_new(base, dir, &err);
	if (!s) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	char (*keys)[RY_DIGEST_HEX] = ry_malloc(blobs * sizeof(*keys));
	char **paths = ry_malloc(blobs * sizeof(*paths));
	double t0 = now_us();
	for (unsigned i = 0; i < blobs; i++) {
		key_of(i, keys[i]);
		paths[i] = ry_store_local_path(s, RY_STORE_AC, keys[i]);
		char *sub = ry_strdup(paths[i]);
		*strrchr(sub, '/') = '\0';
		mkdir(sub, 0755);
		free(sub);
		int fd = open(paths[i], O_WRONLY | O_CREAT | O_TRUNC, 0444);
		if (fd < 0 || write(fd, keys[i], 64) != 64) {
			perror(paths[i]);
			return 1;
		}
		close(fd);
	}
	printf("setup_s %.1f\n", (now_us() - t0) / 1e6);
	double *base_us = ry_malloc(lookups * sizeof(double));
	double *key_us = ry_malloc(lookups * sizeof(double));
	double *sync_us = ry_malloc(lookups * sizeof(double));
	double *async_us = ry_malloc(lookups * sizeof(double));
	unsigned seed = 12345, misses = 0;
	for (unsigned n = 0; n < lookups; n++) {
		unsigned i = (seed = seed * 1103515245u + 12345u) % blobs;
		struct stat sb;
		char hex[RY_DIGEST_HEX];
		double a = now_us();
		misses += stat(paths[i], &sb) != 0;
		double b = now_us();
		key_of(i, hex);
		double c = now_us();
		struct ry_store_req *r = ry_store_req_new(RY_STORE_HEAD, RY_STORE_AC, hex, NULL);
		misses += ry_store_local_do(s, r) != RY_STORE_OK;
		ry_store_req_free(r);
		double d = now_us();
		key_of(i, hex);
		r = ry_store_req_new(RY_STORE_HEAD, RY_STORE_AC, hex, NULL);
		done_flag = 0;
		ry_store_start(s, r, on_head, NULL);
		while (!done_flag)
			event_base_loop(base, EVLOOP_ONCE);
		misses += done_flag < 0;
		double e = now_us();
		base_us[n] = b - a;
		key_us[n] = c - b;
		sync_us[n] = d - b;
		async_us[n] = e - d;
	}
	printf("blobs %u\nlookups %u\nmisses %u\n", blobs, lookups, misses);
	report("stat_us", base_us, lookups);
	report("key_us", key_us, lookups);
	report("lookup_us", sync_us, lookups);
	report("async_lookup_us", async_us, lookups);
	for (unsigned i = 0; i < blobs; i++)
		free(paths[i]);
	free(paths);
	free(keys);
	free(base_us);
	free(key_us);
	free(sync_us);
	free(async_us);
	ry_store_free(s);
	event_base_free(base);
	return misses ? 1 : 0;
}

static int checkout(const char *state, const char *source, unsigned runs, const char *dest)
{
	char commit[RY_DIGEST_HEX], *mirror = NULL, *err = NULL;
	double *ms = ry_malloc(runs * sizeof(double));
	double t0 = now_us();
	if (!ry_source_resolve(state, source, "HEAD", commit, &mirror, &err)) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	printf("resolve_first_ms %.1f\n", (now_us() - t0) / 1e3);
	t0 = now_us();
	char *d0 = ry_asprintf("%s/first", dest);
	if (!ry_source_checkout(state, mirror, commit, d0, &err)) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	printf("checkout_first_ms %.1f\n", (now_us() - t0) / 1e3);
	for (unsigned i = 0; i < runs; i++) {
		char *d = ry_asprintf("%s/t%u", dest, i);
		char c2[RY_DIGEST_HEX], *m2 = NULL;
		double a = now_us();
		bool ok = ry_source_resolve(state, source, commit, c2, &m2, &err) &&
			  ry_source_checkout(state, m2, commit, d, &err);
		ms[i] = (now_us() - a) / 1e3;
		free(m2);
		free(d);
		if (!ok) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
	}
	report("checkout_ms", ms, runs);
	free(d0);
	free(ms);
	free(mirror);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "lookup") == 0)
		return lookup(argv[2], (unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]));
	if (argc == 6 && strcmp(argv[1], "checkout") == 0)
		return checkout(argv[2], argv[3], (unsigned)atoi(argv[4]), argv[5]);
	fprintf(stderr, "usage: bench_cache_lookup lookup DIR BLOBS LOOKUPS | checkout STATE SOURCE RUNS DEST\n");
	return 2;
}
