# test_persistence: what the daemon acknowledged survives kill -9 and a
# restart on the same database file (messages with their content, order
# and timestamps, memberships, topics, accounts), and ids keep growing.

import harness
from harness import Client, Daemon, test, ConnectionClosed
from chatlib import (PASSWORD, assert_ok, expect_ok, user, session, join, send,
    history, ids, req)

FAST = {"messages_per_second": 100000.0, "message_burst": 100000}


def all_history(c, with_, page=100):
	"""Every message of a conversation, paging back with before."""
	out = []
	kw = {"limit": page}
	while True:
		got = history(c, with_, **kw)
		if not got:
			return out
		out = got + out
		kw["before"] = got[0]["id"]
		assert len(out) < 100000, "history does not end"


def rooms_of(c):
	r = expect_ok(c, {"type": "rooms"})
	return {x["room"]: (x["topic"], x["members"], x["joined"])
	    for x in r["rooms"]}


def newest_id(c, conversations):
	top = 0
	for w in conversations:
		got = history(c, w, limit=1)
		if got:
			top = max(top, got[-1]["id"])
	return top


@test
def test_acknowledged_messages_survive_kill_9_in_order():
	d = Daemon(limits=FAST)
	a = user(d, "Alice")
	b = user(d, "bob")
	join(a, "#Log")
	join(b, "#log")
	b.close()
	n = 400
	sent = {}		# ref -> (index, to, content)
	lines = []
	for i in range(n):
		to = "bob" if i % 4 == 3 else "#Log"
		content = "persist %d \u00e9\u20ac\U0001F600 %s" % (i,
		    "x" * (i % 50))
		ref = "m%d" % i
		sent[ref] = (i, to, content)
		lines.append({"type": "message", "to": to, "content": content,
		    "ref": ref})
	# Keep a window of requests in flight (a client that pipelines, as
	# real ones do), and crash the daemon with some still unanswered
	# once about two thirds have been acknowledged.
	acked = {}		# index -> ok
	window = 24
	nsent = 0
	while len(acked) < 250:
		while nsent < n and nsent - len(acked) < window:
			a.send(lines[nsent])
			nsent += 1
		m = a.recv(timeout=30)
		if m.get("ref") in sent:
			assert_ok(m)
			acked[sent[m["ref"]][0]] = m
	while nsent < n and nsent - len(acked) < window:
		a.send(lines[nsent])
		nsent += 1
	assert d.kill9() == -9
	# Replies the daemon sent before it died are acknowledgements too.
	try:
		while True:
			m = a.recv(timeout=10)
			if m.get("ref") in sent and m.get("type") == "ok":
				acked[sent[m["ref"]][0]] = m
	except ConnectionClosed:
		pass
	harness.diag("%d of %d sent messages acknowledged before the "
	    "kill -9" % (len(acked), nsent))
	order = sorted(acked)
	assert all(acked[i]["id"] < acked[j]["id"]
	    for i, j in zip(order, order[1:])), "ids not in send order"
	d.restart()

	a = Client(d)
	r = a.login("alice", PASSWORD)
	assert r["rooms"] == ["#Log"], r
	b = session(d, "bob")
	members = expect_ok(b, {"type": "users", "room": "#log"})["users"]
	assert sorted(u["user"] for u in members) == ["Alice", "bob"], members
	by_content = {}
	for i, to, content in sent.values():
		by_content[content] = i
	for conv, viewer, is_room in (("#log", a, True), ("alice", b, False)):
		got = all_history(viewer, conv)
		# Only messages we sent, in send order, each once.
		idx = [by_content.get(m["content"]) for m in got]
		assert None not in idx, "unknown messages in history"
		assert idx == sorted(set(idx)), "history out of send order"
		assert ids(got) == sorted(set(ids(got))), "ids not increasing"
		present = {by_content[m["content"]]: m for m in got}
		harness.diag("%s: %d messages in history after the restart" %
		    (conv, len(got)))
		for i, ok in acked.items():
			_, to, content = sent["m%d" % i]
			if (to == "#Log") != is_room:
				continue
			assert i in present, "acknowledged message %d " \
			    "(id %d) lost after kill -9" % (i, ok["id"])
			m = present[i]
			assert m == {"type": "message", "id": ok["id"],
			    "from": "Alice", "to": m["to"], "content": content,
			    "timestamp": ok["timestamp"]}, (m, ok)
			if is_room:
				assert m["to"] == "#Log", m
			else:
				assert m["to"].lower() == "bob", m
	old_top = newest_id(a, ["#log", "bob"])
	assert old_top >= max(ok["id"] for ok in acked.values())
	# New ids are above every old one, room and direct alike.
	new1 = send(a, "#log", "after the crash")
	new2 = send(b, "alice", "after the crash too")
	assert old_top < new1["id"] < new2["id"], (old_top, new1, new2)


