# test_admin: the admin socket and netsockctl against a real daemon: every
# command in both output modes, every exit status, the permission check,
# kicks, bans across a restart, accounts, shutdown and the stale socket.

import json
import os
import re
import signal
import socket
import subprocess
import time

import harness
from harness import Client, Daemon, TS_RE, test
from chatlib import (PASSWORD, assert_alive, assert_error, assert_ok, join,
    req, send, session, user, wait_event)
from adminlib import (DEFAULT_KICK_REASON, FAILED, NOBODY, UNREACHABLE,
    USAGE, client_usage_error, ctl, ctl_as_nobody, ctl_fail,
    daemon_replied_failure, human_bytes, kicked_then_closed, login_reply,
    one_error_line, open_path_to_socket, pairs, remote_of, session_id,
    session_row, sessions, socket_mode, stats, table, users, value_column,
    wait_connections)

STATS_FIELDS = {
	"version": str, "pid": int, "uptime_seconds": int,
	"connections": int, "connections_total": int, "sessions": int,
	"users_online": int, "rooms": int, "messages_stored": int,
	"messages_in": int, "messages_out": int, "bytes_in": int,
	"bytes_out": int, "tls_handshake_failures": int, "rate_limited": int,
	"kicks": int,
}

SESSION_FIELDS = ("id", "user", "remote", "connected_since", "idle_seconds",
    "bytes_in", "bytes_out", "tls_version", "tls_cipher")

# The stats labels for people and the JSON field each one shows.
STATS_LABELS = {
	"pid": "pid", "connections": "connections",
	"connections total": "connections_total", "sessions": "sessions",
	"users online": "users_online", "rooms": "rooms",
	"messages stored": "messages_stored", "messages in": "messages_in",
	"messages out": "messages_out",
	"TLS handshakes failed": "tls_handshake_failures",
	"rate limited": "rate_limited", "kicks": "kicks",
}

OTHER_PASSWORD = "another good password"


def admin_commands_logged(d):
	return re.findall(r"admin: uid=\d+ pid=\d+ command=(\S+)", d.log())


def three_connections(d):
	"""alice and bob logged in, one client that has not logged in."""
	a = user(d, "alice")
	b = user(d, "bob")
	anon = Client(d)
	return a, b, anon


def welcome_version(c):
	return c.welcome["version"]


# ------------------------------------------------------------ the socket


@test
def test_admin_socket_is_a_0660_socket_owned_by_the_daemon_and_root_may_use_it():
	d = Daemon()
	mode, st = socket_mode(d.admin_socket)
	assert mode == 0o660, "admin socket mode %o, expected 660" % mode
	assert st.st_uid == os.geteuid() and st.st_gid == os.getegid(), \
	    (st.st_uid, st.st_gid)
	r = ctl(d, "stats", json_output=True)
	assert r.json["pid"] == d.pid, r.json
	assert admin_commands_logged(d) == ["stats"], d.log()


@test
def test_nobody_cannot_connect_to_the_0660_socket_exit_3():
	d = Daemon()
	open_path_to_socket(d)
	for j in (False, True):
		r = ctl_as_nobody(d, "stats", json_output=j)
		assert r.returncode == UNREACHABLE, r
		assert r.stdout == "", r
		one_error_line(r, ("does not seem to be running",
		    d.admin_socket, "Permission denied"))
	# The kernel refused it: the daemon never saw a peer.
	assert "admin: refused" not in d.log(), d.log()
	assert admin_commands_logged(d) == [], d.log()


@test
def test_daemon_refuses_nobody_by_peer_credentials_on_a_0666_socket():
	d = Daemon()
	open_path_to_socket(d)
	os.chmod(d.admin_socket, 0o666)
	r = ctl_as_nobody(d, "stats")
	assert r.returncode == UNREACHABLE, r
	assert r.stdout == "", r
	one_error_line(r, ("permission denied", d.admin_socket))
	r = ctl_as_nobody(d, "shutdown", json_output=True)
	assert r.returncode == UNREACHABLE, r
	one_error_line(r, "permission denied")
	assert json.loads(r.stdout) == {"ok": False,
	    "error": "permission denied", "status": 3}, r
	d.wait_log(r"admin: refused uid=%d\b" % NOBODY)
	# Nothing nobody asked for was done: the daemon still runs and
	# serves root.
	assert admin_commands_logged(d) == [], d.log()
	assert d.running()
	r = ctl(d, "stats", json_output=True)
	assert r.json["pid"] == d.pid
	assert_alive(Client(d))


