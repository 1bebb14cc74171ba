/* proto: NDJSON request decoding, validation and reply building (no I/O). */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <malloc.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "proto.h"
#include "xmalloc.h"

#define PROTO_TOPIC_MAX		1024	/* bytes in a room topic */
#define PROTO_TEXT_MAX		256	/* bytes in a presence text */
#define PROTO_TYPE_ECHO_MAX	32	/* longest unknown type quoted back */

/*
 * Clamp for proto_format_time: years outside 0000..9999 do not fit the
 * fixed-width format (and gmtime_r may fail far outside it).
 */
#define PROTO_TIME_MIN_MS	(-62167219200000LL)	/* 0000-01-01T00:00:00Z */
#define PROTO_TIME_MAX_MS	253402300799999LL	/* 9999-12-31T23:59:59.999Z */

/* The wire names of error codes: the only place they are spelt out. */
static const char *const proto_err_names[PROTO_ERR__COUNT] = {
	[PROTO_ERR_BAD_JSON] = "bad_json",
	[PROTO_ERR_BAD_UTF8] = "bad_utf8",
	[PROTO_ERR_BAD_REQUEST] = "bad_request",
	[PROTO_ERR_UNKNOWN_TYPE] = "unknown_type",
	[PROTO_ERR_AUTH_REQUIRED] = "auth_required",
	[PROTO_ERR_LINE_TOO_LONG] = "line_too_long",
	[PROTO_ERR_REGISTRATION_CLOSED] = "registration_closed",
	[PROTO_ERR_USER_EXISTS] = "user_exists",
	[PROTO_ERR_INVALID_NAME] = "invalid_name",
	[PROTO_ERR_WEAK_PASSWORD] = "weak_password",
	[PROTO_ERR_RATE_LIMITED] = "rate_limited",
	[PROTO_ERR_AUTH_FAILED] = "auth_failed",
	[PROTO_ERR_BANNED] = "banned",
	[PROTO_ERR_ALREADY_LOGGED_IN] = "already_logged_in",
	[PROTO_ERR_NO_SUCH_ROOM] = "no_such_room",
	[PROTO_ERR_NOT_MEMBER] = "not_member",
	[PROTO_ERR_NO_SUCH_USER] = "no_such_user",
	[PROTO_ERR_MESSAGE_TOO_LONG] = "message_too_long",
	[PROTO_ERR_INTERNAL] = "internal_error",
};

/* Request types: wire name and whether a session must be logged in. */
struct proto_type_entry {
	const char	*name;
	bool		 needs_login;
};

static const struct proto_type_entry proto_types[PROTO_REQ__COUNT] = {
	[PROTO_REQ_PING] = { "ping", false },
	[PROTO_REQ_ECHO] = { "echo", false },
	[PROTO_REQ_TIME] = { "time", false },
	[PROTO_REQ_REGISTER] = { "register", false },
	[PROTO_REQ_LOGIN] = { "login", false },
	[PROTO_REQ_QUIT] = { "quit", false },
	[PROTO_REQ_JOIN] = { "join", true },
	[PROTO_REQ_LEAVE] = { "leave", true },
	[PROTO_REQ_MESSAGE] = { "message", true },
	[PROTO_REQ_TYPING] = { "typing", true },
	[PROTO_REQ_PRESENCE] = { "presence", true },
	[PROTO_REQ_HISTORY] = { "history", true },
	[PROTO_REQ_USERS] = { "users", true },
	[PROTO_REQ_ROOMS] = { "rooms", true },
	[PROTO_REQ_TOPIC] = { "topic", true },
	[PROTO_REQ_PASSWD] = { "passwd", true },
};

/* Presence states; a client may set every one but the last (offline). */
static const char *const proto_status_names[] = {
	[PROTO_STATUS_ONLINE] = "online",
	[PROTO_STATUS_AWAY] = "away",
	[PROTO_STATUS_BUSY] = "busy",
	[PROTO_STATUS_OFFLINE] = "offline",
};
#define PROTO_STATUS_COUNT \
	(sizeof proto_status_names / sizeof proto_status_names[0])

