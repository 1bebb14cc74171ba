/* conn: TLS client connections: framing, timeouts, output caps, close. */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "config.h"
#include "conn.h"
#include "dispatch.h"
#include "listener.h"
#include "log.h"
#include "proto.h"
#include "secret.h"
#include "server.h"
#include "xmalloc.h"

/* Lines handled per connection per wake-up, so one busy peer cannot
 * monopolise the loop; the rest waits for the end of the pass. */
#define CONN_LINES_PER_PASS	64
#define CONN_HASH_BUCKETS	16384
/*
 * Closing is bounded (the contract: a connection being closed is gone,
 * descriptor included, within 5 seconds): what is queued has
 * CONN_DRAIN_MS to leave, then the socket lingers (reading and dropping
 * what the peer still sends, so our close does not turn into a reset
 * that eats the last reply) for CONN_LINGER_MS, and all of it ends
 * CONN_CLOSE_MS after the close was decided, however the peer behaves.
 */
#define CONN_DRAIN_MS		3000
#define CONN_LINGER_MS		2000
#define CONN_CLOSE_MS		4500
#define CONN_READ_CHUNK		16384	/* a TLS record's worth of payload */
#define CONN_READS_PER_PASS	4	/* records read per wake-up */
#define CONN_INPUT_MAX		(1024 * 1024) /* unprocessed input, plus lines */
/* Replies waiting to be written before the next request is read: enough
 * to keep a pipelining client busy, small against output_buffer. */
#define CONN_REPLY_AHEAD	65536

/* Every list a connection can be on, each with its own link and flag. */
static struct conn_list	 conn_pending = TAILQ_HEAD_INITIALIZER(conn_pending);
static struct conn_list	 conn_overflow = TAILQ_HEAD_INITIALIZER(conn_overflow);
static struct conn_list	 conn_flushq = TAILQ_HEAD_INITIALIZER(conn_flushq);
static struct conn_list	*conn_work;		/* during conn_end_of_pass */

static struct conn	*conn_hash[CONN_HASH_BUCKETS];
static uint64_t		 conn_next_id = 1;
static char		*conn_scratch;		/* one line, max_line + 2 */
static size_t		 conn_scratch_len;
static unsigned char	 conn_read_buf[CONN_READ_CHUNK];

static void	conn_close_internal(struct conn *, const char *, int);

/*
 * Debug builds check that a connection's flag and its presence on the
 * list agree, and that state changes follow the enum's order.
 */
#ifdef NETSOCK_DEBUG
#define CONN_ASSERT_ON(head, c, field, want) do {			\
	struct conn	*it_;						\
	bool		 found_ = false;				\
									\
	TAILQ_FOREACH(it_, (head), field)				\
		if (it_ == (c)) {					\
			found_ = true;					\
			break;						\
		}							\
	assert(found_ == (want));					\
} while (0)
#else
#define CONN_ASSERT_ON(head, c, field, want) do { } while (0)
#endif

/* Put c on a list unless its flag says it is there already. */
#define CONN_LIST_ADD(head, c, field, flag) do {			\
	CONN_ASSERT_ON(head, c, field, ((c)->flags & (flag)) != 0);	\
	if (!((c)->flags & (flag))) {					\
		(c)->flags |= (flag);					\
		TAILQ_INSERT_TAIL(head, c, field);			\
	}								\
} while (0)

/* Take c off a list if its flag says it is there. */
#define CONN_LIST_DEL(head, c, field, flag) do {			\
	CONN_ASSERT_ON(head, c, field, ((c)->flags & (flag)) != 0);	\
	if ((c)->flags & (flag)) {					\
		(c)->flags &= ~(flag);					\
		TAILQ_REMOVE(head, c, field);				\
	}								\
} while (0)

static void
conn_set_state(struct conn *c, enum conn_state to)
{
	/* Forward only; DRAINING is reached from OPEN alone. */
	assert(to > c->state);
	assert(to != CONN_STATE_DRAINING || c->state == CONN_STATE_OPEN);
	c->state = to;
}

