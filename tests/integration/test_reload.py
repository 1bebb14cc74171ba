# test_reload: graceful reload by SIGHUP and by netsockctl reload against a
# real daemon: new motd, limits and registration for new connections while
# old sessions keep chatting, broken files rejected whole, certificate
# rotation, listeners opened and closed, and the sd_notify sequence.

import os
import signal
import socket

import harness
from harness import Client, Daemon, fingerprint, make_cert, test
from chatlib import (PASSWORD, assert_alive, assert_error, assert_ok, join,
    req, send, user, wait_event)
from adminlib import (FAILED, ctl, ctl_fail, monotonic_usec, reload_notes,
    stats)

OLD_MOTD = "old motd: welcome"
NEW_MOTD = "new motd: we moved"
SMALL = 16		# limits.max_message after the reload


def chatting_pair(d):
	"""alice and bob in #lobby, connected before any reload."""
	a = user(d, "alice")
	b = user(d, "bob")
	join(a, "#lobby")
	join(b, "#lobby")
	return a, b


def still_chatting(a, b, tag):
	"""a and b, opened before the reload, still exchange messages (room
	and direct), within the new limit."""
	assert_alive(a)
	assert_alive(b)
	send(a, "#lobby", "room " + tag)
	wait_event(b, "message", content="room " + tag, to="#lobby")
	send(b, "alice", "dm " + tag)
	wait_event(a, "message", content="dm " + tag, to="alice")


def check_max_message(c, limit):
	"""A message of limit bytes passes, one byte more is too long."""
	send(c, "#lobby", "x" * limit)
	assert_error(req(c, {"type": "message", "to": "#lobby",
	    "content": "x" * (limit + 1)}), "message_too_long")


def sighup_and_wait(d):
	"""SIGHUP, then wait for the reload to be done (RELOADING=1 then
	READY=1 on the notify socket)."""
	since = len(d.notifications())
	before = monotonic_usec()
	d.send_signal(signal.SIGHUP)
	usec, notes = reload_notes(d, since)
	assert before <= usec <= monotonic_usec(), (before, usec)
	return notes


def ctl_reload(d, json_output=False):
	"""netsockctl reload, succeeding; checks the notify sequence."""
	since = len(d.notifications())
	before = monotonic_usec()
	r = ctl(d, "reload", json_output=json_output)
	after = monotonic_usec()
	if json_output:
		assert r.json == {"ok": True}, r.json
	else:
		assert r.stdout == "configuration reloaded\n", r.stdout
	usec, notes = reload_notes(d, since)
	assert before <= usec <= after, (before, usec, after)
	return r


def check_old_config_in_force(d, old_fp):
	"""New connections still get the old motd and certificate."""
	c = Client(d)
	assert c.welcome["motd"] == OLD_MOTD, c.welcome
	assert c.cert_fingerprint() == old_fp
	c.close()


# ------------------------------------------------------------ good reloads


@test
def test_netsockctl_reload_applies_motd_and_limits_while_old_sessions_chat():
	d = Daemon(motd=OLD_MOTD)
	a, b = chatting_pair(d)
	assert a.welcome["motd"] == OLD_MOTD
	check_max_message(a, 4096)
	d.write_config(motd=NEW_MOTD, limits={"max_message": SMALL})
	ctl_reload(d)
	c = Client(d)
	assert c.welcome["motd"] == NEW_MOTD, c.welcome
	c.register("carol", PASSWORD)
	join(c, "#lobby")
	check_max_message(c, SMALL)
	# The sessions from before the reload stay, lose nothing, keep
	# chatting, and the new limit applies to them too.
	still_chatting(a, b, "after")
	check_max_message(a, SMALL)
	wait_event(c, "message", content="room after")
	st = stats(d)
	assert st["sessions"] == 3 and st["kicks"] == 0, st
	assert "configuration reloaded" in d.log_since_ready()


@test
def test_netsockctl_reload_json_says_ok():
	d = Daemon(motd=OLD_MOTD)
	d.write_config(motd=NEW_MOTD)
	ctl_reload(d, json_output=True)
	assert Client(d).welcome["motd"] == NEW_MOTD


