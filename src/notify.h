/*
 * notify: what systemd is told about our state (sd_notify): READY,
 * RELOADING, STOPPING, STATUS, and WATCHDOG keep-alives when the unit
 * asks for them.  Harmless no-ops when not run by systemd.
 */
#ifndef NETSOCK_NOTIFY_H
#define NETSOCK_NOTIFY_H

struct event_base;

/* Start the watchdog timer if WATCHDOG_USEC asks for one. */
void	notify_init(struct event_base *base);
void	notify_free(void);
void	notify_ready(const char *status);
void	notify_reloading(void);
void	notify_stopping(const char *status);
void	notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
