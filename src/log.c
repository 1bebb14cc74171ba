/*
 * log: every message of the daemon, to the journal (natively, with
 * structured fields), to syslog (--daemon), or as one line on stderr.
 */
#include <sys/stat.h>
#include <sys/uio.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "log.h"
#include "xmalloc.h"

#define LOG_MAX_FIELDS	16
#define LOG_LINE_MAX	2048

enum log_sink { LOG_SINK_STDERR, LOG_SINK_JOURNAL, LOG_SINK_SYSLOG };

static const char	*log_progname = "netsockd";
static int		 log_level = LOG_INFO;
static enum log_sink	 log_sink = LOG_SINK_STDERR;

static const char *const log_level_names[] = {
	[LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
	[LOG_ERR] = "error", [LOG_WARNING] = "warning",
	[LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

/*
 * systemd sets JOURNAL_STREAM to "DEV:INODE" of the stream it connected to
 * our stderr; only when they match is stderr really the journal (a child
 * with redirected stderr inherits the variable but not the stream).
 */
static bool
log_stderr_is_journal(void)
{
	const char		*js = getenv("JOURNAL_STREAM");
	unsigned long long	 dev, ino;
	struct stat		 st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) == -1)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

void
log_init(const char *progname)
{
	log_progname = progname;
	log_sink = log_stderr_is_journal() ? LOG_SINK_JOURNAL : LOG_SINK_STDERR;
}

void
log_use_syslog(void)
{
	openlog(log_progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_sink = LOG_SINK_SYSLOG;
}

void
log_set_level(int priority)
{
	log_level = priority;
}

int
log_get_level(void)
{
	return log_level;
}

int
log_to_journal(void)
{
	return log_sink == LOG_SINK_JOURNAL;
}

char *
log_escape(const char *src, size_t len, char *dst, size_t size)
{
	static const char	 hex[] = "0123456789abcdef";
	size_t			 i, o = 0;
	unsigned char		 ch;

	if (size == 0)
		return dst;
	for (i = 0; i < len; i++) {
		ch = (unsigned char)src[i];
		if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') {
			if (o + 1 >= size)
				goto truncated;
			dst[o++] = (char)ch;
		} else {
			if (o + 4 >= size)
				goto truncated;
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[ch >> 4];
			dst[o++] = hex[ch & 0xf];
		}
	}
	dst[o] = '\0';
	return dst;
truncated:
	if (size >= 4) {
		if (o > size - 4)
			o = size - 4;
		memcpy(dst + o, "...", 4);
	} else
		dst[0] = '\0';
	return dst;
}

size_t
log_journal_fields(int priority, const char *message_id,
    const struct log_field *fields, size_t nfields, const char *message,
    char **out, size_t max)
{
	size_t	 n = 0, i;

	if (n < max)
		xasprintf(&out[n++], "MESSAGE=%s", message);
	if (n < max)
		xasprintf(&out[n++], "PRIORITY=%d", priority);
	if (n < max)
		xasprintf(&out[n++], "SYSLOG_IDENTIFIER=%s", log_progname);
	if (message_id != NULL && n < max)
		xasprintf(&out[n++], "MESSAGE_ID=%s", message_id);
	for (i = 0; i < nfields && n < max; i++) {
		if (fields[i].value == NULL)
			continue;
		xasprintf(&out[n++], "NETSOCK_%s=%s", fields[i].key,
		    fields[i].value);
	}
	return n;
}

static void
log_to_stderr(int priority, const char *message)
{
	struct timespec	 ts;
	struct tm	 tm;
	char		 when[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ %s: %s\n", when, ts.tv_nsec / 1000000,
	    log_level_names[priority & 7], message);
}

static void log_vemit(int, const char *, const struct log_field *, size_t,
    const char *, va_list) __attribute__((format(printf, 5, 0)));

static void
log_vemit(int priority, const char *message_id, const struct log_field *fields,
    size_t nfields, const char *fmt, va_list ap)
{
	char		 message[LOG_LINE_MAX];
	char		*strs[LOG_MAX_FIELDS + 4];
	struct iovec	 iov[LOG_MAX_FIELDS + 4];
	size_t		 n, i;

	if (priority > log_level)
		return;
	vsnprintf(message, sizeof(message), fmt, ap);
	switch (log_sink) {
	case LOG_SINK_JOURNAL:
		n = log_journal_fields(priority, message_id, fields, nfields,
		    message, strs, LOG_MAX_FIELDS + 4);
		for (i = 0; i < n; i++) {
			iov[i].iov_base = strs[i];
			iov[i].iov_len = strlen(strs[i]);
		}
		if (sd_journal_sendv(iov, (int)n) < 0)
			log_to_stderr(priority, message);
		for (i = 0; i < n; i++)
			free(strs[i]);
		break;
	case LOG_SINK_SYSLOG:
		syslog(priority, "%s", message);
		break;
	case LOG_SINK_STDERR:
		log_to_stderr(priority, message);
		break;
	}
}

void
log_emit(int priority, const char *message_id, const struct log_field *fields,
    size_t nfields, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vemit(priority, message_id, fields, nfields, fmt, ap);
	va_end(ap);
}

#define LOG_SIMPLE(name, prio)						\
void									\
name(const char *fmt, ...)						\
{									\
	va_list	 ap;							\
									\
	va_start(ap, fmt);						\
	log_vemit(prio, NULL, NULL, 0, fmt, ap);			\
	va_end(ap);							\
}
LOG_SIMPLE(log_debug, LOG_DEBUG)
LOG_SIMPLE(log_info, LOG_INFO)
LOG_SIMPLE(log_notice, LOG_NOTICE)
LOG_SIMPLE(log_warnx, LOG_WARNING)
LOG_SIMPLE(log_error, LOG_ERR)

void
log_warn(const char *fmt, ...)
{
	char	 buf[LOG_LINE_MAX];
	int	 saved = errno;
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_emit(LOG_WARNING, NULL, NULL, 0, "%s: %s", buf, strerror(saved));
}
