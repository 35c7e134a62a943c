/*
 * pkg/cache: the key is a pure function of its components (order and
 * spelling of env do not matter, every component does), its encoding is
 * the documented one, upstreams count by output digest, a miss is
 * explained in words naming the component, settings are checked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <fcntl.h>

#include "cache/cache.h"
#include "exec/exec.h"
#include "store/store.h"

#define TREE1 "tree 3f2a1c0d9e8b7a6f5e4d3c2b1a09f8e7d6c5b4a3"
#define TREE2 "tree 9c1b07aa5e4d3c2b1a09f8e7d6c5b4a3f2a1c0d9"
#define OUT1 "1111111111111111111111111111111111111111111111111111111111111111"
#define OUT2 "2222222222222222222222222222222222222222222222222222222222222222"

static void base_key(struct ry_cache_key *k, const char *env_a, const char *env_b)
{
	struct ry_strlist env = { 0 }, outs = { 0 }, tc = { 0 };
	ry_strlist_add(&env, env_a);
	ry_strlist_add(&env, env_b);
	ry_strlist_add(&outs, "services/cart/bin");
	ry_strlist_add(&tc, "gcc-12");
	ry_cache_key_add_definition(k, "make -C services/cart", &env, "1", "build", &outs);
	ry_cache_key_add_platform(k, "linux", "amd64", &tc);
	ry_cache_key_add_input(k, "services/cart/", TREE1);
	ry_cache_key_add_upstream(k, "build:proto", OUT1);
	ry_strlist_release(&env);
	ry_strlist_release(&outs);
	ry_strlist_release(&tc);
}

static void key_is_canonical(void **state)
{
	(void)state;
	struct ry_cache_key a = { 0 }, b = { 0 };
	char ka[RY_DIGEST_HEX], kb[RY_DIGEST_HEX];
	base_key(&a, "GOFLAGS=-mod=vendor", "CGO_ENABLED=0");
	base_key(&b, "CGO_ENABLED=0", "GOFLAGS=-mod=vendor");	/* env order: irrelevant */
	ry_cache_key_compute(&a, ka);
	ry_cache_key_compute(&b, kb);
	assert_string_equal(ka, kb);
	assert_true(ry_hash_is_hex(ka));

	/* the encoding is the documented one: format, then name NUL value NUL sorted */
	struct ry_cache_key tiny = { 0 };
	ry_cache_key_set(&tiny, "z", "2");
	ry_cache_key_set(&tiny, "a", "1");
	size_t len;
	char *enc = ry_cache_key_encode(&tiny, &len);
	const char want[] = RY_CACHE_KEY_FORMAT "\0a\0" "1\0z\0" "2";
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(enc, want, len);
	char k1[RY_DIGEST_HEX], k2[RY_DIGEST_HEX];
	ry_cache_key_compute(&tiny, k1);
	ry_hash_hex(want, sizeof(want), k2);
	assert_string_equal(k1, k2);
	free(enc);
	ry_cache_key_release(&tiny);
	ry_cache_key_release(&a);
	ry_cache_key_release(&b);
}

static void every_component_counts(void **state)
{
	(void)state;
	static const struct {
		const char *name, *value;
	} changes[] = {
		{ "def.command", "make -C services/cart V=1" },
		{ "def.env.GOFLAGS", "-mod=mod" },
		{ "def.env.NEW", "x" },
		{ "def.version", "2" },
		{ "def.kind", "test" },
		{ "def.outputs", "services/cart/bin\nservices/cart/docs" },
		{ "platform.os", "darwin" },
		{ "platform.arch", "arm64" },
		{ "platform.toolchain", "gcc-13" },
		{ "input:services/cart/", TREE2 },
		{ "input:go.sum", "blob 1234" },
		{ "upstream:build:proto", "output " OUT2 },
		{ "upstream:build:lib", "no outputs" },
	};
	struct ry_cache_key k = { 0 };
	char base[RY_DIGEST_HEX], got[RY_DIGEST_HEX];
	base_key(&k, "GOFLAGS=-mod=vendor", "CGO_ENABLED=0");
	ry_cache_key_compute(&k, base);
	ry_cache_key_release(&k);
	for (size_t i = 0; i < RY_ARRAY_SIZE(changes); i++) {
		base_key(&k, "GOFLAGS=-mod=vendor", "CGO_ENABLED=0");
		ry_cache_key_set(&k, changes[i].name, changes[i].value);
		ry_cache_key_compute(&k, got);
		if (strcmp(got, base) == 0)
			fail_msg("changing %s did not change the key", changes[i].name);
		ry_cache_key_release(&k);
	}
}