/* Milliseconds on the monotonic clock: deadlines ignore clock changes. */
static int64_t
conn_mono_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* (Re)arm ev to fire at the monotonic time deadline (now if passed). */
static void
conn_arm(struct event *ev, int64_t deadline)
{
	int64_t		 left = deadline - conn_mono_ms();
	struct timeval	 tv;

	if (left < 0)
		left = 0;
	tv.tv_sec = left / 1000;
	tv.tv_usec = (left % 1000) * 1000;
	event_add(ev, &tv);
}

/* When reading must have got somewhere: the handshake done, or a line. */
static int64_t
conn_read_deadline(const struct conn *c)
{
	const struct config_limits *lim = &c->srv->cfg->limits;

	if (c->state == CONN_STATE_HANDSHAKE)
		return c->accepted_mono +
		    (int64_t)lim->handshake_timeout * 1000;
	return c->last_line_mono + (int64_t)lim->idle_timeout * 1000;
}

void
conn_table_init(void)
{
	memset(conn_hash, 0, sizeof(conn_hash));
}

bool
conn_has_work(void)
{
	return !TAILQ_EMPTY(&conn_pending) || !TAILQ_EMPTY(&conn_overflow);
}

struct conn *
conn_find(uint64_t id)
{
	struct conn	*c;

	for (c = conn_hash[id % CONN_HASH_BUCKETS]; c != NULL; c = c->hash_next)
		if (c->id == id)
			return c;
	return NULL;
}

static void
conn_hash_remove(struct conn *c)
{
	struct conn	**pp = &conn_hash[c->id % CONN_HASH_BUCKETS];

	while (*pp != NULL && *pp != c)
		pp = &(*pp)->hash_next;
	if (*pp != NULL)
		*pp = c->hash_next;
}

static void
conn_format_peer(struct conn *c)
{
	char	 addr[INET6_ADDRSTRLEN];

	if (c->peer.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->peer;

		inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof(addr));
		snprintf(c->peer_text, sizeof(c->peer_text), "[%s]:%u", addr,
		    ntohs(s6->sin6_port));
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&c->peer;

		inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof(addr));
		snprintf(c->peer_text, sizeof(c->peer_text), "%s:%u", addr,
		    ntohs(s4->sin_port));
	}
}

/* A TLS failure worth a debug line: what OpenSSL said. */
static void
conn_log_tls_errors(struct conn *c)
{
	unsigned long	 e;

	while ((e = ERR_get_error()) != 0)
		log_debug("session=%llu tls error: %s",
		    (unsigned long long)c->id, ERR_reason_error_string(e));
}

static void	conn_read_event(int, short, void *);
static void	conn_write_event(int, short, void *);

struct conn *
conn_new(struct server *srv, struct listener *l, int fd,
    const struct sockaddr *sa, int salen, struct ssl_ctx_st *ctx)
{
	struct conn	*c;
	SSL		*ssl;

	if ((ssl = SSL_new(ctx)) == NULL || !SSL_set_fd(ssl, fd)) {
		log_warnx("connection: cannot set up TLS");
		ERR_clear_error();
		c = NULL;
		goto fail;
	}
	SSL_set_accept_state(ssl);
	c = xcalloc(1, sizeof(*c));
	c->rev = event_new(srv->base, fd, EV_READ | EV_PERSIST,
	    conn_read_event, c);
	c->wev = event_new(srv->base, fd, EV_WRITE | EV_PERSIST,
	    conn_write_event, c);
	c->in = evbuffer_new();
	if (c->rev == NULL || c->wev == NULL || c->in == NULL) {
		log_warnx("connection: cannot set up events");
		goto fail;
	}
	c->id = conn_next_id++;
	c->srv = srv;
	c->listener = l;
	c->fd = fd;
	c->ssl = ssl;
	memcpy(&c->peer, sa, (size_t)salen < sizeof(c->peer) ?
	    (size_t)salen : sizeof(c->peer));
	conn_format_peer(c);
	c->connected_ms = c->last_input_ms = server_now_ms();
	c->accepted_mono = c->last_line_mono = conn_mono_ms();
	c->state = CONN_STATE_HANDSHAKE;
	outq_init(&c->out);
	/*
	 * No read watermark: input is bounded in conn_read() instead, and a
	 * request parked on the password workers does not stop reading.
	 */
	conn_arm(c->rev, conn_read_deadline(c));

	TAILQ_INSERT_TAIL(&srv->conns, c, entry);
	c->hash_next = conn_hash[c->id % CONN_HASH_BUCKETS];
	conn_hash[c->id % CONN_HASH_BUCKETS] = c;
	srv->stats.connections++;
	srv->stats.connections_total++;
	log_debug("session=%llu event=accept peer=%s",
	    (unsigned long long)c->id, c->peer_text);
	return c;

fail:
	if (c != NULL) {
		if (c->rev != NULL)
			event_free(c->rev);
		if (c->wev != NULL)
			event_free(c->wev);
		if (c->in != NULL)
			evbuffer_free(c->in);
		free(c);
	}
	SSL_free(ssl);
	listener_release(l, sa);
	close(fd);
	return NULL;
}