@test
def test_sighup_applies_motd_limits_and_registration_while_old_sessions_chat():
	d = Daemon(motd=OLD_MOTD)
	a, b = chatting_pair(d)
	d.write_config(motd=NEW_MOTD, limits={"max_message": SMALL},
	    registration=False)
	sighup_and_wait(d)
	assert d.running()
	c = Client(d)
	assert c.welcome["motd"] == NEW_MOTD, c.welcome
	assert c.welcome["registration"] is False, c.welcome
	assert_error(req(c, {"type": "register", "user": "carol",
	    "password": PASSWORD}, timeout=30), "registration_closed")
	assert_ok(req(c, {"type": "login", "user": "alice",
	    "password": PASSWORD}, timeout=30), user="alice")
	still_chatting(a, b, "after")
	check_max_message(a, SMALL)
	assert "configuration reloaded" in d.log_since_ready()


@test
def test_reload_notifies_reloading_with_monotonic_usec_then_ready():
	d = Daemon()
	notes = sighup_and_wait(d)
	first = [i for i, n in enumerate(notes)
	    if "RELOADING=1" in n.splitlines()]
	assert len(first) == 1, notes
	ready = [i for i, n in enumerate(notes) if "READY=1" in n.splitlines()]
	assert len(ready) == 1 and ready[0] > first[0], notes
	# The same for netsockctl reload.
	ctl_reload(d)


# ------------------------------------------------------------ rejected


def broken_syntax(d, motd):
	"""A configuration with a new motd and a syntax error on a known
	line; returns that line number."""
	text = d.config_text(motd=motd)
	n = len(text.splitlines()) + 1
	with open(d.config_path, "w") as f:
		f.write(text + "this line is not libconfig\n")
	return n


@test
def test_reload_of_a_file_with_a_syntax_error_is_rejected_old_config_stays():
	d = Daemon(motd=OLD_MOTD)
	old_fp = fingerprint(d.cert)
	a, b = chatting_pair(d)
	n = broken_syntax(d, NEW_MOTD)
	since = len(d.notifications())
	r = ctl_fail(d, FAILED, "reload", says=("reload rejected",
	    "%s:%d" % (d.config_path, n)))
	assert r.stdout == ""
	reload_notes(d, since)
	r = ctl_fail(d, FAILED, "reload", json_output=True,
	    says="reload rejected")
	assert r.json["ok"] is False and r.json["status"] == 1, r.json
	assert "%s:%d" % (d.config_path, n) in r.json["error"], r.json
	assert "reload rejected" in d.log_since_ready()
	check_old_config_in_force(d, old_fp)
	still_chatting(a, b, "after")
	# Mending the file makes the next reload work.
	d.write_config(motd=NEW_MOTD)
	ctl_reload(d)
	assert Client(d).welcome["motd"] == NEW_MOTD


@test
def test_sighup_with_a_broken_file_keeps_the_daemon_running_on_the_old_config():
	d = Daemon(motd=OLD_MOTD, limits={"max_message": 100})
	old_fp = fingerprint(d.cert)
	a, b = chatting_pair(d)
	n = broken_syntax(d, NEW_MOTD)
	sighup_and_wait(d)
	assert d.running()
	log = d.log_since_ready()
	assert "reload rejected" in log and "%s:%d" % (d.config_path, n) in \
	    log, log
	check_old_config_in_force(d, old_fp)
	still_chatting(a, b, "after")
	check_max_message(a, 100)
	# Another SIGHUP with the same broken file: still running.
	sighup_and_wait(d)
	assert d.running()
	assert_alive(a)


@test
def test_reload_with_a_missing_certificate_is_rejected_whole():
	d = Daemon(motd=OLD_MOTD)
	old_fp = fingerprint(d.cert)
	a, b = chatting_pair(d)
	good_cert = d.cert
	missing = os.path.join(d.dir, "no-such.crt")
	d.cert = missing
	d.write_config(motd=NEW_MOTD, limits={"max_message": SMALL})
	d.cert = good_cert
	for j in (False, True):
		r = ctl_fail(d, FAILED, "reload", json_output=j,
		    says=("reload rejected", missing))
	# Nothing of that file applies: neither the motd nor the limit.
	check_old_config_in_force(d, old_fp)
	still_chatting(a, b, "after")
	check_max_message(a, 4096)
	sighup_and_wait(d)
	assert d.running()
	check_old_config_in_force(d, old_fp)


