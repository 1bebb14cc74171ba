# test_hostile_server: the daemon as a whole under pressure from outside:
# a database locked by another process, descriptors running out under the
# admin socket, a reload racing a shutdown, a file in the admin socket's
# place, and the TLS settings a hostile or careless peer could exploit
# (costly key-exchange groups, ticket keys that never change, a private
# key others can read).

import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import time

import harness
from harness import Client, Daemon, client_context, test
from chatlib import (assert_alive, assert_error, client, history, ids, join,
    req, sync, user)

TLS12 = ssl.TLSVersion.TLSv1_2
TLS13 = ssl.TLSVersion.TLSv1_3


def cpu_seconds(pid):
	"""User plus system CPU time the process has used so far."""
	with open("/proc/%d/stat" % pid) as f:
		fields = f.read().rsplit(")", 1)[1].split()
	# utime and stime are fields 14 and 15 of stat(5); fields[0] is 3.
	return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ping_delays(c, n, pause):
	"""Send n pings, pause seconds apart; the seconds each took."""
	delays = []
	for i in range(n):
		t0 = time.monotonic()
		r = c.request({"type": "ping", "ref": "p%d" % i}, timeout=30)
		delays.append(time.monotonic() - t0)
		assert r == {"type": "pong", "ref": "p%d" % i}, r
		time.sleep(pause)
	return delays


# ------------------------------------------------------------ 9a: busy database


def locked_database(d):
	"""Another process (a sqlite3 shell in a transaction, a backup tool)
	takes the database's write lock; returns its connection."""
	db = sqlite3.connect(d.database, timeout=0, isolation_level=None)
	harness.on_cleanup(db.close)
	db.execute("BEGIN IMMEDIATE")
	return db


def assert_prompt(delays):
	# The baseline slept 5 s in SQLite's busy handler per write,
	# stalling every session.
	assert max(delays) < 2.5, "pings took %s s while another process " \
	    "held the write lock" % ", ".join("%.2f" % x for x in delays)


@test
def test_database_locked_briefly_delays_messages_but_no_other_client():
	"""
	Messages wait (their senders too) while another process holds the
	write lock for a moment, and are stored and acknowledged once it is
	released; meanwhile the loop does not sleep in SQLite's busy handler:
	other sessions' pings are answered at once.
	"""
	d = Daemon(limits={"messages_per_second": 1000.0,
	    "message_burst": 1000})
	a = user(d, "alice")
	join(a, "#busy")
	b = Client(d)
	assert_alive(b)
	db = locked_database(d)
	try:
		for i in range(3):
			a.send({"type": "message", "to": "#busy",
			    "content": "m%d" % i, "ref": "m%d" % i})
		assert_prompt(ping_delays(b, 4, 0.05))
	finally:
		db.execute("ROLLBACK")
	acked = []
	for i in range(3):
		r = a.wait_event(lambda m, i=i: m.get("ref") == "m%d" % i,
		    timeout=30)
		assert r["type"] == "ok", r
		acked.append(r["id"])
	assert acked == sorted(acked), acked
	msgs = history(a, "#busy", limit=50)
	assert [(m["id"], m["content"]) for m in msgs] == \
	    [(x, "m%d" % i) for i, x in enumerate(acked)], msgs
	assert d.running()


@test
def test_database_locked_for_long_fails_messages_and_stalls_no_one():
	"""
	Held for longer, the lock makes a message fail with an error (never an
	ok for what is not stored), and the daemon stays responsive throughout
	and writes again once the lock is released.
	"""
	d = Daemon()
	a = user(d, "alice")
	join(a, "#busy")
	b = Client(d)
	assert_alive(b)
	db = locked_database(d)
	try:
		a.send({"type": "message", "to": "#busy", "content": "lost",
		    "ref": "lost"})
		assert_prompt(ping_delays(b, 10, 0.3))
		r = a.wait_event(lambda m: m.get("ref") == "lost", timeout=30)
		assert_error(r, "internal_error")
		assert_alive(a)
	finally:
		db.execute("ROLLBACK")
	r = req(a, {"type": "message", "to": "#busy", "content": "after"},
	    timeout=30)
	assert r["type"] == "ok", r
	msgs = history(a, "#busy", limit=50)
	assert [m["content"] for m in msgs] == ["after"], msgs
	assert d.running()


# ------------------------------------------------------------ 9c: admin EMFILE


def low_nofile():
	import resource
	resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


