# test_hostile_requests: requests as an attacker writes them (issue 10,
# defects 1, 6 and 7).  Escaped NULs that must round-trip exactly or be
# refused, floods of the requests that reach other people, room creation
# per user, history pages bounded in bytes with "more", deep JSON nesting,
# every request type before login and after quit.

import json
import time

import harness
from harness import Daemon, test
from chatlib import (assert_ok, assert_error, expect_ok, expect_error,
    assert_alive, req, user, session, join, send, sync, drain, wait_event,
    events_of, history, ids, PASSWORD)

FAST = {"messages_per_second": 100000.0, "message_burst": 100000}
BURST = 20			# message_burst by default
MAX_STRIKES = 50		# MESSAGE_MAX_STRIKES in message.c
HISTORY_BYTES = 262144		# limits.history_bytes by default

# Contents with escaped NULs: first, in the middle, last, only.
NUL_CONTENTS = [
	"\u0000" + "x" * 2000,
	"ab\u0000cd",
	"end\u0000",
	"\u0000",
	"\u0000\u0000\u0000",
	"a\u0000" * 100 + "\u00e9\u20ac\U0001f600",
]

# Every request type and a well-formed instance of it.
REQUESTS = {
	"ping": {"type": "ping"},
	"echo": {"type": "echo", "content": "hi"},
	"time": {"type": "time"},
	"register": {"type": "register", "user": "zed",
	    "password": PASSWORD},
	"login": {"type": "login", "user": "alice", "password": PASSWORD},
	"join": {"type": "join", "room": "#room"},
	"leave": {"type": "leave", "room": "#room"},
	"message": {"type": "message", "to": "#room", "content": "x"},
	"typing": {"type": "typing", "to": "#room", "state": "start"},
	"presence": {"type": "presence", "status": "away"},
	"history": {"type": "history", "with": "#room"},
	"users": {"type": "users"},
	"rooms": {"type": "rooms"},
	"topic": {"type": "topic", "room": "#room", "topic": "t"},
	"passwd": {"type": "passwd", "old": PASSWORD, "new": PASSWORD},
	"quit": {"type": "quit"},
}
BEFORE_LOGIN = {"ping", "echo", "time", "register", "login", "quit"}


def lines(objs):
	return b"".join(json.dumps(o).encode() + b"\n" for o in objs)


def replies_of(c, n, timeout=20):
	"""The next n replies (lines with a ref) c receives; events in
	between go to c.events."""
	out = []
	deadline = time.monotonic() + timeout
	while len(out) < n:
		m = c.recv(timeout=max(0.1, deadline - time.monotonic()))
		if "ref" in m:
			out.append(m)
		else:
			c.events.append(m)
	return out


def pipeline(c, objs):
	"""Send objs in one write, each with a ref, and return their
	replies in order."""
	objs = [dict(o, ref="p%d" % i) for i, o in enumerate(objs)]
	c.send_raw(lines(objs))
	got = replies_of(c, len(objs))
	assert [r["ref"] for r in got] == [o["ref"] for o in objs], got
	return got


def raw_request(c, obj):
	"""Send obj and return the raw reply line (bytes) with its ref."""
	ref = c.next_ref()
	c.send(dict(obj, ref=ref))
	while True:
		line = c.recv_line(timeout=30)
		m = json.loads(line)
		if m.get("ref") == ref:
			return line, m
		c.events.append(m)


def page(c, with_, **kw):
	"""One history page: (messages, more, length of the reply line)."""
	line, r = raw_request(c, dict({"type": "history", "with": with_},
	    **kw))
	assert_ok(r)
	assert isinstance(r.get("messages"), list), r
	assert r.get("more") in (True, False), "no boolean more: %r" % \
	    ({k: v for k, v in r.items() if k != "messages"},)
	return r["messages"], r["more"], len(line) + 1


# ------------------------------------------------------- escaped NULs

