/*
 * Unit tests for pkg/webhook's pure parts: the retry backoff grows
 * exponentially with equal jitter and a cap; the signature is the
 * HMAC-SHA256 of the body (RFC 4231 test case 2 and a GitHub-style value).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "webhook/webhook.h"

static void backoff_grows_with_jitter_and_a_cap(void **state)
{
	(void)state;
	/* rnd 0 gives the low end (d/2), a huge rnd stays within [d/2, d]. */
	assert_int_equal(ry_webhook_backoff_ms(1, 0), 500);
	assert_int_equal(ry_webhook_backoff_ms(2, 0), 1000);
	assert_int_equal(ry_webhook_backoff_ms(3, 0), 2000);
	assert_int_equal(ry_webhook_backoff_ms(1, 500), 1000);
	for (int a = 1; a < 40; a++) {
		for (uint64_t r = 0; r < 5; r++) {
			int64_t ms = ry_webhook_backoff_ms(a, r * 0x9e3779b97f4a7c15ULL);
			int64_t d = RY_WEBHOOK_BACKOFF_BASE_MS;
			for (int i = 1; i < a && d < RY_WEBHOOK_BACKOFF_CAP_MS; i++)
				d *= 2;
			if (d > RY_WEBHOOK_BACKOFF_CAP_MS)
				d = RY_WEBHOOK_BACKOFF_CAP_MS;
			assert_true(ms >= d / 2 && ms <= d);
		}
	}
	assert_true(ry_webhook_backoff_ms(100, UINT64_MAX) <= RY_WEBHOOK_BACKOFF_CAP_MS);
}

static void signature_is_hmac_sha256(void **state)
{
	(void)state;
	/* RFC 4231, test case 2. */
	char *s = ry_webhook_signature("Jefe", 4, "what do ya want for nothing?");
	assert_string_equal(s, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	free(s);
	/* Binary-safe key length: the NUL is part of the key. */
	char *a = ry_webhook_signature("k\0x", 3, "{}");
	char *b = ry_webhook_signature("k", 1, "{}");
	assert_string_not_equal(a, b);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(backoff_grows_with_jitter_and_a_cap),
		cmocka_unit_test(signature_is_hmac_sha256),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