/*
 * The output stream of a connection, as positions: bytes_out bytes were
 * queued, of which outq_length() are not written yet; the last reply
 * ends at reply_end.  Whatever was queued after the last reply is
 * events; replies before it are what the peer asked for.
 */
static size_t
conn_unread_events(const struct conn *c)
{
	size_t		 unwritten = outq_length(&c->out);
	uint64_t	 after = c->bytes_out - c->reply_end;

	return after < unwritten ? (size_t)after : unwritten;
}

static size_t
conn_unsent_replies(const struct conn *c)
{
	return outq_length(&c->out) - conn_unread_events(c);
}

/* Cut off a reader that leaves too many events unread. */
static void
conn_cut_off(struct conn *c)
{
	char		 id[24];
	struct log_field f[] = { { "SESSION", id }, { "PEER", c->peer_text } };

	snprintf(id, sizeof(id), "%llu", (unsigned long long)c->id);
	c->srv->stats.slow_readers++;
	log_emit(LOG_NOTICE, LOG_ID_SLOW_READER, f, 2,
	    "session=%s event=slow_reader peer=%s", id, c->peer_text);
	conn_close_internal(c, "output_buffer_full", 0);
}

/*
 * After output grows: write it at the end of the pass.  Whether the peer
 * reads is known only once a write was tried (conn_write); this only
 * guards memory against a pass that queues far more than it may keep.
 */
static void
conn_check_output(struct conn *c)
{
	CONN_LIST_ADD(&conn_flushq, c, flush_entry, CONN_F_FLUSH);
	if (conn_unread_events(c) > 2 * c->srv->cfg->limits.output_buffer)
		/* Never close inside a fan-out: cut off after the pass. */
		CONN_LIST_ADD(&conn_overflow, c, overflow_entry,
		    CONN_F_OVERFLOW);
}

static int
conn_can_send(const struct conn *c)
{
	return c->state == CONN_STATE_OPEN && !(c->flags & CONN_F_OVERFLOW);
}

void
conn_send(struct conn *c, const void *data, size_t len)
{
	if (!conn_can_send(c))
		return;
	outq_push_copy(&c->out, data, len);
	c->bytes_out += len;
	c->reply_end = c->bytes_out;
	c->srv->stats.bytes_out += len;
	conn_check_output(c);
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
	if (!conn_can_send(c)) {
		cleanup(data, len, arg);	/* nobody will hold it */
		return;
	}
	outq_push_shared(&c->out, data, len, cleanup, arg);
	c->bytes_out += len;
	c->srv->stats.bytes_out += len;
	conn_check_output(c);
}

/* Reply line_too_long and close: the framing cannot be trusted now. */
static void
conn_line_too_long(struct conn *c)
{
	char	 msg[96];

	snprintf(msg, sizeof(msg), "line longer than %zu bytes",
	    c->srv->cfg->limits.max_line);
	conn_send_json(c, proto_error(NULL, PROTO_ERR_LINE_TOO_LONG, msg));
	conn_close_after_flush(c, "line_too_long");
}

