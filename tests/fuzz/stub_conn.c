/*
 * stub_conn: conn.h for the whole-path fuzzer.  No socket and no TLS: a
 * connection is a slot the fuzzer writes into, and what the server queues
 * for it is checked line by line (fuzz_output_line) and dropped once its
 * peer "reads" it.  The rest follows conn.c as closely as a model can:
 * framing with proto_frame at most CONN_LINES_PER_PASS lines a wake-up,
 * no reading while a request is parked or too many replies wait, events
 * left unread past output_buffer cut the reader off, close_after_flush
 * drains (at once when the peer reads, by a deadline when it does not),
 * and a closed connection is freed only after the pass, so that the
 * service layer's pointers stay valid while it runs.
 *
 * Stricter than conn.c on purpose: every line reaches dispatch_line() in
 * a buffer of exactly its length (a read past it is a heap overflow for
 * ASan), and shared events are read again when their peer reads them (a
 * block freed too early is a use after free).
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "conn.h"
#include "dispatch.h"
#include "fuzz_session.h"
#include "proto.h"
#include "server.h"
#include "xmalloc.h"

/* As in conn.c. */
#define STUB_LINES_PER_PASS	64
#define STUB_INPUT_MAX		(1024 * 1024)
#define STUB_REPLY_AHEAD	65536
#define STUB_CLOSE_MS		5000	/* a draining peer has this long */

struct stub_event {
	const void	*data;
	size_t		 len;
	void		(*cleanup)(const void *, size_t, void *);
	void		*arg;
};

struct stub_conn {
	struct conn		 c;		/* what the service layer sees */
	int			 slot;
	uint8_t			*in;		/* unframed input */
	size_t			 in_len, in_cap;
	bool			 pending;	/* input for the end of pass */
	bool			 overflow;	/* cut off at the end of pass */
	bool			 output_wait;	/* replies must leave first */
	bool			 blocked;	/* the peer reads nothing */
	size_t			 unsent_replies;
	size_t			 unread_events;
	int64_t			 close_by;	/* draining: fake clock */
	bool			 drain_session;	/* logged in when draining
						   began */
	struct stub_event	*ev;		/* events not yet read */
	size_t			 nev, evcap;
	uint64_t		 requests;	/* lines dispatched */
	uint64_t		 replies;	/* ok, error, pong queued */
	struct fuzz_expect_list	 expect;	/* requests not yet answered */
	struct stub_conn	*next_dead;
};

static struct stub_conn	*stub_slots[FUZZ_SLOTS];
static struct stub_conn	*stub_dead;		/* closed, free after pass */
static uint64_t		 stub_next_id = 1;
static bool		 stub_own_line;		/* conn's own error line */

/* Peers: per-address limits see these (two share an IPv6 /64). */
static const char *const stub_addrs[] = {
	"127.0.0.1", "127.0.0.2", "10.1.2.3", "::1",
	"2001:db8::1", "2001:db8::2", "2001:db8:0:1::1", "::ffff:127.0.0.1",
};

static void	stub_close(struct stub_conn *, const char *);

static struct stub_conn *
stub_of(const struct conn *c)
{
	return (struct stub_conn *)c;
}

static void
stub_set_state(struct stub_conn *s, enum conn_state to)
{
	/* conn.c's transitions: forward only, DRAINING from OPEN alone. */
	FUZZ_CHECK(to > s->c.state);
	FUZZ_CHECK(to != CONN_STATE_DRAINING ||
	    s->c.state == CONN_STATE_OPEN);
	s->c.state = to;
}

struct conn *
conn_find(uint64_t id)
{
	int	 i;

	for (i = 0; i < FUZZ_SLOTS; i++)
		if (stub_slots[i] != NULL && stub_slots[i]->c.id == id)
			return &stub_slots[i]->c;
	return NULL;
}

static bool
stub_can_send(const struct stub_conn *s)
{
	return s->c.state == CONN_STATE_OPEN && !s->overflow;
}

static void
stub_check_output(struct stub_conn *s)
{
	/* conn.c guards memory during a pass at twice output_buffer. */
	if (s->unread_events > 2 * s->c.srv->cfg->limits.output_buffer)
		s->overflow = true;
}

void
conn_send(struct conn *c, const void *data, size_t len)
{
	struct stub_conn	*s = stub_of(c);

	if (!stub_can_send(s))
		return;
	if (fuzz_output_line(c, &s->expect, data, len, stub_own_line ?
	    FUZZ_OUT_CONN : FUZZ_OUT_REPLY))
		s->replies++;
	s->unsent_replies += len;
	stub_check_output(s);
}

