/* test_proto: unit tests for the wire-protocol codec (src/proto.c). */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "proto.h"
#include "xmalloc.h"

/* Repeated filler, so boundary lengths are visible in the source. */
#define S16	"aaaaaaaaaaaaaaaa"
#define S32	S16 S16
#define S64	S32 S32
#define S256	S64 S64 S64 S64
#define S1024	S256 S256 S256 S256

/*
 * Every password in these tests contains this; no error message may.
 */
#define SECRET	"hunter"

/* A string literal and its length, which may include NUL bytes. */
#define L(s)	.line = (s), .len = sizeof(s) - 1

enum ref_want {
	REF_NONE = 0,
	REF_STR,
	REF_INT
};

struct decode_case {
	const char	*name;
	const char	*line;
	size_t		 len;
	bool		 logged_in;
	enum proto_err	 err;
	enum ref_want	 ref;
	const char	*ref_str;
	int64_t		 ref_int;
	const char	*msg;		/* substring the message must contain */
};

/*
 * One row per path through proto_decode.  Each row is its own test case
 * (and TAP line), named "decode: <name>".
 */
static const struct decode_case decode_cases[] = {
	/* UTF-8: checked before anything else. */
	{ "utf8 lone continuation byte",
	    L("{\"type\":\"echo\",\"content\":\"\x80\"}"), true,
	    PROTO_ERR_BAD_UTF8, .msg = "UTF-8" },
	{ "utf8 overlong 2-byte c0 af",
	    L("{\"type\":\"echo\",\"content\":\"\xc0\xaf\"}"), true,
	    PROTO_ERR_BAD_UTF8, .msg = "byte 26" },
	{ "utf8 overlong c1 bf",
	    L("{\"type\":\"echo\",\"content\":\"\xc1\xbf\"}"), true,
	    PROTO_ERR_BAD_UTF8 },
	{ "utf8 overlong 3-byte e0 80 af",
	    L("{\"type\":\"echo\",\"content\":\"\xe0\x80\xaf\"}"), true,
	    PROTO_ERR_BAD_UTF8 },
	{ "utf8 overlong 4-byte f0 80 80 af",
	    L("{\"type\":\"echo\",\"content\":\"\xf0\x80\x80\xaf\"}"), true,
	    PROTO_ERR_BAD_UTF8 },
	{ "utf8 surrogate ed a0 80",
	    L("{\"type\":\"echo\",\"content\":\"\xed\xa0\x80\"}"), true,
	    PROTO_ERR_BAD_UTF8 },
	{ "utf8 past U+10FFFF f4 90 80 80",
	    L("{\"type\":\"echo\",\"content\":\"\xf4\x90\x80\x80\"}"), true,
	    PROTO_ERR_BAD_UTF8 },
	{ "utf8 byte ff",
	    L("{\"type\":\"echo\",\"content\":\"\xff\"}"), true,
	    PROTO_ERR_BAD_UTF8 },
	{ "utf8 truncated 2-byte at end of line",
	    L("{\"type\":\"ping\"}\xc3"), true, PROTO_ERR_BAD_UTF8,
	    .msg = "byte 15" },
	{ "utf8 truncated 3-byte at end of line",
	    L("{\"type\":\"ping\"}\xe2\x82"), true, PROTO_ERR_BAD_UTF8 },
	{ "utf8 truncated 4-byte at end of line",
	    L("{\"type\":\"ping\"}\xf0\x9f\x98"), true, PROTO_ERR_BAD_UTF8 },
	{ "utf8 checked before JSON",
	    L("\xff not json at all"), false, PROTO_ERR_BAD_UTF8,
	    .msg = "byte 0" },
	{ "utf8 checked before login state",
	    L("{\"type\":\"join\",\"room\":\"#\xc3\x28\"}"), false,
	    PROTO_ERR_BAD_UTF8 },
	{ "utf8 valid 2/3/4-byte content accepted",
	    L("{\"type\":\"echo\",\"content\":\"\xc3\xa9\xe2\x82\xac"
	    "\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"}"), false, PROTO_OK },

	/* JSON: must parse, and be an object. */
	{ "json empty line", L(""), true, PROTO_ERR_BAD_JSON,
	    .msg = "invalid JSON" },
	{ "json garbage", L("hello"), true, PROTO_ERR_BAD_JSON,
	    .msg = "invalid JSON" },
	{ "json truncated object", L("{\"type\":\"ping\""), true,
	    PROTO_ERR_BAD_JSON, .msg = "invalid JSON" },
	{ "json trailing garbage", L("{\"type\":\"ping\"} x"), true,
	    PROTO_ERR_BAD_JSON },
	{ "json two objects on one line", L("{\"type\":\"ping\"}{}"), true,
	    PROTO_ERR_BAD_JSON },
	{ "json array is not an object", L("[{\"type\":\"ping\"}]"), true,
	    PROTO_ERR_BAD_JSON, .msg = "not a JSON object" },
	{ "json empty array", L("[]"), true, PROTO_ERR_BAD_JSON },
	{ "json string is not an object", L("\"ping\""), true,
	    PROTO_ERR_BAD_JSON },
	{ "json number is not an object", L("42"), true, PROTO_ERR_BAD_JSON },
	{ "json null is not an object", L("null"), true, PROTO_ERR_BAD_JSON },
	{ "json duplicate key", L("{\"type\":\"ping\",\"type\":\"ping\"}"),
	    true, PROTO_ERR_BAD_JSON, .msg = "duplicate" },
	{ "json duplicate ref key", L("{\"ref\":1,\"type\":\"ping\",\"ref\":2}"),
	    true, PROTO_ERR_BAD_JSON },
	{ "json escaped NUL in content accepted (valid JSON)",
	    L("{\"type\":\"echo\",\"content\":\"a\\u0000b\"}"), true,
	    PROTO_OK },
	{ "json escaped NUL in topic is bad_request",
	    L("{\"type\":\"topic\",\"room\":\"#r\",\"topic\":\"a\\u0000\"}"),
	    true, PROTO_ERR_BAD_REQUEST, .msg = "topic" },
	/* An escaped NUL never cuts a string short (issue 10, defect 1). */
	{ "escaped NUL in type is unknown_type",
	    L("{\"type\":\"ping\\u0000x\"}"), true,
	    PROTO_ERR_UNKNOWN_TYPE },
	{ "escaped NUL ending type is unknown_type",
	    L("{\"type\":\"ping\\u0000\"}"), false,
	    PROTO_ERR_UNKNOWN_TYPE },
	{ "escaped NUL alone as type is unknown_type",
	    L("{\"type\":\"\\u0000\"}"), true, PROTO_ERR_UNKNOWN_TYPE },
	{ "escaped NUL in a login type before login is unknown_type",
	    L("{\"type\":\"join\\u0000\",\"room\":\"#r\"}"), false,
	    PROTO_ERR_UNKNOWN_TYPE },
	{ "escaped NUL in user name is invalid_name",
	    L("{\"type\":\"register\",\"user\":\"al\\u0000ice\","
	    "\"password\":\"" SECRET "99\"}"), false,
	    PROTO_ERR_INVALID_NAME, .msg = "user" },
	{ "escaped NUL ending login user name is invalid_name",
	    L("{\"type\":\"login\",\"user\":\"alice\\u0000\","
	    "\"password\":\"" SECRET "99\"}"), false,
	    PROTO_ERR_INVALID_NAME, .msg = "user" },
	{ "escaped NUL in join room is invalid_name",
	    L("{\"type\":\"join\",\"room\":\"#a\\u0000b\"}"), true,
	    PROTO_ERR_INVALID_NAME, .msg = "room" },
	{ "escaped NUL in leave room is invalid_name",
	    L("{\"type\":\"leave\",\"room\":\"#a\\u0000\"}"), true,
	    PROTO_ERR_INVALID_NAME, .msg = "room" },
	{ "escaped NUL in users room is invalid_name",
	    L("{\"type\":\"users\",\"room\":\"#a\\u0000\"}"), true,
	    PROTO_ERR_INVALID_NAME, .msg = "room" },
	{ "escaped NUL in topic room is invalid_name",
	    L("{\"type\":\"topic\",\"room\":\"#a\\u0000\","
	    "\"topic\":\"t\"}"), true, PROTO_ERR_INVALID_NAME,
	    .msg = "room" },
	{ "escaped NUL in message to is invalid_name",
	    L("{\"type\":\"message\",\"to\":\"bob\\u0000\","
	    "\"content\":\"x\"}"), true, PROTO_ERR_INVALID_NAME,
	    .msg = "to" },
	{ "escaped NUL in typing to is invalid_name",
	    L("{\"type\":\"typing\",\"to\":\"#r\\u0000\","
	    "\"state\":\"start\"}"), true, PROTO_ERR_INVALID_NAME,
	    .msg = "to" },
	{ "escaped NUL in history with is invalid_name",
	    L("{\"type\":\"history\",\"with\":\"\\u0000bob\"}"), true,
	    PROTO_ERR_INVALID_NAME, .msg = "with" },
	{ "escaped NUL in typing state is bad_request",
	    L("{\"type\":\"typing\",\"to\":\"#r\","
	    "\"state\":\"start\\u0000\"}"), true, PROTO_ERR_BAD_REQUEST,
	    .msg = "state" },
	{ "escaped NUL in presence status is bad_request",
	    L("{\"type\":\"presence\",\"status\":\"away\\u0000x\"}"),
	    true, PROTO_ERR_BAD_REQUEST, .msg = "status" },
	{ "escaped NUL in presence text is bad_request",
	    L("{\"type\":\"presence\",\"status\":\"away\","
	    "\"text\":\"lunch\\u0000\"}"), true, PROTO_ERR_BAD_REQUEST,
	    .msg = "text" },
	{ "escaped NUL in message content accepted",
	    L("{\"type\":\"message\",\"to\":\"#r\","
	    "\"content\":\"\\u0000\"}"), true, PROTO_OK },
	{ "escaped NUL in password accepted (by length)",
	    L("{\"type\":\"login\",\"user\":\"alice\","
	    "\"password\":\"" SECRET "\\u000099\"}"), false, PROTO_OK },
	{ "escaped NUL in string ref is echoed",
	    L("{\"type\":\"ping\",\"ref\":\"a\\u0000b\"}"), true,
	    PROTO_OK, REF_STR, "a" },
	{ "json escaped NUL in key rejected",
	    L("{\"type\":\"ping\",\"a\\u0000\":1}"), true, PROTO_ERR_BAD_JSON },
	{ "json raw NUL byte in string rejected",
	    L("{\"type\":\"echo\",\"content\":\"a\0b\"}"), true,
	    PROTO_ERR_BAD_JSON },
	{ "json raw NUL byte after object rejected",
	    L("{\"type\":\"ping\"}\0"), true, PROTO_ERR_BAD_JSON },
	{ "json lone surrogate escape rejected",
	    L("{\"type\":\"echo\",\"content\":\"\\ud800\"}"), true,
	    PROTO_ERR_BAD_JSON },
	{ "json raw control character in string rejected",
	    L("{\"type\":\"echo\",\"content\":\"a\tb\"}"), true,
	    PROTO_ERR_BAD_JSON },
	{ "json message hides quoted password",
	    L("{\"type\":\"login\",\"user\":\"bob\",\"password\":\"" SECRET
	    "\x01\"}"), false, PROTO_ERR_BAD_JSON, .msg = "invalid JSON" },
	{ "json whitespace around object accepted",
	    L(" \t{\"type\":\"ping\"} \t"), false, PROTO_OK },
	{ "json big integer inside an array is bad_json",
	    L("[99999999999999999999]"), true, PROTO_ERR_BAD_JSON },
	{ "json real overflow inside an array is bad_json",
	    L(" [1e400]"), true, PROTO_ERR_BAD_JSON },
	{ "json big integer in truncated object is bad_json",
	    L("{\"type\":\"ping\",\"x\":99999999999999999999"), true,
	    PROTO_ERR_BAD_JSON },
	{ "json big integer field is bad_request",
	    L("{\"type\":\"ping\",\"x\":99999999999999999999}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "out of range" },
	{ "json big negative integer field is bad_request",
	    L("{\"type\":\"ping\",\"x\":-9223372036854775809}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "out of range" },
	{ "json real overflow field is bad_request",
	    L("{\"type\":\"ping\",\"x\":1e400}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "out of range" },
	{ "json big history before is bad_request",
	    L("{\"type\":\"history\",\"with\":\"#a\","
	    "\"before\":18446744073709551616}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "out of range" },

	/* ref: string of at most 64 bytes or an int64; else no ref. */
	{ "ref absent", L("{\"type\":\"ping\"}"), false, PROTO_OK },
	{ "ref empty string", L("{\"type\":\"ping\",\"ref\":\"\"}"), false,
	    PROTO_OK, REF_STR, "" },
	{ "ref string 64 bytes",
	    L("{\"type\":\"ping\",\"ref\":\"" S64 "\"}"), false, PROTO_OK,
	    REF_STR, S64 },
	{ "ref string 64 bytes of multibyte characters",
	    L("{\"type\":\"ping\",\"ref\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9" S32 "\"}"), false, PROTO_OK,
	    REF_STR, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9" S32 },
	{ "ref string 65 bytes rejected",
	    L("{\"type\":\"ping\",\"ref\":\"" S64 "b\"}"), false,
	    PROTO_ERR_BAD_REQUEST, .msg = "'ref'" },
	{ "ref integer", L("{\"type\":\"ping\",\"ref\":42}"), false,
	    PROTO_OK, REF_INT, .ref_int = 42 },
	{ "ref integer zero", L("{\"ref\":0,\"type\":\"ping\"}"), false,
	    PROTO_OK, REF_INT, .ref_int = 0 },
	{ "ref INT64_MAX",
	    L("{\"type\":\"ping\",\"ref\":9223372036854775807}"), false,
	    PROTO_OK, REF_INT, .ref_int = INT64_MAX },
	{ "ref INT64_MIN",
	    L("{\"type\":\"ping\",\"ref\":-9223372036854775808}"), false,
	    PROTO_OK, REF_INT, .ref_int = INT64_MIN },
	{ "ref 2^63 is bad_request",
	    L("{\"type\":\"ping\",\"ref\":9223372036854775808}"), false,
	    PROTO_ERR_BAD_REQUEST, .msg = "out of range" },
	{ "ref -2^63-1 is bad_request",
	    L("{\"type\":\"ping\",\"ref\":-9223372036854775809}"), false,
	    PROTO_ERR_BAD_REQUEST, .msg = "out of range" },
	{ "ref real rejected", L("{\"type\":\"ping\",\"ref\":1.5}"), false,
	    PROTO_ERR_BAD_REQUEST, .msg = "'ref'" },
	{ "ref integral real rejected", L("{\"type\":\"ping\",\"ref\":1.0}"),
	    false, PROTO_ERR_BAD_REQUEST, .msg = "'ref'" },
	{ "ref exponent real rejected", L("{\"type\":\"ping\",\"ref\":1e2}"),
	    false, PROTO_ERR_BAD_REQUEST, .msg = "'ref'" },
	{ "ref true rejected", L("{\"type\":\"ping\",\"ref\":true}"), false,
	    PROTO_ERR_BAD_REQUEST, .msg = "'ref'" },
	{ "ref false rejected", L("{\"type\":\"ping\",\"ref\":false}"), false,
	    PROTO_ERR_BAD_REQUEST, .msg = "'ref'" },
	{ "ref null rejected", L("{\"type\":\"ping\",\"ref\":null}"), false,
	    PROTO_ERR_BAD_REQUEST, .msg = "'ref'" },
	{ "ref array rejected", L("{\"type\":\"ping\",\"ref\":[1]}"), false,
	    PROTO_ERR_BAD_REQUEST, .msg = "'ref'" },
	{ "ref object rejected", L("{\"type\":\"ping\",\"ref\":{}}"), false,
	    PROTO_ERR_BAD_REQUEST, .msg = "'ref'" },
	{ "ref checked before type", L("{\"ref\":null}"), false,
	    PROTO_ERR_BAD_REQUEST, .msg = "'ref'" },
	{ "ref checked before login state",
	    L("{\"type\":\"join\",\"ref\":true}"), false,
	    PROTO_ERR_BAD_REQUEST, .msg = "'ref'" },
	{ "ref kept when type missing", L("{\"ref\":\"r1\"}"), false,
	    PROTO_ERR_BAD_REQUEST, REF_STR, "r1", .msg = "'type'" },
	{ "ref kept when type unknown",
	    L("{\"ref\":7,\"type\":\"nope\"}"), true,
	    PROTO_ERR_UNKNOWN_TYPE, REF_INT, .ref_int = 7 },
	{ "ref kept on auth_required",
	    L("{\"type\":\"rooms\",\"ref\":\"r2\"}"), false,
	    PROTO_ERR_AUTH_REQUIRED, REF_STR, "r2" },
	{ "ref kept on bad field",
	    L("{\"type\":\"echo\",\"ref\":-3,\"content\":1}"), false,
	    PROTO_ERR_BAD_REQUEST, REF_INT, .ref_int = -3,
	    .msg = "'content'" },

	/* type: a known string. */
	{ "type missing", L("{}"), true, PROTO_ERR_BAD_REQUEST,
	    .msg = "field 'type' is required" },
	{ "type integer", L("{\"type\":5}"), true, PROTO_ERR_BAD_REQUEST,
	    .msg = "field 'type' must be a string" },
	{ "type null", L("{\"type\":null}"), true, PROTO_ERR_BAD_REQUEST,
	    .msg = "field 'type' must be a string" },
	{ "type array", L("{\"type\":[\"ping\"]}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "'type'" },
	{ "type unknown", L("{\"type\":\"dance\"}"), true,
	    PROTO_ERR_UNKNOWN_TYPE, .msg = "unknown type 'dance'" },
	{ "type unknown before login", L("{\"type\":\"dance\"}"), false,
	    PROTO_ERR_UNKNOWN_TYPE },
	{ "type empty string", L("{\"type\":\"\"}"), true,
	    PROTO_ERR_UNKNOWN_TYPE },
	{ "type is case-sensitive", L("{\"type\":\"PING\"}"), true,
	    PROTO_ERR_UNKNOWN_TYPE },
	{ "type reply name is not a request", L("{\"type\":\"ok\"}"), true,
	    PROTO_ERR_UNKNOWN_TYPE },
	{ "type long unknown not quoted back",
	    L("{\"type\":\"" S64 "\"}"), true, PROTO_ERR_UNKNOWN_TYPE,
	    .msg = "unknown type" },

	/* Login gating: only six types before login, fields unchecked. */
	{ "before login ping", L("{\"type\":\"ping\"}"), false, PROTO_OK },
	{ "before login echo", L("{\"type\":\"echo\",\"content\":\"x\"}"),
	    false, PROTO_OK },
	{ "before login time", L("{\"type\":\"time\"}"), false, PROTO_OK },
	{ "before login register",
	    L("{\"type\":\"register\",\"user\":\"a\",\"password\":\"" SECRET
	    "22\"}"), false, PROTO_OK },
	{ "before login login",
	    L("{\"type\":\"login\",\"user\":\"a\",\"password\":\"" SECRET
	    "22\"}"), false, PROTO_OK },
	{ "before login quit", L("{\"type\":\"quit\"}"), false, PROTO_OK },
	{ "before login join", L("{\"type\":\"join\"}"), false,
	    PROTO_ERR_AUTH_REQUIRED, .msg = "'join'" },
	{ "before login leave", L("{\"type\":\"leave\",\"room\":\"#a\"}"),
	    false, PROTO_ERR_AUTH_REQUIRED },
	{ "before login message", L("{\"type\":\"message\",\"to\":1}"), false,
	    PROTO_ERR_AUTH_REQUIRED },
	{ "before login typing", L("{\"type\":\"typing\"}"), false,
	    PROTO_ERR_AUTH_REQUIRED },
	{ "before login presence", L("{\"type\":\"presence\"}"), false,
	    PROTO_ERR_AUTH_REQUIRED },
	{ "before login history", L("{\"type\":\"history\"}"), false,
	    PROTO_ERR_AUTH_REQUIRED },
	{ "before login users", L("{\"type\":\"users\"}"), false,
	    PROTO_ERR_AUTH_REQUIRED },
	{ "before login rooms", L("{\"type\":\"rooms\"}"), false,
	    PROTO_ERR_AUTH_REQUIRED },
	{ "before login topic", L("{\"type\":\"topic\"}"), false,
	    PROTO_ERR_AUTH_REQUIRED },
	{ "before login passwd", L("{\"type\":\"passwd\"}"), false,
	    PROTO_ERR_AUTH_REQUIRED },
	{ "after login ping", L("{\"type\":\"ping\"}"), true, PROTO_OK },
	{ "after login register still decodes",
	    L("{\"type\":\"register\",\"user\":\"a\",\"password\":\"" SECRET
	    "22\"}"), true, PROTO_OK },
	{ "after login rooms", L("{\"type\":\"rooms\"}"), true, PROTO_OK },

	/* echo */
	{ "echo content missing", L("{\"type\":\"echo\"}"), false,
	    PROTO_ERR_BAD_REQUEST, .msg = "field 'content' is required" },
	{ "echo content integer", L("{\"type\":\"echo\",\"content\":5}"),
	    false, PROTO_ERR_BAD_REQUEST,
	    .msg = "field 'content' must be a string" },
	{ "echo content null", L("{\"type\":\"echo\",\"content\":null}"),
	    false, PROTO_ERR_BAD_REQUEST, .msg = "'content'" },
	{ "echo empty content allowed",
	    L("{\"type\":\"echo\",\"content\":\"\"}"), false, PROTO_OK },

	/* register and login */
	{ "register user missing",
	    L("{\"type\":\"register\",\"password\":\"" SECRET "22\"}"), false,
	    PROTO_ERR_BAD_REQUEST, .msg = "field 'user' is required" },
	{ "register user integer",
	    L("{\"type\":\"register\",\"user\":1,\"password\":\"" SECRET
	    "22\"}"), false, PROTO_ERR_BAD_REQUEST, .msg = "'user'" },
	{ "register password missing",
	    L("{\"type\":\"register\",\"user\":\"a\"}"), false,
	    PROTO_ERR_BAD_REQUEST, .msg = "field 'password' is required" },
	{ "register password array",
	    L("{\"type\":\"register\",\"user\":\"a\",\"password\":[\"" SECRET
	    "\"]}"), false, PROTO_ERR_BAD_REQUEST,
	    .msg = "field 'password' must be a string" },
	{ "register bad name is not proto's business",
	    L("{\"type\":\"register\",\"user\":\".x y\",\"password\":\"s\"}"),
	    false, PROTO_OK },
	{ "login user missing",
	    L("{\"type\":\"login\",\"password\":\"" SECRET "22\"}"), false,
	    PROTO_ERR_BAD_REQUEST, .msg = "'user'" },
	{ "login user object",
	    L("{\"type\":\"login\",\"user\":{},\"password\":\"" SECRET
	    "22\"}"), false, PROTO_ERR_BAD_REQUEST, .msg = "'user'" },
	{ "login password missing", L("{\"type\":\"login\",\"user\":\"a\"}"),
	    false, PROTO_ERR_BAD_REQUEST, .msg = "'password'" },
	{ "login password integer",
	    L("{\"type\":\"login\",\"user\":\"a\",\"password\":12345678}"),
	    false, PROTO_ERR_BAD_REQUEST, .msg = "'password'" },

	/* join, leave */
	{ "join room missing", L("{\"type\":\"join\"}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "field 'room' is required" },
	{ "join room integer", L("{\"type\":\"join\",\"room\":1}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "field 'room' must be a string" },
	{ "leave room missing", L("{\"type\":\"leave\"}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "'room'" },
	{ "leave room object", L("{\"type\":\"leave\",\"room\":{}}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "'room'" },

	/* topic */
	{ "topic room missing", L("{\"type\":\"topic\",\"topic\":\"t\"}"),
	    true, PROTO_ERR_BAD_REQUEST, .msg = "'room'" },
	{ "topic topic missing", L("{\"type\":\"topic\",\"room\":\"#a\"}"),
	    true, PROTO_ERR_BAD_REQUEST, .msg = "field 'topic' is required" },
	{ "topic topic integer",
	    L("{\"type\":\"topic\",\"room\":\"#a\",\"topic\":1}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "field 'topic' must be a string" },
	{ "topic topic 1024 bytes allowed",
	    L("{\"type\":\"topic\",\"room\":\"#a\",\"topic\":\"" S1024 "\"}"),
	    true, PROTO_OK },
	{ "topic topic 1025 bytes rejected",
	    L("{\"type\":\"topic\",\"room\":\"#a\",\"topic\":\"" S1024
	    "b\"}"), true, PROTO_ERR_BAD_REQUEST,
	    .msg = "field 'topic' must be at most 1024 bytes" },
	{ "topic empty topic allowed",
	    L("{\"type\":\"topic\",\"room\":\"#a\",\"topic\":\"\"}"), true,
	    PROTO_OK },

	/* message */
	{ "message to missing", L("{\"type\":\"message\",\"content\":\"x\"}"),
	    true, PROTO_ERR_BAD_REQUEST, .msg = "field 'to' is required" },
	{ "message to integer",
	    L("{\"type\":\"message\",\"to\":1,\"content\":\"x\"}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "field 'to' must be a string" },
	{ "message content missing", L("{\"type\":\"message\",\"to\":\"#a\"}"),
	    true, PROTO_ERR_BAD_REQUEST, .msg = "'content'" },
	{ "message content empty",
	    L("{\"type\":\"message\",\"to\":\"#a\",\"content\":\"\"}"), true,
	    PROTO_ERR_BAD_REQUEST,
	    .msg = "field 'content' must not be empty" },
	{ "message content integer",
	    L("{\"type\":\"message\",\"to\":\"#a\",\"content\":1}"), true,
	    PROTO_ERR_BAD_REQUEST,
	    .msg = "field 'content' must be a string" },
	{ "message fields checked in order",
	    L("{\"type\":\"message\",\"to\":false,\"content\":\"\"}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "'to'" },

	/* typing */
	{ "typing to missing", L("{\"type\":\"typing\",\"state\":\"start\"}"),
	    true, PROTO_ERR_BAD_REQUEST, .msg = "'to'" },
	{ "typing to null",
	    L("{\"type\":\"typing\",\"to\":null,\"state\":\"start\"}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "'to'" },
	{ "typing state missing", L("{\"type\":\"typing\",\"to\":\"#a\"}"),
	    true, PROTO_ERR_BAD_REQUEST, .msg = "field 'state' is required" },
	{ "typing state uppercase",
	    L("{\"type\":\"typing\",\"to\":\"#a\",\"state\":\"START\"}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "'state'" },
	{ "typing state other word",
	    L("{\"type\":\"typing\",\"to\":\"#a\",\"state\":\"started\"}"),
	    true, PROTO_ERR_BAD_REQUEST, .msg = "'state'" },
	{ "typing state bool",
	    L("{\"type\":\"typing\",\"to\":\"#a\",\"state\":true}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "'state'" },

	/* presence */
	{ "presence status missing", L("{\"type\":\"presence\"}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "field 'status' is required" },
	{ "presence status offline rejected",
	    L("{\"type\":\"presence\",\"status\":\"offline\"}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "'status'" },
	{ "presence status unknown word",
	    L("{\"type\":\"presence\",\"status\":\"idle\"}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "'status'" },
	{ "presence status integer",
	    L("{\"type\":\"presence\",\"status\":1}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "'status'" },
	{ "presence text integer",
	    L("{\"type\":\"presence\",\"status\":\"away\",\"text\":1}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "field 'text' must be a string" },
	{ "presence text null",
	    L("{\"type\":\"presence\",\"status\":\"away\",\"text\":null}"),
	    true, PROTO_ERR_BAD_REQUEST, .msg = "'text'" },
	{ "presence text 256 bytes allowed",
	    L("{\"type\":\"presence\",\"status\":\"away\",\"text\":\"" S256
	    "\"}"), true, PROTO_OK },
	{ "presence text 257 bytes rejected",
	    L("{\"type\":\"presence\",\"status\":\"away\",\"text\":\"" S256
	    "b\"}"), true, PROTO_ERR_BAD_REQUEST,
	    .msg = "field 'text' must be at most 256 bytes" },

	/* history */
	{ "history with missing", L("{\"type\":\"history\"}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "field 'with' is required" },
	{ "history with integer", L("{\"type\":\"history\",\"with\":1}"),
	    true, PROTO_ERR_BAD_REQUEST, .msg = "'with'" },
	{ "history before negative",
	    L("{\"type\":\"history\",\"with\":\"#a\",\"before\":-1}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "field 'before' must be at least 0" },
	{ "history before real",
	    L("{\"type\":\"history\",\"with\":\"#a\",\"before\":1.5}"), true,
	    PROTO_ERR_BAD_REQUEST,
	    .msg = "field 'before' must be an integer" },
	{ "history before string",
	    L("{\"type\":\"history\",\"with\":\"#a\",\"before\":\"1\"}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "'before'" },
	{ "history before null",
	    L("{\"type\":\"history\",\"with\":\"#a\",\"before\":null}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "'before'" },
	{ "history after negative",
	    L("{\"type\":\"history\",\"with\":\"#a\",\"after\":-1}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "field 'after' must be at least 0" },
	{ "history after bool",
	    L("{\"type\":\"history\",\"with\":\"#a\",\"after\":true}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "'after'" },
	{ "history limit zero",
	    L("{\"type\":\"history\",\"with\":\"#a\",\"limit\":0}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "field 'limit' must be at least 1" },
	{ "history limit negative",
	    L("{\"type\":\"history\",\"with\":\"#a\",\"limit\":-5}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "'limit'" },
	{ "history limit string",
	    L("{\"type\":\"history\",\"with\":\"#a\",\"limit\":\"10\"}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "field 'limit' must be an integer" },
	{ "history limit INT64_MIN",
	    L("{\"type\":\"history\",\"with\":\"#a\","
	    "\"limit\":-9223372036854775808}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "'limit'" },

	/* users */
	{ "users room integer", L("{\"type\":\"users\",\"room\":1}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "field 'room' must be a string" },
	{ "users room null", L("{\"type\":\"users\",\"room\":null}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "'room'" },

	/* passwd */
	{ "passwd old missing",
	    L("{\"type\":\"passwd\",\"new\":\"" SECRET "22\"}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "field 'old' is required" },
	{ "passwd old integer",
	    L("{\"type\":\"passwd\",\"old\":1,\"new\":\"" SECRET "22\"}"),
	    true, PROTO_ERR_BAD_REQUEST, .msg = "'old'" },
	{ "passwd new missing",
	    L("{\"type\":\"passwd\",\"old\":\"" SECRET "11\"}"), true,
	    PROTO_ERR_BAD_REQUEST, .msg = "field 'new' is required" },
	{ "passwd new null",
	    L("{\"type\":\"passwd\",\"old\":\"" SECRET "11\",\"new\":null}"),
	    true, PROTO_ERR_BAD_REQUEST,
	    .msg = "field 'new' must be a string" },
};
#define NDECODE	(sizeof decode_cases / sizeof decode_cases[0])

/* Run one row of decode_cases (passed as the cmocka state). */
static void
test_decode_case(void **state)
{
	const struct decode_case	*c = *state;
	struct proto_request		 req;
	char				 msg[256];
	enum proto_err			 err;

	memset(msg, 'X', sizeof msg);
	err = proto_decode(c->line, c->len, c->logged_in, &req, msg,
	    sizeof msg);
	assert_int_equal(err, c->err);
	assert_non_null(memchr(msg, '\0', sizeof msg));
	assert_true(proto_utf8_valid(msg, strlen(msg)));
	assert_null(strstr(msg, SECRET));
	if (c->err == PROTO_OK) {
		assert_string_equal(msg, "");
		assert_non_null(req.root);
		assert_true(json_is_object(req.root));
	} else
		assert_true(msg[0] != '\0');
	if (c->msg != NULL)
		assert_non_null(strstr(msg, c->msg));

	switch (c->ref) {
	case REF_NONE:
		assert_null(req.ref);
		break;
	case REF_STR:
		assert_true(json_is_string(req.ref));
		assert_string_equal(json_string_value(req.ref), c->ref_str);
		assert_ptr_equal(req.ref, json_object_get(req.root, "ref"));
		break;
	case REF_INT:
		assert_true(json_is_integer(req.ref));
		assert_true(json_integer_value(req.ref) == c->ref_int);
		assert_ptr_equal(req.ref, json_object_get(req.root, "ref"));
		break;
	}
	proto_request_clear(&req);
	assert_null(req.root);
	assert_null(req.ref);
	proto_request_clear(&req);	/* twice is harmless */
}

/* Decode a NUL-terminated line that must succeed. */
static void
decode_ok(const char *line, bool logged_in, struct proto_request *req)
{
	char	msg[256];

	assert_int_equal(proto_decode(line, strlen(line), logged_in, req, msg,
	    sizeof msg), PROTO_OK);
}

/* Every optional or unused member of a decoded request is empty. */
static void
assert_untouched(const struct proto_request *req)
{
	assert_null(req->ref);
	assert_null(req->content);
	assert_int_equal(req->content_len, 0);
	assert_null(req->user);
	assert_null(req->password);
	assert_int_equal(req->password_len, 0);
	assert_null(req->room);
	assert_null(req->to);
	assert_null(req->with);
	assert_null(req->topic);
	assert_null(req->text);
	assert_null(req->old_password);
	assert_null(req->new_password);
	assert_false(req->typing_start);
	assert_false(req->has_before);
	assert_false(req->has_after);
	assert_false(req->has_limit);
}

static void
test_decode_fieldless_types(void **state)
{
	static const struct {
		const char	*line;
		enum proto_type	 type;
	} cases[] = {
		{ "{\"type\":\"ping\"}", PROTO_REQ_PING },
		{ "{\"type\":\"time\",\"zone\":\"UTC\"}", PROTO_REQ_TIME },
		{ "{\"type\":\"quit\",\"content\":5}", PROTO_REQ_QUIT },
		{ "{\"type\":\"rooms\",\"room\":1,\"x\":[{}]}", PROTO_REQ_ROOMS },
		{ "{\"type\":\"users\"}", PROTO_REQ_USERS },
	};
	struct proto_request	req;
	size_t			i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		decode_ok(cases[i].line, true, &req);
		assert_int_equal(req.type, cases[i].type);
		assert_untouched(&req);
		proto_request_clear(&req);
	}
}

static void
test_decode_echo_fields(void **state)
{
	struct proto_request	req;

	decode_ok("{\"content\":\"h\\u00e9 \xe2\x82\xac\",\"type\":\"echo\","
	    "\"extra\":true}", false, &req);
	assert_int_equal(req.type, PROTO_REQ_ECHO);
	assert_string_equal(req.content, "h\xc3\xa9 \xe2\x82\xac");
	assert_int_equal(req.content_len, 7);
	proto_request_clear(&req);

	decode_ok("{\"type\":\"echo\",\"content\":\"\"}", false, &req);
	assert_string_equal(req.content, "");
	assert_int_equal(req.content_len, 0);
	proto_request_clear(&req);

	/* An escaped NUL is content like any other byte, kept by length. */
	decode_ok("{\"type\":\"echo\",\"content\":\"a\\u0000b\"}", false,
	    &req);
	assert_int_equal(req.content_len, 3);
	assert_memory_equal(req.content, "a\0b", 3);
	proto_request_clear(&req);
}

static void
test_decode_name_with_nul_is_invalid_name(void **state)
{
	struct proto_request	req;
	char			msg[256];

	/* Not a name cut short at the NUL ("alice"), nor any other. */
	assert_int_equal(proto_decode("{\"type\":\"login\",\"user\":"
	    "\"alice\\u0000x\",\"password\":\"password1\"}", 61, false,
	    &req, msg, sizeof msg), PROTO_ERR_INVALID_NAME);
	assert_null(req.user);
	proto_request_clear(&req);

	assert_int_equal(proto_decode("{\"type\":\"join\",\"room\":"
	    "\"#a\\u0000\"}", 33, true, &req, msg, sizeof msg),
	    PROTO_ERR_INVALID_NAME);
	assert_null(req.room);
	proto_request_clear(&req);
}

/* A string ref holding a NUL is echoed whole, NUL and all. */
static void
test_decode_ref_with_nul_echoed_whole(void **state)
{
	struct proto_request	req;
	char			*line;
	size_t			 len;
	static const char	 want[] =
	    "{\"type\":\"pong\",\"ref\":\"a\\u0000b\"}\n";

	decode_ok("{\"type\":\"ping\",\"ref\":\"a\\u0000b\"}", true, &req);
	assert_int_equal(json_string_length(req.ref), 3);
	line = proto_dump(proto_pong(req.ref), &len);
	assert_int_equal(len, sizeof want - 1);
	assert_memory_equal(line, want, len);
	free(line);
	proto_request_clear(&req);
}

static void
test_decode_register_login_fields(void **state)
{
	struct proto_request	req;

	decode_ok("{\"type\":\"register\",\"user\":\"Alice\","
	    "\"password\":\"" SECRET "2\"}", false, &req);
	assert_int_equal(req.type, PROTO_REQ_REGISTER);
	assert_string_equal(req.user, "Alice");
	assert_string_equal(req.password, SECRET "2");
	assert_int_equal(req.password_len, 7);
	assert_null(req.content);
	assert_null(req.old_password);
	proto_request_clear(&req);

	/* Name rules and password length are chat's decision. */
	decode_ok("{\"type\":\"login\",\"user\":\"\",\"password\":\"\"}", false,
	    &req);
	assert_int_equal(req.type, PROTO_REQ_LOGIN);
	assert_string_equal(req.user, "");
	assert_string_equal(req.password, "");
	assert_int_equal(req.password_len, 0);
	proto_request_clear(&req);
}

static void
test_decode_room_fields(void **state)
{
	struct proto_request	req;

	decode_ok("{\"type\":\"join\",\"room\":\"#Lobby\"}", true, &req);
	assert_int_equal(req.type, PROTO_REQ_JOIN);
	assert_string_equal(req.room, "#Lobby");
	proto_request_clear(&req);

	decode_ok("{\"type\":\"leave\",\"room\":\"#x\"}", true, &req);
	assert_int_equal(req.type, PROTO_REQ_LEAVE);
	assert_string_equal(req.room, "#x");
	proto_request_clear(&req);

	decode_ok("{\"type\":\"topic\",\"room\":\"#x\",\"topic\":\"hi\"}", true,
	    &req);
	assert_int_equal(req.type, PROTO_REQ_TOPIC);
	assert_string_equal(req.room, "#x");
	assert_string_equal(req.topic, "hi");
	proto_request_clear(&req);

	decode_ok("{\"type\":\"users\",\"room\":\"#x\"}", true, &req);
	assert_int_equal(req.type, PROTO_REQ_USERS);
	assert_string_equal(req.room, "#x");
	proto_request_clear(&req);
}

static void
test_decode_message_fields(void **state)
{
	struct proto_request	req;

	decode_ok("{\"type\":\"message\",\"ref\":\"m1\",\"to\":\"bob\","
	    "\"content\":\"hello \\\"bob\\\"\"}", true, &req);
	assert_int_equal(req.type, PROTO_REQ_MESSAGE);
	assert_string_equal(req.to, "bob");
	assert_string_equal(req.content, "hello \"bob\"");
	assert_int_equal(req.content_len, 11);
	assert_string_equal(json_string_value(req.ref), "m1");
	proto_request_clear(&req);
}

static void
test_decode_typing_fields(void **state)
{
	struct proto_request	req;

	decode_ok("{\"type\":\"typing\",\"to\":\"#a\",\"state\":\"start\"}", true,
	    &req);
	assert_int_equal(req.type, PROTO_REQ_TYPING);
	assert_string_equal(req.to, "#a");
	assert_true(req.typing_start);
	proto_request_clear(&req);

	decode_ok("{\"type\":\"typing\",\"to\":\"#a\",\"state\":\"stop\"}", true,
	    &req);
	assert_false(req.typing_start);
	proto_request_clear(&req);
}

static void
test_decode_presence_fields(void **state)
{
	static const struct {
		const char		*line;
		enum proto_status	 status;
		const char		*text;
	} cases[] = {
		{ "{\"type\":\"presence\",\"status\":\"online\"}",
		    PROTO_STATUS_ONLINE, NULL },
		{ "{\"type\":\"presence\",\"status\":\"away\",\"text\":\"lunch\"}",
		    PROTO_STATUS_AWAY, "lunch" },
		{ "{\"type\":\"presence\",\"status\":\"busy\",\"text\":\"\"}",
		    PROTO_STATUS_BUSY, "" },
	};
	struct proto_request	req;
	size_t			i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		decode_ok(cases[i].line, true, &req);
		assert_int_equal(req.type, PROTO_REQ_PRESENCE);
		assert_int_equal(req.status, cases[i].status);
		if (cases[i].text == NULL)
			assert_null(req.text);
		else
			assert_string_equal(req.text, cases[i].text);
		proto_request_clear(&req);
	}
}

static void
test_decode_history_fields(void **state)
{
	struct proto_request	req;

	decode_ok("{\"type\":\"history\",\"with\":\"#a\"}", true, &req);
	assert_int_equal(req.type, PROTO_REQ_HISTORY);
	assert_string_equal(req.with, "#a");
	assert_false(req.has_before);
	assert_false(req.has_after);
	assert_false(req.has_limit);
	proto_request_clear(&req);

	decode_ok("{\"type\":\"history\",\"with\":\"bob\",\"before\":0,"
	    "\"after\":9223372036854775807,\"limit\":1}", true, &req);
	assert_string_equal(req.with, "bob");
	assert_true(req.has_before);
	assert_true(req.before == 0);
	assert_true(req.has_after);
	assert_true(req.after == INT64_MAX);
	assert_true(req.has_limit);
	assert_true(req.limit == 1);
	proto_request_clear(&req);

	decode_ok("{\"type\":\"history\",\"with\":\"bob\",\"limit\":100000}",
	    true, &req);
	assert_false(req.has_before);
	assert_false(req.has_after);
	assert_true(req.has_limit);
	assert_true(req.limit == 100000);	/* chat lowers it */
	proto_request_clear(&req);
}

static void
test_decode_passwd_fields(void **state)
{
	struct proto_request	req;

	decode_ok("{\"type\":\"passwd\",\"old\":\"" SECRET "1\","
	    "\"new\":\"" SECRET "-two\"}", true, &req);
	assert_int_equal(req.type, PROTO_REQ_PASSWD);
	assert_string_equal(req.old_password, SECRET "1");
	assert_int_equal(req.old_password_len, 7);
	assert_string_equal(req.new_password, SECRET "-two");
	assert_int_equal(req.new_password_len, 10);
	assert_null(req.password);
	proto_request_clear(&req);
}

/* Each type name in the table decodes to its own enum value. */
static void
test_decode_every_type_name(void **state)
{
	struct proto_request	 req;
	char			 msg[128], *line;
	int			 t;
	enum proto_err		 err;

	for (t = 0; t < PROTO_REQ__COUNT; t++) {
		assert_non_null(proto_type_name(t));
		xasprintf(&line, "{\"type\":\"%s\"}", proto_type_name(t));
		err = proto_decode(line, strlen(line), true, &req, msg,
		    sizeof msg);
		/* Missing fields are fine here: the type was recognised. */
		assert_true(err == PROTO_OK || err == PROTO_ERR_BAD_REQUEST);
		assert_int_equal(req.type, t);
		proto_request_clear(&req);
		free(line);
	}
}

static void
test_decode_line_not_nul_terminated(void **state)
{
	const char		 buf[] = "{\"type\":\"ping\"}GARBAGE";
	struct proto_request	 req;
	char			 msg[64];
	char			*copy;

	/* An exact-size heap copy lets ASan catch any read past len. */
	copy = malloc(15);
	assert_non_null(copy);
	memcpy(copy, buf, 15);
	assert_int_equal(proto_decode(copy, 15, false, &req, msg, sizeof msg),
	    PROTO_OK);
	assert_int_equal(req.type, PROTO_REQ_PING);
	proto_request_clear(&req);
	free(copy);
}

static void
test_decode_msg_truncated(void **state)
{
	const char		*line = "{\"type\":\"dance\"}";
	const char		*utf = "{\"type\":\"\xc3\xa9\xc3\xa9\xc3\xa9\"}";
	struct proto_request	 req;
	char			 msg[16];

	assert_int_equal(proto_decode(line, strlen(line), true, &req, msg, 8),
	    PROTO_ERR_UNKNOWN_TYPE);
	assert_string_equal(msg, "unknown");
	proto_request_clear(&req);

	/* "unknown type '" is 14 bytes; the 15th would split an e-acute. */
	assert_int_equal(proto_decode(utf, strlen(utf), true, &req, msg,
	    sizeof msg), PROTO_ERR_UNKNOWN_TYPE);
	assert_string_equal(msg, "unknown type '");
	proto_request_clear(&req);

	/* No room for a message at all is allowed too. */
	assert_int_equal(proto_decode(line, strlen(line), true, &req, NULL,
	    0), PROTO_ERR_UNKNOWN_TYPE);
	proto_request_clear(&req);
	msg[0] = 'X';
	assert_int_equal(proto_decode(line, strlen(line), true, &req, msg,
	    0), PROTO_ERR_UNKNOWN_TYPE);
	assert_int_equal(msg[0], 'X');
	proto_request_clear(&req);
}

static void
test_request_clear_zeroed(void **state)
{
	struct proto_request	req;

	memset(&req, 0, sizeof req);
	proto_request_clear(&req);
	assert_null(req.root);
}

/* A root somebody else still holds keeps its password intact. */
static void
test_request_clear_shared_root(void **state)
{
	struct proto_request	 req;
	json_t			*root;

	decode_ok("{\"type\":\"login\",\"user\":\"a\",\"password\":\"" SECRET
	    "99\"}", false, &req);
	root = json_incref(req.root);
	proto_request_clear(&req);
	assert_string_equal(json_string_value(json_object_get(root,
	    "password")), SECRET "99");
	json_decref(root);
}

static void
test_utf8_valid(void **state)
{
	static const struct {
		const char	*name;
		const char	*s;
		size_t		 len;
		bool		 valid;
	} cases[] = {
#define U(n, s, v)	{ n, s, sizeof(s) - 1, v }
		U("empty", "", true),
		U("ascii", "hello", true),
		U("NUL byte", "a\0b", true),
		U("U+0080", "\xc2\x80", true),
		U("U+00E9", "\xc3\xa9", true),
		U("U+07FF", "\xdf\xbf", true),
		U("U+0800", "\xe0\xa0\x80", true),
		U("U+20AC", "\xe2\x82\xac", true),
		U("U+D7FF", "\xed\x9f\xbf", true),
		U("U+E000", "\xee\x80\x80", true),
		U("U+FFFF", "\xef\xbf\xbf", true),
		U("U+10000", "\xf0\x90\x80\x80", true),
		U("U+1F600", "\xf0\x9f\x98\x80", true),
		U("U+10FFFF", "\xf4\x8f\xbf\xbf", true),
		U("mixed", "a\xc3\xa9z\xe2\x82\xac\xf0\x9f\x98\x80!", true),
		U("overlong c0 af", "\xc0\xaf", false),
		U("overlong c0 80", "\xc0\x80", false),
		U("overlong c1 bf", "\xc1\xbf", false),
		U("overlong e0 80 af", "\xe0\x80\xaf", false),
		U("overlong e0 9f bf", "\xe0\x9f\xbf", false),
		U("overlong f0 80 80 af", "\xf0\x80\x80\xaf", false),
		U("overlong f0 8f bf bf", "\xf0\x8f\xbf\xbf", false),
		U("surrogate ed a0 80", "\xed\xa0\x80", false),
		U("surrogate ed bf bf", "\xed\xbf\xbf", false),
		U("past U+10FFFF f4 90 80 80", "\xf4\x90\x80\x80", false),
		U("lead f5", "\xf5\x80\x80\x80", false),
		U("lead f8", "\xf8\x88\x80\x80\x80", false),
		U("byte fe", "\xfe", false),
		U("byte ff", "\xff", false),
		U("lone continuation 80", "\x80", false),
		U("lone continuation bf", "a\xbf", false),
		U("extra continuation", "\xc3\xa9\x80", false),
		U("truncated 2-byte", "\xc3", false),
		U("truncated 3-byte", "\xe2\x82", false),
		U("truncated 3-byte after 1", "\xe2", false),
		U("truncated 4-byte", "\xf0\x9f\x98", false),
		U("truncated at end", "abc\xc3", false),
		U("bad 2nd of 2", "\xc3\x28", false),
		U("bad 2nd of 3", "\xe2\x28\xa1", false),
		U("bad 3rd of 3", "\xe2\x82\x28", false),
		U("bad 3rd of 4", "\xf0\x9f\x28\x80", false),
		U("bad 4th of 4", "\xf0\x9f\x98\x28", false),
		/* The rest of the sequence lies past len: must not be read. */
		{ "2-byte cut by len", "\xc3\xa9", 1, false },
		{ "3-byte cut by len", "\xe2\x82\xac", 2, false },
		{ "4-byte cut by len", "\xf0\x9f\x98\x80", 3, false },
		{ "valid before len cut", "ab\xc3\xa9", 2, true },
#undef U
	};
	char	*copy;
	size_t	 i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		/* An exact-size heap copy lets ASan catch reads past len. */
		copy = malloc(cases[i].len > 0 ? cases[i].len : 1);
		assert_non_null(copy);
		memcpy(copy, cases[i].s, cases[i].len);
		if (proto_utf8_valid(copy, cases[i].len) != cases[i].valid)
			fail_msg("utf8 case '%s'", cases[i].name);
		free(copy);
	}
}

static void
test_err_code_table(void **state)
{
	static const char *const want[PROTO_ERR__COUNT] = {
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
	int	e;

	assert_null(proto_err_code(PROTO_OK));
	for (e = PROTO_OK + 1; e < PROTO_ERR__COUNT; e++) {
		assert_non_null(proto_err_code(e));
		assert_string_equal(proto_err_code(e), want[e]);
	}
	assert_null(proto_err_code(PROTO_ERR__COUNT));
	assert_null(proto_err_code((enum proto_err)-1));
}

static void
test_type_name_table(void **state)
{
	static const char *const want[PROTO_REQ__COUNT] = {
		"ping", "echo", "time", "register", "login", "quit", "join",
		"leave", "message", "typing", "presence", "history", "users",
		"rooms", "topic", "passwd",
	};
	int	t;

	for (t = 0; t < PROTO_REQ__COUNT; t++)
		assert_string_equal(proto_type_name(t), want[t]);
	assert_null(proto_type_name(PROTO_REQ__COUNT));
	assert_null(proto_type_name((enum proto_type)-1));
}

static void
test_status_name_table(void **state)
{
	assert_string_equal(proto_status_name(PROTO_STATUS_ONLINE), "online");
	assert_string_equal(proto_status_name(PROTO_STATUS_AWAY), "away");
	assert_string_equal(proto_status_name(PROTO_STATUS_BUSY), "busy");
	assert_string_equal(proto_status_name(PROTO_STATUS_OFFLINE),
	    "offline");
	assert_null(proto_status_name(PROTO_STATUS_OFFLINE + 1));
}

static void
test_user_name_valid(void **state)
{
	static const struct {
		const char	*name;
		bool		 valid;
	} cases[] = {
		{ "a", true },
		{ "A", true },
		{ "0", true },
		{ "_", true },
		{ "_a", true },
		{ "a.", true },
		{ "a-", true },
		{ "Alice-B_c.d9", true },
		{ S32, true },
		{ S32 "b", false },
		{ "", false },
		{ ".a", false },
		{ "-a", false },
		{ ".", false },
		{ "-", false },
		{ "a b", false },
		{ "a#b", false },
		{ "#a", false },
		{ "a/b", false },
		{ "a@b", false },
		{ "\xc3\xa9", false },
		{ "a\n", false },
	};
	size_t	i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (proto_user_name_valid(cases[i].name) != cases[i].valid)
			fail_msg("user name '%s'", cases[i].name);
	}
	assert_false(proto_user_name_valid(NULL));
}

static void
test_room_name_valid(void **state)
{
	static const struct {
		const char	*name;
		bool		 valid;
	} cases[] = {
		{ "#a", true },
		{ "#Lobby", true },
		{ "#0", true },
		{ "#.a", true },	/* no leading-character rule */
		{ "#-a", true },
		{ "#_", true },
		{ "#" S64, true },
		{ "#" S64 "b", false },
		{ "#", false },
		{ "", false },
		{ "a", false },
		{ "##a", false },
		{ "#a#", false },
		{ "#a b", false },
		{ "# ", false },
		{ "#\xc3\xa9", false },
		{ "&a", false },
	};
	size_t	i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (proto_room_name_valid(cases[i].name) != cases[i].valid)
			fail_msg("room name '%s'", cases[i].name);
	}
	assert_false(proto_room_name_valid(NULL));
}

static void
test_format_time(void **state)
{
	static const struct {
		int64_t		 ms;
		const char	*want;
	} cases[] = {
		{ 0, "1970-01-01T00:00:00.000Z" },
		{ 1, "1970-01-01T00:00:00.001Z" },
		{ 999, "1970-01-01T00:00:00.999Z" },
		{ 1000, "1970-01-01T00:00:01.000Z" },
		{ 1999, "1970-01-01T00:00:01.999Z" },
		{ -1, "1969-12-31T23:59:59.999Z" },
		{ -1000, "1969-12-31T23:59:59.000Z" },
		{ -1001, "1969-12-31T23:59:58.999Z" },
		{ 946684800001LL, "2000-01-01T00:00:00.001Z" },
		{ 1709251199999LL, "2024-02-29T23:59:59.999Z" },
		{ 1795257000123LL, "2026-11-21T10:30:00.123Z" },
		{ 253402300799999LL, "9999-12-31T23:59:59.999Z" },
		{ 253402300800000LL, "9999-12-31T23:59:59.999Z" },
		{ INT64_MAX, "9999-12-31T23:59:59.999Z" },
		{ -62167219200000LL, "0000-01-01T00:00:00.000Z" },
		{ INT64_MIN, "0000-01-01T00:00:00.000Z" },
	};
	char	buf[PROTO_TIME_LEN + 8];
	size_t	i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memset(buf, 'X', sizeof buf);
		proto_format_time(cases[i].ms, buf);
		assert_string_equal(buf, cases[i].want);
		assert_int_equal(strlen(buf), PROTO_TIME_LEN - 1);
		assert_int_equal(buf[PROTO_TIME_LEN], 'X');
	}
}

/* Dump obj and compare with the exact bytes expected. */
static void
assert_dump(json_t *obj, const char *want)
{
	char	*s;
	size_t	 len;

	assert_non_null(obj);
	s = proto_dump(obj, &len);
	assert_non_null(s);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(s, want, len);
	free(s);
}

static void
test_build_ok(void **state)
{
	json_t	*ref, *obj;

	assert_dump(proto_ok(NULL), "{\"type\":\"ok\"}\n");

	ref = json_string("abc");
	assert_dump(proto_ok(ref), "{\"type\":\"ok\",\"ref\":\"abc\"}\n");
	json_decref(ref);

	ref = json_integer(INT64_MIN);
	obj = proto_ok(ref);
	json_decref(ref);		/* the reply keeps its own copy */
	json_object_set_new(obj, "content", json_string("x"));
	assert_dump(obj, "{\"type\":\"ok\",\"ref\":-9223372036854775808,"
	    "\"content\":\"x\"}\n");
}

static void
test_build_pong(void **state)
{
	json_t	*ref;

	assert_dump(proto_pong(NULL), "{\"type\":\"pong\"}\n");
	ref = json_integer(7);
	assert_dump(proto_pong(ref), "{\"type\":\"pong\",\"ref\":7}\n");
	json_decref(ref);
}

static void
test_build_error(void **state)
{
	json_t	*ref;

	ref = json_string("x");
	assert_dump(proto_error(ref, PROTO_ERR_BAD_JSON, "m"),
	    "{\"type\":\"error\",\"ref\":\"x\",\"code\":\"bad_json\","
	    "\"message\":\"m\"}\n");
	json_decref(ref);

	assert_dump(proto_error(NULL, PROTO_ERR_AUTH_REQUIRED, "log in"),
	    "{\"type\":\"error\",\"code\":\"auth_required\","
	    "\"message\":\"log in\"}\n");
	assert_dump(proto_error(NULL, PROTO_ERR_LINE_TOO_LONG, "caf\xc3\xa9"),
	    "{\"type\":\"error\",\"code\":\"line_too_long\","
	    "\"message\":\"caf\xc3\xa9\"}\n");
}

static void
test_build_error_fallbacks(void **state)
{
	/* No message, or one that is not UTF-8: the code stands in. */
	assert_dump(proto_error(NULL, PROTO_ERR_BANNED, NULL),
	    "{\"type\":\"error\",\"code\":\"banned\",\"message\":\"banned\"}\n");
	assert_dump(proto_error(NULL, PROTO_ERR_BANNED, "bad \xff"),
	    "{\"type\":\"error\",\"code\":\"banned\",\"message\":\"banned\"}\n");
	/* Codes outside the table are our bug, reported as internal. */
	assert_dump(proto_error(NULL, PROTO_OK, "m"),
	    "{\"type\":\"error\",\"code\":\"internal_error\","
	    "\"message\":\"m\"}\n");
	assert_dump(proto_error(NULL, PROTO_ERR__COUNT, "m"),
	    "{\"type\":\"error\",\"code\":\"internal_error\","
	    "\"message\":\"m\"}\n");
}

/* A decoded ref goes back out byte for byte, after the request is gone. */
static void
test_build_echoes_decoded_ref(void **state)
{
	struct proto_request	 req;
	json_t			*reply;

	decode_ok("{\"type\":\"ping\",\"ref\":\"r-\\u00e9\\n\"}", false, &req);
	reply = proto_pong(req.ref);
	proto_request_clear(&req);
	assert_dump(reply, "{\"type\":\"pong\",\"ref\":\"r-\xc3\xa9\\n\"}\n");

	decode_ok("{\"type\":\"echo\",\"ref\":9223372036854775807,"
	    "\"content\":\"x\"}", false, &req);
	reply = proto_ok(req.ref);
	json_object_set_new(reply, "content", json_string(req.content));
	proto_request_clear(&req);
	assert_dump(reply, "{\"type\":\"ok\",\"ref\":9223372036854775807,"
	    "\"content\":\"x\"}\n");
}

static void
test_dump_values(void **state)
{
	char	*s;
	size_t	 len = 99;

	/* Non-ASCII stays UTF-8, control characters are escaped, no '\/'. */
	assert_dump(json_string("\xc3\xa9\xe2\x98\x83\xf0\x9f\x98\x80 a/b"),
	    "\"\xc3\xa9\xe2\x98\x83\xf0\x9f\x98\x80 a/b\"\n");
	assert_dump(json_string("a\nb\r\t\"\\"),
	    "\"a\\nb\\r\\t\\\"\\\\\"\n");
	assert_dump(json_pack("[i,i,{s:[]}]", 1, 2, "k"),
	    "[1,2,{\"k\":[]}]\n");
	assert_dump(json_integer(-5), "-5\n");
	assert_dump(json_object(), "{}\n");

	s = proto_dump(NULL, &len);
	assert_null(s);
	assert_int_equal(len, 0);
}

/* Insertion order is kept: "type" then "ref" then the rest. */
static void
test_dump_key_order(void **state)
{
	json_t	*obj, *ref;

	ref = json_integer(1);
	obj = proto_ok(ref);
	json_decref(ref);
	json_object_set_new(obj, "z", json_true());
	json_object_set_new(obj, "a", json_null());
	json_object_set_new(obj, "m", json_real(0.5));
	assert_dump(obj,
	    "{\"type\":\"ok\",\"ref\":1,\"z\":true,\"a\":null,\"m\":0.5}\n");
}

/* The hand-encoded message line is byte for byte jansson's dump. */
static void
assert_message_line_matches(int64_t id, const char *from, const char *to,
    const char *content, size_t content_len, int64_t ts_ms)
{
	char	 ts[PROTO_TIME_LEN], *want, *got;
	size_t	 want_len, got_len;

	proto_format_time(ts_ms, ts);
	want = proto_dump(json_pack("{s:s, s:I, s:s, s:s, s:s%, s:s}",
	    "type", "message", "id", (json_int_t)id, "from", from, "to", to,
	    "content", content, content_len, "timestamp", ts), &want_len);
	got = proto_message_line(id, from, to, content, content_len, ts_ms,
	    &got_len);
	assert_non_null(want);
	assert_int_equal(got_len, want_len);
	assert_memory_equal(got, want, want_len);
	free(want);
	free(got);
}

static void
test_message_line_matches_dump(void **state)
{
	char	 all[128];
	int	 i;

	for (i = 0; i < 127; i++)	/* every ASCII byte, NUL included */
		all[i] = (char)i;
	assert_message_line_matches(1, "alice", "#general", "hi", 2,
	    1763719800123LL);
	assert_message_line_matches(INT64_MAX, "b_o-b", "carol", all, 127, 0);
	assert_message_line_matches(42, "x", "#r", "", 0, -1);
	assert_message_line_matches(7, "u", "#\xc3\xa9t\xc3\xa9",
	    "\xc3\xa9\xe2\x98\x83\xf0\x9f\x98\x80 \"q\" \\ a/b\x7f", 21,
	    253402300799999LL);
}

/*
 * A history reply assembled from message lines is byte for byte the
 * dump of the same object, and its envelope is within the overhead.
 */
static void
assert_history_line_matches(const json_t *ref, size_t n, bool more)
{
	char	*lines[3], *got, *want, ts[PROTO_TIME_LEN];
	size_t	 lens[3], got_len, want_len, i, sum = 0;
	json_t	*ok, *list;
	static const char *const contents[3] = { "a\0b", "\"q\"", "" };
	static const size_t content_lens[3] = { 3, 3, 0 };

	ok = proto_ok(ref);
	list = json_array();
	for (i = 0; i < n; i++) {
		lines[i] = proto_message_line((int64_t)i + 1, "alice", "#r",
		    contents[i], content_lens[i], 1000 * (int64_t)i, &lens[i]);
		lens[i]--;	/* without its "\n" */
		sum += lens[i] + (i > 0);
		proto_format_time(1000 * (int64_t)i, ts);
		json_array_append_new(list, json_pack("{s:s, s:I, s:s, s:s, "
		    "s:s%, s:s}", "type", "message", "id", (json_int_t)i + 1,
		    "from", "alice", "to", "#r", "content", contents[i],
		    content_lens[i], "timestamp", ts));
	}
	json_object_set_new(ok, "messages", list);
	json_object_set_new(ok, "more", json_boolean(more));
	want = proto_dump(ok, &want_len);
	got = proto_history_line(ref, lines, lens, n, more, &got_len);
	assert_int_equal(got_len, want_len);
	assert_memory_equal(got, want, want_len);
	assert_true(got_len <= sum + proto_history_overhead(ref));
	for (i = 0; i < n; i++)
		free(lines[i]);
	free(got);
	free(want);
}

static void
test_history_line_matches_dump(void **state)
{
	json_t	*ref;
	char	 big[PROTO_REF_MAX + 1];

	assert_history_line_matches(NULL, 0, false);
	assert_history_line_matches(NULL, 1, true);
	assert_history_line_matches(NULL, 3, false);
	ref = json_integer(INT64_MIN);
	assert_history_line_matches(ref, 2, true);
	json_decref(ref);
	/* The longest ref, every byte of it escaped six-fold. */
	memset(big, '\x01', PROTO_REF_MAX);
	ref = json_stringn(big, PROTO_REF_MAX);
	assert_history_line_matches(ref, 3, true);
	json_decref(ref);
	ref = json_stringn("a\0b", 3);
	assert_history_line_matches(ref, 0, true);
	json_decref(ref);
}

/* Framing: the decision conn takes for buffered input (max_line 10). */
static void
test_frame_decisions(void **state)
{
	size_t	 take;

	/* Nothing complete yet, within a line's length and a '\r'. */
	assert_int_equal(proto_frame(-1, 0, 10, &take), PROTO_FRAME_NEED_MORE);
	assert_int_equal(proto_frame(-1, 11, 10, &take),
	    PROTO_FRAME_NEED_MORE);
	assert_int_equal(take, 0);
	/* Past that without a '\n': it can never be a line. */
	assert_int_equal(proto_frame(-1, 12, 10, &take), PROTO_FRAME_TOO_LONG);
	/* A complete line takes its bytes and the '\n'. */
	assert_int_equal(proto_frame(0, 1, 10, &take), PROTO_FRAME_LINE);
	assert_int_equal(take, 1);
	assert_int_equal(proto_frame(10, 40, 10, &take), PROTO_FRAME_LINE);
	assert_int_equal(take, 11);
	/* 11 bytes before '\n' pass only when the last is a '\r'. */
	assert_int_equal(proto_frame(11, 12, 10, &take), PROTO_FRAME_LINE);
	assert_int_equal(take, 12);
	assert_int_equal(proto_frame(12, 13, 10, &take), PROTO_FRAME_TOO_LONG);
}

static void
test_frame_strip(void **state)
{
	assert_int_equal(proto_frame_strip("\n", 1), 0);
	assert_int_equal(proto_frame_strip("\r\n", 2), 0);
	assert_int_equal(proto_frame_strip("abc\n", 4), 3);
	assert_int_equal(proto_frame_strip("abc\r\n", 5), 3);
	/* Only one '\r' right before the '\n' is framing. */
	assert_int_equal(proto_frame_strip("a\r\r\n", 4), 2);
	assert_int_equal(proto_frame_strip("a\rb\n", 4), 3);
	/* 11 bytes with no '\r' stay 11: too long for max_line 10. */
	assert_int_equal(proto_frame_strip("0123456789x\n", 12), 11);
}

static const struct CMUnitTest fixed_tests[] = {
	cmocka_unit_test(test_frame_decisions),
	cmocka_unit_test(test_frame_strip),
	cmocka_unit_test(test_decode_fieldless_types),
	cmocka_unit_test(test_decode_echo_fields),
	cmocka_unit_test(test_decode_name_with_nul_is_invalid_name),
	cmocka_unit_test(test_decode_ref_with_nul_echoed_whole),
	cmocka_unit_test(test_history_line_matches_dump),
	cmocka_unit_test(test_decode_register_login_fields),
	cmocka_unit_test(test_decode_room_fields),
	cmocka_unit_test(test_decode_message_fields),
	cmocka_unit_test(test_decode_typing_fields),
	cmocka_unit_test(test_decode_presence_fields),
	cmocka_unit_test(test_decode_history_fields),
	cmocka_unit_test(test_decode_passwd_fields),
	cmocka_unit_test(test_decode_every_type_name),
	cmocka_unit_test(test_decode_line_not_nul_terminated),
	cmocka_unit_test(test_decode_msg_truncated),
	cmocka_unit_test(test_request_clear_zeroed),
	cmocka_unit_test(test_request_clear_shared_root),
	cmocka_unit_test(test_utf8_valid),
	cmocka_unit_test(test_err_code_table),
	cmocka_unit_test(test_type_name_table),
	cmocka_unit_test(test_status_name_table),
	cmocka_unit_test(test_user_name_valid),
	cmocka_unit_test(test_room_name_valid),
	cmocka_unit_test(test_format_time),
	cmocka_unit_test(test_build_ok),
	cmocka_unit_test(test_build_pong),
	cmocka_unit_test(test_build_error),
	cmocka_unit_test(test_build_error_fallbacks),
	cmocka_unit_test(test_build_echoes_decoded_ref),
	cmocka_unit_test(test_dump_values),
	cmocka_unit_test(test_dump_key_order),
	cmocka_unit_test(test_message_line_matches_dump),
};
#define NFIXED	(sizeof fixed_tests / sizeof fixed_tests[0])

int
main(void)
{
	struct CMUnitTest	 tests[NFIXED + NDECODE];
	char			*names[NDECODE];
	size_t			 i;
	int			 rc;

	memcpy(tests, fixed_tests, sizeof fixed_tests);
	for (i = 0; i < NDECODE; i++) {
		xasprintf(&names[i], "decode: %s", decode_cases[i].name);
		tests[NFIXED + i] = (struct CMUnitTest){
			.name = names[i],
			.test_func = test_decode_case,
			.initial_state = (void *)&decode_cases[i],
		};
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	for (i = 0; i < NDECODE; i++)
		free(names[i]);
	return rc;
}
