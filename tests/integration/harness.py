# harness: start the real netsockd, talk to it over TLS, print TAP.
#
# Every test gets its own daemon in its own temporary directory (a generated
# configuration, a throwaway certificate, a free port) and waits for the
# daemon's READY=1 on a notify socket instead of sleeping.  Tests are plain
# functions registered with @test; run() prints one TAP line per test, with
# the traceback and the daemon's log as "#" lines when one fails, and always
# stops every daemon and removes every temporary directory.
#
# Environment:
#   NETSOCKD                  absolute path of the daemon (set by make check)
#   NETSOCK_SRCDIR            source tree root
#   NETSOCKCTL                netsockctl binary (default: next to NETSOCKD)
#   NETSOCKD_TEST_VALGRIND=1  run the daemon under valgrind
#   NETSOCKD_TEST_EXTERNAL=host:port
#                             talk to a daemon you started yourself (in a
#                             debugger, say); tests that need their own
#                             configuration or process are skipped
#   NETSOCK_KEEP_TMP=1        keep temporary directories (for post-mortems)
#
# Standard library only.

import json
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
import warnings

# TLS 1.1 is deprecated in Python's ssl module; the TLS tests use it on
# purpose, to check that the server refuses it.
warnings.filterwarnings("ignore", category=DeprecationWarning)

SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
FP_RE = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){31}$")

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
TEST_TIMEOUT = 180		# safety net per test; every wait has its own
LOG_TAIL_LINES = 400		# of each daemon log printed on failure

VALGRIND = os.environ.get("NETSOCKD_TEST_VALGRIND") == "1"
EXTERNAL = os.environ.get("NETSOCKD_TEST_EXTERNAL")
if VALGRIND:
	READY_TIMEOUT *= 5
	STOP_TIMEOUT *= 3


class Skip(Exception):
	"""Raised by a test (or the harness) to report the test as skipped."""


class ConnectionClosed(Exception):
	"""The server closed the connection; .kind says how."""

	def __init__(self, kind, detail=""):
		super().__init__("connection closed (%s)%s" %
		    (kind, ": " + detail if detail else ""))
		self.kind = kind


class TestTimeout(Exception):
	pass


# ------------------------------------------------------------ paths


def netsockd_path():
	path = os.environ.get("NETSOCKD")
	if not path:
		here = os.path.dirname(os.path.abspath(__file__))
		top = os.path.dirname(os.path.dirname(here))
		for cand in (os.path.join(top, "src", "netsockd"),
		    os.path.join(top, "build", "src", "netsockd")):
			if os.access(cand, os.X_OK):
				return cand
		return os.path.join(top, "src", "netsockd")
	return path


def netsockctl_path():
	return os.environ.get("NETSOCKCTL") or os.path.join(
	    os.path.dirname(netsockd_path()), "netsockctl")


