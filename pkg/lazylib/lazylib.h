/*
 * lazylib: libcurl, libxml2, libarchive and libsystemd, libpq's GSSAPI
 * and LDAP libraries, and OpenSSL (libpq's and pkg/hash's), are opened
 * with dlopen when first called, not by the dynamic loader at every
 * start.  Most commands (submit,
 * status, cancel, --version) never call them, and loading them was most
 * of a start's time (docs/ARCHITECTURE.md, "Loading libraries").
 *
 * The rest of the code calls the libraries by their own names as before:
 * pkg/lazylib defines those functions (hidden, so the libraries never bind
 * to them) and forwards each call to the library's own.  A library or
 * symbol that cannot be loaded is a broken install: the process prints
 * one line naming it and the package, and exits 70 (EX_SOFTWARE).
 */
#ifndef RY_LAZYLIB_H
#define RY_LAZYLIB_H

/*
 * Loads them all now (exiting as above when one is missing), so a
 * long-running process fails at start rather than at its first webhook.
 */
void ry_lazylib_load_all(void);

/* Each library on its own; the wrappers call these before forwarding. */
void ry_lazylib_load_curl(void);
void ry_lazylib_load_xml(void);
void ry_lazylib_load_archive(void);
void ry_lazylib_load_systemd(void);
void ry_lazylib_load_gssapi(void);
void ry_lazylib_load_ldap(void);
void ry_lazylib_load_crypto(void);
void ry_lazylib_load_ssl(void);

#endif
