# test_hostile_conn: what a hostile or broken peer does to a connection.
# Trickles that try to hold a descriptor or a slot for ever, slowloris
# during the handshake and after it, readers that stop reading while
# they pipeline, half-closes, alerts and close_notify in the middle of a
# line, and requests split into one TLS record per byte.  Each of these
# once hung, starved or leaked something (issue 10); every wait here is
# bounded, every address is loopback.

import json
import os
import socket
import ssl
import time

import harness
from harness import Client, Daemon, test
from chatlib import (PASSWORD, assert_alive, assert_ok, client, user,
    session, join)

# The contract: a connection being closed is gone, descriptor included,
# within 5 seconds.  The checks allow a loaded sanitizer run 2 more.
GONE_WITHIN = 7.0


def open_sockets(d):
	"""How many sockets the daemon holds (listeners, admin and notify
	sockets included): read from /proc, as an operator would."""
	n = 0
	fddir = "/proc/%d/fd" % d.pid
	for name in os.listdir(fddir):
		try:
			if os.readlink(os.path.join(fddir, name)).startswith(
			    "socket:"):
				n += 1
		except FileNotFoundError:
			pass
	return n


def wait_sockets(d, n, timeout):
	"""Wait until the daemon holds at most n sockets; the count then."""
	deadline = time.monotonic() + timeout
	while True:
		now = open_sockets(d)
		if now <= n or time.monotonic() >= deadline:
			return now
		time.sleep(0.05)


def trickle(socks, seconds, interval=0.3):
	"""Send one byte on each socket every interval for seconds (bounded);
	a socket the daemon closed is dropped from the list."""
	deadline = time.monotonic() + seconds
	while time.monotonic() < deadline and socks:
		for s in list(socks):
			try:
				s.send(b"x")
			except OSError:
				socks.remove(s)
		time.sleep(interval)


def raw_dup(c):
	"""The TCP connection under Client c, as a plain socket of its own
	(c itself is closed without a TLS close_notify)."""
	s = socket.socket(fileno=os.dup(c.sock.fileno()))
	c.sock.close()
	return s


@test
def test_trickling_after_quit_holds_no_descriptor():
	d = Daemon(limits={"max_per_ip": 4})
	base = open_sockets(d)
	socks = []
	for _ in range(4):
		c = Client(d)
		c.send({"type": "quit", "ref": 1})
		assert_ok(c.recv())
		# Keep the TCP connection, speak no more TLS: trickle bytes.
		socks.append(raw_dup(c))
	start = time.monotonic()
	trickle(list(socks), GONE_WITHIN + 1)
	# Every descriptor went within the deadline, trickle or not.
	assert open_sockets(d) <= base, \
	    "daemon still holds %d sockets %.1f s after quit (had %d)" % (
	    open_sockets(d), time.monotonic() - start, base)
	for s in socks:
		s.close()
	assert_alive(Client(d))


@test
def test_closing_connections_keep_their_slot_until_gone():
	# max_per_ip 2: two sessions quit; until their sockets are gone they
	# still count, and a third connection is refused, not let in.
	d = Daemon(limits={"max_per_ip": 2})
	socks = []
	for _ in range(2):
		c = Client(d)
		c.send({"type": "quit"})
		assert_ok(c.recv())
		socks.append(raw_dup(c))
	# They do not answer the close_notify: their sockets linger.
	assert harness.connect_refused(d), "a closing slot was reused"
	# ...but not for more than the deadline.
	c = harness.retry(lambda: Client(d), timeout=GONE_WITHIN,
	    interval=0.2)
	assert_alive(c)
	for s in socks:
		s.close()


@test
def test_handshake_deadline_holds_against_a_trickle():
	d = Daemon(limits={"handshake_timeout": 2})
	s = harness.raw_connect(d)
	start = time.monotonic()
	# A TLS record header promising a long ClientHello, then one byte of
	# it every 0.3 s: every byte used to restart the timeout.
	s.sendall(b"\x16\x03\x01\x02\x00")
	closed = False
	while time.monotonic() - start < 10:
		try:
			s.send(b"\x01")
			s.settimeout(0.3)
			if s.recv(4096) == b"":
				closed = True
				break
		except socket.timeout:
			continue
		except OSError:
			closed = True
			break
	took = time.monotonic() - start
	s.close()
	assert closed and took < 2 + 3, \
	    "handshake trickle held the connection %.1f s (timeout 2 s)" % took