/*
 * The peer has sent all it will (EOF or close_notify) and everything it
 * sent is answered, committed and queued: close once that is written.
 */
static void
conn_check_eof(struct conn *c)
{
	if ((c->flags & CONN_F_EOF) && c->state == CONN_STATE_OPEN &&
	    !(c->flags & (CONN_F_WAITING | CONN_F_OUTPUT_WAIT |
	    CONN_F_PENDING | CONN_F_INWORK)) && c->uncommitted == 0)
		conn_close_after_flush(c, "eof");
}

/* Frame and dispatch up to CONN_LINES_PER_PASS lines. */
static void
conn_process_input(struct conn *c)
{
	struct evbuffer		*in = c->in;
	struct evbuffer_ptr	 p;
	size_t			 max_line = c->srv->cfg->limits.max_line;
	size_t			 eol_len, len, take;
	enum proto_frame	 frame;
	int			 n;

	if (conn_scratch_len < max_line + 2) {
		conn_scratch_len = max_line + 2;
		conn_scratch = xreallocarray(conn_scratch, 1, conn_scratch_len);
	}
	for (n = 0; n < CONN_LINES_PER_PASS; n++) {
		if (c->state != CONN_STATE_OPEN ||
		    (c->flags & (CONN_F_WAITING | CONN_F_OVERFLOW)))
			break;
		/* Replies wait to be written: the next request waits too. */
		if (conn_unsent_replies(c) > CONN_REPLY_AHEAD) {
			c->flags |= CONN_F_OUTPUT_WAIT;
			break;
		}
		p = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		frame = proto_frame(p.pos, evbuffer_get_length(in), max_line,
		    &take);
		if (frame == PROTO_FRAME_NEED_MORE)
			break;
		if (frame == PROTO_FRAME_TOO_LONG) {
			conn_line_too_long(c);
			break;
		}
		secret_evbuffer_remove(in, conn_scratch, take);
		len = proto_frame_strip(conn_scratch, take);
		if (len > max_line) {
			conn_line_too_long(c);
			break;
		}
		/* A complete line: the idle deadline counts from here (the
		 * lines of one wake-up all arrived at its first). */
		if (n == 0) {
			c->last_line_mono = conn_mono_ms();
			c->last_input_ms = server_now_ms();
		}
		if (len > 0)	/* empty lines are ignored */
			dispatch_line(c, conn_scratch, len);
		/* The line may hold a password: leave no copy behind. */
		explicit_bzero(conn_scratch, take);
	}
	/* More complete lines waiting: continue after this pass. */
	if (n == CONN_LINES_PER_PASS && evbuffer_get_length(in) > 0)
		CONN_LIST_ADD(&conn_pending, c, pending_entry, CONN_F_PENDING);
	else
		conn_check_eof(c);
}

/* Why a TLS call failed for good, as a close reason ("eof" for a peer
 * that simply went away). */
static const char *
conn_tls_failure(struct conn *c, int err, const char *otherwise)
{
	switch (err) {
	case SSL_ERROR_ZERO_RETURN:	/* close_notify, or plain EOF */
		return "eof";
	case SSL_ERROR_SYSCALL:
		if (errno == 0)
			return "eof";
		break;
	default:
		conn_log_tls_errors(c);
		break;
	}
	return otherwise;
}

