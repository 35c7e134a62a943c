/*
 * libgssapi_krb5 on first use (lazylib.h), for the libpq linked into the
 * binary (Makefile: libpq.a): the functions its GSSAPI authentication and
 * encryption call.  A connection over a Unix socket never calls them; one
 * over TCP asks for a Kerberos credential cache (gss_acquire_cred), which
 * opens the library then.
 */
#include <gssapi/gssapi.h>

#include "lazylib/wrap.h"

#define GSSAPI_SYMBOLS(F, V, H) \
	F(OM_uint32, gss_acquire_cred, \
	  (OM_uint32 *minor, gss_name_t name, OM_uint32 time_req, gss_OID_set mechs, \
	   gss_cred_usage_t usage, gss_cred_id_t *cred, gss_OID_set *actual_mechs, \
	   OM_uint32 *time_rec), \
	  (minor, name, time_req, mechs, usage, cred, actual_mechs, time_rec)) \
	F(OM_uint32, gss_delete_sec_context, \
	  (OM_uint32 *minor, gss_ctx_id_t *ctx, gss_buffer_t token), (minor, ctx, token)) \
	F(OM_uint32, gss_display_status, \
	  (OM_uint32 *minor, OM_uint32 status, int type, gss_OID mech, OM_uint32 *more, \
	   gss_buffer_t text), \
	  (minor, status, type, mech, more, text)) \
	H(gss_import_name) \
	F(OM_uint32, gss_init_sec_context, \
	  (OM_uint32 *minor, gss_cred_id_t cred, gss_ctx_id_t *ctx, gss_name_t target, \
	   gss_OID mech, OM_uint32 flags, OM_uint32 time_req, gss_channel_bindings_t cb, \
	   gss_buffer_t in, gss_OID *actual_mech, gss_buffer_t out, OM_uint32 *ret_flags, \
	   OM_uint32 *time_rec), \
	  (minor, cred, ctx, target, mech, flags, time_req, cb, in, actual_mech, out, ret_flags, \
	   time_rec)) \
	F(OM_uint32, gss_release_buffer, (OM_uint32 *minor, gss_buffer_t buf), (minor, buf)) \
	F(OM_uint32, gss_release_cred, (OM_uint32 *minor, gss_cred_id_t *cred), (minor, cred)) \
	F(OM_uint32, gss_release_name, (OM_uint32 *minor, gss_name_t *name), (minor, name)) \
	F(OM_uint32, gss_unwrap, \
	  (OM_uint32 *minor, gss_ctx_id_t ctx, gss_buffer_t in, gss_buffer_t out, int *conf, \
	   gss_qop_t *qop), \
	  (minor, ctx, in, out, conf, qop)) \
	F(OM_uint32, gss_wrap, \
	  (OM_uint32 *minor, gss_ctx_id_t ctx, int conf_req, gss_qop_t qop, gss_buffer_t in, \
	   int *conf, gss_buffer_t out), \
	  (minor, ctx, conf_req, qop, in, conf, out)) \
	F(OM_uint32, gss_wrap_size_limit, \
	  (OM_uint32 *minor, gss_ctx_id_t ctx, int conf_req, gss_qop_t qop, OM_uint32 req_out, \
	   OM_uint32 *max_in), \
	  (minor, ctx, conf_req, qop, req_out, max_in)) \
	H(GSS_C_NT_HOSTBASED_SERVICE)

RY_LAZYLIB(gssapi, GSSAPI_SYMBOLS, "libgssapi_krb5.so.2", "libgssapi-krb5-2")

/*
 * A name type is a variable of the library's, which libpq reads before
 * its first call could load the library: it reads ours, with the value
 * RFC 2744 gives it (1.2.840.113554.1.2.1.4), and gss_import_name passes
 * the library's own on.
 */
static gss_OID_desc hostbased_service = {
	10, (void *)"\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x04"
};
gss_OID GSS_C_NT_HOSTBASED_SERVICE = &hostbased_service;

OM_uint32 gss_import_name(OM_uint32 *minor, gss_buffer_t name, gss_OID type, gss_name_t *out)
{
	load();
	if (type == &hostbased_service)
		type = *real.GSS_C_NT_HOSTBASED_SERVICE;
	return real.gss_import_name(minor, name, type, out);
}