@test
def test_reload_that_cannot_open_a_new_listener_is_rejected_whole():
	d = Daemon(motd=OLD_MOTD)
	old_fp = fingerprint(d.cert)
	busy = socket.socket()
	harness.on_cleanup(busy.close)
	busy.bind(("127.0.0.1", 0))
	busy.listen(1)
	port2 = busy.getsockname()[1]
	write_listeners(d, [d.port, port2], motd=NEW_MOTD)
	ctl_fail(d, FAILED, "reload", says=("reload rejected",))
	check_old_config_in_force(d, old_fp)
	assert listener_addresses(d) == ["127.0.0.1:%d" % d.port]


# ------------------------------------------------------------ certificate


@test
def test_certificate_rotation_new_clients_see_the_new_certificate():
	d = Daemon()
	old_fp = fingerprint(d.cert)
	old = user(d, "alice")
	assert old.cert_fingerprint() == old_fp
	cert2, key2 = make_cert(d.dir, name="server2")
	new_fp = fingerprint(cert2)
	assert new_fp != old_fp
	d.cert, d.key = cert2, key2
	d.write_config()
	ctl_reload(d)
	c = Client(d)
	assert c.cert_fingerprint() == new_fp, (c.cert_fingerprint(), new_fp)
	# And it verifies against the new certificate as its CA.
	v = Client(d, verify=True)
	assert v.cert_fingerprint() == new_fp
	assert new_fp in d.log_since_ready(), "new fingerprint not logged"
	# The session from before the reload keeps its TLS session and works.
	assert old.cert_fingerprint() == old_fp
	c.register("bob", PASSWORD)
	send(old, "bob", "still here")
	wait_event(c, "message", content="still here", **{"from": "alice"})
	send(c, "alice", "hello")
	wait_event(old, "message", content="hello", **{"from": "bob"})


@test
def test_certificate_rotation_by_sighup_with_an_rsa_key():
	d = Daemon()
	old = Client(d)
	cert2, key2 = make_cert(d.dir, key_type="rsa", name="server-rsa")
	d.cert, d.key = cert2, key2
	d.write_config()
	sighup_and_wait(d)
	assert Client(d).cert_fingerprint() == fingerprint(cert2)
	assert old.cert_fingerprint() != fingerprint(cert2)
	assert_alive(old)


# ------------------------------------------------------------ listeners


def write_listeners(d, ports, **overrides):
	"""The daemon's configuration with one listen entry per port."""
	text = d.config_text(**overrides)
	one = '  { address = "127.0.0.1"; port = %d; }\n' % d.port
	assert one in text, text
	many = ",\n".join('  { address = "127.0.0.1"; port = %d; }' % p
	    for p in ports) + "\n"
	with open(d.config_path, "w") as f:
		f.write(text.replace(one, many))


def listener_addresses(d):
	return sorted(l["address"] for l in stats(d)["listeners"])


def refused(port):
	s = socket.socket()
	try:
		s.settimeout(10)
		s.connect(("127.0.0.1", port))
	except ConnectionRefusedError:
		return True
	finally:
		s.close()
	return False


@test
def test_reload_opens_an_added_listener_and_closes_a_removed_one():
	d = Daemon()
	first = user(d, "alice")
	port2 = harness.free_port()
	assert refused(port2)
	write_listeners(d, [d.port, port2])
	ctl_reload(d)
	assert listener_addresses(d) == sorted(["127.0.0.1:%d" % d.port,
	    "127.0.0.1:%d" % port2])
	second = Client(("127.0.0.1", port2))
	second.register("bob", PASSWORD)
	assert_alive(first)
	# Back to one listener: port2 closes, its established session and
	# the first listener's stay.
	d.write_config()
	ctl_reload(d)
	assert listener_addresses(d) == ["127.0.0.1:%d" % d.port]
	assert refused(port2)
	assert_alive(first)
	assert_alive(second)
	send(first, "bob", "across listeners")
	wait_event(second, "message", content="across listeners")
	third = Client(d)
	assert_alive(third)
	assert stats(d)["connections"] == 3


if __name__ == "__main__":
	harness.run()
