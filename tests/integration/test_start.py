# test_start: command line, configuration checking and start-up of netsockd.

import os
import re
import socket
import stat
import subprocess

import harness
from harness import Client, Daemon, test

VERSION_RE = re.compile(r"^netsockd (\d+\.\d+\.\d+)\n$")
FP_LOG_RE = re.compile(r"sha256 Fingerprint=([0-9A-F]{2}(?::[0-9A-F]{2}){31})")
LOG_LINE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z "
    r"(debug|info|notice|warning|error|crit|alert|emerg): \S")


def openssl(*args):
	r = subprocess.run(["openssl"] + list(args), stdin=subprocess.DEVNULL,
	    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
	assert r.returncode == 0, r.stdout
	return r.stdout.decode()


# ------------------------------------------------------------ options


@test
def test_version_prints_name_and_version_and_exits_0():
	r = harness.run_netsockd(["--version"])
	assert r.returncode == 0, r
	assert VERSION_RE.match(r.stdout), "stdout %r" % r.stdout
	assert r.stderr == "", "stderr %r" % r.stderr


@test
def test_help_prints_usage_on_stdout_and_exits_0():
	r = harness.run_netsockd(["--help"])
	assert r.returncode == 0, r
	assert "usage" in r.stdout.lower(), "stdout %r" % r.stdout
	for opt in ("-c", "-t", "--daemon", "--pidfile", "--version"):
		assert opt in r.stdout, "usage lacks %s: %r" % (opt, r.stdout)
	assert r.stderr == "", "stderr %r" % r.stderr


@test
def test_unknown_option_prints_usage_on_stderr_and_exits_2():
	r = harness.run_netsockd(["--no-such-option"])
	assert r.returncode == 2, r
	assert "usage" in r.stderr.lower(), "stderr %r" % r.stderr
	assert r.stdout == "", "stdout %r" % r.stdout


@test
def test_check_mode_accepts_a_valid_configuration():
	d = Daemon(start=False)
	r = harness.run_netsockd(["-t", "-c", d.config_path])
	assert r.returncode == 0, r
	assert r.stdout == "netsockd: configuration file %s is valid\n" % \
	    d.config_path, "stdout %r" % r.stdout
	# -t only checks: nothing listens on the configured port.
	assert harness.connect_refused(d), "-t started a listener"


# ------------------------------------------------------------ bad configs

# (name, Daemon options, text on the offending line, setting as a regex or
# None for a syntax error)
BAD_CONFIGS = [
	("wrong_type", dict(limits={"max_line": "big"}),
	    'max_line = "big";', r"limits\.max_line"),
	("unknown_log_level", dict(log_level="loud"),
	    'level = "loud";', r"log\.level"),
	("port_zero", dict(port=0), "port = 0;", r"listen\S*port"),
	("port_65536", dict(port=65536), "port = 65536;", r"listen\S*port"),
	("missing_certificate", dict(certificate="MISSING"),
	    "certificate =", r"tls\.certificate"),
	("syntax_error", dict(extra="limits2 = ;"), "limits2 = ;", None),
	("unknown_setting", dict(limits={"max_lines": 5}),
	    "max_lines = 5;", r"limits\.max_lines"),
]


def bad_config(opts):
	"""A prepared Daemon whose config file is bad; (daemon, text)."""
	opts = dict(opts)
	if opts.get("certificate") == "MISSING":
		cert, key = harness.make_cert(harness.tmpdir())
		opts["certificate"] = os.path.join(os.path.dirname(cert),
		    "no-such-cert.pem")
		opts["key"] = key
	d = Daemon(start=False, **opts)
	with open(d.config_path) as f:
		return d, f.read()


def reason_re(path, line, setting):
	if setting is None:
		return re.compile(re.escape(path) + ":%d: \\S.*" % line)
	return re.compile(re.escape(path) + ":%d: %s: \\S.*" % (line, setting))


def make_check_test(name, opts, needle, setting):
	def fn():
		d, text = bad_config(opts)
		line = harness.line_of(text, needle)
		r = harness.run_netsockd(["-t", "-c", d.config_path])
		assert r.returncode == 1, r
		assert r.stdout == "", "stdout %r" % r.stdout
		lines = r.stderr.splitlines()
		assert len(lines) == 1, "want one line on stderr, got %r" % \
		    r.stderr
		rx = reason_re(d.config_path, line, setting)
		assert rx.fullmatch(lines[0]), \
		    "stderr %r does not match %r" % (lines[0], rx.pattern)
	fn.__name__ = "test_check_mode_rejects_" + name + "_naming_file_line_setting"
	return fn


def make_start_test(name, opts, needle, setting):
	def fn():
		d, text = bad_config(opts)
		line = harness.line_of(text, needle)
		r = harness.run_netsockd(["-c", d.config_path],
		    env={"NOTIFY_SOCKET": d.notify_path})
		assert r.returncode == 1, r
		out = r.stdout + r.stderr
		rx = reason_re(d.config_path, line, setting)
		assert rx.search(out), "output %r does not contain %r" % \
		    (out, rx.pattern)
		# It never claimed to be ready.
		notes = d.notifications()
		assert not any("READY=1" in n.splitlines() for n in notes), \
		    notes
	fn.__name__ = "test_start_with_" + name + "_exits_1_with_reason"
	return fn


for _case in BAD_CONFIGS:
	test(make_check_test(*_case))
for _case in BAD_CONFIGS:
	test(make_start_test(*_case))


# ------------------------------------------------------------ start-up


@test
def test_ready_means_listening_and_welcome_is_sent():
	d = Daemon()
	notes = d.notifications()
	assert any("READY=1" in n.splitlines() for n in notes), notes
	# No retry: READY=1 promises that the listener accepts now.
	c = Client(d)
	assert c.welcome["type"] == "welcome"
	assert c.request({"type": "ping"})["type"] == "pong"
	c.close()
	assert d.stop() == 0


@test
def test_log_lines_carry_utc_timestamp_and_level():
	d = Daemon()
	Client(d).close()
	assert d.stop() == 0
	lines = d.log().splitlines()
	assert lines, "the daemon logged nothing at level debug"
	if harness.VALGRIND:
		lines = [l for l in lines if not l.startswith("==")]
	bad = [l for l in lines if not LOG_LINE_RE.match(l)]
	assert not bad, "log lines not of the form TS level: text: %r" % bad[:5]


def check_default_state(d, state):
	"""The built-in-defaults daemon d keeps its state in state."""
	cert = os.path.join(state, "cert.pem")
	key = os.path.join(state, "key.pem")
	assert os.path.isfile(cert), os.listdir(state)
	assert os.path.isfile(key), os.listdir(state)
	mode = stat.S_IMODE(os.stat(key).st_mode)
	assert mode == 0o600, "key.pem mode %o" % mode
	names = os.listdir(state)
	socks = [n for n in names
	    if stat.S_ISSOCK(os.stat(os.path.join(state, n)).st_mode)]
	assert socks, "no admin socket in %s: %r" % (state, names)
	dbs = []
	for n in names:
		p = os.path.join(state, n)
		if os.path.isfile(p):
			with open(p, "rb") as f:
				if f.read(16) == b"SQLite format 3\0":
					dbs.append(n)
	assert dbs, "no SQLite database in %s: %r" % (state, names)

	# The fingerprint is logged as openssl x509 -fingerprint prints it,
	# and it is the one a client sees.
	c = Client(d)
	seen = c.cert_fingerprint()
	assert seen == harness.fingerprint(cert), (seen, cert)
	printed = openssl("x509", "-noout", "-fingerprint", "-sha256",
	    "-in", cert).strip()
	assert printed == "sha256 Fingerprint=" + seen, printed
	assert printed in d.log(), "log lacks %r" % printed
	m = FP_LOG_RE.findall(d.log())
	assert m and m[-1] == seen, (m, seen)

	san = openssl("x509", "-noout", "-ext", "subjectAltName", "-in", cert)
	assert "DNS:localhost" in san, san
	assert "IP Address:127.0.0.1" in san, san
	text = openssl("x509", "-noout", "-text", "-in", cert)
	assert ("prime256v1" in text or "P-256" in text or
	    "ED25519" in text), "key is neither EC P-256 nor Ed25519:\n" + text
	assert c.request({"type": "ping"})["type"] == "pong"
	c.close()
	return cert, seen


def require_port_7443_free():
	"""The built-in default port must be ours for these tests; say so
	plainly when something else holds it."""
	s = socket.socket()
	try:
		s.settimeout(5)
		if s.connect_ex(("127.0.0.1", 7443)) == 0:
			raise AssertionError("something else already listens on "
			    "127.0.0.1:7443, the built-in default port this "
			    "test needs")
	finally:
		s.close()


@test
def test_builtin_defaults_listen_on_7443_with_generated_certificate():
	require_port_7443_free()
	d = Daemon(config=None)
	assert (d.address, d.port) == ("127.0.0.1", 7443)
	cert, fp = check_default_state(d, d.state_dir)
	with open(cert, "rb") as f:
		pem = f.read()

	# A second start reuses the certificate.
	d.restart()
	with open(cert, "rb") as f:
		assert f.read() == pem, "cert.pem was regenerated"
	c = Client(d)
	assert c.cert_fingerprint() == fp
	c.close()
	assert d.stop() == 0


@test
def test_builtin_defaults_without_state_directory_use_cwd_netsockd_state():
	require_port_7443_free()
	d = Daemon(config=None, env={"STATE_DIRECTORY": None})
	assert d.state_dir == os.path.join(d.dir, "netsockd-state")
	check_default_state(d, d.state_dir)
	assert d.stop() == 0


@test
def test_configured_motd_and_registration_appear_in_welcome():
	d = Daemon(motd="Welcome to the \"test\" server", registration=False)
	w = Client(d).welcome
	assert w["motd"] == "Welcome to the \"test\" server", w
	assert w["registration"] is False, w


if __name__ == "__main__":
	raise SystemExit(harness.run())
