# adminlib: helpers shared by the admin-channel and reload integration tests
# (netsockctl runs and their exit codes, its human output parsed back,
# unprivileged runs, kicked clients, sd_notify reload sequences).
#
# Standard library only; builds on harness.py and chatlib.py without
# changing them.

import os
import re
import shutil
import stat
import subprocess
import time

import harness
from harness import Client, Skip, netsockctl_path, tmpdir

NOBODY = 65534		# uid and gid the permission tests drop to
OK_STATUS = 0
FAILED = 1		# no such thing, or reload rejected
USAGE = 2
UNREACHABLE = 3

DEFAULT_KICK_REASON = "kicked by the operator"


def _show(r):
	return "exit %d\nstdout: %r\nstderr: %r" % (r.returncode, r.stdout,
	    r.stderr)


def ctl(d, *args, json_output=False, input=None, status=OK_STATUS):
	"""
	Run netsockctl against d; assert its exit status.  A success has
	nothing on stderr, and with json_output a JSON object with "ok" true
	on stdout (as r.json).
	"""
	r = d.ctl(*args, json_output=json_output, input=input)
	assert r.returncode == status, "netsockctl %s: expected exit %d, " \
	    "got %s" % (" ".join(args), status, _show(r))
	if status == OK_STATUS:
		assert r.stderr == "", "netsockctl %s: stderr on success: " \
		    "%s" % (" ".join(args), _show(r))
		if json_output:
			assert isinstance(r.json, dict) and \
			    r.json.get("ok") is True, \
			    "netsockctl --json %s: %s" % (" ".join(args),
			    _show(r))
	return r


def one_error_line(r, says=()):
	"""stderr is exactly one line "netsockctl: ..." containing every
	string in says; returns that line."""
	lines = r.stderr.splitlines()
	assert len(lines) == 1 and r.stderr.endswith("\n"), \
	    "expected one line on stderr: %s" % _show(r)
	assert lines[0].startswith("netsockctl: "), \
	    "stderr does not start with 'netsockctl: ': %s" % _show(r)
	for s in ([says] if isinstance(says, str) else says):
		assert s in lines[0], "stderr does not say %r: %s" % (s, _show(r))
	return lines[0]


def ctl_fail(d, status, *args, json_output=False, input=None, says=()):
	"""
	Run netsockctl expecting a failure with this exit status: one error
	line on stderr.  Usage and unreachable errors print nothing on
	stdout; a failure the daemon reported prints, with --json, its reply
	{"ok":false,"error":...,"status":...} (checked here).
	"""
	r = ctl(d, *args, json_output=json_output, input=input, status=status)
	line = one_error_line(r, says)
	if json_output and r.stdout:
		j = r.json
		assert isinstance(j, dict), "--json output is not JSON: %s" % \
		    _show(r)
		assert j.get("ok") is False, j
		assert isinstance(j.get("error"), str) and j["error"], j
		assert j.get("status") == status, j
		# The same reason on stderr, for people.
		assert j["error"] in line, (j, line)
	return r


def daemon_replied_failure(d, status, *args, says=()):
	"""A failure the daemon reports (1, or 2 for a malformed request):
	check the human run (nothing on stdout) and the --json run (the
	failure document on stdout)."""
	r = ctl_fail(d, status, *args, says=says)
	assert r.stdout == "", "stdout on failure: %s" % _show(r)
	r = ctl_fail(d, status, *args, json_output=True, says=says)
	assert r.stdout != "", "--json printed no failure document: %s" % \
	    _show(r)
	return r


def client_usage_error(d, *args, input=None, says=()):
	"""A usage error netsockctl finds itself (exit 2): nothing on stdout,
	in either output mode, and one line on stderr."""
	for j in (False, True):
		r = ctl_fail(d, USAGE, *args, json_output=j, input=input,
		    says=says)
		assert r.stdout == "", "stdout on a usage error: %s" % _show(r)


def stats(d):
	return ctl(d, "stats", json_output=True).json


def sessions(d):
	r = ctl(d, "sessions", json_output=True).json
	assert isinstance(r.get("sessions"), list), r
	return r["sessions"]


def remote_of(c):
	"""How the daemon names the remote end of client c."""
	host, port = c.sock.getsockname()[:2]
	return "%s:%d" % (host, port)


def session_row(rows, c):
	"""The sessions row of client c (by its local address)."""
	want = remote_of(c)
	got = [r for r in rows if r.get("remote") == want]
	assert len(got) == 1, "no single session row for %s: %r" % (want,
	    rows)
	return got[0]


def session_id(d, c):
	return session_row(sessions(d), c)["id"]


def users(d):
	r = ctl(d, "user", "list", json_output=True).json
	assert isinstance(r.get("users"), list), r
	return {u["user"]: u for u in r["users"]}


# ------------------------------------------------------------ human output


def human_bytes(n):
	"""netsockctl(8)'s sizes: 512 B, 1.2 KiB, 3.4 MiB ..."""
	if n < 1024:
		return "%d B" % n
	v = n / 1024.0
	units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
	i = 0
	while i < len(units) - 1 and v >= 1023.95:
		v /= 1024.0
		i += 1
	return "%.1f %s" % (v, units[i])


def pairs(text):
	"""The "label: value" lines of stats output as a dict; continuation
	lines (no label) are appended to the previous value's list under
	the key (label, "more")."""
	out = {}
	last = None
	for line in text.splitlines():
		m = re.match(r"^([A-Za-z][A-Za-z ]*):\s+(.*)$", line)
		if m:
			last = m.group(1)
			assert last not in out, "label %r twice:\n%s" % (last,
			    text)
			out[last] = m.group(2)
		else:
			assert last is not None and line.startswith(" "), \
			    "not a stats line: %r" % line
			out.setdefault((last, "more"), []).append(line.strip())
	return out


