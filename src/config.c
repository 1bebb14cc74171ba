/* config: read and validate netsockd.conf (libconfig) into an immutable snapshot. */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <libconfig.h>

#include "config.h"
#include "xmalloc.h"

/*
 * Every setting is described once, in a table: its dotted name, what kind
 * of value it takes, where it lands in the snapshot and its range.  The
 * loader walks the parsed file and looks each setting up here, so a name
 * that is not in a table is an unknown setting (a typo), never silently
 * ignored, and groups ("limits", "tls") exist only because some entry
 * lives under them.
 *
 * Error messages name settings by a dotted path from the root; elements of
 * the listen list are written with their index in brackets, so the second
 * listener's port is "listen[1].port".
 */

enum config_kind {
	CONFIG_KIND_INT,	/* int field, integer in [min, max] */
	CONFIG_KIND_SIZE,	/* size_t field, integer in [min, max] */
	CONFIG_KIND_DOUBLE,	/* double field, number in (min, max] */
	CONFIG_KIND_BOOL,	/* bool field */
	CONFIG_KIND_STRING,	/* char * field, any string ("" too) */
	CONFIG_KIND_PATH,	/* char * field, non-empty */
	CONFIG_KIND_SOCKET,	/* char * field, fits in sun_path */
	CONFIG_KIND_FILE,	/* char * field, a file we can read now */
	CONFIG_KIND_ADDRESS,	/* char * field, numeric IPv4 or IPv6 */
	CONFIG_KIND_LEVEL,	/* int field, log level name -> LOG_* */
	CONFIG_KIND_LOG2,	/* int field, power of two -> its log2 */
	CONFIG_KIND_LISTEN,	/* the listen list of groups */
};

struct config_entry {
	const char	*name;		/* dotted path inside its table */
	enum config_kind kind;
	size_t		 offset;	/* of the field in the base struct */
	long long	 min;
	long long	 max;
	int		 flags;
#define CONFIG_RESTART	0x1	/* a reload cannot apply it */
};

#define CONFIG_OFF(f)		offsetof(struct config, f)
#define CONFIG_LIMIT(f)		offsetof(struct config, limits.f)

/*
 * The settings of the file.  Ranges keep every later computation sane:
 * sizes far below SIZE_MAX, times below a day, rates positive.
 */
