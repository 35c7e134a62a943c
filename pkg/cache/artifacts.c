/*
 * Restoring and saving artifacts without blocking the loop: store
 * requests run on the event loop (the HTTP store on curl multi), the
 * archive work on pkg/offload threads, and every step continues from a
 * callback.  An operation owns copies of everything it needs, so a
 * cancelled one can finish its thread work and vanish quietly.
 */
#include "cache/cache.h"
#include "archive/archive.h"
#include "hash/hash.h"
#include "offload/offload.h"
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ry_cache_ctx {
	struct event_base *base;
	struct ry_store *store;		/* what restores and saves go through */
	struct ry_store *local;		/* its local part (the store itself when local) */
	struct ry_offload *offload;
	bool closing;			/* being freed: callbacks are dropped */
};

struct ry_cache_op {
	struct ry_cache_ctx *ctx;
	ry_cache_done_fn done;
	void *arg;
	bool cancelled;
	struct ry_store_req *req;	/* in flight on the loop, or NULL */
	char *tree;			/* restore: where to; NULL: verify only */
	struct ry_strlist outputs;
	/* thread results */
	int fd;				/* restore: the opened blob */
	char *tmp;			/* save: the archive being written */
	struct ry_archive_info info;
	enum ry_archive_status ast;
	bool thread_ok;
	char *error;
	char *warning;
	char *quarantined;
	struct ry_cache_result res;
};

static struct ry_cache_ctx *ctx_make(struct event_base *base, struct ry_store *store, int threads,
				     char **err)
{
	struct ry_offload *o = ry_offload_new(base, threads, err);
	if (!o) {
		ry_store_free(store);
		return NULL;
	}
	struct ry_cache_ctx *c = ry_calloc(1, sizeof(*c));
	c->base = base;
	c->store = store;
	c->local = strcmp(store->ops->kind, "tiered") == 0 ? ry_store_tiered_local(store) : store;
	c->offload = o;
	return c;
}

struct ry_cache_ctx *ry_cache_ctx_new(struct event_base *base, const struct ry_cache_config *cfg,
				      const char *workdir, char **err)
{
	struct ry_store *s = ry_cache_config_open_store(cfg, base, workdir, err);
	return s ? ctx_make(base, s, cfg->threads, err) : NULL;
}

struct ry_cache_ctx *ry_cache_ctx_new_with_store(struct event_base *base, struct ry_store *store,
						 int threads, char **err)
{
	return ctx_make(base, store, threads, err);
}

struct ry_store *ry_cache_ctx_store(struct ry_cache_ctx *c)
{
	return c->store;
}

struct ry_offload *ry_cache_ctx_offload(struct ry_cache_ctx *c)
{
	return c->offload;
}

void ry_cache_ctx_free(struct ry_cache_ctx *c)
{
	if (!c)
		return;
	/* Thread work finishes, then store requests complete: every
	 * operation ends and is freed, none calls back. */
	c->closing = true;
	ry_offload_free(c->offload);
	ry_store_free(c->store);
	free(c);
}

static void op_free(struct ry_cache_op *op)
{
	if (op->fd >= 0)
		close(op->fd);
	if (op->tmp) {
		unlink(op->tmp);
		free(op->tmp);
	}
	ry_archive_info_release(&op->info);
	ry_strlist_release(&op->outputs);
	free(op->tree);
	free(op->error);
	free(op->warning);
	free(op->quarantined);
	free(op);
}

static void finish(struct ry_cache_op *op, enum ry_cache_status st)
{
	if (!op->cancelled && !op->ctx->closing) {
		op->res.status = st;
		op->res.error = op->error;
		op->res.warning = op->warning;
		op->res.quarantined = op->quarantined;
		op->res.manifest = op->info.manifest;
		op->done(op->arg, &op->res);
	}
	op_free(op);
}

static enum ry_cache_status from_store(enum ry_store_status s)
{
	switch (s) {
	case RY_STORE_OK:
		return RY_CACHE_OK;
	case RY_STORE_MISS:
		return RY_CACHE_MISS;
	case RY_STORE_CORRUPT:
		return RY_CACHE_CORRUPT;
	default:
		return RY_CACHE_UNAVAILABLE;
	}
}

static struct ry_cache_op *op_new(struct ry_cache_ctx *c, const char *tree, ry_cache_done_fn done,
				  void *arg)
{
	struct ry_cache_op *op = ry_calloc(1, sizeof(*op));
	op->ctx = c;
	op->done = done;
	op->arg = arg;
	op->fd = -1;
	op->tree = tree ? ry_strdup(tree) : NULL;
	return op;
}

void ry_cache_op_cancel(struct ry_cache_op *op)
{
	if (!op)
		return;
	op->cancelled = true;
	if (op->req) {
		/* waiting on the store: nothing else will call back */
		ry_store_cancel(op->req);
		op->req = NULL;
		op_free(op);
	}
	/* else a thread works for it: finish() frees it quietly */
}

/* ---- restore ----------------------------------------------------------------- */

/* Verify only: the blob's bytes against its digest, nothing unpacked. */
static enum ry_archive_status verify_blob(struct ry_cache_op *op)
{
	char got[RY_DIGEST_HEX];
	int64_t size = 0;
	if (!ry_hash_fd(op->fd, got, &size, &op->error))
		return RY_ARCHIVE_CORRUPT;	/* unreadable, as extraction would say */
	if (strcmp(got, op->res.digest) != 0) {
		op->error = ry_asprintf("content does not match its digest: expected %.12s…, got %.12s…",
					op->res.digest, got);
		return RY_ARCHIVE_CORRUPT;
	}
	op->res.size = size;
	return RY_ARCHIVE_OK;
}

