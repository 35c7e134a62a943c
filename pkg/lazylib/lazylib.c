#include "lazylib/wrap.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sysexits.h>

/*
 * Exits rather than returning an error: the wrappers have the libraries'
 * signatures, which cannot say "not installed", and a missing library is
 * a broken install, as it was when the binary would not start without it.
 */
static void broken_install(const struct ry_lazylib *lib)
{
	const char *why = dlerror();
	fprintf(stderr, "railyard: error: cannot load %s: %s; install %s (scripts/install-deps.sh)\n",
		lib->soname, why ? why : "unknown error", lib->package);
	exit(EX_SOFTWARE);
}

void ry_lazylib_open(struct ry_lazylib *lib)
{
	lib->handle = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
	if (!lib->handle)
		broken_install(lib);
}

void *ry_lazylib_sym(const struct ry_lazylib *lib, const char *name)
{
	void *p = dlsym(lib->handle, name);
	if (!p)
		broken_install(lib);
	return p;
}

void ry_lazylib_load_all(void)
{
	ry_lazylib_load_curl();
	ry_lazylib_load_xml();
	ry_lazylib_load_archive();
	ry_lazylib_load_systemd();
	ry_lazylib_load_gssapi();
	ry_lazylib_load_ldap();
	ry_lazylib_load_crypto();
	ry_lazylib_load_ssl();
}
