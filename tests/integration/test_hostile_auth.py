# test_hostile_auth: password checks as an attacker runs them (issue 10,
# defects 5, 8 and 10).  passwd storms, logins pipelined from one address
# and hashes in flight per address; failures against an account that must
# not lock its owner out; bans and deletions that land while a login's
# hash is being computed, and passwords changed meanwhile; a deleted name
# registered again; many sessions of one user coming and going.

import json
import random

import time

import harness
from harness import Daemon, test
from chatlib import (PASSWORD, assert_alive, assert_ok, assert_error,
    expect_ok, req,
    client, user, session, join, send, sync, drain, wait_event, events_of,
    history, admin, sessions_of, wait_sessions)

ROOMY = {"registrations_per_hour": 1000, "login_failures_per_minute": 1000}
# A cost at which one hash takes a good fraction of a second here, so
# that what happens while it runs is not a race the test could lose.
SLOW_N = 2 ** 17
IN_FLIGHT = 4			# AUTH_MAX_PER_OWNER in src/auth.h
WRONG = "not the password"


def send_req(c, obj, ref):
	"""Send obj with ref without waiting for the reply."""
	obj = dict(obj)
	obj["ref"] = ref
	c.send(obj)
	return ref


def reply_to(c, ref, timeout=60):
	"""The reply carrying ref; events and other replies in between are
	kept in c.events."""
	for i, ev in enumerate(c.events):
		if ev.get("ref") == ref:
			return c.events.pop(i)
	return c.wait_event(lambda m: m.get("ref") == ref, timeout=timeout)


def outcome(r):
	return r["code"] if r.get("type") == "error" else r.get("type")


def tally(rs):
	out = {}
	for r in rs:
		out[outcome(r)] = out.get(outcome(r), 0) + 1
	return out


def login_obj(name, password=PASSWORD):
	return {"type": "login", "user": name, "password": password}


def stats(d):
	r = admin(d, {"command": "stats"})
	assert r.get("ok") is True, r
	return r


def occupy_workers(d, first=5):
	"""Two slow logins from other addresses, so that the next hash waits
	for a worker; returns the clients (their replies are left unread)."""
	busy = []
	for i in range(2):
		b = client(d, source="127.0.0.%d" % (first + i))
		send_req(b, login_obj("nobody%d" % i, WRONG), "busy")
		busy.append(b)
	return busy


# ------------------------------------------------------------ defect 5


@test
def test_passwd_storm_is_rate_limited_and_logins_still_complete():
	d = Daemon(scrypt_n=2 ** 14, limits={"login_failures_per_minute": 5,
	    "registrations_per_hour": 1000})
	user(d, "alice", source="127.0.0.3").close()
	ms = [user(d, "mallory", source="127.0.0.2")]
	ms += [session(d, "mallory", source="127.0.0.2") for _ in range(3)]
	refs = []
	for i, m in enumerate(ms):
		refs.append([send_req(m, {"type": "passwd", "old": WRONG + str(j),
		    "new": "a new password"}, "p%d-%d" % (i, j))
		    for j in range(15)])
	# Meanwhile someone else logs in, within a generous deadline.
	a = client(d, source="127.0.0.3")
	assert_ok(req(a, login_obj("alice"), timeout=60), user="alice")
	got = [reply_to(m, ref) for m, rs in zip(ms, refs) for ref in rs]
	t = tally(got)
	# A wrong old password is a failed check: five per minute from the
	# address, charged on arrival; the rest never reach the workers.
	assert t.get("auth_failed", 0) <= 5, t
	assert t.get("rate_limited", 0) >= 55, t
	assert set(t) <= {"auth_failed", "rate_limited"}, t
	assert stats(d)["rate_limited"] >= 55
	# Even the right old password waits for the address to recover.
	r = req(ms[0], {"type": "passwd", "old": PASSWORD,
	    "new": "a new password"})
	assert_error(r, "rate_limited")
	# The password did not change; the sessions are still there.
	c = client(d, source="127.0.0.4")
	assert_ok(req(c, login_obj("mallory")), user="mallory")
	assert sessions_of(d, "mallory") == 5


