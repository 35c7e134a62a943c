/*
 * pkg/curlev without a network: a server made by the test on 127.0.0.1
 * (an ephemeral port, on the same event loop) answers GETs, and curlev must
 * drive libcurl to the end: concurrent transfers each reach done once with
 * CURLE_OK and the body; a silent server ends in curl's own timeout (the
 * timer path); freeing with transfers in flight and connections cached
 * releases every socket event (checked by the sanitizer build's leak
 * detection).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "curlev/curlev.h"

#define MAX_CONNS 8
#define REPLY "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"

/* The test's server: answers every request on a connection with REPLY
 * (keep-alive) unless silent. */
struct server {
	int fd;
	int port;
	bool silent;
	struct event *accept_ev;
	struct conn {
		int fd;
		struct event *ev;
		char req[4096];
		size_t len;
	} conns[MAX_CONNS];
	int nconns;
};

/* One transfer the test made. */
struct xfer {
	CURL *easy;
	char body[64];
	size_t len;
	bool done;
	CURLcode result;
	long status;
};

struct fixture {
	struct event_base *base;
	struct server srv;
	struct ry_curlev *curl;
	struct event *deadline;
	int finished;		/* transfers that reached done */
	int want;		/* the loop stops when finished reaches it */
};

static void conn_read(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)what;
	ssize_t n = read(fd, c->req + c->len, sizeof(c->req) - 1 - c->len);
	if (n <= 0) {
		event_del(c->ev);
		return;
	}
	c->len += (size_t)n;
	c->req[c->len] = '\0';
	char *end;
	while ((end = strstr(c->req, "\r\n\r\n")) != NULL) {
		/* Small replies on a fresh socket: one write is enough. */
		assert_int_equal(write(fd, REPLY, strlen(REPLY)), (ssize_t)strlen(REPLY));
		size_t used = (size_t)(end + 4 - c->req);
		memmove(c->req, end + 4, c->len - used + 1);
		c->len -= used;
	}
}

static void server_accept(evutil_socket_t fd, short what, void *arg)
{
	struct fixture *f = arg;
	struct server *s = &f->srv;
	(void)what;
	int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	assert_true(s->nconns < MAX_CONNS);
	struct conn *cn = &s->conns[s->nconns++];
	cn->fd = c;
	cn->len = 0;
	if (!s->silent) {
		cn->ev = event_new(f->base, c, EV_READ | EV_PERSIST, conn_read, cn);
		event_add(cn->ev, NULL);
	}
}

static void deadline_hit(evutil_socket_t fd, short what, void *arg)
{
	struct fixture *f = arg;
	(void)fd;
	(void)what;
	event_base_loopbreak(f->base);
}

static void done(CURL *easy, CURLcode result, void *arg)
{
	struct fixture *f = arg;
	struct xfer *x = NULL;
	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
	assert_non_null(x);
	assert_false(x->done);	/* once per transfer */
	x->done = true;
	x->result = result;
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &x->status);
	curl_multi_remove_handle(ry_curlev_multi(f->curl), easy);
	if (++f->finished == f->want)
		event_base_loopbreak(f->base);
}

static size_t keep_body(char *data, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;
	if (x->len + len < sizeof(x->body)) {
		memcpy(x->body + x->len, data, len);
		x->len += len;
	}
	return len;
}

static int setup(void **state)
{
	struct fixture *f = ry_calloc(1, sizeof(*f));
	f->base = event_base_new();
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sa);
	f->srv.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->srv.fd < 0 || bind(f->srv.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(f->srv.fd, 16) < 0 || getsockname(f->srv.fd, (struct sockaddr *)&sa, &len) < 0)
		return -1;
	f->srv.port = ntohs(sa.sin_port);
	f->srv.accept_ev = event_new(f->base, f->srv.fd, EV_READ | EV_PERSIST, server_accept, f);
	event_add(f->srv.accept_ev, NULL);
	char *err = NULL;
	f->curl = ry_curlev_new(f->base, done, f, &err);
	if (!f->curl) {
		fprintf(stderr, "%s\n", err);
		free(err);
		return -1;
	}
	/* A hung test fails instead of hanging the suite. */
	f->deadline = evtimer_new(f->base, deadline_hit, f);
	struct timeval tv = { 60, 0 };
	evtimer_add(f->deadline, &tv);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	ry_curlev_free(f->curl);
	for (int i = 0; i < f->srv.nconns; i++) {
		if (f->srv.conns[i].ev)
			event_free(f->srv.conns[i].ev);
		close(f->srv.conns[i].fd);
	}
	event_free(f->srv.accept_ev);
	close(f->srv.fd);
	event_free(f->deadline);
	event_base_free(f->base);
	free(f);
	return 0;
}

static void start(struct fixture *f, struct xfer *x, long timeout_ms)
{
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", f->srv.port);
	x->easy = curl_easy_init();
	assert_non_null(x->easy);
	curl_easy_setopt(x->easy, CURLOPT_URL, url);
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
	curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->easy, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, keep_body);
	curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
	if (timeout_ms)
		curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
	assert_int_equal(curl_multi_add_handle(ry_curlev_multi(f->curl), x->easy), CURLM_OK);
}

static void concurrent_gets_reach_done_once_each(void **state)
{
	struct fixture *f = *state;
	struct xfer x[3] = { 0 };
	f->want = 3;
	for (int i = 0; i < 3; i++)
		start(f, &x[i], 0);
	event_base_dispatch(f->base);
	assert_int_equal(f->finished, 3);
	for (int i = 0; i < 3; i++) {
		assert_true(x[i].done);
		assert_int_equal(x[i].result, CURLE_OK);
		assert_int_equal(x[i].status, 200);
		assert_int_equal(x[i].len, 5);
		assert_memory_equal(x[i].body, "hello", 5);
	}
	/* A second round reuses the cached connections. */
	struct xfer again = { 0 };
	f->want = 4;
	start(f, &again, 0);
	event_base_dispatch(f->base);
	assert_true(again.done);
	assert_int_equal(again.result, CURLE_OK);
	assert_int_equal(again.status, 200);
	for (int i = 0; i < 3; i++)
		curl_easy_cleanup(x[i].easy);
	curl_easy_cleanup(again.easy);
	/* teardown frees the curlev while curl still holds those connections */
}

static void silent_server_times_out(void **state)
{
	struct fixture *f = *state;
	struct xfer x = { 0 };
	f->srv.silent = true;
	f->want = 1;
	start(f, &x, 300);
	event_base_dispatch(f->base);
	assert_true(x.done);
	assert_int_equal(x.result, CURLE_OPERATION_TIMEDOUT);
	assert_int_equal(f->srv.nconns, 1);
	curl_easy_cleanup(x.easy);
}

/* Done stays silent for a transfer removed before it finished; freeing
 * with it still connected releases its socket event. */
static void free_with_a_transfer_in_flight(void **state)
{
	struct fixture *f = *state;
	struct xfer x = { 0 };
	f->srv.silent = true;
	start(f, &x, 0);
	while (f->srv.nconns == 0)
		assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
	curl_multi_remove_handle(ry_curlev_multi(f->curl), x.easy);
	curl_easy_cleanup(x.easy);
	ry_curlev_free(f->curl);
	f->curl = NULL;
	assert_false(x.done);
	assert_int_equal(f->finished, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(concurrent_gets_reach_done_once_each, setup, teardown),
		cmocka_unit_test_setup_teardown(silent_server_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(free_with_a_transfer_in_flight, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