/* SSL_read() until OpenSSL wants the socket; false if c was closed. */
static bool
conn_read(struct conn *c)
{
	const char	*reason = NULL;
	size_t		 got = 0, len;
	int		 i, n, err;

	for (i = 0; i < CONN_READS_PER_PASS; i++) {
		ERR_clear_error();
		errno = 0;
		n = SSL_read(c->ssl, conn_read_buf, sizeof(conn_read_buf));
		if (n > 0) {
			evbuffer_add(c->in, conn_read_buf, (size_t)n);
			got += (size_t)n;
			continue;
		}
		switch (err = SSL_get_error(c->ssl, n)) {
		case SSL_ERROR_WANT_READ:
			break;
		case SSL_ERROR_WANT_WRITE:	/* a TLS 1.3 key update */
			c->flags |= CONN_F_READ_BLOCKED;
			event_add(c->wev, NULL);
			break;
		default:
			reason = conn_tls_failure(c, err,
			    err == SSL_ERROR_SYSCALL ? "io_error" : "tls_error");
			break;
		}
		break;
	}
	explicit_bzero(conn_read_buf, got < sizeof(conn_read_buf) ? got :
	    sizeof(conn_read_buf));
	if (got > 0) {
		c->bytes_in += got;
		c->srv->stats.bytes_in += got;
	}
	/*
	 * Lines wait here while a request is parked or the peer sends faster
	 * than its share of each pass; past this much it is flooding.
	 */
	len = evbuffer_get_length(c->in);
	if (reason == NULL &&
	    len > CONN_INPUT_MAX + 2 * c->srv->cfg->limits.max_line) {
		conn_send_json(c, proto_error(NULL, PROTO_ERR_RATE_LIMITED,
		    "too much unanswered input; slow down"));
		conn_close_after_flush(c, "input_flood");
		return false;
	}
	/*
	 * A peer that closes its side after its requests (a half-close, or
	 * close_notify) still gets every answer: stop reading, answer what
	 * it sent, then close.  Nothing outstanding: close at once.
	 */
	if (reason != NULL && strcmp(reason, "eof") == 0 &&
	    c->state == CONN_STATE_OPEN && (len > 0 || c->uncommitted > 0 ||
	    (c->flags & CONN_F_WAITING) || outq_length(&c->out) > 0)) {
		c->flags |= CONN_F_EOF;
		event_del(c->rev);
		reason = NULL;
	}
	if (got > 0 && !(c->flags & (CONN_F_PENDING | CONN_F_INWORK)))
		conn_process_input(c);
	else
		conn_check_eof(c);
	if (reason != NULL) {
		conn_close_internal(c, reason, 0);
		return false;
	}
	return !conn_closed(c);
}

static void
conn_handshake(struct conn *c)
{
	int		 r, err;

	ERR_clear_error();
	errno = 0;
	if ((r = SSL_do_handshake(c->ssl)) == 1) {
		conn_set_state(c, CONN_STATE_OPEN);
		event_del(c->wev);
		/* The session's idle time counts from its start. */
		c->last_line_mono = conn_mono_ms();
		log_debug("session=%llu event=connect peer=%s tls=%s",
		    (unsigned long long)c->id, c->peer_text,
		    conn_tls_version(c));
		dispatch_welcome(c);
		return;
	}
	switch (err = SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		event_del(c->wev);
		return;
	case SSL_ERROR_WANT_WRITE:
		event_add(c->wev, NULL);
		return;
	}
	c->srv->stats.tls_handshake_failures++;
	conn_close_internal(c, conn_tls_failure(c, err,
	    "tls_handshake_failed"), 0);
}

/*
 * Readable, or the read deadline came.  The deadline is re-armed after
 * every wake-up from what it counts from (accept, the last complete
 * line), so bytes that complete nothing never push it back.
 */
static void
conn_read_event(int fd, short what, void *arg)
{
	struct conn	*c = arg;

	if ((what & EV_TIMEOUT) && conn_mono_ms() >= conn_read_deadline(c)) {
		if (c->state == CONN_STATE_OPEN)
			conn_close_internal(c, "idle_timeout", 1);
		else {
			c->srv->stats.tls_handshake_failures++;
			conn_close_internal(c, "handshake_timeout", 0);
		}
		return;
	}
	if (what & EV_READ) {
		if (c->state == CONN_STATE_HANDSHAKE)
			conn_handshake(c);
		else
			conn_read(c);
	}
	if (c->state == CONN_STATE_HANDSHAKE ||
	    (c->state == CONN_STATE_OPEN && !(c->flags & CONN_F_EOF)))
		conn_arm(c->rev, conn_read_deadline(c));
}