/* How a field's JSON value is checked and where it is stored. */
enum proto_kind {
	PROTO_KIND_STRING,	/* const char * at off, size_t length at aux */
	PROTO_KIND_INT,		/* int64_t at off, bool has_ at aux */
	PROTO_KIND_STATE,	/* "start"/"stop" -> bool at off */
	PROTO_KIND_STATUS	/* settable status -> enum proto_status at off */
};

struct proto_field {
	enum proto_type	 type;
	const char	*name;
	enum proto_kind	 kind;
	int		 flags;
#define PROTO_F_OPTIONAL 0x1
#define PROTO_F_NONEMPTY 0x2
#define PROTO_F_NAME	 0x4	/* a user or room name */
	int64_t		 min;		/* ints: smallest allowed value */
	size_t		 max;		/* strings: most bytes, 0 for no limit */
	size_t		 off;		/* offset of the value in the request */
	size_t		 aux;		/* offset of length/has_, or PROTO_NOAUX */
};

#define PROTO_OFF(f)	offsetof(struct proto_request, f)
#define PROTO_NOAUX	SIZE_MAX

#define PROTO_STR(t, n, fl, mx, f) \
	{ t, n, PROTO_KIND_STRING, fl, 0, mx, PROTO_OFF(f), PROTO_NOAUX }
#define PROTO_STRLEN(t, n, fl, mx, f, l) \
	{ t, n, PROTO_KIND_STRING, fl, 0, mx, PROTO_OFF(f), PROTO_OFF(l) }
#define PROTO_INT(t, n, mn, f, h) \
	{ t, n, PROTO_KIND_INT, PROTO_F_OPTIONAL, mn, 0, PROTO_OFF(f), \
	    PROTO_OFF(h) }

/*
 * Every field of every request type, checked in this order; the first one
 * that fails is the one named in the error.  Unknown fields are ignored.
 */
static const struct proto_field proto_fields[] = {
	PROTO_STRLEN(PROTO_REQ_ECHO, "content", 0, 0, content, content_len),

	PROTO_STR(PROTO_REQ_REGISTER, "user", PROTO_F_NAME, 0, user),
	PROTO_STRLEN(PROTO_REQ_REGISTER, "password", 0, 0, password,
	    password_len),
	PROTO_STR(PROTO_REQ_LOGIN, "user", PROTO_F_NAME, 0, user),
	PROTO_STRLEN(PROTO_REQ_LOGIN, "password", 0, 0, password,
	    password_len),

	PROTO_STR(PROTO_REQ_JOIN, "room", PROTO_F_NAME, 0, room),
	PROTO_STR(PROTO_REQ_LEAVE, "room", PROTO_F_NAME, 0, room),

	PROTO_STR(PROTO_REQ_MESSAGE, "to", PROTO_F_NAME, 0, to),
	PROTO_STRLEN(PROTO_REQ_MESSAGE, "content", PROTO_F_NONEMPTY, 0,
	    content, content_len),

	PROTO_STR(PROTO_REQ_TYPING, "to", PROTO_F_NAME, 0, to),
	{ PROTO_REQ_TYPING, "state", PROTO_KIND_STATE, 0, 0, 0,
	    PROTO_OFF(typing_start), PROTO_NOAUX },

	{ PROTO_REQ_PRESENCE, "status", PROTO_KIND_STATUS, 0, 0, 0,
	    PROTO_OFF(status), PROTO_NOAUX },
	PROTO_STR(PROTO_REQ_PRESENCE, "text", PROTO_F_OPTIONAL,
	    PROTO_TEXT_MAX, text),

	PROTO_STR(PROTO_REQ_HISTORY, "with", PROTO_F_NAME, 0, with),
	PROTO_INT(PROTO_REQ_HISTORY, "before", 0, before, has_before),
	PROTO_INT(PROTO_REQ_HISTORY, "after", 0, after, has_after),
	PROTO_INT(PROTO_REQ_HISTORY, "limit", 1, limit, has_limit),

	PROTO_STR(PROTO_REQ_USERS, "room", PROTO_F_OPTIONAL | PROTO_F_NAME, 0,
	    room),

	PROTO_STR(PROTO_REQ_TOPIC, "room", PROTO_F_NAME, 0, room),
	PROTO_STR(PROTO_REQ_TOPIC, "topic", 0, PROTO_TOPIC_MAX, topic),

	PROTO_STRLEN(PROTO_REQ_PASSWD, "old", 0, 0, old_password,
	    old_password_len),
	PROTO_STRLEN(PROTO_REQ_PASSWD, "new", 0, 0, new_password,
	    new_password_len),
};