@test
def test_idle_deadline_counts_from_the_last_complete_line():
	d = Daemon(limits={"idle_timeout": 2})
	c = Client(d)
	assert_alive(c)
	start = time.monotonic()
	# Bytes that never complete a line: one TLS record every 0.3 s.
	closed = False
	while time.monotonic() - start < 10:
		try:
			c.send_raw(b" ")
		except OSError:
			closed = True
			break
		try:
			c.recv_line(timeout=0.3)
		except TimeoutError:
			continue
		except harness.ConnectionClosed:
			closed = True
			break
	took = time.monotonic() - start
	assert closed and took < 2 + 3, \
	    "a partial line kept the session %.1f s (idle_timeout 2 s)" % took
	assert "reason=idle_timeout" in d.log()


@test
def test_draining_to_a_slow_reader_ends_in_time():
	# A member that reads only a trickle has megabytes of events waiting
	# (under a generous output_buffer) when it is kicked: its close must
	# not wait for it (every byte it read used to give it 10 s more).
	d = Daemon(limits={"output_buffer": 64 << 20,
	    "messages_per_second": 1000000.0, "message_burst": 1000000})
	slow = client(d, rcvbuf=4096)
	slow.register("slowpoke", PASSWORD)
	join(slow, "#big")
	talker = user(d, "talker")
	join(talker, "#big")
	pad = "z" * 4000
	for k in range(10):
		talker.send_raw(b"".join(json.dumps({"type": "message",
		    "to": "#big", "content": "%d %s" % (i, pad),
		    "ref": i}).encode() + b"\n" for i in range(k * 100,
		    k * 100 + 100)))
		got = 0
		while got < 100:
			if "ref" in talker.recv(timeout=20):
				got += 1
	raw = raw_dup(slow)
	other = Client(d)
	base = open_sockets(d) - 1
	r = d.ctl("kick", "slowpoke", "enough")
	assert r.returncode == 0, r.stderr
	start = time.monotonic()
	while time.monotonic() - start < GONE_WITHIN + 5 and \
	    open_sockets(d) > base:
		raw.settimeout(0.2)
		try:
			if raw.recv(300) == b"":
				break
		except socket.timeout:
			pass
		except OSError:
			break
		time.sleep(0.2)
	took = time.monotonic() - start
	raw.close()
	assert open_sockets(d) <= base and took < GONE_WITHIN, \
	    "a trickling reader kept its closing session %.1f s" % took
	assert_alive(other)


@test
def test_a_reader_of_large_replies_is_never_cut_off():
	# Output_buffer counts unread events, not the replies a client asked
	# for and reads: 200 echoes of 10 KB (2 MB) against 64 KiB.
	d = Daemon(limits={"output_buffer": 65536, "max_line": 16384,
	    "max_message": 12000})
	c = client(d, rcvbuf=8192)
	content = "y" * 10000
	n = 200
	lines = b"".join(json.dumps({"type": "echo", "content": content,
	    "ref": i}).encode() + b"\n" for i in range(n))
	c.send_raw(lines)
	for i in range(n):
		r = c.recv(timeout=30)
		assert r.get("ref") == i and r.get("content") == content, \
		    "reply %d: %r" % (i, str(r)[:200])
	assert_alive(c)
	assert "slow_reader" not in d.log()


@test
def test_pipelining_thousands_without_reading_stalls_nobody():
	d = Daemon()
	c = client(d, rcvbuf=4096)
	n = 5000
	c.sock.setblocking(False)
	data = b"".join(b'{"type":"ping","ref":%d}\n' % i for i in range(n))
	sent = 0
	deadline = time.monotonic() + 10
	while sent < len(data) and time.monotonic() < deadline:
		try:
			sent += c.sock.send(data[sent:sent + 16384])
		except (ssl.SSLWantWriteError, ssl.SSLWantReadError,
		    BlockingIOError):
			# Everyone else is served meanwhile.
			assert_alive(Client(d))
			time.sleep(0.05)
	c.sock.setblocking(True)
	other = Client(d)
	assert_alive(other)
	# Now it reads: every pong arrives, in order.
	for i in range(n):
		if sent <= 0:
			break
		r = c.recv(timeout=30)
		assert r == {"type": "pong", "ref": i}, r
	assert_alive(c)


