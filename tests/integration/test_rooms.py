# test_rooms: join, leave, users, rooms and topic against the real daemon,
# with their events and every error case.

import harness
from harness import Client, Daemon, test
from chatlib import (BAD_VALUES, assert_ok, expect_ok, expect_error, user,
    session, join, send, drain, wait_event, assert_no_event, history, req)

INVALID_ROOMS = ["chat", "#", "#" + "a" * 65, "#a b", "#caf\u00e9", "##x",
    "#a/b", "#a#b", "# x", "#a:b", "#a\tb", "", "@chat", "#\u00e4"]
VALID_ROOMS = ["#a", "#" + "R" * 64, "#_x", "#x.y-z_9", "#-dash", "#.dot",
    "#9"]


def users_of(reply):
	"""{name: status} of a users reply, checking its shape."""
	assert_ok(reply)
	assert isinstance(reply.get("users"), list), reply
	out = {}
	for u in reply["users"]:
		assert set(u) >= {"user", "status"}, reply
		assert u["user"] not in out, "listed twice: %r" % (reply,)
		out[u["user"]] = u["status"]
	return out


def rooms_of(reply):
	"""{room: (topic, members, joined)} of a rooms reply."""
	assert_ok(reply)
	assert isinstance(reply.get("rooms"), list), reply
	out = {}
	for r in reply["rooms"]:
		assert isinstance(r.get("members"), int), reply
		assert isinstance(r.get("joined"), bool), reply
		assert isinstance(r.get("topic"), str), reply
		out[r["room"]] = (r["topic"], r["members"], r["joined"])
	return out


# ------------------------------------------------------------ join


@test
def test_join_creates_a_room_with_empty_topic_and_the_joiner_as_member():
	d = Daemon()
	a = user(d, "Alice")
	r = join(a, "#Chat")
	assert r == {"type": "ok", "ref": r["ref"], "room": "#Chat",
	    "topic": "", "members": ["Alice"]}, r
	b = user(d, "bob")
	r = join(b, "#chat")
	assert_ok(r, room="#Chat", topic="")
	assert sorted(r["members"]) == ["Alice", "bob"], r


@test
def test_join_invalid_room_names_get_invalid_name():
	d = Daemon()
	a = user(d, "alice")
	for room in INVALID_ROOMS:
		expect_error(a, {"type": "join", "room": room}, "invalid_name")
	assert rooms_of(req(a, {"type": "rooms"})) == {}


@test
def test_join_valid_room_names_at_the_edges_are_accepted():
	d = Daemon()
	a = user(d, "alice")
	for room in VALID_ROOMS:
		assert_ok(join(a, room), room=room, topic="",
		    members=["alice"])
	got = rooms_of(req(a, {"type": "rooms"}))
	assert sorted(got) == sorted(VALID_ROOMS), got


@test
def test_join_bad_room_types_are_bad_request_naming_room():
	d = Daemon()
	a = user(d, "alice")
	for bad in BAD_VALUES["string"]:
		expect_error(a, {"type": "join", "room": bad}, "bad_request",
		    "room")
	expect_error(a, {"type": "join"}, "bad_request", "room")


@test
def test_join_unknown_room_with_creation_off_is_no_such_room():
	d = Daemon()
	a = user(d, "alice")
	join(a, "#Existing")
	a.close()
	d.write_config(allow_create=False)
	d.restart()
	a = session(d, "alice")
	b = user(d, "bob")
	expect_error(b, {"type": "join", "room": "#new"}, "no_such_room")
	# An existing room can still be joined, in any case.
	r = join(b, "#EXISTING")
	assert_ok(r, room="#Existing")
	assert sorted(r["members"]) == ["alice", "bob"], r
	got = rooms_of(req(b, {"type": "rooms"}))
	assert got == {"#Existing": ("", 2, True)}, got