static const struct config_entry config_settings[] = {
	{ "listen", CONFIG_KIND_LISTEN, 0, 0, 0, 0 },
	{ "tls.certificate", CONFIG_KIND_FILE,
	  CONFIG_OFF(tls_certificate), 0, 0, 0 },
	{ "tls.key", CONFIG_KIND_FILE, CONFIG_OFF(tls_key), 0, 0, 0 },
	{ "database", CONFIG_KIND_PATH, CONFIG_OFF(database), 0, 0,
	  CONFIG_RESTART },
	{ "admin.socket", CONFIG_KIND_SOCKET, CONFIG_OFF(admin_socket), 0, 0,
	  CONFIG_RESTART },
	{ "registration", CONFIG_KIND_BOOL, CONFIG_OFF(registration), 0, 0, 0 },
	{ "rooms.allow_create", CONFIG_KIND_BOOL,
	  CONFIG_OFF(rooms_allow_create), 0, 0, 0 },
	{ "motd", CONFIG_KIND_STRING, CONFIG_OFF(motd), 0, 0, 0 },
	{ "log.level", CONFIG_KIND_LEVEL, CONFIG_OFF(log_level), 0, 0, 0 },
	{ "auth.scrypt_n", CONFIG_KIND_LOG2, CONFIG_OFF(scrypt_log2_n),
	  1024, 1048576, 0 },

	{ "limits.max_connections", CONFIG_KIND_INT,
	  CONFIG_LIMIT(max_connections), 1, INT_MAX, 0 },
	{ "limits.max_per_ip", CONFIG_KIND_INT,
	  CONFIG_LIMIT(max_per_ip), 1, INT_MAX, 0 },
	{ "limits.max_line", CONFIG_KIND_SIZE,
	  CONFIG_LIMIT(max_line), 64, 16777216, 0 },
	/* Must also stay below max_line: checked once all are read. */
	{ "limits.max_message", CONFIG_KIND_SIZE,
	  CONFIG_LIMIT(max_message), 1, 16777215, 0 },
	{ "limits.history_max", CONFIG_KIND_INT,
	  CONFIG_LIMIT(history_max), 1, 100000, 0 },
	{ "limits.history_bytes", CONFIG_KIND_SIZE,
	  CONFIG_LIMIT(history_bytes), 1024, 536870912, 0 },
	{ "limits.rooms_per_hour", CONFIG_KIND_INT,
	  CONFIG_LIMIT(rooms_per_hour), 1, INT_MAX, 0 },
	{ "limits.ipv6_prefix", CONFIG_KIND_INT,
	  CONFIG_LIMIT(ipv6_prefix), 1, 128, 0 },
	{ "limits.messages_per_second", CONFIG_KIND_DOUBLE,
	  CONFIG_LIMIT(messages_per_second), 0, 1000000, 0 },
	{ "limits.message_burst", CONFIG_KIND_INT,
	  CONFIG_LIMIT(message_burst), 1, INT_MAX, 0 },
	{ "limits.typing_per_second", CONFIG_KIND_DOUBLE,
	  CONFIG_LIMIT(typing_per_second), 0, 1000000, 0 },
	{ "limits.typing_burst", CONFIG_KIND_INT,
	  CONFIG_LIMIT(typing_burst), 1, INT_MAX, 0 },
	{ "limits.login_failures_per_minute", CONFIG_KIND_INT,
	  CONFIG_LIMIT(login_failures_per_minute), 1, INT_MAX, 0 },
	{ "limits.registrations_per_hour", CONFIG_KIND_INT,
	  CONFIG_LIMIT(registrations_per_hour), 1, INT_MAX, 0 },
	{ "limits.output_buffer", CONFIG_KIND_SIZE,
	  CONFIG_LIMIT(output_buffer), 4096, 1073741824, 0 },
	{ "limits.handshake_timeout", CONFIG_KIND_INT,
	  CONFIG_LIMIT(handshake_timeout), 1, 86400, 0 },
	{ "limits.idle_timeout", CONFIG_KIND_INT,
	  CONFIG_LIMIT(idle_timeout), 1, 86400, 0 },
};

/* The settings of one element of the listen list. */
static const struct config_entry config_listen_settings[] = {
	{ "address", CONFIG_KIND_ADDRESS,
	  offsetof(struct config_listen, address), 0, 0, 0 },
	{ "port", CONFIG_KIND_INT,
	  offsetof(struct config_listen, port), 1, 65535, 0 },
};

#define CONFIG_NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

#define CONFIG_DEFAULT_ADDRESS	"127.0.0.1"

static const struct {
	const char	*name;
	int		 priority;
} config_levels[] = {
	{ "debug", LOG_DEBUG },
	{ "info", LOG_INFO },
	{ "notice", LOG_NOTICE },
	{ "warning", LOG_WARNING },
	{ "error", LOG_ERR },
};

/* What one config_load() call carries around: where errors go. */
struct config_loader {
	const char	*path;
	char		**cause;
};

int
config_log_level(const char *name)
{
	size_t	i;

	for (i = 0; i < CONFIG_NITEMS(config_levels); i++) {
		if (strcmp(config_levels[i].name, name) == 0)
			return config_levels[i].priority;
	}
	return -1;
}