static void upstream_counts_by_output_not_key(void **state)
{
	(void)state;
	/* an upstream rebuilt to the same bytes: same downstream key */
	struct ry_cache_key a = { 0 }, b = { 0 };
	char ka[RY_DIGEST_HEX], kb[RY_DIGEST_HEX];
	base_key(&a, "A=1", "B=2");
	base_key(&b, "A=1", "B=2");
	ry_cache_key_add_upstream(&b, "build:proto", OUT1);
	ry_cache_key_compute(&a, ka);
	ry_cache_key_compute(&b, kb);
	assert_string_equal(ka, kb);
	assert_string_equal(ry_cache_key_get(&a, "upstream:build:proto"), "output " OUT1);
	ry_cache_key_release(&a);
	ry_cache_key_release(&b);
}

static bool has_line(const struct ry_strlist *l, const char *want)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->items[i], want) == 0)
			return true;
	return false;
}

static void explain_names_the_change(void **state)
{
	(void)state;
	struct ry_cache_key before = { 0 }, now = { 0 }, back = { 0 };
	struct ry_strlist lines = { 0 };
	base_key(&before, "GOFLAGS=-mod=vendor", "CGO_ENABLED=0");
	base_key(&now, "GOFLAGS=-mod=mod", "CGO_ENABLED=0");
	ry_cache_key_add_input(&now, "services/cart/", TREE2);
	ry_cache_key_add_upstream(&now, "build:proto", OUT2);
	ry_cache_key_add_input(&now, "go.sum", "blob 0123456789abcdef0123");
	/* components travel through the database as JSON */
	char *json = ry_cache_key_to_json(&before), *err = NULL;
	assert_true(ry_cache_key_from_json(&back, json, &err));
	free(json);
	ry_cache_explain(&back, &now, &lines);
	for (size_t i = 0; i < lines.n; i++)
		printf("# %s\n", lines.items[i]);
	assert_true(has_line(&lines, "inputs services/cart/: tree 3f2a1c… → 9c1b07…"));
	assert_true(has_line(&lines, "inputs go.sum: newly declared (blob 012345…)"));
	assert_true(has_line(&lines, "upstream build:proto output changed (111111… → 222222…)"));
	assert_true(has_line(&lines, "env GOFLAGS changed: \"-mod=vendor\" → \"-mod=mod\""));
	assert_true(has_line(&lines, "command unchanged"));
	assert_true(has_line(&lines, "platform unchanged"));
	assert_false(has_line(&lines, "inputs unchanged"));
	ry_strlist_release(&lines);
	/* nothing changed: every group says so */
	ry_cache_explain(&now, &now, &lines);
	assert_true(has_line(&lines, "inputs unchanged"));
	assert_true(has_line(&lines, "upstreams unchanged"));
	ry_strlist_release(&lines);
	assert_false(ry_cache_key_from_json(&back, "[1]", &err));
	free(err);
	assert_false(ry_cache_key_from_json(&back, "{\"a\": 1}", &err));
	assert_non_null(strstr(err, "component a"));
	free(err);
	ry_cache_key_release(&before);
	ry_cache_key_release(&now);
	ry_cache_key_release(&back);
}