void
conn_send_json(struct conn *c, json_t *obj)
{
	size_t	 len;
	char	*buf = proto_dump(obj, &len);

	conn_send(c, buf, len);
	free(buf);
}

void
conn_send_shared(struct conn *c, const void *data, size_t len,
    void (*cleanup)(const void *, size_t, void *), void *arg)
{
	struct stub_conn	*s = stub_of(c);
	struct stub_event	*e;

	if (!stub_can_send(s)) {
		cleanup(data, len, arg);
		return;
	}
	(void)fuzz_output_line(c, &s->expect, data, len, FUZZ_OUT_EVENT);
	if (s->nev == s->evcap) {
		s->evcap = s->evcap ? 2 * s->evcap : 8;
		s->ev = xreallocarray(s->ev, s->evcap, sizeof(*s->ev));
	}
	e = &s->ev[s->nev++];
	e->data = data;
	e->len = len;
	e->cleanup = cleanup;
	e->arg = arg;
	s->unread_events += len;
	stub_check_output(s);
}

/* The peer read (or will never read) the queued events: let them go. */
static void
stub_drop_events(struct stub_conn *s, bool read)
{
	size_t	 i;

	for (i = 0; i < s->nev; i++) {
		/* Still the line it was when queued: not freed meanwhile. */
		if (read)
			FUZZ_CHECK(proto_utf8_valid(s->ev[i].data,
			    s->ev[i].len) && ((const char *)s->ev[i].data)
			    [s->ev[i].len - 1] == '\n');
		s->ev[i].cleanup(s->ev[i].data, s->ev[i].len, s->ev[i].arg);
	}
	s->nev = 0;
	s->unread_events = 0;
}

static void
stub_close(struct stub_conn *s, const char *reason)
{
	struct conn	*c = &s->c;

	if (conn_closed(c))
		return;
	stub_set_state(s, CONN_STATE_CLOSED);
	c->close_reason = reason;
	stub_slots[s->slot] = NULL;
	s->pending = s->overflow = s->output_wait = false;
	dispatch_closed(c);
	/* Out of chat, nothing parked: the service layer let go of c. */
	FUZZ_CHECK(c->session == NULL);
	FUZZ_CHECK(c->wait == NULL);
	stub_drop_events(s, false);
	s->unsent_replies = 0;
	s->next_dead = stub_dead;
	stub_dead = s;
}

void
conn_close(struct conn *c, const char *reason)
{
	stub_close(stub_of(c), reason);
}

/*
 * A write: everything goes when the peer reads.  When it does not, a
 * draining connection waits for its deadline and an open one is cut off
 * once the events it leaves unread pass output_buffer.  False if c closed.
 */
static bool
stub_write(struct stub_conn *s)
{
	const struct config_limits *lim = &s->c.srv->cfg->limits;

	if (!s->blocked) {
		stub_drop_events(s, true);
		s->unsent_replies = 0;
		if (s->c.state == CONN_STATE_DRAINING) {
			stub_close(s, s->c.close_reason);
			return false;
		}
		if (s->output_wait) {
			s->output_wait = false;
			if (!(s->c.flags & CONN_F_WAITING))
				s->pending = true;
		}
		return true;
	}
	if (s->c.state == CONN_STATE_DRAINING) {
		if (fuzz_now_ms() >= s->close_by) {
			stub_close(s, "flush_timeout");
			return false;
		}
		return true;
	}
	if (s->unread_events > lim->output_buffer) {
		s->c.srv->stats.slow_readers++;
		stub_close(s, "output_buffer_full");
		return false;
	}
	return true;
}

void
conn_close_after_flush(struct conn *c, const char *reason)
{
	struct stub_conn	*s = stub_of(c);

	if (c->state == CONN_STATE_DRAINING || conn_closed(c))
		return;
	stub_set_state(s, CONN_STATE_DRAINING);
	c->close_reason = reason;
	s->drain_session = c->session != NULL;
	s->close_by = fuzz_now_ms() + STUB_CLOSE_MS;
	s->pending = false;
	(void)stub_write(s);
}

void
conn_resume(struct conn *c)
{
	struct stub_conn	*s = stub_of(c);

	c->flags &= ~CONN_F_WAITING;
	if (c->state == CONN_STATE_OPEN && s->in_len > 0)
		s->pending = true;
}

