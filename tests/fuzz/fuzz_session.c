/*
 * fuzz_session: libFuzzer target for the whole request path.  Interleaved
 * lines from up to FUZZ_SLOTS sessions go through the real dispatch,
 * account, room, message, chat, proto and store code, with a real SQLite
 * database; stub_conn.c stands in for the sockets and TLS, stub_auth.c for
 * the scrypt threads, and a fake clock for the wall clock.
 *
 * Input: a little bytecode, printable so that the seed corpus is
 * readable (tests/fuzz/session_corpus).  Bytes that are no operation are
 * skipped (newlines between operations, say).  S is a slot: its byte & 7.
 *
 *	C S A	connect slot S from address A (byte % 8; stub_conn.c)
 *	L S ..	bytes up to and including the next '\n' arrive on S
 *	R S N ..	the next N bytes arrive on S (lines split anywhere)
 *	X S	the peer of S goes away
 *	B S	the peer of S stops reading, or starts again
 *	A	the password workers finish one job
 *	P	end of the loop pass, every password job finished before it
 *	p	end of the loop pass, password jobs left running
 *	T N	the clock moves on 2^(N % 24) milliseconds
 *	S	restart: everyone hangs up, chat is loaded again from the store
 *	F	the password workers fail one job (a KDF failure)
 *	K name	the operator kicks every session of name (up to '\n')
 *	k S	the operator kicks the session in slot S
 *	N name	the operator bans name (and so kicks it)
 *	U name	the operator lifts the ban on name
 *	D name	the operator deletes the account name
 *	Z V	reload, with the settings that the bits of V change (fuzz_config)
 *	W	another process takes the database's write lock, or lets it go
 *		(it lets go before a restart and at the end of the input)
 *
 * Oracles, besides ASan and UBSan: every line queued for a peer is one
 * line of valid UTF-8 holding a JSON object with a type; events go only
 * to sessions; answers (ok, error, pong) come one per request, in request
 * order, with the request's ref, pong for ping only, history pages in
 * order, inside their bounds and within limits.history_bytes, message ids
 * increasing; every message content the server shows (events, history) is
 * one that a client sent, byte for byte, and reaches only those it
 * concerns (as do all events); a login succeeds only for a live,
 * unbanned account with its current password, and nobody banned or
 * deleted keeps a session; when all have hung up nobody is online,
 * nothing is queued, nothing is parked.
 *
 * Each input starts from an empty database and a new chat core, so
 * inputs are independent and a crash reproduces from its file alone:
 *
 *	FUZZ_SESSION_TRACE=1 tests/fuzz/fuzz_session crash-...
 *
 * replays it with every line in (<-), reply (->) and event (=>) on
 * stderr, each after its connection's number, and the daemon's log.
 * tests/run-all runs it briefly from the seed corpus, with
 * tests/fuzz/session.dict; a longer run is the same command with a larger
 * -max_total_time.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include <jansson.h>
#include <sanitizer/common_interface_defs.h>
#include <sqlite3.h>

#include "chat.h"
#include "config.h"
#include "conn.h"
#include "dispatch.h"
#include "fuzz_session.h"
#include "log.h"
#include "proto.h"
#include "server.h"
#include "store.h"
#include "xmalloc.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Rate-limit tables: the real code, at a size no input can fill. */
#define FUZZ_TABLE_KEYS		1024
struct ratelimit_table	*__real_ratelimit_table_new(size_t);
struct ratelimit_table	*__wrap_ratelimit_table_new(size_t);

/* 2026-01-01T00:00:00Z: every input starts at the same time. */
#define FUZZ_EPOCH_MS		INT64_C(1767225600000)
/* Passes run at the end of an input so that parked work completes. */
#define FUZZ_SETTLE_PASSES	4

static struct server	*fz_srv;
static sqlite3		*fz_db;		/* ours, to empty the store */
static char		*fz_empty_sql;	/* deletes every row */
static char		 fz_dir[256];
static char		 fz_path[300];
static int64_t		 fz_clock;
static bool		 fz_trace;
static int64_t		 fz_last_id;	/* of the last message ok */
static bool		 fz_reloaded;	/* cfg is not fuzz_config(0) */
static bool		 fz_locked;	/* fz_db holds the write lock */

/* Message contents clients sent in this input, byte for byte. */
struct fuzz_blob {
	char	*p;
	size_t	 len;
};
static struct fuzz_blob	*fz_sent;
static size_t		 fz_nsent, fz_sentcap;

/*
 * The accounts as the answers so far define them: who registered, with
 * which password (changed by passwd), banned or not (the operator's
 * ban and unban), deleted.  A login succeeds only for a live, unbanned
 * account with its current password.
 */
