/* libcurl on first use (lazylib.h).  The functions pkg/curlev, pkg/store and
 * pkg/webhook call. */
#define CURL_DISABLE_TYPECHECK	/* its macros would rename setopt and getinfo here */
#include <curl/curl.h>
#include <stdarg.h>

#include "lazylib/wrap.h"

#define CURL_SYMBOLS(F, V, H) \
	F(CURLcode, curl_global_init, (long flags), (flags)) \
	F(CURL *, curl_easy_init, (void), ()) \
	V(curl_easy_cleanup, (CURL *h), (h)) \
	H(curl_easy_setopt) \
	H(curl_easy_getinfo) \
	F(const char *, curl_easy_strerror, (CURLcode c), (c)) \
	F(CURLM *, curl_multi_init, (void), ()) \
	F(CURLMcode, curl_multi_cleanup, (CURLM *m), (m)) \
	H(curl_multi_setopt) \
	F(CURLMcode, curl_multi_add_handle, (CURLM *m, CURL *h), (m, h)) \
	F(CURLMcode, curl_multi_remove_handle, (CURLM *m, CURL *h), (m, h)) \
	F(CURLMcode, curl_multi_assign, (CURLM *m, curl_socket_t s, void *p), (m, s, p)) \
	F(CURLMcode, curl_multi_socket_action, (CURLM *m, curl_socket_t s, int ev, int *running), \
	  (m, s, ev, running)) \
	F(CURLMsg *, curl_multi_info_read, (CURLM *m, int *left), (m, left)) \
	F(const char *, curl_multi_strerror, (CURLMcode c), (c)) \
	F(struct curl_slist *, curl_slist_append, (struct curl_slist *l, const char *s), (l, s)) \
	V(curl_slist_free_all, (struct curl_slist *l), (l))

RY_LAZYLIB(curl, CURL_SYMBOLS, "libcurl.so.4", "libcurl4")

/* Any callback: curl.h gives each option's callback its own type, and
 * libcurl reads the pointer back as that type. */
typedef void (*any_callback)(void);

/*
 * curl_easy_setopt and curl_multi_setopt: the one argument is read as the
 * type its option's number says (curl.h's CURLOPTTYPE_* ranges, which
 * multi options use too) and passed on; an option outside them is unknown
 * and its argument is not read.
 */
#define SETOPT(name, handle_type, option_type, code_type, unknown) \
	code_type name(handle_type *h, option_type option, ...) \
	{ \
		code_type rc = unknown; \
		long n = (long)option; \
		va_list ap; \
		load(); \
		va_start(ap, option); \
		switch (n >= 0 ? n - n % 10000 : -1) { \
		case CURLOPTTYPE_LONG: \
			rc = real.name(h, option, va_arg(ap, long)); \
			break; \
		case CURLOPTTYPE_OBJECTPOINT: \
			rc = real.name(h, option, va_arg(ap, void *)); \
			break; \
		case CURLOPTTYPE_FUNCTIONPOINT: \
			rc = real.name(h, option, va_arg(ap, any_callback)); \
			break; \
		case CURLOPTTYPE_OFF_T: \
			rc = real.name(h, option, va_arg(ap, curl_off_t)); \
			break; \
		case CURLOPTTYPE_BLOB: \
			rc = real.name(h, option, va_arg(ap, struct curl_blob *)); \
			break; \
		} \
		va_end(ap); \
		return rc; \
	}

SETOPT(curl_easy_setopt, CURL, CURLoption, CURLcode, CURLE_UNKNOWN_OPTION)
SETOPT(curl_multi_setopt, CURLM, CURLMoption, CURLMcode, CURLM_UNKNOWN_OPTION)

/* Its one argument is always a pointer to where the answer goes. */
CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
	va_list ap;
	load();
	va_start(ap, info);
	void *out = va_arg(ap, void *);
	va_end(ap);
	return real.curl_easy_getinfo(h, info, out);
}