@test
def test_unreachable_daemon_exits_3_with_one_line():
	d = Daemon()
	missing = os.path.join(d.dir, "no-such-dir", "admin.sock")
	for path in (missing, os.path.join(d.dir, "nothing.sock")):
		for j in (False, True):
			argv = [harness.netsockctl_path(), "-s", path] + \
			    (["--json"] if j else []) + ["stats"]
			r = subprocess.run(argv, capture_output=True,
			    text=True, timeout=30, stdin=subprocess.DEVNULL)
			assert r.returncode == UNREACHABLE, r
			assert r.stdout == "", r
			one_error_line(r, ("does not seem to be running",
			    path))
	# A daemon that has stopped (its socket removed) is unreachable too.
	assert d.stop() == 0
	assert not os.path.exists(d.admin_socket)
	r = ctl_fail(d, UNREACHABLE, "stats", says="does not seem to be "
	    "running")
	assert r.stdout == ""


# ------------------------------------------------------------ stats


@test
def test_stats_json_counts_connections_sessions_and_users_online():
	t0 = time.monotonic()
	d = Daemon()
	a, b, anon = three_connections(d)
	st = stats(d)
	elapsed = time.monotonic() - t0
	for k, t in STATS_FIELDS.items():
		assert k in st, "stats lacks %r: %r" % (k, st)
		assert type(st[k]) is t, "stats %r is %r" % (k, st[k])
	assert st["version"] == welcome_version(a), st
	assert st["pid"] == d.pid, st
	assert 0 <= st["uptime_seconds"] <= int(elapsed) + 1, st
	assert st["connections"] == 3, st
	assert st["connections_total"] == 3, st
	assert st["sessions"] == 2, st
	assert st["users_online"] == 2, st
	assert st["rooms"] == 0 and st["messages_stored"] == 0, st
	assert st["messages_in"] == 0 and st["messages_out"] == 0, st
	assert st["tls_handshake_failures"] == 0, st
	assert st["rate_limited"] == 0 and st["kicks"] == 0, st
	# A second session of alice is a session but not another user.
	a2 = session(d, "alice")
	st = stats(d)
	assert (st["connections"], st["sessions"], st["users_online"]) == \
	    (4, 3, 2), st
	# The anonymous one leaves, then alice's second one.
	anon.close()
	wait_connections(d, 3)
	a2.close()
	wait_connections(d, 2)
	st = stats(d)
	assert (st["connections"], st["connections_total"], st["sessions"],
	    st["users_online"]) == (2, 4, 2, 2), st


@test
def test_stats_message_and_byte_counters_move_by_exact_amounts():
	d = Daemon()
	a1 = user(d, "alice")
	a2 = session(d, "alice")
	b = user(d, "bob")
	c = user(d, "carol")
	off = user(d, "dave")
	for x in (a1, b, c, off):
		join(x, "#lobby")
	off.close()		# a member who is offline gets nothing
	wait_connections(d, 4)
	st0 = stats(d)
	assert st0["rooms"] == 1, st0
	# Two room messages from alice's first session: each goes to her
	# other session, bob and carol.
	for text in ("one", "two"):
		send(a1, "#lobby", text)
		for x in (a2, b, c):
			wait_event(x, "message", content=text)
	# A direct message to bob: bob and alice's other session.
	send(a1, "bob", "psst")
	for x in (a2, b):
		wait_event(x, "message", content="psst")
	st = stats(d)
	assert st["messages_in"] - st0["messages_in"] == 3, (st0, st)
	assert st["messages_out"] - st0["messages_out"] == 3 * 2 + 2, \
	    (st0, st)
	assert st["messages_stored"] - st0["messages_stored"] == 3, (st0, st)
	# Bytes: one line of known length in, its reply of known length out.
	line = b'{"type":"echo","content":"counted","ref":"n1"}\n'
	a1.send_raw(line)
	reply = a1.recv_line(timeout=10) + b"\n"
	assert b'"counted"' in reply, reply
	st2 = stats(d)
	assert st2["bytes_in"] - st["bytes_in"] == len(line), (st, st2)
	assert st2["bytes_out"] - st["bytes_out"] == len(reply), (st, st2)