@test
def test_a_session_that_keeps_asking_after_refusals_is_closed():
	# Refused checks are cheap, not free: a session that goes on sending
	# passwd after 50 refusals in a row is closed as a flood, as a
	# message flooder is.
	d = Daemon(limits={"login_failures_per_minute": 2})
	m = user(d, "mallory")
	m.send_raw(b"".join(json.dumps({"type": "passwd", "old": WRONG,
	    "new": "a new password", "ref": i}).encode() + b"\n"
	    for i in range(200)))
	got = m.expect_closed(timeout=60)
	t = tally([r for r in got if isinstance(r, dict) and "ref" in r])
	assert t.get("rate_limited", 0) >= 50, t
	assert len(got) < 200, "never closed: %d replies" % len(got)
	assert "reason=flood" in d.log()
	# Nobody else is affected.
	assert_alive(user(d, "walter"))


@test
def test_logins_pipelined_from_one_address_are_charged_on_arrival():
	d = Daemon(scrypt_n=2 ** 15, limits={"login_failures_per_minute": 3,
	    "registrations_per_hour": 1000})
	cs = [client(d, source="127.0.0.2") for _ in range(10)]
	refs = []
	for i, c in enumerate(cs):
		refs.append([send_req(c, login_obj("ghost%d" % j, WRONG),
		    "l%d-%d" % (i, j)) for j in range(3)])
	got = [reply_to(c, ref) for c, rs in zip(cs, refs) for ref in rs]
	t = tally(got)
	# Three failures a minute from the address, however many arrive at
	# once: the others were refused without a hash.
	assert t.get("auth_failed", 0) <= 3, t
	assert t.get("rate_limited", 0) >= 27, t
	assert set(t) <= {"auth_failed", "rate_limited"}, t
	assert stats(d)["rate_limited"] >= 27


@test
def test_hashes_in_flight_per_address_are_bounded():
	# 13 checks from one address: at most IN_FLIGHT of them are with the
	# workers at a time, the others wait their turn (not refused), and
	# another address's check is not queued behind all of them.
	d = Daemon(scrypt_n=SLOW_N, limits=ROOMY)
	user(d, "alice", source="127.0.0.3").close()
	cs = [client(d, source="127.0.0.2") for _ in range(12)]
	reg = client(d, source="127.0.0.2")
	other = client(d, source="127.0.0.3")
	refs = [send_req(c, login_obj("ghost%d" % i, WRONG), "l%d" % i)
	    for i, c in enumerate(cs)]
	# A registration's hash counts against the same bound.
	send_req(reg, {"type": "register", "user": "newbie",
	    "password": PASSWORD}, "reg")
	time.sleep(0.2)		# they are all in before the other address
	send_req(other, login_obj("alice"), "other")
	assert_ok(reply_to(other, "other", timeout=120), user="alice")
	# When it was answered, most of the first address's still waited
	# (each hash takes a good fraction of a second; 2 of slack).
	got, late = [], []
	for c, ref in zip(cs + [reg], refs + ["reg"]):
		try:
			got.append(reply_to(c, ref, timeout=0.01))
		except TimeoutError:
			late.append((c, ref))
	assert len(got) <= IN_FLIGHT + 2, \
	    "%d of 13 checks from one address ran before another's" % len(got)
	got += [reply_to(c, ref, timeout=120) for c, ref in late]
	t = tally(got)
	assert set(t) <= {"auth_failed", "ok"}, t
	# Answered, they no longer count: the address may check again.
	assert_error(req(cs[0], login_obj("ghost0", WRONG), timeout=60),
	    "auth_failed")


