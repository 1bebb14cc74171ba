# test_framing: welcome, NDJSON framing, refs and the requests allowed
# before login, against the real daemon over TLS.

import datetime
import json
import time

import harness
from harness import Client, Daemon, test, TS_RE

MAX_LINE = 1024
# max_message must stay below max_line (the daemon checks that).
LIMITS = {"max_line": MAX_LINE, "max_message": 512}


def daemon_version():
	r = harness.run_netsockd(["--version"])
	assert r.returncode == 0, r
	return r.stdout.split()[1]


def assert_error(reply, code, ref=None):
	assert reply.get("type") == "error", reply
	assert reply.get("code") == code, reply
	assert isinstance(reply.get("message"), str) and reply["message"], reply
	if ref is None:
		assert "ref" not in reply, "error carries a ref: %r" % reply
	else:
		assert reply.get("ref") == ref and \
		    type(reply["ref"]) == type(ref), reply


def assert_alive(c):
	"""The connection still answers requests."""
	r = c.request({"type": "ping", "ref": "alive"})
	assert r == {"type": "pong", "ref": "alive"}, r
	assert c.events == [], "unexpected lines: %r" % c.events


def echo_line(length):
	"""An echo request line of exactly length bytes (without newline)."""
	head, tail = b'{"type":"echo","content":"', b'"}'
	n = length - len(head) - len(tail)
	assert n > 0
	return head + b"a" * n + tail, "a" * n


# ------------------------------------------------------------ welcome