@test
def test_stats_human_output_shows_the_same_figures_aligned():
	d = Daemon()
	a, b, anon = three_connections(d)
	a2 = session(d, "alice")
	join(a, "#lobby")
	r = ctl(d, "stats")
	j = stats(d)
	harness.diag("netsockctl stats:\n" + r.stdout)
	kv = pairs(r.stdout)
	assert len(value_column(r.stdout)) == 1, "values not aligned:\n" + \
	    r.stdout
	assert kv["version"] == j["version"], kv
	for label, key in STATS_LABELS.items():
		assert kv.get(label) == str(j[key]), \
		    "%r: %r, JSON %r=%r" % (label, kv.get(label), key, j[key])
	assert kv["connections"] == "4" and kv["sessions"] == "3" and \
	    kv["users online"] == "2", kv
	# Nothing moved bytes between the two runs: same figures.
	assert kv["bytes in"] == human_bytes(j["bytes_in"]), (kv, j)
	assert kv["bytes out"] == human_bytes(j["bytes_out"]), (kv, j)
	assert re.match(r"^\d+s$", kv["uptime"]), kv
	assert kv["listeners"].split() == ["%s:%d" % (d.address, d.port),
	    "4", "connections"], kv


# ------------------------------------------------------------ sessions


@test
def test_sessions_json_lists_users_remotes_tls_and_exact_byte_counts():
	d = Daemon()
	a, b, _ = three_connections(d)
	anon = Client(d, read_welcome=False)
	welcome = anon.recv_line(timeout=10) + b"\n"
	rows = sessions(d)
	assert len(rows) == 4, rows
	for row in rows:
		for k in SESSION_FIELDS:
			assert k in row, "session lacks %r: %r" % (k, row)
		assert type(row["id"]) is int and row["id"] > 0, row
		assert TS_RE.match(row["connected_since"]), row
		assert type(row["idle_seconds"]) is int and \
		    row["idle_seconds"] >= 0, row
	assert len({r["id"] for r in rows}) == 4, rows
	for c, name in ((a, "alice"), (b, "bob"), (anon, None)):
		row = session_row(rows, c)
		assert row["user"] == name, row
		assert row["tls_version"] == c.version() == "TLSv1.3", row
		assert row["tls_cipher"] == c.cipher()[0], row
	# The one that only read its welcome: nothing in, the welcome out.
	row = session_row(rows, anon)
	assert row["bytes_in"] == 0, row
	assert row["bytes_out"] == len(welcome), (row, welcome)
	line = b'{"type":"ping","ref":"p"}\n'
	anon.send_raw(line)
	pong = anon.recv_line(timeout=10) + b"\n"
	row = session_row(sessions(d), anon)
	assert row["bytes_in"] == len(line), row
	assert row["bytes_out"] == len(welcome) + len(pong), row
	assert row["user"] is None, row
	# Logging in shows the user.
	anon.login("alice", PASSWORD)
	assert session_row(sessions(d), anon)["user"] == "alice"


@test
def test_sessions_human_output_is_a_table_with_one_row_per_connection():
	d = Daemon()
	a, b, anon = three_connections(d)
	r = ctl(d, "sessions")
	harness.diag("netsockctl sessions:\n" + r.stdout)
	header, rows = table(r.stdout)
	assert header == ["ID", "USER", "REMOTE", "TLS", "CIPHER",
	    "CONNECTED", "IDLE", "IN", "OUT"], header
	assert len(rows) == 3, rows
	j = {row["id"]: row for row in sessions(d)}
	by_remote = {row[2]: row for row in rows}
	for c, name in ((a, "alice"), (b, "bob"), (anon, "-")):
		row = by_remote[remote_of(c)]
		assert len(row) == 9, row
		want = j[int(row[0])]
		assert want["remote"] == remote_of(c), (row, want)
		assert row[1] == name and row[3] == "TLSv1.3", row
		assert row[4] == c.cipher()[0], row
		assert re.match(r"^\d+s$", row[5]) and \
		    re.match(r"^\d+s$", row[6]), row
		assert row[7] == human_bytes(want["bytes_in"]), (row, want)
		assert row[8] == human_bytes(want["bytes_out"]), (row, want)