@test
def test_join_again_is_ok_without_a_second_join_event():
	d = Daemon()
	a = user(d, "alice")
	b = user(d, "bob")
	join(a, "#room")
	join(b, "#room")
	wait_event(a, "join", room="#room", user="bob")
	drain(a)
	r = join(b, "#ROOM")
	assert_ok(r, room="#room", topic="")
	assert sorted(r["members"]) == ["alice", "bob"], r
	assert_no_event(a, "join")
	got = rooms_of(req(a, {"type": "rooms"}))
	assert got == {"#room": ("", 2, True)}, got


@test
def test_join_event_goes_to_members_and_joiners_other_sessions_only():
	d = Daemon()
	a1 = user(d, "alice")
	a2 = session(d, "alice")
	b1 = user(d, "Bob")
	b2 = session(d, "bob")
	outsider = user(d, "carol")
	join(a1, "#room")
	# The creator's other session hears of the join too.
	ev = wait_event(a2, "join")
	assert ev == {"type": "join", "room": "#room", "user": "alice"}, ev
	assert_no_event(a1, "join")
	assert_ok(join(b1, "#Room"), room="#room")
	for c in (a1, a2, b2):
		ev = wait_event(c, "join")
		assert ev == {"type": "join", "room": "#room", "user": "Bob"}, \
		    ev
	# The joining session gets only its ok; outsiders nothing.
	assert_no_event(b1, "join")
	assert_no_event(outsider, "join")
	for c in (a1, a2, b2):
		assert_no_event(c, "join")


@test
def test_room_names_are_case_insensitive_and_keep_the_creation_spelling():
	d = Daemon()
	a = user(d, "alice")
	b = user(d, "bob")
	join(a, "#MiXeD")
	assert_ok(join(b, "#mixed"), room="#MiXeD")
	ev = wait_event(a, "join", user="bob")
	assert ev["room"] == "#MiXeD", ev
	ok = send(b, "#MIXED", "hello")
	ev = wait_event(a, "message", id=ok["id"])
	assert ev["to"] == "#MiXeD", ev
	assert [m["to"] for m in history(a, "#mixed")] == ["#MiXeD"]
	expect_ok(b, {"type": "topic", "room": "#mIxEd", "topic": "t"})
	ev = wait_event(a, "topic")
	assert ev["room"] == "#MiXeD", ev
	assert sorted(users_of(req(a, {"type": "users",
	    "room": "#MIXED"}))) == ["alice", "bob"]
	assert list(rooms_of(req(a, {"type": "rooms"}))) == ["#MiXeD"]
	c = Client(d)
	assert_ok(c.login("alice", "correct horse battery"), rooms=["#MiXeD"])
	r = expect_ok(b, {"type": "leave", "room": "#mixed"})
	assert r["room"] == "#MiXeD", r
	ev = wait_event(a, "leave")
	assert ev == {"type": "leave", "room": "#MiXeD", "user": "bob"}, ev


# ------------------------------------------------------------ leave


@test
def test_leave_not_member_or_unknown_room_is_not_member():
	d = Daemon()
	a = user(d, "alice")
	b = user(d, "bob")
	join(a, "#room")
	expect_error(b, {"type": "leave", "room": "#room"}, "not_member")
	expect_error(b, {"type": "leave", "room": "#nosuch"}, "not_member")
	for bad in BAD_VALUES["string"]:
		expect_error(b, {"type": "leave", "room": bad}, "bad_request",
		    "room")
	expect_error(b, {"type": "leave"}, "bad_request", "room")
	# alice is still the only member.
	got = rooms_of(req(a, {"type": "rooms"}))
	assert got == {"#room": ("", 1, True)}, got