struct fuzz_account {
	char		 name[PROTO_USER_MAX + 1];	/* lower case */
	struct fuzz_blob pw;
	bool		 banned;
};
static struct fuzz_account *fz_accounts;
static size_t		 fz_naccounts, fz_accountcap;

/* The scratch database goes with the process, however it ends. */
static void
fuzz_remove_files(void)
{
	char	 p[320];

	if (fz_dir[0] == '\0')
		return;
	unlink(fz_path);
	snprintf(p, sizeof(p), "%s-wal", fz_path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", fz_path);
	unlink(p);
	rmdir(fz_dir);
	fz_dir[0] = '\0';
}

void
fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "fuzz_session: %s:%d: check failed: %s\n", file, line,
	    what);
	fuzz_remove_files();
	abort();
}

int64_t
server_now_ms(void)
{
	return fz_clock;
}

int64_t
fuzz_now_ms(void)
{
	return fz_clock;
}

static void
fuzz_sent_add(const char *p, size_t len)
{
	struct fuzz_blob	*b;

	if (fz_nsent == fz_sentcap) {
		fz_sentcap = fz_sentcap ? 2 * fz_sentcap : 32;
		fz_sent = xreallocarray(fz_sent, fz_sentcap, sizeof(*fz_sent));
	}
	b = &fz_sent[fz_nsent++];
	b->p = xmalloc(len + 1);
	memcpy(b->p, p, len);
	b->len = len;
}

static bool
fuzz_sent_has(const char *p, size_t len)
{
	size_t	 i;

	for (i = 0; i < fz_nsent; i++)
		if (fz_sent[i].len == len && memcmp(fz_sent[i].p, p, len) == 0)
			return true;
	return false;
}

static void
fuzz_sent_clear(void)
{
	while (fz_nsent > 0)
		free(fz_sent[--fz_nsent].p);
}

static void
fuzz_lower(const char *name, char *out)
{
	size_t	 i;

	for (i = 0; name[i] != '\0' && i < PROTO_USER_MAX; i++)
		out[i] = (char)tolower((unsigned char)name[i]);
	out[i] = '\0';
}

static struct fuzz_account *
fuzz_account_find(const char *name)
{
	char	 key[PROTO_USER_MAX + 1];
	size_t	 i;

	fuzz_lower(name, key);
	for (i = 0; i < fz_naccounts; i++)
		if (strcmp(fz_accounts[i].name, key) == 0)
			return &fz_accounts[i];
	return NULL;
}

static void
fuzz_account_password(struct fuzz_account *a, json_t *pw)
{
	free(a->pw.p);
	a->pw.len = json_is_string(pw) ? json_string_length(pw) : 0;
	a->pw.p = xmalloc(a->pw.len + 1);
	if (a->pw.len > 0)
		memcpy(a->pw.p, json_string_value(pw), a->pw.len);
}

static void
fuzz_account_add(const char *name, json_t *pw)
{
	struct fuzz_account	*a;

	/* A name is registered once: a second ok is a finding. */
	FUZZ_CHECK(fuzz_account_find(name) == NULL);
	if (fz_naccounts == fz_accountcap) {
		fz_accountcap = fz_accountcap ? 2 * fz_accountcap : 16;
		fz_accounts = xreallocarray(fz_accounts, fz_accountcap,
		    sizeof(*fz_accounts));
	}
	a = &fz_accounts[fz_naccounts++];
	memset(a, 0, sizeof(*a));
	fuzz_lower(name, a->name);
	fuzz_account_password(a, pw);
}

static void
fuzz_account_del(struct fuzz_account *a)
{
	free(a->pw.p);
	*a = fz_accounts[--fz_naccounts];
}

static void
fuzz_accounts_clear(void)
{
	while (fz_naccounts > 0)
		fuzz_account_del(&fz_accounts[fz_naccounts - 1]);
}

/* A login's ok: the account is live, not banned, and pw is its own. */
static void
fuzz_account_login(const char *name, json_t *pw)
{
	struct fuzz_account	*a = fuzz_account_find(name);

	FUZZ_CHECK(a != NULL);
	FUZZ_CHECK(!a->banned);
	FUZZ_CHECK(json_is_string(pw));
	FUZZ_CHECK(json_string_length(pw) == a->pw.len &&
	    memcmp(json_string_value(pw), a->pw.p, a->pw.len) == 0);
}

static bool
fuzz_is_type(json_t *obj, const char *type)
{
	json_t	*t = json_object_get(obj, "type");

	return json_is_string(t) && json_string_length(t) == strlen(type) &&
	    strcmp(json_string_value(t), type) == 0;
}

