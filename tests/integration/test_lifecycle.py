# test_lifecycle: readiness and status for systemd, the watchdog, graceful
# shutdown on SIGTERM/SIGINT, and --daemon with a pid file.

import os
import signal
import subprocess
import time

import harness
from harness import Client, Daemon, test


def assert_alive(c):
	r = c.request({"type": "ping", "ref": "alive"})
	assert r == {"type": "pong", "ref": "alive"}, r


def lines_of(notes):
	return [l for n in notes for l in n.splitlines()]


# ------------------------------------------------------------ sd_notify


@test
def test_notify_ready_and_status_with_connections():
	d = Daemon()
	notes = d.notifications()
	assert "READY=1" in lines_of(notes), notes
	note = d.wait_notification(lambda t: any(
	    l.startswith("STATUS=") and "connections" in l
	    for l in t.splitlines()), timeout=10)
	assert note, notes


@test
def test_notify_status_says_the_database_is_being_checked_before_ready():
	"""The check at open reads the whole database (minutes when it is
	large): systemctl status must say what the start is waiting for."""
	d = Daemon()
	lines = lines_of(d.notifications())
	checking = [i for i, l in enumerate(lines) if l.startswith("STATUS=")
	    and "checking the database" in l and d.database in l]
	assert checking, lines
	assert checking[0] < lines.index("READY=1"), lines


@test
def test_notify_stopping_on_sigterm():
	d = Daemon()
	mark = len(d.notifications())
	assert d.stop() == 0
	notes = d.notifications()[mark:]
	assert "STOPPING=1" in lines_of(notes), notes
	# READY=1 is not sent again on the way out.
	assert "READY=1" not in lines_of(notes), notes


@test
def test_watchdog_pings_when_watchdog_usec_is_set():
	d = Daemon(env={"WATCHDOG_USEC": "200000"})
	# A 200 ms watchdog wants a ping at least every 200 ms; wait for a
	# few (bounded), not for any particular pace.
	def pings():
		return [n for n in d.notifications()
		    if "WATCHDOG=1" in n.splitlines()]
	harness.retry(lambda: len(pings()) >= 3, timeout=10, interval=0.05)
	assert_alive(Client(d))


# ------------------------------------------------------------ shutdown


def check_shutdown(sig, logged_in):
	d = Daemon()
	clients = [Client(d) for _ in range(3)]
	if logged_in:
		clients[0].register("alice", "correct horse")
		clients[1].register("bob", "battery staple")
	for c in clients:
		assert_alive(c)
	mark = len(d.notifications())
	d.send_signal(sig)
	for i, c in enumerate(clients):
		got = c.expect_closed(10)
		assert got, "client %d was closed without a shutdown event" % i
		ev = got[0]
		assert ev.get("type") == "shutdown", got
		assert isinstance(ev.get("reason"), str), got
		assert "ref" not in ev, got
		assert len(got) == 1, "more after shutdown: %r" % got
	# No new connection gets in once the daemon is stopping.
	d.wait_notification("STOPPING=1", timeout=10, since=mark)
	assert harness.connect_refused(d), "a new connection was admitted " \
	    "after STOPPING=1"
	rc = d.wait()
	assert rc == 0, "netsockd exited with %r on %s" % (rc, sig.name)


@test
def test_sigterm_sends_shutdown_to_every_client_and_exits_0():
	check_shutdown(signal.SIGTERM, logged_in=False)


@test
def test_sigterm_sends_shutdown_to_logged_in_sessions_too():
	check_shutdown(signal.SIGTERM, logged_in=True)


@test
def test_sigint_sends_shutdown_to_every_client_and_exits_0():
	check_shutdown(signal.SIGINT, logged_in=False)


@test
def test_sigterm_with_a_half_sent_line_and_a_pending_handshake():
	d = Daemon()
	c = Client(d)
	c.send_raw(b'{"type":"ping","ref":')		# no newline yet
	raw = harness.raw_connect(d)			# TLS never started
	time.sleep(0.1)		# let the daemon read both (not a threshold)
	assert d.stop() == 0
	got = c.expect_closed(10)
	assert got and got[0].get("type") == "shutdown", got


@test
def test_restart_after_sigterm_serves_again():
	d = Daemon()
	Client(d).close()
	assert d.stop() == 0
	d.restart()
	c = Client(d)
	assert_alive(c)


# ------------------------------------------------------------ --daemon


@test
def test_daemon_option_detaches_writes_pidfile_and_stops_on_sigterm():
	d = Daemon(start=False)
	pidfile = os.path.join(d.dir, "netsockd.pid")
	with open(d.log_path, "ab") as log:
		r = subprocess.run(harness._argv0() + ["--daemon", "--pidfile",
		    pidfile, "-c", d.config_path], stdin=subprocess.DEVNULL,
		    stdout=log, stderr=subprocess.STDOUT,
		    env=harness._daemon_env(), cwd=d.dir, timeout=30)
	assert r.returncode == 0, "foreground process exited %d: %s" % (
	    r.returncode, d.log())
	with open(pidfile) as f:
		text = f.read()
	assert text.strip().isdigit() and text.endswith("\n"), repr(text)
	pid = int(text)
	harness.on_cleanup(lambda: harness.terminate_pid(pid))
	assert harness.pid_alive(pid), pid
	assert harness.pid_is_netsockd(pid), pid
	# Ready when the foreground process exits: no retry.
	c = Client(d)
	assert_alive(c)
	os.kill(pid, signal.SIGTERM)
	got = c.expect_closed(10)
	assert got and got[0].get("type") == "shutdown", got
	harness.retry(lambda: not harness.pid_alive(pid), timeout=10,
	    interval=0.05)
	harness.retry(lambda: not os.path.exists(pidfile), timeout=10,
	    interval=0.05)


if __name__ == "__main__":
	raise SystemExit(harness.run())