@test
def test_admin_socket_out_of_descriptors_does_not_spin_and_recovers():
	"""
	With every descriptor taken, a connection waiting on the admin socket
	cannot be accepted.  The daemon stops listening there for a while
	instead of retrying in a busy loop (it uses no CPU while idle), says
	so once, and answers the admin once descriptors are free.
	"""
	d = Daemon(preexec=low_nofile,
	    limits={"max_connections": 10000, "max_per_ip": 10000,
		"handshake_timeout": 300})
	socks = []
	harness.on_cleanup(lambda: [s.close() for s in socks])
	for _ in range(80):
		socks.append(socket.create_connection((d.address, d.port),
		    timeout=10))
	d.wait_log(r"out of file descriptors", timeout=10,
	    since=d.log_ready_offset)
	waiting = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
	harness.on_cleanup(waiting.close)
	waiting.connect(d.admin_socket)
	time.sleep(1)		# for the daemon to see it (not a threshold)
	before = cpu_seconds(d.pid)
	t0 = time.monotonic()
	time.sleep(3)
	used = cpu_seconds(d.pid) - before
	elapsed = time.monotonic() - t0
	# Idle but for a retry now and then; a spinning loop uses a core.
	assert used < 0.1 * elapsed, "netsockd used %.2f s of CPU in %.1f s " \
	    "with an admin connection it cannot accept" % (used, elapsed)
	lines = [l for l in d.log_since_ready().splitlines()
	    if "admin: accept" in l]
	assert len(lines) == 1, "logged %d times:\n%s" % (len(lines),
	    "\n".join(lines))
	for s in socks:
		s.close()
	socks.clear()
	# The connection that waited is served, and new ones too.
	waiting.sendall(b'{"version":1,"command":"stats"}\n')
	waiting.settimeout(20)
	reply = waiting.recv(65536)
	assert b'"ok":true' in reply.replace(b" ", b""), reply
	r = harness.retry(lambda: d.ctl("stats").returncode == 0, timeout=20)
	assert r
	assert d.running()


# ------------------------------------------------------------ 11a: reload vs stop


def stopping_daemon():
	"""
	A daemon that got SIGTERM and stays in its shutdown grace period: one
	session reads nothing while megabytes wait for it.  Returns (daemon,
	that session, index of the first notification after STOPPING=1).
	"""
	d = Daemon(limits={"output_buffer": 256 * 1024 * 1024,
	    "max_line": 1048576, "max_message": 1000000,
	    "messages_per_second": 1000.0, "message_burst": 1000})
	slow = client(d, rcvbuf=4096)
	slow.register("slow", "correct horse battery")
	join(slow, "#hold")
	a = user(d, "alice")
	join(a, "#hold")
	sync(slow)
	big = "q" * 900000
	for i in range(12):		# more than the kernel buffers hold
		r = req(a, {"type": "message", "to": "#hold", "content": big},
		    timeout=30)
		assert r["type"] == "ok", r
	mark = len(d.notifications())
	d.send_signal(signal.SIGTERM)
	d.wait_notification("STOPPING=1", timeout=10, since=mark)
	d.wait_log(r"shutting down", timeout=10)
	return d, slow, len(d.notifications())


def assert_stopped_cleanly(d, slow, since):
	notes = d.notifications()[since:]
	bad = [n for n in notes if "READY=1" in n.splitlines() or
	    "RELOADING=1" in n.splitlines()]
	assert not bad, "after STOPPING=1 systemd was told %r" % bad
	log = d.log()
	after = log[log.index("shutting down"):]
	assert "listening on" not in after, "a listener was reopened while " \
	    "stopping:\n" + after
	assert harness.connect_refused(d, timeout=5), "a new connection was " \
	    "admitted while stopping"
	slow.close()
	assert d.wait() == 0


@test
def test_sighup_while_stopping_reopens_nothing_and_sends_no_ready():
	d, slow, since = stopping_daemon()
	d.proc.send_signal(signal.SIGHUP)
	m = d.wait_log(r"reload refused: shutting down|configuration reloaded",
	    timeout=10)
	assert_stopped_cleanly(d, slow, since)
	assert m.group(0) == "reload refused: shutting down", m.group(0)


@test
def test_netsockctl_reload_while_stopping_is_refused():
	d, slow, since = stopping_daemon()
	r = d.ctl("reload")
	assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
	assert "shutting down" in r.stdout + r.stderr, (r.stdout, r.stderr)
	assert_stopped_cleanly(d, slow, since)


# ------------------------------------------------------------ 11b: admin path


def start_fails(d):
	"""Start d (already configured); it must exit 1.  Returns its log."""
	d.start(wait_ready=False)
	rc = d.wait(30)
	assert rc == 1, "netsockd exited with %r" % rc
	return d.log()


@test
def test_a_regular_file_at_the_admin_socket_path_is_kept_and_start_fails():
	d = Daemon(start=False)
	with open(d.admin_socket, "w") as f:
		f.write("precious\n")
	log = start_fails(d)
	assert "not a socket" in log and d.admin_socket in log, log
	with open(d.admin_socket) as f:
		assert f.read() == "precious\n"


@test
def test_admin_socket_pointed_at_the_database_does_not_delete_it():
	d = Daemon()
	user(d, "alice").close()
	assert d.stop() == 0
	size = os.path.getsize(d.database)
	# The typo: admin.socket names the database.
	d.admin_socket = d.database
	d.write_config()
	log = start_fails(d)
	assert "not a socket" in log, log
	assert os.path.getsize(d.database) == size
	db = sqlite3.connect(d.database)
	try:
		names = [r[0] for r in db.execute("SELECT name FROM users")]
	finally:
		db.close()
	assert names == ["alice"], names


