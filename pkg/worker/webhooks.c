/*
 * webhooks: the worker's side of the outbox (sql/85_outbox.sql), with
 * webhooks = on.  A connection of its own (so the sender never delays a
 * claim or a heartbeat) asks railyard.webhook_claim() every second; only
 * the farm's elected sender gets rows.  They are POSTed concurrently
 * (pkg/webhook, libcurl on this loop), and once every answer is in, one
 * webhook_report() records them: delivered, retried after a backoff with
 * jitter, or dead.  A report that cannot be sent is kept and sent again;
 * a row whose report never arrives is sent again when its hold expires:
 * at least once, the idempotency key lets the receiver drop repeats.
 */
#include "worker/internal.h"

#include "db/adb.h"
#include "db/pgarray.h"
#include "webhook/webhook.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#define POLL_MS 1000		/* between claims when nothing was due */
#define CLAIM_LIMIT 64		/* queues served per round */
#define LEASE_S 60		/* the sender role, renewed by every claim */
#define SECRET_MAX 4096

struct result {
	int64_t id;
	bool ok;
	long status;
	char *error;
	int64_t retry_ms;
};

struct ry_worker_webhooks {
	struct ry_worker *w;
	struct ry_adb *db;
	struct ry_webhook_sender *sender;
	struct event *tick;
	bool in_flight;			/* a claim or report job */
	bool again;			/* the last round was full: claim at once */
	struct result *results;		/* answered, not reported yet */
	size_t n, cap;
	struct {
		int64_t id;
		int attempts, max_attempts;
	} *sent;			/* this round's rows */
	size_t nsent;
};

static void arm(struct ry_worker_webhooks *h, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	evtimer_add(h->tick, &tv);
}

static void reported(void *arg, const struct ry_adb_reply *r)
{
	struct ry_worker_webhooks *h = arg;
	h->in_flight = false;
	if (!r->ok) {
		ry_warn("cannot record webhook deliveries, keeping %zu to record again: %s", h->n,
			r->error);
		arm(h, POLL_MS);
		return;
	}
	for (size_t i = 0; i < h->n; i++)
		free(h->results[i].error);
	h->n = 0;
	arm(h, h->again ? 0 : POLL_MS);
}

static void report(struct ry_worker_webhooks *h)
{
	struct ry_pgarray ids = { 0 }, oks = { 0 }, st = { 0 }, errs = { 0 }, retry = { 0 };
	for (size_t i = 0; i < h->n; i++) {
		struct result *x = &h->results[i];
		ry_pgarray_add_int(&ids, x->id);
		ry_pgarray_add_str(&oks, x->ok ? "t" : "f");
		if (x->status)
			ry_pgarray_add_int(&st, x->status);
		else
			ry_pgarray_add_null(&st);
		ry_pgarray_add_str(&errs, x->error);
		ry_pgarray_add_int(&retry, x->retry_ms);
	}
	char *agent = ry_asprintf("%lld", (long long)h->w->agent_id);
	char *a = ry_pgarray_finish(&ids), *b = ry_pgarray_finish(&oks), *c = ry_pgarray_finish(&st),
	     *d = ry_pgarray_finish(&errs), *e = ry_pgarray_finish(&retry);
	const char *p[] = { agent, a, b, c, d, e };
	struct ry_adb_job *job = ry_adb_job_new(reported, h);
	ry_adb_job_add(job, "SELECT railyard.webhook_report($1, $2, $3, $4, $5, $6)", 6, p);
	h->in_flight = true;
	ry_adb_submit(h->db, job, RY_ADB_LAST);
	free(agent);
	free(a);
	free(b);
	free(c);
	free(d);
	free(e);
}

