#include "offload/offload.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct job {
	ry_offload_fn work;
	ry_offload_fn done;
	void *arg;
	struct job *next;
};

struct ry_offload {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *queue, *queue_tail;	/* waiting for a thread */
	struct job *finished;		/* waiting for the loop */
	size_t pending;			/* queued + running + finished */
	bool stopping;
	int pipe[2];			/* a byte per finished job wakes the loop */
	struct event *ev;
	pthread_t *threads;
	int nthreads;
};

static void *thread_main(void *p)
{
	struct ry_offload *o = p;

	pthread_mutex_lock(&o->mu);
	for (;;) {
		while (!o->queue && !o->stopping)
			pthread_cond_wait(&o->cv, &o->mu);
		if (!o->queue)
			break;
		struct job *j = o->queue;
		o->queue = j->next;
		if (!o->queue)
			o->queue_tail = NULL;
		pthread_mutex_unlock(&o->mu);
		j->work(j->arg);
		pthread_mutex_lock(&o->mu);
		j->next = o->finished;
		o->finished = j;
		ssize_t w;
		do
			w = write(o->pipe[1], "x", 1);
		while (w < 0 && errno == EINTR);
	}
	pthread_mutex_unlock(&o->mu);
	return NULL;
}

/* On the loop: run the done functions of every finished job. */
static void drain(struct ry_offload *o)
{
	char buf[256];
	while (read(o->pipe[0], buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&o->mu);
	struct job *list = o->finished;
	o->finished = NULL;
	pthread_mutex_unlock(&o->mu);
	/* Oldest first: the list was built by pushing. */
	struct job *rev = NULL;
	while (list) {
		struct job *n = list->next;
		list->next = rev;
		rev = list;
		list = n;
	}
	while (rev) {
		struct job *j = rev;
		rev = j->next;
		pthread_mutex_lock(&o->mu);
		o->pending--;
		pthread_mutex_unlock(&o->mu);
		if (j->done)
			j->done(j->arg);
		free(j);
	}
}

static void readable(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	drain(arg);
}

struct ry_offload *ry_offload_new(struct event_base *base, int nthreads, char **err)
{
	struct ry_offload *o = ry_calloc(1, sizeof(*o));

	if (nthreads < 1 || nthreads > 64) {
		*err = ry_asprintf("cannot start offload threads: count %d is not 1..64", nthreads);
		free(o);
		return NULL;
	}
	if (pipe2(o->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		*err = ry_asprintf("cannot start offload threads: pipe: %s", strerror(errno));
		free(o);
		return NULL;
	}
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
	o->ev = event_new(base, o->pipe[0], EV_READ | EV_PERSIST, readable, o);
	event_add(o->ev, NULL);
	o->threads = ry_calloc((size_t)nthreads, sizeof(*o->threads));
	for (int i = 0; i < nthreads; i++) {
		int rc = pthread_create(&o->threads[i], NULL, thread_main, o);
		if (rc != 0) {
			*err = ry_asprintf("cannot start offload threads: %s", strerror(rc));
			ry_offload_free(o);
			return NULL;
		}
		o->nthreads++;
	}
	return o;
}

void ry_offload_run(struct ry_offload *o, ry_offload_fn work, ry_offload_fn done, void *arg)
{
	struct job *j = ry_calloc(1, sizeof(*j));
	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&o->mu);
	if (o->queue_tail)
		o->queue_tail->next = j;
	else
		o->queue = j;
	o->queue_tail = j;
	o->pending++;
	pthread_cond_signal(&o->cv);
	pthread_mutex_unlock(&o->mu);
}

size_t ry_offload_pending(const struct ry_offload *o)
{
	pthread_mutex_lock((pthread_mutex_t *)&o->mu);
	size_t n = o->pending;
	pthread_mutex_unlock((pthread_mutex_t *)&o->mu);
	return n;
}

void ry_offload_free(struct ry_offload *o)
{
	if (!o)
		return;
	pthread_mutex_lock(&o->mu);
	o->stopping = true;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
	/* Threads finish the queue before they see stopping with nothing left. */
	for (int i = 0; i < o->nthreads; i++)
		pthread_join(o->threads[i], NULL);
	drain(o);
	event_free(o->ev);
	close(o->pipe[0]);
	close(o->pipe[1]);
	pthread_mutex_destroy(&o->mu);
	pthread_cond_destroy(&o->cv);
	free(o->threads);
	free(o);
}
