/*
 * store_driver: drives pkg/store from the shell, for integration tests
 * against real servers (tests/integration/test_cache_store.sh).
 *
 *   store_driver --config FILE --workdir DIR [--parallel N] OP ARGS
 *
 * The store is what the worker's cache_* settings in FILE describe (local,
 * or local in front of HTTP; credentials from the files named there).
 * Requests run asynchronously on one libevent loop, N at a time for the
 * same operation.  Ops: put FILE (CAS; the key is the file's SHA-256),
 * put-ac KEY FILE, get KEY DEST, open KEY, head KEY, delete KEY.  A fresh
 * cache_dir makes every read go to the remote store.
 * Prints one line per request: STATUS [size] [digest] [: error/warning],
 * and exits 0 unless the command line was wrong (2).
 */
#include "cache/cache.h"
#include "store/store.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int pending;

static void done(struct ry_store_req *r, void *arg)
{
	(void)arg;
	printf("%s", ry_store_status_name(r->status));
	if (r->size >= 0 && r->status == RY_STORE_OK)
		printf(" %lld", (long long)r->size);
	if (r->op == RY_STORE_PUT && r->status == RY_STORE_OK)
		printf(" %s", r->key);
	if (r->error)
		printf(": %s", r->error);
	if (r->warning)
		printf(" (warning: %s)", r->warning);
	printf("\n");
	fflush(stdout);
	ry_store_req_free(r);
	pending--;
}

static int usage(void)
{
	fprintf(stderr, "usage: store_driver --config FILE --workdir DIR [--parallel N] "
			"put FILE | put-ac KEY FILE | get KEY DEST | open KEY | "
			"head KEY | delete KEY\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *config = NULL, *workdir = NULL;
	long parallel = 1;
	int i = 1;
	char *err = NULL;

	signal(SIGPIPE, SIG_IGN);
	for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
		if (strcmp(argv[i], "--config") == 0)
			config = argv[i + 1];
		else if (strcmp(argv[i], "--workdir") == 0)
			workdir = argv[i + 1];
		else if (strcmp(argv[i], "--parallel") != 0 ||
			 !ry_parse_long(argv[i + 1], 1, 1000, &parallel))
			return usage();
	}
	if (!config || !workdir || i >= argc)
		return usage();
	const char *op = argv[i++];
	struct ry_cache_config cfg;
	ry_cache_config_init(&cfg);
	if (!ry_cache_config_load_file(&cfg, config, &err)) {
		fprintf(stderr, "store_driver: %s\n", err);
		return 2;
	}
	struct event_base *base = event_base_new();
	struct ry_store *store = ry_cache_config_open_store(&cfg, base, workdir, &err);
	if (!store) {
		printf("error: %s\n", err);
		free(err);
		ry_cache_config_release(&cfg);
		event_base_free(base);
		return 0;
	}
	enum ry_store_op o;
	enum ry_store_ns ns = RY_STORE_CAS;
	const char *key = NULL, *path = NULL;
	char digest[RY_DIGEST_HEX];
	int need = 1;
	if (strcmp(op, "put") == 0) {
		o = RY_STORE_PUT;
		path = i < argc ? argv[i] : NULL;
		int64_t size;
		if (!path || !ry_hash_file(path, digest, &size, &err)) {
			fprintf(stderr, "store_driver: %s\n", err ? err : "put needs a FILE");
			return 2;
		}
		key = digest;
	} else if (strcmp(op, "put-ac") == 0) {
		o = RY_STORE_PUT;
		ns = RY_STORE_AC;
		need = 2;
	} else if (strcmp(op, "get") == 0) {
		o = RY_STORE_GET;
		need = 2;
	} else if (strcmp(op, "open") == 0) {
		o = RY_STORE_OPEN;
	} else if (strcmp(op, "head") == 0) {
		o = RY_STORE_HEAD;
	} else if (strcmp(op, "delete") == 0) {
		o = RY_STORE_DELETE;
	} else {
		return usage();
	}
	if (!key) {
		if (argc - i < need)
			return usage();
		key = argv[i];
		path = need == 2 ? argv[i + 1] : NULL;
	}
	for (long k = 0; k < parallel; k++) {
		char *p = path && parallel > 1 && o == RY_STORE_GET ? ry_asprintf("%s.%ld", path, k)
								    : (path ? ry_strdup(path) : NULL);
		struct ry_store_req *r = ry_store_req_new(o, ns, key, p);
		free(p);
		pending++;
		ry_store_start(store, r, done, NULL);
	}
	while (pending > 0)
		event_base_loop(base, EVLOOP_ONCE);
	ry_store_free(store);
	event_base_free(base);
	ry_cache_config_release(&cfg);
	return 0;
}
