# test_accounts: register, login, passwd, bans, several sessions per user,
# login and registration rate limits, and passwords kept out of the
# database file and the log, against the real daemon.

import os

import harness
from harness import Client, Daemon, test
from chatlib import (PASSWORD, BAD_VALUES, assert_ok, assert_error, expect_ok,
    expect_error, assert_alive, client, user, session, join, send, wait_event,
    admin, read_file, req)

# Generous enough that tests which register many users or fail many
# logins on purpose never hit a limit they do not test.
ROOMY = {"registrations_per_hour": 1000, "login_failures_per_minute": 1000}

AFTER_LOGIN = [
	{"type": "join", "room": "#r"},
	{"type": "leave", "room": "#r"},
	{"type": "message", "to": "#r", "content": "x"},
	{"type": "typing", "to": "#r", "state": "start"},
	{"type": "presence", "status": "away"},
	{"type": "history", "with": "#r"},
	{"type": "users"},
	{"type": "users", "room": "#r"},
	{"type": "rooms"},
	{"type": "topic", "room": "#r", "topic": "t"},
	{"type": "passwd", "old": PASSWORD, "new": "another password"},
]

INVALID_NAMES = ["", "a" * 33, ".alice", "-alice", "al ice", "al#ice",
    "alic\u00e9", "al/ice", "#alice", "al@ice", "al\tice",
    "al:ice", "al\nice", "\u00e4"]
VALID_NAMES = ["a", "B" * 32, "_x", "x.y-z_9", "9lives", "a-", "a.",
    "Z_"]


def register(c, name, password=PASSWORD):
	return req(c, {"type": "register", "user": name, "password": password},
	    timeout=10)


def login(c, name, password=PASSWORD):
	return req(c, {"type": "login", "user": name, "password": password},
	    timeout=10)


# ------------------------------------------------------------ register


@test
def test_register_replies_user_and_logs_the_session_in():
	d = Daemon()
	c = Client(d)
	assert_ok(register(c, "Alice"), user="Alice")
	# Logged in: an after-login request works at once.
	expect_ok(c, {"type": "rooms"}, rooms=[])
	# And the account exists: another connection logs in with any case.
	c2 = Client(d)
	r = assert_ok(login(c2, "aLiCe"), user="Alice", rooms=[])


@test
def test_register_invalid_names_get_invalid_name():
	d = Daemon(limits=ROOMY)
	c = Client(d)
	for name in INVALID_NAMES:
		assert_error(register(c, name), "invalid_name")
	# None of them was created nor logged the session in.
	assert_error(req(c, {"type": "rooms"}), "auth_required")


@test
def test_register_name_with_a_nul_character_is_invalid_name():
	# "al\u0000ice" is valid JSON (RFC 8259 allows the escape), so the
	# line is a JSON object: it is not bad_json, and the request gets its
	# one reply, with its ref.
	d = Daemon()
	c = Client(d)
	r = c.request({"type": "register", "user": "al\u0000ice",
	    "password": PASSWORD}, timeout=5)
	assert_error(r, "invalid_name")
	assert_error(req(c, {"type": "rooms"}), "auth_required")


@test
def test_register_valid_names_at_the_edges_are_accepted():
	d = Daemon(limits=ROOMY)
	for name in VALID_NAMES:
		c = Client(d)
		assert_ok(register(c, name), user=name)
		c.close()


@test
def test_register_bad_field_types_are_bad_request_naming_the_field():
	d = Daemon(limits=ROOMY)
	c = Client(d)
	for bad in BAD_VALUES["string"]:
		expect_error(c, {"type": "register", "user": bad,
		    "password": PASSWORD}, "bad_request", "user")
		expect_error(c, {"type": "register", "user": "alice",
		    "password": bad}, "bad_request", "password")
	expect_error(c, {"type": "register", "password": PASSWORD},
	    "bad_request", "user")
	expect_error(c, {"type": "register", "user": "alice"},
	    "bad_request", "password")
	# Nothing was registered on the way.
	assert_ok(register(c, "alice"), user="alice")


