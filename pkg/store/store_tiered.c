/* A local store in front of a remote one: reads try local first and fill
 * it from remote; writes go to both; the remote's trouble is a warning. */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tiered {
	struct ry_store s;
	struct ry_store *local;
	struct ry_store *remote;
};

enum stage {
	FETCH,		/* remote GET into a local temporary file */
	HEAD_BEFORE_PUT,/* does the remote have this CAS blob already? */
	UPLOAD,		/* remote PUT after the local one */
	REMOTE_HEAD,	/* local missed a HEAD */
	REMOTE_DELETE,
};

struct step {
	enum stage stage;
	struct ry_store_req *inner;
	char *tmp;		/* FETCH: where the remote copy lands */
	enum ry_store_status local_status;
};

static struct tiered *T(struct ry_store *s)
{
	return (struct tiered *)s;
}

static void step_free(struct step *st)
{
	if (st->tmp) {
		unlink(st->tmp);
		free(st->tmp);
	}
	free(st);
}

/* Finishes req with st, dropping the step. */
static void finish(struct ry_store_req *req, enum ry_store_status status, char *err)
{
	struct step *st = req->priv;
	req->priv = NULL;
	if (st)
		step_free(st);
	ry_store_complete(req, status, err);
}

static void inner_done(struct ry_store_req *inner, void *arg);

static void go_remote(struct ry_store_req *req, struct step *st, enum ry_store_op op,
		      const char *path)
{
	struct tiered *t = T(req->store);
	st->inner = ry_store_req_new(op, req->ns, req->key, path);
	ry_store_start(t->remote, st->inner, inner_done, req);
}

static char *take_error(struct ry_store_req *r)
{
	char *e = r->error;
	r->error = NULL;
	return e;
}

static void inner_done(struct ry_store_req *inner, void *arg)
{
	struct ry_store_req *req = arg;
	struct tiered *t = T(req->store);
	struct step *st = req->priv;
	enum ry_store_status rs = inner->status;
	char *err = take_error(inner);
	int64_t size = inner->size;

	st->inner = NULL;
	ry_store_req_free(inner);
	switch (st->stage) {
	case FETCH:
		if (rs != RY_STORE_OK) {
			finish(req, rs, err);
			return;
		}
		free(err);
		err = NULL;
		rs = ry_store_local_adopt(t->local, req->ns, req->key, st->tmp, &err);
		free(st->tmp);
		st->tmp = NULL;
		if (rs != RY_STORE_OK) {
			finish(req, rs, err);
			return;
		}
		/* Now local: the caller's GET or OPEN from there. */
		rs = ry_store_local_do(t->local, req);
		finish(req, rs, NULL);
		return;
	case HEAD_BEFORE_PUT:
		if (rs == RY_STORE_OK) {
			free(err);
			finish(req, RY_STORE_OK, NULL);
			return;
		}
		if (rs != RY_STORE_MISS) {
			/* down or refusing us: no point in sending the bytes */
			free(req->warning);
			req->warning = err ? err : ry_asprintf("%s: %s", t->remote->name,
							       ry_store_status_name(rs));
			finish(req, st->local_status, NULL);
			return;
		}
		free(err);
		st->stage = UPLOAD;
		go_remote(req, st, RY_STORE_PUT, req->path);
		return;
	case UPLOAD:
		if (rs != RY_STORE_OK) {
			free(req->warning);
			req->warning = err ? err : ry_asprintf("%s: upload failed: %s", t->remote->name,
							       ry_store_status_name(rs));
			err = NULL;
		}
		free(err);
		finish(req, st->local_status, NULL);
		return;
	case REMOTE_HEAD:
		if (rs == RY_STORE_OK)
			req->size = size;
		finish(req, rs, err);
		return;
	case REMOTE_DELETE:
		if (rs == RY_STORE_OK || rs == RY_STORE_MISS) {
			free(err);
			finish(req, rs == RY_STORE_OK ? RY_STORE_OK : st->local_status, NULL);
			return;
		}
		free(req->warning);
		req->warning = err;
		finish(req, st->local_status, NULL);
		return;
	}
}

static void tiered_start(struct ry_store *s, struct ry_store_req *req)
{
	struct tiered *t = T(s);
	struct step *st = ry_calloc(1, sizeof(*st));
	enum ry_store_status ls;
	char *err = NULL;

	req->priv = st;
	switch (req->op) {
	case RY_STORE_HEAD:
		ls = ry_store_local_do(t->local, req);
		if (ls != RY_STORE_MISS)
			break;
		st->stage = REMOTE_HEAD;
		go_remote(req, st, RY_STORE_HEAD, NULL);
		return;
	case RY_STORE_GET:
	case RY_STORE_OPEN:
		ls = ry_store_local_do(t->local, req);
		if (ls == RY_STORE_CORRUPT) {
			/* quarantined by the local store; try the remote copy */
			free(req->error);
			req->error = NULL;
		} else if (ls != RY_STORE_MISS) {
			break;
		}
		{
			int fd = ry_store_local_tmpfile(t->local, &st->tmp, &err);
			if (fd < 0) {
				ls = RY_STORE_UNAVAILABLE;
				req->error = err;
				break;
			}
			close(fd);
		}
		st->stage = FETCH;
		go_remote(req, st, RY_STORE_GET, st->tmp);
		return;
	case RY_STORE_PUT:
		ls = ry_store_local_do(t->local, req);
		if (ls != RY_STORE_OK)
			break;
		st->local_status = ls;
		if (req->ns == RY_STORE_CAS) {
			st->stage = HEAD_BEFORE_PUT;
			go_remote(req, st, RY_STORE_HEAD, NULL);
		} else {
			st->stage = UPLOAD;
			go_remote(req, st, RY_STORE_PUT, req->path);
		}
		return;
	case RY_STORE_DELETE:
		st->local_status = ry_store_local_do(t->local, req);
		free(req->error);
		req->error = NULL;
		st->stage = REMOTE_DELETE;
		go_remote(req, st, RY_STORE_DELETE, NULL);
		return;
	default:
		ls = RY_STORE_REFUSED;
		break;
	}
	req->priv = NULL;
	step_free(st);
	ry_store_complete_later(req, ls, NULL);
}

static void tiered_cancel(struct ry_store *s, struct ry_store_req *req)
{
	(void)s;
	struct step *st = req->priv;
	if (st && st->inner) {
		ry_store_cancel(st->inner);
		st->inner = NULL;
	}
	finish(req, RY_STORE_UNAVAILABLE, NULL);
}

static void tiered_release(struct ry_store *s)
{
	struct tiered *t = T(s);
	ry_store_free(t->remote);
	ry_store_free(t->local);
	free(t);
}

static const struct ry_store_ops tiered_ops = { "tiered", tiered_start, tiered_cancel,
						tiered_release };

struct ry_store *ry_store_tiered_new(struct ry_store *local, struct ry_store *remote)
{
	struct tiered *t = ry_calloc(1, sizeof(*t));
	char *name = ry_asprintf("%s in front of %s", local->name, remote->name);
	ry_store_init(&t->s, &tiered_ops, local->base, name);
	t->s.own_base = false;	/* the local store owns it when it made one */
	free(name);
	t->local = local;
	t->remote = remote;
	return &t->s;
}

struct ry_store *ry_store_tiered_local(struct ry_store *tiered)
{
	return T(tiered)->local;
}