static void add_result(struct ry_worker_webhooks *h, int64_t id, bool ok, long status,
		       const char *error)
{
	int attempts = 0, max_attempts = 1;
	for (size_t i = 0; i < h->nsent; i++) {
		if (h->sent[i].id == id) {
			attempts = h->sent[i].attempts;
			max_attempts = h->sent[i].max_attempts;
		}
	}
	if (h->n == h->cap) {
		h->cap = h->cap ? 2 * h->cap : 16;
		h->results = ry_realloc(h->results, h->cap * sizeof(*h->results));
	}
	h->results[h->n++] = (struct result){
		.id = id, .ok = ok, .status = status, .error = error ? ry_strdup(error) : NULL,
		.retry_ms = ok ? 0 : ry_webhook_backoff_ms(attempts + 1, (uint64_t)random()),
	};
	struct ry_metrics *m = &h->w->metrics;
	if (ok) {
		m->webhooks_sent++;
	} else {
		m->webhooks_failed++;
		if (attempts + 1 >= max_attempts) {
			m->webhooks_dead++;
			ry_warn("webhook delivery %lld is a dead letter after %d attempts: %s",
				(long long)id, attempts + 1, error);
		}
	}
}

static void posted(void *arg, const struct ry_webhook_result *r)
{
	struct ry_worker_webhooks *h = arg;
	if (!r->ok)
		ry_info("webhook delivery %lld failed, will retry: %s", (long long)r->id, r->error);
	add_result(h, r->id, r->ok, r->status, r->error);
	if (!ry_webhook_sender_busy(h->sender))
		report(h);
}

/* A file under webhook_secrets_dir, whole; NULL with *err. */
static char *read_secret(struct ry_worker_webhooks *h, const char *name, size_t *len, char **err)
{
	const char *dir = h->w->cfg.webhook_secrets_dir;
	if (!dir) {
		*err = ry_asprintf("cannot read secret file %s: webhook_secrets_dir is not set", name);
		return NULL;
	}
	char *path = ry_asprintf("%s/%s", dir, name);
	struct ry_buf b = RY_BUF_INIT;
	char *e = NULL;
	if (!ry_read_file(path, SECRET_MAX, &b, &e)) {
		*err = ry_asprintf("webhook secret: %s", e);
		free(e);
		ry_buf_release(&b);
		free(path);
		return NULL;
	}
	free(path);
	/* A trailing newline (echo > file) is not part of the secret. */
	while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
		b.data[--b.len] = '\0';
	*len = b.len;
	return ry_buf_detach(&b);
}

enum { K_ID, K_URL, K_SECRET, K_AUTH_H, K_AUTH_F, K_TIMEOUT, K_BODY, K_KEY, K_EVENT, K_ATT,
       K_MAX, K_N };
static const char *const claim_cols[K_N] = {
	"id", "url", "secret_file", "auth_header", "auth_file", "timeout_ms", "body",
	"idempotency_key", "event", "attempts", "max_attempts",
};

