# test_tls: protocol versions, cipher suites and certificate the daemon
# offers.

import socket
import ssl
import subprocess
import threading

import harness
from harness import Client, Daemon, client_context, test

TLS12 = ssl.TLSVersion.TLSv1_2
TLS13 = ssl.TLSVersion.TLSv1_3
TLS11 = ssl.TLSVersion.TLSv1_1

# Reasons for which the handshake failed on our side before the server
# could say anything: the test would prove nothing.
CLIENT_SIDE = ("NO_PROTOCOLS_AVAILABLE", "NO_CIPHERS_AVAILABLE",
    "NO_CIPHER_MATCH", "NO_SUITABLE_SIGNATURE_ALGORITHM")


def assert_alive(c):
	r = c.request({"type": "ping", "ref": "alive"})
	assert r == {"type": "pong", "ref": "alive"}, r


def handshake_refused(d, ctx):
	"""
	True if the server refuses a handshake from ctx (alert, EOF or reset);
	False if it completes and a welcome arrives.  Fails the test if the
	client itself could not offer what ctx asks for.
	"""
	try:
		c = Client(d, context=ctx)
	except ssl.SSLError as e:
		assert e.reason not in CLIENT_SIDE, \
		    "the client could not even offer it: %s" % e
		return True
	except (ConnectionResetError, BrokenPipeError, harness.ConnectionClosed):
		return True
	c.close()
	return False


def tls12_with(suite):
	"""A TLS 1.2-only client context offering exactly one suite."""
	ctx = client_context(TLS12, ciphers=suite + ":@SECLEVEL=0")
	offered = [c["name"] for c in ctx.get_ciphers()
	    if c["protocol"] != "TLSv1.3"]
	assert offered == [suite], "cannot offer only %s: %r" % (suite, offered)
	return ctx


def local_handshake(server_ctx, client_ctx):
	"""Handshake the two contexts over a socketpair: the negotiated
	version, or None if it fails.  Shows what this Python can offer."""
	a, b = socket.socketpair()
	a.settimeout(10)
	b.settimeout(10)
	result = {}

	def serve():
		try:
			s = server_ctx.wrap_socket(a, server_side=True)
			result["server"] = s.version()
			s.close()
		except (OSError, ssl.SSLError) as e:
			result["server_error"] = e
			a.close()

	t = threading.Thread(target=serve)
	t.start()
	try:
		s = client_ctx.wrap_socket(b, server_hostname="localhost")
		version = s.version()
		s.close()
	except (OSError, ssl.SSLError):
		version = None
		b.close()
	t.join(15)
	return version


def python_offers_tls11(cert, key):
	server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
	server.minimum_version = server.maximum_version = TLS11
	server.set_ciphers("DEFAULT:@SECLEVEL=0")
	server.load_cert_chain(cert, key)
	client = client_context(TLS11, ciphers="DEFAULT:@SECLEVEL=0")
	return local_handshake(server, client) == "TLSv1.1"


# ------------------------------------------------------------ versions


@test
def test_tls13_is_negotiated_by_a_default_client():
	c = Client(Daemon())
	assert c.version() == "TLSv1.3", c.version()
	assert_alive(c)


@test
def test_tls13_only_client_is_accepted():
	c = Client(Daemon(), tls_version=TLS13)
	assert c.version() == "TLSv1.3", c.version()
	assert c.cipher()[0] in ("TLS_AES_128_GCM_SHA256",
	    "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"), \
	    c.cipher()
	assert_alive(c)


@test
def test_tls12_client_is_accepted_with_ecdhe_and_aead():
	c = Client(Daemon(), tls_version=TLS12)
	assert c.version() == "TLSv1.2", c.version()
	name = c.cipher()[0]
	assert name.startswith("ECDHE-"), name
	assert "-GCM-" in name or name.endswith("-CHACHA20-POLY1305"), name
	assert_alive(c)


@test
def test_tls11_is_refused():
	d = Daemon()
	if python_offers_tls11(d.cert, d.key):
		harness.diag("TLS 1.1 offered by Python's ssl (%s)" %
		    ssl.OPENSSL_VERSION)
		ctx = client_context(TLS11, ciphers="DEFAULT:@SECLEVEL=0")
		assert handshake_refused(d, ctx), "TLS 1.1 was accepted"
		assert_alive(Client(d))
		return
	harness.diag("Python cannot offer TLS 1.1; using openssl s_client")
	r = subprocess.run(["openssl", "s_client", "-connect",
	    "%s:%d" % (d.address, d.port), "-tls1_1",
	    "-cipher", "DEFAULT@SECLEVEL=0", "-servername", "localhost"],
	    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
	    stderr=subprocess.STDOUT, timeout=30)
	out = r.stdout.decode(errors="replace")
	assert "no protocols available" not in out, \
	    "s_client cannot offer TLS 1.1 either:\n" + out
	assert "CONNECTED" in out, out
	assert r.returncode != 0, "TLS 1.1 handshake succeeded:\n" + out
	assert "welcome" not in out, out
	assert_alive(Client(d))


# ------------------------------------------------------------ cipher suites


def check_suites(d, refused, accepted):
	for suite in refused:
		assert handshake_refused(d, tls12_with(suite)), \
		    "TLS 1.2 suite %s was accepted" % suite
	for suite in accepted:
		c = Client(d, context=tls12_with(suite))
		assert c.cipher()[0] == suite, c.cipher()
		assert_alive(c)
		c.close()
	assert_alive(Client(d))


@test
def test_tls12_cbc_and_static_key_suites_are_refused_ec_certificate():
	check_suites(Daemon(),
	    refused=("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA",
		"ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA384",
		"AES128-GCM-SHA256", "AES256-GCM-SHA384"),
	    accepted=("ECDHE-ECDSA-AES128-GCM-SHA256",
		"ECDHE-ECDSA-AES256-GCM-SHA384"))


@test
def test_tls12_cbc_and_static_key_suites_are_refused_rsa_certificate():
	# With an RSA key, static-RSA key exchange is possible at all: this is
	# the case where refusing AES128-GCM-SHA256 is the server's choice.
	check_suites(Daemon(key_type="rsa"),
	    refused=("AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA",
		"AES256-SHA256", "ECDHE-RSA-AES128-SHA",
		"ECDHE-RSA-AES256-SHA384"),
	    accepted=("ECDHE-RSA-AES128-GCM-SHA256",
		"ECDHE-RSA-AES256-GCM-SHA384"))


@test
def test_tls_compression_is_off():
	d = Daemon()
	for version in (TLS12, TLS13):
		c = Client(d, tls_version=version)
		assert c.sock.compression() is None, c.sock.compression()
		c.close()


# ------------------------------------------------------------ certificate


@test
def test_client_sees_the_configured_certificate():
	d = Daemon()
	c = Client(d)
	assert c.cert_fingerprint() == harness.fingerprint(d.cert)
	# It verifies as localhost against itself.
	v = Client(d, verify=True)
	assert v.cert_fingerprint() == harness.fingerprint(d.cert)
	assert_alive(v)


@test
def test_plaintext_on_the_tls_port_is_closed_and_daemon_survives():
	d = Daemon()
	s = harness.raw_connect(d)
	s.sendall(b'{"type":"ping","ref":1}\n')
	s.settimeout(10)
	got = b""
	try:
		while True:
			data = s.recv(4096)
			if not data:
				break
			got += data
	except ConnectionResetError:
		pass
	assert b"pong" not in got and b"welcome" not in got, got
	assert d.running()
	assert_alive(Client(d))


if __name__ == "__main__":
	raise SystemExit(harness.run())
