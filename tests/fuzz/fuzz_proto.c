/* fuzz_proto: libFuzzer target for proto_decode and the reply builders. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "proto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Abort (so libFuzzer records the input) when an invariant breaks. */
#define FUZZ_CHECK(x) do {			\
	if (!(x))				\
		__builtin_trap();		\
} while (0)

/* Every line we emit is UTF-8 and exactly one line. */
static void
fuzz_check_line(json_t *obj)
{
	char	*s;
	size_t	 len;

	FUZZ_CHECK(obj != NULL);
	s = proto_dump(obj, &len);
	FUZZ_CHECK(s != NULL && len >= 2);
	FUZZ_CHECK(s[len - 1] == '\n');
	FUZZ_CHECK(memchr(s, '\n', len - 1) == NULL);
	FUZZ_CHECK(proto_utf8_valid(s, len));
	free(s);
}

/*
 * A request that decoded, serialised again, must decode to the same type:
 * the codec agrees with itself.
 */
static void
fuzz_check_roundtrip(const struct proto_request *req, bool logged_in)
{
	struct proto_request	 again;
	char			 msg[128];
	char			*s;
	size_t			 len;

	s = proto_dump(json_incref(req->root), &len);
	FUZZ_CHECK(s != NULL);
	FUZZ_CHECK(proto_decode(s, len - 1, logged_in, &again, msg,
	    sizeof msg) == PROTO_OK);
	FUZZ_CHECK(again.type == req->type);
	FUZZ_CHECK((again.ref == NULL) == (req->ref == NULL));
	FUZZ_CHECK(again.content_len == req->content_len);
	proto_request_clear(&again);
	free(s);
}

/* A string field of the request holds no NUL: nothing reads it short. */
static void
fuzz_check_no_nul(const struct proto_request *req, const char *key,
    const char *value)
{
	json_t	*v;

	if (value == NULL)
		return;
	v = json_object_get(req->root, key);
	FUZZ_CHECK(json_is_string(v) && json_string_value(v) == value);
	FUZZ_CHECK(strlen(value) == json_string_length(v));
}

/*
 * Content (NULs and all) comes back byte for byte from the message
 * event and from a history reply around it, ref included: what every
 * recipient and history get is what was sent.
 */
static void
fuzz_check_content(const struct proto_request *req)
{
	json_error_t	 error;
	json_t		*ev, *page, *m;
	char		*line, *hist;
	size_t		 len, hlen;

	line = proto_message_line(1, "a", "#r", req->content,
	    req->content_len, 0, &len);
	FUZZ_CHECK(len >= 2 && line[len - 1] == '\n');
	FUZZ_CHECK(memchr(line, '\n', len - 1) == NULL);
	ev = json_loadb(line, len - 1, JSON_ALLOW_NUL, &error);
	FUZZ_CHECK(ev != NULL);
	m = json_object_get(ev, "content");
	FUZZ_CHECK(json_is_string(m) &&
	    json_string_length(m) == req->content_len &&
	    memcmp(json_string_value(m), req->content, req->content_len) == 0);
	len--;
	hist = proto_history_line(req->ref, &line, &len, 1, true, &hlen);
	FUZZ_CHECK(hlen <= len + proto_history_overhead(req->ref));
	page = json_loadb(hist, hlen - 1, JSON_ALLOW_NUL, &error);
	FUZZ_CHECK(page != NULL);
	FUZZ_CHECK(json_equal(json_array_get(json_object_get(page,
	    "messages"), 0), ev));
	FUZZ_CHECK(req->ref == NULL ||
	    json_equal(json_object_get(page, "ref"), req->ref));
	FUZZ_CHECK(json_is_true(json_object_get(page, "more")));
	json_decref(page);
	json_decref(ev);
	free(hist);
	free(line);
}

static void
fuzz_one(const char *line, size_t len, bool logged_in)
{
	struct proto_request	 req;
	char			 msg[128];
	char			 ts[PROTO_TIME_LEN];
	enum proto_err		 err;
	json_t			*reply;

	err = proto_decode(line, len, logged_in, &req, msg, sizeof msg);
	FUZZ_CHECK(memchr(msg, '\0', sizeof msg) != NULL);
	FUZZ_CHECK(proto_utf8_valid(msg, strlen(msg)));
	if (err != PROTO_OK) {
		FUZZ_CHECK(proto_err_code(err) != NULL);
		FUZZ_CHECK(req.ref == NULL || req.root != NULL);
		fuzz_check_line(proto_error(req.ref, err, msg));
		proto_request_clear(&req);
		return;
	}

	FUZZ_CHECK(proto_type_name(req.type) != NULL);
	/* The type is that name exactly: "ping\u0000x" is no ping. */
	fuzz_check_no_nul(&req, "type", json_string_value(
	    json_object_get(req.root, "type")));
	FUZZ_CHECK(strcmp(json_string_value(json_object_get(req.root,
	    "type")), proto_type_name(req.type)) == 0);
	fuzz_check_no_nul(&req, "user", req.user);
	fuzz_check_no_nul(&req, "room", req.room);
	fuzz_check_no_nul(&req, "to", req.to);
	fuzz_check_no_nul(&req, "with", req.with);
	fuzz_check_no_nul(&req, "topic", req.topic);
	fuzz_check_no_nul(&req, "text", req.text);
	if (req.content != NULL)
		fuzz_check_content(&req);
	if (req.type == PROTO_REQ_MESSAGE)
		FUZZ_CHECK(req.content != NULL && req.content_len > 0);
	if (req.type == PROTO_REQ_PRESENCE)
		FUZZ_CHECK(proto_status_name(req.status) != NULL);
	if (req.has_limit)
		FUZZ_CHECK(req.limit >= 1);
	if (req.user != NULL)
		(void)proto_user_name_valid(req.user);
	if (req.room != NULL)
		(void)proto_room_name_valid(req.room);

	reply = req.type == PROTO_REQ_PING ? proto_pong(req.ref) :
	    proto_ok(req.ref);
	if (req.content != NULL)
		json_object_set_new(reply, "content", json_stringn(req.content,
		    req.content_len));
	if (req.has_before) {
		proto_format_time(req.before, ts);
		FUZZ_CHECK(strlen(ts) == PROTO_TIME_LEN - 1);
		json_object_set_new(reply, "time", json_string(ts));
	}
	fuzz_check_line(reply);
	fuzz_check_roundtrip(&req, logged_in);
	proto_request_clear(&req);
	proto_request_clear(&req);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*line;

	/* An exact-size copy: a read past the line is a heap overflow. */
	line = malloc(size > 0 ? size : 1);
	if (line == NULL)
		return 0;
	memcpy(line, data, size);
	fuzz_one(line, size, false);
	fuzz_one(line, size, true);
	free(line);
	return 0;
}