static size_t	proto_utf8_prefix(const char *, size_t);
static void	proto_msg(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

/*
 * Length of the longest prefix of s that is well-formed UTF-8 (Unicode
 * table 3-7): the second byte's range depends on the lead byte, which is
 * what rules out overlongs, surrogates and code points past U+10FFFF.
 */
static size_t
proto_utf8_prefix(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, n, k;
	unsigned char		 c, lo, hi;

	while (i < len) {
		c = p[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		lo = 0x80;
		hi = 0xbf;
		if (c < 0xc2)		/* continuation, or overlong C0/C1 */
			return i;
		else if (c < 0xe0)
			n = 1;
		else if (c < 0xf0) {
			n = 2;
			if (c == 0xe0)
				lo = 0xa0;	/* overlong below U+0800 */
			else if (c == 0xed)
				hi = 0x9f;	/* surrogates U+D800..DFFF */
		} else if (c < 0xf5) {
			n = 3;
			if (c == 0xf0)
				lo = 0x90;	/* overlong below U+10000 */
			else if (c == 0xf4)
				hi = 0x8f;	/* past U+10FFFF */
		} else
			return i;
		if (len - i - 1 < n)
			return i;
		if (p[i + 1] < lo || p[i + 1] > hi)
			return i;
		for (k = 2; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return i;
		}
		i += n + 1;
	}
	return len;
}

bool
proto_utf8_valid(const char *s, size_t len)
{
	return proto_utf8_prefix(s, len) == len;
}

/*
 * Format a human message into msg.  Truncation could split a UTF-8
 * sequence, and the message ends up in a JSON string, so cut back to the
 * longest valid prefix.
 */
static void
proto_msg(char *msg, size_t msglen, const char *fmt, ...)
{
	va_list	ap;

	if (msg == NULL || msglen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
	msg[proto_utf8_prefix(msg, strlen(msg))] = '\0';
}

const char *
proto_err_code(enum proto_err err)
{
	if ((unsigned)err >= PROTO_ERR__COUNT)
		return NULL;
	return proto_err_names[err];	/* NULL for PROTO_OK */
}

const char *
proto_type_name(enum proto_type type)
{
	if ((unsigned)type >= PROTO_REQ__COUNT)
		return NULL;
	return proto_types[type].name;
}

const char *
proto_status_name(enum proto_status status)
{
	if ((unsigned)status >= PROTO_STATUS_COUNT)
		return NULL;
	return proto_status_names[status];
}

/* The characters allowed in user and room names. */
static bool
proto_name_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* True if name is 1..max name characters. */
static bool
proto_name_chars(const char *name, size_t max)
{
	size_t	i;

	for (i = 0; name[i] != '\0'; i++) {
		if (i >= max || !proto_name_char(name[i]))
			return false;
	}
	return i > 0;
}

bool
proto_user_name_valid(const char *name)
{
	if (name == NULL || name[0] == '.' || name[0] == '-')
		return false;
	return proto_name_chars(name, PROTO_USER_MAX);
}

bool
proto_room_name_valid(const char *name)
{
	if (name == NULL || name[0] != '#')
		return false;
	return proto_name_chars(name + 1, PROTO_ROOM_MAX);
}

/* Write v as exactly width decimal digits (v is within range). */
static char *
proto_put_digits(char *p, int v, int width)
{
	int	i;

	for (i = width - 1; i >= 0; i--, v /= 10)
		p[i] = '0' + v % 10;
	return p + width;
}

enum proto_frame
proto_frame(long long eol, size_t buffered, size_t max_line, size_t *take)
{
	*take = 0;
	if (eol < 0)
		/* No end yet: more than a line and a '\r' cannot become one. */
		return buffered > max_line + 1 ? PROTO_FRAME_TOO_LONG :
		    PROTO_FRAME_NEED_MORE;
	if ((unsigned long long)eol > max_line + 1)
		return PROTO_FRAME_TOO_LONG;
	*take = (size_t)eol + 1;
	return PROTO_FRAME_LINE;
}

size_t
proto_frame_strip(const char *line, size_t take)
{
	size_t	 len = take > 0 ? take - 1 : 0;	/* the '\n' */

	if (len > 0 && line[len - 1] == '\r')
		len--;
	return len;
}

void
proto_format_time(int64_t unix_ms, char *buf)
{
	struct tm	 tm;
	time_t		 secs;
	int64_t		 ms;
	char		*p = buf;

	if (unix_ms < PROTO_TIME_MIN_MS)
		unix_ms = PROTO_TIME_MIN_MS;
	if (unix_ms > PROTO_TIME_MAX_MS)
		unix_ms = PROTO_TIME_MAX_MS;

	/* Floor division, so that times before 1970 count down correctly. */
	ms = unix_ms % 1000;
	secs = unix_ms / 1000;
	if (ms < 0) {
		ms += 1000;
		secs--;
	}
	if (gmtime_r(&secs, &tm) == NULL)
		memset(&tm, 0, sizeof tm);	/* cannot happen once clamped */

	/* By hand: fixed width, no snprintf truncation to reason about. */
	p = proto_put_digits(p, tm.tm_year + 1900, 4);
	*p++ = '-';
	p = proto_put_digits(p, tm.tm_mon + 1, 2);
	*p++ = '-';
	p = proto_put_digits(p, tm.tm_mday, 2);
	*p++ = 'T';
	p = proto_put_digits(p, tm.tm_hour, 2);
	*p++ = ':';
	p = proto_put_digits(p, tm.tm_min, 2);
	*p++ = ':';
	p = proto_put_digits(p, tm.tm_sec, 2);
	*p++ = '.';
	p = proto_put_digits(p, (int)ms, 3);
	*p++ = 'Z';
	*p = '\0';
}

/* The object { "type": type } that every reply and event starts with. */
static json_t *
proto_new_typed(const char *type, const json_t *ref)
{
	json_t	*obj;

	obj = json_object();
	if (obj == NULL)
		return NULL;
	json_object_set_new(obj, "type", json_string(type));
	if (ref != NULL)
		json_object_set_new(obj, "ref", json_deep_copy(ref));
	return obj;
}

json_t *
proto_ok(const json_t *ref)
{
	return proto_new_typed("ok", ref);
}

json_t *
proto_pong(const json_t *ref)
{
	return proto_new_typed("pong", ref);
}

json_t *
proto_error(const json_t *ref, enum proto_err err, const char *message)
{
	json_t		*obj, *m = NULL;
	const char	*code;

	/* A bad code is our bug; the client still gets a well-formed error. */
	if ((code = proto_err_code(err)) == NULL)
		code = proto_err_names[PROTO_ERR_INTERNAL];
	if ((obj = proto_new_typed("error", ref)) == NULL)
		return NULL;
	json_object_set_new(obj, "code", json_string(code));
	if (message != NULL)
		m = json_string(message);	/* NULL if not UTF-8 */
	if (m == NULL)
		m = json_string(code);
	json_object_set_new(obj, "message", m);
	return obj;
}

char *
proto_dump(json_t *obj, size_t *len)
{
	const size_t	 flags = JSON_COMPACT | JSON_ENCODE_ANY;
	static char	 first[4096];	/* most lines: encoded once, copied */
	char		*buf;
	size_t		 need;

	*len = 0;
	if (obj == NULL)
		return NULL;
	need = json_dumpb(obj, first, sizeof(first), flags);
	if (need == 0) {
		json_decref(obj);
		return NULL;
	}
	buf = xmalloc(need + 1);
	if (need <= sizeof(first))
		memcpy(buf, first, need);
	else if (json_dumpb(obj, buf, need, flags) != need) {
		json_decref(obj);
		free(buf);
		return NULL;
	}
	json_decref(obj);
	buf[need] = '\n';
	*len = need + 1;
	return buf;
}

/*
 * JSON string escaping exactly as jansson's compact dump does it, so that
 * a line encoded here is byte for byte what proto_dump() gives.
 */
static size_t
proto_quoted_len(const char *s, size_t len)
{
	size_t	 n = 2, i;

	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\' || ch == '\b' || ch == '\f' ||
		    ch == '\n' || ch == '\r' || ch == '\t')
			n += 2;
		else if (ch < 0x20)
			n += 6;
		else
			n++;
	}
	return n;
}

static char *
proto_put_quoted(char *p, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t	 i;

	*p++ = '"';
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		char	 esc = 0;

		switch (ch) {
		case '"':	esc = '"'; break;
		case '\\':	esc = '\\'; break;
		case '\b':	esc = 'b'; break;
		case '\f':	esc = 'f'; break;
		case '\n':	esc = 'n'; break;
		case '\r':	esc = 'r'; break;
		case '\t':	esc = 't'; break;
		default:
			if (ch >= 0x20) {
				*p++ = (char)ch;
				continue;
			}
			memcpy(p, "\\u00", 4);
			p[4] = hex[ch >> 4];
			p[5] = hex[ch & 0xf];
			p += 6;
			continue;
		}
		*p++ = '\\';
		*p++ = esc;
	}
	*p++ = '"';
	return p;
}

