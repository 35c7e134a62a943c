/*
 * For the wrapper files of pkg/lazylib only (lib*.c): one library opened
 * once, its functions forwarded.  A file lists its library's symbols in an
 * X-macro LIST(F, V, H), one line each:
 *
 *   F(ret, name, (params), (args))   returns a value: wrapper generated
 *   V(name, (params), (args))        returns void: wrapper generated
 *   H(name)                          wrapper written by hand (variadic, data)
 *
 * then invokes RY_LAZYLIB(id, LIST, soname, package).  That defines
 * ry_lazylib_load_<id>() (opens the library and looks up every listed
 * symbol, once, thread-safe), `real` (a pointer per symbol, typed from the
 * library's own declaration, so the compiler checks each wrapper against
 * the header), load() for the hand-written wrappers, and the F and V
 * wrappers.  Everything after it in the file has hidden visibility: the
 * executable never exports a wrapper, so a library can never bind to one.
 */
#ifndef RY_LAZYLIB_WRAP_H
#define RY_LAZYLIB_WRAP_H

#include "core/core.h"
#include "lazylib/lazylib.h"

#include <pthread.h>
#include <stdarg.h>

struct ry_lazylib {
	const char *soname;	/* what dlopen opens: "libcurl.so.4" */
	const char *package;	/* the Debian package that ships it */
	void *handle;		/* dlopen's, once opened */
};

/* Opens lib (RTLD_NOW | RTLD_LOCAL), or exits 70 saying what failed. */
void ry_lazylib_open(struct ry_lazylib *lib);
/* The address of name in the opened lib, or exits 70 saying so. */
void *ry_lazylib_sym(const struct ry_lazylib *lib, const char *name);

#define RY_LAZY_PTR(name) __typeof__(name) *name;
#define RY_LAZY_PTR_F(ret, name, params, args) RY_LAZY_PTR(name)
#define RY_LAZY_PTR_V(name, params, args) RY_LAZY_PTR(name)

/* POSIX lets dlsym's void * become a function pointer. */
#define RY_LAZY_SYM(name) real.name = (__typeof__(name) *)ry_lazylib_sym(&lib, #name);
#define RY_LAZY_SYM_F(ret, name, params, args) RY_LAZY_SYM(name)
#define RY_LAZY_SYM_V(name, params, args) RY_LAZY_SYM(name)

#define RY_LAZY_WRAP_F(ret, name, params, args) \
	ret name params { load(); return real.name args; }
#define RY_LAZY_WRAP_V(name, params, args) \
	void name params { load(); real.name args; }
#define RY_LAZY_WRAP_H(name)

/*
 * In a printf-like wrapper: declares char *var, what its format (the last
 * named parameter) and arguments make, for the caller to free.  The library
 * gets it as "%s": a va_list cannot be passed on through "...".
 */
#define RY_LAZY_FORMAT(var, format) \
	char *var; \
	do { \
		struct ry_buf b_ = RY_BUF_INIT; \
		va_list ap_; \
		va_start(ap_, format); \
		ry_buf_vprintf(&b_, format, ap_); \
		va_end(ap_); \
		var = ry_buf_detach(&b_); \
	} while (0)

#define RY_LAZYLIB(id, LIST, soname, package) \
	_Pragma("GCC visibility push(hidden)") \
	static struct { LIST(RY_LAZY_PTR_F, RY_LAZY_PTR_V, RY_LAZY_PTR) } real; \
	static struct ry_lazylib lib = { soname, package, NULL }; \
	static void resolve(void) \
	{ \
		ry_lazylib_open(&lib); \
		LIST(RY_LAZY_SYM_F, RY_LAZY_SYM_V, RY_LAZY_SYM) \
	} \
	void ry_lazylib_load_##id(void) \
	{ \
		static pthread_once_t once = PTHREAD_ONCE_INIT; \
		pthread_once(&once, resolve); \
	} \
	static void load(void) { ry_lazylib_load_##id(); } \
	LIST(RY_LAZY_WRAP_F, RY_LAZY_WRAP_V, RY_LAZY_WRAP_H)

#endif
