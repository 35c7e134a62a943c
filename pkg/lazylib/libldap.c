/*
 * libldap on first use (lazylib.h), for the libpq linked into the binary
 * (Makefile: libpq.a): the functions its LDAP lookup of connection
 * parameters calls (a service file's "ldap://" line), which most
 * installations never use.  libldap brought 11 more libraries with it
 * (GnuTLS, SASL, ...) into every start.
 */
#define LDAP_DEPRECATED 1	/* libpq calls ldap_init, ldap_simple_bind, ... */
#include <ldap.h>

#include "lazylib/wrap.h"

#define LDAP_SYMBOLS(F, V, H) \
	F(int, ldap_count_entries, (LDAP *ld, LDAPMessage *chain), (ld, chain)) \
	F(char *, ldap_err2string, (int err), (err)) \
	F(LDAPMessage *, ldap_first_entry, (LDAP *ld, LDAPMessage *chain), (ld, chain)) \
	F(struct berval **, ldap_get_values_len, (LDAP *ld, LDAPMessage *entry, const char *attr), \
	  (ld, entry, attr)) \
	F(LDAP *, ldap_init, (const char *host, int port), (host, port)) \
	F(int, ldap_msgfree, (LDAPMessage *lm), (lm)) \
	F(int, ldap_result, \
	  (LDAP *ld, int msgid, int all, struct timeval *timeout, LDAPMessage **result), \
	  (ld, msgid, all, timeout, result)) \
	F(int, ldap_search_st, \
	  (LDAP *ld, const char *base, int scope, const char *filter, char **attrs, int attrsonly, \
	   struct timeval *timeout, LDAPMessage **res), \
	  (ld, base, scope, filter, attrs, attrsonly, timeout, res)) \
	F(int, ldap_set_option, (LDAP *ld, int option, const void *value), (ld, option, value)) \
	F(int, ldap_simple_bind, (LDAP *ld, const char *who, const char *passwd), (ld, who, passwd)) \
	F(int, ldap_unbind, (LDAP *ld), (ld)) \
	V(ldap_value_free_len, (struct berval **vals), (vals))

RY_LAZYLIB(ldap, LDAP_SYMBOLS, "libldap-2.5.so.0", "libldap-2.5-0")