static char *
proto_put_str(char *p, const char *s)
{
	size_t	 len = strlen(s);

	memcpy(p, s, len);
	return p + len;
}

char *
proto_message_line(int64_t id, const char *from, const char *to,
    const char *content, size_t content_len, int64_t ts_ms, size_t *len)
{
	char	 num[24], ts[PROTO_TIME_LEN];
	size_t	 from_len = strlen(from), to_len = strlen(to), cap;
	char	*buf, *p;

	snprintf(num, sizeof(num), "%" PRId64, id);
	proto_format_time(ts_ms, ts);
	cap = sizeof("{\"type\":\"message\",\"id\":,\"from\":,\"to\":,"
	    "\"content\":,\"timestamp\":\"\"}\n") + strlen(num) +
	    proto_quoted_len(from, from_len) + proto_quoted_len(to, to_len) +
	    proto_quoted_len(content, content_len) + strlen(ts);
	p = buf = xmalloc(cap);
	p = proto_put_str(p, "{\"type\":\"message\",\"id\":");
	p = proto_put_str(p, num);
	p = proto_put_str(p, ",\"from\":");
	p = proto_put_quoted(p, from, from_len);
	p = proto_put_str(p, ",\"to\":");
	p = proto_put_quoted(p, to, to_len);
	p = proto_put_str(p, ",\"content\":");
	p = proto_put_quoted(p, content, content_len);
	p = proto_put_str(p, ",\"timestamp\":\"");
	p = proto_put_str(p, ts);
	p = proto_put_str(p, "\"}\n");
	*len = (size_t)(p - buf);
	return buf;
}