@test
def test_nul_content_round_trips_to_everyone_and_into_history():
	d = Daemon(limits=FAST)
	a1 = user(d, "alice")
	a2 = session(d, "alice")
	b = user(d, "bob")
	join(a1, "#room")
	join(b, "#room")
	drain(a2)
	drain(b)
	sent_room, sent_dm = [], []
	for content in NUL_CONTENTS:
		r = expect_ok(a1, {"type": "echo", "content": content})
		assert r["content"] == content, r
		ok = send(a1, "#room", content)
		sent_room.append((ok["id"], content))
		for c in (a2, b):
			ev = wait_event(c, "message", id=ok["id"])
			assert ev["content"] == content, (ev, content)
		ok = send(a1, "bob", content)
		sent_dm.append((ok["id"], content))
		for c in (a2, b):
			ev = wait_event(c, "message", id=ok["id"])
			assert ev["content"] == content, (ev, content)
	# Nothing else arrived: no event with someone's heap in it.
	sync(b)
	assert not events_of(b, "message"), events_of(b, "message")
	d.restart()
	b = session(d, "bob")
	got = [(m["id"], m["content"]) for m in history(b, "#room")]
	assert got == sent_room, got
	got = [(m["id"], m["content"]) for m in history(b, "alice")]
	assert got == sent_dm, got


@test
def test_nul_in_type_is_unknown_type():
	d = Daemon()
	c = harness.Client(d)
	for t in ("ping\u0000x", "ping\u0000", "\u0000", "quit\u0000",
	    "register\u0000"):
		expect_error(c, {"type": t}, "unknown_type")
	c.register("alice", PASSWORD)
	for t in ("ping\u0000x", "join\u0000", "rooms\u0000x"):
		expect_error(c, {"type": t, "room": "#r"}, "unknown_type")
	assert_alive(c)


@test
def test_nul_in_names_is_invalid_name():
	d = Daemon(limits=FAST)
	c = harness.Client(d)
	expect_error(c, {"type": "register", "user": "al\u0000ice",
	    "password": PASSWORD}, "invalid_name", "user")
	b = user(d, "bob")
	join(b, "#room")
	# Not "bob" cut short at the NUL, nor anyone.
	expect_error(c, {"type": "login", "user": "bob\u0000",
	    "password": PASSWORD}, "invalid_name", "user")
	expect_error(c, {"type": "login", "user": "bob\u0000x",
	    "password": PASSWORD}, "invalid_name", "user")
	a = user(d, "alice")
	join(a, "#room")
	for obj, field in (
	    ({"type": "join", "room": "#room\u0000"}, "room"),
	    ({"type": "join", "room": "#a\u0000b"}, "room"),
	    ({"type": "leave", "room": "#room\u0000"}, "room"),
	    ({"type": "topic", "room": "#room\u0000", "topic": "t"}, "room"),
	    ({"type": "users", "room": "#room\u0000"}, "room"),
	    ({"type": "message", "to": "bob\u0000", "content": "x"}, "to"),
	    ({"type": "message", "to": "#room\u0000x", "content": "x"}, "to"),
	    ({"type": "typing", "to": "bob\u0000", "state": "start"}, "to"),
	    ({"type": "history", "with": "#room\u0000"}, "with"),
	    ({"type": "history", "with": "\u0000bob"}, "with")):
		expect_error(a, obj, "invalid_name", field)
	# None of them reached bob or changed anything.
	drain(b)
	assert_ok(req(a, {"type": "users", "room": "#room"}))
	r = expect_ok(a, {"type": "rooms"})
	assert [x["room"] for x in r["rooms"]] == ["#room"], r
	sync(b)
	assert not b.events, b.events


@test
def test_nul_in_other_text_is_bad_request():
	d = Daemon(limits=FAST)
	a = user(d, "alice")
	b = user(d, "bob")
	join(a, "#room")
	join(b, "#room")
	drain(b)
	for obj, field in (
	    ({"type": "topic", "room": "#room", "topic": "t\u0000x"}, "topic"),
	    ({"type": "presence", "status": "away", "text": "\u0000"}, "text"),
	    ({"type": "presence", "status": "away\u0000x"}, "status"),
	    ({"type": "presence", "status": "busy\u0000"}, "status"),
	    ({"type": "typing", "to": "#room", "state": "start\u0000"},
	    "state"),
	    ({"type": "typing", "to": "bob", "state": "stop\u0000x"},
	    "state")):
		expect_error(a, obj, "bad_request", field)
	sync(a)
	sync(b)
	assert not b.events, b.events
	r = expect_ok(b, {"type": "users", "room": "#room"})
	assert {u["user"]: u["status"] for u in r["users"]} == \
	    {"alice": "online", "bob": "online"}, r