@test
def test_register_password_length_is_counted_in_bytes_8_to_1024():
	d = Daemon(limits=ROOMY)
	cases = [
	    ("short7", "a" * 7, "weak_password"),
	    ("empty", "", "weak_password"),
	    ("ok8", "a" * 8, None),
	    ("ok1024", "b" * 1024, None),
	    ("long1025", "c" * 1025, "weak_password"),
	    # 4 x 2-byte characters = 8 bytes: enough.
	    ("utf8ok", "\u00e9" * 4, None),
	    # 3 x 2 bytes + 1 = 7 bytes (4 characters): too short.
	    ("utf8short", "\u00e9" * 3 + "a", "weak_password"),
	    # 512 characters of 2 bytes + 1 = 1025 bytes: too long.
	    ("utf8long", "\u00e9" * 512 + "a", "weak_password"),
	]
	for name, pw, code in cases:
		c = Client(d)
		r = register(c, name, pw)
		if code is None:
			assert_ok(r, user=name)
			c2 = Client(d)
			assert_ok(login(c2, name, pw), user=name)
			c2.close()
		else:
			assert_error(r, code)
			assert_error(login(c, name, pw), "auth_failed")
		c.close()


@test
def test_register_existing_name_in_any_case_is_user_exists():
	d = Daemon(limits=ROOMY)
	user(d, "Alice")
	for name in ("Alice", "alice", "ALICE", "aLICE"):
		c = Client(d)
		assert_error(register(c, name, "other password"),
		    "user_exists")
		# The session stays logged out, the account untouched.
		assert_error(req(c, {"type": "rooms"}), "auth_required")
		assert_error(login(c, "alice", "other password"),
		    "auth_failed")
		assert_ok(login(c, "alice"), user="Alice")
		c.close()


@test
def test_registration_closed_refuses_register_and_welcome_says_so():
	d = Daemon(registration=False)
	c = Client(d)
	assert c.welcome.get("registration") is False, c.welcome
	assert_error(register(c, "alice"), "registration_closed")
	assert_error(req(c, {"type": "rooms"}), "auth_required")
	# Accounts made by the operator still log in.
	r = admin(d, {"command": "user-add", "user": "alice",
	    "password": PASSWORD})
	assert r.get("ok") is True, r
	assert_ok(login(c, "alice"), user="alice", rooms=[])


@test
def test_welcome_says_registration_true_by_default():
	d = Daemon()
	c = Client(d)
	assert c.welcome.get("registration") is True, c.welcome


@test
def test_register_or_login_while_logged_in_is_already_logged_in():
	d = Daemon()
	a = user(d, "alice")
	user(d, "bob")
	assert_error(register(a, "carol"), "already_logged_in")
	assert_error(login(a, "bob"), "already_logged_in")
	assert_error(login(a, "alice"), "already_logged_in")
	# Still alice, and carol was not created.
	r = expect_ok(a, {"type": "users"})
	assert sorted(u["user"] for u in r["users"]) == ["alice", "bob"], r
	c = Client(d)
	assert_error(login(c, "carol"), "auth_failed")


@test
def test_registrations_past_the_hourly_limit_per_address_are_rate_limited():
	d = Daemon(limits={"registrations_per_hour": 3,
	    "login_failures_per_minute": 1000})
	for i in range(3):
		user(d, "user%d" % i).close()
	c = Client(d)
	assert_error(register(c, "user3"), "rate_limited")
	assert_error(register(c, "user4"), "rate_limited")
	# Not created; another address may still register.
	assert_error(login(c, "user3"), "auth_failed")
	other = client(d, source="127.0.0.2")
	assert_ok(register(other, "user3"), user="user3")


# ------------------------------------------------------------ login