/*
 * Linked with --wrap=ratelimit_table_new (Makefile.am): 65536-key tables
 * cost a mapping each per input, and an input holds a few hundred keys
 * at most, so capacity, and eviction, behave the same at FUZZ_TABLE_KEYS.
 */
struct ratelimit_table *
__wrap_ratelimit_table_new(size_t max_entries)
{
	return __real_ratelimit_table_new(max_entries < FUZZ_TABLE_KEYS ?
	    max_entries : FUZZ_TABLE_KEYS);
}

/* FUZZ_SESSION_TRACE set: every line in and out on stderr. */
static void
fuzz_trace(const struct conn *c, const char *dir, const char *data,
    size_t len)
{
	if (!fz_trace)
		return;
	if (len > 0 && data[len - 1] == '\n')
		len--;
	fprintf(stderr, "%llu %s %.*s\n", (unsigned long long)c->id, dir,
	    (int)len, data);
}

/* A request waiting for its answer: as parsed, NULL if no object. */
struct fuzz_expect {
	json_t			*req;
	struct fuzz_expect	*next;
};

void
fuzz_input_line(const struct conn *c, struct fuzz_expect_list *l,
    const char *line, size_t len)
{
	struct fuzz_expect	*e = xcalloc(1, sizeof(*e));
	json_t			*root, *content;

	fuzz_trace(c, "<-", line, len);
	/* As proto_decode parses it. */
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
	    NULL);
	if (root != NULL && !json_is_object(root)) {
		json_decref(root);
		root = NULL;
	}
	if (root != NULL && fuzz_is_type(root, "message") &&
	    json_is_string(content = json_object_get(root, "content")))
		fuzz_sent_add(json_string_value(content),
		    json_string_length(content));
	e->req = root;
	if (l->tail != NULL)
		l->tail->next = e;
	else
		l->head = e;
	l->tail = e;
}

void
fuzz_expect_clear(struct fuzz_expect_list *l)
{
	struct fuzz_expect	*e;

	while ((e = l->head) != NULL) {
		l->head = e->next;
		json_decref(e->req);
		free(e);
	}
	l->tail = NULL;
}

/* A message as events and history show it: content as it was sent. */
static void
fuzz_check_message(json_t *m)
{
	json_t	*content = json_object_get(m, "content");
	json_t	*from = json_object_get(m, "from");
	json_t	*to = json_object_get(m, "to");

	FUZZ_CHECK(fuzz_is_type(m, "message"));
	FUZZ_CHECK(json_is_integer(json_object_get(m, "id")));
	FUZZ_CHECK(json_is_string(json_object_get(m, "timestamp")));
	FUZZ_CHECK(json_is_string(from) && json_is_string(to));
	FUZZ_CHECK(proto_user_name_valid(json_string_value(from)));
	FUZZ_CHECK(proto_user_name_valid(json_string_value(to)) ||
	    proto_room_name_valid(json_string_value(to)));
	FUZZ_CHECK(json_is_string(content));
	FUZZ_CHECK(fuzz_sent_has(json_string_value(content),
	    json_string_length(content)));
}

static int64_t
fuzz_int(json_t *obj, const char *key, int64_t otherwise)
{
	json_t	*v = json_object_get(obj, key);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : otherwise;
}

/*
 * A history page: oldest first, inside the bounds asked for, at most
 * limit rows, one line of at most history_bytes unless a single message
 * is larger, and no "more" on an empty page.
 */
static void
fuzz_check_history(json_t *req, json_t *rep, size_t len)
{
	const struct config_limits *lim = &fz_srv->cfg->limits;
	json_t		*list = json_object_get(rep, "messages"), *m;
	json_t		*more = json_object_get(rep, "more");
	int64_t		 limit = fuzz_int(req, "limit", 50), prev = 0, id;
	int64_t		 before = fuzz_int(req, "before", 0);
	int64_t		 after = fuzz_int(req, "after", -1);
	size_t		 i;

	FUZZ_CHECK(json_is_array(list));
	FUZZ_CHECK(json_is_boolean(more));
	if (limit > lim->history_max)
		limit = lim->history_max;
	FUZZ_CHECK(json_array_size(list) <= (size_t)limit);
	json_array_foreach(list, i, m) {
		id = fuzz_int(m, "id", 0);
		FUZZ_CHECK(id > prev);
		FUZZ_CHECK(id > after);
		FUZZ_CHECK(before == 0 || id < before);
		prev = id;
	}
	if (json_array_size(list) > 1)
		FUZZ_CHECK(len <= lim->history_bytes);
	if (json_array_size(list) == 0)
		FUZZ_CHECK(!json_is_true(more));
}

