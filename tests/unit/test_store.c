/*
 * pkg/store without a network: the local directory store (atomic puts,
 * concurrent writers of one key, corruption found and moved aside, keys
 * that are not digests refused), the tiered store over a fake remote (a
 * remote miss/outage/auth failure classified, never fatal; fetched blobs
 * fill the local store), and cancellation.  The HTTP store is tested
 * against a real nginx by tests/integration/test_cache_store.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec/exec.h"
#include "store/store.h"

static char dir[64];
static struct event_base *base;

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ry-test-store-XXXXXX");
	base = event_base_new();
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	ry_exec_remove_tree(dir);
	event_base_free(base);
	return 0;
}

/* Writes content to DIR/name and returns its path and digest. */
static char *file_with(const char *name, const char *content, char digest[RY_DIGEST_HEX])
{
	char *p = ry_asprintf("%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
	if (digest)
		ry_hash_hex(content, strlen(content), digest);
	return p;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char buf[4096];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return ry_strdup(buf);
}

static enum ry_store_status run(struct ry_store *s, enum ry_store_op op, enum ry_store_ns ns,
				const char *key, const char *path, struct ry_store_req **keep)
{
	struct ry_store_req *r = ry_store_req_new(op, ns, key, path);
	enum ry_store_status st = ry_store_run(s, r);
	if (keep)
		*keep = r;
	else
		ry_store_req_free(r);
	return st;
}

static struct ry_store *local_at(const char *sub)
{
	char *err = NULL, *p = ry_asprintf("%s/%s", dir, sub);
	struct ry_store *s = ry_store_local_new(base, p, &err);
	if (!s)
		fail_msg("%s", err);
	free(p);
	return s;
}

static void local_round_trip(void **state)
{
	(void)state;
	char d[RY_DIGEST_HEX];
	char *src = file_with("src", "hello artifact\n", d);
	char *dst = ry_asprintf("%s/out", dir);
	struct ry_store *s = local_at("cache");
	struct ry_store_req *r;

	assert_int_equal(run(s, RY_STORE_HEAD, RY_STORE_CAS, d, NULL, NULL), RY_STORE_MISS);
	assert_int_equal(run(s, RY_STORE_PUT, RY_STORE_CAS, d, src, NULL), RY_STORE_OK);
	assert_int_equal(run(s, RY_STORE_HEAD, RY_STORE_CAS, d, NULL, &r), RY_STORE_OK);
	assert_int_equal(r->size, 15);
	ry_store_req_free(r);
	assert_int_equal(run(s, RY_STORE_GET, RY_STORE_CAS, d, dst, NULL), RY_STORE_OK);
	char *got = slurp(dst);
	assert_string_equal(got, "hello artifact\n");
	free(got);
	assert_int_equal(run(s, RY_STORE_OPEN, RY_STORE_CAS, d, NULL, &r), RY_STORE_OK);
	char buf[64] = "";
	assert_int_equal(read(r->fd, buf, sizeof(buf)), 15);
	ry_store_req_free(r);
	/* blobs are read-only and live under cas/ab/ */
	char *blob = ry_store_local_path(s, RY_STORE_CAS, d);
	struct stat sb;
	assert_int_equal(stat(blob, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0444);
	assert_non_null(strstr(blob, "/cas/"));
	free(blob);
	assert_int_equal(run(s, RY_STORE_DELETE, RY_STORE_CAS, d, NULL, NULL), RY_STORE_OK);
	assert_int_equal(run(s, RY_STORE_DELETE, RY_STORE_CAS, d, NULL, NULL), RY_STORE_MISS);
	ry_store_free(s);
	free(src);
	free(dst);
}

static void local_refuses_lies_and_bad_keys(void **state)
{
	(void)state;
	char d[RY_DIGEST_HEX];
	char *src = file_with("src", "content", d);
	struct ry_store *s = local_at("cache");
	struct ry_store_req *r;
	/* a PUT whose bytes are not what the key says */
	char other[RY_DIGEST_HEX];
	ry_hash_hex("other", 5, other);
	assert_int_equal(run(s, RY_STORE_PUT, RY_STORE_CAS, other, src, &r), RY_STORE_REFUSED);
	assert_non_null(strstr(r->error, "does not match"));
	ry_store_req_free(r);
	assert_int_equal(run(s, RY_STORE_HEAD, RY_STORE_CAS, other, NULL, NULL), RY_STORE_MISS);
	/* keys are digests, never paths */
	assert_int_equal(run(s, RY_STORE_GET, RY_STORE_CAS, "../../etc/passwd", src, &r),
			 RY_STORE_REFUSED);
	assert_non_null(strstr(r->error, "64-hex-digit"));
	ry_store_req_free(r);
	/* AC records are not content-addressed: any content under a key */
	assert_int_equal(run(s, RY_STORE_PUT, RY_STORE_AC, other, src, NULL), RY_STORE_OK);
	ry_store_free(s);
	free(src);
}

static void local_corruption_quarantined(void **state)
{
	(void)state;
	char d[RY_DIGEST_HEX];
	char *src = file_with("src", "precious bytes", d);
	char *dst = ry_asprintf("%s/out", dir);
	struct ry_store *s = local_at("cache");
	struct ry_store_req *r;
	assert_int_equal(run(s, RY_STORE_PUT, RY_STORE_CAS, d, src, NULL), RY_STORE_OK);
	char *blob = ry_store_local_path(s, RY_STORE_CAS, d);
	assert_int_equal(chmod(blob, 0644), 0);
	FILE *f = fopen(blob, "r+");
	fputc('P' ^ 1, f);
	fclose(f);
	assert_int_equal(run(s, RY_STORE_GET, RY_STORE_CAS, d, dst, &r), RY_STORE_CORRUPT);
	assert_non_null(strstr(r->error, "does not match"));
	ry_store_req_free(r);
	assert_int_equal(access(dst, F_OK), -1);	/* nothing half-written */
	assert_int_equal(access(blob, F_OK), -1);	/* moved aside */
	char *q = ry_asprintf("ls %s/cache/quarantine | grep -q cas-%s", dir, d);
	assert_int_equal(system(q), 0);
	free(q);
	/* and it is now simply a miss */
	assert_int_equal(run(s, RY_STORE_HEAD, RY_STORE_CAS, d, NULL, NULL), RY_STORE_MISS);
	free(blob);
	free(src);
	free(dst);
	ry_store_free(s);
}

static void concurrent_writers_both_succeed(void **state)
{
	(void)state;
	char d[RY_DIGEST_HEX];
	struct ry_buf big = RY_BUF_INIT;
	for (int i = 0; i < 20000; i++)
		ry_buf_printf(&big, "line %d\n", i);
	char *src = file_with("src", big.data, d);
	char *cache = ry_asprintf("%s/cache", dir);
	pid_t kids[8];
	for (int k = 0; k < 8; k++) {
		kids[k] = fork();
		if (kids[k] == 0) {
			char *err = NULL;
			struct ry_store *s = ry_store_local_new(NULL, cache, &err);
			int ok = 1;
			for (int i = 0; s && i < 20; i++) {
				struct ry_store_req *r = ry_store_req_new(RY_STORE_PUT, RY_STORE_AC, d, src);
				ok &= ry_store_run(s, r) == RY_STORE_OK;
				ry_store_req_free(r);
			}
			_exit(s && ok ? 0 : 1);
		}
	}
	for (int k = 0; k < 8; k++) {
		int st;
		assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	struct ry_store *s = local_at("cache");
	struct ry_store_blob *blobs;
	size_t n;
	char *err = NULL;
	assert_true(ry_store_local_list(s, RY_STORE_AC, &blobs, &n, &err));
	assert_int_equal(n, 1);
	assert_int_equal(blobs[0].size, (int64_t)big.len);
	free(blobs);
	char *blob = ry_store_local_path(s, RY_STORE_AC, d);
	char *got = slurp(blob);
	assert_int_equal(strncmp(got, big.data, strlen(got)), 0);
	free(got);
	free(blob);
	/* no temporary file left behind */
	char *q = ry_asprintf("test -z \"$(ls -A %s/tmp; find %s/ac -name '*.part-*')\"", cache, cache);
	assert_int_equal(system(q), 0);
	free(q);
	ry_store_free(s);
	ry_buf_release(&big);
	free(src);
	free(cache);
}

static void tiered_fills_local_from_remote(void **state)
{
	(void)state;
	char d[RY_DIGEST_HEX];
	char *src = file_with("src", "built on another host", d);
	char *dst = ry_asprintf("%s/out", dir);
	struct ry_store *remote = ry_store_fake_new(base);
	struct ry_store *t = ry_store_tiered_new(local_at("cache"), remote);
	struct ry_store *local = ry_store_tiered_local(t);

	/* another host uploaded it */
	assert_int_equal(run(remote, RY_STORE_PUT, RY_STORE_CAS, d, src, NULL), RY_STORE_OK);
	assert_int_equal(run(local, RY_STORE_HEAD, RY_STORE_CAS, d, NULL, NULL), RY_STORE_MISS);
	assert_int_equal(run(t, RY_STORE_GET, RY_STORE_CAS, d, dst, NULL), RY_STORE_OK);
	char *got = slurp(dst);
	assert_string_equal(got, "built on another host");
	free(got);
	/* now local: the remote is not asked again */
	size_t gets = ry_store_fake_calls(remote, RY_STORE_GET);
	assert_int_equal(run(local, RY_STORE_HEAD, RY_STORE_CAS, d, NULL, NULL), RY_STORE_OK);
	struct ry_store_req *r;
	assert_int_equal(run(t, RY_STORE_OPEN, RY_STORE_CAS, d, NULL, &r), RY_STORE_OK);
	assert_true(r->fd >= 0);
	ry_store_req_free(r);
	assert_int_equal(ry_store_fake_calls(remote, RY_STORE_GET), gets);
	ry_store_free(t);
	free(src);
	free(dst);
}

static void tiered_remote_trouble_is_classified(void **state)
{
	(void)state;
	char d[RY_DIGEST_HEX], e[RY_DIGEST_HEX];
	char *src = file_with("src", "output", d);
	char *src2 = file_with("src2", "other output", e);
	char *dst = ry_asprintf("%s/out", dir);
	struct ry_store *remote = ry_store_fake_new(base);
	struct ry_store *t = ry_store_tiered_new(local_at("cache"), remote);
	struct ry_store_req *r;

	/* a PUT while the remote is down: stored locally, with a warning */
	ry_store_fake_fail(remote, RY_STORE_PUT, RY_STORE_UNAVAILABLE);
	assert_int_equal(run(t, RY_STORE_PUT, RY_STORE_CAS, d, src, &r), RY_STORE_OK);
	assert_non_null(r->warning);
	assert_non_null(strstr(r->warning, "unavailable"));
	ry_store_req_free(r);
	ry_store_fake_fail(remote, RY_STORE_PUT, RY_STORE_OK);
	assert_int_equal(run(t, RY_STORE_PUT, RY_STORE_CAS, d, src, &r), RY_STORE_OK);
	assert_null(r->warning);
	ry_store_req_free(r);
	assert_int_equal(ry_store_fake_count(remote), 1);
	/* a blob both lack: a miss, not an error */
	char none[RY_DIGEST_HEX];
	ry_hash_hex("none", 4, none);
	assert_int_equal(run(t, RY_STORE_GET, RY_STORE_CAS, none, dst, NULL), RY_STORE_MISS);
	/* the remote refusing us: auth, with the store named */
	assert_int_equal(run(remote, RY_STORE_PUT, RY_STORE_CAS, e, src2, NULL), RY_STORE_OK);
	ry_store_fake_fail(remote, RY_STORE_GET, RY_STORE_AUTH);
	assert_int_equal(run(t, RY_STORE_GET, RY_STORE_CAS, e, dst, &r), RY_STORE_AUTH);
	assert_non_null(strstr(r->error, "fake store"));
	ry_store_req_free(r);
	/* a corrupt remote copy never lands in the local store */
	ry_store_fake_fail(remote, RY_STORE_GET, RY_STORE_OK);
	assert_true(ry_store_fake_corrupt(remote, RY_STORE_CAS, e));
	assert_int_equal(run(t, RY_STORE_GET, RY_STORE_CAS, e, dst, NULL), RY_STORE_CORRUPT);
	assert_int_equal(run(ry_store_tiered_local(t), RY_STORE_HEAD, RY_STORE_CAS, e, NULL, NULL),
			 RY_STORE_MISS);
	assert_int_equal(access(dst, F_OK), -1);
	ry_store_free(t);
	free(src);
	free(src2);
	free(dst);
}

static void reader_keeps_blob_through_delete(void **state)
{
	(void)state;
	/* GC unlinks while a restore reads: the open descriptor still reads
	 * every byte, and they still hash to the key. */
	char d[RY_DIGEST_HEX], got[RY_DIGEST_HEX];
	struct ry_buf big = RY_BUF_INIT;
	for (int i = 0; i < 50000; i++)
		ry_buf_printf(&big, "row %d\n", i);
	char *src = file_with("src", big.data, d);
	struct ry_store *s = local_at("cache");
	struct ry_store_req *r;
	assert_int_equal(run(s, RY_STORE_PUT, RY_STORE_CAS, d, src, NULL), RY_STORE_OK);
	assert_int_equal(run(s, RY_STORE_OPEN, RY_STORE_CAS, d, NULL, &r), RY_STORE_OK);
	char head[100];
	assert_int_equal(read(r->fd, head, sizeof(head)), (ssize_t)sizeof(head));
	assert_int_equal(run(s, RY_STORE_DELETE, RY_STORE_CAS, d, NULL, NULL), RY_STORE_OK);
	assert_int_equal(run(s, RY_STORE_HEAD, RY_STORE_CAS, d, NULL, NULL), RY_STORE_MISS);
	assert_int_equal(lseek(r->fd, 0, SEEK_SET), 0);
	int64_t size;
	char *err = NULL;
	assert_true(ry_hash_fd(r->fd, got, &size, &err));
	assert_string_equal(got, d);
	assert_int_equal(size, (int64_t)big.len);
	ry_store_req_free(r);
	ry_store_free(s);
	ry_buf_release(&big);
	free(src);
}

static void never_called(struct ry_store_req *req, void *arg)
{
	(void)req;
	(void)arg;
	fail_msg("a cancelled request reported");
}

static void cancelled_requests_stay_quiet(void **state)
{
	(void)state;
	char d[RY_DIGEST_HEX];
	char *src = file_with("src", "x", d);
	struct ry_store *remote = ry_store_fake_new(base);
	struct ry_store *t = ry_store_tiered_new(local_at("cache"), remote);
	assert_int_equal(run(remote, RY_STORE_PUT, RY_STORE_CAS, d, src, NULL), RY_STORE_OK);
	char *dst = ry_asprintf("%s/out", dir);
	struct ry_store_req *a = ry_store_req_new(RY_STORE_GET, RY_STORE_CAS, d, dst);
	struct ry_store_req *b = ry_store_req_new(RY_STORE_HEAD, RY_STORE_CAS, d, NULL);
	ry_store_start(t, a, never_called, NULL);
	ry_store_start(remote, b, never_called, NULL);
	ry_store_cancel(a);
	ry_store_cancel(b);
	event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_loop(base, EVLOOP_NONBLOCK);
	ry_store_free(t);
	free(src);
	free(dst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(local_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(local_refuses_lies_and_bad_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(local_corruption_quarantined, setup, teardown),
		cmocka_unit_test_setup_teardown(concurrent_writers_both_succeed, setup, teardown),
		cmocka_unit_test_setup_teardown(tiered_fills_local_from_remote, setup, teardown),
		cmocka_unit_test_setup_teardown(tiered_remote_trouble_is_classified, setup, teardown),
		cmocka_unit_test_setup_teardown(reader_keeps_blob_through_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(cancelled_requests_stay_quiet, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