static void sizes_and_ages(void **state)
{
	(void)state;
	int64_t v;
	assert_true(ry_cache_parse_size("10G", &v));
	assert_int_equal(v, 10LL << 30);
	assert_true(ry_cache_parse_size("1.5MB", &v));
	assert_int_equal(v, 3LL << 19);
	assert_true(ry_cache_parse_size("123", &v));
	assert_int_equal(v, 123);
	assert_false(ry_cache_parse_size("10X", &v));
	assert_false(ry_cache_parse_size("-1G", &v));
	assert_false(ry_cache_parse_size("", &v));
	assert_true(ry_cache_parse_age("7d", &v));
	assert_int_equal(v, 7 * 86400);
	assert_true(ry_cache_parse_age("90s", &v));
	assert_int_equal(v, 90);
	assert_false(ry_cache_parse_age("7", &v));	/* a unit is required */
	assert_false(ry_cache_parse_age("soon", &v));
	char buf[32];
	ry_cache_format_size(buf, sizeof(buf), 1536);
	assert_string_equal(buf, "1.5 KB");
}

static void settings_checked(void **state)
{
	(void)state;
	struct ry_cache_config c;
	char *err = NULL;
	ry_cache_config_init(&c);
	assert_true(ry_cache_config_set(&c, "cache_remote_url", "http://127.0.0.1:1/c", "t", &err));
	assert_true(ry_cache_config_set(&c, "cache_toolchain", "gcc-12, go-1.21", "t", &err));
	assert_int_equal(c.toolchain.n, 2);
	assert_false(ry_cache_config_set(&c, "cache_flaky", "sometimes", "w.conf:3", &err));
	assert_non_null(strstr(err, "w.conf:3: cache_flaky must be keep-first or no-cache"));
	free(err);
	assert_false(ry_cache_config_set(&c, "cache_timeout_s", "0", "w.conf:4", &err));
	free(err);
	assert_int_equal(c.lookahead, 32);
	assert_true(ry_cache_config_set(&c, "cache_lookahead", "0", "t", &err));
	assert_int_equal(c.lookahead, 0);
	assert_false(ry_cache_config_set(&c, "cache_lookahead", "-1", "w.conf:6", &err));
	assert_non_null(strstr(err, "w.conf:6"));
	free(err);
	assert_false(ry_cache_config_set(&c, "cache_bogus", "1", "w.conf:5", &err));
	assert_non_null(strstr(err, "unknown setting"));
	free(err);
	assert_true(ry_cache_config_owns("cache_dir"));
	assert_false(ry_cache_config_owns("slots"));

	/* a worker config: the cache reads its own lines, leaves the rest */
	char path[] = "/tmp/ry-test-cache-conf-XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	fprintf(f, "name = w1\nslots = 4\n# comment\ncache_dir = /var/cache/ry\n"
		   "cache_remote_username = ci\ncache_remote_password_file = %s.pw\n", path);
	fclose(f);
	assert_true(ry_cache_config_load_file(&c, path, &err));
	assert_string_equal(c.dir, "/var/cache/ry");
	/* a password file anyone can read is refused, naming it */
	char *pw = ry_asprintf("%s.pw", path);
	f = fopen(pw, "w");
	fputs("secret\n", f);
	fclose(f);
	chmod(pw, 0644);
	char *dir = ry_asprintf("%s.store", path);
	free(c.dir);
	c.dir = ry_strdup(dir);
	assert_null(ry_cache_config_open_store(&c, NULL, "/nonexistent", &err));
	assert_non_null(strstr(err, "readable by everyone"));
	free(err);
	chmod(pw, 0600);
	struct ry_store *s = ry_cache_config_open_store(&c, NULL, "/nonexistent", &err);
	assert_non_null(s);
	ry_store_free(s);
	char *rm = ry_asprintf("rm -rf %s %s %s", path, pw, dir);
	assert_int_equal(system(rm), 0);
	free(rm);
	free(pw);
	free(dir);
	ry_cache_config_release(&c);
}

/* ---- artifacts on an event loop ---------------------------------------------- */

struct run {
	struct event_base *base;
	struct ry_cache_ctx *ctx;
	struct ry_store *remote;
	char dir[64];
	int done;
	enum ry_cache_status status;
	char digest[RY_DIGEST_HEX];
	int64_t size;
	char *error, *warning, *quarantined;
	int ticks_before_done;
	int ticks;
};