@test
def test_welcome_is_first_line_with_all_fields():
	d = Daemon()
	c = Client(d, read_welcome=False)
	w = c.recv()
	assert w["type"] == "welcome", w
	assert w["server"] == "netsockd", w
	assert w["version"] == daemon_version(), w
	assert w["protocol"] == 1 and type(w["protocol"]) is int, w
	assert TS_RE.match(w["time"]), w
	t = datetime.datetime.strptime(w["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
	now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
	assert abs((now - t).total_seconds()) < 3600, \
	    "welcome time %s is not the current UTC time %s" % (w["time"], now)
	assert w["registration"] is True, w
	assert w["motd"] == "", w
	# Nothing else was sent before a request.
	assert_alive(c)


# ------------------------------------------------------------ requests


@test
def test_ping_gets_pong_with_ref_and_without_ref():
	c = Client(Daemon())
	c.send({"type": "ping", "ref": "p1"})
	assert c.recv() == {"type": "pong", "ref": "p1"}
	c.send({"type": "ping"})
	r = c.recv()
	assert r["type"] == "pong" and "ref" not in r, r


@test
def test_echo_returns_content_unchanged():
	c = Client(Daemon())
	for content in ("hello", "", "h\u00e9llo \u2603 \U0001f389",
	    'quote " backslash \\ tab \t newline \n', "x" * 900):
		r = c.request({"type": "echo", "content": content})
		assert r["type"] == "ok", r
		assert r["content"] == content, (r, content)


@test
def test_echo_without_string_content_is_bad_request_naming_content():
	c = Client(Daemon())
	for i, req in enumerate(({"type": "echo"},
	    {"type": "echo", "content": 42},
	    {"type": "echo", "content": None},
	    {"type": "echo", "content": ["a"]})):
		req["ref"] = i
		r = c.request(req)
		assert_error(r, "bad_request", i)
		assert "content" in r["message"], r
	assert_alive(c)


@test
def test_time_returns_rfc3339_utc_milliseconds():
	c = Client(Daemon())
	r = c.request({"type": "time", "ref": "t"})
	assert r["type"] == "ok" and r["ref"] == "t", r
	assert TS_RE.match(r["time"]), r
	t = datetime.datetime.strptime(r["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
	w = datetime.datetime.strptime(c.welcome["time"],
	    "%Y-%m-%dT%H:%M:%S.%fZ")
	assert t >= w, "time %s before welcome %s" % (r["time"],
	    c.welcome["time"])


@test
def test_quit_replies_ok_then_closes_with_close_notify():
	c = Client(Daemon())
	c.send({"type": "quit", "ref": 7})
	r = c.recv()
	assert r["type"] == "ok" and r["ref"] == 7, r
	rest = c.expect_closed(10)
	assert rest == [], rest
	assert c.close_kind == "close_notify", c.close_kind


@test
def test_unknown_fields_are_ignored():
	c = Client(Daemon())
	r = c.request({"type": "echo", "content": "x",
	    "future": {"a": [1, 2.5, None]}, "z": True})
	assert r["type"] == "ok" and r["content"] == "x", r


# ------------------------------------------------------------ bad input


@test
def test_invalid_utf8_gets_bad_utf8_and_connection_stays_open():
	c = Client(Daemon())
	for raw in (b'{"type":"echo","content":"\xff"}',
	    b'{"type":"echo","content":"\xc0\xaf"}',		# overlong "/"
	    b'{"type":"echo","content":"\xed\xa0\x80"}',	# surrogate
	    b'{"type":"echo","content":"\xe2\x82"}',		# truncated
	    b'{"type":"ping","junk":"\xf8\x88\x80\x80\x80"}',	# 5 bytes
	    b'\xff\xfe not json either'):
		c.send_raw(raw + b"\n")
		assert_error(c.recv(), "bad_utf8")
		assert_alive(c)


@test
def test_line_that_is_not_a_json_object_gets_bad_json_and_stays_open():
	c = Client(Daemon())
	for raw in (b"[1]", b'"x"', b"{", b"nul", b"42", b"null",
	    b'{"type":"ping"} {"type":"ping"}', b"{'type':'ping'}"):
		c.send_raw(raw + b"\n")
		assert_error(c.recv(), "bad_json")
		assert_alive(c)


@test
def test_missing_or_non_string_type_is_bad_request():
	c = Client(Daemon())
	for i, req in enumerate(({}, {"type": 5}, {"type": None},
	    {"type": ["ping"]}, {"type": {"a": 1}}, {"content": "x"})):
		req["ref"] = "m%d" % i
		assert_error(c.request(req), "bad_request", "m%d" % i)
	assert_alive(c)


@test
def test_unknown_type_is_unknown_type():
	c = Client(Daemon())
	for t in ("frobnicate", "PING", "", "ping "):
		assert_error(c.request({"type": t, "ref": t}), "unknown_type", t)
	assert_alive(c)


@test
def test_logged_out_requests_need_login():
	c = Client(Daemon())
	for req in ({"type": "join", "room": "#a"},
	    {"type": "leave", "room": "#a"},
	    {"type": "message", "to": "#a", "content": "hi"},
	    {"type": "typing", "to": "#a", "state": "start"},
	    {"type": "presence", "status": "away"},
	    {"type": "history", "with": "#a"},
	    {"type": "users"},
	    {"type": "rooms"},
	    {"type": "topic", "room": "#a", "topic": "t"},
	    {"type": "passwd", "old": "password1", "new": "password2"}):
		req["ref"] = req["type"]
		assert_error(c.request(req), "auth_required", req["type"])
	assert_alive(c)


# ------------------------------------------------------------ refs


@test
def test_string_and_integer_refs_are_echoed_unchanged():
	c = Client(Daemon())
	refs = ["", "a", "x" * 64, "\u00e9" * 32,		# 64 bytes
	    "with \"quotes\" and \\", 0, 1, -1,
	    -9223372036854775808, 9223372036854775807]
	for ref in refs:
		c.send({"type": "ping", "ref": ref})
		r = c.recv()
		assert r["type"] == "pong", r
		assert r["ref"] == ref and type(r["ref"]) == type(ref), \
		    (ref, r)
		c.send({"type": "echo", "content": "e", "ref": ref})
		r = c.recv()
		assert r["type"] == "ok" and r["ref"] == ref and \
		    type(r["ref"]) == type(ref), (ref, r)


@test
def test_bad_ref_is_bad_request_without_ref():
	c = Client(Daemon())
	for ref in ("x" * 65, "\u00e9" * 33, 1.5, 1.0, True, False, None,
	    [], ["a"], {}, {"a": 1}):
		c.send({"type": "ping", "ref": ref})
		assert_error(c.recv(), "bad_request")
		assert_alive(c)


@test
def test_integer_ref_out_of_64_bit_range_is_bad_request_without_ref():
	c = Client(Daemon())
	for raw in (b'{"type":"ping","ref":9223372036854775808}',
	    b'{"type":"ping","ref":-9223372036854775809}',
	    b'{"type":"ping","ref":100000000000000000000000}'):
		c.send_raw(raw + b"\n")
		assert_error(c.recv(), "bad_request")
		assert_alive(c)


# ------------------------------------------------------------ framing


@test
def test_100_pipelined_requests_get_replies_in_order():
	c = Client(Daemon())
	kinds = ("ping", "echo", "time", "nope")
	buf = b""
	for i in range(100):
		req = {"type": kinds[i % 4], "ref": i}
		if req["type"] == "echo":
			req["content"] = "c%d" % i
		buf += json.dumps(req).encode() + b"\n"
	c.send_raw(buf)
	for i in range(100):
		r = c.recv(10)
		assert r.get("ref") == i, "reply %d: %r" % (i, r)
		kind = kinds[i % 4]
		if kind == "ping":
			assert r["type"] == "pong", r
		elif kind == "echo":
			assert r["type"] == "ok" and r["content"] == "c%d" % i, r
		elif kind == "time":
			assert r["type"] == "ok" and TS_RE.match(r["time"]), r
		else:
			assert_error(r, "unknown_type", i)
	assert_alive(c)


@test
def test_crlf_line_endings_are_accepted():
	c = Client(Daemon())
	c.send_raw(b'{"type":"echo","content":"a","ref":1}\r\n')
	r = c.recv()
	assert r["type"] == "ok" and r["content"] == "a" and r["ref"] == 1, r
	c.send_raw(b'{"type":"ping","ref":2}\r\n{"type":"ping","ref":3}\n')
	assert c.recv() == {"type": "pong", "ref": 2}
	assert c.recv() == {"type": "pong", "ref": 3}


@test
def test_empty_lines_are_ignored():
	c = Client(Daemon())
	c.send_raw(b"\n\r\n\n\n")
	c.send_raw(b'{"type":"ping","ref":"after"}\n')
	# The first thing back is the pong: the empty lines got no reply.
	assert c.recv() == {"type": "pong", "ref": "after"}
	c.send_raw(b'\n{"type":"ping","ref":"mid"}\n\r\n')
	assert c.recv() == {"type": "pong", "ref": "mid"}
	assert_alive(c)


@test
def test_line_of_exactly_max_line_bytes_is_accepted():
	c = Client(Daemon(limits=LIMITS))
	line, content = echo_line(MAX_LINE)
	assert len(line) == MAX_LINE
	c.send_raw(line + b"\n")
	r = c.recv()
	assert r["type"] == "ok" and r["content"] == content, r
	# The \r of a \r\n does not count either.
	c.send_raw(line + b"\r\n")
	r = c.recv()
	assert r["type"] == "ok" and r["content"] == content, r
	assert_alive(c)


@test
def test_default_max_line_is_16384_bytes():
	d = Daemon()
	c = Client(d)
	line, content = echo_line(16384)
	c.send_raw(line + b"\n")
	r = c.recv()
	assert r["type"] == "ok" and r["content"] == content, r
	c.close()
	c = Client(d)
	line, _ = echo_line(16385)
	c.send_raw(line + b"\n")
	got = c.expect_closed(10)
	assert got and got[0].get("code") == "line_too_long", got


@test
def test_line_of_max_line_plus_1_bytes_gets_line_too_long_and_close():
	c = Client(Daemon(limits=LIMITS))
	line, _ = echo_line(MAX_LINE + 1)
	c.send_raw(line + b"\n")
	got = c.expect_closed(10)
	assert got, "closed without a line_too_long error"
	assert got[0].get("type") == "error" and \
	    got[0].get("code") == "line_too_long", got
	assert len(got) == 1, got


@test
def test_long_line_arriving_in_pieces_without_newline_gets_line_too_long():
	c = Client(Daemon(limits=LIMITS))
	piece = b'{"type":"echo","content":"' + b"b" * 230
	sent = 0
	got = None
	# Bounded: at most 4 * MAX_LINE bytes, never a newline.
	while sent < 4 * MAX_LINE:
		try:
			c.send_raw(piece)
		except OSError:
			break		# the server already closed
		sent += len(piece)
		piece = b"b" * 256
		time.sleep(0.05)	# separate reads, not one burst
		if sent > MAX_LINE:
			break
	got = c.expect_closed(10)
	assert got and got[0].get("type") == "error" and \
	    got[0].get("code") == "line_too_long", got


if __name__ == "__main__":
	raise SystemExit(harness.run())
