/*
 * The HTTP store: bazel-remote's layout ({base}/cas/{sha256}, {base}/ac/{key})
 * over libcurl's multi interface, driven by libevent through pkg/curlev.
 * Nothing here blocks the loop: DNS is curl's threaded resolver,
 * file reads and writes are 16 KiB chunks.  Downloads are hashed as they
 * arrive and land in a temporary file renamed into place only when the
 * digest matched.  TLS verification is on; redirects are not followed
 * (they could carry credentials elsewhere).
 */
#include "store/store.h"

#include "curlev/curlev.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct xfer;

struct http {
	struct ry_store s;
	struct ry_curlev *curl;
	CURLM *multi;		/* ry_curlev_multi(curl) */
	char *url;		/* base, no trailing slash */
	char *username, *password, *bearer, *ca_file, *tmp_dir;
	long connect_ms, stall_s, timeout_s;
	struct xfer *active;
};

struct xfer {
	struct http *h;
	struct ry_store_req *req;
	CURL *easy;
	char errbuf[CURL_ERROR_SIZE];
	int fd;			/* GET/OPEN: where the body goes */
	int src;		/* PUT: the file uploaded */
	char *tmp;		/* GET: temporary file beside the destination */
	struct ry_hash *hash;	/* GET/OPEN of CAS content */
	int64_t bytes;
	int io_errno;		/* a local read/write failure */
	struct curl_slist *headers;
	char *url;
	struct xfer *prev, *next;
};

static struct http *H(struct ry_store *s)
{
	return (struct http *)s;
}

/* ---- bodies ---------------------------------------------------------------- */

static size_t body_write(char *data, size_t size, size_t nmemb, void *p)
{
	struct xfer *x = p;
	size_t len = size * nmemb, done = 0;
	if (x->fd < 0)
		return len;	/* HEAD/DELETE/PUT replies: discarded */
	while (done < len) {
		ssize_t n = write(x->fd, data + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			x->io_errno = errno;
			return 0;	/* CURLE_WRITE_ERROR */
		}
		done += (size_t)n;
	}
	if (x->hash)
		ry_hash_update(x->hash, data, len);
	x->bytes += (int64_t)len;
	return len;
}

static size_t body_read(char *data, size_t size, size_t nmemb, void *p)
{
	struct xfer *x = p;
	ssize_t n;
	do
		n = read(x->src, data, size * nmemb);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		x->io_errno = errno;
		return CURL_READFUNC_ABORT;
	}
	x->bytes += n;
	return (size_t)n;
}

/* ---- requests ---------------------------------------------------------------- */

static void xfer_free(struct xfer *x)
{
	struct http *h = x->h;
	if (x->prev)
		x->prev->next = x->next;
	else
		h->active = x->next;
	if (x->next)
		x->next->prev = x->prev;
	if (x->easy) {
		curl_multi_remove_handle(h->multi, x->easy);
		curl_easy_cleanup(x->easy);
	}
	if (x->fd >= 0)
		close(x->fd);
	if (x->src >= 0)
		close(x->src);
	if (x->tmp) {
		unlink(x->tmp);
		free(x->tmp);
	}
	curl_slist_free_all(x->headers);
	ry_hash_free(x->hash);
	free(x->url);
	free(x);
}

static char *describe(struct xfer *x, const char *what)
{
	return ry_asprintf("http store %s: %s %s/%.12s…: %s", x->h->url,
			   ry_store_op_name(x->req->op), ry_store_ns_name(x->req->ns), x->req->key,
			   what);
}

/* Turns the transfer's outcome into a status; on success finishes GET/OPEN. */
static enum ry_store_status classify(struct xfer *x, CURLcode rc, char **err)
{
	struct ry_store_req *req = x->req;
	long code = 0;