def value_column(text):
	"""The column where every stats value starts (aligned output)."""
	cols = set()
	for line in text.splitlines():
		m = re.match(r"^([A-Za-z][A-Za-z ]*:\s+)\S", line)
		if m:
			cols.add(len(m.group(1)))
	return cols


def table(text):
	"""A table printed for people: (header cells, rows of cells).
	Columns are separated by two or more blanks; cells hold at most
	single blanks ("1.2 KiB")."""
	lines = text.splitlines()
	assert lines, "no table output"
	split = lambda l: re.split(r" {2,}", l.strip())
	header = split(lines[0])
	rows = [split(l) for l in lines[1:]]
	return header, rows


# ------------------------------------------------------------ clients


def kicked_then_closed(c, reason, timeout=10):
	"""
	c receives {"type":"kicked","reason":reason} as its last line and the
	server then closes the connection (TLS close_notify or EOF, not a
	reset that could lose the event).
	"""
	got = list(c.events) + c.expect_closed(timeout=timeout)
	kicked = [e for e in got if isinstance(e, dict) and
	    e.get("type") == "kicked"]
	assert len(kicked) == 1, "expected one kicked event, got %r" % got
	assert kicked[0] == {"type": "kicked", "reason": reason}, kicked
	assert got[-1] is kicked[0], "lines after the kicked event: %r" % got
	assert c.close_kind in ("close_notify", "eof"), \
	    "closed by %s after kicked" % c.close_kind
	return kicked[0]


def login_reply(d, name, password):
	"""The reply to a login from a fresh client (which stays open)."""
	c = Client(d)
	return c.request({"type": "login", "user": name,
	    "password": password}, timeout=30)


def wait_connections(d, n, timeout=10):
	"""Wait until the daemon counts n open connections (after clients
	closed)."""
	return harness.retry(lambda: stats(d)["connections"] == n,
	    timeout=timeout)


# ------------------------------------------------------------ privileges


def _nobody_argv(binary):
	return ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
	    "--clear-groups", binary]


def nobody_netsockctl():
	"""
	A netsockctl binary uid nobody can run: the build's own if nobody
	can reach it, else a copy in a world-readable temporary directory.
	Skips unless we are root and have setpriv.
	"""
	if os.geteuid() != 0:
		raise Skip("needs root to run netsockctl as another uid")
	if shutil.which("setpriv") is None:
		raise Skip("setpriv(1) is not installed")
	binary = netsockctl_path()
	r = subprocess.run(_nobody_argv(binary) + ["--version"],
	    stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
	if r.returncode == 0:
		return binary
	d = tmpdir("netsock-ctl-")
	os.chmod(d, 0o755)
	copy = os.path.join(d, "netsockctl")
	shutil.copy2(binary, copy)
	os.chmod(copy, 0o755)
	r = subprocess.run(_nobody_argv(copy) + ["--version"],
	    stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
	assert r.returncode == 0, "uid %d cannot run netsockctl: %r" % (
	    NOBODY, r)
	return copy


def ctl_as_nobody(d, *args, json_output=False):
	"""Run netsockctl -s <d's admin socket> as uid/gid nobody with no
	supplementary groups.  Returns a CompletedProcess with str output."""
	argv = _nobody_argv(nobody_netsockctl()) + ["-s", d.admin_socket]
	if json_output:
		argv.append("--json")
	r = subprocess.run(argv + list(args), stdin=subprocess.DEVNULL,
	    capture_output=True, timeout=60)
	r.stdout = r.stdout.decode("utf-8", "replace")
	r.stderr = r.stderr.decode("utf-8", "replace")
	return r


def open_path_to_socket(d):
	"""Let other uids traverse the daemon's (0700) temporary directory,
	so that only the socket's own mode decides who may connect."""
	path = os.path.dirname(d.admin_socket)
	os.chmod(path, os.stat(path).st_mode | 0o711)


def socket_mode(path):
	st = os.stat(path)
	assert stat.S_ISSOCK(st.st_mode), "%s is not a socket" % path
	return stat.S_IMODE(st.st_mode), st


# ------------------------------------------------------------ sd_notify


def monotonic_usec():
	return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def reload_notes(d, since, timeout=10):
	"""
	Wait for the notifications of one reload after index since:
	RELOADING=1 with MONOTONIC_USEC=<n>, later READY=1, and no READY=1
	before the RELOADING=1.  Returns (MONOTONIC_USEC value, notes).
	"""
	def has(note, line):
		return line in note.splitlines()

	def done():
		notes = d.notifications()[since:]
		r = [i for i, n in enumerate(notes) if has(n, "RELOADING=1")]
		return r and any(has(n, "READY=1") for n in notes[r[0]:])

	harness.retry(done, timeout=timeout, interval=0.05)
	notes = d.notifications()[since:]
	first = [i for i, n in enumerate(notes) if has(n, "RELOADING=1")][0]
	assert not any(has(n, "READY=1") for n in notes[:first]), \
	    "READY=1 before RELOADING=1: %r" % notes
	us = [l for l in notes[first].splitlines()
	    if l.startswith("MONOTONIC_USEC=")]
	assert len(us) == 1 and re.match(r"^MONOTONIC_USEC=\d+$", us[0]), \
	    "RELOADING=1 without MONOTONIC_USEC=: %r" % notes[first]
	return int(us[0].split("=", 1)[1]), notes