/* Replies have left: requests held back behind them go on. */
static void
conn_output_left(struct conn *c)
{
	if ((c->flags & CONN_F_OUTPUT_WAIT) &&
	    conn_unsent_replies(c) <= CONN_REPLY_AHEAD) {
		c->flags &= ~CONN_F_OUTPUT_WAIT;
		if (!(c->flags & CONN_F_WAITING))
			CONN_LIST_ADD(&conn_pending, c, pending_entry,
			    CONN_F_PENDING);
	}
}

/*
 * Write what is queued; false if that closed c.  A peer that leaves more
 * than output_buffer bytes of events unread, once a write was tried, is
 * cut off (it can reconnect and catch up with history).
 */
static bool
conn_write(struct conn *c)
{
	switch (outq_write(&c->out, c->ssl)) {
	case OUTQ_DONE:
		if (!(c->flags & CONN_F_READ_BLOCKED))
			event_del(c->wev);
		if (c->state == CONN_STATE_DRAINING) {
			conn_close_internal(c, c->close_reason, 1);
			return false;
		}
		conn_output_left(c);
		return true;
	case OUTQ_BLOCKED:
		if (c->state == CONN_STATE_DRAINING) {
			conn_arm(c->wev, c->close_by_mono -
			    (CONN_CLOSE_MS - CONN_DRAIN_MS));
			return true;
		}
		if (conn_unread_events(c) > c->srv->cfg->limits.output_buffer) {
			conn_cut_off(c);
			return false;
		}
		event_add(c->wev, NULL);
		conn_output_left(c);
		return true;
	case OUTQ_ERROR:
	default:
		conn_log_tls_errors(c);
		conn_close_internal(c, errno == EPIPE || errno == ECONNRESET ?
		    "eof" : "io_error", 0);
		return false;
	}
}

static void
conn_write_event(int fd, short what, void *arg)
{
	struct conn	*c = arg;

	if (what & EV_TIMEOUT) {		/* draining took too long */
		conn_close_internal(c, "flush_timeout", 0);
		return;
	}
	if (c->state == CONN_STATE_HANDSHAKE) {
		conn_handshake(c);
		if (c->state == CONN_STATE_OPEN)
			conn_arm(c->rev, conn_read_deadline(c));
		return;
	}
	if (c->flags & CONN_F_READ_BLOCKED) {
		c->flags &= ~CONN_F_READ_BLOCKED;
		if (!conn_read(c))
			return;
	}
	conn_write(c);
}

void
conn_flush(struct server *srv)
{
	struct conn	*c;

	/* Writing was held back during the pass; now one write each. */
	while ((c = TAILQ_FIRST(&conn_flushq)) != NULL) {
		CONN_LIST_DEL(&conn_flushq, c, flush_entry, CONN_F_FLUSH);
		conn_write(c);
	}
	/* Every queue is written or dropped: the pass arena is free. */
	outq_pass_done();
}

/* A closed socket we still read from briefly, so that data the peer had
 * in flight does not turn our close into a reset that eats the reply.
 * It keeps its admission slot until the descriptor is really closed. */
struct conn_linger {
	struct server		*srv;
	struct listener		*listener;	/* may be NULL */
	struct sockaddr_storage	 peer;
	int			 fd;
	int64_t			 deadline;	/* monotonic ms */
	struct event		*ev;
	TAILQ_ENTRY(conn_linger) entry;
};

/* Kept so that shutdown can close them rather than leak them. */
static TAILQ_HEAD(, conn_linger) conn_lingers =
    TAILQ_HEAD_INITIALIZER(conn_lingers);

/*
 * A connection's descriptor is closed: its slot in the connection limits
 * is free, and accepting may resume now, not when the session ended (its
 * socket may have lingered since).
 */
static void
conn_fd_close(struct server *srv, struct listener *l,
    const struct sockaddr_storage *peer, int fd)
{
	close(fd);
	listener_release(l, (const struct sockaddr *)peer);
	srv->stats.connections--;
	if (srv->accept_paused)
		server_accept_resume(srv);
}

static void
conn_linger_free(struct conn_linger *lg)
{
	TAILQ_REMOVE(&conn_lingers, lg, entry);
	event_free(lg->ev);
	conn_fd_close(lg->srv, lg->listener, &lg->peer, lg->fd);
	free(lg);
}

