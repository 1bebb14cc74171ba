/* netsockctl: netsockd's admin tool; one request over the admin socket. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* explicit_bzero, timegm, wcwidth */
#endif
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include <jansson.h>

#include "admin_proto.h"
#include "proto.h"
#include "version.h"
#include "xmalloc.h"

#ifndef RUNSTATEDIR
#define RUNSTATEDIR		"/run"
#endif

#define CTL_SOCKET_DEFAULT	RUNSTATEDIR "/netsockd/admin.sock"
#define CTL_SOCKET_NAME		"admin.sock"
/* netsockd's own fallback state directory, relative to where it runs. */
#define CTL_STATE_LOCAL		"netsockd-state"
/* Seconds to wait for the daemon: reload and user add take a moment. */
#define CTL_TIMEOUT		30
#define CTL_REPLY_MAX		(64 * 1024 * 1024)
#define CTL_WORDS_MAX		2
/* One byte more than the daemon accepts, to tell "too long" apart. */
#define CTL_PASSWORD_SIZE	(PROTO_PASSWORD_MAX + 2)

#define nitems(a)		(sizeof(a) / sizeof((a)[0]))

struct ctl_opts {
	const char	*socket;	/* -s; NULL: look for it */
	bool		 json;
};

struct ctl_cmd;
/* Add the command's arguments to the request; -1 (after saying why) if bad. */
typedef int	 ctl_build_fn(const struct ctl_cmd *, json_t *, int,
		    char **);
/* Print a successful reply for people. */
typedef void	 ctl_print_fn(const struct ctl_cmd *, json_t *, int,
		    char **);

/*
 * One command.  Its words are matched against argv (the longest match
 * wins, so "kick --session" beats "kick"); the arguments after them are
 * counted against min_args and max_args (-1: any number, for a REASON).
 */
struct ctl_cmd {
	const char	*words[CTL_WORDS_MAX];
	const char	*args;		/* for usage lines */
	int		 min_args;
	int		 max_args;
	const char	*wire;		/* "command"; NULL: local */
	ctl_build_fn	*build;
	ctl_print_fn	*print;
	const char	*done;		/* what ctl_print_done says */
	const char	*help;
};

/* A column of a table printed for people. */
struct ctl_col {
	const char	*header;
	bool		 right;		/* numbers: aligned right */
};

/* Rows of cells (sanitized, owned), printed with widths from the data. */
struct ctl_table {
	const struct ctl_col	*cols;
	size_t			 ncols;
	char			**cells;	/* nrows * ncols */
	size_t			 nrows;
};

/* Where a field of "stats" goes and how it reads. */
enum ctl_kind {
	CTL_KIND_COUNT,
	CTL_KIND_BYTES,
	CTL_KIND_DURATION,
	CTL_KIND_STRING,
};

static ctl_build_fn	ctl_build_none;
static ctl_build_fn	ctl_build_user;
static ctl_build_fn	ctl_build_user_reason;
static ctl_build_fn	ctl_build_session_reason;
static ctl_build_fn	ctl_build_user_password;
static ctl_print_fn	ctl_print_stats;
static ctl_print_fn	ctl_print_sessions;
static ctl_print_fn	ctl_print_rooms;
static ctl_print_fn	ctl_print_users;
static ctl_print_fn	ctl_print_kick;
static ctl_print_fn	ctl_print_ban;
static ctl_print_fn	ctl_print_unban;
static ctl_print_fn	ctl_print_user;
static ctl_print_fn	ctl_print_done;

static const struct ctl_cmd ctl_cmds[] = {
	{ { "stats" }, "", 0, 0, "stats", ctl_build_none, ctl_print_stats,
	  NULL, "uptime, connections, traffic and other counters" },
	{ { "sessions" }, "", 0, 0, "sessions", ctl_build_none,
	  ctl_print_sessions, NULL,
	  "list connections with user, address and traffic" },
	{ { "kick" }, "USER [REASON]", 1, -1, "kick", ctl_build_user_reason,
	  ctl_print_kick, NULL, "close every session of USER, telling it why" },
	{ { "kick", "--session" }, "ID [REASON]", 1, -1, "kick",
	  ctl_build_session_reason, ctl_print_kick, NULL,
	  "close the session with this ID, telling it why" },
	{ { "ban" }, "USER [REASON]", 1, -1, "ban", ctl_build_user_reason,
	  ctl_print_ban, NULL,
	  "refuse USER's logins and close their sessions" },
	{ { "unban" }, "USER", 1, 1, "unban", ctl_build_user, ctl_print_unban,
	  NULL, "lift the ban on USER" },
	{ { "user", "add" }, "USER", 1, 1, "user-add",
	  ctl_build_user_password, ctl_print_user, "added",
	  "create an account (password from stdin)" },
	{ { "user", "del" }, "USER", 1, 1, "user-del", ctl_build_user,
	  ctl_print_user, "deleted",
	  "delete an account and close its sessions" },
	{ { "user", "passwd" }, "USER", 1, 1, "user-passwd",
	  ctl_build_user_password, ctl_print_user, "password changed",
	  "set a new password (from stdin)" },
	{ { "user", "list" }, "", 0, 0, "user-list", ctl_build_none,
	  ctl_print_users, NULL, "list the accounts" },
	{ { "rooms" }, "", 0, 0, "rooms", ctl_build_none, ctl_print_rooms,
	  NULL, "list the rooms with member counts and topics" },
	{ { "reload" }, "", 0, 0, "reload", ctl_build_none, ctl_print_done,
	  "configuration reloaded",
	  "reload configuration and certificate (SIGHUP)" },
	{ { "shutdown" }, "", 0, 0, "shutdown", ctl_build_none, ctl_print_done,
	  "netsockd is shutting down", "stop netsockd gracefully (SIGTERM)" },
	{ { "help" }, "[COMMAND]", 0, CTL_WORDS_MAX, NULL, NULL, NULL, NULL,
	  "show this list, or how to use COMMAND" },
};