static void
stub_line_too_long(struct stub_conn *s)
{
	char	 msg[96];

	snprintf(msg, sizeof(msg), "line longer than %zu bytes",
	    s->c.srv->cfg->limits.max_line);
	stub_own_line = true;
	conn_send_json(&s->c, proto_error(NULL, PROTO_ERR_LINE_TOO_LONG,
	    msg));
	stub_own_line = false;
	conn_close_after_flush(&s->c, "line_too_long");
}

/* Frame and dispatch up to STUB_LINES_PER_PASS lines, as conn.c does. */
static void
stub_process_input(struct stub_conn *s)
{
	struct conn		*c = &s->c;
	size_t			 max_line = c->srv->cfg->limits.max_line;
	size_t			 take, len;
	enum proto_frame	 frame;
	uint8_t			*eol;
	char			*line;
	int			 n;

	for (n = 0; n < STUB_LINES_PER_PASS; n++) {
		if (c->state != CONN_STATE_OPEN || s->overflow ||
		    (c->flags & CONN_F_WAITING))
			break;
		if (s->unsent_replies > STUB_REPLY_AHEAD) {
			s->output_wait = true;
			break;
		}
		eol = s->in_len > 0 ? memchr(s->in, '\n', s->in_len) : NULL;
		frame = proto_frame(eol ? eol - s->in : -1, s->in_len,
		    max_line, &take);
		if (frame == PROTO_FRAME_NEED_MORE)
			break;
		if (frame == PROTO_FRAME_TOO_LONG) {
			stub_line_too_long(s);
			break;
		}
		len = proto_frame_strip((const char *)s->in, take);
		if (len > max_line) {
			stub_line_too_long(s);
			break;
		}
		/* Exactly len bytes: reading past the line is an overflow. */
		line = len > 0 ? xmalloc(len) : NULL;
		if (len > 0)
			memcpy(line, s->in, len);
		memmove(s->in, s->in + take, s->in_len - take);
		s->in_len -= take;
		if (len > 0) {
			fuzz_input_line(c, &s->expect, line, len);
			s->requests++;
			dispatch_line(c, line, len);
		}
		free(line);
	}
	if (n == STUB_LINES_PER_PASS && s->in_len > 0 &&
	    c->state == CONN_STATE_OPEN)
		s->pending = true;
}

bool
fuzz_conn_open(struct server *srv, int slot, int addr)
{
	struct stub_conn	*s;
	struct sockaddr_in	*s4;
	struct sockaddr_in6	*s6;
	const char		*a = stub_addrs[addr % FUZZ_NITEMS(stub_addrs)];
	uint16_t		 port = (uint16_t)(40000 + slot);

	if (stub_slots[slot] != NULL)
		return false;
	s = xcalloc(1, sizeof(*s));
	s->slot = slot;
	s->c.id = stub_next_id++;
	s->c.srv = srv;
	s->c.fd = -1;
	s->c.state = CONN_STATE_HANDSHAKE;
	if (strchr(a, ':') != NULL) {
		s6 = (struct sockaddr_in6 *)&s->c.peer;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		FUZZ_CHECK(inet_pton(AF_INET6, a, &s6->sin6_addr) == 1);
		snprintf(s->c.peer_text, sizeof(s->c.peer_text), "[%s]:%u", a,
		    port);
	} else {
		s4 = (struct sockaddr_in *)&s->c.peer;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		FUZZ_CHECK(inet_pton(AF_INET, a, &s4->sin_addr) == 1);
		snprintf(s->c.peer_text, sizeof(s->c.peer_text), "%s:%u", a,
		    port);
	}
	s->c.connected_ms = fuzz_now_ms();
	stub_slots[slot] = s;
	stub_set_state(s, CONN_STATE_OPEN);
	dispatch_welcome(&s->c);
	return true;
}

void
fuzz_conn_input(int slot, const uint8_t *data, size_t len)
{
	struct stub_conn	*s = stub_slots[slot];
	size_t			 max_line;

	/* A draining connection reads no more. */
	if (s == NULL || s->c.state != CONN_STATE_OPEN || len == 0)
		return;
	max_line = s->c.srv->cfg->limits.max_line;
	if (s->in_len + len > s->in_cap) {
		s->in_cap = s->in_len + len + 256;
		s->in = xreallocarray(s->in, 1, s->in_cap);
	}
	memcpy(s->in + s->in_len, data, len);
	s->in_len += len;
	if (s->in_len > STUB_INPUT_MAX + 2 * max_line) {
		stub_own_line = true;
		conn_send_json(&s->c, proto_error(NULL, PROTO_ERR_RATE_LIMITED,
		    "too much unanswered input; slow down"));
		stub_own_line = false;
		conn_close_after_flush(&s->c, "input_flood");
		return;
	}
	if (!s->pending)
		stub_process_input(s);
}

