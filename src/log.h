/*
 * log: one place every message of the daemon goes through.  Under systemd
 * (JOURNAL_STREAM names our stderr) each event is sent natively to the
 * journal with structured fields (PRIORITY, MESSAGE, MESSAGE_ID,
 * NETSOCK_*); elsewhere one readable line on stderr with a timestamp and
 * the level.  Levels are syslog priorities (LOG_ERR .. LOG_DEBUG).
 */
#ifndef NETSOCK_LOG_H
#define NETSOCK_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <syslog.h>

/* Stable MESSAGE_IDs (128-bit, journalctl MESSAGE_ID=...). */
#define LOG_ID_START		"8c1f5a3e0b6d4f7a9e2c4d6b8a0f1e37"
#define LOG_ID_STOP		"2d7e9b1c4a6f48e0b3d5c7a9e1f20b64"
#define LOG_ID_RELOAD_OK	"5b3a9d7f1e2c4b6a8d0f2e4c6a8b0d19"
#define LOG_ID_RELOAD_FAILED	"e6c4a2f0d8b64e2a9c7e5b3d1f9a7c05"
#define LOG_ID_LOGIN_FAILED	"a1d3f5b7c9e04a2c8e6b4d2f0a8c6e53"
#define LOG_ID_KICK		"f3b5d7e9a1c34e5a7c9e1b3d5f7a9c21"
#define LOG_ID_BAN		"3e5c7a9b1d2f4e6a8c0b2d4f6e8a0c72"
#define LOG_ID_SLOW_READER	"9a7c5e3b1d0f4a2c6e8b0d2f4a6c8e90"
#define LOG_ID_RATE_LIMITED	"7c9e1a3b5d6f48a0c2e4b6d8f0a2c4e6"

/* A structured field: NETSOCK_<key>=<value>.  Both borrowed. */
struct log_field {
	const char	*key;		/* "SESSION", "USER", "PEER", "REASON" */
	const char	*value;
};

void	log_init(const char *progname);
/* Send everything to syslog from now on (--daemon: no stderr left). */
void	log_use_syslog(void);
void	log_set_level(int priority);
int	log_get_level(void);
/* Whether the journal is where our messages go (JOURNAL_STREAM). */
int	log_to_journal(void);

/* The general entry point: priority, optional MESSAGE_ID, fields. */
void	log_emit(int priority, const char *message_id,
	    const struct log_field *fields, size_t nfields,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_warn appends ": strerror(errno)". */
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Copy client-supplied text into dst (size bytes) so it is safe in one log
 * line: control characters, quotes, backslashes and non-ASCII bytes become
 * \xNN escapes; truncated with "..." if it does not fit.  Returns dst.
 */
char	*log_escape(const char *src, size_t len, char *dst, size_t size);

/*
 * Build the journal fields for one message (exposed for unit tests): fills
 * at most max strings "KEY=value" into out (each malloc'd; caller frees)
 * and returns how many.  Order: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER,
 * MESSAGE_ID (if any), then NETSOCK_<key> for each field.
 */
size_t	log_journal_fields(int priority, const char *message_id,
	    const struct log_field *fields, size_t nfields,
	    const char *message, char **out, size_t max);

#endif