struct config *
config_defaults(const char *state_dir)
{
	struct config		*cfg;
	struct config_limits	*l;

	cfg = xcalloc(1, sizeof *cfg);
	cfg->path = NULL;
	cfg->state_dir = xstrdup(state_dir);

	cfg->nlisten = 1;
	cfg->listen = xcalloc(1, sizeof *cfg->listen);
	cfg->listen[0].address = xstrdup(CONFIG_DEFAULT_ADDRESS);
	cfg->listen[0].port = CONFIG_DEFAULT_PORT;

	xasprintf(&cfg->tls_certificate, "%s/cert.pem", state_dir);
	xasprintf(&cfg->tls_key, "%s/key.pem", state_dir);
	cfg->tls_self_signed = true;
	xasprintf(&cfg->database, "%s/netsockd.db", state_dir);
	xasprintf(&cfg->admin_socket, "%s/admin.sock", state_dir);
	cfg->registration = true;
	cfg->rooms_allow_create = true;
	cfg->motd = xstrdup("");
	cfg->log_level = LOG_INFO;
	cfg->scrypt_log2_n = 15;		/* N = 32768 */

	l = &cfg->limits;
	l->max_connections = 10000;
	l->max_per_ip = 100;
	l->max_line = 16384;
	l->max_message = 4096;
	l->history_max = 500;
	l->history_bytes = 262144;
	l->rooms_per_hour = 20;
	l->ipv6_prefix = 64;
	l->messages_per_second = 5.0;
	l->message_burst = 20;
	l->typing_per_second = 2.0;
	l->typing_burst = 5;
	l->login_failures_per_minute = 10;
	l->registrations_per_hour = 30;
	l->output_buffer = 1048576;
	l->handshake_timeout = 10;
	l->idle_timeout = 300;
	return cfg;
}

static void
config_free_listen(struct config_listen *entries, size_t n)
{
	size_t	i;

	if (entries == NULL)
		return;
	for (i = 0; i < n; i++)
		free(entries[i].address);
	free(entries);
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->state_dir);
	config_free_listen(cfg->listen, cfg->nlisten);
	free(cfg->tls_certificate);
	free(cfg->tls_key);
	free(cfg->database);
	free(cfg->admin_socket);
	free(cfg->motd);
	free(cfg);
}

/*
 * Copy s into buf so it can be quoted in a one-line message: control
 * characters (a "\n" escape in a libconfig string) become '?'.
 */
static const char *
config_printable(const char *s, char *buf, size_t size)
{
	size_t	i;

	for (i = 0; s[i] != '\0' && i + 1 < size; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			buf[i] = '?';
		else
			buf[i] = s[i];
	}
	buf[i] = '\0';
	return buf;
}

/* Set *cause to "FILE:LINE: NAME: reason" for setting s; returns -1. */
static int __attribute__((format(printf, 4, 5)))
config_error(struct config_loader *ld, const config_setting_t *s,
    const char *name, const char *fmt, ...)
{
	va_list		 ap, ap2;
	char		*reason;
	const char	*file;
	int		 len;

	/* Measure, then format: vasprintf is not in every libc. */
	va_start(ap, fmt);
	va_copy(ap2, ap);
	len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (len < 0)
		abort();
	reason = xmalloc((size_t)len + 1);
	vsnprintf(reason, (size_t)len + 1, fmt, ap2);
	va_end(ap2);

	/* An @include'd file names itself, not the main file. */
	file = config_setting_source_file(s);
	if (file == NULL)
		file = ld->path;
	xasprintf(ld->cause, "%s:%u: %s: %s", file,
	    (unsigned int)config_setting_source_line(s), name, reason);
	free(reason);
	return -1;
}

static const struct config_entry *
config_entry_find(const struct config_entry *table, size_t n,
    const char *name)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	}
	return NULL;
}

/* Whether name is a group some entry of the table lives under. */
static bool
config_entry_is_group(const struct config_entry *table, size_t n,
    const char *name)
{
	size_t	i, len = strlen(name);

	for (i = 0; i < n; i++) {
		if (strncmp(table[i].name, name, len) == 0 &&
		    table[i].name[len] == '.')
			return true;
	}
	return false;
}

/*
 * libconfig 1.5 keeps an integer written without an L suffix in an int
 * and silently wraps a bigger one (4294971392 reads back as 4096), which
 * would let an out-of-range value pass the range check.  Find the literal
 * again on the setting's source line: if a "name = literal" there is
 * outside the int range and none equals the stored value, it wrapped.
 * (The line may hold several settings of that name: listen entries.)
 */
