#include "curlev/curlev.h"

#include <event2/event.h>
#include <stdlib.h>

/* One watched socket; its event is replaced when what curl waits for changes. */
struct sockev {
	struct event *ev;
	struct sockev *prev, *next;
};

struct ry_curlev {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	ry_curlev_done_fn done;
	void *arg;
	struct sockev *socks;	/* every socket curl watches, freed at REMOVE or free */
};

/* Hands every finished transfer to done.  The message is read before done
 * runs: curl frees it when done removes the easy handle. */
static void check_done(struct ry_curlev *c)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		CURL *easy = msg->easy_handle;
		CURLcode result = msg->data.result;
		c->done(easy, result, c->arg);
	}
}

static void sock_event(evutil_socket_t fd, short what, void *arg)
{
	struct ry_curlev *c = arg;
	int running, flags = (what & EV_READ ? CURL_CSELECT_IN : 0) |
			     (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
	curl_multi_socket_action(c->multi, fd, flags, &running);
	check_done(c);
}

static void timer_event(evutil_socket_t fd, short what, void *arg)
{
	struct ry_curlev *c = arg;
	int running;
	(void)fd;
	(void)what;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(c);
}

static void sockev_free(struct ry_curlev *c, struct sockev *se)
{
	if (se->prev)
		se->prev->next = se->next;
	else
		c->socks = se->next;
	if (se->next)
		se->next->prev = se->prev;
	if (se->ev)
		event_free(se->ev);
	free(se);
}

/* curl says which socket to watch for what; the socket's assigned pointer is
 * its sockev, kept on a list so ry_curlev_free finds those curl never
 * REMOVEd. */
static int socket_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct ry_curlev *c = userp;
	struct sockev *se = socketp;
	(void)e;

	if (what == CURL_POLL_REMOVE) {
		if (se)
			sockev_free(c, se);
		curl_multi_assign(c->multi, s, NULL);
		return 0;
	}
	if (!se) {
		se = ry_calloc(1, sizeof(*se));
		se->next = c->socks;
		if (c->socks)
			c->socks->prev = se;
		c->socks = se;
		curl_multi_assign(c->multi, s, se);
	}
	if (se->ev)
		event_free(se->ev);
	short kind = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) |
		     (what & CURL_POLL_OUT ? EV_WRITE : 0);
	se->ev = event_new(c->base, s, kind, sock_event, c);
	if (!se->ev || event_add(se->ev, NULL) < 0)
		return -1;	/* curl fails the transfers on this socket */
	return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	struct ry_curlev *c = userp;
	(void)m;
	if (timeout_ms < 0) {
		evtimer_del(c->timer);
	} else {
		struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
		evtimer_add(c->timer, &tv);
	}
	return 0;
}

struct ry_curlev *ry_curlev_new(struct event_base *base, ry_curlev_done_fn done, void *arg,
				char **err)
{
	static bool curl_ready;
	struct ry_curlev *c = NULL;

	/* Once: curl_global_init is not thread-safe and counts its callers. */
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			*err = ry_strdup("cannot initialise libcurl");
			goto out;
		}
		curl_ready = true;
	}
	c = ry_calloc(1, sizeof(*c));
	c->base = base;
	c->done = done;
	c->arg = arg;
	c->multi = curl_multi_init();
	c->timer = evtimer_new(base, timer_event, c);
	if (!c->multi || !c->timer) {
		*err = ry_strdup("cannot initialise libcurl's multi interface");
		ry_curlev_free(c);
		c = NULL;
		goto out;
	}
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
out:
	return c;
}

CURLM *ry_curlev_multi(const struct ry_curlev *c)
{
	return c->multi;
}

void ry_curlev_free(struct ry_curlev *c)
{
	if (!c)
		return;
	/* First: cleanup may still call socket_cb and timer_cb. */
	if (c->multi)
		curl_multi_cleanup(c->multi);
	while (c->socks)
		sockev_free(c, c->socks);
	if (c->timer)
		event_free(c->timer);
	free(c);
}
