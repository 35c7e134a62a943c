/*
 * webhook: delivering outbox rows (sql/85_outbox.sql) over HTTP.
 *
 * The pure parts — the backoff and the signature — are functions of their
 * arguments, unit-tested in tests/unit/test_webhook.c.  The sender POSTs
 * deliveries concurrently with libcurl's multi interface on the caller's
 * libevent loop (curl tells which sockets to watch and when to wake it);
 * nothing blocks.  It knows nothing of the database: pkg/worker/webhooks.c
 * claims rows, hands them here, and reports what became of them.
 */
#ifndef RY_WEBHOOK_H
#define RY_WEBHOOK_H

#include "core/core.h"

struct event_base;
struct ry_webhook_sender;

#define RY_WEBHOOK_BACKOFF_BASE_MS 1000
#define RY_WEBHOOK_BACKOFF_CAP_MS (10 * 60 * 1000)

/*
 * The pause before attempt attempts+1 after attempts failures (1 or more):
 * base * 2^(attempts-1), capped, then "equal jitter": a uniform draw in
 * [d/2, d] from rnd, so senders that failed together do not retry in step
 * and the pause still grows.
 */
int64_t ry_webhook_backoff_ms(int attempts, uint64_t rnd);

/* "sha256=" + hex HMAC-SHA256 of body keyed with secret; the caller frees. */
char *ry_webhook_signature(const void *secret, size_t secret_len, const char *body);

/* One delivery: an outbox row. */
struct ry_webhook_delivery {
	int64_t id;			/* outbox row */
	const char *url;
	const char *body;		/* JSON */
	const char *event;		/* X-Railyard-Event */
	const char *idempotency_key;	/* Idempotency-Key, X-Railyard-Delivery */
	const char *secret;		/* HMAC key; NULL: unsigned */
	size_t secret_len;
	const char *auth_header;	/* e.g. "Authorization"; NULL: none */
	const char *auth_value;
	long timeout_ms;		/* the whole attempt, connect included */
};

/* What became of one attempt: ok when the endpoint answered 2xx. */
struct ry_webhook_result {
	int64_t id;
	bool ok;
	long status;			/* HTTP status, 0 when none came */
	const char *error;		/* when !ok: "HTTP 503", "connection refused ..." */
};

typedef void (*ry_webhook_done_fn)(void *arg, const struct ry_webhook_result *r);

/* NULL with *err when libcurl cannot be set up. */
struct ry_webhook_sender *ry_webhook_sender_new(struct event_base *base, ry_webhook_done_fn done,
						void *arg, char **err);
/* Starts one POST (d is copied); done is called once for it, from the loop. */
void ry_webhook_sender_post(struct ry_webhook_sender *s, const struct ry_webhook_delivery *d);
/* POSTs in flight. */
size_t ry_webhook_sender_busy(const struct ry_webhook_sender *s);
/* Abandons what is in flight (done is not called) and frees s. */
void ry_webhook_sender_free(struct ry_webhook_sender *s);

#endif