static const struct {
	const char	*key;
	const char	*label;
	enum ctl_kind	 kind;
	const char	*none;		/* shown for null */
} ctl_stats_fields[] = {
	{ "version", "version", CTL_KIND_STRING, "-" },
	{ "pid", "pid", CTL_KIND_COUNT, "-" },
	{ "uptime_seconds", "uptime", CTL_KIND_DURATION, "-" },
	{ "connections", "connections", CTL_KIND_COUNT, "-" },
	{ "connections_total", "connections total", CTL_KIND_COUNT, "-" },
	{ "connections_rejected", "connections rejected", CTL_KIND_COUNT, "-" },
	{ "sessions", "sessions", CTL_KIND_COUNT, "-" },
	{ "users_online", "users online", CTL_KIND_COUNT, "-" },
	{ "rooms", "rooms", CTL_KIND_COUNT, "-" },
	{ "messages_stored", "messages stored", CTL_KIND_COUNT, "-" },
	{ "messages_in", "messages in", CTL_KIND_COUNT, "-" },
	{ "messages_out", "messages out", CTL_KIND_COUNT, "-" },
	{ "bytes_in", "bytes in", CTL_KIND_BYTES, "-" },
	{ "bytes_out", "bytes out", CTL_KIND_BYTES, "-" },
	{ "tls_handshake_failures", "TLS handshakes failed", CTL_KIND_COUNT,
	  "-" },
	{ "rate_limited", "rate limited", CTL_KIND_COUNT, "-" },
	{ "kicks", "kicks", CTL_KIND_COUNT, "-" },
	{ "slow_readers", "slow readers cut off", CTL_KIND_COUNT, "-" },
	{ "config", "configuration", CTL_KIND_STRING,
	  "none (built-in defaults)" },
	{ "database", "database", CTL_KIND_STRING, "-" },
	{ "database_bytes", "database size", CTL_KIND_BYTES, "-" },
};

static const struct option ctl_longopts[] = {
	{ "socket",	required_argument,	NULL,	's' },
	{ "json",	no_argument,		NULL,	'j' },
	{ "help",	no_argument,		NULL,	'h' },
	{ "version",	no_argument,		NULL,	'V' },
	{ NULL,		0,			NULL,	0 }
};

/* Signals that must not leave the terminal without echo. */
static const int ctl_tty_signals[] = {
	SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTSTP, SIGTTIN, SIGTTOU
};
static volatile sig_atomic_t ctl_signo;

static void	ctl_cmd_synopsis(const struct ctl_cmd *, char *, size_t);