# ------------------------------------------------------------ rooms


@test
def test_rooms_in_both_output_modes_show_members_and_topics():
	d = Daemon()
	a = user(d, "alice")
	b = user(d, "bob")
	join(a, "#lobby")
	join(b, "#lobby")
	join(a, "#dev")
	assert_ok(req(a, {"type": "topic", "room": "#dev",
	    "topic": "build \x1b[31mred"}))
	r = ctl(d, "rooms", json_output=True)
	rooms = {x["room"]: x for x in r.json["rooms"]}
	assert rooms == {
	    "#lobby": {"room": "#lobby", "members": 2, "topic": ""},
	    "#dev": {"room": "#dev", "members": 1,
		"topic": "build \x1b[31mred"},
	}, r.json
	# Offline members still count.
	b.close()
	wait_connections(d, 1)
	rooms = {x["room"]: x for x in ctl(d, "rooms",
	    json_output=True).json["rooms"]}
	assert rooms["#lobby"]["members"] == 2, rooms
	r = ctl(d, "rooms")
	header, rows = table(r.stdout)
	assert header == ["ROOM", "MEMBERS", "TOPIC"], header
	assert sorted(rows) == [["#dev", "1", "build \\x1b[31mred"],
	    ["#lobby", "2"]], rows
	assert "\x1b" not in r.stdout, r.stdout


# ------------------------------------------------------------ kick


@test
def test_kick_user_sends_kicked_with_the_reason_then_closes_every_session():
	d = Daemon()
	a1 = user(d, "alice")
	a2 = session(d, "alice")
	b = user(d, "bob")
	r = ctl(d, "kick", "alice", "spamming", "the", "lobby")
	assert r.stdout == "kicked 2 sessions\n", r.stdout
	for c in (a1, a2):
		kicked_then_closed(c, "spamming the lobby")
	assert_alive(b)
	st = stats(d)
	assert st["kicks"] == 2 and st["sessions"] == 1, st
	assert [x["user"] for x in sessions(d)] == ["bob"]
	# --json, and the default reason.
	r = ctl(d, "kick", "BOB", json_output=True)
	assert r.json["kicked"] == 1, r.json
	kicked_then_closed(b, DEFAULT_KICK_REASON)
	assert stats(d)["kicks"] == 3
	# The kicked user may come back.
	assert_ok(login_reply(d, "alice", PASSWORD), user="alice")


@test
def test_kick_session_kicks_exactly_that_connection_logged_in_or_not():
	d = Daemon()
	a1 = user(d, "alice")
	a2 = session(d, "alice")
	anon = Client(d)
	other = Client(d)
	r = ctl(d, "kick", "--session", str(session_id(d, a1)), "go", "away")
	assert r.stdout == "kicked 1 session\n", r.stdout
	kicked_then_closed(a1, "go away")
	assert_alive(a2)
	assert_alive(other)
	r = ctl(d, "kick", "--session", str(session_id(d, anon)),
	    json_output=True)
	assert r.json["kicked"] == 1, r.json
	kicked_then_closed(anon, DEFAULT_KICK_REASON)
	assert_alive(a2)
	assert_alive(other)
	wait_connections(d, 2)
	st = stats(d)
	assert st["kicks"] == 2 and st["sessions"] == 1, st


@test
def test_sigterm_right_after_a_kick_whose_client_keeps_its_socket_exits_0():
	# The kicked connection is closed gracefully (the daemon drains
	# what the peer still sends); a shutdown in that window must still
	# free everything and exit 0 (the sanitizer build reports leaks).
	d = Daemon()
	a = user(d, "alice")
	b = user(d, "bob")
	ctl(d, "kick", "alice", "bye")
	kicked_then_closed(a, "bye")
	ctl(d, "ban", "bob")
	kicked_then_closed(b, "banned by the operator")
	# a and b stay open on our side until the daemon has stopped.
	assert d.stop() == 0