# ------------------------------------------------------------ 11d: tickets


def tls_connect(d, ctx, session=None):
	"""A TLS connection that read its welcome (so a TLS 1.3 ticket has
	arrived); returns the SSLSocket."""
	s = socket.create_connection((d.address, d.port), timeout=10)
	t = ctx.wrap_socket(s, server_hostname="localhost", session=session)
	harness.on_cleanup(t.close)
	buf = b""
	while b"\n" not in buf:
		data = t.recv(4096)
		assert data, "closed before the welcome"
		buf += data
	return t


def check_ticket_rotation(version):
	d = Daemon()
	ctx = client_context(tls_version=version)
	first = tls_connect(d, ctx)
	old = first.session
	assert old is not None and old.has_ticket, "no session ticket"
	assert tls_connect(d, ctx, old).session_reused
	# Keys rotate (an hour's timer; a reload does the same): the
	# previous key still opens the ticket, and a fresh one is issued.
	assert d.ctl("reload").returncode == 0
	again = tls_connect(d, ctx, old)
	assert again.session_reused, "a ticket of the previous key was " \
	    "refused after one rotation"
	renewed = again.session
	assert d.ctl("reload").returncode == 0
	# Two rotations later the old key is gone: a full handshake.
	assert not tls_connect(d, ctx, old).session_reused, "a ticket " \
	    "sealed two rotations ago still resumes"
	assert tls_connect(d, ctx, renewed).session_reused


@test
def test_tls12_ticket_keys_rotate_and_the_previous_key_still_resumes():
	check_ticket_rotation(TLS12)


@test
def test_tls13_ticket_keys_rotate_and_the_previous_key_still_resumes():
	check_ticket_rotation(TLS13)


# ------------------------------------------------------------ 11e: key mode


@test
def test_key_readable_by_others_is_warned_about_not_by_the_daemon_group():
	"""
	A private key that everyone, or a group the daemon is not in, may
	read is warned about (at start, reload and -t; it still loads).  Mode
	0600, or 0640 with a group of the daemon's (root:netsock 0640 is how
	the packaged daemon reads root's key), is not.
	"""
	other = 65534			# nogroup: not one of ours
	assert other not in os.getgroups() and other != os.getegid()
	own = os.getegid()
	for mode, gid, who in ((0o640, other, "group %d" % other),
	    (0o644, own, "everyone"), (0o600, other, None),
	    (0o640, own, None)):
		d = Daemon(start=False)
		os.chown(d.key, -1, gid)
		os.chmod(d.key, mode)
		d.start()
		assert_alive(Client(d))
		lines = [l for l in d.log().splitlines()
		    if "private key" in l and d.key in l]
		r = harness.run_netsockd(["-t", "-c", d.config_path])
		assert r.returncode == 0, r.stderr
		d.stop()
		what = (oct(mode), gid, lines, r.stderr)
		if who is None:
			assert not lines and "private key" not in r.stderr, what
			continue
		assert len(lines) == 1 and who in lines[0] and \
		    "%04o" % mode in lines[0], what
		assert "private key" in r.stderr and who in r.stderr, what


# ------------------------------------------------------------ 11f: groups


def s_client(d, *args):
	"""openssl s_client against d; (exit status, output)."""
	r = subprocess.run(["openssl", "s_client", "-connect",
	    "%s:%d" % (d.address, d.port), "-servername", "localhost"] +
	    list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
	    stderr=subprocess.STDOUT, timeout=30)
	return r.returncode, r.stdout.decode("utf-8", "replace")


@test
def test_finite_field_groups_are_refused_and_ecdhe_groups_work():
	d = Daemon()
	for version in ("-tls1_3", "-tls1_2"):
		for group in ("ffdhe2048", "ffdhe8192"):
			rc, out = s_client(d, version, "-groups", group)
			assert rc != 0 and "Cipher is (NONE)" in out, \
			    "%s %s was accepted:\n%s" % (version, group, out)
	# In TLS 1.2 the groups also name the curves the client accepts in
	# the certificate (P-256 here), so there only the preferred one.
	for version, groups, name in (("-tls1_3", "X25519", "X25519"),
	    ("-tls1_3", "P-256", "prime256v1"),
	    ("-tls1_3", "P-384", "secp384r1"),
	    ("-tls1_2", "X25519:P-256", "X25519")):
		rc, out = s_client(d, version, "-groups", groups)
		assert rc == 0 and "Cipher is (NONE)" not in out, \
		    "%s %s failed:\n%s" % (version, groups, out)
		temp = [l for l in out.splitlines()
		    if l.startswith("Server Temp Key")]
		assert temp and name in temp[0], (version, groups, temp, out)
	assert_alive(Client(d))


if __name__ == "__main__":
	raise SystemExit(harness.run())
