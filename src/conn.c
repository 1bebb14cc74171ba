/* conn: TLS client connections: framing, timeouts, output caps, close. */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#define CONN_FLUSH_TIMEOUT	10	/* seconds to flush before closing */
#define CONN_LINGER_TIMEOUT	2	/* seconds to drain after close */
#define CONN_READ_CHUNK		16384	/* a TLS record's worth of payload */
#define CONN_READS_PER_PASS	4	/* records read per wake-up */
#define CONN_INPUT_MAX		(1024 * 1024) /* unprocessed input, plus lines */

static struct conn	*conn_hash[CONN_HASH_BUCKETS];
static uint64_t		 conn_next_id = 1;
static struct conn_list	*conn_work;		/* end-of-pass list */
static char		*conn_scratch;		/* one line, max_line + 2 */
static size_t		 conn_scratch_len;
static unsigned char	 conn_read_buf[CONN_READ_CHUNK];

static void	conn_close_internal(struct conn *, const char *, int);

void
conn_table_init(void)
{
	memset(conn_hash, 0, sizeof(conn_hash));
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

/* Reading times out after secs without input (handshake or idle). */
static void
conn_watch_input(struct conn *c, int secs)
{
	struct timeval	 tv = { secs, 0 };

	event_add(c->rev, secs ? &tv : NULL);
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
	outq_init(&c->out);
	/*
	 * No read watermark: input is bounded in conn_read() instead, and a
	 * request parked on the password workers does not stop reading.
	 */
	conn_watch_input(c, srv->cfg->limits.handshake_timeout);

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

/* After output grows: write at the end of the pass, and past
 * output_buffer the peer is not reading. */
static void
conn_check_output(struct conn *c)
{
	if (!(c->flags & CONN_F_FLUSH)) {
		c->flags |= CONN_F_FLUSH;
		TAILQ_INSERT_TAIL(&c->srv->flushq, c, flush_entry);
	}
	if (outq_length(&c->out) <= c->srv->cfg->limits.output_buffer ||
	    (c->flags & CONN_F_OVERFLOW))
		return;
	/* Never close inside a fan-out: mark, and cut off after the pass. */
	c->flags |= CONN_F_OVERFLOW;
	if (!(c->flags & CONN_F_PENDING)) {
		c->flags |= CONN_F_PENDING;
		TAILQ_INSERT_TAIL(&c->srv->pending, c, pending_entry);
	}
}

static int
conn_can_send(const struct conn *c)
{
	return (c->flags & (CONN_F_CLOSING | CONN_F_DRAINING |
	    CONN_F_OVERFLOW)) == 0 && (c->flags & CONN_F_TLS_DONE);
}

void
conn_send(struct conn *c, const void *data, size_t len)
{
	if (!conn_can_send(c))
		return;
	outq_push_copy(&c->out, data, len);
	c->bytes_out += len;
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
		if (c->flags & (CONN_F_CLOSING | CONN_F_DRAINING |
		    CONN_F_WAITING | CONN_F_OVERFLOW))
			break;
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
		if (len > 0)	/* empty lines are ignored */
			dispatch_line(c, conn_scratch, len);
		/* The line may hold a password: leave no copy behind. */
		explicit_bzero(conn_scratch, take);
	}
	/* More complete lines waiting: continue after this pass. */
	if (n == CONN_LINES_PER_PASS && !(c->flags & CONN_F_PENDING) &&
	    evbuffer_get_length(in) > 0) {
		c->flags |= CONN_F_PENDING;
		TAILQ_INSERT_TAIL(&c->srv->pending, c, pending_entry);
	}
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
		c->last_input_ms = server_now_ms();
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
	/* What came before an EOF is still answered (and then dropped). */
	if (got > 0 && !(c->flags & CONN_F_PENDING))
		conn_process_input(c);
	if (reason != NULL) {
		conn_close_internal(c, reason, 0);
		return false;
	}
	return !(c->flags & CONN_F_CLOSING);
}

static void
conn_handshake(struct conn *c)
{
	int		 r, err;

	ERR_clear_error();
	errno = 0;
	if ((r = SSL_do_handshake(c->ssl)) == 1) {
		c->flags |= CONN_F_TLS_DONE;
		event_del(c->wev);
		conn_watch_input(c, c->srv->cfg->limits.idle_timeout);
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

static void
conn_read_event(int fd, short what, void *arg)
{
	struct conn	*c = arg;

	if (what & EV_TIMEOUT) {
		if (c->flags & CONN_F_TLS_DONE)
			conn_close_internal(c, "idle_timeout", 1);
		else {
			c->srv->stats.tls_handshake_failures++;
			conn_close_internal(c, "handshake_timeout", 0);
		}
		return;
	}
	if (!(c->flags & CONN_F_TLS_DONE))
		conn_handshake(c);
	else
		conn_read(c);
}

/* Write what is queued; false if that closed c. */
static bool
conn_write(struct conn *c)
{
	switch (outq_write(&c->out, c->ssl)) {
	case OUTQ_DONE:
		if (!(c->flags & CONN_F_READ_BLOCKED))
			event_del(c->wev);
		if (c->flags & CONN_F_DRAINING) {
			conn_close_internal(c, c->close_reason, 1);
			return false;
		}
		return true;
	case OUTQ_BLOCKED:
		if (!(c->flags & CONN_F_DRAINING))
			event_add(c->wev, NULL);
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
	if (!(c->flags & CONN_F_TLS_DONE)) {
		conn_handshake(c);
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
	while ((c = TAILQ_FIRST(&srv->flushq)) != NULL) {
		TAILQ_REMOVE(&srv->flushq, c, flush_entry);
		c->flags &= ~CONN_F_FLUSH;
		conn_write(c);
	}
	/* Every queue is written or dropped: the pass arena is free. */
	outq_pass_done();
}

/* A closed socket we still read from briefly, so that data the peer had
 * in flight does not turn our close into a reset that eats the reply. */
struct conn_linger {
	struct server		*srv;
	int			 fd;
	struct event		*ev;
	TAILQ_ENTRY(conn_linger) entry;
};

/* Kept so that shutdown can close them rather than leak them. */
static TAILQ_HEAD(, conn_linger) conn_lingers =
    TAILQ_HEAD_INITIALIZER(conn_lingers);

/* A session's descriptor is free again: accepting may resume now, not
 * when the session ended (its socket may have lingered since). */
static void
conn_fd_close(struct server *srv, int fd)
{
	close(fd);
	if (srv->accept_paused)
		server_accept_resume(srv);
}

static void
conn_linger_free(struct conn_linger *lg)
{
	TAILQ_REMOVE(&conn_lingers, lg, entry);
	event_free(lg->ev);
	conn_fd_close(lg->srv, lg->fd);
	free(lg);
}

static void
conn_linger_cb(int fd, short what, void *arg)
{
	struct conn_linger	*lg = arg;
	char			 buf[4096];
	ssize_t			 n;

	if (what & EV_READ) {
		n = read(fd, buf, sizeof(buf));
		if (n > 0 || (n == -1 && (errno == EAGAIN || errno == EINTR)))
			return;
	}
	conn_linger_free(lg);
}

static void
conn_linger(struct server *srv, int fd)
{
	struct conn_linger	*lg;
	struct timeval		 tv = { CONN_LINGER_TIMEOUT, 0 };

	if (srv->state == SERVER_DONE || shutdown(fd, SHUT_WR) == -1) {
		conn_fd_close(srv, fd);
		return;
	}
	lg = xcalloc(1, sizeof(*lg));
	lg->srv = srv;
	lg->fd = fd;
	lg->ev = event_new(srv->base, fd, EV_READ | EV_PERSIST,
	    conn_linger_cb, lg);
	event_add(lg->ev, &tv);
	TAILQ_INSERT_TAIL(&conn_lingers, lg, entry);
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
	if (c->flags & CONN_F_DRAINING)
		conn_linger(c->srv, c->fd);
	else
		conn_fd_close(c->srv, c->fd);
	free(c);
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

	if (c->flags & CONN_F_CLOSING)
		return;
	c->flags |= CONN_F_CLOSING;
	snprintf(id, sizeof(id), "%llu", (unsigned long long)c->id);

	TAILQ_REMOVE(&srv->conns, c, entry);
	if (c->flags & CONN_F_PENDING)
		TAILQ_REMOVE(&srv->pending, c, pending_entry);
	else if (c->flags & CONN_F_INWORK)
		TAILQ_REMOVE(conn_work, c, pending_entry);
	c->flags &= ~(CONN_F_PENDING | CONN_F_INWORK);
	if (c->flags & CONN_F_FLUSH)
		TAILQ_REMOVE(&srv->flushq, c, flush_entry);
	c->flags &= ~CONN_F_FLUSH;
	conn_hash_remove(c);
	dispatch_closed(c);
	srv->stats.connections--;
	log_emit(LOG_INFO, NULL, fields, 3,
	    "session=%s event=disconnect peer=%s reason=%s", id,
	    c->peer_text, reason);

	event_del(c->rev);
	event_del(c->wev);
	outq_discard(&c->out);
	if (notify && (c->flags & CONN_F_TLS_DONE)) {
		/* close_notify goes straight to the socket (a socket BIO). */
		if (SSL_shutdown(c->ssl) < 0)
			ERR_clear_error();
		c->flags |= CONN_F_DRAINING;	/* linger on close */
	} else
		c->flags &= ~CONN_F_DRAINING;
	listener_release(c->listener, (struct sockaddr *)&c->peer);
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
	if (c->flags & (CONN_F_CLOSING | CONN_F_DRAINING))
		return;
	if (!(c->flags & CONN_F_TLS_DONE)) {
		conn_close_internal(c, reason, 0);
		return;
	}
	c->flags |= CONN_F_DRAINING;
	c->close_reason = reason;
	event_del(c->rev);
	if (c->flags & CONN_F_FLUSH) {
		TAILQ_REMOVE(&c->srv->flushq, c, flush_entry);
		c->flags &= ~CONN_F_FLUSH;
	}
	/* Whatever the socket does not take now has CONN_FLUSH_TIMEOUT. */
	if (conn_write(c))
		event_add(c->wev, &(struct timeval){ CONN_FLUSH_TIMEOUT, 0 });
}

void
conn_resume(struct conn *c)
{
	c->flags &= ~CONN_F_WAITING;
	if ((c->flags & (CONN_F_CLOSING | CONN_F_PENDING)) == 0 &&
	    evbuffer_get_length(c->in) > 0) {
		c->flags |= CONN_F_PENDING;
		TAILQ_INSERT_TAIL(&c->srv->pending, c, pending_entry);
	}
}

void
conn_end_of_pass(struct server *srv)
{
	struct conn_list	 work = TAILQ_HEAD_INITIALIZER(work);
	struct conn		*c;

	/* Take the list: processing may queue connections for next pass. */
	while ((c = TAILQ_FIRST(&srv->pending)) != NULL) {
		TAILQ_REMOVE(&srv->pending, c, pending_entry);
		TAILQ_INSERT_TAIL(&work, c, pending_entry);
		c->flags = (c->flags & ~CONN_F_PENDING) | CONN_F_INWORK;
	}
	conn_work = &work;
	while ((c = TAILQ_FIRST(&work)) != NULL) {
		TAILQ_REMOVE(&work, c, pending_entry);
		c->flags &= ~CONN_F_INWORK;
		if (c->flags & CONN_F_OVERFLOW) {
			char	 id[24];
			struct log_field f[] = { { "SESSION", id },
			    { "PEER", c->peer_text } };

			snprintf(id, sizeof(id), "%llu",
			    (unsigned long long)c->id);
			srv->stats.slow_readers++;
			log_emit(LOG_NOTICE, LOG_ID_SLOW_READER, f, 2,
			    "session=%s event=slow_reader peer=%s", id,
			    c->peer_text);
			conn_close_internal(c, "output_buffer_full", 0);
		} else
			conn_process_input(c);
	}
	conn_work = NULL;
}

void
conn_apply_limits(struct conn *c)
{
	const struct config_limits *lim = &c->srv->cfg->limits;

	if ((c->flags & (CONN_F_TLS_DONE | CONN_F_DRAINING)) == CONN_F_TLS_DONE)
		conn_watch_input(c, lim->idle_timeout);
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
