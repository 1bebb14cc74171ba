/*
 * proto: the netsock wire protocol as plain data.  Turns one NDJSON line
 * into a typed, validated request (or a precise error code), and builds
 * reply and event objects into bytes.  No I/O, no global state, no
 * libevent/OpenSSL/SQLite: unit-tested and fuzzed on its own.
 */
#ifndef NETSOCK_PROTO_H
#define NETSOCK_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define PROTO_VERSION		1
#define PROTO_REF_MAX		64	/* bytes in a string ref */
#define PROTO_USER_MAX		32	/* characters in a user name */
#define PROTO_ROOM_MAX		64	/* characters after the '#' */
#define PROTO_PASSWORD_MIN	8
#define PROTO_PASSWORD_MAX	1024
#define PROTO_TIME_LEN		25	/* "2026-11-21T10:30:00.123Z" + NUL */
/*
 * Strings: "\u0000" is accepted (it is valid JSON) in content and
 * passwords, which are handled by length (content round-trips exactly);
 * a name containing it is invalid_name, whatever the request; in other
 * text it is bad_request; a type containing it is no known type
 * (unknown_type).  Object keys containing it are not accepted by the JSON
 * parser (bad_json).
 */

/* Error codes; the wire names live once, in proto.c's table. */
enum proto_err {
	PROTO_OK = 0,
	PROTO_ERR_BAD_JSON,
	PROTO_ERR_BAD_UTF8,
	PROTO_ERR_BAD_REQUEST,
	PROTO_ERR_UNKNOWN_TYPE,
	PROTO_ERR_AUTH_REQUIRED,
	PROTO_ERR_LINE_TOO_LONG,
	PROTO_ERR_REGISTRATION_CLOSED,
	PROTO_ERR_USER_EXISTS,
	PROTO_ERR_INVALID_NAME,
	PROTO_ERR_WEAK_PASSWORD,
	PROTO_ERR_RATE_LIMITED,
	PROTO_ERR_AUTH_FAILED,
	PROTO_ERR_BANNED,
	PROTO_ERR_ALREADY_LOGGED_IN,
	PROTO_ERR_NO_SUCH_ROOM,
	PROTO_ERR_NOT_MEMBER,
	PROTO_ERR_NO_SUCH_USER,
	PROTO_ERR_MESSAGE_TOO_LONG,
	PROTO_ERR_INTERNAL,		/* "internal_error": our fault, retry later */
	PROTO_ERR__COUNT
};

/* Request types, in the order of the table in proto.c. */
enum proto_type {
	PROTO_REQ_PING = 0,
	PROTO_REQ_ECHO,
	PROTO_REQ_TIME,
	PROTO_REQ_REGISTER,
	PROTO_REQ_LOGIN,
	PROTO_REQ_QUIT,
	PROTO_REQ_JOIN,
	PROTO_REQ_LEAVE,
	PROTO_REQ_MESSAGE,
	PROTO_REQ_TYPING,
	PROTO_REQ_PRESENCE,
	PROTO_REQ_HISTORY,
	PROTO_REQ_USERS,
	PROTO_REQ_ROOMS,
	PROTO_REQ_TOPIC,
	PROTO_REQ_PASSWD,
	PROTO_REQ__COUNT
};

enum proto_status {
	PROTO_STATUS_ONLINE = 0,
	PROTO_STATUS_AWAY,
	PROTO_STATUS_BUSY,
	PROTO_STATUS_OFFLINE
};

/*
 * A decoded request.  String fields are borrowed from 'root' and valid until
 * proto_request_clear().  A field the type does not use, or an optional field
 * that was absent, is NULL (strings) or has its has_* flag false.
 */
struct proto_request {
	json_t		*root;		/* the parsed line; owned */
	json_t		*ref;		/* borrowed from root, or NULL */
	enum proto_type	 type;

	const char	*content;	/* echo, message */
	size_t		 content_len;	/* bytes, for message_too_long */
	const char	*user;		/* register, login */
	const char	*password;	/* register, login */
	size_t		 password_len;
	const char	*room;		/* join, leave, topic, users (optional) */
	const char	*to;		/* message, typing */
	const char	*with;		/* history */
	const char	*topic;		/* topic */
	const char	*text;		/* presence (optional) */
	const char	*old_password;	/* passwd "old" */
	size_t		 old_password_len;
	const char	*new_password;	/* passwd "new" */
	size_t		 new_password_len;
	bool		 typing_start;	/* typing: true for "start" */
	enum proto_status status;	/* presence */
	bool		 has_before, has_after, has_limit;
	int64_t		 before, after, limit;
};