/* rep (ok, error or pong) answers req: the ref, the type, the fields. */
static void
fuzz_check_answer(const struct conn *c, json_t *req, json_t *rep,
    size_t len)
{
	struct fuzz_account	*a;
	const char		*user;
	json_t		*ref, *rref = json_object_get(rep, "ref");
	const char	*type;

	if (req == NULL) {		/* not an object: bad_json, bad_utf8 */
		FUZZ_CHECK(fuzz_is_type(rep, "error"));
		FUZZ_CHECK(rref == NULL);
		return;
	}
	ref = json_object_get(req, "ref");
	/* A ref in an answer is the request's own. */
	if (rref != NULL)
		FUZZ_CHECK(ref != NULL && json_equal(ref, rref));
	if (fuzz_is_type(rep, "error"))
		return;
	/* Success: the request was valid, so its ref comes back. */
	FUZZ_CHECK(ref == NULL || rref != NULL);
	FUZZ_CHECK(json_is_string(json_object_get(req, "type")));
	type = json_string_value(json_object_get(req, "type"));
	FUZZ_CHECK(fuzz_is_type(rep, "pong") == (strcmp(type, "ping") == 0));
	if (strcmp(type, "history") == 0)
		fuzz_check_history(req, rep, len);
	if (strcmp(type, "message") == 0) {
		/* Ids increase in the order the oks leave. */
		FUZZ_CHECK(fuzz_int(rep, "id", 0) > fz_last_id);
		fz_last_id = fuzz_int(rep, "id", 0);
		FUZZ_CHECK(json_is_string(json_object_get(rep, "timestamp")));
	}
	if (strcmp(type, "login") == 0 || strcmp(type, "register") == 0) {
		FUZZ_CHECK(json_is_string(json_object_get(rep, "user")));
		user = json_string_value(json_object_get(rep, "user"));
		FUZZ_CHECK(proto_user_name_valid(user));
		FUZZ_CHECK(c->session != NULL);
		if (type[0] == 'r')
			fuzz_account_add(user, json_object_get(req,
			    "password"));
		else
			fuzz_account_login(user, json_object_get(req,
			    "password"));
	}
	if (strcmp(type, "passwd") == 0) {
		FUZZ_CHECK(c->session != NULL);
		a = fuzz_account_find(chat_user_name(c->session->user));
		FUZZ_CHECK(a != NULL && !a->banned);
		fuzz_account_password(a, json_object_get(req, "new"));
	}
	if (strcmp(type, "join") == 0)
		FUZZ_CHECK(json_is_array(json_object_get(rep, "members")));
}

struct fuzz_share {
	struct chat_user	*other;
	bool			 shared;
};

static void
fuzz_share_cb(struct chat_room *r, void *arg)
{
	struct fuzz_share	*sh = arg;

	if (chat_is_member(r, sh->other))
		sh->shared = true;
}

/* The session's user is a member of the room called name. */
static bool
fuzz_member_of(struct chat_user *me, json_t *name)
{
	struct chat_room	*r;

	if (!json_is_string(name) ||
	    (r = chat_room_find(fz_srv->chat, json_string_value(name))) == NULL)
		return false;
	return chat_is_member(r, me);
}

static bool
fuzz_is_me(struct chat_user *me, json_t *name)
{
	return json_is_string(name) &&
	    strcasecmp(chat_user_name(me), json_string_value(name)) == 0;
}

/*
 * An event reaches only those it concerns: a room's events its members,
 * a direct message or typing notice its two ends, presence whoever
 * shares a room with the user (and the user's own sessions).
 */
static void
fuzz_check_recipient(const struct conn *c, json_t *ev)
{
	struct chat_user	*me = c->session->user;
	struct fuzz_share	 sh = { NULL, false };
	json_t			*to = json_object_get(ev, "to");
	json_t			*user = json_object_get(ev, "user");

	if (fuzz_is_type(ev, "message") || fuzz_is_type(ev, "typing")) {
		FUZZ_CHECK(json_is_string(to));
		if (json_string_value(to)[0] == '#')
			FUZZ_CHECK(fuzz_member_of(me, to));
		else
			FUZZ_CHECK(fuzz_is_me(me, to) ||
			    fuzz_is_me(me, json_object_get(ev, "from")));
	} else if (fuzz_is_type(ev, "join") || fuzz_is_type(ev, "leave") ||
	    fuzz_is_type(ev, "topic"))
		FUZZ_CHECK(fuzz_member_of(me, json_object_get(ev, "room")));
	else if (fuzz_is_type(ev, "presence")) {
		FUZZ_CHECK(json_is_string(user));
		sh.other = chat_user_find(fz_srv->chat,
		    json_string_value(user));
		FUZZ_CHECK(sh.other != NULL);
		if (sh.other != me)
			chat_user_each_room(me, fuzz_share_cb, &sh);
		FUZZ_CHECK(sh.other == me || sh.shared);
	}
}

