/*
 * message: messages, typing and history.  Messages accepted during one
 * pass of the event loop are queued and written in one transaction at the
 * end of the pass (group commit); only then do their senders get the ok
 * with the id, and the recipients the event, in id order.
 */
#include <sys/queue.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "chat.h"
#include "config.h"
#include "conn.h"
#include "dispatch.h"
#include "log.h"
#include "proto.h"
#include "ratelimit.h"
#include "server.h"
#include "store.h"
#include "xmalloc.h"

/*
 * How long queued messages wait for the database's write lock, trying
 * again at every pass, before their senders get an error instead.
 */
#define MESSAGE_BUSY_MAX_MS	2000

/* Why a request cannot go on: a code and a line for people. */
struct message_err {
	enum proto_err		 code;
	char			 text[160];
};

struct message_queued {
	uint64_t		 conn_id;
	json_t			*ref;		/* new reference or NULL */
	int64_t			 from_id;
	char			*from;
	int64_t			 room_id;	/* 0 for a direct message */
	int64_t			 to_id;		/* 0 for a room message */
	char			*to;
	char			*content;
	size_t			 content_len;
	int64_t			 ts_ms;
	int64_t			 id;
	json_t			*reply;		/* not a message: only this
						   error reply, in its turn */
	bool			 flood;		/* close after the reply */
	TAILQ_ENTRY(message_queued) entry;
};

static TAILQ_HEAD(, message_queued) message_queue =
    TAILQ_HEAD_INITIALIZER(message_queue);
/* Monotonic ms since when the write lock has been taken; 0: it is not. */
static int64_t	message_busy_since;

/* Where a message or typing notice goes: a room or a user. */
struct message_target {
	struct chat_room	*room;
	struct chat_user	*user;		/* online or a room member */
	int64_t			 user_id;
	char			 user_name[PROTO_USER_MAX + 1];
};