void
fuzz_conn_hangup(int slot)
{
	if (stub_slots[slot] != NULL)
		stub_close(stub_slots[slot], "eof");
}

struct conn *
fuzz_conn_get(int slot)
{
	return stub_slots[slot] != NULL ? &stub_slots[slot]->c : NULL;
}

void
fuzz_conn_block(int slot)
{
	if (stub_slots[slot] != NULL)
		stub_slots[slot]->blocked = !stub_slots[slot]->blocked;
}

/* After the pass: cut off who overflowed, then the input left over. */
void
conn_end_of_pass(struct server *srv)
{
	bool	 work[FUZZ_SLOTS];
	int	 i;

	for (i = 0; i < FUZZ_SLOTS; i++)
		if (stub_slots[i] != NULL && stub_slots[i]->overflow) {
			srv->stats.slow_readers++;
			stub_close(stub_slots[i], "output_buffer_full");
		}
	/* Taken whole first: handling one may schedule any for next pass. */
	for (i = 0; i < FUZZ_SLOTS; i++) {
		work[i] = stub_slots[i] != NULL && stub_slots[i]->pending;
		if (work[i])
			stub_slots[i]->pending = false;
	}
	for (i = 0; i < FUZZ_SLOTS; i++)
		if (work[i] && stub_slots[i] != NULL)
			stub_process_input(stub_slots[i]);
}

bool
conn_has_work(void)
{
	int	 i;

	for (i = 0; i < FUZZ_SLOTS; i++)
		if (stub_slots[i] != NULL &&
		    (stub_slots[i]->pending || stub_slots[i]->overflow))
			return true;
	return false;
}

/* One write each, then the frees conn.c defers to the next loop pass. */
void
conn_flush(struct server *srv)
{
	struct stub_conn	*s;
	int			 i;

	for (i = 0; i < FUZZ_SLOTS; i++)
		if (stub_slots[i] != NULL)
			(void)stub_write(stub_slots[i]);
	while ((s = stub_dead) != NULL) {
		stub_dead = s->next_dead;
		fuzz_expect_clear(&s->expect);
		free(s->in);
		free(s->ev);
		free(s);
	}
}

void
fuzz_conn_check_idle(void)
{
	struct stub_conn	*s;
	int			 i;

	for (i = 0; i < FUZZ_SLOTS; i++) {
		/* A connection being closed starts no session (account_kick:
		 * out of chat at once). */
		if ((s = stub_slots[i]) != NULL &&
		    s->c.state == CONN_STATE_DRAINING)
			FUZZ_CHECK(s->drain_session || s->c.session == NULL);
		if (s == NULL || s->c.state != CONN_STATE_OPEN || s->pending ||
		    s->overflow || s->output_wait ||
		    (s->c.flags & CONN_F_WAITING) || s->c.uncommitted > 0 ||
		    (s->in_len > 0 && memchr(s->in, '\n', s->in_len) != NULL))
			continue;
		/* Exactly one reply per request (dispatch.h). */
		FUZZ_CHECK(s->replies == s->requests);
		FUZZ_CHECK(s->expect.head == NULL);
	}
}

size_t
fuzz_conn_count(void)
{
	size_t	 n = 0;
	int	 i;

	for (i = 0; i < FUZZ_SLOTS; i++)
		n += stub_slots[i] != NULL;
	return n;
}

size_t
fuzz_conn_dead(void)
{
	struct stub_conn	*s;
	size_t			 n = 0;

	for (s = stub_dead; s != NULL; s = s->next_dead)
		n++;
	return n;
}

void
fuzz_conn_reset(void)
{
	stub_next_id = 1;
}

void
conn_apply_limits(struct conn *c)
{
}

void
conn_forget_listener(struct listener *l)
{
}

const char *
conn_tls_version(const struct conn *c)
{
	return "TLSv1.3";
}

const char *
conn_tls_cipher(const struct conn *c)
{
	return "TLS_AES_256_GCM_SHA384";
}

void
conn_table_init(void)
{
}

void
conn_table_free(void)
{
}