@test
def test_kick_of_no_session_unknown_user_or_session_exits_1():
	d = Daemon()
	user(d, "alice").close()	# registered, offline
	b = user(d, "bob")
	wait_connections(d, 1)
	daemon_replied_failure(d, FAILED, "kick", "alice", says="alice")
	daemon_replied_failure(d, FAILED, "kick", "nosuchuser")
	daemon_replied_failure(d, FAILED, "kick", "--session", "999999",
	    says="999999")
	assert_alive(b)
	assert stats(d)["kicks"] == 0


# ------------------------------------------------------------ ban


@test
def test_ban_kicks_refuses_login_survives_a_restart_and_unban_lifts_it():
	d = Daemon()
	a = user(d, "Alice")
	b = user(d, "bob")
	r = ctl(d, "ban", "alice", "flooding")
	assert r.stdout == "banned Alice (kicked 1 session)\n", r.stdout
	kicked_then_closed(a, "flooding")
	assert_alive(b)
	assert stats(d)["kicks"] == 1
	assert_error(login_reply(d, "alice", PASSWORD), "banned")
	u = users(d)
	assert u["Alice"]["banned"] is True and u["bob"]["banned"] is False, u
	# A ban is stored: a restart keeps it.
	b.close()
	d.restart()
	assert_error(login_reply(d, "Alice", PASSWORD), "banned")
	assert users(d)["Alice"]["banned"] is True
	r = ctl(d, "unban", "alice")
	assert r.stdout == "unbanned Alice\n", r.stdout
	assert users(d)["Alice"]["banned"] is False
	assert_ok(login_reply(d, "alice", PASSWORD), user="Alice")
	# Not banned any more: unban fails; --json forms of both.
	daemon_replied_failure(d, FAILED, "unban", "alice")
	r = ctl(d, "ban", "bob", json_output=True)
	assert r.json["user"] == "bob" and r.json["kicked"] == 0, r.json
	r = ctl(d, "unban", "BOB", json_output=True)
	assert r.json["user"] == "bob", r.json
	assert_ok(login_reply(d, "bob", PASSWORD), user="bob")


@test
def test_ban_unban_of_unknown_users_exit_1():
	d = Daemon()
	daemon_replied_failure(d, FAILED, "ban", "ghost", says="ghost")
	daemon_replied_failure(d, FAILED, "unban", "ghost", says="ghost")
	assert users(d) == {}


# ------------------------------------------------------------ accounts


@test
def test_user_add_creates_an_account_that_can_log_in_over_tls():
	d = Daemon()
	r = ctl(d, "user", "add", "Carol", input=OTHER_PASSWORD + "\n")
	assert r.stdout == "user Carol added\n", r.stdout
	assert_ok(login_reply(d, "carol", OTHER_PASSWORD), user="Carol")
	assert_error(login_reply(d, "carol", PASSWORD), "auth_failed")
	u = users(d)
	assert list(u) == ["Carol"] and u["Carol"]["banned"] is False, u
	assert TS_RE.match(u["Carol"]["created"]), u
	# Only the first line is the password, and a \r before its newline
	# is not part of it.
	r = ctl(d, "user", "add", "dave", json_output=True,
	    input="first line pw\r\nsecond line\n")
	assert r.json["user"] == "dave", r.json
	assert_ok(login_reply(d, "dave", "first line pw"), user="dave")
	# Names are taken case-insensitively.
	r = ctl_fail(d, FAILED, "user", "add", "CAROL", input=PASSWORD + "\n")
	assert r.stdout == ""
	r = ctl_fail(d, FAILED, "user", "add", "carol", json_output=True,
	    input=PASSWORD + "\n")
	assert r.json["ok"] is False and r.json["status"] == 1, r.json
	assert_ok(login_reply(d, "carol", OTHER_PASSWORD), user="Carol")


