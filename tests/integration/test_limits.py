# test_limits: connection admission, handshake and idle timeouts, and
# running out of file descriptors.

import resource
import socket
import time

import harness
from harness import Client, Daemon, test


def assert_alive(c):
	r = c.request({"type": "ping", "ref": "alive"})
	assert r == {"type": "pong", "ref": "alive"}, r


def raw_closed_by_server(sock, timeout):
	"""Wait until the server closes a raw TCP connection; True if it did
	within timeout (anything it sends first is read and discarded)."""
	deadline = time.monotonic() + timeout
	while True:
		left = deadline - time.monotonic()
		if left <= 0:
			return False
		sock.settimeout(left)
		try:
			data = sock.recv(4096)
		except socket.timeout:
			return False
		except (ConnectionResetError, BrokenPipeError):
			return True
		if not data:
			return True


def check_admission_limit(d, allowed):
	"""allowed clients get in, the next is refused, and once one leaves
	a new one gets in."""
	clients = [Client(d) for _ in range(allowed)]
	for c in clients:
		assert_alive(c)
	for _ in range(3):
		assert harness.connect_refused(d), \
		    "connection %d was admitted" % (allowed + 1)
	# The admitted ones are unaffected.
	for c in clients:
		assert_alive(c)
	clients[0].close()
	# The daemon notices the close asynchronously: retry (bounded).
	c = harness.retry(lambda: Client(d), timeout=10, interval=0.1)
	assert_alive(c)
	assert d.running()


@test
def test_connections_past_max_per_ip_are_closed_without_welcome():
	d = Daemon(limits={"max_per_ip": 2, "max_connections": 100})
	check_admission_limit(d, 2)


@test
def test_connections_past_max_connections_are_closed_without_welcome():
	d = Daemon(limits={"max_connections": 3, "max_per_ip": 100})
	check_admission_limit(d, 3)


@test
def test_refused_connection_gets_no_tls_at_all():
	# Closed "before any TLS work": not even a ServerHello comes back.
	d = Daemon(limits={"max_per_ip": 1})
	c = Client(d)
	s = harness.raw_connect(d)
	# A TLS 1.2 ClientHello prefix is enough to make a server answer.
	s.sendall(bytes.fromhex("160301"))
	s.settimeout(10)
	try:
		data = s.recv(4096)
	except ConnectionResetError:
		data = b""
	assert data == b"", "refused connection got %r" % data[:32]
	assert_alive(c)


@test
def test_handshake_timeout_closes_raw_tcp_connection():
	d = Daemon(limits={"handshake_timeout": 1})
	s = harness.raw_connect(d)
	assert raw_closed_by_server(s, 10), \
	    "a connection that never started TLS is still open after 10 s"
	# And one that started the handshake but never finished it.
	s = harness.raw_connect(d)
	s.sendall(bytes.fromhex("16030100"))
	assert raw_closed_by_server(s, 10), \
	    "a half-sent ClientHello is still open after 10 s"
	assert d.running()
	assert_alive(Client(d))


@test
def test_handshake_timeout_does_not_apply_after_the_handshake():
	d = Daemon(limits={"handshake_timeout": 1, "idle_timeout": 300})
	c = Client(d)
	# Keep talking for three handshake timeouts.
	for _ in range(10):
		assert_alive(c)
		time.sleep(0.3)
	assert_alive(c)


@test
def test_idle_timeout_closes_silent_session_but_not_a_pinging_one():
	# 2 s, not 1: a ping every 0.3 s then leaves 1.7 s of slack for a
	# loaded (sanitizer) run before the busy session would look idle.
	d = Daemon(limits={"idle_timeout": 2})
	silent = Client(d)
	busy = Client(d)
	for _ in range(20):		# 6 s, three idle timeouts
		assert_alive(busy)
		time.sleep(0.3)
	assert_alive(busy)
	silent.expect_closed(10)
	assert d.running()


def count_descriptor_lines(d):
	"""Lines of the current process's log (after READY=1) that mention
	descriptors."""
	return [l for l in d.log_since_ready().splitlines()
	    if "descriptor" in l]


def low_nofile():
	resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


def exhaust_descriptors():
	"""
	A daemon limited to 64 descriptors and 80 raw TCP connections to it:
	it accepts what it can, the rest wait in the listen queue.  Returns
	(daemon, sockets) once the daemon has logged running out, and has held
	that state over several of its accept retries.
	"""
	d = Daemon(preexec=low_nofile,
	    limits={"max_connections": 10000, "max_per_ip": 10000,
		"handshake_timeout": 300})
	socks = []
	harness.on_cleanup(lambda: [s.close() for s in socks])
	for _ in range(80):
		socks.append(socket.create_connection((d.address, d.port),
		    timeout=10))
	d.wait_log(r"descriptor", timeout=10, since=d.log_ready_offset)
	# Several retries (not a bound on their pace): one line, not one per
	# attempt.
	time.sleep(2)
	assert d.running(), "netsockd died out of descriptors"
	lines = descriptor_lines(d)
	assert len(lines) == 1, "logged %d times while exhausted:\n%s" % (
	    len(lines), "\n".join(lines))
	return d, socks


def descriptor_lines(d):
	"""Lines of the current process's log (after READY=1) that mention
	descriptors."""
	return [l for l in d.log_since_ready().splitlines()
	    if "descriptor" in l]


def close_all_and_reconnect(d, socks):
	for s in socks:
		s.close()
	socks.clear()
	# Accepting resumes once descriptors are free again.
	c = harness.retry(lambda: Client(d), timeout=20, interval=0.2)
	assert_alive(c)
	assert d.running()


@test
def test_running_out_of_descriptors_is_logged_once_and_survived():
	d, socks = exhaust_descriptors()
	close_all_and_reconnect(d, socks)


@test
def test_descriptor_exhaustion_with_churn_at_the_limit_is_one_episode():
	d, socks = exhaust_descriptors()
	# One connection ends: the daemon takes a waiting one in its place
	# and is out of descriptors again.  It never got out of the episode,
	# so it must not log it again (under an attack at the limit that
	# would be a line or two per closed connection).
	socks.pop(0).close()
	time.sleep(1.5)
	lines = descriptor_lines(d)
	assert len(lines) == 1, "logged %d times after one connection was " \
	    "replaced by a waiting one:\n%s" % (len(lines), "\n".join(lines))
	close_all_and_reconnect(d, socks)
	lines = descriptor_lines(d)
	assert len(lines) == 1, "one exhaustion episode logged %d times:\n%s" \
	    % (len(lines), "\n".join(lines))


if __name__ == "__main__":
	raise SystemExit(harness.run())
