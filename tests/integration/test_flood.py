# test_flood: per-session message rate limits, flooders cut off after
# repeated abuse, and readers that stop reading cut off once past their
# output buffer, while other sessions keep talking undisturbed.

import json

import harness
from harness import Daemon, test
from chatlib import (assert_ok, assert_error, expect_ok, assert_alive, client,
    user, session, join, send, sync, drain, wait_event, events_of, history,
    ids, sessions_of)

FLOOD = {"messages_per_second": 1.0, "message_burst": 3}
MAX_STRIKES = 50


def message_lines(to, prefix, n, first_ref=0):
	return b"".join(json.dumps({"type": "message", "to": to,
	    "content": "%s %d" % (prefix, i), "ref": first_ref + i}).encode() +
	    b"\n" for i in range(n))


def replies_of(c, n):
	"""The next n replies (lines with a ref) c receives, in the order
	they arrive; events in between go to c.events."""
	out = []
	while len(out) < n:
		m = c.recv(timeout=10)
		if "ref" in m:
			out.append(m)
		else:
			c.events.append(m)
	return out


def chat_round(c, d, tag):
	"""c and d (direct messages) each send one message and each sees
	the other's arrive, with the ok first."""
	ok1 = send(c, "dave", "c %s" % tag)
	ok2 = send(d, "carol", "d %s" % tag)
	ev = wait_event(d, "message", id=ok1["id"], timeout=10)
	assert ev["content"] == "c %s" % tag and ev["from"] == "carol", ev
	ev = wait_event(c, "message", id=ok2["id"], timeout=10)
	assert ev["content"] == "d %s" % tag and ev["from"] == "dave", ev


@test
def test_message_past_the_burst_is_rate_limited_and_not_delivered():
	d = Daemon(limits=FLOOD)
	a = user(d, "alice")
	b = user(d, "bob")
	join(a, "#room")
	join(b, "#room")
	drain(b)
	# All four in one write: the daemon handles them together, long
	# before a second has passed to refill a token.
	a.send_raw(message_lines("#room", "burst", 4))
	replies = replies_of(a, 4)
	for i in range(3):
		assert_ok(replies[i])
		assert replies[i]["ref"] == i, replies
	assert_error(replies[3], "rate_limited")
	assert replies[3]["ref"] == 3, replies
	# The refused one is neither delivered nor stored.
	assert_alive(a)
	sync(b)
	got = [e["content"] for e in events_of(b, "message")]
	assert got == ["burst 0", "burst 1", "burst 2"], got
	assert [m["content"] for m in history(b, "#room")] == got
	# Other requests are not limited by the message bucket.
	expect_ok(a, {"type": "rooms"})
	expect_ok(a, {"type": "history", "with": "#room"})
	# Nor are other sessions, even of the same user.
	a2 = session(d, "alice")
	send(a2, "#room", "from the second session")


@test
def test_repeated_rate_limited_requests_close_the_connection():
	d = Daemon(limits=FLOOD)
	a = user(d, "alice")
	c = user(d, "carol")
	dv = user(d, "dave")
	join(a, "#room")
	chat_round(c, dv, "before")
	# 3 within the burst, then 60 refused in a row: after the 50th
	# refusal the daemon answers nothing more and closes.
	a.send_raw(message_lines("#room", "flood", 3 + 60))
	got = a.expect_closed(timeout=20)
	assert a.close_kind is not None
	types = [(m.get("type"), m.get("code"), m.get("ref"))
	    for m in got if isinstance(m, dict)]
	assert len(types) == len(got), got
	want = [("ok", None, i) for i in range(3)] + \
	    [("error", "rate_limited", 3 + i) for i in range(MAX_STRIKES)]
	assert types == want, types
	# Meanwhile another pair keeps talking (within its own burst of 3:
	# one round before the flood and two after).
	for i in range(2):
		chat_round(c, dv, "after %d" % i)
	# Nothing of the flood beyond the burst was stored.
	b = user(d, "bob")
	join(b, "#room")
	assert [m["content"] for m in history(b, "#room")] == \
	    ["flood 0", "flood 1", "flood 2"]
	# The flooder is not banned: it may come back.
	a = session(d, "alice")
	assert_alive(a)