bool
fuzz_output_line(const struct conn *c, struct fuzz_expect_list *l,
    const char *data, size_t len, enum fuzz_out kind)
{
	struct fuzz_expect	*e;
	json_t			*root, *list, *m;
	json_error_t		 err;
	size_t			 i;
	bool			 answer;

	/* One line, UTF-8, one JSON object with a type. */
	FUZZ_CHECK(data != NULL && len >= 2);
	fuzz_trace(c, kind == FUZZ_OUT_EVENT ? "=>" : "->", data, len);
	FUZZ_CHECK(data[len - 1] == '\n');
	FUZZ_CHECK(memchr(data, '\n', len - 1) == NULL);
	FUZZ_CHECK(proto_utf8_valid(data, len));
	root = json_loadb(data, len - 1, JSON_REJECT_DUPLICATES |
	    JSON_ALLOW_NUL, &err);
	FUZZ_CHECK(root != NULL && json_is_object(root));
	FUZZ_CHECK(json_is_string(json_object_get(root, "type")));
	answer = fuzz_is_type(root, "ok") || fuzz_is_type(root, "error") ||
	    fuzz_is_type(root, "pong");
	if (fuzz_is_type(root, "error"))
		FUZZ_CHECK(json_is_string(json_object_get(root, "code")));
	if (fuzz_is_type(root, "message"))
		fuzz_check_message(root);
	if (fuzz_is_type(root, "ok") &&
	    json_is_array(list = json_object_get(root, "messages")))
		json_array_foreach(list, i, m)
			fuzz_check_message(m);
	switch (kind) {
	case FUZZ_OUT_EVENT:
		/* Events are for sessions, and never look like an answer. */
		FUZZ_CHECK(!answer);
		FUZZ_CHECK(c->session != NULL);
		fuzz_check_recipient(c, root);
		break;
	case FUZZ_OUT_REPLY:
		if (!answer)
			break;
		/* The oldest request still waiting is the one answered. */
		FUZZ_CHECK((e = l->head) != NULL);
		if ((l->head = e->next) == NULL)
			l->tail = NULL;
		fuzz_check_answer(c, e->req, root, len);
		json_decref(e->req);
		free(e);
		break;
	case FUZZ_OUT_CONN:
		FUZZ_CHECK(fuzz_is_type(root, "error"));
		break;
	}
	json_decref(root);
	return answer && kind == FUZZ_OUT_REPLY;
}

/*
 * The operator (netsockctl), as admin.c carries its commands out: kick
 * every session of a user or one session, ban, unban, delete a user.
 */
static void
fuzz_admin(uint8_t op, const char *name, int slot)
{
	struct store_user	 su;
	struct fuzz_account	*a;
	struct chat_user	*u;
	struct conn		*c;

	if (op == 'k') {
		if ((c = fuzz_conn_get(slot)) != NULL)
			account_kick(c, "kicked by the operator");
		return;
	}
	if (op == 'K') {
		(void)account_kick_user(fz_srv, name, "kicked by the operator");
		return;
	}
	memset(&su, 0, sizeof(su));
	if (store_user_find(fz_srv->store, name, &su) != STORE_OK) {
		store_user_clear(&su);
		return;
	}
	a = fuzz_account_find(su.name);
	FUZZ_CHECK(a != NULL);		/* the store knows no one else */
	switch (op) {
	case 'N':
		if (store_ban_set(fz_srv->store, su.id, "banned",
		    fz_clock) == STORE_OK) {
			a->banned = true;
			(void)account_kick_user(fz_srv, su.name, "banned");
		}
		break;
	case 'U':
		if (su.banned && store_ban_clear(fz_srv->store, su.id) ==
		    STORE_OK)
			a->banned = false;
		break;
	case 'D':
		(void)account_kick_user(fz_srv, su.name, "account deleted");
		if (store_user_del(fz_srv->store, su.id) == STORE_OK) {
			if ((u = chat_user_find(fz_srv->chat, su.name)) != NULL)
				chat_user_remove(fz_srv->chat, u);
			fuzz_account_del(a);
		}
		break;
	}
	store_user_clear(&su);
}

/* Nobody banned or deleted still has a session. */
static void
fuzz_check_sessions(void)
{
	struct fuzz_account	*a;
	struct conn		*c;
	int			 i;

	for (i = 0; i < FUZZ_SLOTS; i++) {
		if ((c = fuzz_conn_get(i)) == NULL || c->session == NULL)
			continue;
		a = fuzz_account_find(chat_user_name(c->session->user));
		FUZZ_CHECK(a != NULL && !a->banned);
	}
}