@test
def test_user_passwd_changes_the_password_and_keeps_sessions():
	d = Daemon()
	a = user(d, "alice")
	r = ctl(d, "user", "passwd", "alice", input=OTHER_PASSWORD + "\n")
	assert r.stdout == "user alice password changed\n", r.stdout
	assert_alive(a)
	assert_error(login_reply(d, "alice", PASSWORD), "auth_failed")
	assert_ok(login_reply(d, "alice", OTHER_PASSWORD), user="alice")
	r = ctl(d, "user", "passwd", "ALICE", json_output=True,
	    input=PASSWORD + "\n")
	assert r.json["user"] == "alice", r.json
	assert_error(login_reply(d, "alice", OTHER_PASSWORD), "auth_failed")
	assert_ok(login_reply(d, "alice", PASSWORD), user="alice")
	for j in (False, True):
		r = ctl_fail(d, FAILED, "user", "passwd", "ghost",
		    json_output=j, input=PASSWORD + "\n", says="ghost")
	assert "ghost" not in users(d)


@test
def test_user_del_kicks_sessions_refuses_login_and_frees_the_name():
	d = Daemon()
	a1 = user(d, "alice")
	a2 = session(d, "alice")
	b = user(d, "bob")
	join(a1, "#lobby")
	r = ctl(d, "user", "del", "alice")
	assert r.stdout == "user alice deleted\n", r.stdout
	for c in (a1, a2):
		got = c.expect_closed(timeout=10)
		kicked = [e for e in got if isinstance(e, dict) and
		    e.get("type") == "kicked"]
		assert len(kicked) == 1 and got[-1] is kicked[0] and \
		    isinstance(kicked[0].get("reason"), str), got
	assert_alive(b)
	st = stats(d)
	assert st["kicks"] == 2 and st["users_online"] == 1, st
	assert list(users(d)) == ["bob"]
	assert_error(login_reply(d, "alice", PASSWORD), "auth_failed")
	daemon_replied_failure(d, FAILED, "user", "del", "alice")
	# The name is free again, for a client and for user add.
	c = Client(d)
	assert_ok(c.register("alice", OTHER_PASSWORD), user="alice")
	r = ctl(d, "user", "del", "alice", json_output=True)
	assert r.json["user"] == "alice", r.json
	c.expect_closed(timeout=10)
	ctl(d, "user", "add", "alice", input=PASSWORD + "\n")
	assert_ok(login_reply(d, "alice", PASSWORD), user="alice")


@test
def test_user_list_in_both_output_modes():
	d = Daemon()
	user(d, "alice")
	user(d, "bob").close()
	ctl(d, "user", "add", "mallory", input=PASSWORD + "\n")
	ctl(d, "ban", "mallory")
	wait_connections(d, 1)
	u = users(d)
	assert sorted(u) == ["alice", "bob", "mallory"], u
	for name, banned, online in (("alice", False, True),
	    ("bob", False, False), ("mallory", True, False)):
		assert u[name]["user"] == name, u
		assert u[name]["banned"] is banned, u
		assert u[name]["online"] is online, u
		assert TS_RE.match(u[name]["created"]), u
	r = ctl(d, "user", "list")
	header, rows = table(r.stdout)
	assert header == ["USER", "CREATED", "BANNED", "ONLINE"], header
	by = {row[0]: row for row in rows}
	assert len(rows) == 3, rows
	for name, banned, online in (("alice", "no", "yes"),
	    ("bob", "no", "no"), ("mallory", "yes", "no")):
		assert by[name][2:] == [banned, online], by
		# To the second: the JSON timestamp without milliseconds.
		assert by[name][1] == u[name]["created"][:19] + "Z", by


# ------------------------------------------------------------ exit codes


