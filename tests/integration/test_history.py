# test_history: the history request against the real daemon: limit,
# history_max, before/after semantics, room and direct conversations, and
# every error case.

import harness
from harness import Daemon, test
from chatlib import expect_ok, expect_error, user, join, send, history, ids

FAST = {"messages_per_second": 10000.0, "message_burst": 10000}


def fill(d, n=60, limits=None):
	"""
	alice and bob in #room with n room messages, alternating senders,
	with a direct message and a message in another room between every
	few so that the room's ids are not contiguous.  Returns (alice, bob,
	[ok of each room message], {id: content}).
	"""
	a = user(d, "alice")
	b = user(d, "bob")
	join(a, "#room")
	join(b, "#room")
	join(a, "#other")
	oks = []
	contents = {}
	for i in range(n):
		sender = a if i % 2 == 0 else b
		content = "room message %d" % i
		ok = send(sender, "#room", content)
		oks.append(ok)
		contents[ok["id"]] = (("alice", "bob")[i % 2], content,
		    ok["timestamp"])
		if i % 7 == 3:
			send(a, "bob", "dm %d" % i)
			send(a, "#other", "other %d" % i)
	return a, b, oks, contents


def check_room_messages(msgs, want_ids, contents):
	"""msgs are exactly the room's message events with ids want_ids."""
	assert ids(msgs) == want_ids, (ids(msgs), want_ids)
	for m in msgs:
		sender, content, ts = contents[m["id"]]
		assert m == {"type": "message", "id": m["id"], "from": sender,
		    "to": "#room", "content": content, "timestamp": ts}, m


@test
def test_history_without_bounds_gives_the_newest_50_oldest_first():
	d = Daemon(limits=FAST)
	a, b, oks, contents = fill(d, 60)
	all_ids = [o["id"] for o in oks]
	for c in (a, b):
		check_room_messages(history(c, "#room"), all_ids[-50:],
		    contents)
		check_room_messages(history(c, "#ROOM", limit=7),
		    all_ids[-7:], contents)
		check_room_messages(history(c, "#room", limit=1),
		    all_ids[-1:], contents)
		check_room_messages(history(c, "#room", limit=500), all_ids,
		    contents)


@test
def test_history_before_gives_the_newest_older_ones():
	d = Daemon(limits=FAST)
	a, b, oks, contents = fill(d, 60)
	x = [o["id"] for o in oks]
	check_room_messages(history(a, "#room", before=x[30], limit=5),
	    x[25:30], contents)
	check_room_messages(history(a, "#room", before=x[3]), x[0:3],
	    contents)
	check_room_messages(history(a, "#room", before=x[55]), x[5:55],
	    contents)
	check_room_messages(history(a, "#room", before=x[0]), [], contents)
	# A bound that is not a room message id (a direct message's) works.
	check_room_messages(history(a, "#room", before=x[-1] + 1000,
	    limit=3), x[-3:], contents)
	check_room_messages(history(a, "#room", before=x[4] + 1, limit=2),
	    x[3:5], contents)


@test
def test_history_after_gives_the_oldest_newer_ones():
	d = Daemon(limits=FAST)
	a, b, oks, contents = fill(d, 60)
	x = [o["id"] for o in oks]
	check_room_messages(history(a, "#room", after=x[30], limit=5),
	    x[31:36], contents)
	check_room_messages(history(a, "#room", after=x[0]), x[1:51],
	    contents)
	check_room_messages(history(a, "#room", after=x[50]), x[51:],
	    contents)
	check_room_messages(history(a, "#room", after=x[-1]), [], contents)
	check_room_messages(history(a, "#room", after=x[-1] + 1000), [],
	    contents)
	check_room_messages(history(a, "#room", after=x[2] - 1, limit=2),
	    x[2:4], contents)


@test
def test_history_with_before_and_after_gives_the_oldest_strictly_between():
	d = Daemon(limits=FAST)
	a, b, oks, contents = fill(d, 60)
	x = [o["id"] for o in oks]
	check_room_messages(history(a, "#room", after=x[10], before=x[40],
	    limit=5), x[11:16], contents)
	check_room_messages(history(a, "#room", after=x[10], before=x[40]),
	    x[11:40], contents)
	check_room_messages(history(a, "#room", after=x[0], before=x[59],
	    limit=100), x[1:59], contents)
	check_room_messages(history(a, "#room", after=x[0], before=x[59]),
	    x[1:51], contents)
	check_room_messages(history(a, "#room", after=x[10], before=x[11]),
	    [], contents)
	check_room_messages(history(a, "#room", after=x[10], before=x[10]),
	    [], contents)
	check_room_messages(history(a, "#room", after=x[20], before=x[10]),
	    [], contents)


