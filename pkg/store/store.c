/* The request lifecycle shared by every store. */
#include "store/store.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *ry_store_status_name(enum ry_store_status s)
{
	static const char *const names[] = { "ok", "miss", "corrupt", "unavailable", "auth",
					     "refused" };
	return (size_t)s < RY_ARRAY_SIZE(names) ? names[s] : "?";
}

const char *ry_store_op_name(enum ry_store_op op)
{
	static const char *const names[] = { "HEAD", "GET", "OPEN", "PUT", "DELETE" };
	return (size_t)op < RY_ARRAY_SIZE(names) ? names[op] : "?";
}

const char *ry_store_ns_name(enum ry_store_ns ns)
{
	return ns == RY_STORE_CAS ? "cas" : "ac";
}

struct ry_store_req *ry_store_req_new(enum ry_store_op op, enum ry_store_ns ns, const char *key,
				      const char *path)
{
	struct ry_store_req *r = ry_calloc(1, sizeof(*r));
	r->op = op;
	r->ns = ns;
	snprintf(r->key, sizeof(r->key), "%s", key ? key : "");
	r->path = path ? ry_strdup(path) : NULL;
	r->fd = -1;
	r->size = -1;
	return r;
}

void ry_store_req_free(struct ry_store_req *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	if (r->defer)
		event_free(r->defer);
	free(r->path);
	free(r->error);
	free(r->warning);
	free(r);
}

void ry_store_init(struct ry_store *s, const struct ry_store_ops *ops, struct event_base *base,
		   const char *name)
{
	s->ops = ops;
	s->own_base = base == NULL;
	s->base = base ? base : event_base_new();
	if (!s->base) {
		fprintf(stderr, "railyard: fatal: cannot create an event base\n");
		abort();
	}
	s->name = ry_strdup(name);
}

void ry_store_start(struct ry_store *s, struct ry_store_req *req, ry_store_done_fn done, void *arg)
{
	req->prev = NULL;
	req->next = s->inflight;
	if (s->inflight)
		s->inflight->prev = req;
	s->inflight = req;
	req->store = s;
	req->done = done;
	req->arg = arg;
	req->status = RY_STORE_OK;
	if (!ry_hash_is_hex(req->key)) {
		ry_store_complete_later(req, RY_STORE_REFUSED,
					ry_asprintf("%s: %s %s/%s: not a 64-hex-digit key", s->name,
						    ry_store_op_name(req->op), ry_store_ns_name(req->ns),
						    req->key));
		return;
	}
	if ((req->op == RY_STORE_GET || req->op == RY_STORE_PUT) && !req->path) {
		ry_store_complete_later(req, RY_STORE_REFUSED,
					ry_asprintf("%s: %s needs a file", s->name,
						    ry_store_op_name(req->op)));
		return;
	}
	s->ops->start(s, req);
}

void ry_store_complete(struct ry_store_req *req, enum ry_store_status st, char *error)
{
	struct ry_store *s = req->store;
	if (req->prev)
		req->prev->next = req->next;
	else if (s->inflight == req)
		s->inflight = req->next;
	if (req->next)
		req->next->prev = req->prev;
	req->prev = req->next = NULL;
	req->status = st;
	if (error) {
		free(req->error);
		req->error = error;
	}
	if (req->cancelled) {
		ry_store_req_free(req);
		return;
	}
	req->done(req, req->arg);
}

static void deferred(evutil_socket_t fd, short what, void *arg)
{
	struct ry_store_req *req = arg;
	(void)fd;
	(void)what;
	event_free(req->defer);
	req->defer = NULL;
	ry_store_complete(req, req->status, NULL);
}

void ry_store_complete_later(struct ry_store_req *req, enum ry_store_status st, char *error)
{
	struct timeval zero = { 0, 0 };
	req->status = st;
	if (error) {
		free(req->error);
		req->error = error;
	}
	req->defer = evtimer_new(req->store->base, deferred, req);
	evtimer_add(req->defer, &zero);
}

void ry_store_cancel(struct ry_store_req *req)
{
	if (!req || req->cancelled)
		return;
	req->cancelled = true;
	if (req->defer)
		return;		/* completes (and is freed) on the next turn */
	req->store->ops->cancel(req->store, req);
}

struct run_state {
	bool done;
};

static void run_done(struct ry_store_req *req, void *arg)
{
	(void)req;
	((struct run_state *)arg)->done = true;
}

enum ry_store_status ry_store_run(struct ry_store *s, struct ry_store_req *req)
{
	struct run_state st = { false };
	ry_store_start(s, req, run_done, &st);
	while (!st.done) {
		if (event_base_loop(s->base, EVLOOP_ONCE) != 0 && !st.done) {
			/* Nothing pending yet not done: a store bug, not a hang. */
			req->status = RY_STORE_UNAVAILABLE;
			free(req->error);
			req->error = ry_asprintf("%s: request stalled", s->name);
			break;
		}
	}
	return req->status;
}

void ry_store_free(struct ry_store *s)
{
	if (!s)
		return;
	struct event_base *base = s->own_base ? s->base : NULL;
	char *name = s->name;
	/* Requests waiting for their next-turn completion complete now; the
	 * implementation completes those it is working on in release. */
	for (struct ry_store_req *r = s->inflight, *next; r; r = next) {
		next = r->next;
		if (r->defer) {
			event_free(r->defer);
			r->defer = NULL;
			ry_store_complete(r, RY_STORE_UNAVAILABLE,
					  r->cancelled ? NULL : ry_asprintf("%s: the store was closed", name));
		}
	}
	s->ops->release(s);
	free(name);
	if (base)
		event_base_free(base);
}
