#include "webhook/webhook.h"

#include "curlev/curlev.h"
#include "hash/hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESPONSE_MAX 4096	/* of an error response, kept for the message */

int64_t ry_webhook_backoff_ms(int attempts, uint64_t rnd)
{
	int64_t d = RY_WEBHOOK_BACKOFF_BASE_MS;
	for (int i = 1; i < attempts && d < RY_WEBHOOK_BACKOFF_CAP_MS; i++)
		d *= 2;
	if (d > RY_WEBHOOK_BACKOFF_CAP_MS)
		d = RY_WEBHOOK_BACKOFF_CAP_MS;
	int64_t half = d / 2;
	return half + (int64_t)(rnd % (uint64_t)(d - half + 1));
}

char *ry_webhook_signature(const void *secret, size_t secret_len, const char *body)
{
	char hex[RY_DIGEST_HEX];
	ry_hash_hmac_hex(secret, secret_len, body, strlen(body), hex);
	return ry_asprintf("sha256=%s", hex);
}

/* ---- the sender ------------------------------------------------------------ */

struct post {
	struct ry_webhook_sender *s;
	CURL *easy;
	int64_t id;
	char *body;
	struct curl_slist *headers;
	struct ry_buf response;
	char errbuf[CURL_ERROR_SIZE];
	struct post *prev, *next;
};

struct ry_webhook_sender {
	struct ry_curlev *curl;
	CURLM *multi;		/* ry_curlev_multi(curl) */
	ry_webhook_done_fn done;
	void *arg;
	struct post *posts;
	size_t busy;
};

static void post_free(struct post *p)
{
	struct ry_webhook_sender *s = p->s;
	if (p->prev)
		p->prev->next = p->next;
	else
		s->posts = p->next;
	if (p->next)
		p->next->prev = p->prev;
	s->busy--;
	curl_multi_remove_handle(s->multi, p->easy);
	curl_easy_cleanup(p->easy);
	curl_slist_free_all(p->headers);
	ry_buf_release(&p->response);
	free(p->body);
	free(p);
}

/* A POST finished (ry_curlev's done callback). */
static void finished(CURL *easy, CURLcode result, void *arg)
{
	struct ry_webhook_sender *s = arg;
	struct post *p = NULL;
	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&p);
	long status = 0;
	curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status);
	struct ry_webhook_result r = { .id = p->id, .status = status };
	char *err = NULL;
	if (result != CURLE_OK) {
		err = ry_asprintf("%s", *p->errbuf ? p->errbuf : curl_easy_strerror(result));
	} else if (status < 200 || status > 299) {
		/* The start of what the endpoint said: why it refused. */
		char *text = ry_strndup(p->response.data ? p->response.data : "",
					p->response.len > 200 ? 200 : p->response.len);
		for (char *c = text; *c; c++)
			if ((unsigned char)*c < 0x20)
				*c = ' ';
		err = ry_asprintf("HTTP %ld%s%s", status, *text ? ": " : "", text);
		free(text);
	} else {
		r.ok = true;
	}
	r.error = err;
	post_free(p);
	s->done(s->arg, &r);
	free(err);
}

struct ry_webhook_sender *ry_webhook_sender_new(struct event_base *base, ry_webhook_done_fn done,
						void *arg, char **err)
{
	struct ry_webhook_sender *s = ry_calloc(1, sizeof(*s));
	s->done = done;
	s->arg = arg;
	s->curl = ry_curlev_new(base, finished, s, err);
	if (!s->curl) {
		free(s);
		return NULL;
	}
	s->multi = ry_curlev_multi(s->curl);
	return s;
}

static size_t keep_response(char *data, size_t size, size_t n, void *arg)
{
	struct post *p = arg;
	if (p->response.len < RESPONSE_MAX)
		ry_buf_add(&p->response, data, size * n);
	return size * n;
}

static void header(struct post *p, const char *name, const char *value)
{
	char *h = ry_asprintf("%s: %s", name, value);
	p->headers = curl_slist_append(p->headers, h);
	free(h);
}

void ry_webhook_sender_post(struct ry_webhook_sender *s, const struct ry_webhook_delivery *d)
{
	struct post *p = ry_calloc(1, sizeof(*p));
	p->s = s;
	p->id = d->id;
	p->body = ry_strdup(d->body);
	p->easy = curl_easy_init();
	p->next = s->posts;
	if (s->posts)
		s->posts->prev = p;
	s->posts = p;
	s->busy++;

	header(p, "Content-Type", "application/json");
	header(p, "User-Agent", "railyard/" RY_VERSION);
	header(p, "Expect", "");	/* no 100-continue round trip */
	header(p, "Idempotency-Key", d->idempotency_key);
	header(p, "X-Railyard-Delivery", d->idempotency_key);
	header(p, "X-Railyard-Event", d->event);
	if (d->secret) {
		char *sig = ry_webhook_signature(d->secret, d->secret_len, p->body);
		header(p, "X-Railyard-Signature-256", sig);
		free(sig);
	}
	if (d->auth_header && d->auth_value)
		header(p, d->auth_header, d->auth_value);

	CURL *e = p->easy;
	curl_easy_setopt(e, CURLOPT_URL, d->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, p);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, p->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);	/* credentials stay put */
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, p->body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(p->body));
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, p->headers);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, d->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, d->timeout_ms);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep_response);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, p);
	curl_multi_add_handle(s->multi, e);
}

size_t ry_webhook_sender_busy(const struct ry_webhook_sender *s)
{
	return s ? s->busy : 0;
}

void ry_webhook_sender_free(struct ry_webhook_sender *s)
{
	if (!s)
		return;
	while (s->posts)
		post_free(s->posts);
	ry_curlev_free(s->curl);
	free(s);
}