@test
def test_login_replies_registered_spelling_and_member_rooms():
	d = Daemon()
	a = user(d, "MixedCase")
	join(a, "#Zeta")
	join(a, "#alpha")
	join(a, "#gone")
	expect_ok(a, {"type": "leave", "room": "#GONE"})
	b = user(d, "other")
	join(b, "#elsewhere")
	c = Client(d)
	r = assert_ok(login(c, "mixedCASE"), user="MixedCase")
	assert isinstance(r.get("rooms"), list), r
	assert sorted(r["rooms"]) == ["#Zeta", "#alpha"], r


@test
def test_login_unknown_user_and_wrong_password_are_one_auth_failed():
	d = Daemon()
	user(d, "alice")
	c = Client(d)
	wrong = assert_error(login(c, "alice", "wrong password"),
	    "auth_failed")
	unknown = assert_error(login(c, "nobody", "wrong password"),
	    "auth_failed")
	assert wrong["message"] == unknown["message"], (wrong, unknown)
	assert set(wrong) == set(unknown), (wrong, unknown)
	# The session is still logged out and the right password works.
	assert_error(req(c, {"type": "rooms"}), "auth_required")
	assert_ok(login(c, "alice"), user="alice")


@test
def test_login_bad_field_types_are_bad_request_naming_the_field():
	d = Daemon(limits=ROOMY)
	user(d, "alice")
	c = Client(d)
	for bad in BAD_VALUES["string"]:
		expect_error(c, {"type": "login", "user": bad,
		    "password": PASSWORD}, "bad_request", "user")
		expect_error(c, {"type": "login", "user": "alice",
		    "password": bad}, "bad_request", "password")
	expect_error(c, {"type": "login", "password": PASSWORD},
	    "bad_request", "user")
	expect_error(c, {"type": "login", "user": "alice"},
	    "bad_request", "password")
	assert_ok(login(c, "alice"), user="alice")


@test
def test_login_failures_per_address_past_the_limit_are_rate_limited():
	d = Daemon(limits={"login_failures_per_minute": 3,
	    "registrations_per_hour": 1000})
	user(d, "alice").close()
	c = Client(d)
	# Failures against three different (unknown) accounts: the address
	# is what runs out.
	for name in ("ghost1", "ghost2", "ghost3"):
		assert_error(login(c, name, "wrong password"), "auth_failed")
	assert_error(login(c, "ghost4", "wrong password"), "rate_limited")
	# Even the right password is refused from this address now.
	assert_error(login(c, "alice"), "rate_limited")
	c2 = Client(d)
	assert_error(login(c2, "alice"), "rate_limited")
	assert_error(req(c2, {"type": "rooms"}), "auth_required")
	# Another address is not affected.
	other = client(d, source="127.0.0.2")
	assert_ok(login(other, "alice"), user="alice")


@test
def test_login_failures_per_account_past_the_limit_are_rate_limited():
	d = Daemon(limits={"login_failures_per_minute": 3,
	    "registrations_per_hour": 1000})
	user(d, "victim").close()
	user(d, "bystander").close()
	# Three failures from three different addresses: no address reaches
	# its limit, the account does.
	for i in range(3):
		c = client(d, source="127.0.0.%d" % (i + 2))
		assert_error(login(c, "victim", "wrong password"),
		    "auth_failed")
		c.close()
	# An address that failed recently is refused for this account, the
	# right password included.
	c = client(d, source="127.0.0.2")
	assert_error(login(c, "victim"), "rate_limited")
	assert_error(login(c, "VICTIM", "wrong password"), "rate_limited")
	# Other accounts from the same addresses are fine.
	assert_ok(login(c, "bystander"), user="bystander")
	c2 = Client(d)
	assert_ok(login(c2, "bystander"), user="bystander")
	# The owner, from an address that has not failed, is not locked out
	# by failures from elsewhere (netsock-protocol(7), "Password
	# checks").
	c3 = client(d, source="127.0.0.9")
	assert_ok(login(c3, "victim"), user="victim")