@test
def test_password_with_nul_is_kept_by_length():
	d = Daemon()
	pw = "pass\u0000word-long"
	c = harness.Client(d)
	c.register("alice", pw)
	c.close()
	# The bytes before the NUL are not the password.
	c = harness.Client(d)
	expect_error(c, {"type": "login", "user": "alice",
	    "password": "pass"}, "auth_failed")
	expect_error(c, {"type": "login", "user": "alice",
	    "password": "pass\u0000"}, "auth_failed")
	c.login("alice", pw)
	expect_ok(c, {"type": "passwd", "old": pw,
	    "new": "new\u0000password"})
	c.close()
	c = harness.Client(d)
	c.login("alice", "new\u0000password")


# ------------------------------------------------ requests that fan out

def flood_closes(a, objs, allowed=(), used=0):
	"""
	Pipeline objs without reading: a burst of ok (less the tokens
	already used), then rate_limited until MAX_STRIKES refusals in a
	row (no token taken in between) close the connection.  Errors with
	a code in allowed may come in between.  Returns the replies.
	"""
	objs = [dict(o, ref=i) for i, o in enumerate(objs)]
	a.send_raw(lines(objs))
	got = [m for m in a.expect_closed(timeout=30) if "ref" in m]
	assert a.close_kind is not None
	assert [m["ref"] for m in got] == list(range(len(got))), got
	kinds = [(m.get("type"), m.get("code")) for m in got]
	assert kinds[:BURST - used] == [("ok", None)] * (BURST - used), kinds
	for k in kinds:
		assert k in (("ok", None), ("error", "rate_limited")) or \
		    k[1] in allowed, kinds
	# A token may come back while the flood is read in; hardly more.
	assert kinds.count(("ok", None)) <= BURST + 3, kinds
	last_ok = max(i for i, k in enumerate(kinds) if k == ("ok", None))
	assert kinds[last_ok:].count(("error", "rate_limited")) == \
	    MAX_STRIKES, kinds
	assert kinds[-1] == ("error", "rate_limited"), kinds
	return got


def oks(got):
	return [m for m in got if m.get("type") == "ok"]


def mates(d, n):
	"""n room-mates of alice in #room, all reading (drained)."""
	out = []
	for i in range(n):
		m = user(d, "mate%d" % i)
		join(m, "#room")
		out.append(m)
	return out


def check_mates(ms, t, most):
	"""Each mate is alive and saw at most 'most' events of type t."""
	for m in ms:
		assert_alive(m)
		n = len(events_of(m, t))
		assert n <= most, "%d %s events reached a mate" % (n, t)


# One token a second: hardly any come back while a flood is read in.
SLOW = {"messages_per_second": 1.0}


@test
def test_presence_flood_is_rate_limited_and_closed():
	d = Daemon(limits=SLOW)
	a = user(d, "alice")
	join(a, "#room")
	ms = mates(d, 3)
	for m in ms:
		drain(m)
	# alice's join took a token of the same bucket.
	n = len(oks(flood_closes(a, [{"type": "presence", "status": s,
	    "text": "x" * 200} for s in ["away", "busy"] * 200], used=1)))
	check_mates(ms, "presence", n + 1)	# + alice's offline
	# The flooder may come back, and others talk on.
	a = session(d, "alice")
	expect_ok(a, {"type": "presence", "status": "online"})
	send(ms[0], "#room", "still here")


@test
def test_topic_flood_is_rate_limited_and_closed():
	d = Daemon(limits=SLOW)
	a = user(d, "alice")
	join(a, "#room")
	ms = mates(d, 2)
	for m in ms:
		drain(m)
	got = oks(flood_closes(a, [{"type": "topic", "room": "#room",
	    "topic": "t%d" % i} for i in range(400)], used=1))
	check_mates(ms, "topic", len(got))
	r = expect_ok(ms[0], {"type": "join", "room": "#room"})
	assert r["topic"] == "t%d" % got[-1]["ref"], r