static bool
config_int_wrapped(const config_setting_t *s)
{
	FILE		*f;
	char		*line = NULL, *p, *q, *end;
	size_t		 size = 0, nlen;
	unsigned int	 n, want = config_setting_source_line(s);
	const char	*name = config_setting_name(s);
	long long	 v, stored = config_setting_get_int64(s);
	bool		 found = false, wrapped = false;
	int		 base;

	if (name == NULL || config_setting_source_file(s) == NULL)
		return false;
	if ((f = fopen(config_setting_source_file(s), "r")) == NULL)
		return false;
	for (n = 1; getline(&line, &size, f) != -1; n++) {
		if (n == want) {
			found = true;
			break;
		}
	}
	fclose(f);
	if (!found) {
		free(line);
		return false;
	}

	nlen = strlen(name);
	for (p = line; (p = strstr(p, name)) != NULL; p += nlen) {
		q = p + nlen;
		q += strspn(q, " \t");
		if (*q != '=' && *q != ':')
			continue;
		q++;
		q += strspn(q, " \t");
		/* libconfig reads "010" as ten: only 0x means another base. */
		base = 10;
		if (strncmp(q, "0x", 2) == 0 || strncmp(q, "0X", 2) == 0)
			base = 16;
		errno = 0;
		v = strtoll(q, &end, base);
		if (end == q)
			continue;
		if (errno != ERANGE && v == stored) {
			wrapped = false;
			break;
		}
		if (errno == ERANGE || v < INT_MIN || v > INT_MAX)
			wrapped = true;
	}
	free(line);
	return wrapped;
}

/*
 * Read an integer setting into *v; -1 if it is not an integer.  A value
 * libconfig wrapped reads as LLONG_MAX, outside every range.
 */
static int
config_integer(const config_setting_t *s, long long *v)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
		if (config_int_wrapped(s)) {
			*v = LLONG_MAX;
			return 0;
		}
		/* FALLTHROUGH */
	case CONFIG_TYPE_INT64:
		*v = config_setting_get_int64(s);
		return 0;
	default:
		return -1;
	}
}

/* Read an integer setting into *v; -1 with cause unless in [min, max]. */
static int
config_get_integer(struct config_loader *ld, const config_setting_t *s,
    const char *name, long long min, long long max, long long *v)
{
	if (config_integer(s, v) == -1)
		return config_error(ld, s, name, "must be an integer");
	if (*v < min || *v > max) {
		return config_error(ld, s, name,
		    "must be between %lld and %lld", min, max);
	}
	return 0;
}

/* Read a number (integer or float) into *v: min < *v <= max. */
static int
config_get_number(struct config_loader *ld, const config_setting_t *s,
    const char *name, long long min, long long max, double *v)
{
	long long	ll;

	if (config_setting_type(s) == CONFIG_TYPE_FLOAT)
		*v = config_setting_get_float(s);
	else if (config_integer(s, &ll) == 0) {
		/* Without autoconvert libconfig would read an int as 0.0. */
		*v = (double)ll;
	} else
		return config_error(ld, s, name, "must be a number");
	if (isfinite(*v) && *v > (double)min && *v <= (double)max)
		return 0;
	return config_error(ld, s, name,
	    "must be greater than %lld and at most %lld", min, max);
}

static int
config_get_string(struct config_loader *ld, const config_setting_t *s,
    const char *name, const char **v)
{
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return config_error(ld, s, name, "must be a string");
	*v = config_setting_get_string(s);
	return 0;
}

/* Replace the string at *field (a default) with a copy of v. */
static void
config_set_string(char **field, const char *v)
{
	free(*field);
	*field = xstrdup(v);
}

static int
config_check_level(struct config_loader *ld, const config_setting_t *s,
    const char *name, const char *v, int *level)
{
	char	known[128], buf[64];
	size_t	i, off = 0;

	if ((*level = config_log_level(v)) != -1)
		return 0;
	/* Name the choices from the table so the message cannot go stale. */
	known[0] = '\0';
	for (i = 0; i < CONFIG_NITEMS(config_levels); i++) {
		off += (size_t)snprintf(known + off, sizeof known - off, "%s%s",
		    i == 0 ? "" : ", ", config_levels[i].name);
	}
	return config_error(ld, s, name, "unknown level '%s' (%s)",
	    config_printable(v, buf, sizeof buf), known);
}