static void extract_work(void *arg)
{
	struct ry_cache_op *op = arg;
	op->ast = op->tree ? ry_archive_extract(op->fd, op->res.digest, op->tree, &op->error)
			   : verify_blob(op);
}

static void extract_done(void *arg)
{
	struct ry_cache_op *op = arg;
	if (op->ast == RY_ARCHIVE_CORRUPT) {
		/* The local copy is bad: move it aside so the next lookup misses. */
		char *moved = NULL, *e = NULL;
		if (ry_store_local_quarantine(op->ctx->local, RY_STORE_CAS, op->res.digest, &moved, &e))
			op->quarantined = ry_asprintf("%s: moved to %s", op->ctx->local->name, moved);
		else
			op->quarantined = e;	/* why it could not be moved */
		free(moved);
	}
	finish(op, op->ast == RY_ARCHIVE_OK ? RY_CACHE_OK
		   : op->ast == RY_ARCHIVE_CORRUPT ? RY_CACHE_CORRUPT : RY_CACHE_FAILED);
}

static void opened(struct ry_store_req *req, void *arg)
{
	struct ry_cache_op *op = arg;
	op->req = NULL;
	op->res.size = req->size;
	if (req->status != RY_STORE_OK) {
		enum ry_cache_status st = from_store(req->status);
		op->error = req->error;
		req->error = NULL;
		ry_store_req_free(req);
		finish(op, st);
		return;
	}
	op->fd = req->fd;
	req->fd = -1;
	ry_store_req_free(req);
	if (op->ctx->closing) {
		finish(op, RY_CACHE_UNAVAILABLE);
		return;
	}
	ry_offload_run(op->ctx->offload, extract_work, extract_done, op);
}

/* Opens digest, then extracts it into tree, or (tree NULL) verifies it. */
static struct ry_cache_op *open_blob(struct ry_cache_ctx *c, const char *digest, const char *tree,
				     ry_cache_done_fn done, void *arg)
{
	struct ry_cache_op *op = op_new(c, tree, done, arg);
	snprintf(op->res.digest, sizeof(op->res.digest), "%s", digest);
	op->req = ry_store_req_new(RY_STORE_OPEN, RY_STORE_CAS, digest, NULL);
	ry_store_start(c->store, op->req, opened, op);
	return op;
}

struct ry_cache_op *ry_cache_restore(struct ry_cache_ctx *c, const char *digest, const char *tree,
				     ry_cache_done_fn done, void *arg)
{
	return open_blob(c, digest, tree, done, arg);
}

struct ry_cache_op *ry_cache_verify(struct ry_cache_ctx *c, const char *digest,
				    ry_cache_done_fn done, void *arg)
{
	return open_blob(c, digest, NULL, done, arg);
}

/* ---- save ---------------------------------------------------------------------- */

static void archive_work(void *arg)
{
	struct ry_cache_op *op = arg;
	char *e = NULL;
	int fd = ry_store_local_tmpfile(op->ctx->local, &op->tmp, &e);
	if (fd < 0) {
		op->error = e;
		return;
	}
	op->thread_ok = ry_archive_create(op->tree, &op->outputs, fd, &op->info, &op->error);
	if (close(fd) < 0 && op->thread_ok) {
		op->error = ry_asprintf("cannot write %s: %s", op->tmp, strerror(errno));
		op->thread_ok = false;
	}
}

static void uploaded(struct ry_store_req *req, void *arg)
{
	struct ry_cache_op *op = arg;
	op->req = NULL;
	enum ry_store_status st = req->status;
	if (req->warning) {
		op->warning = req->warning;
		req->warning = NULL;
	}
	if (st != RY_STORE_OK) {
		op->error = req->error;
		req->error = NULL;
	}
	ry_store_req_free(req);
	finish(op, st == RY_STORE_OK ? RY_CACHE_OK : RY_CACHE_FAILED);
}

static void archive_done(void *arg)
{
	struct ry_cache_op *op = arg;
	if (op->cancelled || op->ctx->closing || !op->thread_ok) {
		finish(op, RY_CACHE_FAILED);
		return;
	}
	memcpy(op->res.digest, op->info.digest, RY_DIGEST_HEX);
	op->res.size = op->info.size;
	op->res.entries = op->info.entries;
	op->res.content_bytes = op->info.content_bytes;
	/* Into the local store by rename (no copy); the tiered PUT then finds
	 * it locally and only uploads. */
	if (ry_store_local_adopt(op->ctx->local, RY_STORE_CAS, op->info.digest, op->tmp,
				 &op->error) != RY_STORE_OK) {
		finish(op, RY_CACHE_FAILED);
		return;
	}
	char *blob = ry_store_local_path(op->ctx->local, RY_STORE_CAS, op->info.digest);
	free(op->tmp);
	op->tmp = NULL;
	op->req = ry_store_req_new(RY_STORE_PUT, RY_STORE_CAS, op->info.digest, blob);
	free(blob);
	ry_store_start(op->ctx->store, op->req, uploaded, op);
}

struct ry_cache_op *ry_cache_save(struct ry_cache_ctx *c, const char *tree,
				  const struct ry_strlist *outputs, ry_cache_done_fn done, void *arg)
{
	struct ry_cache_op *op = op_new(c, tree, done, arg);
	for (size_t i = 0; i < outputs->n; i++)
		ry_strlist_add(&op->outputs, outputs->items[i]);
	ry_offload_run(c->offload, archive_work, archive_done, op);
	return op;
}