/* The "ref" member of a reply (",\"ref\":..."), or nothing; its length. */
static size_t
proto_put_ref(char *p, const json_t *ref)
{
	const size_t	 flags = JSON_COMPACT | JSON_ENCODE_ANY;
	static const char key[] = ",\"ref\":";
	size_t		 n;

	if (ref == NULL)
		return 0;
	n = json_dumpb(ref, p != NULL ? p + sizeof(key) - 1 : NULL,
	    p != NULL ? SIZE_MAX : 0, flags);
	if (p != NULL)
		memcpy(p, key, sizeof(key) - 1);
	return sizeof(key) - 1 + n;
}

#define PROTO_HISTORY_HEAD	"{\"type\":\"ok\""
#define PROTO_HISTORY_LIST	",\"messages\":["
#define PROTO_HISTORY_MORE	"],\"more\":"

size_t
proto_history_overhead(const json_t *ref)
{
	return sizeof(PROTO_HISTORY_HEAD) - 1 + proto_put_ref(NULL, ref) +
	    sizeof(PROTO_HISTORY_LIST) - 1 + sizeof(PROTO_HISTORY_MORE) - 1 +
	    sizeof("false}\n") - 1;
}

char *
proto_history_line(const json_t *ref, char *const *events,
    const size_t *lens, size_t n, bool more, size_t *len)
{
	size_t	 cap = proto_history_overhead(ref), i;
	char	*buf, *p;

	for (i = 0; i < n; i++)
		cap += lens[i] + 1;
	p = buf = xmalloc(cap);
	p = proto_put_str(p, PROTO_HISTORY_HEAD);
	p += proto_put_ref(p, ref);
	p = proto_put_str(p, PROTO_HISTORY_LIST);
	for (i = 0; i < n; i++) {
		if (i > 0)
			*p++ = ',';
		memcpy(p, events[i], lens[i]);
		p += lens[i];
	}
	p = proto_put_str(p, PROTO_HISTORY_MORE);
	p = proto_put_str(p, more ? "true}\n" : "false}\n");
	*len = (size_t)(p - buf);
	return buf;
}