static int
message_error(struct message_err *e, enum proto_err code, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

static int
message_error(struct message_err *e, enum proto_err code, const char *fmt, ...)
{
	va_list	 ap;

	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->text, sizeof(e->text), fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * Resolve 'to' for the session's user.  Room: it must exist and the user
 * be a member.  User: the account must exist.  -1 with *e on failure.
 */
static int
message_resolve(struct conn *c, const char *to, struct message_target *t,
    struct message_err *e)
{
	struct server		*srv = c->srv;
	struct store_user	 su;
	int			 rc;

	memset(t, 0, sizeof(*t));
	if (to[0] == '#') {
		t->room = chat_room_find(srv->chat, to);
		if (t->room == NULL)
			return message_error(e, PROTO_ERR_NO_SUCH_ROOM,
			    "no room %s", to);
		if (!chat_is_member(t->room, c->session->user))
			return message_error(e, PROTO_ERR_NOT_MEMBER,
			    "not a member of %s", chat_room_name(t->room));
		return 0;
	}
	if ((t->user = chat_user_find(srv->chat, to)) != NULL) {
		t->user_id = chat_user_id(t->user);
		snprintf(t->user_name, sizeof(t->user_name), "%s",
		    chat_user_name(t->user));
		return 0;
	}
	/* An invalid name is never looked up: su must be clear for it too. */
	memset(&su, 0, sizeof(su));
	rc = proto_user_name_valid(to) ?
	    store_user_find(srv->store, to, &su) : STORE_NOT_FOUND;
	if (rc == STORE_OK) {
		t->user_id = su.id;
		snprintf(t->user_name, sizeof(t->user_name), "%s", su.name);
	}
	store_user_clear(&su);
	if (rc == STORE_NOT_FOUND)
		return message_error(e, PROTO_ERR_NO_SUCH_USER, "no user %s",
		    to);
	if (rc != STORE_OK)
		return message_error(e, PROTO_ERR_INTERNAL,
		    "the account database is unavailable");
	return 0;
}

/*
 * A request refused for its rate: counted, logged once per run of
 * refusals, and *flood once too many in a row mean the connection must
 * end.  Always -1, with *e filled.
 */
static int
message_refuse(struct conn *c, const char *what, struct message_err *e,
    bool *flood)
{
	struct chat_session	*s = c->session;
	char			 sid[24];
	struct log_field	 f[2] = { { "SESSION", sid },
				    { "USER", chat_user_name(s->user) } };

	c->srv->stats.rate_limited++;
	snprintf(sid, sizeof(sid), "%llu", (unsigned long long)c->id);
	if (s->strikes++ == 0)
		log_emit(LOG_NOTICE, LOG_ID_RATE_LIMITED, f, 2,
		    "session=%s event=rate_limited user=%s", sid, f[1].value);
	*flood = s->strikes >= DISPATCH_MAX_STRIKES;
	return message_error(e, PROTO_ERR_RATE_LIMITED, "slow down: too many "
	    "%s", what);
}

/*
 * Take a token from the session's bucket.  Refused: rate_limited, and
 * *flood once too many refusals in a row mean the connection must end.
 */
static int
message_allowed(struct conn *c, const char *what, struct ratelimit *rl,
    struct message_err *e, bool *flood)
{
	*flood = false;
	if (ratelimit_take(rl, server_now_ms())) {
		c->session->strikes = 0;
		return 0;
	}
	return message_refuse(c, what, e, flood);
}

/* Answer a failed request now; a flood ends with the connection. */
static void
message_fail(struct conn *c, const json_t *ref, const struct message_err *e,
    bool flood)
{
	dispatch_fail(c, ref, e->code, "%s", e->text);
	if (flood)
		conn_close_after_flush(c, "flood");
}

/*
 * The bucket for requests that reach others besides messages and typing
 * (join, leave, topic, presence): the message rate and burst, in a bucket
 * of its own, set up on first use and following reloads.
 */
static struct ratelimit *
message_fanout_bucket(struct conn *c)
{
	const struct config_limits *lim = &c->srv->cfg->limits;
	struct ratelimit	*rl = &c->session->fanout;

	if (rl->burst == 0 && rl->last_ms == 0)
		ratelimit_init(rl, lim->messages_per_second, lim->message_burst,
		    server_now_ms());
	else
		ratelimit_configure(rl, lim->messages_per_second,
		    lim->message_burst);
	return rl;
}

bool
message_fanout_allowed(struct conn *c, const struct proto_request *req)
{
	struct message_err	 e;
	bool			 flood;

	if (message_allowed(c, "requests that reach others",
	    message_fanout_bucket(c), &e, &flood) == 0)
		return true;
	message_fail(c, req->ref, &e, flood);
	return false;
}

void
message_rate_limited(struct conn *c, const struct proto_request *req,
    const char *what)
{
	struct message_err	 e;
	bool			 flood;

	message_refuse(c, what, &e, &flood);
	message_fail(c, req->ref, &e, flood);
}

void
message_send(struct conn *c, struct proto_request *req)
{
	struct message_target	 t;
	struct message_queued	*m;
	struct message_err	 e;
	struct chat_user	*me = c->session->user;
	size_t			 max = c->srv->cfg->limits.max_message;
	bool			 flood = false;
	int			 rc;

	if (req->content_len > max)
		rc = message_error(&e, PROTO_ERR_MESSAGE_TOO_LONG, "messages "
		    "are at most %zu bytes", max);
	else if ((rc = message_resolve(c, req->to, &t, &e)) == 0)
		rc = message_allowed(c, "messages", &c->session->messages, &e,
		    &flood);
	/*
	 * A failure behind messages not yet committed waits its turn in the
	 * queue, so that every reply leaves in request order.
	 */
	if (rc == -1 && c->uncommitted == 0) {
		message_fail(c, req->ref, &e, flood);
		return;
	}
	m = xcalloc(1, sizeof(*m));
	m->conn_id = c->id;
	m->ref = req->ref ? json_incref(req->ref) : NULL;
	c->uncommitted++;
	TAILQ_INSERT_TAIL(&message_queue, m, entry);
	if (rc == -1) {
		m->reply = proto_error(req->ref, e.code, e.text);
		m->flood = flood;
		return;
	}
	m->from_id = chat_user_id(me);
	m->from = xstrdup(chat_user_name(me));
	if (t.room != NULL) {
		m->room_id = chat_room_id(t.room);
		m->to = xstrdup(chat_room_name(t.room));
	} else {
		m->to_id = t.user_id;
		m->to = xstrdup(t.user_name);
	}
	/* By length: content may hold NULs ("\u0000"), kept as sent. */
	m->content = xmalloc(req->content_len + 1);
	memcpy(m->content, req->content, req->content_len);
	m->content[req->content_len] = '\0';
	m->content_len = req->content_len;
	m->ts_ms = server_now_ms();
}

static void
message_count_cb(struct chat_session *s, void *arg)
{
	struct server	*srv = ((struct conn *)s->owner)->srv;

	srv->stats.messages_out++;
	dispatch_event_send(s, arg);
}

/* Committed: ok to the sender, the event to everyone else concerned. */
static void
message_deliver(struct server *srv, struct message_queued *m)
{
	struct conn		*c = conn_find(m->conn_id);
	struct chat_session	*except = c ? c->session : NULL;
	struct dispatch_event	*ev;
	struct chat_room	*r;
	struct chat_user	*u;
	json_t			*ok;
	char			 ts[PROTO_TIME_LEN], *line;
	size_t			 len;

	srv->stats.messages_in++;
	if (c != NULL) {
		proto_format_time(m->ts_ms, ts);
		ok = proto_ok(m->ref);
		json_object_set_new(ok, "id", json_integer(m->id));
		json_object_set_new(ok, "timestamp", json_string(ts));
		dispatch_reply(c, ok);
	}
	line = proto_message_line(m->id, m->from, m->to, m->content,
	    m->content_len, m->ts_ms, &len);
	ev = dispatch_event_take(line, len);
	if (m->room_id != 0) {
		if ((r = chat_room_find(srv->chat, m->to)) != NULL)
			chat_deliver_room(r, except, message_count_cb, ev);
	} else {
		/* The recipient's sessions, then the sender's other ones. */
		if ((u = chat_user_find(srv->chat, m->to)) != NULL &&
		    chat_user_id(u) != m->from_id)
			chat_deliver_user(u, NULL, message_count_cb, ev);
		if ((u = chat_user_find(srv->chat, m->from)) != NULL)
			chat_deliver_user(u, except, message_count_cb, ev);
	}
	dispatch_event_put(ev);
}

static void
message_queued_free(struct message_queued *m)
{
	json_decref(m->reply);
	json_decref(m->ref);
	free(m->from);
	free(m->to);
	free(m->content);
	free(m);
}

/* After the commit (or its failure), run what each sender parked. */
static void
message_release(struct conn *c)
{
	struct dispatch_wait	*w = c->wait;
	struct proto_request	 req;

	c->uncommitted = 0;
	if (w != NULL && w->has_req) {
		req = w->req;
		w->has_req = false;
		c->flags &= ~CONN_F_WAITING;
		dispatch_request(c, &req);
		proto_request_clear(&req);
		if ((c->flags & CONN_F_WAITING) || conn_closed(c))
			return;
	}
	conn_resume(c);
}

/*
 * The write lock is taken (store_begin() said STORE_BUSY, having waited
 * a few milliseconds at most): whether the queue may wait for the next
 * pass, rather than fail now.
 */
static bool
message_busy_wait(void)
{
	struct timespec	 ts;
	int64_t		 now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (message_busy_since == 0)
		message_busy_since = now;
	return now - message_busy_since < MESSAGE_BUSY_MAX_MS;
}

void
message_commit(struct server *srv)
{
	struct message_queued	*m;
	struct conn		*c;
	bool			 ok = true;
	int			 rc;

	if (TAILQ_EMPTY(&message_queue))
		return;
	/* Nobody is answered yet: the senders wait, in order. */
	if ((rc = store_begin(srv->store)) == STORE_BUSY &&
	    message_busy_wait())
		return;
	message_busy_since = 0;
	if (rc != STORE_OK)
		ok = false;
	TAILQ_FOREACH(m, &message_queue, entry) {
		if (!ok)
			break;
		if (m->reply != NULL)
			continue;
		if (store_message_add(srv->store, m->from_id, m->from,
		    m->room_id, m->to_id, m->to, m->content, m->content_len,
		    m->ts_ms, &m->id) != STORE_OK) {
			store_rollback(srv->store);
			ok = false;
		}
	}
	if (ok && store_commit(srv->store) != STORE_OK)
		ok = false;
	while ((m = TAILQ_FIRST(&message_queue)) != NULL) {
		TAILQ_REMOVE(&message_queue, m, entry);
		c = conn_find(m->conn_id);
		if (m->reply != NULL) {
			if (c != NULL) {
				dispatch_reply(c, m->reply);
				if (m->flood)
					conn_close_after_flush(c, "flood");
			} else
				json_decref(m->reply);
			m->reply = NULL;
		} else if (ok)
			message_deliver(srv, m);
		else if (c != NULL)
			dispatch_fail(c, m->ref, PROTO_ERR_INTERNAL,
			    "the message could not be stored; not sent");
		/* The sender's last queued message releases it. */
		if (c != NULL && --c->uncommitted == 0 &&
		    !conn_closed(c))
			message_release(c);
		message_queued_free(m);
	}
}

void
message_reply_in_turn(struct conn *c, json_t *reply)
{
	struct message_queued	*m = xcalloc(1, sizeof(*m));

	m->conn_id = c->id;
	m->reply = reply;
	c->uncommitted++;
	TAILQ_INSERT_TAIL(&message_queue, m, entry);
}

bool
message_queued(void)
{
	return !TAILQ_EMPTY(&message_queue);
}

void
message_free(void)
{
	struct message_queued	*m;

	while ((m = TAILQ_FIRST(&message_queue)) != NULL) {
		TAILQ_REMOVE(&message_queue, m, entry);
		message_queued_free(m);
	}
	message_busy_since = 0;
	room_free();
}

void
message_typing(struct conn *c, struct proto_request *req)
{
	struct message_target	 t;
	struct dispatch_event	*ev;
	struct chat_user	*me = c->session->user;
	struct message_err	 e;
	bool			 flood = false;

	if (message_resolve(c, req->to, &t, &e) == -1 ||
	    message_allowed(c, "typing notices", &c->session->typing, &e,
	    &flood) == -1) {
		message_fail(c, req->ref, &e, flood);
		return;
	}
	dispatch_reply(c, proto_ok(req->ref));
	ev = dispatch_event_new(json_pack("{s:s, s:s, s:s, s:s}", "type",
	    "typing", "from", chat_user_name(me), "to", t.room ?
	    chat_room_name(t.room) : t.user_name, "state",
	    req->typing_start ? "start" : "stop"));
	if (t.room != NULL)
		chat_deliver_room(t.room, c->session, dispatch_event_send, ev);
	else if (t.user != NULL && t.user != me)
		chat_deliver_user(t.user, NULL, dispatch_event_send, ev);
	dispatch_event_put(ev);
}

/*
 * A history page being built: encoded events, nearest the page's anchor
 * first, within a budget of bytes (the first event aside).
 */
struct message_page {
	char			**lines;	/* without their "\n" */
	size_t			 *lens;
	size_t			  n, cap;
	size_t			  bytes;	/* lines and commas */
	size_t			  budget;
};

static bool
message_page_add(const struct store_message *sm, void *arg)
{
	struct message_page	*pg = arg;
	char			*line;
	size_t			 len, need;

	line = proto_message_line(sm->id, sm->from, sm->to, sm->content,
	    sm->content_len, sm->ts_ms, &len);
	len--;				/* its "\n" stays out */
	need = pg->n > 0 ? len + 1 : len;	/* a comma before */
	if (pg->n > 0 && (pg->bytes >= pg->budget ||
	    need > pg->budget - pg->bytes)) {
		free(line);
		return false;
	}
	if (pg->n == pg->cap) {
		pg->cap = pg->cap == 0 ? 16 : pg->cap * 2;
		pg->lines = xreallocarray(pg->lines, pg->cap,
		    sizeof *pg->lines);
		pg->lens = xreallocarray(pg->lens, pg->cap, sizeof *pg->lens);
	}
	pg->lines[pg->n] = line;
	pg->lens[pg->n++] = len;
	pg->bytes += need;
	return true;
}

/* Oldest first, as history replies are, from newest first. */
static void
message_page_reverse(struct message_page *pg)
{
	size_t	 i, j, len;
	char	*line;

	for (i = 0, j = pg->n; i + 1 < j; i++, j--) {
		line = pg->lines[i];
		pg->lines[i] = pg->lines[j - 1];
		pg->lines[j - 1] = line;
		len = pg->lens[i];
		pg->lens[i] = pg->lens[j - 1];
		pg->lens[j - 1] = len;
	}
}

static void
message_page_free(struct message_page *pg)
{
	size_t	i;

	for (i = 0; i < pg->n; i++)
		free(pg->lines[i]);
	free(pg->lines);
	free(pg->lens);
}

/*
 * history: at most limit messages, and (but for the first) no more than
 * fit in one reply line of limits.history_bytes; "more" says whether the
 * page stopped short of the end in its direction.
 */
void
message_history(struct conn *c, struct proto_request *req)
{
	struct server		*srv = c->srv;
	const struct config_limits *lim = &srv->cfg->limits;
	struct message_target	 t;
	struct message_err	 e;
	struct message_page	 page = { 0 };
	struct store_page	 q = { 0 };
	size_t			 overhead, len;
	int64_t			 limit;
	char			*line;
	bool			 more = false;
	int			 rc;

	if (message_resolve(c, req->with, &t, &e) == -1) {
		message_fail(c, req->ref, &e, false);
		return;
	}
	limit = req->has_limit ? req->limit : 50;
	if (limit > lim->history_max)
		limit = lim->history_max;
	q.limit = (int)limit;
	q.before = req->has_before ? req->before : 0;
	q.has_after = req->has_after;
	q.after = req->after;
	overhead = proto_history_overhead(req->ref);
	page.budget = lim->history_bytes > overhead ?
	    lim->history_bytes - overhead : 0;
	/* Text longer than the budget is longer still as JSON. */
	q.max_bytes = page.budget > 0 ? page.budget : 1;
	/* "before": 0 asks for ids below 0: there are none. */
	if (req->has_before && req->before == 0)
		rc = STORE_OK;
	else if (t.room != NULL)
		rc = store_history_room(srv->store, chat_room_id(t.room), &q,
		    message_page_add, &page, &more);
	else
		rc = store_history_direct(srv->store,
		    chat_user_id(c->session->user), t.user_id, &q,
		    message_page_add, &page, &more);
	if (rc != STORE_OK) {
		message_page_free(&page);
		dispatch_fail(c, req->ref, PROTO_ERR_INTERNAL,
		    "history is unavailable");
		return;
	}
	if (!q.has_after)
		message_page_reverse(&page);
	line = proto_history_line(req->ref, page.lines, page.lens, page.n,
	    more, &len);
	message_page_free(&page);
	conn_send(c, line, len);
	free(line);
}
