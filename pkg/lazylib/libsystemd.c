/* libsystemd on first use (lazylib.h).  The functions pkg/notify calls. */
#include <stdlib.h>
#include <systemd/sd-daemon.h>

#include "lazylib/wrap.h"

#define SYSTEMD_SYMBOLS(F, V, H) \
	F(int, sd_notify, (int unset_environment, const char *state), (unset_environment, state)) \
	H(sd_notifyf)

RY_LAZYLIB(systemd, SYSTEMD_SYMBOLS, "libsystemd.so.0", "libsystemd0")

int sd_notifyf(int unset_environment, const char *format, ...)
{
	RY_LAZY_FORMAT(state, format);
	load();
	int rc = real.sd_notifyf(unset_environment, "%s", state);
	free(state);
	return rc;
}