static void
proto_json_free(void *p)
{
	if (p != NULL) {
		explicit_bzero(p, malloc_usable_size(p));
		free(p);
	}
}

void
proto_json_wipe_freed(void)
{
	json_set_alloc_funcs(malloc, proto_json_free);
}

void
proto_request_clear(struct proto_request *req)
{
	/* Its secrets are wiped as jansson frees them (proto_json_wipe_freed). */
	json_decref(req->root);
	memset(req, 0, sizeof *req);
}

/* True if the first non-blank byte of the line opens an object. */
static bool
proto_looks_like_object(const char *line, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r' &&
		    line[i] != '\n')
			return line[i] == '{';
	}
	return false;
}

/*
 * jansson refuses the whole document when a number does not fit (an
 * integer past int64 or a real past double).  The contract calls that an
 * out-of-range field, so bad_request, not bad_json, provided the line is
 * otherwise an object: parsing again with integers as reals tells which.
 */
static enum proto_err
proto_parse_overflow(const char *line, size_t len, char *msg, size_t msglen)
{
	json_error_t	 error;
	json_t		*root;
	bool		 object;

	root = json_loadb(line, len,
	    JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL,
	    &error);
	if (root != NULL) {
		object = json_is_object(root);
		json_decref(root);
	} else if (json_error_code(&error) == json_error_numeric_overflow)
		object = proto_looks_like_object(line, len);
	else
		object = false;
	if (!object) {
		proto_msg(msg, msglen, "invalid JSON: not a JSON object");
		return PROTO_ERR_BAD_JSON;
	}
	proto_msg(msg, msglen,
	    "a number is out of range (integers must fit in 64 bits)");
	return PROTO_ERR_BAD_REQUEST;
}

/* Parse the line into req->root; it must be a JSON object. */
static enum proto_err
proto_parse(const char *line, size_t len, struct proto_request *req,
    char *msg, size_t msglen)
{
	json_error_t	 error;
	char		*near;

	req->root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
	    &error);
	if (req->root == NULL) {
		if (json_error_code(&error) == json_error_numeric_overflow)
			return proto_parse_overflow(line, len, msg, msglen);
		/* "near '...'" quotes the input, maybe a password: drop it. */
		if ((near = strstr(error.text, " near ")) != NULL)
			*near = '\0';
		proto_msg(msg, msglen, "invalid JSON: %s at byte %d",
		    error.text, error.position);
		return PROTO_ERR_BAD_JSON;
	}
	if (!json_is_object(req->root)) {
		proto_msg(msg, msglen, "invalid JSON: not a JSON object");
		return PROTO_ERR_BAD_JSON;
	}
	return PROTO_OK;
}

/* A ref is a short string or any int64; anything else is not echoed. */
static enum proto_err
proto_decode_ref(struct proto_request *req, char *msg, size_t msglen)
{
	json_t	*ref;

	ref = json_object_get(req->root, "ref");
	if (ref == NULL)
		return PROTO_OK;
	if (json_is_integer(ref) ||
	    (json_is_string(ref) && json_string_length(ref) <= PROTO_REF_MAX)) {
		req->ref = ref;
		return PROTO_OK;
	}
	proto_msg(msg, msglen, "field 'ref' must be a string of at most %d "
	    "bytes or an integer", PROTO_REF_MAX);
	return PROTO_ERR_BAD_REQUEST;
}