@test
def test_message_acknowledged_just_before_kill_9_is_there_after_restart():
	d = Daemon()
	a = user(d, "alice")
	join(a, "#room")
	ok = send(a, "#room", "last words")
	assert d.kill9() == -9
	d.restart()
	a = session(d, "alice")
	got = history(a, "#room")
	assert got == [{"type": "message", "id": ok["id"], "from": "alice",
	    "to": "#room", "content": "last words",
	    "timestamp": ok["timestamp"]}], got
	assert send(a, "#room", "again")["id"] > ok["id"]


@test
def test_memberships_topics_and_accounts_survive_a_clean_restart():
	d = Daemon()
	a = user(d, "Alice")
	b = user(d, "Bob", "bob first password")
	join(a, "#Shared")
	join(b, "#shared")
	join(a, "#AliceOnly")
	join(b, "#Left")
	expect_ok(b, {"type": "leave", "room": "#left"})
	expect_ok(a, {"type": "topic", "room": "#shared",
	    "topic": "T\u00f6pic \u20ac"})
	expect_ok(b, {"type": "passwd", "old": "bob first password",
	    "new": "bob second password"})
	oks = [send(a, "#shared", "one"), send(b, "alice", "two"),
	    send(a, "#AliceOnly", "three")]
	before = rooms_of(a)
	a.close()
	b.close()
	d.restart()

	a = Client(d)
	r = a.login("alice", PASSWORD)
	assert r["user"] == "Alice", r
	assert sorted(r["rooms"]) == ["#AliceOnly", "#Shared"], r
	b = Client(d)
	r = req(b, {"type": "login", "user": "bob",
	    "password": "bob first password"})
	assert r.get("code") == "auth_failed", r
	r = b.login("BOB", "bob second password")
	assert r["user"] == "Bob" and r["rooms"] == ["#Shared"], r
	assert rooms_of(a) == before, (rooms_of(a), before)
	assert before["#Shared"] == ("T\u00f6pic \u20ac", 2, True), before
	c = user(d, "carol")
	r = join(c, "#SHARED")
	assert_ok(r, room="#Shared", topic="T\u00f6pic \u20ac")
	assert sorted(r["members"]) == ["Alice", "Bob", "carol"], r
	assert [m["content"] for m in history(b, "#shared")] == ["one"]
	assert [m["content"] for m in history(b, "alice")] == ["two"]
	assert [m["id"] for m in history(a, "#aliceonly")] == [oks[2]["id"]]
	new = send(c, "#shared", "new")
	assert new["id"] > max(o["id"] for o in oks), (new, oks)


@test
def test_ids_stay_above_old_ones_across_several_restarts():
	d = Daemon()
	a = user(d, "alice")
	join(a, "#room")
	last = 0
	for round_ in range(3):
		for i in range(3):
			ok = send(a, "#room", "r%d m%d" % (round_, i))
			assert ok["id"] > last, (ok, last)
			last = ok["id"]
		a.close()
		if round_ == 1:
			assert d.kill9() == -9
		d.restart()
		a = session(d, "alice")
	got = history(a, "#room")
	assert [m["content"] for m in got] == ["r%d m%d" % (r, i)
	    for r in range(3) for i in range(3)], got
	assert send(a, "#room", "final")["id"] > last


if __name__ == "__main__":
	raise SystemExit(harness.run())