@test
def test_usage_errors_exit_2_without_asking_the_daemon():
	d = Daemon()
	user(d, "alice")
	cases = [
	    ([], "no command"),
	    (["frobnicate"], "unknown command"),
	    (["--bogus", "stats"], "unknown option"),
	    (["stats", "extra"], "usage"),
	    (["sessions", "extra"], "usage"),
	    (["kick"], "usage"),
	    (["kick", "--session"], "usage"),
	    (["kick", "--session", "abc"], "bad session id"),
	    (["kick", "--session", "0"], "bad session id"),
	    (["kick", "--session", "-3"], "bad session id"),
	    (["kick", "--session", "12x"], "bad session id"),
	    (["ban"], "usage"),
	    (["unban"], "usage"),
	    (["unban", "alice", "bob"], "usage"),
	    (["user"], "subcommand"),
	    (["user", "frob", "alice"], "unknown command"),
	    (["user", "add"], "usage"),
	    (["user", "del"], "usage"),
	    (["user", "passwd"], "usage"),
	    (["user", "list", "extra"], "usage"),
	    (["rooms", "extra"], "usage"),
	    (["reload", "now"], "usage"),
	    (["shutdown", "now"], "usage"),
	]
	for args, says in cases:
		client_usage_error(d, *args, says=says)
	# Passwords shorter than 8 bytes are refused before the daemon is
	# asked: no account, no change.
	for pw in ("short\n", "1234567\n", "", "\n"):
		client_usage_error(d, "user", "add", "carol", input=pw)
		client_usage_error(d, "user", "passwd", "alice", input=pw)
	assert admin_commands_logged(d) == [], d.log()
	assert list(users(d)) == ["alice"]
	assert_ok(login_reply(d, "alice", PASSWORD), user="alice")
	assert d.running()


@test
def test_invalid_user_name_for_user_add_is_exit_2_from_the_daemon():
	d = Daemon()
	for name in ("bad name", ".dot", "x" * 33):
		for j in (False, True):
			r = ctl_fail(d, USAGE, "user", "add", name,
			    json_output=j, input=PASSWORD + "\n")
			if j:
				assert r.json["ok"] is False and \
				    r.json["status"] == 2, r.json
	assert users(d) == {}


# ------------------------------------------------------------ shutdown


def check_shutdown_by_ctl(d, json_output, name):
	anon = Client(d)
	a = user(d, name)
	r = ctl(d, "shutdown", json_output=json_output)
	if json_output:
		assert r.json == {"ok": True}, r.json
	else:
		assert r.stdout == "netsockd is shutting down\n", r.stdout
	for c in (anon, a):
		got = list(c.events) + c.expect_closed(timeout=10)
		assert got and isinstance(got[-1], dict) and \
		    got[-1].get("type") == "shutdown" and \
		    isinstance(got[-1].get("reason"), str), got
		assert c.close_kind in ("close_notify", "eof"), c.close_kind
	rc = d.wait()
	assert rc == 0, "netsockd exited %r after netsockctl shutdown" % rc
	assert "STOPPING=1" in [l for n in d.notifications()
	    for l in n.splitlines()], d.notifications()
	assert not os.path.exists(d.admin_socket)
	ctl_fail(d, UNREACHABLE, "stats", says="does not seem to be running")


@test
def test_shutdown_command_tells_clients_and_exits_0_in_both_modes():
	d = Daemon()
	check_shutdown_by_ctl(d, False, "alice")
	d.start()
	check_shutdown_by_ctl(d, True, "bob")


# ------------------------------------------------------------ stale socket


@test
def test_stale_admin_socket_after_kill_9_is_replaced_on_start():
	d = Daemon()
	user(d, "alice").close()
	old = d.pid
	assert d.kill9() == -signal.SIGKILL
	mode, _ = socket_mode(d.admin_socket)	# left behind
	ctl_fail(d, UNREACHABLE, "stats", says="does not seem to be running")
	d.start()
	assert d.pid != old
	mode, _ = socket_mode(d.admin_socket)
	assert mode == 0o660, "%o" % mode
	r = ctl(d, "stats", json_output=True)
	assert r.json["pid"] == d.pid, r.json
	assert list(users(d)) == ["alice"]


@test
def test_second_daemon_on_the_same_admin_socket_refuses_to_start():
	d = Daemon()
	d2 = Daemon(start=False)
	d2.admin_socket = d.admin_socket
	d2.write_config()
	r = harness.run_netsockd(["-c", d2.config_path], timeout=30)
	assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
	out = r.stdout + r.stderr
	assert "admin socket" in out and "in use" in out, out
	# The first one is untouched: its socket still answers.
	assert d.running()
	mode, _ = socket_mode(d.admin_socket)
	assert mode == 0o660
	r = ctl(d, "stats", json_output=True)
	assert r.json["pid"] == d.pid, r.json
	# And the second one did not leave a listener behind.
	with socket.socket() as s:
		assert s.connect_ex(("127.0.0.1", d2.port)) != 0


if __name__ == "__main__":
	harness.run()
