/*
 * webhook_sink: the HTTP endpoint the webhook tests deliver to.
 *
 *   webhook_sink PORT LOG [STATUS_FILE]
 *
 * Listens on 127.0.0.1:PORT (0: any free port; the port is printed on
 * stdout, then a newline), and appends one line per request to LOG:
 *   STATUS <tab> X-Railyard-Event <tab> Idempotency-Key <tab>
 *   X-Railyard-Signature-256 <tab> Authorization-or-PRIVATE-TOKEN <tab> BODY
 * It answers with the status code written in STATUS_FILE when that file
 * exists (e.g. 503), else 200.  Runs until killed.
 */
#include "core/core.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *log_path, *status_path;

static const char *hdr(struct evhttp_request *req, const char *name)
{
	const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), name);
	return v ? v : "-";
}

static void request_cb(struct evhttp_request *req, void *arg)
{
	(void)arg;
	int status = 200;
	FILE *f;
	if (status_path && (f = fopen(status_path, "r"))) {
		if (fscanf(f, "%d", &status) != 1)
			status = 500;
		fclose(f);
	}
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	char *body = ry_malloc(n + 1);
	evbuffer_remove(in, body, n);
	body[n] = '\0';
	for (char *c = body; *c; c++)
		if (*c == '\n' || *c == '\t')
			*c = ' ';
	const char *auth = hdr(req, "Authorization");
	if (strcmp(auth, "-") == 0)
		auth = hdr(req, "PRIVATE-TOKEN");
	if ((f = fopen(log_path, "a"))) {
		fprintf(f, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", status, hdr(req, "X-Railyard-Event"),
			hdr(req, "Idempotency-Key"), hdr(req, "X-Railyard-Signature-256"), auth,
			evhttp_request_get_uri(req), body);
		fclose(f);
	}
	free(body);
	evhttp_send_reply(req, status, status == 200 ? "OK" : "Refused", NULL);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: webhook_sink PORT LOG [STATUS_FILE]\n");
		return 2;
	}
	log_path = argv[2];
	status_path = argc > 3 ? argv[3] : NULL;
	struct event_base *base = event_base_new();
	struct evhttp *http = evhttp_new(base);
	struct evhttp_bound_socket *sock =
		evhttp_bind_socket_with_handle(http, "127.0.0.1", (ev_uint16_t)atoi(argv[1]));
	if (!sock) {
		fprintf(stderr, "webhook_sink: cannot listen on port %s\n", argv[1]);
		return 1;
	}
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &len);
	printf("%d\n", ntohs(((struct sockaddr_in *)&ss)->sin_port));
	fflush(stdout);
	evhttp_set_gencb(http, request_cb, NULL);
	event_base_dispatch(base);
	evhttp_free(http);
	event_base_free(base);
	return 0;
}