/* One pass of server_run's loop, after its callbacks. */
static void
fuzz_pass(void)
{
	conn_end_of_pass(fz_srv);
	dispatch_end_of_pass(fz_srv);
	conn_flush(fz_srv);
	fuzz_conn_check_idle();
	fuzz_check_sessions();
}

/*
 * Another process (a sqlite3 shell, a backup) takes the database's write
 * lock, or lets it go: the store's writes fail at once, and the group
 * commit waits for a later pass.
 */
static void
fuzz_lock(bool on)
{
	if (on == fz_locked)
		return;
	FUZZ_CHECK(sqlite3_exec(fz_db, on ? "BEGIN IMMEDIATE" : "COMMIT", NULL,
	    NULL, NULL) == SQLITE_OK);
	fz_locked = on;
}

/* Everyone hangs up, and whatever was under way completes. */
static void
fuzz_hangup_all(void)
{
	int	 i;

	/* What waits for the lock must be able to finish. */
	fuzz_lock(false);

	for (i = 0; i < FUZZ_SLOTS; i++)
		fuzz_conn_hangup(i);
	fuzz_auth_run(fz_srv, SIZE_MAX);
	fuzz_pass();
	FUZZ_CHECK(fuzz_conn_count() == 0 && fuzz_conn_dead() == 0);
	FUZZ_CHECK(!message_queued());
	FUZZ_CHECK(fuzz_auth_queued() == 0);
	FUZZ_CHECK(fz_srv->stats.sessions == 0);
	FUZZ_CHECK(chat_users_online(fz_srv->chat) == 0);
}

/* Rooms and memberships from the store, as server.c loads them. */
struct fuzz_loader {
	struct chat_room	**rooms;
	size_t			  n, cap;
};

static void
fuzz_load_room_cb(const struct store_room *sr, void *arg)
{
	struct fuzz_loader	*ld = arg;

	if (ld->n == ld->cap) {
		ld->cap = ld->cap ? 2 * ld->cap : 16;
		ld->rooms = xreallocarray(ld->rooms, ld->cap,
		    sizeof(*ld->rooms));
	}
	ld->rooms[ld->n++] = chat_room_add(fz_srv->chat, sr->id, sr->name,
	    sr->topic);
}

static void
fuzz_load_member_cb(int64_t room_id, int64_t user_id, const char *name,
    void *arg)
{
	struct fuzz_loader	*ld = arg;
	size_t			 i;

	for (i = 0; i < ld->n; i++)
		if (chat_room_id(ld->rooms[i]) == room_id)
			chat_member_add(ld->rooms[i],
			    chat_user_get(fz_srv->chat, user_id, name));
}

static void
fuzz_chat_start(void)
{
	struct fuzz_loader	 ld = { NULL, 0, 0 };

	fz_srv->chat = chat_new();
	account_init();
	FUZZ_CHECK(store_room_list(fz_srv->store, fuzz_load_room_cb,
	    &ld) == STORE_OK);
	FUZZ_CHECK(store_member_list(fz_srv->store, fuzz_load_member_cb,
	    &ld) == STORE_OK);
	free(ld.rooms);
}

static void
fuzz_chat_stop(void)
{
	message_free();
	account_free();
	chat_free(fz_srv->chat);
	fz_srv->chat = NULL;
}

/* A restart of the daemon on the same database. */
static void
fuzz_restart(void)
{
	fuzz_hangup_all();
	fuzz_chat_stop();
	fuzz_chat_start();
}

/*
 * Empty every table through a connection of our own, in one transaction.
 * The store holding a transaction open across passes would make this
 * wait and fail: that is a finding too.
 */
static void
fuzz_store_empty(void)
{
	char	*err = NULL;

	if (sqlite3_exec(fz_db, fz_empty_sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "fuzz_session: emptying the store: %s\n",
		    err ? err : "?");
		FUZZ_CHECK(!"the store can be emptied between inputs");
	}
}