static void on_done(void *arg, const struct ry_cache_result *res)
{
	struct run *r = arg;
	r->done++;
	r->status = res->status;
	memcpy(r->digest, res->digest, RY_DIGEST_HEX);
	r->size = res->size;
	free(r->error);
	free(r->warning);
	free(r->quarantined);
	r->error = res->error ? ry_strdup(res->error) : NULL;
	r->warning = res->warning ? ry_strdup(res->warning) : NULL;
	r->quarantined = res->quarantined ? ry_strdup(res->quarantined) : NULL;
	r->ticks_before_done = r->ticks;
}

static void wait_done(struct run *r)
{
	int want = r->done + 1;
	while (r->done < want)
		event_base_loop(r->base, EVLOOP_ONCE);
}

static int art_setup(void **state)
{
	struct run *r = ry_calloc(1, sizeof(*r));
	char *err = NULL;
	snprintf(r->dir, sizeof(r->dir), "/tmp/ry-test-artifacts-XXXXXX");
	if (!mkdtemp(r->dir))
		return -1;
	r->base = event_base_new();
	char *cache = ry_asprintf("%s/cache", r->dir);
	struct ry_store *local = ry_store_local_new(r->base, cache, &err);
	free(cache);
	r->remote = ry_store_fake_new(r->base);
	r->ctx = ry_cache_ctx_new_with_store(r->base, ry_store_tiered_new(local, r->remote), 2, &err);
	*state = r;
	return r->ctx ? 0 : -1;
}

static int art_teardown(void **state)
{
	struct run *r = *state;
	ry_cache_ctx_free(r->ctx);
	event_base_free(r->base);
	ry_exec_remove_tree(r->dir);
	free(r->error);
	free(r->warning);
	free(r->quarantined);
	free(r);
	return 0;
}

static void write_file(const char *path, const char *content)
{
	char *parent = ry_strdup(path), *err = NULL;
	*strrchr(parent, '/') = '\0';
	assert_true(ry_exec_mkdirs(parent, &err));
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
	free(parent);
}

static char *tree(struct run *r, const char *name)
{
	char *t = ry_asprintf("%s/%s", r->dir, name), *err = NULL;
	assert_true(ry_exec_mkdirs(t, &err));
	return t;
}

static void never(void *arg, const struct ry_cache_result *res)
{
	(void)arg;
	(void)res;
	fail_msg("a cancelled or abandoned operation called back");
}

/* Writes content to tree/file, then saves output of tree; waits for it. */
static void save_one(struct run *r, const char *t, const char *file, const char *content,
		     const char *output)
{
	char *f = ry_asprintf("%s/%s", t, file);
	struct ry_strlist outs = { 0 };
	write_file(f, content);
	ry_strlist_add(&outs, output);
	ry_cache_save(r->ctx, t, &outs, on_done, r);
	wait_done(r);
	ry_strlist_release(&outs);
	free(f);
}

static void save_then_restore_elsewhere(void **state)
{
	struct run *r = *state;
	char *a = tree(r, "a"), *b = tree(r, "b");
	save_one(r, a, "dist/app.txt", "built\n", "dist");
	assert_int_equal(r->status, RY_CACHE_OK);
	assert_null(r->warning);
	assert_int_equal(ry_store_fake_count(r->remote), 1);	/* uploaded */
	char digest[RY_DIGEST_HEX];
	memcpy(digest, r->digest, sizeof(digest));
	ry_cache_restore(r->ctx, digest, b, on_done, r);
	wait_done(r);
	assert_int_equal(r->status, RY_CACHE_OK);
	char *g = ry_asprintf("%s/dist/app.txt", b);
	FILE *in = fopen(g, "r");
	char buf[32] = "";
	assert_non_null(in);
	assert_non_null(fgets(buf, sizeof(buf), in));
	fclose(in);
	assert_string_equal(buf, "built\n");
	/* a digest nobody has */
	ry_cache_restore(r->ctx, "4444444444444444444444444444444444444444444444444444444444444444", b,
			 on_done, r);
	wait_done(r);
	assert_int_equal(r->status, RY_CACHE_MISS);
	/* an output that is not there */
	save_one(r, a, "dist/app.txt", "built\n", "missing/out");
	assert_int_equal(r->status, RY_CACHE_FAILED);
	assert_non_null(strstr(r->error, "output missing/out does not exist"));
	free(a);
	free(b);
	free(g);
}