@test
def test_leave_event_goes_to_members_and_leavers_other_sessions():
	d = Daemon()
	a = user(d, "alice")
	b1 = user(d, "Bob")
	b2 = session(d, "bob")
	outsider = user(d, "carol")
	join(a, "#room")
	join(b1, "#room")
	drain(a)
	drain(b2)
	r = expect_ok(b1, {"type": "leave", "room": "#ROOM"})
	assert r["room"] == "#room", r
	for c in (a, b2):
		ev = wait_event(c, "leave")
		assert ev == {"type": "leave", "room": "#room",
		    "user": "Bob"}, ev
	assert_no_event(b1, "leave")
	assert_no_event(outsider, "leave")


@test
def test_after_leave_the_room_is_closed_to_the_leaver():
	d = Daemon()
	a = user(d, "alice")
	b1 = user(d, "bob")
	b2 = session(d, "bob")
	join(a, "#room")
	join(b1, "#room")
	expect_ok(b1, {"type": "leave", "room": "#room"})
	for b in (b1, b2):
		expect_error(b, {"type": "message", "to": "#room",
		    "content": "x"}, "not_member")
		expect_error(b, {"type": "history", "with": "#room"},
		    "not_member")
		expect_error(b, {"type": "users", "room": "#room"},
		    "not_member")
		expect_error(b, {"type": "leave", "room": "#room"},
		    "not_member")
	# Messages to the room no longer reach bob.
	drain(b1)
	drain(b2)
	send(a, "#room", "bob is gone")
	assert_no_event(b1, "message", settle=a)
	assert_no_event(b2, "message")
	got = rooms_of(req(b1, {"type": "rooms"}))
	assert got == {"#room": ("", 1, False)}, got
	c = Client(d)
	assert_ok(c.login("bob", "correct horse battery"), rooms=[])


@test
def test_membership_survives_disconnect():
	d = Daemon()
	a = user(d, "alice")
	join(a, "#one")
	join(a, "#two")
	a.close()
	b = user(d, "bob")
	join(b, "#one")
	u = users_of(req(b, {"type": "users", "room": "#one"}))
	assert u == {"alice": "offline", "bob": "online"}, u
	c = Client(d)
	r = c.login("alice", "correct horse battery")
	assert sorted(r["rooms"]) == ["#one", "#two"], r


# ------------------------------------------------------------ users


@test
def test_users_lists_every_online_user_with_status():
	d = Daemon()
	a = user(d, "Alice")
	b = user(d, "bob")
	user(d, "carol").close()
	user(d, "dave")
	expect_ok(b, {"type": "presence", "status": "away", "text": "lunch"})
	# Nobody shares a room: users still lists everybody online.
	u = users_of(req(a, {"type": "users"}))
	assert u == {"Alice": "online", "bob": "away", "dave": "online"}, u


@test
def test_users_of_a_room_lists_members_with_offline_ones():
	d = Daemon()
	a = user(d, "alice")
	b = user(d, "Bob")
	c = user(d, "carol")
	user(d, "dave")
	for x in (a, b, c):
		join(x, "#room")
	expect_ok(b, {"type": "presence", "status": "busy"})
	c.close()
	# carol's disconnect is seen asynchronously: retry (bounded).
	def carol_offline():
		u = users_of(req(a, {"type": "users", "room": "#ROOM"}))
		return u if u.get("carol") == "offline" else None
	u = harness.retry(carol_offline, timeout=10)
	assert u == {"alice": "online", "Bob": "busy", "carol": "offline"}, u


@test
def test_users_of_a_room_needs_membership_and_an_existing_room():
	d = Daemon()
	a = user(d, "alice")
	b = user(d, "bob")
	join(a, "#room")
	expect_error(b, {"type": "users", "room": "#room"}, "not_member")
	expect_error(b, {"type": "users", "room": "#nosuch"}, "no_such_room")
	for bad in BAD_VALUES["string"]:
		if bad is None:
			continue	# null may mean "no room"
		expect_error(b, {"type": "users", "room": bad}, "bad_request",
		    "room")


# ------------------------------------------------------------ rooms