static void
ctl_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Every failure is one line on stderr, prefixed with our name. */
static void
ctl_warnx(const char *fmt, ...)
{
	va_list	 ap;

	fflush(stdout);
	fputs("netsockctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---------------------------------------------------------- formatting */

/* Seconds for people: 45s, 5m12s, 3h12m, 2d4h (two units at most). */
static void
ctl_human_duration(int64_t secs, char *buf, size_t len)
{
	long long	 s = secs < 0 ? 0 : secs;

	if (s < 60)
		snprintf(buf, len, "%llds", s);
	else if (s < 3600)
		snprintf(buf, len, "%lldm%llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%lldh%lldm", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, len, "%lldd%lldh", s / 86400, s % 86400 / 3600);
}

/* Bytes for people: 512 B, 1.2 KiB, 3.4 MiB, 5.6 GiB (binary units). */
static void
ctl_human_bytes(uint64_t n, char *buf, size_t len)
{
	static const char *const units[] = {
		"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"
	};
	double	 v;
	size_t	 i;

	if (n < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", n);
		return;
	}
	/* 1023.95 would print as "1024.0": move up a unit instead. */
	v = (double)n / 1024.0;
	for (i = 0; i < nitems(units) - 1 && v >= 1023.95; i++)
		v /= 1024.0;
	snprintf(buf, len, "%.1f %s", v, units[i]);
}

/* An RFC 3339 UTC timestamp ("2026-11-21T10:30:00.123Z") as time_t. */
static int
ctl_parse_time(const char *ts, time_t *t)
{
	struct tm	 tm;
	const char	*rest;

	memset(&tm, 0, sizeof(tm));
	if ((rest = strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return -1;
	if (*rest == '.')
		rest += 1 + strspn(rest + 1, "0123456789");
	if (strcmp(rest, "Z") != 0)
		return -1;
	if ((*t = timegm(&tm)) == (time_t)-1)
		return -1;
	return 0;
}

/*
 * Strings from the daemon include what clients typed (topics, say): never
 * let them drive the terminal.  Control characters (C0, DEL and C1) are
 * shown as escapes.  Returns a new string; free it.
 */
static char *
ctl_sanitize(const char *s, size_t len)
{
	const unsigned char	*u = (const unsigned char *)s;
	char			*out = xmalloc(len * 4 + 1);
	size_t			 i, o = 0;

	for (i = 0; i < len; i++) {
		if (u[i] < 0x20 || u[i] == 0x7f)
			o += (size_t)sprintf(out + o, "\\x%02x", u[i]);
		else if (u[i] == 0xc2 && i + 1 < len && u[i + 1] >= 0x80 &&
		    u[i + 1] <= 0x9f)
			o += (size_t)sprintf(out + o, "\\u%04x", u[++i]);
		else
			out[o++] = (char)u[i];
	}
	out[o] = '\0';
	return out;
}

/* Terminal columns of a string; one per character the locale cannot read. */
static size_t
ctl_width(const char *s)
{
	mbstate_t	 ps;
	size_t		 left = strlen(s), n, w = 0;
	wchar_t		 wc;
	int		 cw;

	memset(&ps, 0, sizeof(ps));
	while (left > 0) {
		n = mbrtowc(&wc, s, left, &ps);
		if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
			/* Not in this locale's charset: count UTF-8 leaders. */
			memset(&ps, 0, sizeof(ps));
			if (((unsigned char)*s & 0xc0) != 0x80)
				w++;
			s++;
			left--;
			continue;
		}
		if ((cw = wcwidth(wc)) > 0)
			w += (size_t)cw;
		s += n;
		left -= n;
	}
	return w;
}

/* ------------------------------------------------- reply fields as text */

/* A string field, sanitized; none for null or missing.  Free the result. */
static char *
ctl_fmt_string(json_t *obj, const char *key, const char *none)
{
	json_t	*v = json_object_get(obj, key);

	if (json_is_string(v))
		return ctl_sanitize(json_string_value(v),
		    json_string_length(v));
	return xstrdup(none);
}

static char *
ctl_fmt_count(json_t *obj, const char *key)
{
	json_t	*v = json_object_get(obj, key);
	char	*s;

	if (!json_is_integer(v))
		return xstrdup("-");
	xasprintf(&s, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	return s;
}

static char *
ctl_fmt_bytes(json_t *obj, const char *key)
{
	json_t		*v = json_object_get(obj, key);
	json_int_t	 n;
	char		 buf[32];

	/* Negative: the daemon could not tell (database_bytes). */
	if (!json_is_integer(v) || (n = json_integer_value(v)) < 0)
		return xstrdup("-");
	ctl_human_bytes((uint64_t)n, buf, sizeof(buf));
	return xstrdup(buf);
}

static char *
ctl_fmt_duration(json_t *obj, const char *key)
{
	json_t	*v = json_object_get(obj, key);
	char	 buf[32];

	if (!json_is_integer(v))
		return xstrdup("-");
	ctl_human_duration(json_integer_value(v), buf, sizeof(buf));
	return xstrdup(buf);
}

/* The time since a timestamp field, as a duration. */
static char *
ctl_fmt_since(json_t *obj, const char *key, time_t now)
{
	json_t	*v = json_object_get(obj, key);
	time_t	 t;
	char	 buf[32];

	if (!json_is_string(v) ||
	    ctl_parse_time(json_string_value(v), &t) == -1)
		return xstrdup("-");
	ctl_human_duration((int64_t)(now - t), buf, sizeof(buf));
	return xstrdup(buf);
}

/* A timestamp field to the second; people do not need milliseconds. */
static char *
ctl_fmt_time(json_t *obj, const char *key)
{
	json_t		*v = json_object_get(obj, key);
	struct tm	 tm;
	time_t		 t;
	char		 buf[32];

	if (!json_is_string(v))
		return xstrdup("-");
	if (ctl_parse_time(json_string_value(v), &t) == -1 ||
	    gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return ctl_fmt_string(obj, key, "-");
	return xstrdup(buf);
}

static char *
ctl_fmt_bool(json_t *obj, const char *key)
{
	json_t	*v = json_object_get(obj, key);

	if (!json_is_boolean(v))
		return xstrdup("-");
	return xstrdup(json_is_true(v) ? "yes" : "no");
}

static const char *
ctl_plural(json_int_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* ------------------------------------------------------------- tables */

static void
ctl_table_init(struct ctl_table *t, const struct ctl_col *cols, size_t ncols)
{
	memset(t, 0, sizeof(*t));
	t->cols = cols;
	t->ncols = ncols;
}

/* Append a row of ncols cells; the table takes them over. */
static void
ctl_table_add(struct ctl_table *t, char **row)
{
	t->cells = xreallocarray(t->cells, (t->nrows + 1) * t->ncols,
	    sizeof(*t->cells));
	memcpy(t->cells + t->nrows * t->ncols, row, t->ncols * sizeof(*row));
	t->nrows++;
}

static void
ctl_table_cell(const struct ctl_table *t, size_t col, const char *s,
    size_t width)
{
	size_t	 pad = width - ctl_width(s);
	bool	 last = col == t->ncols - 1;

	if (last && !t->cols[col].right && *s == '\0')
		return;		/* no trailing blanks */
	if (col > 0)
		fputs("  ", stdout);
	if (t->cols[col].right)
		printf("%*s", (int)pad, "");
	fputs(s, stdout);
	if (!t->cols[col].right && !last)
		printf("%*s", (int)pad, "");
}

/* Print the header and the rows with columns as wide as their data; free. */
static void
ctl_table_print(struct ctl_table *t)
{
	size_t	*width = xcalloc(t->ncols, sizeof(*width));
	size_t	 r, c, w;

	for (c = 0; c < t->ncols; c++)
		width[c] = ctl_width(t->cols[c].header);
	for (r = 0; r < t->nrows; r++)
		for (c = 0; c < t->ncols; c++)
			if ((w = ctl_width(t->cells[r * t->ncols + c])) >
			    width[c])
				width[c] = w;
	for (c = 0; c < t->ncols; c++)
		ctl_table_cell(t, c, t->cols[c].header, width[c]);
	putchar('\n');
	for (r = 0; r < t->nrows; r++) {
		for (c = 0; c < t->ncols; c++)
			ctl_table_cell(t, c, t->cells[r * t->ncols + c],
			    width[c]);
		putchar('\n');
	}
	for (r = 0; r < t->nrows * t->ncols; r++)
		free(t->cells[r]);
	free(t->cells);
	free(width);
}

/* An array field of the reply, or an empty one if the daemon left it out. */
static json_t *
ctl_list(json_t *reply, const char *key)
{
	json_t	*v = json_object_get(reply, key);

	return json_is_array(v) ? v : NULL;
}

/* ----------------------------------------------------------- printers */

/*
 * "label:" padded so that every value starts in the same column; a NULL
 * label continues the one above.
 */
static void
ctl_print_pair(const char *label, size_t width, const char *value)
{
	if (label == NULL)
		printf("%*s%s\n", (int)width + 2, "", value);
	else
		printf("%s:%*s%s\n", label, (int)(width - strlen(label) + 1),
		    "", value);
}

static char *
ctl_stats_value(json_t *reply, size_t i)
{
	const char	*key = ctl_stats_fields[i].key;

	switch (ctl_stats_fields[i].kind) {
	case CTL_KIND_COUNT:
		return ctl_fmt_count(reply, key);
	case CTL_KIND_BYTES:
		return ctl_fmt_bytes(reply, key);
	case CTL_KIND_DURATION:
		return ctl_fmt_duration(reply, key);
	case CTL_KIND_STRING:
		break;
	}
	return ctl_fmt_string(reply, key, ctl_stats_fields[i].none);
}

/* Each listener on its own line, with its connection count lined up. */
static void
ctl_print_listeners(json_t *list, size_t width)
{
	json_t		*l, *n;
	char		*addr, *value;
	size_t		 i, aw = 0;
	json_int_t	 count;

	json_array_foreach(list, i, l) {
		addr = ctl_fmt_string(l, "address", "?");
		if (ctl_width(addr) > aw)
			aw = ctl_width(addr);
		free(addr);
	}
	json_array_foreach(list, i, l) {
		addr = ctl_fmt_string(l, "address", "?");
		n = json_object_get(l, "connections");
		count = json_is_integer(n) ? json_integer_value(n) : 0;
		xasprintf(&value, "%s%*s  %" JSON_INTEGER_FORMAT " %s", addr,
		    (int)(aw - ctl_width(addr)), "", count,
		    ctl_plural(count, "connection", "connections"));
		ctl_print_pair(i == 0 ? "listeners" : NULL, width, value);
		free(value);
		free(addr);
	}
}

static void
ctl_print_stats(const struct ctl_cmd *cmd, json_t *reply, int argc,
    char **argv)
{
	json_t	*listeners = ctl_list(reply, "listeners");
	size_t	 i, width = strlen("listeners");
	char	*value;

	for (i = 0; i < nitems(ctl_stats_fields); i++)
		if (strlen(ctl_stats_fields[i].label) > width)
			width = strlen(ctl_stats_fields[i].label);
	for (i = 0; i < nitems(ctl_stats_fields); i++) {
		/* An older daemon may not have it: say nothing then. */
		if (json_object_get(reply, ctl_stats_fields[i].key) == NULL)
			continue;
		value = ctl_stats_value(reply, i);
		ctl_print_pair(ctl_stats_fields[i].label, width, value);
		free(value);
	}
	if (listeners != NULL && json_array_size(listeners) > 0)
		ctl_print_listeners(listeners, width);
}

static void
ctl_print_sessions(const struct ctl_cmd *cmd, json_t *reply, int argc,
    char **argv)
{
	static const struct ctl_col cols[] = {
		{ "ID", true }, { "USER", false }, { "REMOTE", false },
		{ "TLS", false }, { "CIPHER", false }, { "CONNECTED", true },
		{ "IDLE", true }, { "IN", true }, { "OUT", true },
	};
	struct ctl_table	 t;
	json_t			*list = ctl_list(reply, "sessions"), *s;
	time_t			 now = time(NULL);
	size_t			 i;

	ctl_table_init(&t, cols, nitems(cols));
	json_array_foreach(list, i, s) {
		char	*row[nitems(cols)] = {
			ctl_fmt_count(s, "id"),
			ctl_fmt_string(s, "user", "-"),
			ctl_fmt_string(s, "remote", "-"),
			ctl_fmt_string(s, "tls_version", "-"),
			ctl_fmt_string(s, "tls_cipher", "-"),
			ctl_fmt_since(s, "connected_since", now),
			ctl_fmt_duration(s, "idle_seconds"),
			ctl_fmt_bytes(s, "bytes_in"),
			ctl_fmt_bytes(s, "bytes_out"),
		};
		ctl_table_add(&t, row);
	}
	ctl_table_print(&t);
}

static void
ctl_print_rooms(const struct ctl_cmd *cmd, json_t *reply, int argc,
    char **argv)
{
	static const struct ctl_col cols[] = {
		{ "ROOM", false }, { "MEMBERS", true }, { "TOPIC", false },
	};
	struct ctl_table	 t;
	json_t			*list = ctl_list(reply, "rooms"), *r;
	size_t			 i;

	ctl_table_init(&t, cols, nitems(cols));
	json_array_foreach(list, i, r) {
		char	*row[nitems(cols)] = {
			ctl_fmt_string(r, "room", "-"),
			ctl_fmt_count(r, "members"),
			ctl_fmt_string(r, "topic", ""),
		};
		ctl_table_add(&t, row);
	}
	ctl_table_print(&t);
}

static void
ctl_print_users(const struct ctl_cmd *cmd, json_t *reply, int argc,
    char **argv)
{
	static const struct ctl_col cols[] = {
		{ "USER", false }, { "CREATED", false }, { "BANNED", false },
		{ "ONLINE", false },
	};
	struct ctl_table	 t;
	json_t			*list = ctl_list(reply, "users"), *u;
	size_t			 i;

	ctl_table_init(&t, cols, nitems(cols));
	json_array_foreach(list, i, u) {
		char	*row[nitems(cols)] = {
			ctl_fmt_string(u, "user", "-"),
			ctl_fmt_time(u, "created"),
			ctl_fmt_bool(u, "banned"),
			ctl_fmt_bool(u, "online"),
		};
		ctl_table_add(&t, row);
	}
	ctl_table_print(&t);
}

static json_int_t
ctl_kicked(json_t *reply)
{
	json_t	*v = json_object_get(reply, "kicked");

	return json_is_integer(v) ? json_integer_value(v) : 0;
}

static void
ctl_print_kick(const struct ctl_cmd *cmd, json_t *reply, int argc,
    char **argv)
{
	json_int_t	 n = ctl_kicked(reply);

	printf("kicked %" JSON_INTEGER_FORMAT " %s\n", n,
	    ctl_plural(n, "session", "sessions"));
}

/* The daemon's spelling of the user if it gave one, else ours. */
static char *
ctl_reply_user(json_t *reply, char **argv)
{
	return ctl_fmt_string(reply, "user", argv[0]);
}

static void
ctl_print_ban(const struct ctl_cmd *cmd, json_t *reply, int argc,
    char **argv)
{
	char		*user = ctl_reply_user(reply, argv);
	json_int_t	 n = ctl_kicked(reply);

	printf("banned %s (kicked %" JSON_INTEGER_FORMAT " %s)\n", user, n,
	    ctl_plural(n, "session", "sessions"));
	free(user);
}

static void
ctl_print_unban(const struct ctl_cmd *cmd, json_t *reply, int argc,
    char **argv)
{
	char	*user = ctl_reply_user(reply, argv);

	printf("unbanned %s\n", user);
	free(user);
}

static void
ctl_print_user(const struct ctl_cmd *cmd, json_t *reply, int argc,
    char **argv)
{
	char	*user = ctl_reply_user(reply, argv);

	printf("user %s %s\n", user, cmd->done);
	free(user);
}

static void
ctl_print_done(const struct ctl_cmd *cmd, json_t *reply, int argc,
    char **argv)
{
	puts(cmd->done);
}

/* ------------------------------------------------------------ passwords */

static void
ctl_signal_cb(int signo)
{
	ctl_signo = signo;
}

/*
 * One line from fd, without its newline and a \r before it, into buf
 * (NUL-terminated).  Stops at size - 1 bytes and sets *toolong.  Reads a
 * byte at a time so nothing past the line is consumed or left in a stdio
 * buffer we cannot wipe.  Returns the length or -1.
 */
static ssize_t
ctl_read_line(int fd, char *buf, size_t size, bool *toolong)
{
	size_t	 len = 0;
	ssize_t	 n;
	char	 c;

	*toolong = false;
	for (;;) {
		if ((n = read(fd, &c, 1)) == -1) {
			if (errno == EINTR && ctl_signo == 0)
				continue;
			len = 0;
			break;
		}
		if (n == 0 || c == '\n')
			break;
		if (len == size - 1) {
			*toolong = true;
			break;
		}
		buf[len++] = c;
	}
	explicit_bzero(&c, sizeof(c));
	if (n == -1) {
		explicit_bzero(buf, size);
		return -1;
	}
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	return (ssize_t)len;
}

/*
 * Prompt on the terminal and read a line with echo off.  A signal while
 * echo is off restores the terminal first, then takes its usual course;
 * after a stop and continue, the prompt starts again.
 */
static ssize_t
ctl_tty_read(int fd, const char *prompt, char *buf, size_t size,
    bool *toolong)
{
	struct sigaction	 sa, saved[nitems(ctl_tty_signals)];
	struct termios		 old, noecho;
	ssize_t			 len;
	size_t			 i;
	int			 signo, saved_errno;

restart:
	if (tcgetattr(fd, &old) == -1)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a signal makes read() return. */
	sa.sa_handler = ctl_signal_cb;
	ctl_signo = 0;
	for (i = 0; i < nitems(ctl_tty_signals); i++)
		sigaction(ctl_tty_signals[i], &sa, &saved[i]);
	noecho = old;
	noecho.c_lflag &= ~(tcflag_t)ECHO;
	if (write(fd, prompt, strlen(prompt)) == -1 ||
	    tcsetattr(fd, TCSAFLUSH, &noecho) == -1)
		len = -1;
	else
		len = ctl_read_line(fd, buf, size, toolong);
	saved_errno = errno;
	/* TCSAFLUSH also drops whatever is left of an overlong line. */
	tcsetattr(fd, TCSAFLUSH, &old);
	if (write(fd, "\n", 1) == -1) {
		/* Only cosmetic: the next prompt starts on the same line. */
	}
	for (i = 0; i < nitems(ctl_tty_signals); i++)
		sigaction(ctl_tty_signals[i], &saved[i], NULL);
	if ((signo = ctl_signo) != 0) {
		ctl_signo = 0;
		kill(getpid(), signo);
		if (signo == SIGTSTP || signo == SIGTTIN || signo == SIGTTOU)
			goto restart;
		errno = EINTR;
		return -1;
	}
	errno = saved_errno;
	return len;
}

/*
 * Is this a password the daemon would take?  Checked here so a typo costs
 * no round trip (and no second prompt); the daemon checks again.
 */
static bool
ctl_password_ok(const char *pw, size_t len, bool toolong)
{
	if (toolong || len > PROTO_PASSWORD_MAX)
		ctl_warnx("password too long: at most %d bytes",
		    PROTO_PASSWORD_MAX);
	else if (len == 0)
		ctl_warnx("empty password");
	else if (memchr(pw, '\0', len) != NULL)
		ctl_warnx("the password contains a NUL byte");
	else if (len < PROTO_PASSWORD_MIN)
		ctl_warnx("password too short: at least %d bytes",
		    PROTO_PASSWORD_MIN);
	else
		return true;
	return false;
}

/* Ask on the terminal, then again; returns the length, or -1. */
static ssize_t
ctl_password_tty(char *pw, size_t size)
{
	char	 again[CTL_PASSWORD_SIZE];
	bool	 toolong;
	ssize_t	 len, rc = -1;
	int	 fd;

	if ((fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY)) == -1) {
		ctl_warnx("/dev/tty: %s", strerror(errno));
		return -1;
	}
	if ((len = ctl_tty_read(fd, "Password: ", pw, size, &toolong)) == -1)
		ctl_warnx("cannot read the password: %s", strerror(errno));
	else if (!ctl_password_ok(pw, (size_t)len, toolong))
		;	/* said why */
	else if (ctl_tty_read(fd, "Again: ", again, sizeof(again),
	    &toolong) == -1)
		ctl_warnx("cannot read the password: %s", strerror(errno));
	else if (strcmp(pw, again) != 0)
		ctl_warnx("the passwords do not match");
	else
		rc = len;
	explicit_bzero(again, sizeof(again));
	close(fd);
	if (rc == -1)
		explicit_bzero(pw, size);
	return rc;
}

/*
 * The new password: the first line of stdin, or asked for twice when
 * stdin is a terminal.  Returns a new string for the request, or NULL
 * after saying why.
 */
static json_t *
ctl_password(void)
{
	char	 pw[CTL_PASSWORD_SIZE];
	ssize_t	 len;
	bool	 toolong = false;
	json_t	*s = NULL;

	if (isatty(STDIN_FILENO))
		len = ctl_password_tty(pw, sizeof(pw));
	else if ((len = ctl_read_line(STDIN_FILENO, pw, sizeof(pw),
	    &toolong)) == -1)
		ctl_warnx("cannot read the password from standard input: %s",
		    strerror(errno));
	else if (!ctl_password_ok(pw, (size_t)len, toolong))
		len = -1;
	if (len != -1 && (s = json_stringn(pw, (size_t)len)) == NULL)
		ctl_warnx("the password is not valid UTF-8");
	explicit_bzero(pw, sizeof(pw));
	return s;
}

/* ------------------------------------------------------------ requests */

/* Set a string member from the command line; -1 if it is not UTF-8. */
static int
ctl_set_string(json_t *req, const char *key, const char *what,
    const char *value)
{
	json_t	*s;

	if ((s = json_string(value)) == NULL) {
		ctl_warnx("%s is not valid UTF-8", what);
		return -1;
	}
	json_object_set_new(req, key, s);
	return 0;
}

/*
 * "user".  No user name starts with "-": such a word is a misplaced
 * option (--json after the command, --session=ID), so say so here rather
 * than have the daemon look for a user by that name.
 */
static int
ctl_set_user(const struct ctl_cmd *cmd, json_t *req, const char *user)
{
	char	 syn[128];

	if (*user == '-') {
		ctl_cmd_synopsis(cmd, syn, sizeof(syn));
		ctl_warnx("unknown option %s (usage: netsockctl [-s SOCKET] "
		    "[--json] %s)", user, syn);
		return -1;
	}
	return ctl_set_string(req, "user", "USER", user);
}

/* The rest of the words, joined with spaces, as "reason" (if any). */
static int
ctl_set_reason(json_t *req, int argc, char **argv)
{
	size_t	 len = 0;
	char	*reason;
	int	 i, rc;

	for (i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	if (len == 0)
		return 0;
	reason = xmalloc(len);
	*reason = '\0';
	for (i = 0; i < argc; i++) {
		if (i > 0)
			strcat(reason, " ");
		strcat(reason, argv[i]);
	}
	rc = *reason == '\0' ? 0 : ctl_set_string(req, "reason", "REASON",
	    reason);
	free(reason);
	return rc;
}

static int
ctl_build_none(const struct ctl_cmd *cmd, json_t *req, int argc, char **argv)
{
	return 0;
}

static int
ctl_build_user(const struct ctl_cmd *cmd, json_t *req, int argc, char **argv)
{
	return ctl_set_user(cmd, req, argv[0]);
}

static int
ctl_build_user_reason(const struct ctl_cmd *cmd, json_t *req, int argc,
    char **argv)
{
	if (ctl_set_user(cmd, req, argv[0]) == -1)
		return -1;
	return ctl_set_reason(req, argc - 1, argv + 1);
}

/* Session ids are positive decimal integers, as "sessions" shows them. */
static int
ctl_parse_session(const char *s, json_int_t *id)
{
	unsigned long long	 v;
	char			*end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 ||
	    v > (unsigned long long)LLONG_MAX)
		return -1;
	*id = (json_int_t)v;
	return 0;
}

static int
ctl_build_session_reason(const struct ctl_cmd *cmd, json_t *req, int argc,
    char **argv)
{
	json_int_t	 id;
	char		*s;

	if (ctl_parse_session(argv[0], &id) == -1) {
		s = ctl_sanitize(argv[0], strlen(argv[0]));
		ctl_warnx("bad session id '%s': a positive integer is needed "
		    "(see netsockctl sessions)", s);
		free(s);
		return -1;
	}
	json_object_set_new(req, "session", json_integer(id));
	return ctl_set_reason(req, argc - 1, argv + 1);
}

static int
ctl_build_user_password(const struct ctl_cmd *cmd, json_t *req, int argc,
    char **argv)
{
	json_t	*pw;

	if (ctl_set_user(cmd, req, argv[0]) == -1)
		return -1;
	if ((pw = ctl_password()) == NULL)
		return -1;
	json_object_set_new(req, "password", pw);
	return 0;
}

/*
 * The request as one line ending in \n, within what the daemon accepts.
 * Returns a new buffer (wipe and free it) or NULL after saying why.
 */
static char *
ctl_request_line(json_t *req, size_t *len)
{
	size_t	 n;
	char	*line;

	n = json_dumpb(req, NULL, 0, JSON_COMPACT);
	if (n == 0) {
		ctl_warnx("cannot encode the request");
		return NULL;
	}
	if (n > ADMIN_REQUEST_MAX) {
		ctl_warnx("request too long: %zu bytes, at most %d (is REASON "
		    "that long?)", n, ADMIN_REQUEST_MAX);
		return NULL;
	}
	line = xmalloc(n + 1);
	json_dumpb(req, line, n, JSON_COMPACT);
	line[n] = '\n';
	*len = n + 1;
	return line;
}

/* ------------------------------------------------------- the exchange */

/*
 * The admin socket: -s if given, else the default; if the default does
 * not exist, where netsockd puts it on its built-in defaults
 * ($STATE_DIRECTORY, else ./netsockd-state), if there is one there.
 * Returns a new string.
 */
static char *
ctl_socket_path(const char *opt)
{
	const char	*env = getenv("STATE_DIRECTORY");
	struct stat	 sb;
	char		*path;

	if (opt != NULL)
		return xstrdup(opt);
	if (lstat(CTL_SOCKET_DEFAULT, &sb) == 0 ||
	    (errno != ENOENT && errno != ENOTDIR))
		return xstrdup(CTL_SOCKET_DEFAULT);
	if (env != NULL && *env != '\0') {
		/* Like netsockd: the first of a colon-separated list. */
		xasprintf(&path, "%.*s/%s", (int)strcspn(env, ":"), env,
		    CTL_SOCKET_NAME);
		if (lstat(path, &sb) == 0)
			return path;
		free(path);
	}
	if (lstat(CTL_STATE_LOCAL "/" CTL_SOCKET_NAME, &sb) == 0)
		return xstrdup(CTL_STATE_LOCAL "/" CTL_SOCKET_NAME);
	return xstrdup(CTL_SOCKET_DEFAULT);
}

/* A connected socket with timeouts both ways, or -1 with errno set. */
static int
ctl_connect(const char *path)
{
	struct sockaddr_un	 sun;
	struct timeval		 tv = { CTL_TIMEOUT, 0 };
	int			 fd, saved;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	/* SO_SNDTIMEO also bounds connect() when the backlog is full. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* Send it all; MSG_NOSIGNAL so a closed peer is an error, not SIGPIPE. */
static int
ctl_send(int fd, const char *buf, size_t len)
{
	ssize_t	 n;
	size_t	 off = 0;

	while (off < len) {
		n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

/*
 * Everything up to EOF, at most CTL_REPLY_MAX bytes.  Returns a new
 * buffer (free it) and its length, or NULL with errno set (EAGAIN: timed
 * out; EMSGSIZE: too long).
 */
static char *
ctl_recv(int fd, size_t *len)
{
	size_t	 size = 4096, have = 0;
	char	*buf = xmalloc(size);
	ssize_t	 n;
	int	 saved;

	for (;;) {
		if (have == size) {
			if (size == CTL_REPLY_MAX) {
				free(buf);
				errno = EMSGSIZE;
				return NULL;
			}
			size = size * 2 > CTL_REPLY_MAX ? CTL_REPLY_MAX :
			    size * 2;
			buf = xreallocarray(buf, size, 1);
		}
		n = recv(fd, buf + have, size - have, 0);
		if (n == -1 && errno == EINTR)
			continue;
		/* A peer that closed without reading us: its reply stands. */
		if (n == -1 && errno == ECONNRESET && have > 0)
			break;
		if (n == -1) {
			saved = errno;
			free(buf);
			errno = saved;
			return NULL;
		}
		if (n == 0)
			break;
		have += (size_t)n;
	}
	*len = have;
	return buf;
}

/*
 * Send the request and parse the reply, or say why not (and return NULL:
 * exit status 3).  Returns a new reference.
 */
static json_t *
ctl_exchange(const char *path, const char *line, size_t len)
{
	json_t		*reply;
	json_error_t	 err;
	char		*buf;
	size_t		 n;
	int		 fd, send_errno = 0;

	if ((fd = ctl_connect(path)) == -1) {
		ctl_warnx("netsockd does not seem to be running (%s: %s)", path,
		    strerror(errno));
		return NULL;
	}
	/* If sending fails, the daemon may still have said why (refused). */
	if (ctl_send(fd, line, len) == -1)
		send_errno = errno;
	buf = ctl_recv(fd, &n);
	close(fd);
	if (buf == NULL && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		ctl_warnx("no reply from netsockd within %d seconds (%s)",
		    CTL_TIMEOUT, path);
		return NULL;
	}
	if (buf == NULL || (n == 0 && send_errno != 0)) {
		ctl_warnx("lost the connection to netsockd (%s: %s)", path,
		    strerror(send_errno != 0 ? send_errno : errno));
		free(buf);
		return NULL;
	}
	if (n == 0) {
		ctl_warnx("netsockd closed the connection without a reply (%s)",
		    path);
		free(buf);
		return NULL;
	}
	reply = json_loadb(buf, n, 0, &err);
	free(buf);
	if (reply == NULL || !json_is_object(reply) ||
	    !json_is_boolean(json_object_get(reply, "ok"))) {
		ctl_warnx("unreadable reply from netsockd (%s): %s", path,
		    reply == NULL ? err.text : "not an object with \"ok\"");
		json_decref(reply);
		return NULL;
	}
	return reply;
}

/* The exit status a failed reply asks for; 1 unless it says 2 or 3. */
static int
ctl_reply_status(json_t *reply)
{
	json_t		*v = json_object_get(reply, "status");
	json_int_t	 status;

	if (!json_is_integer(v))
		return ADMIN_STATUS_FAILED;
	status = json_integer_value(v);
	if (status == ADMIN_STATUS_USAGE || status == ADMIN_STATUS_UNREACHABLE)
		return (int)status;
	return ADMIN_STATUS_FAILED;
}

/* Print the reply (JSON or for people); returns the exit status. */
static int
ctl_reply(const struct ctl_opts *o, const struct ctl_cmd *cmd, json_t *reply,
    const char *path, int argc, char **argv)
{
	char	*error;
	int	 status;

	if (o->json) {
		json_dumpf(reply, stdout, JSON_INDENT(2));
		putchar('\n');
	}
	if (json_is_true(json_object_get(reply, "ok"))) {
		if (!o->json)
			cmd->print(cmd, reply, argc, argv);
		return ADMIN_STATUS_OK;
	}
	error = ctl_fmt_string(reply, "error", "netsockd reported a failure");
	/* Refused at the door (permission denied): name the door. */
	if ((status = ctl_reply_status(reply)) == ADMIN_STATUS_UNREACHABLE)
		ctl_warnx("%s (%s)", error, path);
	else
		ctl_warnx("%s", error);
	free(error);
	return status;
}

/* ---------------------------------------------------------------- usage */

static size_t
ctl_cmd_nwords(const struct ctl_cmd *cmd)
{
	size_t	 n = 0;

	while (n < CTL_WORDS_MAX && cmd->words[n] != NULL)
		n++;
	return n;
}

/* "kick --session ID [REASON]" into buf. */
static void
ctl_cmd_synopsis(const struct ctl_cmd *cmd, char *buf, size_t len)
{
	size_t	 i;

	*buf = '\0';
	for (i = 0; i < ctl_cmd_nwords(cmd); i++) {
		if (i > 0)
			strncat(buf, " ", len - strlen(buf) - 1);
		strncat(buf, cmd->words[i], len - strlen(buf) - 1);
	}
	if (*cmd->args != '\0') {
		strncat(buf, " ", len - strlen(buf) - 1);
		strncat(buf, cmd->args, len - strlen(buf) - 1);
	}
}

static void
ctl_usage(FILE *f)
{
	char	 syn[128];
	size_t	 i;

	fprintf(f,
	    "usage: netsockctl [-s SOCKET] [--json] COMMAND [ARGS]\n"
	    "       netsockctl help [COMMAND] | --help | --version\n"
	    "\n"
	    "options:\n"
	    "  -s, --socket=PATH  the admin socket (default %s)\n"
	    "      --json         print the daemon's reply as JSON\n"
	    "  -h, --help         print this help and exit\n"
	    "  -V, --version      print the version and exit\n"
	    "\n"
	    "commands:\n", CTL_SOCKET_DEFAULT);
	for (i = 0; i < nitems(ctl_cmds); i++) {
		ctl_cmd_synopsis(&ctl_cmds[i], syn, sizeof(syn));
		fprintf(f, "  %-28s %s\n", syn, ctl_cmds[i].help);
	}
	fprintf(f, "\nExit status: 0 done, 1 no such thing or reload "
	    "rejected, 2 usage,\n3 netsockd not reachable.  See "
	    "netsockctl(8).\n");
}

/* Does cmd start with these words (all of them, if exact)? */
static bool
ctl_cmd_matches(const struct ctl_cmd *cmd, int argc, char **argv, bool exact)
{
	size_t	 i, n = ctl_cmd_nwords(cmd);

	if (exact ? (size_t)argc < n : (size_t)argc > n)
		return false;
	for (i = 0; i < n && i < (size_t)argc; i++)
		if (strcmp(cmd->words[i], argv[i]) != 0)
			return false;
	return true;
}

/* "help [COMMAND]": every command whose words begin with COMMAND. */
static int
ctl_help(int argc, char **argv)
{
	char	 syn[128];
	size_t	 i;
	bool	 found = false;

	if (argc == 0) {
		ctl_usage(stdout);
		return ADMIN_STATUS_OK;
	}
	for (i = 0; i < nitems(ctl_cmds); i++) {
		if (!ctl_cmd_matches(&ctl_cmds[i], argc, argv, false))
			continue;
		ctl_cmd_synopsis(&ctl_cmds[i], syn, sizeof(syn));
		printf("%snetsockctl %s\n    %s\n", found ? "\n" : "", syn,
		    ctl_cmds[i].help);
		found = true;
	}
	if (!found) {
		ctl_warnx("no command '%s%s%s' (try netsockctl help)", argv[0],
		    argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
		return ADMIN_STATUS_USAGE;
	}
	return ADMIN_STATUS_OK;
}

/* The command argv names (longest match), or NULL after saying why. */
static const struct ctl_cmd *
ctl_find(int argc, char **argv)
{
	const struct ctl_cmd	*best = NULL;
	size_t			 i;
	char			*word, *second;
	bool			 sub = false;

	for (i = 0; i < nitems(ctl_cmds); i++) {
		if (!ctl_cmd_matches(&ctl_cmds[i], argc, argv, true))
			continue;
		if (best == NULL ||
		    ctl_cmd_nwords(&ctl_cmds[i]) > ctl_cmd_nwords(best))
			best = &ctl_cmds[i];
	}
	if (best != NULL)
		return best;
	/* "user" alone or with a wrong second word: list what it takes. */
	for (i = 0; i < nitems(ctl_cmds); i++)
		if (strcmp(ctl_cmds[i].words[0], argv[0]) == 0)
			sub = true;
	word = ctl_sanitize(argv[0], strlen(argv[0]));
	if (sub && argc == 1)
		ctl_warnx("%s needs a subcommand (try netsockctl help %s)",
		    word, word);
	else if (sub) {
		second = ctl_sanitize(argv[1], strlen(argv[1]));
		ctl_warnx("unknown command '%s %s' (try netsockctl help %s)",
		    word, second, word);
		free(second);
	} else
		ctl_warnx("unknown command '%s' (try netsockctl help)", word);
	free(word);
	return NULL;
}

/* Are there as many arguments as the command takes?  Says why not. */
static bool
ctl_check_args(const struct ctl_cmd *cmd, int argc, char **argv)
{
	char	 syn[128];

	if (argc >= cmd->min_args && (cmd->max_args == -1 ||
	    argc <= cmd->max_args))
		return true;
	ctl_cmd_synopsis(cmd, syn, sizeof(syn));
	if (argc > cmd->min_args && argv[cmd->min_args][0] == '-')
		ctl_warnx("usage: netsockctl [-s SOCKET] [--json] %s (options "
		    "go before the command)", syn);
	else
		ctl_warnx("usage: netsockctl %s", syn);
	return false;
}

/* Options before the command; returns optind, or -1 with *status set. */
static int
ctl_options(int argc, char **argv, struct ctl_opts *o, int *status)
{
	int	 ch;

	opterr = 0;	/* one line of ours, not getopt's */
	while ((ch = getopt_long(argc, argv, "+:s:hV", ctl_longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 's':
			if (*optarg == '\0') {
				ctl_warnx("the socket path is empty");
				*status = ADMIN_STATUS_USAGE;
				return -1;
			}
			o->socket = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			ctl_usage(stdout);
			*status = ADMIN_STATUS_OK;
			return -1;
		case 'V':
			printf("netsockctl %s\n", NETSOCK_VERSION);
			*status = ADMIN_STATUS_OK;
			return -1;
		case ':':
			ctl_warnx("option %s needs an argument",
			    argv[optind - 1]);
			*status = ADMIN_STATUS_USAGE;
			return -1;
		default:
			/* optopt is also set for "--json=x". */
			if (optopt != 0 &&
			    strncmp(argv[optind - 1], "--", 2) == 0)
				ctl_warnx("option %.*s takes no argument",
				    (int)strcspn(argv[optind - 1], "="),
				    argv[optind - 1]);
			else if (optopt != 0)
				ctl_warnx("unknown option -%c (try netsockctl "
				    "--help)", optopt);
			else
				ctl_warnx("unknown option %s (try netsockctl "
				    "--help)", argv[optind - 1]);
			*status = ADMIN_STATUS_USAGE;
			return -1;
		}
	}
	return optind;
}

/* The request for cmd, built and encoded; NULL after saying why. */
static char *
ctl_request(const struct ctl_cmd *cmd, int argc, char **argv, size_t *len)
{
	json_t	*req;
	char	*line = NULL;

	req = json_pack("{s:i, s:s}", "version", ADMIN_PROTO_VERSION,
	    "command", cmd->wire);
	if (req != NULL && cmd->build(cmd, req, argc, argv) == 0)
		line = ctl_request_line(req, len);
	json_decref(req);
	return line;
}

/* The whole run after the options; returns the exit status. */
static int
ctl_run(const struct ctl_opts *o, int argc, char **argv)
{
	const struct ctl_cmd	*cmd;
	json_t			*reply;
	char			*line, *path;
	size_t			 len, nwords;
	int			 status;

	if (argc == 0) {
		ctl_warnx("no command given (try netsockctl help)");
		return ADMIN_STATUS_USAGE;
	}
	if ((cmd = ctl_find(argc, argv)) == NULL)
		return ADMIN_STATUS_USAGE;
	nwords = ctl_cmd_nwords(cmd);
	argc -= (int)nwords;
	argv += nwords;
	if (!ctl_check_args(cmd, argc, argv))
		return ADMIN_STATUS_USAGE;
	if (cmd->wire == NULL)
		return ctl_help(argc, argv);
	/* Arguments and password first: no connection waits on a person. */
	if ((line = ctl_request(cmd, argc, argv, &len)) == NULL)
		return ADMIN_STATUS_USAGE;
	path = ctl_socket_path(o->socket);
	reply = ctl_exchange(path, line, len);
	explicit_bzero(line, len);
	free(line);
	if (reply == NULL)
		status = ADMIN_STATUS_UNREACHABLE;
	else
		status = ctl_reply(o, cmd, reply, path, argc, argv);
	json_decref(reply);
	free(path);
	return status;
}

#ifndef NETSOCKCTL_NO_MAIN
int
main(int argc, char **argv)
{
	struct ctl_opts	 o = { NULL, false };
	int		 first, status = ADMIN_STATUS_OK;

	setlocale(LC_CTYPE, "");
	/* jansson holds copies of the password: wiped as it frees them. */
	proto_json_wipe_freed();
	if ((first = ctl_options(argc, argv, &o, &status)) != -1)
		status = ctl_run(&o, argc - first, argv + first);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		ctl_warnx("cannot write the output: %s", strerror(errno));
		if (status == ADMIN_STATUS_OK)
			status = ADMIN_STATUS_FAILED;
	}
	return status;
}
#endif
