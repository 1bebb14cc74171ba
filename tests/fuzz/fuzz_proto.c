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
		json_object_set_new(reply, "content", json_string(req.content));
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