/*
 * True if v is the JSON string s, compared by length: jansson strings may
 * hold escaped NULs, which strcmp() would take for the end.
 */
static bool
proto_string_is(const json_t *v, const char *s)
{
	size_t	len = strlen(s);

	return json_is_string(v) && json_string_length(v) == len &&
	    memcmp(json_string_value(v), s, len) == 0;
}

static enum proto_err
proto_decode_type(struct proto_request *req, char *msg, size_t msglen)
{
	json_t		*type;
	const char	*name;
	size_t		 i, len;

	type = json_object_get(req->root, "type");
	if (type == NULL) {
		proto_msg(msg, msglen, "field 'type' is required");
		return PROTO_ERR_BAD_REQUEST;
	}
	if (!json_is_string(type)) {
		proto_msg(msg, msglen, "field 'type' must be a string");
		return PROTO_ERR_BAD_REQUEST;
	}
	name = json_string_value(type);
	len = json_string_length(type);
	/* By length: "ping\u0000x" is no more "ping" than "pingx" is. */
	for (i = 0; i < PROTO_REQ__COUNT; i++) {
		if (proto_string_is(type, proto_types[i].name)) {
			req->type = i;
			return PROTO_OK;
		}
	}
	if (len <= PROTO_TYPE_ECHO_MAX && strlen(name) == len)
		proto_msg(msg, msglen, "unknown type '%s'", name);
	else
		proto_msg(msg, msglen, "unknown type");
	return PROTO_ERR_UNKNOWN_TYPE;
}

static enum proto_err
proto_field_string(const struct proto_field *f, json_t *v,
    struct proto_request *req, char *msg, size_t msglen)
{
	char	*base = (char *)req;
	size_t	 len;

	if (!json_is_string(v)) {
		proto_msg(msg, msglen, "field '%s' must be a string", f->name);
		return PROTO_ERR_BAD_REQUEST;
	}
	len = json_string_length(v);
	if ((f->flags & PROTO_F_NONEMPTY) && len == 0) {
		proto_msg(msg, msglen, "field '%s' must not be empty", f->name);
		return PROTO_ERR_BAD_REQUEST;
	}
	if (f->max != 0 && len > f->max) {
		proto_msg(msg, msglen, "field '%s' must be at most %zu bytes",
		    f->name, f->max);
		return PROTO_ERR_BAD_REQUEST;
	}
	if (f->aux == PROTO_NOAUX && strlen(json_string_value(v)) != len) {
		/*
		 * An escaped NUL ("\u0000") is valid JSON.  Fields read as C
		 * strings must not be cut short by it: a name with one is
		 * no valid name (whatever the request), other text is
		 * refused.
		 */
		if (f->flags & PROTO_F_NAME) {
			proto_msg(msg, msglen, "field '%s' is no valid name: "
			    "it holds a NUL character", f->name);
			return PROTO_ERR_INVALID_NAME;
		}
		proto_msg(msg, msglen, "field '%s' must not contain "
		    "NUL characters", f->name);
		return PROTO_ERR_BAD_REQUEST;
	}
	*(const char **)(base + f->off) = json_string_value(v);
	if (f->aux != PROTO_NOAUX)
		*(size_t *)(base + f->aux) = len;
	return PROTO_OK;
}

static enum proto_err
proto_field_int(const struct proto_field *f, json_t *v,
    struct proto_request *req, char *msg, size_t msglen)
{
	char		*base = (char *)req;
	json_int_t	 n;

	if (!json_is_integer(v)) {
		proto_msg(msg, msglen, "field '%s' must be an integer",
		    f->name);
		return PROTO_ERR_BAD_REQUEST;
	}
	n = json_integer_value(v);
	if (n < f->min) {
		proto_msg(msg, msglen, "field '%s' must be at least %lld",
		    f->name, (long long)f->min);
		return PROTO_ERR_BAD_REQUEST;
	}
	*(int64_t *)(base + f->off) = n;
	*(bool *)(base + f->aux) = true;
	return PROTO_OK;
}