static void
fuzz_build_empty_sql(void)
{
	sqlite3_stmt	*st;
	size_t		 len = 64, used;

	FUZZ_CHECK(sqlite3_prepare_v2(fz_db, "SELECT name FROM sqlite_master "
	    "WHERE type = 'table' AND name NOT LIKE 'sqlite_%'", -1, &st,
	    NULL) == SQLITE_OK);
	fz_empty_sql = xmalloc(len);
	used = (size_t)snprintf(fz_empty_sql, len, "BEGIN IMMEDIATE;");
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);

		len = used + strlen(name) + 64;
		fz_empty_sql = xreallocarray(fz_empty_sql, 1, len);
		used += (size_t)snprintf(fz_empty_sql + used, len - used,
		    "DELETE FROM \"%s\";", name);
	}
	sqlite3_finalize(st);
	/* AUTOINCREMENT's counters too: ids start at 1 for every input. */
	len = used + 64;
	fz_empty_sql = xreallocarray(fz_empty_sql, 1, len);
	snprintf(fz_empty_sql + used, len - used,
	    "DELETE FROM sqlite_sequence; COMMIT;");
}

static void
fuzz_teardown(void)
{
	if (fz_srv == NULL)
		return;
	store_free(fz_srv->store);
	sqlite3_close(fz_db);
	free(fz_empty_sql);
	config_free(fz_srv->cfg);
	free(fz_srv);
	fz_srv = NULL;
	fuzz_remove_files();
}

/*
 * Limits smaller than the defaults, so that short inputs reach them:
 * message_too_long, line_too_long, history pages cut by bytes, readers
 * cut off.  Valid as a configuration file could set them.
 */
static void
fuzz_limits(struct config_limits *l)
{
	l->max_line = 2048;
	l->max_message = 512;
	l->history_max = 50;
	l->history_bytes = 4096;
	l->output_buffer = 8192;
}

/*
 * A reload (server_reload's part that reaches the service layer): a new
 * snapshot, the old one freed, every connection given the new limits.
 * Each bit of variant changes some settings, all within what
 * config_load accepts.
 */
static struct config *
fuzz_config(uint8_t variant)
{
	struct config		*cfg = config_defaults(fz_dir);
	struct config_limits	*l = &cfg->limits;

	fuzz_limits(l);
	if (variant & 0x01)
		cfg->registration = false;
	if (variant & 0x02)
		cfg->rooms_allow_create = false;
	if (variant & 0x04) {
		l->messages_per_second = l->typing_per_second = 0;
		l->message_burst = l->typing_burst = 1;
	}
	if (variant & 0x08) {
		l->max_message = 64;
		l->history_max = 3;
		l->history_bytes = 1024;
		l->output_buffer = 4096;
	}
	if (variant & 0x10) {
		free(cfg->motd);
		cfg->motd = xstrdup("motd \xc3\xa9 \"quoted\" \\ \t");
	}
	if (variant & 0x20)
		l->login_failures_per_minute = l->registrations_per_hour =
		    l->rooms_per_hour = 1;
	if (variant & 0x40)
		l->ipv6_prefix = variant & 0x80 ? 48 : 128;
	else if (variant & 0x80)
		l->ipv6_prefix = 1;
	return cfg;
}

static void
fuzz_reload(uint8_t variant)
{
	struct conn	*c;
	int		 i;

	config_free(fz_srv->cfg);
	fz_srv->cfg = fuzz_config(variant);
	fz_reloaded = true;
	for (i = 0; i < FUZZ_SLOTS; i++)
		if ((c = fuzz_conn_get(i)) != NULL) {
			conn_apply_limits(c);
			account_apply_limits(c);
		}
}

static void
fuzz_setup(void)
{
	struct stat	 sb;
	const char	*tmp;
	char		*cause = NULL;
	static int	 auth_token;

	fz_trace = getenv("FUZZ_SESSION_TRACE") != NULL;
	log_set_level(fz_trace ? LOG_DEBUG : LOG_EMERG);
	proto_json_wipe_freed();
	if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) &&
	    access("/dev/shm", W_OK) == 0)
		tmp = "/dev/shm";
	else if ((tmp = getenv("TMPDIR")) == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(fz_dir, sizeof(fz_dir), "%s/fuzz_session.XXXXXX", tmp);
	FUZZ_CHECK(mkdtemp(fz_dir) != NULL);
	snprintf(fz_path, sizeof(fz_path), "%s/netsock.db", fz_dir);

	fz_srv = xcalloc(1, sizeof(*fz_srv));
	fz_srv->cfg = fuzz_config(0);
	fz_srv->state = SERVER_RUNNING;
	TAILQ_INIT(&fz_srv->conns);
	/* Never dereferenced: stub_auth.c keeps its queue to itself. */
	fz_srv->auth = (struct auth *)&auth_token;
	if ((fz_srv->store = store_open(fz_path, &cause)) == NULL) {
		fprintf(stderr, "fuzz_session: %s\n", cause);
		FUZZ_CHECK(!"the store opens");
	}
	FUZZ_CHECK(sqlite3_open_v2(fz_path, &fz_db, SQLITE_OPEN_READWRITE,
	    NULL) == SQLITE_OK);
	sqlite3_busy_timeout(fz_db, 1000);
	/* Scratch data: emptying it need not wait for the disk. */
	FUZZ_CHECK(sqlite3_exec(fz_db, "PRAGMA synchronous = OFF", NULL, NULL,
	    NULL) == SQLITE_OK);
	fuzz_build_empty_sql();
	atexit(fuzz_teardown);
	/* ASan and UBSan reports end the process without atexit. */
	__sanitizer_set_death_callback(fuzz_remove_files);
}