@test
def test_rooms_lists_every_room_with_topic_member_count_and_joined():
	d = Daemon()
	a = user(d, "alice")
	b = user(d, "bob")
	c = user(d, "carol")
	join(a, "#Both")
	join(b, "#both")
	join(b, "#BobOnly")
	join(c, "#Empty")
	expect_ok(c, {"type": "leave", "room": "#empty"})
	expect_ok(a, {"type": "topic", "room": "#both", "topic": "shared"})
	got = rooms_of(req(a, {"type": "rooms"}))
	want = {"#Both": ("shared", 2, True), "#BobOnly": ("", 1, False)}
	# A room nobody is in may be listed (with 0 members) or dropped.
	if "#Empty" in got:
		want["#Empty"] = ("", 0, False)
	assert got == want, got
	got = rooms_of(req(b, {"type": "rooms"}))
	want["#BobOnly"] = ("", 1, True)
	assert got == want, got
	got = rooms_of(req(c, {"type": "rooms"}))
	want["#Both"] = ("shared", 2, False)
	want["#BobOnly"] = ("", 1, False)
	assert got == want, got


# ------------------------------------------------------------ topic


@test
def test_topic_event_goes_to_members_except_the_setting_session():
	d = Daemon()
	a1 = user(d, "Alice")
	a2 = session(d, "alice")
	b = user(d, "bob")
	outsider = user(d, "carol")
	join(a1, "#room")
	join(b, "#room")
	drain(a2)
	r = expect_ok(a1, {"type": "topic", "room": "#ROOM",
	    "topic": "Topic \u00e9\u20ac"})
	for c in (b, a2):
		ev = wait_event(c, "topic")
		assert ev == {"type": "topic", "room": "#room",
		    "topic": "Topic \u00e9\u20ac", "by": "Alice"}, ev
	assert_no_event(a1, "topic")
	assert_no_event(outsider, "topic")
	# The topic is shown to later joiners and in rooms.
	assert_ok(join(outsider, "#room"), topic="Topic \u00e9\u20ac")
	got = rooms_of(req(b, {"type": "rooms"}))
	assert got == {"#room": ("Topic \u00e9\u20ac", 3, True)}, got
	# An empty topic clears it.
	expect_ok(b, {"type": "topic", "room": "#room", "topic": ""})
	ev = wait_event(a1, "topic")
	assert ev == {"type": "topic", "room": "#room", "topic": "",
	    "by": "bob"}, ev


@test
def test_topic_by_non_member_or_for_unknown_room_is_not_member():
	d = Daemon()
	a = user(d, "alice")
	b = user(d, "bob")
	join(a, "#room")
	expect_ok(a, {"type": "topic", "room": "#room", "topic": "kept"})
	expect_error(b, {"type": "topic", "room": "#room", "topic": "mine"},
	    "not_member")
	expect_error(b, {"type": "topic", "room": "#nosuch", "topic": "x"},
	    "not_member")
	assert_no_event(a, "topic")
	got = rooms_of(req(b, {"type": "rooms"}))
	assert got == {"#room": ("kept", 1, False)}, got


@test
def test_topic_bad_field_types_are_bad_request_naming_the_field():
	d = Daemon()
	a = user(d, "alice")
	join(a, "#room")
	for bad in BAD_VALUES["string"]:
		expect_error(a, {"type": "topic", "room": bad, "topic": "t"},
		    "bad_request", "room")
		expect_error(a, {"type": "topic", "room": "#room",
		    "topic": bad}, "bad_request", "topic")
	expect_error(a, {"type": "topic", "topic": "t"}, "bad_request",
	    "room")
	expect_error(a, {"type": "topic", "room": "#room"}, "bad_request",
	    "topic")
	got = rooms_of(req(a, {"type": "rooms"}))
	assert got == {"#room": ("", 1, True)}, got


if __name__ == "__main__":
	raise SystemExit(harness.run())
