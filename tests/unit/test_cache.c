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

#include "cache/cache.h"
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(key_is_canonical),
		cmocka_unit_test(every_component_counts),
		cmocka_unit_test(upstream_counts_by_output_not_key),
		cmocka_unit_test(explain_names_the_change),
		cmocka_unit_test(sizes_and_ages),
		cmocka_unit_test(settings_checked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