static void
fuzz_begin(void)
{
	fz_clock = FUZZ_EPOCH_MS;
	fz_last_id = 0;
	if (fz_reloaded) {
		config_free(fz_srv->cfg);
		fz_srv->cfg = fuzz_config(0);
		fz_reloaded = false;
	}
	memset(&fz_srv->stats, 0, sizeof(fz_srv->stats));
	fz_srv->stats.started_ms = fz_clock;
	fuzz_conn_reset();
	fuzz_auth_reset();
	fuzz_chat_start();
}

static void
fuzz_end(void)
{
	int	 i;

	fuzz_lock(false);
	for (i = 0; i < FUZZ_SETTLE_PASSES; i++) {
		fuzz_auth_run(fz_srv, SIZE_MAX);
		fuzz_pass();
	}
	fuzz_hangup_all();
	fuzz_chat_stop();
	fuzz_sent_clear();
	fuzz_accounts_clear();
	fuzz_store_empty();
}

/* The byte at *pos as a slot, or -1 at the end of the input. */
static int
fuzz_slot(const uint8_t *data, size_t size, size_t *pos)
{
	if (*pos >= size)
		return -1;
	return data[(*pos)++] % FUZZ_SLOTS;
}

static void
fuzz_run(const uint8_t *data, size_t size)
{
	const uint8_t	*eol;
	size_t		 pos = 0, n;
	int		 slot;
	uint8_t		 op;
	char		 name[PROTO_USER_MAX + 9];

	while (pos < size) {
		op = data[pos++];
		switch (op) {
		case 'C':
			if ((slot = fuzz_slot(data, size, &pos)) == -1 ||
			    pos >= size)
				return;
			(void)fuzz_conn_open(fz_srv, slot, data[pos++]);
			break;
		case 'L':
			if ((slot = fuzz_slot(data, size, &pos)) == -1)
				return;
			eol = memchr(data + pos, '\n', size - pos);
			n = eol ? (size_t)(eol - (data + pos)) + 1 : size - pos;
			fuzz_conn_input(slot, data + pos, n);
			pos += n;
			break;
		case 'R':
			if ((slot = fuzz_slot(data, size, &pos)) == -1 ||
			    pos >= size)
				return;
			n = data[pos++];
			if (n > size - pos)
				n = size - pos;
			fuzz_conn_input(slot, data + pos, n);
			pos += n;
			break;
		case 'X':
			if ((slot = fuzz_slot(data, size, &pos)) == -1)
				return;
			fuzz_conn_hangup(slot);
			break;
		case 'B':
			if ((slot = fuzz_slot(data, size, &pos)) == -1)
				return;
			fuzz_conn_block(slot);
			break;
		case 'A':
			fuzz_auth_run(fz_srv, 1);
			break;
		case 'P':
			fuzz_auth_run(fz_srv, SIZE_MAX);
			fuzz_pass();
			break;
		case 'p':
			fuzz_pass();
			break;
		case 'T':
			if (pos >= size)
				return;
			fz_clock += INT64_C(1) << (data[pos++] % 24);
			break;
		case 'S':
			fuzz_restart();
			break;
		case 'F':
			fuzz_auth_fail(fz_srv);
			break;
		case 'W':
			fuzz_lock(!fz_locked);
			break;
		case 'Z':
			if (pos >= size)
				return;
			fuzz_reload(data[pos++]);
			break;
		case 'k':
			if ((slot = fuzz_slot(data, size, &pos)) == -1)
				return;
			fuzz_admin(op, NULL, slot);
			break;
		case 'K':
		case 'N':
		case 'U':
		case 'D':
			eol = memchr(data + pos, '\n', size - pos);
			n = eol ? (size_t)(eol - (data + pos)) : size - pos;
			if (n > PROTO_USER_MAX + 8)
				n = PROTO_USER_MAX + 8;
			memcpy(name, data + pos, n);
			name[n] = '\0';
			pos += n;
			fuzz_admin(op, name, -1);
			break;
		default:
			break;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fz_srv == NULL)
		fuzz_setup();
	fuzz_begin();
	fuzz_run(data, size);
	fuzz_end();
	return 0;
}