@test
def test_history_limit_above_history_max_is_lowered_to_it():
	d = Daemon(limits=dict(FAST, history_max=20))
	a, b, oks, contents = fill(d, 30)
	x = [o["id"] for o in oks]
	check_room_messages(history(a, "#room", limit=100), x[-20:],
	    contents)
	check_room_messages(history(a, "#room", limit=21), x[-20:],
	    contents)
	check_room_messages(history(a, "#room", limit=20), x[-20:],
	    contents)
	# The default of 50 is above it too.
	check_room_messages(history(a, "#room"), x[-20:], contents)
	check_room_messages(history(a, "#room", after=x[0], limit=1000),
	    x[1:21], contents)
	check_room_messages(history(a, "#room", before=x[25], limit=1000),
	    x[5:25], contents)


@test
def test_history_limit_must_be_a_positive_integer():
	d = Daemon(limits=FAST)
	a, b, oks, contents = fill(d, 3)
	for bad in (0, -1, -50, 1.5, "5", True, [], {}, [5]):
		expect_error(a, {"type": "history", "with": "#room",
		    "limit": bad}, "bad_request", "limit")
		expect_error(a, {"type": "history", "with": "bob",
		    "limit": bad}, "bad_request", "limit")


@test
def test_history_before_and_after_must_be_integers():
	d = Daemon(limits=FAST)
	a, b, oks, contents = fill(d, 3)
	for bad in (1.5, "5", True, [], {}, [5]):
		for field in ("before", "after"):
			expect_error(a, {"type": "history", "with": "#room",
			    field: bad}, "bad_request", field)


@test
def test_history_with_must_be_a_string():
	d = Daemon()
	a = user(d, "alice")
	for bad in (1, 1.5, True, None, [], {}, ["#room"]):
		expect_error(a, {"type": "history", "with": bad},
		    "bad_request", "with")
	expect_error(a, {"type": "history"}, "bad_request", "with")


@test
def test_room_history_needs_membership_of_an_existing_room():
	d = Daemon(limits=FAST)
	a, b, oks, contents = fill(d, 3)
	c = user(d, "carol")
	expect_error(c, {"type": "history", "with": "#room"}, "not_member")
	expect_error(c, {"type": "history", "with": "#room",
	    "before": oks[-1]["id"]}, "not_member")
	expect_error(c, {"type": "history", "with": "#nosuch"},
	    "no_such_room")
	expect_ok(b, {"type": "leave", "room": "#room"})
	expect_error(b, {"type": "history", "with": "#room"}, "not_member")


@test
def test_direct_history_is_the_conversation_between_the_two_only():
	d = Daemon(limits=FAST)
	a = user(d, "Alice")
	b = user(d, "Bob")
	c = user(d, "carol")
	join(a, "#room")
	join(b, "#room")
	convo = []
	for i in range(10):
		if i % 2 == 0:
			convo.append(("Alice", send(a, "Bob", "a->b %d" % i),
			    "a->b %d" % i))
		else:
			convo.append(("Bob", send(b, "alice", "b->a %d" % i),
			    "b->a %d" % i))
		send(a, "carol", "a->c %d" % i)
		send(c, "bob", "c->b %d" % i)
		send(b, "#room", "room %d" % i)
	want = [(s, ok["id"], t, ok["timestamp"]) for s, ok, t in convo]
	for viewer, other in ((a, "bob"), (a, "BOB"), (b, "Alice")):
		got = history(viewer, other)
		assert [(m["from"], m["id"], m["content"], m["timestamp"])
		    for m in got] == want, got
		for m in got:
			assert m["type"] == "message", m
			assert m["to"].lower() == ("bob" if m["from"] == "Alice"
			    else "alice"), m
	# before/after apply to conversations too.
	x = [w[1] for w in want]
	assert ids(history(b, "alice", after=x[2], before=x[7])) == x[3:7]
	assert ids(history(b, "alice", limit=3)) == x[-3:]
	assert ids(history(b, "alice", before=x[5], limit=2)) == x[3:5]
	# carol sees only her own conversations.
	assert [m["content"] for m in history(c, "alice")] == \
	    ["a->c %d" % i for i in range(10)]
	assert [m["content"] for m in history(c, "bob")] == \
	    ["c->b %d" % i for i in range(10)]


@test
def test_direct_history_with_an_unknown_user_is_no_such_user():
	d = Daemon()
	a = user(d, "alice")
	expect_error(a, {"type": "history", "with": "nobody"}, "no_such_user")
	user(d, "bob")
	assert history(a, "bob") == []


if __name__ == "__main__":
	raise SystemExit(harness.run())