@test
def test_banned_user_gets_banned_only_with_the_right_password():
	d = Daemon()
	user(d, "alice")
	b = user(d, "bob")
	r = admin(d, {"command": "ban", "user": "bob"})
	assert r.get("ok") is True, r
	# The banned user's session is kicked and closed.
	got = b.expect_closed(timeout=10)
	kicked = [e for e in got if isinstance(e, dict) and
	    e.get("type") == "kicked"]
	assert len(kicked) == 1 and isinstance(kicked[0].get("reason"), str), \
	    got
	c = Client(d)
	assert_error(login(c, "bob", "wrong password"), "auth_failed")
	assert_error(login(c, "bob"), "banned")
	assert_error(login(c, "BOB"), "banned")
	assert_error(req(c, {"type": "rooms"}), "auth_required")
	# Lifting the ban lets bob in again.
	r = admin(d, {"command": "unban", "user": "bob"})
	assert r.get("ok") is True, r
	assert_ok(login(c, "bob"), user="bob")


# ------------------------------------------------------------ sessions


@test
def test_every_session_of_a_user_gets_every_event():
	d = Daemon()
	a1 = user(d, "alice")
	a2 = session(d, "alice")
	a3 = session(d, "alice")
	b = user(d, "bob")
	join(a1, "#room")
	join(b, "#room")
	for a in (a1, a2, a3):
		wait_event(a, "join", room="#room", user="bob")
	ok = send(b, "#room", "to the room")
	dm = send(b, "alice", "to alice")
	expect_ok(b, {"type": "topic", "room": "#room", "topic": "new"})
	for a in (a1, a2, a3):
		ev = wait_event(a, "message", id=ok["id"])
		assert ev["content"] == "to the room", ev
		assert ev["to"] == "#room", ev
		ev = wait_event(a, "message", id=dm["id"])
		assert ev["content"] == "to alice" and ev["from"] == "bob", ev
		wait_event(a, "topic", room="#room", topic="new", by="bob")


@test
def test_requests_after_login_need_login_first():
	d = Daemon()
	user(d, "alice").close()
	c = Client(d)
	for obj in AFTER_LOGIN:
		expect_error(c, obj, "auth_required")
	# Allowed ones still are.
	assert_alive(c)
	assert_ok(login(c, "alice"), user="alice")


# ------------------------------------------------------------ passwd


@test
def test_passwd_changes_the_password():
	d = Daemon()
	a = user(d, "alice", "first password")
	expect_error(a, {"type": "passwd", "old": "not the password",
	    "new": "second password"}, "auth_failed")
	expect_error(a, {"type": "passwd", "old": "first password",
	    "new": "short"}, "weak_password")
	expect_error(a, {"type": "passwd", "old": "first password",
	    "new": "x" * 1025}, "weak_password")
	# None of those changed anything.
	c = Client(d)
	assert_ok(login(c, "alice", "first password"), user="alice")
	c.close()
	expect_ok(a, {"type": "passwd", "old": "first password",
	    "new": "second password"})
	# The session that changed it stays logged in.
	assert_ok(req(a, {"type": "rooms"}))
	c = Client(d)
	assert_error(login(c, "alice", "first password"), "auth_failed")
	assert_ok(login(c, "alice", "second password"), user="alice")


@test
def test_passwd_bad_field_types_are_bad_request_naming_the_field():
	d = Daemon()
	a = user(d, "alice")
	for bad in BAD_VALUES["string"]:
		expect_error(a, {"type": "passwd", "old": bad,
		    "new": "second password"}, "bad_request", "old")
		expect_error(a, {"type": "passwd", "old": PASSWORD,
		    "new": bad}, "bad_request", "new")
	expect_error(a, {"type": "passwd", "new": "second password"},
	    "bad_request", "old")
	expect_error(a, {"type": "passwd", "old": PASSWORD}, "bad_request",
	    "new")
	c = Client(d)
	assert_ok(login(c, "alice"), user="alice")


# ------------------------------------------------------------ secrecy