/*
 * Framing: what to do with buffered input, given the offset of its first
 * '\n' (-1 when there is none yet) and how many bytes are buffered.  A
 * line may hold max_line bytes plus a '\r' before its '\n'.  On
 * PROTO_FRAME_LINE, *take is the number of bytes to remove (the line and
 * its '\n'); proto_frame_strip then gives the length without "\r\n".
 */
enum proto_frame {
	PROTO_FRAME_NEED_MORE,
	PROTO_FRAME_LINE,
	PROTO_FRAME_TOO_LONG
};

enum proto_frame proto_frame(long long eol, size_t buffered, size_t max_line,
		    size_t *take);
/* Length of line (take bytes as framed) without its "\n" or "\r\n";
 * a stripped length over max_line is still too long. */
size_t		 proto_frame_strip(const char *line, size_t take);

/*
 * Decode one line (without its "\n" or "\r\n"; len bytes, not
 * NUL-terminated).  On PROTO_OK, *req is filled and must be released with
 * proto_request_clear().  On error, returns the code and writes a human
 * message into msg; req->ref is still set (and req must still be cleared)
 * whenever the ref itself was valid, so the error can echo it.
 *
 * Order of checks: UTF-8 (bad_utf8), JSON object (bad_json), ref
 * (bad_request without ref), type (bad_request / unknown_type), login
 * state (auth_required when !logged_in and the type needs a login), then
 * the fields of that type (bad_request naming the field).
 */
enum proto_err	 proto_decode(const char *line, size_t len, bool logged_in,
		    struct proto_request *req, char *msg, size_t msglen);
void		 proto_request_clear(struct proto_request *req);
/*
 * Have every block jansson frees wiped first: a request's tree, and the
 * buffers where its lexer keeps the text it reads, may hold a password.
 * Once per process, before any JSON is parsed (netsockd and netsockctl).
 */
void		 proto_json_wipe_freed(void);

/* The wire name of an error code ("bad_json", ...). */
const char	*proto_err_code(enum proto_err err);
/* The wire name of a request type ("ping", ...). */
const char	*proto_type_name(enum proto_type type);
const char	*proto_status_name(enum proto_status status);

/* Strict UTF-8 check: no overlongs, no surrogates, nothing past U+10FFFF. */
bool		 proto_utf8_valid(const char *s, size_t len);
/* Name rules from the contract. */
bool		 proto_user_name_valid(const char *name);
bool		 proto_room_name_valid(const char *name);	/* with '#' */

/* RFC 3339 UTC with milliseconds; buf has PROTO_TIME_LEN bytes. */
void		 proto_format_time(int64_t unix_ms, char *buf);

/*
 * Builders.  Each returns a new object reference.  'ref' may be NULL; a
 * non-NULL ref is copied in (the caller keeps its own reference).
 */
json_t		*proto_ok(const json_t *ref);
json_t		*proto_pong(const json_t *ref);
json_t		*proto_error(const json_t *ref, enum proto_err err,
		    const char *message);

/*
 * Serialise obj (any JSON value) compactly as one line ending in "\n".
 * Steals the reference to obj.  Returns malloc'd bytes, length in *len.
 */
char		*proto_dump(json_t *obj, size_t *len);
/*
 * The message event as one line, the same bytes proto_dump() gives for
 * {"type":"message","id","from","to","content","timestamp"}, encoded
 * directly: it is the line a busy server sends most.
 */
char		*proto_message_line(int64_t id, const char *from,
		    const char *to, const char *content, size_t content_len,
		    int64_t ts_ms, size_t *len);
/*
 * A history reply assembled from n message event lines (as
 * proto_message_line() gives them, without their "\n"): the same bytes
 * proto_dump() gives for {"type":"ok","ref":ref,"messages":[...],
 * "more":more}.  Its length without the events and the commas between
 * them is proto_history_overhead(ref) at most.
 */
size_t		 proto_history_overhead(const json_t *ref);
char		*proto_history_line(const json_t *ref, char *const *events,
		    const size_t *lens, size_t n, bool more, size_t *len);

#endif