/* Flips a byte of digest's blob in the local store; returns its path. */
static char *flip_local_byte(struct run *r, const char *digest)
{
	struct ry_store *local = ry_store_tiered_local(ry_cache_ctx_store(r->ctx));
	char *blob = ry_store_local_path(local, RY_STORE_CAS, digest);
	chmod(blob, 0644);
	int fd = open(blob, O_RDWR);
	unsigned char c;
	assert_int_equal(pread(fd, &c, 1, 20), 1);
	c ^= 0x10;
	assert_int_equal(pwrite(fd, &c, 1, 20), 1);
	close(fd);
	return blob;
}

static void corrupt_local_copy_quarantined(void **state)
{
	struct run *r = *state;
	char *a = tree(r, "a"), *b = tree(r, "b");
	save_one(r, a, "out/x", "some output that is long enough to flip a byte in the middle\n", "out");
	char digest[RY_DIGEST_HEX];
	memcpy(digest, r->digest, sizeof(digest));
	char *blob = flip_local_byte(r, digest);
	ry_cache_restore(r->ctx, digest, b, on_done, r);
	wait_done(r);
	assert_int_equal(r->status, RY_CACHE_CORRUPT);
	assert_non_null(r->quarantined);
	assert_non_null(strstr(r->quarantined, "quarantine/"));
	assert_int_equal(access(blob, F_OK), -1);
	char *x = ry_asprintf("%s/out", b);
	assert_int_equal(access(x, F_OK), -1);	/* the tree is untouched */
	/* the next restore misses locally and fetches the good remote copy */
	ry_cache_restore(r->ctx, digest, b, on_done, r);
	wait_done(r);
	assert_int_equal(r->status, RY_CACHE_OK);
	assert_int_equal(access(x, F_OK), 0);
	free(blob);
	free(a);
	free(b);
	free(x);
}

/* A hit's check: nothing unpacked; a flipped byte is CORRUPT and
 * quarantined; then the good remote copy verifies; unknown: a miss. */
static void verify_checks_without_unpacking(void **state)
{
	struct run *r = *state;
	char *a = tree(r, "a");
	save_one(r, a, "out/x", "an output long enough to flip a byte somewhere in its middle\n", "out");
	assert_int_equal(r->status, RY_CACHE_OK);
	char digest[RY_DIGEST_HEX];
	memcpy(digest, r->digest, sizeof(digest));
	int64_t size = r->size;
	char *x = ry_asprintf("%s/out/x", a);
	assert_int_equal(unlink(x), 0);
	ry_cache_verify(r->ctx, digest, on_done, r);
	wait_done(r);
	assert_int_equal(r->status, RY_CACHE_OK);
	assert_int_equal(r->size, size);
	assert_int_equal(access(x, F_OK), -1);	/* nothing unpacked anywhere */

	char *blob = flip_local_byte(r, digest);
	ry_cache_verify(r->ctx, digest, on_done, r);
	wait_done(r);
	assert_int_equal(r->status, RY_CACHE_CORRUPT);
	assert_non_null(strstr(r->error, "does not match its digest"));
	assert_non_null(strstr(r->quarantined, "quarantine/"));
	assert_int_equal(access(blob, F_OK), -1);
	ry_cache_verify(r->ctx, digest, on_done, r);	/* fetched again from the remote */
	wait_done(r);
	assert_int_equal(r->status, RY_CACHE_OK);
	ry_cache_verify(r->ctx, "6666666666666666666666666666666666666666666666666666666666666666",
			on_done, r);
	wait_done(r);
	assert_int_equal(r->status, RY_CACHE_MISS);
	free(blob);
	free(x);
	free(a);
}

