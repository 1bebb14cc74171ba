# test_presence: presence and typing against the real daemon: who gets the
# events, online/offline on first and last session, typing never stored,
# typing's own rate limit, and every error case.

import harness
from harness import Daemon, test
from chatlib import (BAD_VALUES, expect_ok, expect_error, user, session, join,
    send, sync, drain, wait_event, events_of, assert_no_event, history,
    wait_sessions)


def presence(status, text=None):
	obj = {"type": "presence", "status": status}
	if text is not None:
		obj["text"] = text
	return obj


def typing(to, state):
	return {"type": "typing", "to": to, "state": state}


def status_of(c, name):
	r = expect_ok(c, {"type": "users"})
	for u in r["users"]:
		if u["user"] == name:
			return u["status"]
	return None


# ------------------------------------------------------------ presence


@test
def test_presence_goes_to_room_mates_and_own_sessions_not_strangers():
	d = Daemon()
	a1 = user(d, "Alice")
	a2 = session(d, "alice")
	b = user(d, "bob")
	stranger = user(d, "carol")
	join(a1, "#room")
	join(b, "#room")
	join(stranger, "#elsewhere")
	for c in (a2, b, stranger):
		drain(c)
	cases = [("away", "lunch", "lunch"), ("busy", None, ""),
	    ("online", "\u00e9\u20ac back", "\u00e9\u20ac back")]
	for status, text, shown in cases:
		expect_ok(a1, presence(status, text))
		for c in (a2, b):
			ev = wait_event(c, "presence")
			assert ev == {"type": "presence", "user": "Alice",
			    "status": status, "text": shown}, ev
		assert_no_event(stranger, "presence")
		assert status_of(stranger, "Alice") == status


@test
def test_presence_online_on_first_session_and_offline_after_the_last():
	d = Daemon()
	a = user(d, "Alice")
	b = user(d, "bob")
	stranger = user(d, "carol")
	join(a, "#room")
	join(b, "#room")
	a.close()
	ev = wait_event(b, "presence", timeout=10)
	assert ev == {"type": "presence", "user": "Alice", "status": "offline",
	    "text": ""}, ev
	drain(stranger)
	a1 = session(d, "alice")
	ev = wait_event(b, "presence")
	assert ev == {"type": "presence", "user": "Alice", "status": "online",
	    "text": ""}, ev
	# A second session changes nothing for the others.
	a2 = session(d, "alice")
	assert_no_event(b, "presence")
	a1.close()
	# Nor does closing one of two: a2 is still there.  Once the daemon
	# has dropped a1's session, any event it caused is queued for b.
	wait_sessions(d, "Alice", 1)
	assert_no_event(b, "presence")
	assert status_of(b, "Alice") == "online"
	a2.close()
	ev = wait_event(b, "presence", timeout=10)
	assert ev == {"type": "presence", "user": "Alice", "status": "offline",
	    "text": ""}, ev
	assert status_of(b, "Alice") is None
	assert_no_event(stranger, "presence")


@test
def test_presence_offline_or_unknown_status_is_bad_request():
	d = Daemon()
	a = user(d, "alice")
	b = user(d, "bob")
	join(a, "#room")
	join(b, "#room")
	for status in ("offline", "invisible", "", "Away", "ONLINE"):
		expect_error(a, presence(status), "bad_request", "status")
	for bad in BAD_VALUES["string"]:
		expect_error(a, presence(bad), "bad_request", "status")
		expect_error(a, {"type": "presence", "status": "away",
		    "text": bad}, "bad_request", "text")
	expect_error(a, {"type": "presence"}, "bad_request", "status")
	assert_no_event(b, "presence")
	assert status_of(b, "alice") == "online"


# ------------------------------------------------------------ typing


@test
def test_typing_in_a_room_goes_to_members_but_the_sending_session():
	d = Daemon()
	a1 = user(d, "Alice")
	a2 = session(d, "alice")
	b = user(d, "bob")
	stranger = user(d, "carol")
	join(a1, "#room")
	join(b, "#room")
	for state in ("start", "stop"):
		expect_ok(a1, typing("#ROOM", state))
		for c in (a2, b):
			ev = wait_event(c, "typing")
			assert ev == {"type": "typing", "from": "Alice",
			    "to": "#room", "state": state}, ev
		assert_no_event(a1, "typing")
		assert_no_event(stranger, "typing")


@test
def test_typing_to_a_user_goes_to_that_user_only():
	d = Daemon()
	a = user(d, "Alice")
	b1 = user(d, "Bob")
	b2 = session(d, "bob")
	stranger = user(d, "carol")
	expect_ok(a, typing("bob", "start"))
	for c in (b1, b2):
		ev = wait_event(c, "typing")
		assert set(ev) == {"type", "from", "to", "state"}, ev
		assert ev["from"] == "Alice" and ev["state"] == "start", ev
		assert ev["to"].lower() == "bob", ev
	assert_no_event(a, "typing")
	assert_no_event(stranger, "typing")


@test
def test_typing_is_never_stored():
	d = Daemon()
	a = user(d, "alice")
	b = user(d, "bob")
	join(a, "#room")
	join(b, "#room")
	expect_ok(a, typing("#room", "start"))
	expect_ok(a, typing("bob", "start"))
	ok = send(a, "#room", "only this")
	assert [m["id"] for m in history(b, "#room")] == [ok["id"]]
	assert history(b, "alice") == []
	for m in history(b, "#room"):
		assert m["type"] == "message", m


@test
def test_typing_errors_are_those_of_message():
	d = Daemon()
	a = user(d, "alice")
	b = user(d, "bob")
	join(a, "#room")
	expect_error(b, typing("#room", "start"), "not_member")
	expect_error(b, typing("#nosuch", "start"), "no_such_room")
	expect_error(b, typing("nobody", "start"), "no_such_user")
	for state in ("typing", "", "Start", "STOP", "paused"):
		expect_error(a, typing("#room", state), "bad_request", "state")
	for bad in BAD_VALUES["string"]:
		expect_error(a, typing("#room", bad), "bad_request", "state")
		expect_error(a, typing(bad, "start"), "bad_request", "to")
	expect_error(a, {"type": "typing", "state": "start"}, "bad_request",
	    "to")
	expect_error(a, {"type": "typing", "to": "#room"}, "bad_request",
	    "state")
	assert_no_event(a, "typing")
	assert_no_event(b, "typing")


@test
def test_typing_past_its_burst_is_rate_limited_apart_from_messages():
	# A refill of one token per 1000 s: nothing refills during the test.
	d = Daemon(limits={"typing_per_second": 0.001, "typing_burst": 3,
	    "messages_per_second": 0.001, "message_burst": 2})
	a = user(d, "alice")
	b = user(d, "bob")
	join(a, "#room")
	join(b, "#room")
	for _ in range(3):
		expect_ok(a, typing("#room", "start"))
	expect_error(a, typing("#room", "stop"), "rate_limited")
	expect_error(a, typing("bob", "stop"), "rate_limited")
	# The message bucket is a different one: still full.
	send(a, "#room", "one")
	send(a, "#room", "two")
	expect_error(a, {"type": "message", "to": "#room", "content": "3"},
	    "rate_limited")
	# And the buckets are per session: another session of alice's types.
	a2 = session(d, "alice")
	expect_ok(a2, typing("#room", "start"))
	sync(a)
	sync(b)
	got = events_of(b, "typing")
	assert len(got) == 4, got


if __name__ == "__main__":
	raise SystemExit(harness.run())