static int
config_check_address(struct config_loader *ld, const config_setting_t *s,
    const char *name, const char *v)
{
	struct in6_addr	a6;
	struct in_addr	a4;
	char		buf[64];

	if (inet_pton(AF_INET, v, &a4) == 1 ||
	    inet_pton(AF_INET6, v, &a6) == 1)
		return 0;
	return config_error(ld, s, name,
	    "'%s' is not a numeric IPv4 or IPv6 address",
	    config_printable(v, buf, sizeof buf));
}

/* Check a string of one of the path kinds. */
static int
config_check_path(struct config_loader *ld, const config_setting_t *s,
    const struct config_entry *e, const char *name, const char *v)
{
	struct sockaddr_un	sun;
	char			buf[PATH_MAX];

	if (*v == '\0')
		return config_error(ld, s, name, "must not be empty");
	switch (e->kind) {
	case CONFIG_KIND_SOCKET:
		if (strlen(v) >= sizeof sun.sun_path) {
			return config_error(ld, s, name,
			    "path too long (at most %zu bytes)",
			    sizeof sun.sun_path - 1);
		}
		break;
	case CONFIG_KIND_FILE:
		/* Checked now so a reload with a missing key is refused. */
		if (access(v, R_OK) == -1) {
			return config_error(ld, s, name, "%s: %s",
			    config_printable(v, buf, sizeof buf),
			    strerror(errno));
		}
		break;
	default:
		break;
	}
	return 0;
}

/* Read a power of two in [min, max]; *log2 is its exponent. */
static int
config_get_log2(struct config_loader *ld, const config_setting_t *s,
    const struct config_entry *e, const char *name, int *log2)
{
	long long	v;

	if (config_integer(s, &v) == -1)
		return config_error(ld, s, name, "must be an integer");
	if (v < e->min || v > e->max || (v & (v - 1)) != 0) {
		return config_error(ld, s, name,
		    "must be a power of two between %lld and %lld",
		    e->min, e->max);
	}
	for (*log2 = 0; v > 1; v >>= 1)
		(*log2)++;
	return 0;
}

static int	config_get_listen(struct config_loader *,
		    const config_setting_t *, const char *, struct config *);

/* Read setting s described by e into the struct at base. */
static int
config_apply(struct config_loader *ld, const config_setting_t *s,
    const struct config_entry *e, const char *name, void *base)
{
	char		*field = (char *)base + e->offset;
	const char	*str = NULL;
	long long	 ll = 0;

	switch (e->kind) {
	case CONFIG_KIND_INT:
	case CONFIG_KIND_SIZE:
		if (config_get_integer(ld, s, name, e->min, e->max, &ll) == -1)
			return -1;
		if (e->kind == CONFIG_KIND_INT)
			*(int *)field = (int)ll;
		else
			*(size_t *)field = (size_t)ll;
		return 0;
	case CONFIG_KIND_DOUBLE:
		return config_get_number(ld, s, name, e->min, e->max,
		    (double *)field);
	case CONFIG_KIND_BOOL:
		if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
			return config_error(ld, s, name,
			    "must be a boolean (true or false)");
		}
		*(bool *)field = config_setting_get_bool(s) != 0;
		return 0;
	case CONFIG_KIND_LOG2:
		return config_get_log2(ld, s, e, name, (int *)field);
	case CONFIG_KIND_LISTEN:
		return config_get_listen(ld, s, name, base);
	default:
		break;
	}

	/* The rest are strings. */
	if (config_get_string(ld, s, name, &str) == -1)
		return -1;
	switch (e->kind) {
	case CONFIG_KIND_LEVEL:
		return config_check_level(ld, s, name, str, (int *)field);
	case CONFIG_KIND_ADDRESS:
		if (config_check_address(ld, s, name, str) == -1)
			return -1;
		break;
	case CONFIG_KIND_PATH:
	case CONFIG_KIND_SOCKET:
	case CONFIG_KIND_FILE:
		if (config_check_path(ld, s, e, name, str) == -1)
			return -1;
		break;
	default:
		break;
	}
	config_set_string((char **)field, str);
	return 0;
}