@test
def test_reader_that_stops_reading_is_cut_off_others_keep_talking():
	d = Daemon(limits={"output_buffer": 65536,
	    "messages_per_second": 100000.0, "message_burst": 100000})
	# A small receive buffer, so that the kernel does not soak up
	# megabytes before the daemon's own buffer fills.
	slow = client(d, rcvbuf=4096)
	slow.register("slow", "correct horse battery")
	join(slow, "#firehose")
	a = user(d, "alice")
	b = user(d, "bob")
	join(a, "#firehose")
	join(b, "#firehose")
	c = user(d, "carol")
	dv = user(d, "dave")
	# From here on slow reads nothing.
	big = "z" * 3000
	fire_ids = []
	rounds = 0
	cut_off = False
	while not cut_off:
		rounds += 1
		assert rounds <= 1500, "slow reader still connected after " \
		    "%d rounds (%d messages)" % (rounds, len(fire_ids))
		# Four messages of each sender per round, pipelined (about
		# 12 KB at a time: well below one read's worth).
		for sender, tag in ((a, "a"), (b, "b")):
			sender.send_raw(b"".join(json.dumps({"type": "message",
			    "to": "#firehose", "content": "%s%d %s" % (tag, i,
			    big), "ref": "%s%d" % (tag, i)}).encode() + b"\n"
			    for i in range(4)))
		for sender, tag in ((a, "a"), (b, "b")):
			for i in range(4):
				m = sender.recv(timeout=10)
				while "ref" not in m:
					m = sender.recv(timeout=10)
				assert_ok(m)
				assert m["ref"] == "%s%d" % (tag, i), m
				fire_ids.append(m["id"])
			# The other sender's events: not kept.
			sender.events.clear()
		chat_round(c, dv, "round %d" % rounds)
		if rounds % 5 == 0:
			cut_off = sessions_of(d, "slow") == 0
	harness.diag("slow reader cut off after %d rounds, %d messages of "
	    "%d bytes" % (rounds, len(fire_ids), len(big)))
	d.wait_log(r"event=slow_reader", timeout=10)
	d.wait_log(r"reason=output_buffer_full", timeout=10)
	# The cut-off reader sees the end of its connection after what was
	# already on its way, which is a prefix of the room's messages.
	got = slow.expect_closed(timeout=30)
	assert slow.close_kind is not None
	received = [m["id"] for m in got if isinstance(m, dict) and
	    m.get("type") == "message"]
	assert received == sorted(fire_ids)[:len(received)], \
	    "slow reader got a gap"
	assert len(received) < len(fire_ids)
	# The others were not disturbed, and still are not.
	for i in range(3):
		chat_round(c, dv, "after %d" % i)
	assert_alive(a)
	assert_alive(b)
	# The slow reader can come back and catch up with history.
	slow = session(d, "slow")
	assert received, "the slow reader got nothing at all"
	last = received[-1]
	missed = history(slow, "#firehose", after=last, limit=10)
	assert ids(missed) == sorted(i for i in fire_ids if i > last)[:10], \
	    missed

@test
def test_reader_that_pauses_gets_everything_in_order_when_it_reads_again():
	"""Output the socket does not take waits in the daemon (and the
	record OpenSSL could not send is retried whole): a reader that
	stops for a while, below output_buffer, loses nothing."""
	# More than the kernel's largest send buffer can soak up, so that
	# most of it waits in the daemon.
	try:
		with open("/proc/sys/net/ipv4/tcp_wmem") as f:
			wmem = int(f.read().split()[2])
	except (OSError, ValueError, IndexError):
		wmem = 4 * 1024 * 1024
	volume = 2 * wmem + 2 * 1024 * 1024
	d = Daemon(limits={"output_buffer": 2 * volume,
	    "messages_per_second": 100000.0, "message_burst": 100000})
	pause = client(d, rcvbuf=4096)
	pause.register("pause", "correct horse battery")
	join(pause, "#backlog")
	a = user(d, "alice")
	join(a, "#backlog")
	sync(pause)
	big = "y" * 2000
	sent = []
	for burst in range(volume // (20 * 2000) + 1):
		a.send_raw(b"".join(json.dumps({"type": "message",
		    "to": "#backlog", "content": "%d.%d %s" % (burst, i, big),
		    "ref": burst * 100 + i}).encode() + b"\n"
		    for i in range(20)))
		for m in replies_of(a, 20):
			assert_ok(m)
			sent.append(m["id"])
	assert sessions_of(d, "pause") == 1
	got = []
	while len(got) < len(sent):
		m = pause.recv(timeout=20)
		if m.get("type") == "message":
			got.append(m["id"])
	assert got == sent, "events lost or reordered"
	# And the session goes on as usual.
	ok = send(a, "#backlog", "after")
	wait_event(pause, "message", id=ok["id"], timeout=10)
	assert_alive(pause)


if __name__ == "__main__":
	raise SystemExit(harness.run())
