/*
 * httpd: /metrics (Prometheus text format) and /healthz on libevent's
 * evhttp, on the worker's own loop: a scrape reads the counters in place,
 * with no lock and no thread.  Bound to http_listen (127.0.0.1:9187 by
 * default); a bind failure is logged and the worker runs without it (a
 * second worker on the same host must not die for want of a port).
 */
#include "worker/internal.h"

#include "db/adb.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void gauges(struct ry_worker *w, struct ry_metrics_gauges *g)
{
	g->running = (int64_t)ry_task_table_count(&w->tasks, RY_TASK_RUNNING);
	g->queued = (int64_t)ry_task_table_count(&w->tasks, RY_TASK_QUEUED);
	g->results_pending = (int64_t)ry_task_table_count(&w->tasks, RY_TASK_DONE);
	g->slots = w->cfg.slots;
	g->cpus = w->cpu_cap;
	g->db_connected = w->db && ry_adb_connected(w->db);
	g->degraded = w->degraded != NULL;
	g->draining = w->draining;
}

static void reply(struct evhttp_request *req, int code, const char *reason, const char *type,
		  const char *body)
{
	struct evbuffer *out = evbuffer_new();
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
	evbuffer_add(out, body, strlen(body));
	evhttp_send_reply(req, code, reason, out);
	evbuffer_free(out);
}

static void metrics_cb(struct evhttp_request *req, void *arg)
{
	struct ry_worker *w = arg;
	struct ry_metrics_gauges g;
	gauges(w, &g);
	char *text = ry_metrics_render(&w->metrics, &g, w->cfg.name);
	reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", text);
	free(text);
}

/*
 * Liveness: answering at all proves the loop turns (nothing in it blocks).
 * The body says what an operator wants next: the database connection,
 * the lease, whether the host is degraded.  A degraded or disconnected
 * worker is still alive (restarting it would kill its running tasks), so
 * the status stays 200; draining answers 503 so a load balancer or
 * readiness probe stops counting on it.
 */
static void healthz_cb(struct evhttp_request *req, void *arg)
{
	struct ry_worker *w = arg;
	struct ry_metrics_gauges g;
	gauges(w, &g);
	int64_t lease_ms = w->lease_until_ms ? w->lease_until_ms - ry_now_ms() : 0;
	char *body = ry_asprintf("%s\nagent: %s\ndatabase: %s\nlease_ms: %lld\nrunning: %lld\n"
				 "degraded: %s\n",
				 w->draining ? "draining" : "ok", w->cfg.name,
				 g.db_connected ? "connected" : "disconnected",
				 (long long)(lease_ms > 0 ? lease_ms : 0), (long long)g.running,
				 w->degraded ? w->degraded : "no");
	if (w->draining)
		reply(req, 503, "Draining", "text/plain; charset=utf-8", body);
	else
		reply(req, 200, "OK", "text/plain; charset=utf-8", body);
	free(body);
}

static void other_cb(struct evhttp_request *req, void *arg)
{
	(void)arg;
	reply(req, 404, "Not Found", "text/plain; charset=utf-8",
	      "not found: try /metrics or /healthz\n");
}

void ry_worker_httpd_start(struct ry_worker *w)
{
	const char *addr = w->cfg.http_listen;
	if (!addr || !*addr)
		return;
	const char *colon = strrchr(addr, ':');
	char *host = ry_strndup(addr, (size_t)(colon - addr));
	/* [::1]:9187 */
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	long port = strtol(colon + 1, NULL, 10);
	struct evhttp_bound_socket *sock = NULL;
	w->http = evhttp_new(w->base);
	if (w->http)
		sock = evhttp_bind_socket_with_handle(w->http, host, (ev_uint16_t)port);
	if (!sock) {
		ry_warn("cannot serve /metrics and /healthz on %s: %s; running without them", addr,
			evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		if (w->http)
			evhttp_free(w->http);
		w->http = NULL;
		goto out;
	}
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_timeout(w->http, 10);
	evhttp_set_max_headers_size(w->http, 8192);
	evhttp_set_max_body_size(w->http, 0);
	evhttp_set_cb(w->http, "/metrics", metrics_cb, w);
	evhttp_set_cb(w->http, "/healthz", healthz_cb, w);
	evhttp_set_gencb(w->http, other_cb, w);
	/* The port the kernel chose when given 0 (tests do that). */
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char name[INET6_ADDRSTRLEN] = "?";
	int bound = (int)port;
	if (getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &in->sin_addr, name, sizeof(name));
			bound = ntohs(in->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &in6->sin6_addr, name, sizeof(name));
			bound = ntohs(in6->sin6_port);
		}
	}
	ry_info("serving /metrics and /healthz on http://%s%s%s:%d/", ss.ss_family == AF_INET6 ? "[" : "",
		name, ss.ss_family == AF_INET6 ? "]" : "", bound);
out:
	free(host);
}

void ry_worker_httpd_stop(struct ry_worker *w)
{
	if (w->http)
		evhttp_free(w->http);
	w->http = NULL;
}