/*
 * Read every member of group into base through table.  prefix is the
 * dotted name of the group in messages (NULL at the root); the first skip
 * bytes of a member's full name are the path to the table's own root
 * ("listen[0]."), so the rest is what the table is keyed by.
 */
static int
config_walk(struct config_loader *ld, const config_setting_t *group,
    const char *prefix, size_t skip, const struct config_entry *table,
    size_t n, void *base)
{
	const config_setting_t	*s;
	const struct config_entry *e;
	const char		*rel;
	char			*name;
	int			 i, len, rc;

	len = config_setting_length(group);
	for (i = 0, rc = 0; i < len && rc == 0; i++) {
		s = config_setting_get_elem(group, (unsigned int)i);
		if (prefix == NULL)
			name = xstrdup(config_setting_name(s));
		else {
			xasprintf(&name, "%s.%s", prefix,
			    config_setting_name(s));
		}
		rel = name + skip;
		if ((e = config_entry_find(table, n, rel)) != NULL)
			rc = config_apply(ld, s, e, name, base);
		else if (!config_entry_is_group(table, n, rel))
			rc = config_error(ld, s, name, "unknown setting");
		else if (!config_setting_is_group(s))
			rc = config_error(ld, s, name, "must be a group");
		else
			rc = config_walk(ld, s, name, skip, table, n, base);
		free(name);
	}
	return rc;
}

/* Whether two listeners would bind the same address and port. */
static bool
config_listen_same(const struct config_listen *a,
    const struct config_listen *b)
{
	unsigned char	aa[sizeof(struct in6_addr)];
	unsigned char	bb[sizeof(struct in6_addr)];
	int		af;

	if (a->port != b->port)
		return false;
	af = strchr(a->address, ':') != NULL ? AF_INET6 : AF_INET;
	if ((strchr(b->address, ':') != NULL ? AF_INET6 : AF_INET) != af)
		return false;
	memset(aa, 0, sizeof aa);
	memset(bb, 0, sizeof bb);
	if (inet_pton(af, a->address, aa) != 1 ||
	    inet_pton(af, b->address, bb) != 1)
		return false;
	return memcmp(aa, bb, sizeof aa) == 0;
}

/* Read "listen": a non-empty list of { address; port; } groups. */
static int
config_get_listen(struct config_loader *ld, const config_setting_t *s,
    const char *name, struct config *cfg)
{
	const config_setting_t	*elem;
	struct config_listen	*entries;
	char			*prefix;
	size_t			 i, j, n;
	int			 rc = 0;

	if (!config_setting_is_list(s) && !config_setting_is_array(s))
		return config_error(ld, s, name, "must be a list of groups");
	n = (size_t)config_setting_length(s);
	if (n == 0)
		return config_error(ld, s, name, "must have at least one entry");

	entries = xcalloc(n, sizeof *entries);
	for (i = 0; i < n && rc == 0; i++) {
		elem = config_setting_get_elem(s, (unsigned int)i);
		entries[i].address = xstrdup(CONFIG_DEFAULT_ADDRESS);
		entries[i].port = CONFIG_DEFAULT_PORT;
		xasprintf(&prefix, "%s[%zu]", name, i);
		if (!config_setting_is_group(elem))
			rc = config_error(ld, elem, prefix, "must be a group");
		else {
			rc = config_walk(ld, elem, prefix, strlen(prefix) + 1,
			    config_listen_settings,
			    CONFIG_NITEMS(config_listen_settings), &entries[i]);
		}
		for (j = 0; j < i && rc == 0; j++) {
			if (config_listen_same(&entries[j], &entries[i])) {
				rc = config_error(ld, elem, prefix,
				    "same address and port as %s[%zu]",
				    name, j);
			}
		}
		free(prefix);
	}
	if (rc == -1) {
		config_free_listen(entries, n);
		return -1;
	}
	config_free_listen(cfg->listen, cfg->nlisten);
	cfg->listen = entries;
	cfg->nlisten = n;
	return 0;
}