/* Find v in names[0..count), returning its index or -1. */
static int
proto_lookup(json_t *v, const char *const *names, size_t count)
{
	size_t	i;

	for (i = 0; i < count; i++) {
		if (proto_string_is(v, names[i]))
			return (int)i;
	}
	return -1;
}

static enum proto_err
proto_field_state(const struct proto_field *f, json_t *v,
    struct proto_request *req, char *msg, size_t msglen)
{
	static const char *const states[] = { "stop", "start" };
	int			 i;

	if ((i = proto_lookup(v, states, 2)) == -1) {
		proto_msg(msg, msglen,
		    "field '%s' must be \"start\" or \"stop\"", f->name);
		return PROTO_ERR_BAD_REQUEST;
	}
	*(bool *)((char *)req + f->off) = (i == 1);
	return PROTO_OK;
}

static enum proto_err
proto_field_status(const struct proto_field *f, json_t *v,
    struct proto_request *req, char *msg, size_t msglen)
{
	int	i;

	/* Offline is what the server says of a user, never what they say. */
	i = proto_lookup(v, proto_status_names, PROTO_STATUS_OFFLINE);
	if (i == -1) {
		proto_msg(msg, msglen,
		    "field '%s' must be \"online\", \"away\" or \"busy\"",
		    f->name);
		return PROTO_ERR_BAD_REQUEST;
	}
	*(enum proto_status *)((char *)req + f->off) = i;
	return PROTO_OK;
}

static enum proto_err
proto_decode_field(const struct proto_field *f, struct proto_request *req,
    char *msg, size_t msglen)
{
	json_t	*v;

	v = json_object_get(req->root, f->name);
	if (v == NULL) {
		if (f->flags & PROTO_F_OPTIONAL)
			return PROTO_OK;
		proto_msg(msg, msglen, "field '%s' is required", f->name);
		return PROTO_ERR_BAD_REQUEST;
	}
	switch (f->kind) {
	case PROTO_KIND_STRING:
		return proto_field_string(f, v, req, msg, msglen);
	case PROTO_KIND_INT:
		return proto_field_int(f, v, req, msg, msglen);
	case PROTO_KIND_STATE:
		return proto_field_state(f, v, req, msg, msglen);
	case PROTO_KIND_STATUS:
		return proto_field_status(f, v, req, msg, msglen);
	}
	return PROTO_ERR_INTERNAL;
}

static enum proto_err
proto_decode_fields(struct proto_request *req, char *msg, size_t msglen)
{
	const struct proto_field	*f;
	enum proto_err			 err;
	size_t				 i;

	for (i = 0; i < sizeof proto_fields / sizeof *proto_fields; i++) {
		f = &proto_fields[i];
		if (f->type != req->type)
			continue;
		if ((err = proto_decode_field(f, req, msg, msglen)) != PROTO_OK)
			return err;
	}
	return PROTO_OK;
}

enum proto_err
proto_decode(const char *line, size_t len, bool logged_in,
    struct proto_request *req, char *msg, size_t msglen)
{
	enum proto_err	err;

	memset(req, 0, sizeof *req);
	if (msg != NULL && msglen > 0)
		msg[0] = '\0';

	if (!proto_utf8_valid(line, len)) {
		proto_msg(msg, msglen, "invalid UTF-8 at byte %zu",
		    proto_utf8_prefix(line, len));
		return PROTO_ERR_BAD_UTF8;
	}
	if ((err = proto_parse(line, len, req, msg, msglen)) != PROTO_OK)
		return err;
	if ((err = proto_decode_ref(req, msg, msglen)) != PROTO_OK)
		return err;
	if ((err = proto_decode_type(req, msg, msglen)) != PROTO_OK)
		return err;
	if (!logged_in && proto_types[req->type].needs_login) {
		proto_msg(msg, msglen, "'%s' requires a login",
		    proto_types[req->type].name);
		return PROTO_ERR_AUTH_REQUIRED;
	}
	return proto_decode_fields(req, msg, msglen);
}