def srcdir():
	return os.environ.get("NETSOCK_SRCDIR") or os.path.dirname(
	    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# ------------------------------------------------------------ per-test state

# Things to clean up after the current test, in creation order: objects
# with teardown() -> list of problems, remove(), and describe() -> lines.
_resources = []
_cleanups = []


def on_cleanup(fn):
	"""Call fn() after the current test, whatever happened."""
	_cleanups.append(fn)


def _track(obj):
	_resources.append(obj)
	return obj


def tmpdir(prefix="netsock-"):
	"""A fresh temporary directory removed after the current test."""
	return _track(_TempDir(prefix)).path


def _mkdtemp(prefix):
	# Unix socket paths must stay under 108 bytes: prefer a short base.
	base = tempfile.gettempdir()
	if len(base) > 40:
		base = "/tmp"
	return tempfile.mkdtemp(prefix=prefix, dir=base)


class _TempDir:
	def __init__(self, prefix):
		self.path = _mkdtemp(prefix)

	def teardown(self):
		return []

	def describe(self):
		return []

	def remove(self):
		if os.environ.get("NETSOCK_KEEP_TMP") != "1":
			shutil.rmtree(self.path, ignore_errors=True)


# ------------------------------------------------------------ certificates


def make_cert(dir, cn="localhost", key_type="ec", name="server"):
	"""
	Make a throwaway self-signed certificate and key in dir with the
	openssl CLI: EC P-256 (key_type "ec") or RSA 2048 ("rsa"), CN=cn,
	subjectAltName DNS:localhost, IP:127.0.0.1.  Returns (cert, key).
	"""
	cert = os.path.join(dir, name + ".crt")
	key = os.path.join(dir, name + ".key")
	if key_type == "ec":
		newkey = ["-newkey", "ec", "-pkeyopt",
		    "ec_paramgen_curve:P-256"]
	elif key_type == "rsa":
		newkey = ["-newkey", "rsa:2048"]
	else:
		raise ValueError("key_type " + key_type)
	cmd = ["openssl", "req", "-x509", "-nodes", "-sha256", "-days", "30",
	    "-subj", "/CN=" + cn,
	    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
	    "-keyout", key, "-out", cert] + newkey
	r = subprocess.run(cmd, stdin=subprocess.DEVNULL,
	    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
	if r.returncode != 0:
		raise RuntimeError("openssl req failed: " +
		    r.stdout.decode(errors="replace"))
	os.chmod(key, 0o600)
	return cert, key


def fingerprint(cert):
	"""
	SHA-256 fingerprint "AA:BB:..." of a certificate given as DER bytes,
	PEM text (str or bytes) or the path of a PEM file.
	"""
	import hashlib

	if isinstance(cert, str) and "-----BEGIN" not in cert:
		with open(cert, "rb") as f:
			cert = f.read()
	if isinstance(cert, bytes) and b"-----BEGIN" in cert:
		cert = cert.decode("ascii")
	if isinstance(cert, str):
		cert = ssl.PEM_cert_to_DER_cert(cert)
	digest = hashlib.sha256(cert).hexdigest().upper()
	return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


# ------------------------------------------------------------ configuration


def free_port():
	"""A TCP port on 127.0.0.1 that was free a moment ago."""
	s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
	try:
		s.bind(("127.0.0.1", 0))
		return s.getsockname()[1]
	finally:
		s.close()


def conf_value(v):
	"""A Python value in libconfig syntax."""
	if isinstance(v, bool):
		return "true" if v else "false"
	if isinstance(v, int):
		return str(v)
	if isinstance(v, float):
		return repr(v) if ("." in repr(v) or "e" in repr(v)) \
		    else repr(v) + ".0"
	if isinstance(v, str):
		return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
	raise TypeError("no libconfig form for %r" % (v,))


def config_text(port, cert, key, database, admin_socket, address="127.0.0.1",
    log_level="debug", scrypt_n=1024, limits=None, registration=None,
    allow_create=None, motd=None, extra=""):
	"""
	A configuration file, one setting per line so that tests can name the
	line a setting is on (see line_of()).
	"""
	lines = [
	    "# netsockd configuration generated by tests/integration/harness.py",
	    "listen = (",
	    "  { address = %s; port = %s; }" % (conf_value(address),
		conf_value(port)),
	    ");",
	    "tls = {",
	    "  certificate = %s;" % conf_value(cert),
	    "  key = %s;" % conf_value(key),
	    "};",
	    "database = %s;" % conf_value(database),
	    "admin = {",
	    "  socket = %s;" % conf_value(admin_socket),
	    "};",
	    "log = {",
	    "  level = %s;" % conf_value(log_level),
	    "};",
	    "auth = {",
	    "  scrypt_n = %s;" % conf_value(scrypt_n),
	    "};",
	]
	if registration is not None:
		lines.append("registration = %s;" % conf_value(registration))
	if allow_create is not None:
		lines += ["rooms = {",
		    "  allow_create = %s;" % conf_value(allow_create), "};"]
	if motd is not None:
		lines.append("motd = %s;" % conf_value(motd))
	if limits:
		lines.append("limits = {")
		for k, v in limits.items():
			lines.append("  %s = %s;" % (k, conf_value(v)))
		lines.append("};")
	text = "\n".join(lines) + "\n"
	if extra:
		text += extra if extra.endswith("\n") else extra + "\n"
	return text


def line_of(text, needle):
	"""1-based number of the first line of text containing needle."""
	for i, line in enumerate(text.splitlines(), 1):
		if needle in line:
			return i
	raise ValueError("%r not in configuration" % needle)


# ------------------------------------------------------------ processes


def _daemon_env(extra=None):
	env = dict(os.environ)
	# Nothing of a surrounding systemd unit or shell may leak into the
	# daemon: it would log to the journal or notify the wrong socket.
	for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID",
	    "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "JOURNAL_STREAM",
	    "STATE_DIRECTORY", "RUNTIME_DIRECTORY", "INVOCATION_ID"):
		env.pop(k, None)
	for k, v in (extra or {}).items():
		if v is None:
			env.pop(k, None)
		else:
			env[k] = str(v)
	return env


def _argv0():
	if VALGRIND:
		return ["valgrind", "-q", "--error-exitcode=88",
		    "--leak-check=full", "--errors-for-leak-kinds=definite",
		    netsockd_path()]
	return [netsockd_path()]


def sanitizer_problems(text):
	return ["sanitizer report (%s) in the daemon's output" % m
	    for m in SANITIZER_MARKS if m in text]


def run_netsockd(args, timeout=30, env=None, cwd=None, preexec=None):
	"""
	Run netsockd with args to completion (for --version, -t, a start that
	must fail).  Returns a CompletedProcess with str stdout and stderr.
	Raises if it does not finish within timeout or if a sanitizer
	reported anything.
	"""
	if EXTERNAL:
		raise Skip("NETSOCKD_TEST_EXTERNAL: cannot run netsockd here")
	r = subprocess.run(_argv0() + list(args), stdin=subprocess.DEVNULL,
	    stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
	    env=_daemon_env(env), cwd=cwd or tmpdir(), preexec_fn=preexec)
	r.stdout = r.stdout.decode("utf-8", "replace")
	r.stderr = r.stderr.decode("utf-8", "replace")
	probs = sanitizer_problems(r.stdout + r.stderr)
	if probs:
		raise AssertionError("; ".join(probs) + "\nstdout:\n" +
		    r.stdout + "\nstderr:\n" + r.stderr)
	return r


def pid_alive(pid):
	"""True if pid exists and is not a zombie."""
	try:
		with open("/proc/%d/stat" % pid) as f:
			stat = f.read()
	except OSError:
		return False
	return stat.rsplit(")", 1)[1].split()[0] != "Z"


def pid_is_netsockd(pid):
	try:
		with open("/proc/%d/cmdline" % pid, "rb") as f:
			return b"netsockd" in f.read()
	except OSError:
		return False


def terminate_pid(pid, timeout=STOP_TIMEOUT):
	"""
	End a netsockd that is not our child (a --daemon one): SIGTERM, wait,
	SIGKILL.  Only acts if pid still is a netsockd.  Returns True if it
	is gone.
	"""
	if not pid_alive(pid) or not pid_is_netsockd(pid):
		return True
	os.kill(pid, signal.SIGTERM)
	deadline = time.monotonic() + timeout
	while time.monotonic() < deadline:
		if not pid_alive(pid):
			return True
		time.sleep(0.05)
	if pid_alive(pid) and pid_is_netsockd(pid):
		os.kill(pid, signal.SIGKILL)
	return False


class Daemon:
	"""
	A netsockd of the current test, in its own temporary directory.

	Options (all optional):
	  limits={...}        settings of the limits group
	  registration, allow_create (rooms.allow_create), motd, log_level,
	  scrypt_n, address, port (default: a free one)
	  certificate, key    paths to use instead of a fresh certificate
	  key_type            "ec" (default) or "rsa" for the fresh certificate
	  extra="..."         raw configuration text appended to the file
	  config=None         run with no -c (built-in defaults; STATE_DIRECTORY
	                      is <tmp>/state unless env overrides it; None as an
	                      env value removes the variable)
	  config="text"       use this configuration text verbatim
	  env={...}, args=[...], preexec=fn
	  start=False         only prepare the directory, certificate and config
	"""

	_GENERATE = object()

	def __init__(self, config=_GENERATE, limits=None, registration=None,
	    allow_create=None, motd=None, log_level="debug", scrypt_n=1024,
	    address="127.0.0.1", port=None, certificate=None, key=None,
	    key_type="ec", extra="", env=None, args=None, preexec=None,
	    start=True):
		self.external = bool(EXTERNAL)
		if self.external:
			self._init_external(config, limits, registration,
			    allow_create, motd, port, certificate, extra, env,
			    args, preexec, key_type)
			_track(self)
			return
		self.dir = _mkdtemp("netsock-")
		_track(self)
		self.proc = None
		self.history = []	# (pid, how, exit code) of every process
		self._notes = []
		self._logfile = None
		self.log_path = os.path.join(self.dir, "daemon.log")
		self.notify_path = os.path.join(self.dir, "notify.sock")
		self.database = os.path.join(self.dir, "netsockd.db")
		self.admin_socket = os.path.join(self.dir, "admin.sock")
		self.env = dict(env or {})
		self.args = list(args or [])
		self.preexec = preexec
		self.address = address
		self._port_given = port is not None
		self.port = port if port is not None else free_port()
		self.config_opts = dict(address=address, log_level=log_level,
		    scrypt_n=scrypt_n, limits=limits,
		    registration=registration, allow_create=allow_create,
		    motd=motd, extra=extra)
		if config is None:
			self.config_path = None
			self.state_dir = self.env.get("STATE_DIRECTORY",
			    os.path.join(self.dir, "state"))
			if "STATE_DIRECTORY" not in self.env:
				os.mkdir(self.state_dir)
				self.env["STATE_DIRECTORY"] = self.state_dir
			elif self.state_dir is None:
				self.state_dir = os.path.join(self.dir,
				    "netsockd-state")
			self.address = "127.0.0.1"
			self.port = 7443
			self.cert = os.path.join(self.state_dir, "cert.pem")
			self.key = os.path.join(self.state_dir, "key.pem")
			self.admin_socket = os.path.join(self.state_dir,
			    "admin.sock")
			self.database = None
		else:
			self.config_path = os.path.join(self.dir,
			    "netsockd.conf")
			if certificate is None:
				certificate, key = make_cert(self.dir,
				    key_type=key_type)
			self.cert, self.key = certificate, key
			if config is Daemon._GENERATE:
				self.write_config()
			else:
				with open(self.config_path, "w") as f:
					f.write(config)
		self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
		self._sock.bind(self.notify_path)
		self._sock.setblocking(False)
		self.log_ready_offset = 0
		if start:
			self.start()

	def _init_external(self, config, limits, registration, allow_create,
	    motd, port, certificate, extra, env, args, preexec, key_type):
		if (config is not Daemon._GENERATE or limits or
		    registration is not None or allow_create is not None or
		    motd is not None or port is not None or certificate or
		    extra or env or args or preexec or key_type != "ec"):
			raise Skip("NETSOCKD_TEST_EXTERNAL: this test needs "
			    "its own daemon")
		host, _, p = EXTERNAL.rpartition(":")
		self.address, self.port = host or "127.0.0.1", int(p)
		self.proc = None
		self.history = []
		self.dir = None
		self.cert = None

	# -- configuration

	def config_text(self, **overrides):
		opts = dict(self.config_opts)
		opts.update(overrides)
		return config_text(self.port, self.cert, self.key,
		    self.database, self.admin_socket, **opts)

	def write_config(self, **overrides):
		"""(Re)write the configuration file; overrides change options
		such as limits or motd (for reload tests)."""
		self.config_opts.update(overrides)
		text = self.config_text()
		with open(self.config_path, "w") as f:
			f.write(text)
		return text

	# -- process

	def argv(self):
		argv = _argv0()
		if self.config_path is not None:
			argv += ["-c", self.config_path]
		return argv + self.args

	def start(self, wait_ready=True):
		"""Start a new process; wait for READY=1 unless told not to."""
		self._require_own("start")
		for attempt in range(3):
			self._spawn()
			if not wait_ready:
				return
			try:
				self.wait_ready()
				return
			except RuntimeError:
				# Someone took our port between free_port()
				# and bind(): try another one.
				if (attempt == 2 or self._port_given or
				    self.config_path is None or
				    "in use" not in self.log()):
					raise
				self.port = free_port()
				self.write_config()
		raise AssertionError("unreachable")

	def _spawn(self):
		assert self.proc is None or self.proc.poll() is not None, \
		    "daemon already running"
		self.notifications()
		self._notes_at_start = len(self._notes)
		if self._logfile is None:
			self._logfile = open(self.log_path, "ab")
		env = dict(self.env)
		env["NOTIFY_SOCKET"] = self.notify_path
		self.proc = subprocess.Popen(self.argv(),
		    stdin=subprocess.DEVNULL, stdout=self._logfile,
		    stderr=subprocess.STDOUT, env=_daemon_env(env),
		    cwd=self.dir, preexec_fn=self.preexec)
		self.history.append([self.proc.pid, "running", None])

	def wait_ready(self, timeout=READY_TIMEOUT):
		"""Wait for READY=1 from the current process; fail at once
		(with its log) if it exits first."""
		deadline = time.monotonic() + timeout
		while True:
			for note in self._notes[self._notes_at_start:]:
				if "READY=1" in note.splitlines():
					self.log_ready_offset = len(
					    self.log_bytes())
					return
			rc = self.proc.poll()
			if rc is not None:
				self._record(self.proc.pid, "exited", rc)
				raise RuntimeError("netsockd exited with %d "
				    "before READY=1; log:\n%s" % (rc,
				    self.log()))
			left = deadline - time.monotonic()
			if left <= 0:
				raise RuntimeError("no READY=1 within %.0f s; "
				    "log:\n%s" % (timeout, self.log()))
			self._read_notes(min(left, 0.2))

	def _read_notes(self, timeout):
		r, _, _ = select.select([self._sock], [], [], timeout)
		if r:
			self.notifications()

	def notifications(self):
		"""Every notify datagram received so far (drains the socket
		without blocking)."""
		if self.external:
			return []
		while True:
			try:
				data = self._sock.recv(65536)
			except (BlockingIOError, InterruptedError):
				break
			self._notes.append(data.decode("utf-8", "replace"))
		return list(self._notes)

	def wait_notification(self, pred, timeout=10, since=0):
		"""
		Wait for a notify datagram, at index since or later, for which
		pred(text) is true (pred may be a string: a line equal to it or
		starting with it).  Returns the datagram.
		"""
		if isinstance(pred, str):
			want = pred
			pred = lambda t: any(l == want or l.startswith(want)
			    for l in t.splitlines())
		deadline = time.monotonic() + timeout
		while True:
			for note in self.notifications()[since:]:
				if pred(note):
					return note
			left = deadline - time.monotonic()
			if left <= 0:
				raise AssertionError("no matching notification "
				    "within %.0f s; got %r" % (timeout,
				    self._notes[since:]))
			self._read_notes(min(left, 0.2))

	@property
	def pid(self):
		return self.proc.pid if self.proc else None

	def running(self):
		return self.proc is not None and self.proc.poll() is None

	def _record(self, pid, how, rc):
		for h in self.history:
			if h[0] == pid:
				if h[1] in ("running", "exited") or how == "hung":
					h[1] = how
				h[2] = rc
				return
		self.history.append([pid, how, rc])

	def send_signal(self, sig):
		"""Send sig to the running daemon (no waiting); SIGTERM and
		SIGINT are expected to end it with status 0."""
		self._require_own("signal")
		assert self.running(), "daemon is not running"
		if sig in (signal.SIGTERM, signal.SIGINT):
			self._record(self.proc.pid, "stopped", None)
		elif sig == signal.SIGKILL:
			self._record(self.proc.pid, "killed", None)
		self.proc.send_signal(sig)

	def wait(self, timeout=STOP_TIMEOUT):
		"""Wait for the process to exit; SIGKILL it after timeout.
		Returns its exit status (negative: killed by that signal)."""
		self._require_own("wait")
		try:
			rc = self.proc.wait(timeout)
		except subprocess.TimeoutExpired:
			self.proc.kill()
			rc = self.proc.wait()
			self._record(self.proc.pid, "hung", rc)
			return rc
		self._record(self.proc.pid, "exited", rc)
		return rc

	def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
		"""SIGTERM (or sig), wait up to timeout, then SIGKILL.  Returns
		the exit status."""
		self._require_own("stop")
		if not self.running():
			return self.proc.returncode if self.proc else None
		self.send_signal(sig)
		return self.wait(timeout)

	def kill9(self):
		"""SIGKILL (a crash); returns the exit status (-9)."""
		self._require_own("kill9")
		if not self.running():
			return self.proc.returncode
		self.send_signal(signal.SIGKILL)
		return self.wait()

	def restart(self, wait_ready=True):
		"""Stop (if running) and start again with the same config,
		directory and database."""
		self._require_own("restart")
		if self.running():
			rc = self.stop()
			assert rc == 0, "netsockd exited with %r on SIGTERM" % rc
		self._spawn()
		if wait_ready:
			self.wait_ready()

	def _require_own(self, what):
		if self.external:
			raise Skip("NETSOCKD_TEST_EXTERNAL: cannot %s it" % what)

	# -- log

	def log_bytes(self):
		if self.external:
			return b""
		try:
			with open(self.log_path, "rb") as f:
				return f.read()
		except FileNotFoundError:
			return b""

	def log(self):
		"""Everything every process of this daemon wrote so far."""
		return self.log_bytes().decode("utf-8", "replace")

	def log_since_ready(self):
		"""What the current process wrote after its READY=1."""
		return self.log_bytes()[self.log_ready_offset:].decode(
		    "utf-8", "replace")

	def wait_log(self, pattern, timeout=10, since=0):
		"""Wait until the log (from byte offset since) matches the regex
		pattern; returns the match."""
		rx = re.compile(pattern)
		deadline = time.monotonic() + timeout
		while True:
			m = rx.search(self.log_bytes()[since:].decode("utf-8",
			    "replace"))
			if m:
				return m
			if time.monotonic() >= deadline:
				raise AssertionError("log does not match %r "
				    "within %.0f s" % (pattern, timeout))
			time.sleep(0.05)

	# -- admin tool

	def ctl(self, *args, json_output=False, input=None, timeout=30):
		"""Run netsockctl -s <admin socket> [--json] args.  Returns a
		CompletedProcess (str stdout/stderr); with json_output, .json
		holds the parsed document (None if it did not parse)."""
		argv = [netsockctl_path(), "-s", self.admin_socket]
		if json_output:
			argv.append("--json")
		r = subprocess.run(argv + list(args), input=(input or "").encode(),
		    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
		    timeout=timeout)
		r.stdout = r.stdout.decode("utf-8", "replace")
		r.stderr = r.stderr.decode("utf-8", "replace")
		r.json = None
		if json_output:
			try:
				r.json = json.loads(r.stdout)
			except ValueError:
				pass
		return r

	# -- teardown

	def teardown(self):
		"""Stop what still runs; return the problems found."""
		if self.external:
			return []
		probs = []
		if self.running():
			self.stop()
		for pid, how, rc in self.history:
			if how == "stopped" and rc != 0:
				probs.append("netsockd (pid %d) exited with %r "
				    "after SIGTERM/SIGINT, not 0" % (pid, rc))
			elif how == "hung":
				probs.append("netsockd (pid %d) did not exit "
				    "within %.0f s of SIGTERM; killed" %
				    (pid, STOP_TIMEOUT))
		probs += sanitizer_problems(self.log())
		if self._logfile:
			self._logfile.close()
			self._logfile = None
		self._sock.close()
		return probs

	def describe(self):
		if self.external:
			return []
		lines = self.log().splitlines()
		head = ["--- netsockd log %s (%d lines%s) ---" % (self.log_path,
		    len(lines), ", last %d shown" % LOG_TAIL_LINES
		    if len(lines) > LOG_TAIL_LINES else "")]
		return head + lines[-LOG_TAIL_LINES:] + ["--- end of log ---"]

	def remove(self):
		if self.dir and os.environ.get("NETSOCK_KEEP_TMP") != "1":
			shutil.rmtree(self.dir, ignore_errors=True)

	def __enter__(self):
		return self

	def __exit__(self, *exc):
		probs = self.teardown()
		if probs and exc[0] is None:
			raise AssertionError("; ".join(probs))
		return False


# ------------------------------------------------------------ TLS client


def client_context(tls_version=None, verify=False, cafile=None,
    ciphers=None, min_version=None, max_version=None):
	"""An ssl.SSLContext for tests.  tls_version pins min = max."""
	ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
	if verify:
		ctx.check_hostname = True
		ctx.verify_mode = ssl.CERT_REQUIRED
		ctx.load_verify_locations(cafile)
	else:
		ctx.check_hostname = False
		ctx.verify_mode = ssl.CERT_NONE
	if tls_version is not None:
		min_version = max_version = tls_version
	if min_version is not None:
		ctx.minimum_version = min_version
	if max_version is not None:
		ctx.maximum_version = max_version
	if ciphers is not None:
		ctx.set_ciphers(ciphers)
	return ctx


def _target(daemon):
	if isinstance(daemon, tuple):
		return daemon
	return (daemon.address, daemon.port)


def raw_connect(daemon, timeout=10):
	"""A plain TCP socket to the daemon (no TLS), closed after the test."""
	s = socket.create_connection(_target(daemon), timeout=timeout)
	on_cleanup(s.close)
	return s


class Client:
	"""
	A TLS connection to the daemon that speaks NDJSON.  The welcome line is
	read on connect (self.welcome) unless read_welcome=False.
	"""

	def __init__(self, daemon, tls_version=None, verify=False,
	    context=None, ciphers=None, timeout=10, read_welcome=True):
		self.events = []
		self._buf = b""
		self._ref = 0
		self.close_kind = None
		self.welcome = None
		if context is None:
			cafile = getattr(daemon, "cert", None) if verify else None
			context = client_context(tls_version, verify, cafile,
			    ciphers)
		sock = socket.create_connection(_target(daemon),
		    timeout=timeout)
		_track(self)
		try:
			self.sock = context.wrap_socket(sock,
			    server_hostname="localhost",
			    suppress_ragged_eofs=False)
		except BaseException:
			sock.close()
			self.sock = None
			raise
		if read_welcome:
			self.welcome = self.recv(timeout)
			assert self.welcome.get("type") == "welcome", \
			    "first line is not a welcome: %r" % self.welcome

	# -- sending

	def send_raw(self, data):
		self.sock.sendall(data)

	def send(self, obj):
		self.send_raw(json.dumps(obj, ensure_ascii=False).encode() +
		    b"\n")

	# -- receiving

	def _fill(self, deadline):
		left = deadline - time.monotonic()
		if left <= 0:
			raise TimeoutError("nothing from the server in time")
		self.sock.settimeout(left)
		try:
			data = self.sock.recv(65536)
		except socket.timeout:
			raise TimeoutError("nothing from the server in time")
		except ssl.SSLEOFError as e:
			raise ConnectionClosed("eof", str(e))
		except ssl.SSLError as e:
			raise ConnectionClosed("tls-error", str(e))
		except (ConnectionResetError, BrokenPipeError) as e:
			raise ConnectionClosed("reset", str(e))
		if not data:
			# Python returns b"" only for a TLS close_notify
			# (ragged EOFs raise, see suppress_ragged_eofs).
			raise ConnectionClosed("close_notify")
		self._buf += data

	def recv_line(self, timeout=5):
		"""The next line from the server (bytes, without "\\n")."""
		deadline = time.monotonic() + timeout
		while b"\n" not in self._buf:
			self._fill(deadline)
		line, self._buf = self._buf.split(b"\n", 1)
		return line

	def recv(self, timeout=5):
		"""The next JSON object from the server."""
		line = self.recv_line(timeout)
		try:
			obj = json.loads(line)
		except ValueError:
			raise AssertionError("server sent a line that is not "
			    "JSON: %r" % line)
		assert isinstance(obj, dict), "server sent a non-object: %r" % obj
		return obj

	def next_ref(self):
		self._ref += 1
		return "h%d" % self._ref

	def request(self, obj, timeout=5):
		"""Send obj (with a fresh ref unless it has one) and return the
		reply carrying that ref; events in between go to self.events."""
		obj = dict(obj)
		if "ref" not in obj:
			obj["ref"] = self.next_ref()
		self.send(obj)
		deadline = time.monotonic() + timeout
		while True:
			left = deadline - time.monotonic()
			if left <= 0:
				raise TimeoutError("no reply to %r" % obj)
			msg = self.recv(left)
			if "ref" in msg and msg["ref"] == obj["ref"] and \
			    type(msg["ref"]) == type(obj["ref"]):
				return msg
			self.events.append(msg)

	def expect_closed(self, timeout=10):
		"""
		Wait until the server closes the connection (close_notify, EOF
		or reset).  Returns the JSON objects received before the close;
		self.close_kind says how it closed.  Raises TimeoutError if the
		connection is still open after timeout.
		"""
		got = []
		deadline = time.monotonic() + timeout
		while True:
			try:
				while b"\n" not in self._buf:
					self._fill(deadline)
			except ConnectionClosed as e:
				self.close_kind = e.kind
				return got
			line, self._buf = self._buf.split(b"\n", 1)
			try:
				got.append(json.loads(line))
			except ValueError:
				got.append(line)

	def wait_event(self, pred, timeout=5):
		"""The first event (from self.events or newly received) for
		which pred(obj) is true; it is removed from self.events."""
		for i, ev in enumerate(self.events):
			if pred(ev):
				return self.events.pop(i)
		deadline = time.monotonic() + timeout
		while True:
			left = deadline - time.monotonic()
			if left <= 0:
				raise TimeoutError("no matching event")
			msg = self.recv(left)
			if pred(msg):
				return msg
			self.events.append(msg)

	# -- TLS facts

	def cert_fingerprint(self):
		return fingerprint(self.sock.getpeercert(binary_form=True))

	def version(self):
		return self.sock.version()

	def cipher(self):
		return self.sock.cipher()

	# -- accounts (for the chat tests)

	def register(self, user, password):
		r = self.request({"type": "register", "user": user,
		    "password": password}, timeout=30)
		assert r["type"] == "ok", "register %s: %r" % (user, r)
		return r

	def login(self, user, password):
		r = self.request({"type": "login", "user": user,
		    "password": password}, timeout=30)
		assert r["type"] == "ok", "login %s: %r" % (user, r)
		return r

	# -- teardown

	def close(self):
		if self.sock is not None:
			try:
				self.sock.close()
			except OSError:
				pass
			self.sock = None

	def teardown(self):
		self.close()
		return []

	def describe(self):
		return []

	def remove(self):
		pass

	def __enter__(self):
		return self

	def __exit__(self, *exc):
		self.close()
		return False


def connect_refused(daemon, timeout=10, **kw):
	"""
	True if a TLS connection to daemon fails before a welcome arrives (the
	handshake fails, or the server closes or resets the connection).
	False if a welcome arrives (that client is closed again).
	"""
	try:
		c = Client(daemon, timeout=timeout, **kw)
	except TimeoutError:
		raise AssertionError("the server neither sent a welcome nor "
		    "closed the connection within %.0f s" % timeout)
	except (OSError, ConnectionClosed):
		return True
	c.close()
	return False


def retry(fn, timeout=10, interval=0.1):
	"""Call fn() until it returns a true value or raises nothing;
	returns that value.  Re-raises the last exception after timeout."""
	deadline = time.monotonic() + timeout
	while True:
		try:
			v = fn()
			if v:
				return v
			err = None
		except Exception as e:
			err = e
		if time.monotonic() >= deadline:
			if err is not None:
				raise err
			raise AssertionError("condition not met within %.0f s" %
			    timeout)
		time.sleep(interval)


# ------------------------------------------------------------ TAP runner

_tests = []


def test(fn):
	"""Register fn as the next test of this file."""
	_tests.append(fn)
	return fn


def _diag(text):
	for line in str(text).splitlines() or [""]:
		sys.stdout.write("# " + line + "\n")


def diag(text):
	"""Print text as TAP diagnostics (for what a test found out)."""
	_diag(text)
	sys.stdout.flush()


def _alarm(signum, frame):
	raise TestTimeout("test still running after %d s" % TEST_TIMEOUT)


def _finish_test():
	"""Tear down everything the test made; returns (problems, logs)."""
	probs = []
	for fn in reversed(_cleanups):
		try:
			fn()
		except Exception as e:
			probs.append("cleanup %r: %s" % (fn, e))
	_cleanups.clear()
	# Clients first, so the daemons see their sessions end normally.
	ordered = [r for r in _resources if isinstance(r, Client)] + \
	    [r for r in reversed(_resources) if not isinstance(r, Client)]
	logs = []
	for r in ordered:
		try:
			probs += r.teardown()
		except Exception:
			probs.append("teardown: " + traceback.format_exc())
	for r in ordered:
		logs += r.describe()
	return probs, logs


def _remove_all():
	for r in _resources:
		try:
			r.remove()
		except Exception:
			pass
	_resources.clear()


def _run_one(fn):
	"""Run one test and tear it down; returns (status, lines): status is
	"ok", "skip: reason" or "not ok", lines the diagnostics."""
	err = skip = None
	interrupted = False
	signal.alarm(TEST_TIMEOUT * (5 if VALGRIND else 1))
	try:
		fn()
	except Skip as e:
		skip = str(e)
	except KeyboardInterrupt:
		interrupted = True
	except BaseException:
		err = traceback.format_exc()
	finally:
		signal.alarm(0)
	try:
		probs, logs = _finish_test()
	except BaseException:
		probs, logs = [traceback.format_exc()], []
	if interrupted:
		raise KeyboardInterrupt
	if err is None and not probs:
		return ("ok" if skip is None else "skip: " + skip), []
	lines = [err] if err else []
	return "not ok", lines + ["teardown: " + p for p in probs] + logs


def run(argv=None):
	"""Run the registered tests (or those named in argv) and print TAP."""
	argv = sys.argv[1:] if argv is None else argv
	tests = [t for t in _tests if not argv or t.__name__ in argv]
	print("1..%d" % len(tests), flush=True)
	if not EXTERNAL and not os.access(netsockd_path(), os.X_OK):
		print("Bail out! no netsockd at %s (set NETSOCKD)" %
		    netsockd_path(), flush=True)
		return 0
	old = signal.signal(signal.SIGALRM, _alarm)
	try:
		for n, fn in enumerate(tests, 1):
			t0 = time.monotonic()
			try:
				status, lines = _run_one(fn)
			finally:
				# Whatever happened (even ^C or a closed
				# stdout), leave no temporary directory.
				_remove_all()
			if status.startswith("skip: "):
				print("ok %d - %s # SKIP %s" % (n, fn.__name__,
				    status[6:]))
			else:
				print("%s %d - %s" % (status, n, fn.__name__))
			for line in lines:
				_diag(line)
			_diag("%s took %.1f s" % (fn.__name__,
			    time.monotonic() - t0))
			sys.stdout.flush()
	finally:
		signal.signal(signal.SIGALRM, old)
	return 0