/* Checks across settings, once every setting has been read. */
static int
config_check_all(struct config_loader *ld, const config_t *lc,
    struct config *cfg)
{
	const config_setting_t	*cert, *key, *s;

	cert = config_lookup(lc, "tls.certificate");
	key = config_lookup(lc, "tls.key");
	if (cert != NULL && key == NULL) {
		return config_error(ld, cert, "tls.key",
		    "missing (tls.certificate is set: give both or neither)");
	}
	if (key != NULL && cert == NULL) {
		return config_error(ld, key, "tls.certificate",
		    "missing (tls.key is set: give both or neither)");
	}
	/* Without either, a certificate is generated in the state dir. */
	cfg->tls_self_signed = (cert == NULL);

	if (cfg->limits.max_message >= cfg->limits.max_line) {
		/* Blame the one the file set; defaults are consistent. */
		if ((s = config_lookup(lc, "limits.max_message")) != NULL) {
			return config_error(ld, s, "limits.max_message",
			    "must be less than limits.max_line (%zu)",
			    cfg->limits.max_line);
		}
		s = config_lookup(lc, "limits.max_line");
		return config_error(ld, s, "limits.max_line",
		    "must be greater than limits.max_message (%zu)",
		    cfg->limits.max_message);
	}
	return 0;
}

/* The message for a file libconfig could not read or parse. */
static void
config_read_error(const config_t *lc, const char *path, int saved_errno,
    char **cause)
{
	const char	*file;

	if (config_error_type(lc) == CONFIG_ERR_FILE_IO) {
		xasprintf(cause, "%s: %s", path, saved_errno != 0 ?
		    strerror(saved_errno) : config_error_text(lc));
		return;
	}
	file = config_error_file(lc);
	xasprintf(cause, "%s:%d: syntax error: %s", file != NULL ? file : path,
	    config_error_line(lc), config_error_text(lc));
}

struct config *
config_load(const char *path, const char *state_dir, char **cause)
{
	struct config_loader	 ld;
	struct config		*cfg;
	config_t		 lc;
	int			 rc, saved_errno;

	*cause = NULL;
	config_init(&lc);
	/*
	 * No include directory: libconfig 1.5 would prefix it to absolute
	 * "@include" paths too, so those are the ones that work.
	 */
	errno = 0;
	if (config_read_file(&lc, path) != CONFIG_TRUE) {
		saved_errno = errno;
		config_read_error(&lc, path, saved_errno, cause);
		config_destroy(&lc);
		return NULL;
	}

	cfg = config_defaults(state_dir);
	cfg->path = xstrdup(path);
	ld.path = path;
	ld.cause = cause;
	rc = config_walk(&ld, config_root_setting(&lc), NULL, 0,
	    config_settings, CONFIG_NITEMS(config_settings), cfg);
	if (rc == 0)
		rc = config_check_all(&ld, &lc, cfg);
	config_destroy(&lc);
	if (rc == -1) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

char *
config_restart_pending(const struct config *running,
    const struct config *next)
{
	const struct config_entry	*e;
	const char			*a, *b;
	char				*list = NULL, *tmp;
	size_t				 i;

	for (i = 0; i < CONFIG_NITEMS(config_settings); i++) {
		e = &config_settings[i];
		if (~e->flags & CONFIG_RESTART)
			continue;
		/* Only strings are flagged so far. */
		a = *(char *const *)((const char *)running + e->offset);
		b = *(char *const *)((const char *)next + e->offset);
		if (strcmp(a, b) == 0)
			continue;
		if (list == NULL)
			list = xstrdup(e->name);
		else {
			xasprintf(&tmp, "%s, %s", list, e->name);
			free(list);
			list = tmp;
		}
	}
	return list;
}