	if (rc != CURLE_OK) {
		char *why;
		if (x->io_errno)
			why = ry_asprintf("local file: %s", strerror(x->io_errno));
		else if (rc == CURLE_OPERATION_TIMEDOUT)
			why = ry_asprintf("timed out (%s)", x->errbuf[0] ? x->errbuf
									 : curl_easy_strerror(rc));
		else
			why = ry_asprintf("%s%s%s", curl_easy_strerror(rc), x->errbuf[0] ? ": " : "",
					  x->errbuf);
		*err = describe(x, why);
		free(why);
		return RY_STORE_UNAVAILABLE;
	}
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
	if (code == 404 && req->op != RY_STORE_PUT)
		return RY_STORE_MISS;
	if (code == 401 || (code == 403 && req->op != RY_STORE_DELETE)) {
		char *why = ry_asprintf("HTTP %ld: the store refused our credentials", code);
		*err = describe(x, why);
		free(why);
		return RY_STORE_AUTH;
	}
	if (req->op == RY_STORE_DELETE && (code == 403 || code == 405 || code == 501)) {
		char *why = ry_asprintf("HTTP %ld: the store does not allow DELETE", code);
		*err = describe(x, why);
		free(why);
		return RY_STORE_REFUSED;
	}
	if (code < 200 || code > 299) {
		char *why = ry_asprintf("HTTP %ld", code);
		*err = describe(x, why);
		free(why);
		return RY_STORE_UNAVAILABLE;
	}
	if (req->op == RY_STORE_HEAD) {
		curl_off_t len = -1;
		curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
		req->size = len;
		return RY_STORE_OK;
	}
	if (req->op == RY_STORE_PUT) {
		req->size = x->bytes;
		return RY_STORE_OK;
	}
	if (req->op != RY_STORE_GET && req->op != RY_STORE_OPEN)
		return RY_STORE_OK;
	req->size = x->bytes;
	if (x->hash) {
		char got[RY_DIGEST_HEX];
		ry_hash_final_hex(x->hash, got);
		if (strcmp(got, req->key) != 0) {
			char *why = ry_asprintf("content does not match its digest (got %.12s…)", got);
			*err = describe(x, why);
			free(why);
			return RY_STORE_CORRUPT;
		}
	}
	if (req->op == RY_STORE_OPEN) {
		if (lseek(x->fd, 0, SEEK_SET) < 0) {
			*err = describe(x, strerror(errno));
			return RY_STORE_UNAVAILABLE;
		}
		req->fd = x->fd;
		x->fd = -1;
		return RY_STORE_OK;
	}
	if (fsync(x->fd) < 0 || rename(x->tmp, req->path) < 0) {
		char *why = ry_asprintf("cannot store %s: %s", req->path, strerror(errno));
		*err = describe(x, why);
		free(why);
		return RY_STORE_UNAVAILABLE;
	}
	free(x->tmp);
	x->tmp = NULL;
	return RY_STORE_OK;
}

/* A transfer finished (ry_curlev's done callback). */
static void xfer_done(CURL *easy, CURLcode result, void *arg)
{
	struct xfer *x = NULL;
	(void)arg;
	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
	char *err = NULL;
	enum ry_store_status st = classify(x, result, &err);
	struct ry_store_req *req = x->req;
	xfer_free(x);
	ry_store_complete(req, st, err);
}

static bool open_body(struct xfer *x, char **err)
{
	struct ry_store_req *req = x->req;
	struct http *h = x->h;
	if (req->op == RY_STORE_GET) {
		x->tmp = ry_asprintf("%s.part-XXXXXX", req->path);
		x->fd = mkostemp(x->tmp, O_CLOEXEC);
	} else if (req->op == RY_STORE_OPEN) {
		char *t = ry_asprintf("%s/ry-http-XXXXXX", h->tmp_dir);
		x->fd = mkostemp(t, O_CLOEXEC);
		if (x->fd >= 0)
			unlink(t);	/* only the descriptor: nothing to clean up */
		free(t);
	} else if (req->op == RY_STORE_PUT) {
		x->src = open(req->path, O_RDONLY | O_CLOEXEC);
	} else {
		return true;
	}
	if (x->fd < 0 && x->src < 0) {
		char *why = ry_asprintf("%s: %s", req->op == RY_STORE_PUT ? req->path : "temporary file",
					strerror(errno));
		*err = describe(x, why);
		free(why);
		if (x->tmp) {
			free(x->tmp);
			x->tmp = NULL;
		}
		return false;
	}
	if (req->ns == RY_STORE_CAS && req->op != RY_STORE_PUT)
		x->hash = ry_hash_new();
	return true;
}