static void
conn_linger_cb(int fd, short what, void *arg)
{
	struct conn_linger	*lg = arg;
	char			 buf[4096];
	ssize_t			 n;

	/* Whatever the peer sends, the deadline stands. */
	if ((what & EV_READ) && conn_mono_ms() < lg->deadline) {
		n = read(fd, buf, sizeof(buf));
		if (n > 0 || (n == -1 && (errno == EAGAIN || errno == EINTR))) {
			conn_arm(lg->ev, lg->deadline);
			return;
		}
	}
	conn_linger_free(lg);
}

static void
conn_linger(struct conn *c)
{
	struct server		*srv = c->srv;
	struct conn_linger	*lg;
	int64_t			 now = conn_mono_ms();

	if (srv->state == SERVER_DONE || shutdown(c->fd, SHUT_WR) == -1 ||
	    now >= c->close_by_mono) {
		conn_fd_close(srv, c->listener, &c->peer, c->fd);
		return;
	}
	lg = xcalloc(1, sizeof(*lg));
	lg->srv = srv;
	lg->listener = c->listener;
	lg->peer = c->peer;
	lg->fd = c->fd;
	lg->deadline = now + CONN_LINGER_MS < c->close_by_mono ?
	    now + CONN_LINGER_MS : c->close_by_mono;
	lg->ev = event_new(srv->base, c->fd, EV_READ | EV_PERSIST,
	    conn_linger_cb, lg);
	conn_arm(lg->ev, lg->deadline);
	TAILQ_INSERT_TAIL(&conn_lingers, lg, entry);
}

void
conn_forget_listener(struct listener *l)
{
	struct conn_linger	*lg;
	struct conn		*c;
	size_t			 i;

	for (i = 0; i < CONN_HASH_BUCKETS; i++)
		for (c = conn_hash[i]; c != NULL; c = c->hash_next)
			if (l == NULL || c->listener == l)
				c->listener = NULL;
	TAILQ_FOREACH(lg, &conn_lingers, entry)
		if (l == NULL || lg->listener == l)
			lg->listener = NULL;
}

static void
conn_free_cb(int fd, short what, void *arg)
{
	struct conn	*c = arg;

	event_free(c->rev);
	event_free(c->wev);
	secret_evbuffer_clear(c->in);
	evbuffer_free(c->in);
	SSL_free(c->ssl);
	if (c->flags & CONN_F_LINGER)
		conn_linger(c);
	else
		conn_fd_close(c->srv, c->listener, &c->peer, c->fd);
	free(c);
}

/* Off every list it is on: nothing will schedule it again. */
static void
conn_unlink(struct conn *c)
{
	struct server	*srv = c->srv;

	TAILQ_REMOVE(&srv->conns, c, entry);
	CONN_LIST_DEL(&conn_pending, c, pending_entry, CONN_F_PENDING);
	if (conn_work != NULL)
		CONN_LIST_DEL(conn_work, c, work_entry, CONN_F_INWORK);
	assert(!(c->flags & CONN_F_INWORK));
	CONN_LIST_DEL(&conn_overflow, c, overflow_entry, CONN_F_OVERFLOW);
	CONN_LIST_DEL(&conn_flushq, c, flush_entry, CONN_F_FLUSH);
	conn_hash_remove(c);
}

static void
conn_close_internal(struct conn *c, const char *reason, int notify)
{
	struct server	*srv = c->srv;
	char		 id[24];
	struct log_field fields[] = {
		{ "SESSION", id }, { "PEER", c->peer_text },
		{ "REASON", reason },
	};
	bool		 was_open = c->state >= CONN_STATE_OPEN;

	if (conn_closed(c))
		return;
	if (c->state != CONN_STATE_DRAINING)
		c->close_by_mono = conn_mono_ms() + CONN_CLOSE_MS;
	conn_set_state(c, CONN_STATE_CLOSED);
	snprintf(id, sizeof(id), "%llu", (unsigned long long)c->id);

	conn_unlink(c);
	dispatch_closed(c);
	log_emit(LOG_INFO, NULL, fields, 3,
	    "session=%s event=disconnect peer=%s reason=%s", id,
	    c->peer_text, reason);

	event_del(c->rev);
	event_del(c->wev);
	outq_discard(&c->out);
	if (notify && was_open) {
		/* close_notify goes straight to the socket (a socket BIO). */
		if (SSL_shutdown(c->ssl) < 0)
			ERR_clear_error();
		c->flags |= CONN_F_LINGER;
	}
	event_base_once(srv->base, -1, EV_TIMEOUT, conn_free_cb, c, NULL);

	if (srv->state == SERVER_STOPPING && TAILQ_EMPTY(&srv->conns))
		srv->state = SERVER_DONE;
}