static void claimed(void *arg, const struct ry_adb_reply *r)
{
	struct ry_worker_webhooks *h = arg;
	int c[K_N];
	const char *missing = NULL;
	h->in_flight = false;
	if (!r->ok || !ry_res_columns(r->results[0], claim_cols, K_N, c, &missing)) {
		if (!r->conn_lost)
			ry_warn("cannot claim webhook deliveries: %s",
				r->ok ? "the reply lacks a column" : r->error);
		arm(h, POLL_MS);
		return;
	}
	const struct ry_res *res = r->results[0];
	int rows = ry_res_rows(res);
	h->again = rows >= CLAIM_LIMIT;
	h->nsent = 0;
	h->sent = ry_realloc(h->sent, ((size_t)rows + 1) * sizeof(*h->sent));
	for (int i = 0; i < rows; i++) {
		int64_t id = ry_res_get_long(res, i, c[K_ID]);
		h->sent[h->nsent].id = id;
		h->sent[h->nsent].attempts = (int)ry_res_get_long(res, i, c[K_ATT]);
		h->sent[h->nsent++].max_attempts = (int)ry_res_get_long(res, i, c[K_MAX]);
		struct ry_webhook_delivery d = {
			.id = id,
			.url = ry_res_get(res, i, c[K_URL]),
			.body = ry_res_get(res, i, c[K_BODY]),
			.event = ry_res_get(res, i, c[K_EVENT]),
			.idempotency_key = ry_res_get(res, i, c[K_KEY]),
			.timeout_ms = ry_res_get_long(res, i, c[K_TIMEOUT]),
		};
		char *secret = NULL, *auth = NULL, *err = NULL;
		size_t len = 0, alen = 0;
		if (!ry_res_isnull(res, i, c[K_SECRET]) &&
		    !(secret = read_secret(h, ry_res_get(res, i, c[K_SECRET]), &len, &err))) {
			add_result(h, id, false, 0, err);
		} else if (!ry_res_isnull(res, i, c[K_AUTH_F]) &&
			   !(auth = read_secret(h, ry_res_get(res, i, c[K_AUTH_F]), &alen, &err))) {
			add_result(h, id, false, 0, err);
		} else {
			d.secret = secret;
			d.secret_len = len;
			d.auth_header = auth ? ry_res_get(res, i, c[K_AUTH_H]) : NULL;
			d.auth_value = auth;
			ry_webhook_sender_post(h->sender, &d);
		}
		free(err);
		free(secret);
		free(auth);
	}
	if (!ry_webhook_sender_busy(h->sender) && h->n)
		report(h);
	else if (!rows)
		arm(h, POLL_MS);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ry_worker_webhooks *h = arg;
	(void)fd;
	(void)what;
	if (h->in_flight || ry_webhook_sender_busy(h->sender))
		return;		/* the answer re-arms */
	if (!h->w->agent_id || !ry_adb_idle(h->db)) {
		arm(h, POLL_MS);
		return;
	}
	if (h->n) {
		report(h);
		return;
	}
	char *agent = ry_asprintf("%lld", (long long)h->w->agent_id);
	char lease[16], limit[16];
	snprintf(lease, sizeof(lease), "%d", LEASE_S);
	snprintf(limit, sizeof(limit), "%d", CLAIM_LIMIT);
	const char *p[] = { agent, lease, limit };
	struct ry_adb_job *job = ry_adb_job_new(claimed, h);
	ry_adb_job_add(job, "SELECT * FROM railyard.webhook_claim($1, $2, $3)", 3, p);
	h->in_flight = true;
	ry_adb_submit(h->db, job, RY_ADB_LAST);
	free(agent);
}

static void connected(void *arg)
{
	struct ry_worker_webhooks *h = arg;
	if (!h->in_flight && !ry_webhook_sender_busy(h->sender))
		arm(h, 0);
}

static void disconnected(void *arg, const char *why)
{
	(void)arg;
	ry_debug("webhook sender lost its database connection (%s)", why);
}

void ry_worker_webhooks_start(struct ry_worker *w)
{
	if (!w->cfg.webhooks)
		return;
	char *err = NULL;
	struct ry_worker_webhooks *h = ry_calloc(1, sizeof(*h));
	h->w = w;
	h->sender = ry_webhook_sender_new(w->base, posted, h, &err);
	if (!h->sender) {
		ry_error("cannot send webhooks: %s", err);
		free(err);
		free(h);
		return;
	}
	struct ry_adb_callbacks cbs = { connected, disconnected, NULL };
	char *actor = ry_asprintf("%s:webhooks", w->actor);
	h->db = ry_adb_new(w->base, w->conninfo, actor, &cbs, h);
	free(actor);
	h->tick = evtimer_new(w->base, tick_cb, h);
	ry_adb_start(h->db);
	w->webhooks = h;
	ry_info("webhooks = on: this worker sends the farm's webhooks while it holds the sender lease");
}

void ry_worker_webhooks_stop(struct ry_worker *w)
{
	struct ry_worker_webhooks *h = w->webhooks;
	if (!h)
		return;
	/* What was in flight stays pending in the outbox: the next sender sends it. */
	ry_webhook_sender_free(h->sender);
	ry_adb_free(h->db);
	event_free(h->tick);
	for (size_t i = 0; i < h->n; i++)
		free(h->results[i].error);
	free(h->results);
	free(h->sent);
	free(h);
	w->webhooks = NULL;
}