static void store_down_means_uncached(void **state)
{
	struct run *r = *state;
	char *a = tree(r, "a");
	ry_store_fake_fail(r->remote, RY_STORE_HEAD, RY_STORE_UNAVAILABLE);
	save_one(r, a, "o", "o", "o");
	assert_int_equal(r->status, RY_CACHE_OK);	/* this host has it */
	assert_non_null(r->warning);
	ry_store_fake_fail(r->remote, RY_STORE_GET, RY_STORE_UNAVAILABLE);
	ry_cache_restore(r->ctx, "5555555555555555555555555555555555555555555555555555555555555555", a,
			 on_done, r);
	wait_done(r);
	assert_int_equal(r->status, RY_CACHE_UNAVAILABLE);
	assert_non_null(strstr(r->error, "injected"));
	free(a);
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	((struct run *)arg)->ticks++;
}

static void loop_stays_free_while_archiving(void **state)
{
	struct run *r = *state;
	char *a = tree(r, "a");
	/* 24 MB of output: archiving takes a while, on a thread */
	struct ry_buf chunk = RY_BUF_INIT;
	for (int i = 0; i < 65536; i++)
		ry_buf_printf(&chunk, "%08x", (unsigned)(i * 2654435761u));
	for (int k = 0; k < 48; k++) {
		char *p = ry_asprintf("%s/big/part%02d", a, k);
		write_file(p, chunk.data);
		free(p);
	}
	struct event *t = event_new(r->base, -1, EV_PERSIST, tick, r);
	struct timeval ms = { 0, 1000 };
	event_add(t, &ms);
	struct ry_strlist outs = { 0 };
	ry_strlist_add(&outs, "big");
	ry_cache_save(r->ctx, a, &outs, on_done, r);
	wait_done(r);
	event_free(t);
	assert_int_equal(r->status, RY_CACHE_OK);
	/* timers kept firing while the thread compressed */
	assert_true(r->ticks_before_done > 0);
	ry_strlist_release(&outs);
	ry_buf_release(&chunk);
	free(a);
}


static void freeing_with_operations_pending(void **state)
{
	struct run *r = *state;
	char *a = tree(r, "a");
	save_one(r, a, "o", "o", "o");
	char digest[RY_DIGEST_HEX];
	memcpy(digest, r->digest, sizeof(digest));
	struct ry_strlist outs = { 0 };
	ry_strlist_add(&outs, "o");
	/* one waiting on a store reply, one on a thread: no callback, no leak */
	ry_cache_restore(r->ctx, digest, a, never, NULL);
	ry_cache_save(r->ctx, a, &outs, never, NULL);
	ry_cache_ctx_free(r->ctx);
	r->ctx = NULL;
	ry_strlist_release(&outs);
	free(a);
}

static void cancelled_operations_stay_quiet(void **state)
{
	struct run *r = *state;
	char *a = tree(r, "a");
	char *f = ry_asprintf("%s/o", a);
	write_file(f, "o");
	struct ry_strlist outs = { 0 };
	ry_strlist_add(&outs, "o");
	ry_cache_op_cancel(ry_cache_save(r->ctx, a, &outs, never, NULL));
	ry_cache_op_cancel(ry_cache_restore(r->ctx,
		"6666666666666666666666666666666666666666666666666666666666666666", a, never, NULL));
	for (int i = 0; i < 50; i++)
		event_base_loop(r->base, EVLOOP_NONBLOCK);
	ry_strlist_release(&outs);
	free(a);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(key_is_canonical),
		cmocka_unit_test(every_component_counts),
		cmocka_unit_test(upstream_counts_by_output_not_key),
		cmocka_unit_test(explain_names_the_change),
		cmocka_unit_test(sizes_and_ages),
		cmocka_unit_test(settings_checked),
		cmocka_unit_test_setup_teardown(save_then_restore_elsewhere, art_setup, art_teardown),
		cmocka_unit_test_setup_teardown(corrupt_local_copy_quarantined, art_setup, art_teardown),
		cmocka_unit_test_setup_teardown(verify_checks_without_unpacking, art_setup, art_teardown),
		cmocka_unit_test_setup_teardown(store_down_means_uncached, art_setup, art_teardown),
		cmocka_unit_test_setup_teardown(loop_stays_free_while_archiving, art_setup, art_teardown),
		cmocka_unit_test_setup_teardown(cancelled_operations_stay_quiet, art_setup, art_teardown),
		cmocka_unit_test_setup_teardown(freeing_with_operations_pending, art_setup, art_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
