/*
 * pkg/hash: SHA-256 as the rest of the world computes it (FIPS 180-2
 * vectors), the same whether fed at once or in pieces, from memory or a file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hash/hash.h"

static void known_vectors(void **state)
{
	(void)state;
	char out[RY_DIGEST_HEX];
	ry_hash_hex("", 0, out);
	assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	ry_hash_hex("abc", 3, out);
	assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void streaming_equals_one_shot(void **state)
{
	(void)state;
	char big[100000], a[RY_DIGEST_HEX], b[RY_DIGEST_HEX];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 31 + 7);
	ry_hash_hex(big, sizeof(big), a);
	struct ry_hash *h = ry_hash_new();
	for (size_t off = 0; off < sizeof(big); off += 777)
		ry_hash_update(h, big + off, off + 777 <= sizeof(big) ? 777 : sizeof(big) - off);
	ry_hash_final_hex(h, b);
	assert_string_equal(a, b);
	/* the context is reset by final: reusable */
	ry_hash_update(h, "abc", 3);
	ry_hash_final_hex(h, b);
	assert_string_equal(b, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	ry_hash_free(h);
}

static void file_digest_and_errors(void **state)
{
	(void)state;
	char path[] = "/tmp/ry-test-hash-XXXXXX", out[RY_DIGEST_HEX];
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "abc", 3), 3);
	close(fd);
	int64_t size = 0;
	char *err = NULL;
	assert_true(ry_hash_file(path, out, &size, &err));
	assert_int_equal(size, 3);
	assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	unlink(path);
	assert_false(ry_hash_file(path, out, &size, &err));
	assert_non_null(strstr(err, path));
	free(err);
}

static void hex_keys(void **state)
{
	(void)state;
	assert_true(ry_hash_is_hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
	assert_false(ry_hash_is_hex("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
	assert_false(ry_hash_is_hex("e3b0"));
	assert_false(ry_hash_is_hex("../../etc/passwd"));
	assert_false(ry_hash_is_hex(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(known_vectors),
		cmocka_unit_test(streaming_equals_one_shot),
		cmocka_unit_test(file_digest_and_errors),
		cmocka_unit_test(hex_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