@test
def test_join_leave_flood_is_rate_limited_and_closed():
	d = Daemon(limits=SLOW)
	a = user(d, "alice")
	ms = mates(d, 2)
	for m in ms:
		drain(m)
	objs = []
	for i in range(200):
		objs.append({"type": "join", "room": "#room"})
		objs.append({"type": "leave", "room": "#room"})
	# Past the burst a refused join leaves a leave that is not_member.
	n = len(oks(flood_closes(a, objs, ("not_member",))))
	check_mates(ms, "join", (n + 1) // 2)
	check_mates(ms, "leave", (n + 1) // 2)


@test
def test_fanout_flood_never_cuts_off_mates_that_read_later():
	# A mate with a small output buffer that is not reading while
	# alice floods: what alice may send it stays far below the buffer.
	d = Daemon(limits={"output_buffer": 65536})
	a = user(d, "alice")
	join(a, "#room")
	slow = harness.Client(d)
	slow.register("slow", PASSWORD)
	join(slow, "#room")
	text = "y" * 250
	objs = [{"type": "presence", "status": "away", "text": text},
	    {"type": "topic", "room": "#room", "topic": text * 4},
	    {"type": "leave", "room": "#room"},
	    {"type": "join", "room": "#room"}] * 100
	a.send_raw(lines([dict(o, ref=i) for i, o in enumerate(objs)]))
	a.expect_closed(timeout=30)
	# slow reads only now, and is still there.
	assert_alive(slow)
	assert len(slow.events) <= 4 * BURST, len(slow.events)


@test
def test_joining_a_room_one_is_in_is_not_limited():
	# Clients re-join their rooms on reconnect; that reaches nobody.
	d = Daemon(limits={"messages_per_second": 0.01, "message_burst": 3})
	a = user(d, "alice")
	for r in ("#a", "#b", "#c"):
		join(a, r)
	for i in range(30):
		join(a, ("#a", "#b", "#c")[i % 3])
	expect_error(a, {"type": "join", "room": "#d"}, "rate_limited")
	# Typing has its own bucket; messages theirs.
	expect_ok(a, {"type": "typing", "to": "#a", "state": "start"})
	send(a, "#a", "hello")


@test
def test_rooms_per_hour_counts_every_session_of_the_user():
	d = Daemon(limits=FAST)
	a1 = user(d, "alice")
	a2 = session(d, "alice")
	b = user(d, "bob")
	join(b, "#bobs")
	for i in range(12):
		join(a1, "#a1-%d" % i)
	for i in range(8):
		join(a2, "#a2-%d" % i)
	r = expect_error(a2, {"type": "join", "room": "#one-too-many"},
	    "rate_limited")
	expect_error(a1, {"type": "join", "room": "#one-too-many"},
	    "rate_limited")
	# Existing rooms may still be joined; the refused one was not made.
	join(a2, "#bobs")
	expect_error(b, {"type": "leave", "room": "#one-too-many"},
	    "not_member")
	r = expect_ok(b, {"type": "rooms"})
	assert len(r["rooms"]) == 21, r
	assert "#one-too-many" not in [x["room"] for x in r["rooms"]], r
	# Reconnecting does not start the count again.
	a1.close()
	a2.close()
	a3 = session(d, "alice")
	expect_error(a3, {"type": "join", "room": "#again"}, "rate_limited")
	# Another user has a count of their own.
	join(b, "#bobs-second")


@test
def test_room_list_marks_joined_rooms_among_many():
	# 300 rooms made by 15 users (20 each, the hourly allowance); bob
	# is in every seventh.  (A guard for the list's binary search.)
	d = Daemon(limits=FAST)
	names = ["#r%03d" % i for i in range(300)]
	for k in range(15):
		a = user(d, "maker%d" % k)
		pipeline(a, [{"type": "join", "room": n}
		    for n in names[20 * k:20 * (k + 1)]])
		a.close()
	b = user(d, "bob")
	mine = set(names[::7])
	pipeline(b, [{"type": "join", "room": n} for n in sorted(mine)])
	r = expect_ok(b, {"type": "rooms"})
	got = {x["room"]: (x["joined"], x["members"]) for x in r["rooms"]}
	assert got == {n: (n in mine, 2 if n in mine else 1)
	    for n in names}, got


# ------------------------------------------------------------- history

def fill_room(a, n, content=lambda i: "m%d" % i, room="#room"):
	"""alice sends n messages to room, pipelined 50 at a time; returns
	their ids."""
	out = []
	for first in range(0, n, 50):
		got = pipeline(a, [{"type": "message", "to": room,
		    "content": content(i)} for i in range(first,
		    min(n, first + 50))])
		for r in got:
			assert_ok(r)
			out.append(r["id"])
	return out


@test
def test_history_after_zero_is_the_beginning():
	d = Daemon(limits=FAST)
	a = user(d, "alice")
	join(a, "#room")
	x = fill_room(a, 60)
	msgs, more, _ = page(a, "#room", after=0, limit=10)
	assert ids(msgs) == x[:10] and more is True, (ids(msgs), more)
	msgs, more, _ = page(a, "#room", after=0)
	assert ids(msgs) == x[:50] and more is True, ids(msgs)
	msgs, more, _ = page(a, "#room", after=0, limit=500)
	assert ids(msgs) == x and more is False, ids(msgs)
	msgs, more, _ = page(a, "#room", after=0, before=x[5])
	assert ids(msgs) == x[:5] and more is False, ids(msgs)
	# And for a direct conversation.
	b = user(d, "bob")
	y = [send(a if i % 2 else b, "bob" if i % 2 else "alice",
	    "dm %d" % i)["id"] for i in range(6)]
	msgs, more, _ = page(b, "alice", after=0, limit=4)
	assert ids(msgs) == y[:4] and more is True, ids(msgs)


@test
def test_history_more_in_every_direction():
	d = Daemon(limits=FAST)
	a = user(d, "alice")
	join(a, "#room")
	x = fill_room(a, 60)
	cases = [
	    (dict(limit=10), x[-10:], True),
	    (dict(limit=60), x, False),
	    (dict(limit=61), x, False),
	    (dict(before=x[5], limit=5), x[:5], False),
	    (dict(before=x[5], limit=4), x[1:5], True),
	    (dict(before=x[0]), [], False),
	    (dict(before=0), [], False),
	    (dict(after=x[50], limit=9), x[51:], False),
	    (dict(after=x[50], limit=8), x[51:59], True),
	    (dict(after=x[-1]), [], False),
	    (dict(after=x[10], before=x[20], limit=9), x[11:20], False),
	    (dict(after=x[10], before=x[20], limit=8), x[11:19], True),
	    (dict(after=x[10], before=x[11]), [], False),
	]
	for kw, want, want_more in cases:
		msgs, more, _ = page(a, "#room", **kw)
		assert ids(msgs) == want and more is want_more, \
		    (kw, ids(msgs), more)
	# An empty conversation.
	user(d, "bob")
	msgs, more, _ = page(a, "bob")
	assert msgs == [] and more is False


@test
def test_history_page_of_500_times_4kb_is_cut_to_history_bytes():
	d = Daemon(limits=FAST)
	a = user(d, "alice")
	join(a, "#big")
	x = fill_room(a, 500, lambda i: ("%05d" % i) + "z" * 4091, "#big")
	# bob joins later and reads: 2 MB of history in pages he can take.
	b = user(d, "bob")
	join(b, "#big")
	msgs, more, size = page(b, "#big", limit=500)
	assert size <= HISTORY_BYTES, size
	assert more is True and 1 <= len(msgs) < 500, (len(msgs), more)
	assert ids(msgs) == x[-len(msgs):], "not the newest, oldest first"
	assert size > HISTORY_BYTES - 2 * 4300, "page cut too short"
	assert_alive(b)
	# Backwards to the start with before and more.
	got = ids(msgs)
	for _ in range(100):
		if not more:
			break
		msgs, more, size = page(b, "#big", before=got[0], limit=500)
		assert size <= HISTORY_BYTES and msgs, (size, len(msgs))
		got = ids(msgs) + got
	assert got == x and more is False
	# Forwards from the beginning with after and more.
	got, more, last = [], True, 0
	for _ in range(100):
		if not more:
			break
		msgs, more, size = page(b, "#big", after=last, limit=500)
		assert size <= HISTORY_BYTES and msgs, (size, len(msgs))
		got += ids(msgs)
		last = got[-1]
	assert got == x and more is False
	for m in msgs:
		assert m["content"] == "%05d" % x.index(m["id"]) + "z" * 4091
	assert_alive(b)


@test
def test_history_bytes_count_escaped_json():
	# 1000 control characters are 6000 bytes of JSON each: two fit in
	# 16 KiB, though the raw text of 16 would.
	d = Daemon(limits=dict(FAST, history_bytes=16384))
	a = user(d, "alice")
	join(a, "#room")
	x = fill_room(a, 20, lambda i: "\u0001" * 999 + chr(65 + i))
	got, more, last = [], True, 0
	for _ in range(30):
		if not more:
			break
		msgs, more, size = page(a, "#room", after=last)
		assert size <= 16384 and 1 <= len(msgs) <= 2, (size, len(msgs))
		got += ids(msgs)
		last = got[-1]
	assert got == x


@test
def test_history_gives_one_message_larger_than_history_bytes():
	d = Daemon(limits=dict(FAST, history_bytes=1024))
	a = user(d, "alice")
	join(a, "#room")
	x = fill_room(a, 3, lambda i: "%d" % i + "q" * 2000)
	for kw, want, want_more in ((dict(), x[2:], True),
	    (dict(after=0), x[:1], True), (dict(after=x[1]), x[2:], False),
	    (dict(before=x[1]), x[:1], False)):
		msgs, more, size = page(a, "#room", **kw)
		assert ids(msgs) == want and more is want_more, \
		    (kw, ids(msgs), more)


# ---------------------------------------------------- odd requests

@test
def test_deep_json_nesting_is_refused_and_harmless():
	d = Daemon(limits={"max_line": 700000})
	c = harness.Client(d)
	for depth in (100000, 3000):
		for body in ("[" * depth + "]" * depth, "[" * depth,
		    '{"a":' * depth + "1" + "}" * depth):
			c.send_raw(('{"type":"ping","ref":"deep","x":%s}\n' %
			    body).encode())
			r = c.recv(timeout=30)
			assert r.get("type") == "error" and \
			    r.get("code") == "bad_json", str(r)[:200]
			assert_alive(c)
	# Nesting within jansson's limit is an unknown field like any.
	c.send_raw(('{"type":"ping","ref":"ok","x":%s}\n' %
	    ("[" * 1000 + "]" * 1000)).encode())
	assert c.recv(timeout=30) == {"type": "pong", "ref": "ok"}


@test
def test_every_request_type_before_login():
	d = Daemon()
	user(d, "alice").close()
	for t, obj in sorted(REQUESTS.items()):
		c = harness.Client(d)
		r = req(c, obj)
		if t in BEFORE_LOGIN:
			assert r.get("type") in ("ok", "pong"), (t, r)
		else:
			assert_error(r, "auth_required")
			# Even when its fields are wrong or missing.
			expect_error(c, {"type": t}, "auth_required")
			expect_error(c, dict(obj, x="\u0000"), "auth_required")
			assert_alive(c)
		c.close()


@test
def test_every_request_type_after_quit_gets_no_reply():
	d = Daemon(limits=FAST)
	b = user(d, "bob")
	join(b, "#room")
	drain(b)
	for t, obj in sorted(REQUESTS.items()):
		for logged_in in (False, True):
			c = harness.Client(d)
			if logged_in:
				c.register("u%s" % t, PASSWORD)
				join(c, "#room")
			objs = [{"type": "quit", "ref": "q"},
			    dict(obj, ref="after"),
			    {"type": "message", "to": "#room",
			    "content": "after quit", "ref": "after2"}]
			c.send_raw(lines(objs))
			got = c.expect_closed(timeout=10)
			refs = [m.get("ref") for m in got
			    if isinstance(m, dict) and "ref" in m]
			assert refs == ["q"], (t, logged_in, got)
			assert c.close_kind == "close_notify", c.close_kind
	# Nothing sent after a quit reached anyone; the daemon is fine.
	sync(b)
	assert not events_of(b, "message"), events_of(b, "message")
	assert_alive(b)


if __name__ == "__main__":
	raise SystemExit(harness.run())
