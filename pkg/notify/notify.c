#include "notify/notify.h"

#include <systemd/sd-daemon.h>

void ry_notify_ready(const char *status)
{
	(void)sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void ry_notify_status(const char *status)
{
	(void)sd_notifyf(0, "STATUS=%s", status);
}

void ry_notify_stopping(void)
{
	(void)sd_notify(0, "STOPPING=1");
}

void ry_notify_reloading(void)
{
	(void)sd_notify(0, "RELOADING=1");
}

void ry_notify_watchdog(void)
{
	(void)sd_notify(0, "WATCHDOG=1");
}
