# test_messages: room and direct messages against the real daemon: who
# gets the event, ok and event agreement, id order, size limits counted in
# bytes, and every error case.

import json

import harness
from harness import Client, Daemon, test
from chatlib import (BAD_VALUES, assert_ok, expect_error, user, session, join,
    send, drain, wait_event, assert_no_event, message_event_ok, history)

MAX_MESSAGE = 100
# Room for the ordering test's bursts of pipelined messages.
FAST = {"messages_per_second": 10000.0, "message_burst": 10000}


def msg(to, content):
	return {"type": "message", "to": to, "content": content}


@test
def test_room_message_goes_to_every_member_session_but_the_sender():
	d = Daemon()
	a1 = user(d, "Alice")
	a2 = session(d, "alice")
	b1 = user(d, "bob")
	b2 = session(d, "bob")
	outsider = user(d, "carol")
	join(a1, "#room")
	join(b1, "#room")
	ok = send(a1, "#ROOM", "hello room")
	for c in (a2, b1, b2):
		ev = wait_event(c, "message", id=ok["id"])
		message_event_ok(ev, ok, "Alice", "#room", "hello room")
		assert set(ev) == {"type", "id", "from", "to", "content",
		    "timestamp"}, ev
	assert_no_event(a1, "message")
	assert_no_event(outsider, "message")
	for c in (a2, b1, b2):
		assert_no_event(c, "message")


@test
def test_direct_message_goes_to_recipient_and_senders_other_sessions():
	d = Daemon()
	a1 = user(d, "Alice")
	a2 = session(d, "alice")
	b1 = user(d, "Bob")
	b2 = session(d, "bob")
	outsider = user(d, "carol")
	# No shared room is needed.
	ok = send(a1, "Bob", "hello bob")
	for c in (a2, b1, b2):
		ev = wait_event(c, "message", id=ok["id"])
		message_event_ok(ev, ok, "Alice", "Bob", "hello bob")
	assert_no_event(a1, "message")
	assert_no_event(outsider, "message")
	# The recipient's name is case-insensitive.
	ok = send(b2, "ALICE", "hello alice")
	for c in (a1, a2, b1):
		ev = wait_event(c, "message", id=ok["id"])
		assert ev["from"] == "Bob", ev
		assert ev["content"] == "hello alice", ev
		assert ev["to"].lower() == "alice", ev
	assert_no_event(b2, "message")


@test
def test_direct_message_to_an_offline_user_is_kept_for_history():
	d = Daemon()
	a = user(d, "alice")
	user(d, "bob").close()
	ok = send(a, "bob", "while you were out")
	b = session(d, "bob")
	got = history(b, "alice")
	assert len(got) == 1, got
	message_event_ok(got[0], ok, "alice", "bob", "while you were out")


@test
def test_message_to_unknown_room_or_user_or_as_non_member_fails():
	d = Daemon()
	a = user(d, "alice")
	b = user(d, "bob")
	join(a, "#room")
	expect_error(b, msg("#nosuch", "x"), "no_such_room")
	expect_error(b, msg("#room", "x"), "not_member")
	expect_error(b, msg("nobody", "x"), "no_such_user")
	assert_no_event(a, "message")
	# None was stored.
	assert history(a, "#room") == []
	assert history(b, "alice") == []


@test
def test_message_content_empty_is_bad_request():
	d = Daemon()
	a = user(d, "alice")
	b = user(d, "bob")
	join(a, "#room")
	expect_error(a, msg("#room", ""), "bad_request", "content")
	expect_error(a, msg("bob", ""), "bad_request", "content")
	assert_no_event(b, "message")
	assert history(a, "#room") == []