@test
def test_a_half_closed_peer_gets_every_answer():
	d = Daemon()
	s = harness.raw_connect(d)
	ctx = harness.client_context()
	t = ctx.wrap_socket(s, server_hostname="localhost")
	lines = b"".join(b'{"type":"echo","content":"n%d","ref":%d}\n' %
	    (i, i) for i in range(300))
	t.sendall(lines)
	# Our side is done: TCP half-close, without close_notify.
	raw = socket.socket(fileno=os.dup(t.fileno()))
	raw.shutdown(socket.SHUT_WR)
	raw.close()
	got = b""
	deadline = time.monotonic() + 15
	t.settimeout(15)
	while time.monotonic() < deadline:
		try:
			data = t.recv(65536)
		except (ssl.SSLError, OSError):
			break
		if not data:
			break
		got += data
	replies = [json.loads(x) for x in got.split(b"\n")[1:] if x]
	assert [r.get("ref") for r in replies] == list(range(300)), \
	    "got %d replies" % len(replies)
	t.close()


@test
def test_close_notify_in_the_middle_of_a_line():
	d = Daemon()
	c = Client(d)
	c.send_raw(b'{"type":"echo","content":"half')
	c.sock.unwrap()		# close_notify, the line never ends
	c.sock.close()
	# The daemon drops the half line and carries on.
	other = Client(d)
	assert_alive(other)
	assert d.running()


@test
def test_a_tls_alert_in_the_middle_of_a_line():
	d = Daemon()
	c = Client(d)
	c.send_raw(b'{"type":"echo","content":"half')
	# A fatal alert record (decode_error) written straight to TCP.
	raw = socket.socket(fileno=os.dup(c.sock.fileno()))
	raw.sendall(b"\x15\x03\x03\x00\x02\x02\x32")
	raw.close()
	c.expect_closed(timeout=GONE_WITHIN)
	other = Client(d)
	assert_alive(other)


@test
def test_requests_split_one_record_per_byte():
	d = Daemon()
	c = Client(d)
	# Every byte its own TLS record, multi-byte UTF-8 split inside.
	content = "h\u00e9llo \u20ac \U0001F600 \u4e16\u754c"
	line = json.dumps({"type": "echo", "content": content, "ref": "r"},
	    ensure_ascii=False).encode() + b"\n"
	for b in line:
		c.send_raw(bytes([b]))
	r = c.recv(timeout=10)
	assert r == {"type": "ok", "ref": "r", "content": content}, r
	# And a register, byte by byte, works as well.
	reg = b'{"type":"register","user":"bytewise","password":"p4ssw0rd!"}\n'
	for b in reg:
		c.send_raw(bytes([b]))
	assert_ok(c.recv(timeout=10), user="bytewise")


@test
def test_a_flood_into_a_non_reading_session_never_hangs_the_loop():
	# One user, two sessions: one stops reading, the other floods what
	# reaches it (room messages, presence), many lines at a time, so both
	# sit on the end-of-pass lists together.  This hung the loop once.
	d = Daemon(limits={"messages_per_second": 1000000.0,
	    "message_burst": 1000000, "output_buffer": 65536})
	a = user(d, "mallory")
	join(a, "#den")
	a.close()
	b = session(d, "mallory")
	sleeper = client(d, rcvbuf=4096)
	sleeper.login("mallory", PASSWORD)
	sleeper.sock.setblocking(False)
	# The flooder reads its replies (a non-reading flooder is simply
	# not served further); what it sends reaches the sleeper.  Each
	# round the sleeper pipelines pings right behind the flood, so that
	# both have input left for the end of the pass, in that order.
	pad = b"x" * 3000
	for k in range(20):
		b.send_raw(b"".join((b'{"type":"presence","status":"away",'
		    b'"text":"%d"}\n{"type":"message","to":"#den",'
		    b'"content":"%d %s"}\n') % (i, i, pad)
		    for i in range(k * 100, k * 100 + 100)))
		try:
			sleeper.sock.send(b"".join(
			    b'{"type":"ping","ref":%d}\n' % i
			    for i in range(k * 100, k * 100 + 100)))
		except (ssl.SSLError, OSError):
			pass	# cut off already, or its window is full
		got = 0
		while got < 200:
			r = b.recv(timeout=20)
			if "ref" in r or r.get("type") in ("ok", "error"):
				got += 1
		# The loop still answers everyone else, and the admin channel.
		if k % 5 == 0:
			assert_alive(Client(d))
			r = d.ctl("stats", json_output=True, timeout=10)
			assert r.returncode == 0 and r.json is not None, r.stderr
	assert d.running()
	# The sleeper was cut off (it did not read), the flooder was not.
	d.wait_log(r"event=slow_reader", timeout=15)
	assert_alive(b)


if __name__ == "__main__":
	harness.run()
