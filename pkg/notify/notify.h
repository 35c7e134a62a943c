/*
 * notify: tells systemd how the worker is doing (sd_notify).  A no-op when
 * not started by systemd.  The only module that calls libsystemd (through
 * pkg/lazylib, which loads it on first use).
 */
#ifndef RY_NOTIFY_H
#define RY_NOTIFY_H

#include "core/core.h"

void ry_notify_ready(const char *status);
void ry_notify_status(const char *status);
void ry_notify_stopping(void);
void ry_notify_reloading(void);
/* Pets the watchdog, when systemd asked for one (WatchdogSec=). */
void ry_notify_watchdog(void);

#endif
