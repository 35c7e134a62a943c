/*
 * curlev: libcurl's multi interface driven by a libevent loop, the glue the
 * HTTP store (pkg/store/store_http.c) and the webhook sender
 * (pkg/webhook/webhook.c) share.  curl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION: one event per socket) and when to wake it
 * (CURLMOPT_TIMERFUNCTION: one evtimer); those events call
 * curl_multi_socket_action, then every finished transfer is handed to the
 * done callback.  Nothing blocks the loop.
 *
 * The user owns its easy handles: it adds them to ry_curlev_multi() and
 * removes and cleans them up itself (usually from done).  Multi options
 * other than the socket and timer ones (CURLMOPT_MAX_HOST_CONNECTIONS, ...)
 * are the user's to set on ry_curlev_multi().
 */
#ifndef RY_CURLEV_H
#define RY_CURLEV_H

#include "core/core.h"

#include <curl/curl.h>

struct event_base;
struct ry_curlev;

/*
 * Called from the loop once per finished transfer, with its easy handle and
 * curl's result for it.  It may remove and clean up easy (curl's message is
 * not looked at again) and add new handles.
 */
typedef void (*ry_curlev_done_fn)(CURL *easy, CURLcode result, void *arg);

/*
 * A multi handle driven by base (which must outlive it); initialises libcurl
 * once per process.  NULL with *err ("cannot initialise libcurl...") when
 * libcurl or libevent cannot be set up.
 */
struct ry_curlev *ry_curlev_new(struct event_base *base, ry_curlev_done_fn done, void *arg,
				char **err) RY_MUST_CHECK;
/* The multi handle: add easy handles to it, set limits on it. */
CURLM *ry_curlev_multi(const struct ry_curlev *c);
/*
 * Cleans up the multi handle and frees every socket event and the timer.
 * Remove the easy handles first; done is not called again.  NULL is a no-op.
 */
void ry_curlev_free(struct ry_curlev *c);

#endif