@test
def test_message_size_limit_is_counted_in_bytes():
	d = Daemon(limits={"max_message": MAX_MESSAGE})
	a = user(d, "alice")
	b = user(d, "bob")
	join(a, "#room")
	join(b, "#room")
	fits = [
	    "a" * MAX_MESSAGE,
	    "\u00e9" * (MAX_MESSAGE // 2),		# 2 bytes each
	    "\u20ac" * (MAX_MESSAGE // 3) + "a",	# 3 bytes each: 99 + 1
	    "\U0001F600" * (MAX_MESSAGE // 4),		# 4 bytes each
	]
	too_long = [
	    "a" * (MAX_MESSAGE + 1),
	    "\u00e9" * (MAX_MESSAGE // 2) + "a",	# 101 bytes, 51 chars
	    "\u20ac" * (MAX_MESSAGE // 3) + "\u00e9",	# 101 bytes, 34 chars
	    "\U0001F600" * (MAX_MESSAGE // 4) + "a",	# 101 bytes, 26 chars
	    "a" * (MAX_MESSAGE * 10),
	]
	oks = []
	for content in fits:
		ok = send(a, "#room", content)
		ev = wait_event(b, "message", id=ok["id"])
		assert ev["content"] == content, ev
		oks.append(ok)
	for content in too_long:
		expect_error(a, msg("#room", content), "message_too_long")
		expect_error(a, msg("bob", content), "message_too_long")
	assert_no_event(b, "message")
	got = history(b, "#room")
	assert [(m["id"], m["content"]) for m in got] == \
	    [(o["id"], c) for o, c in zip(oks, fits)], got
	assert history(b, "alice") == []


@test
def test_message_bad_field_types_are_bad_request_naming_the_field():
	d = Daemon()
	a = user(d, "alice")
	b = user(d, "bob")
	join(a, "#room")
	join(b, "#room")
	for bad in BAD_VALUES["string"]:
		expect_error(a, msg(bad, "x"), "bad_request", "to")
		expect_error(a, msg("#room", bad), "bad_request", "content")
		expect_error(a, msg("bob", bad), "bad_request", "content")
	expect_error(a, {"type": "message", "content": "x"}, "bad_request",
	    "to")
	expect_error(a, {"type": "message", "to": "#room"}, "bad_request",
	    "content")
	assert_no_event(b, "message")
	assert history(a, "#room") == []


@test
def test_message_ids_strictly_increase_and_ok_matches_event():
	d = Daemon(limits=FAST)
	a = user(d, "alice")
	b = user(d, "bob")
	join(a, "#one")
	join(b, "#one")
	join(a, "#two")
	join(b, "#two")
	seen = []
	for i in range(30):
		sender, other = (a, b) if i % 2 == 0 else (b, a)
		to = ["#one", "#two", "bob" if sender is a else "alice"][i % 3]
		content = "message %d \u00e9" % i
		ok = send(sender, to, content)
		ev = wait_event(other, "message", id=ok["id"])
		assert ev["content"] == content and ev["timestamp"] == \
		    ok["timestamp"], (ok, ev)
		seen.append(ok["id"])
	assert all(x < y for x, y in zip(seen, seen[1:])), seen


@test
def test_room_events_arrive_in_id_order_at_every_session():
	d = Daemon(limits=FAST)
	a = user(d, "alice")
	b = user(d, "bob")
	c1 = user(d, "carol")
	c2 = session(d, "carol")
	for x in (a, b, c1):
		join(x, "#busy")
	drain(c1)
	drain(c2)
	drain(a)
	drain(b)
	n = 150
	# Both senders pipeline all their messages before reading anything,
	# so that the daemon interleaves the two streams.
	for i in range(n):
		a.send({"type": "message", "to": "#busy",
		    "content": "a%d" % i, "ref": "a%d" % i})
		b.send({"type": "message", "to": "#busy",
		    "content": "b%d" % i, "ref": "b%d" % i})
	oks = {}
	for sender, tag in ((a, "a"), (b, "b")):
		got = 0
		while got < n:
			m = sender.recv(timeout=20)
			if m.get("ref") is None:
				sender.events.append(m)
				continue
			assert_ok(m)
			assert m["ref"] == "%s%d" % (tag, got), m
			oks[m["id"]] = (tag, got)
			got += 1
	assert len(oks) == 2 * n
	order = sorted(oks)
	want = [{"from": {"a": "alice", "b": "bob"}[oks[i][0]], "id": i,
	    "content": "%s%d" % oks[i]} for i in order]

	def received(c, count):
		out = []
		while len(out) < count:
			if c.events:
				ev = c.events.pop(0)
			else:
				ev = c.recv(timeout=20)
			if ev.get("type") == "message":
				out.append({"from": ev["from"], "id": ev["id"],
				    "content": ev["content"]})
		return out

	for c in (c1, c2):
		assert received(c, 2 * n) == want
	# Each sender sees the other's messages, in id order too.
	assert received(a, n) == [w for w in want if w["from"] == "bob"]
	assert received(b, n) == [w for w in want if w["from"] == "alice"]
	got = history(c1, "#busy", limit=500)
	assert [{"from": m["from"], "id": m["id"], "content": m["content"]}
	    for m in got] == want


@test
def test_a_large_burst_of_pipelined_messages_is_all_answered_in_order():
	# About 100 KB of requests written at once, far more than one TLS
	# record or one read: every request still gets its reply, and the
	# other member every event, without the client sending anything
	# more (nothing may be left sitting unread inside the server).
	d = Daemon(limits=FAST)
	a = user(d, "alice")
	b = user(d, "bob")
	join(a, "#bulk")
	join(b, "#bulk")
	drain(b)
	n = 1000
	data = b"".join(json.dumps({"type": "message", "to": "#bulk",
	    "content": "bulk %04d %s" % (i, "y" * 60), "ref": i}).encode() +
	    b"\n" for i in range(n))
	assert len(data) > 90000, len(data)
	a.send_raw(data)
	oks = []
	while len(oks) < n:
		try:
			m = a.recv(timeout=10)
		except TimeoutError:
			raise AssertionError("only %d of %d pipelined requests "
			    "answered; the rest sit unanswered" % (len(oks), n))
		if "ref" not in m:
			continue
		assert_ok(m)
		assert m["ref"] == len(oks), m
		oks.append(m["id"])
	assert all(x < y for x, y in zip(oks, oks[1:]))
	got = []
	while len(got) < n:
		ev = b.recv(timeout=10)
		if ev.get("type") == "message":
			got.append((ev["id"], ev["content"]))
	assert got == [(oks[i], "bulk %04d %s" % (i, "y" * 60))
	    for i in range(n)]


@test
def test_pipelined_messages_and_failures_are_answered_in_request_order():
	# "Exactly one reply per request, in request order per connection":
	# a failure right behind a message still waiting for its commit
	# must not overtake that message's ok.
	d = Daemon()
	a = user(d, "alice")
	b = user(d, "bob")
	join(a, "#room")
	reqs = [
	    (msg("#room", "first"), "ok", None),
	    (msg("#nosuch", "x"), "error", "no_such_room"),
	    ({"type": "ping"}, "pong", None),
	    (msg("#room", ""), "error", "bad_request"),
	    (msg("bob", "direct"), "ok", None),
	    (msg("nobody", "x"), "error", "no_such_user"),
	    (msg("#room", 5), "error", "bad_request"),
	    ({"type": "history", "with": "#room"}, "ok", None),
	    (msg("#room", "last"), "ok", None),
	    ({"type": "echo", "content": "e"}, "ok", None),
	]
	a.send_raw(b"".join(json.dumps(dict(r, ref=i)).encode() + b"\n"
	    for i, (r, _, _) in enumerate(reqs)))
	got = []
	while len(got) < len(reqs):
		m = a.recv(timeout=10)
		if "ref" in m:
			got.append((m["ref"], m["type"], m.get("code")))
	assert got == [(i, t, code) for i, (_, t, code) in enumerate(reqs)], \
	    got


@test
def test_messages_need_login():
	d = Daemon()
	user(d, "alice").close()
	c = Client(d)
	expect_error(c, msg("alice", "x"), "auth_required")
	expect_error(c, msg("#room", "x"), "auth_required")


if __name__ == "__main__":
	raise SystemExit(harness.run())