static void http_start(struct ry_store *s, struct ry_store_req *req)
{
	struct http *h = H(s);
	struct xfer *x = ry_calloc(1, sizeof(*x));
	char *err = NULL;

	x->h = h;
	x->req = req;
	x->fd = -1;
	x->src = -1;
	x->next = h->active;
	if (h->active)
		h->active->prev = x;
	h->active = x;
	req->priv = x;
	x->url = ry_asprintf("%s/%s/%s", h->url, ry_store_ns_name(req->ns), req->key);
	if (!open_body(x, &err)) {
		xfer_free(x);
		ry_store_complete_later(req, req->op == RY_STORE_PUT ? RY_STORE_REFUSED
								   : RY_STORE_UNAVAILABLE, err);
		return;
	}
	CURL *e = x->easy = curl_easy_init();
	curl_easy_setopt(e, CURLOPT_URL, x->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "railyard/" RY_VERSION);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (h->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, h->connect_ms);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, h->stall_s);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, h->timeout_s);
	if (h->bearer) {
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
		curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, h->bearer);
	} else if (h->username) {
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(e, CURLOPT_USERNAME, h->username);
		curl_easy_setopt(e, CURLOPT_PASSWORD, h->password ? h->password : "");
	}
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	switch (req->op) {
	case RY_STORE_HEAD:
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
		break;
	case RY_STORE_DELETE:
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
		break;
	case RY_STORE_PUT: {
		struct stat sb;
		(void)fstat(x->src, &sb);
		x->headers = curl_slist_append(NULL, "Expect:");
		x->headers = curl_slist_append(x->headers, "Content-Type: application/octet-stream");
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)sb.st_size);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, body_read);
		curl_easy_setopt(e, CURLOPT_READDATA, x);
		break;
	}
	case RY_STORE_GET:
	case RY_STORE_OPEN:
		break;
	}
	CURLMcode mc = curl_multi_add_handle(h->multi, e);
	if (mc != CURLM_OK) {
		err = describe(x, curl_multi_strerror(mc));
		xfer_free(x);
		ry_store_complete_later(req, RY_STORE_UNAVAILABLE, err);
	}
}

static void http_cancel(struct ry_store *s, struct ry_store_req *req)
{
	(void)s;
	struct xfer *x = req->priv;
	xfer_free(x);
	ry_store_complete(req, RY_STORE_UNAVAILABLE, NULL);	/* freed: cancelled */
}

static void http_release(struct ry_store *s)
{
	struct http *h = H(s);
	while (h->active) {
		struct xfer *x = h->active;
		struct ry_store_req *req = x->req;
		char *err = describe(x, "the store was closed");
		xfer_free(x);
		ry_store_complete(req, RY_STORE_UNAVAILABLE, err);
	}
	ry_curlev_free(h->curl);
	free(h->url);
	free(h->username);
	free(h->password);
	free(h->bearer);
	free(h->ca_file);
	free(h->tmp_dir);
	free(h);
}

static const struct ry_store_ops http_ops = { "http", http_start, http_cancel, http_release };

static char *dup_or_null(const char *s)
{
	return s && *s ? ry_strdup(s) : NULL;
}

struct ry_store *ry_store_http_new(struct event_base *base, const struct ry_store_http_config *cfg,
				   char **err)
{
	const char *u = cfg->url;

	if (!u || (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)) {
		*err = ry_asprintf("http store: URL \"%s\" must start with http:// or https://",
				   u ? u : "");
		return NULL;
	}
	if (cfg->bearer_token && *cfg->bearer_token && cfg->username && *cfg->username) {
		*err = ry_asprintf("http store %s: give a username/password or a bearer token, not both",
				   u);
		return NULL;
	}
	struct http *h = ry_calloc(1, sizeof(*h));
	h->url = ry_strdup(u);
	size_t n = strlen(h->url);
	while (n > 0 && h->url[n - 1] == '/')
		h->url[--n] = '\0';
	char *name = ry_asprintf("http %s", h->url);
	ry_store_init(&h->s, &http_ops, base, name);
	free(name);
	h->username = dup_or_null(cfg->username);
	h->password = dup_or_null(cfg->password);
	h->bearer = dup_or_null(cfg->bearer_token);
	h->ca_file = dup_or_null(cfg->ca_file);
	h->tmp_dir = ry_strdup(cfg->tmp_dir && *cfg->tmp_dir ? cfg->tmp_dir : "/tmp");
	h->connect_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 2000;
	h->stall_s = cfg->stall_timeout_s > 0 ? cfg->stall_timeout_s : 10;
	h->timeout_s = cfg->timeout_s > 0 ? cfg->timeout_s : 600;
	char *why = NULL;
	h->curl = ry_curlev_new(h->s.base, xfer_done, NULL, &why);	/* the store's own base if NULL */
	if (!h->curl) {
		*err = ry_asprintf("http store: %s", why);
		free(why);
		ry_store_free(&h->s);
		return NULL;
	}
	h->multi = ry_curlev_multi(h->curl);
	curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
			  cfg->max_connections > 0 ? cfg->max_connections : 8L);
	return &h->s;
}