@test
def test_failures_elsewhere_do_not_lock_the_owner_out():
	d = Daemon(limits={"login_failures_per_minute": 3,
	    "registrations_per_hour": 1000})
	user(d, "victim").close()
	att = client(d, source="127.0.0.2")
	for _ in range(3):
		assert_error(req(att, login_obj("victim", WRONG)),
		    "auth_failed")
	# The attacker's address is spent, and so is the account's bucket.
	assert_error(req(att, login_obj("victim")), "rate_limited")
	# An address that has not failed gets its check...
	other = client(d, source="127.0.0.5")
	assert_error(req(other, login_obj("victim", WRONG)), "auth_failed")
	# ...but having failed against an account under attack, it waits.
	assert_error(req(other, login_obj("victim")), "rate_limited")
	# The owner, from an address that has not failed, gets in.
	owner = client(d, source="127.0.0.3")
	assert_ok(req(owner, login_obj("VICTIM")), user="victim")
	owner2 = client(d, source="127.0.0.4")
	assert_ok(req(owner2, login_obj("victim")), user="victim")
	# A typo from the owner's address makes it one that failed.
	c = client(d, source="127.0.0.3")
	assert_error(req(c, login_obj("victim", WRONG)), "auth_failed")
	assert_error(req(c, login_obj("victim")), "rate_limited")


# ------------------------------------------------------------ defect 8


@test
def test_ban_while_the_login_hash_runs_answers_banned():
	d = Daemon(scrypt_n=SLOW_N, limits=ROOMY)
	user(d, "victim").close()
	busy = occupy_workers(d)
	v = client(d, source="127.0.0.2")
	send_req(v, login_obj("victim"), "v")
	r = admin(d, {"command": "ban", "user": "victim"})
	assert r.get("ok") is True, r
	assert_error(reply_to(v, "v"), "banned")
	assert_error(req(v, {"type": "rooms"}), "auth_required")
	assert sessions_of(d, "victim") == 0
	for b in busy:
		assert_error(reply_to(b, "busy"), "auth_failed")


@test
def test_user_del_while_the_login_hash_runs_and_the_name_reborn():
	d = Daemon(scrypt_n=SLOW_N, limits=ROOMY)
	old = user(d, "victim")
	join(old, "#old")
	bob = user(d, "bob", source="127.0.0.4")
	join(bob, "#old")
	old.close()
	wait_sessions(d, "victim", 0)

	busy = occupy_workers(d)
	z = client(d, source="127.0.0.2")
	send_req(z, login_obj("victim"), "z")
	r = admin(d, {"command": "user-del", "user": "victim"})
	assert r.get("ok") is True, r
	# The account is gone: as for any unknown user.
	assert_error(reply_to(z, "z"), "auth_failed")
	assert_error(req(z, {"type": "rooms"}), "auth_required")
	for b in busy:
		assert_error(reply_to(b, "busy"), "auth_failed")

	# The name registered again is a new account with nothing of the old.
	drain(bob)
	n = client(d, source="127.0.0.3")
	assert_ok(req(n, {"type": "register", "user": "Victim",
	    "password": "another password"}, timeout=60), user="Victim")
	rooms = expect_ok(n, {"type": "rooms"})["rooms"]
	assert [r for r in rooms if r["room"] == "#old"] == \
	    [{"room": "#old", "topic": "", "members": 1, "joined": False}], \
	    rooms
	us = expect_ok(bob, {"type": "users", "room": "#old"})["users"]
	assert [u["user"] for u in us] == ["bob"], us
	online = expect_ok(bob, {"type": "users"})["users"]
	assert {"user": "Victim", "status": "online"} in online, online
	assert sessions_of(d, "Victim") == 1
	# Messages to the name reach the new account, and only it.
	ok = send(bob, "victim", "for the new one")
	ev = wait_event(n, "message", id=ok["id"])
	assert ev["to"] == "Victim" and ev["content"] == "for the new one", ev
	msgs = history(n, "bob")
	assert [m["id"] for m in msgs] == [ok["id"]], msgs
	sync(z)
	assert not events_of(z, "message"), z.events
	# And the old password opens nothing.
	c = client(d, source="127.0.0.5")
	assert_error(req(c, login_obj("victim"), timeout=60), "auth_failed")


