/* notify: sd_notify messages and the watchdog timer. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "notify.h"

static struct event	*notify_watchdog_ev;

static void
notify_watchdog_cb(int fd, short what, void *arg)
{
	sd_notify(0, "WATCHDOG=1");
}

void
notify_init(struct event_base *base)
{
	uint64_t	 usec;
	struct timeval	 tv;

	/* 0: no watchdog; < 0: bad environment, nothing to honour either. */
	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return;
	usec /= 2;	/* ping at half the interval, as systemd advises */
	tv.tv_sec = (time_t)(usec / 1000000);
	tv.tv_usec = (suseconds_t)(usec % 1000000);
	notify_watchdog_ev = event_new(base, -1, EV_PERSIST,
	    notify_watchdog_cb, NULL);
	event_add(notify_watchdog_ev, &tv);
	sd_notify(0, "WATCHDOG=1");
	log_debug("notify: watchdog every %llu us", (unsigned long long)usec);
}

void
notify_free(void)
{
	if (notify_watchdog_ev != NULL)
		event_free(notify_watchdog_ev);
	notify_watchdog_ev = NULL;
}

void
notify_ready(const char *status)
{
	sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void
notify_reloading(void)
{
	struct timespec	 ts;

	/* systemd >= 253 wants MONOTONIC_USEC with RELOADING=1. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000ULL);
}

void
notify_stopping(const char *status)
{
	sd_notifyf(0, "STOPPING=1\nSTATUS=%s", status);
}

void
notify_status(const char *fmt, ...)
{
	char	 buf[256];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	sd_notifyf(0, "STATUS=%s", buf);
}