def memory_holding(pid, needles):
	"""The needles found anywhere in the writable memory of process pid,
	with where: [(needle, mapping)].  Mappings over 1 GiB are reserved
	address space (sanitizer shadow), not data, and are skipped."""
	found = []
	with open("/proc/%d/maps" % pid) as maps, \
	    open("/proc/%d/mem" % pid, "rb", 0) as mem:
		for line in maps:
			fields = line.split()
			lo, hi = (int(x, 16) for x in fields[0].split("-"))
			if not fields[1].startswith("rw") or hi - lo > 1 << 30:
				continue
			try:
				mem.seek(lo)
				data = mem.read(hi - lo)
			except OSError:
				continue
			for n in needles:
				if n in data:
					found.append((n, line.strip()))
	return found


@test
def test_passwords_leave_no_copy_in_the_daemons_memory():
	"""
	Once a request is answered, its password is nowhere in the daemon:
	not in the TLS library's buffers, the input buffers, the JSON parser's
	or the hashing workers' memory, freed or not.
	"""
	d = Daemon()
	pw = {name: "%s-%s" % (name, os.urandom(12).hex())
	    for name in ("alice", "bob", "new", "wrong", "dave")}
	clients = {n: user(d, n, pw[n]) for n in ("alice", "bob")}
	expect_ok(clients["alice"], {"type": "passwd", "old": pw["alice"],
	    "new": pw["new"]})
	c = Client(d)
	assert_error(login(c, "bob", pw["wrong"]), "auth_failed")
	assert_ok(login(c, "bob", pw["bob"]), user="bob")
	r = admin(d, {"command": "user-add", "user": "dave",
	    "password": pw["dave"]})
	assert r.get("ok") is True, r
	# Scanned right after the last reply, before any later request could
	# overwrite a leftover copy by chance.  The random tails: a buffer
	# reused from its start would still hold the rest.  Under ASan freed
	# blocks sit in quarantine untouched, so that run misses nothing.
	found = memory_holding(d.pid, [p[-20:].encode() for p in pw.values()])
	assert not found, "passwords left in the daemon's memory: %r" % found


@test
def test_passwords_appear_neither_in_the_database_nor_in_the_log():
	d = Daemon(log_level="debug")
	secrets = {
	    "alice": "Zq7-alice-SECRET-pw-41",
	    "bob": "Bb9!bob-hunter2-ABCDEF",
	    "carol": "c\u00e4rol-\u00fcmlaut-\u20ac-secret",
	}
	new_alice = "Zq7-alice-NEWSECRET-pw-99"
	wrong = "Wr0ng-guess-XYZZY-12345"
	clients = {}
	for name, pw in secrets.items():
		clients[name] = user(d, name, pw)
	expect_ok(clients["alice"], {"type": "passwd",
	    "old": secrets["alice"], "new": new_alice})
	c = Client(d)
	assert_error(login(c, "bob", wrong), "auth_failed")
	assert_ok(login(c, "bob", secrets["bob"]), user="bob")
	r = admin(d, {"command": "user-add", "user": "dave",
	    "password": "Dd-admin-added-SECRET-77"})
	assert r.get("ok") is True, r
	all_pw = list(secrets.values()) + [new_alice, wrong,
	    "Dd-admin-added-SECRET-77"]

	def check(when):
		files = [d.database, d.database + "-wal", d.database + "-shm",
		    d.database + "-journal"]
		assert os.path.getsize(d.database) > 0
		for path in files:
			data = read_file(path)
			for pw in all_pw:
				assert pw.encode() not in data, \
				    "%s: password %r in %s" % (when, pw, path)
		log = d.log_bytes()
		for pw in all_pw:
			assert pw.encode() not in log, \
			    "%s: password %r in the log" % (when, pw)

	check("while running")
	for cl in clients.values():
		cl.close()
	c.close()
	assert d.stop() == 0
	check("after a clean stop")


if __name__ == "__main__":
	raise SystemExit(harness.run())