@test
def test_password_reset_while_the_login_hash_runs_answers_auth_failed():
	# The stored hash is slow to check; new hashes, after a reload to
	# the cheapest cost, are quick: the reset is stored long before
	# the login's check of the old password is done.
	d = Daemon(scrypt_n=SLOW_N, limits=ROOMY)
	user(d, "victim").close()
	d.write_config(scrypt_n=1024)
	r = admin(d, {"command": "reload"})
	assert r.get("ok") is True, r
	v = client(d, source="127.0.0.2")
	send_req(v, login_obj("victim"), "v")
	# The operator resets the (stolen) password meanwhile.
	r = admin(d, {"command": "user-passwd", "user": "victim",
	    "password": "the operator's new one"}, timeout=60)
	assert r.get("ok") is True, r
	assert_error(reply_to(v, "v"), "auth_failed")
	assert sessions_of(d, "victim") == 0
	c = client(d, source="127.0.0.3")
	assert_ok(req(c, login_obj("victim", "the operator's new one"),
	    timeout=60), user="victim")


@test
def test_two_passwd_at_once_one_wins():
	d = Daemon(scrypt_n=2 ** 15, limits=ROOMY)
	a1 = user(d, "alice")
	a2 = session(d, "alice", source="127.0.0.2")
	send_req(a1, {"type": "passwd", "old": PASSWORD,
	    "new": "first new password"}, "p1")
	send_req(a2, {"type": "passwd", "old": PASSWORD,
	    "new": "second new password"}, "p2")
	r1, r2 = reply_to(a1, "p1"), reply_to(a2, "p2")
	t = tally([r1, r2])
	# Both checked the same old password; once it has changed, the
	# other check is stale and may not overwrite the change.
	assert t == {"ok": 1, "auth_failed": 1}, (r1, r2)
	won = "first new password" if outcome(r1) == "ok" else \
	    "second new password"
	lost = "second new password" if won.startswith("first") else \
	    "first new password"
	c = client(d, source="127.0.0.3")
	assert_error(req(c, login_obj("alice", lost), timeout=60),
	    "auth_failed")
	assert_ok(req(c, login_obj("alice", won), timeout=60), user="alice")


@test
def test_many_sessions_of_one_user_come_and_go():
	d = Daemon(limits=ROOMY)
	bob = user(d, "bob")
	alice = user(d, "alice", source="127.0.0.2")
	join(alice, "#room")
	join(bob, "#room")
	alice.close()
	wait_event(bob, "presence", user="alice", status="offline")
	drain(bob)
	rng = random.Random(10)
	live = []
	onlines = offlines = 0
	serial = 0
	for rnd in range(30):
		before = len(live)
		# Some logins at once (pipelined on fresh connections, spread
		# over addresses) and some closes, never all of them while
		# others log in, so that presence changes are known.
		nlog = rng.randint(0, 5) if before < 50 else 0
		nclose = rng.randint(0, before if nlog == 0 else
		    max(0, before - 1))
		new = []
		for _ in range(nlog):
			serial += 1
			c = client(d, source="127.0.0.%d" % (10 + serial % 40))
			send_req(c, login_obj("alice"), "in")
			new.append(c)
		rng.shuffle(live)
		for c in live[:nclose]:
			c.close()
		live = live[nclose:]
		for c in new:
			assert_ok(reply_to(c, "in"), user="alice")
		live += new
		wait_sessions(d, "alice", len(live))
		if before == 0 and live:
			onlines += 1
		if before > 0 and not live:
			offlines += 1
		sync(bob)
		st = stats(d)
		assert st["sessions"] == len(live) + 1, (st, len(live))
		assert st["users_online"] == (2 if live else 1), st
		assert len(events_of(bob, "presence", user="alice",
		    status="online")) == onlines, bob.events
		assert len(events_of(bob, "presence", user="alice",
		    status="offline")) == offlines, bob.events
	for c in live:
		c.close()
	wait_sessions(d, "alice", 0)
	sync(bob)
	us = expect_ok(bob, {"type": "users", "room": "#room"})["users"]
	assert {"user": "alice", "status": "offline"} in us, us


if __name__ == "__main__":
	harness.run()