void
conn_close(struct conn *c, const char *reason)
{
	conn_close_internal(c, reason, 1);
}

void
conn_close_after_flush(struct conn *c, const char *reason)
{
	if (c->state == CONN_STATE_DRAINING || conn_closed(c))
		return;
	if (c->state == CONN_STATE_HANDSHAKE) {
		conn_close_internal(c, reason, 0);
		return;
	}
	conn_set_state(c, CONN_STATE_DRAINING);
	c->close_reason = reason;
	c->close_by_mono = conn_mono_ms() + CONN_CLOSE_MS;
	event_del(c->rev);
	CONN_LIST_DEL(&conn_pending, c, pending_entry, CONN_F_PENDING);
	CONN_LIST_DEL(&conn_flushq, c, flush_entry, CONN_F_FLUSH);
	/* Whatever the socket does not take now has CONN_DRAIN_MS. */
	conn_write(c);
}

void
conn_resume(struct conn *c)
{
	c->flags &= ~CONN_F_WAITING;
	/* After an EOF the pass also decides whether to close. */
	if (c->state == CONN_STATE_OPEN && (evbuffer_get_length(c->in) > 0 ||
	    (c->flags & CONN_F_EOF)))
		CONN_LIST_ADD(&conn_pending, c, pending_entry, CONN_F_PENDING);
}

/*
 * After the pass: cut off who overflowed, then handle the input left
 * over.  The pending list is taken whole onto a work list of its own
 * link first, so that handling one connection may schedule any other (or
 * itself) for the next pass, or close any other, without touching the
 * list being walked.
 */
void
conn_end_of_pass(struct server *srv)
{
	struct conn_list	 work = TAILQ_HEAD_INITIALIZER(work);
	struct conn		*c;

	while ((c = TAILQ_FIRST(&conn_overflow)) != NULL) {
		CONN_LIST_DEL(&conn_overflow, c, overflow_entry,
		    CONN_F_OVERFLOW);
		conn_cut_off(c);
	}
	assert(conn_work == NULL);
	while ((c = TAILQ_FIRST(&conn_pending)) != NULL) {
		CONN_LIST_DEL(&conn_pending, c, pending_entry, CONN_F_PENDING);
		CONN_LIST_ADD(&work, c, work_entry, CONN_F_INWORK);
	}
	conn_work = &work;
	while ((c = TAILQ_FIRST(&work)) != NULL) {
		CONN_LIST_DEL(&work, c, work_entry, CONN_F_INWORK);
		conn_process_input(c);
	}
	conn_work = NULL;
}

void
conn_apply_limits(struct conn *c)
{
	/* (After an EOF nothing is read: the pass closes it.) */
	if (c->state == CONN_STATE_OPEN && !(c->flags & CONN_F_EOF))
		conn_arm(c->rev, conn_read_deadline(c));
}

const char *
conn_tls_version(const struct conn *c)
{
	return SSL_get_version(c->ssl);
}

const char *
conn_tls_cipher(const struct conn *c)
{
	return SSL_get_cipher_name(c->ssl);
}

void
conn_table_free(void)
{
	while (!TAILQ_EMPTY(&conn_lingers))
		conn_linger_free(TAILQ_FIRST(&conn_lingers));
	free(conn_scratch);
	conn_scratch = NULL;
	outq_free_all();
	conn_scratch_len = 0;
}
