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
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "config.h"
#include "conn.h"
#include "dispatch.h"
#include "listener.h"
#include "log.h"
#include "proto.h"
#include "server.h"
#include "xmalloc.h"

/* Lines handled per connection per wake-up, so one busy peer cannot
 * monopolise the loop; the rest waits for the end of the pass. */
#define CONN_LINES_PER_PASS	64
#define CONN_HASH_BUCKETS	16384
#define CONN_FLUSH_TIMEOUT	10	/* seconds to flush before closing */
#define CONN_LINGER_TIMEOUT	2	/* seconds to drain after close */
#define CONN_COPY_MAX		512	/* events up to this are copied */
#define CONN_RECORD		16384	/* a TLS record's worth of payload */
#define CONN_INPUT_MAX		(1024 * 1024) /* unprocessed input, plus lines */

static struct conn	*conn_hash[CONN_HASH_BUCKETS];
static uint64_t		 conn_next_id = 1;
static struct conn_list	*conn_work;		/* end-of-pass list */
static char		*conn_scratch;		/* one line, max_line + 2 */
static size_t		 conn_scratch_len;

static void	conn_read_cb(struct bufferevent *, void *);
static void	conn_write_cb(struct bufferevent *, void *);
static void	conn_event_cb(struct bufferevent *, short, void *);
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

static void
conn_timeouts(struct conn *c, int read_s, int write_s)
{
	struct timeval	 r = { read_s, 0 }, w = { write_s, 0 };

	bufferevent_set_timeouts(c->bev, read_s ? &r : NULL,
	    write_s ? &w : NULL);
}

struct conn *
conn_new(struct server *srv, struct listener *l, int fd,
    const struct sockaddr *sa, int salen, struct ssl_ctx_st *ctx)
{
	struct conn	*c;
	SSL		*ssl;
	int		 hs = srv->cfg->limits.handshake_timeout;

	if ((ssl = SSL_new(ctx)) == NULL) {
		log_warnx("connection: SSL_new failed");
		ERR_clear_error();
		listener_release(l, sa);
		close(fd);
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->id = conn_next_id++;
	c->srv = srv;
	c->listener = l;
	memcpy(&c->peer, sa, (size_t)salen < sizeof(c->peer) ?
	    (size_t)salen : sizeof(c->peer));
	conn_format_peer(c);
	c->connected_ms = c->last_input_ms = server_now_ms();
	/* No CLOSE_ON_FREE: conn_free shuts TLS and the socket down itself. */
	c->bev = bufferevent_openssl_socket_new(srv->base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_DEFER_CALLBACKS);
	if (c->bev == NULL) {
		log_warnx("connection %s: cannot create bufferevent",
		    c->peer_text);
		SSL_free(ssl);
		listener_release(l, sa);
		close(fd);
		free(c);
		return NULL;
	}
	/* A peer that drops TCP without close_notify is just gone. */
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	/*
	 * No read watermark: with bufferevent_openssl, reading paused at a
	 * watermark never resumes for bytes OpenSSL already holds (libevent
	 * issues 690, 854), which stalls a pipelining client for good.  The
	 * input is bounded in conn_read_cb instead.
	 */
	conn_timeouts(c, hs, hs);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);

	TAILQ_INSERT_TAIL(&srv->conns, c, entry);
	c->hash_next = conn_hash[c->id % CONN_HASH_BUCKETS];
	conn_hash[c->id % CONN_HASH_BUCKETS] = c;
	srv->stats.connections++;
	srv->stats.connections_total++;
	log_debug("session=%llu event=accept peer=%s",
	    (unsigned long long)c->id, c->peer_text);
	return c;
}

/* After output grows: flush at the end of the pass, and past
 * output_buffer the peer is not reading. */
static void
conn_check_output(struct conn *c)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);

	if (!(c->flags & CONN_F_FLUSH)) {
		c->flags |= CONN_F_FLUSH;
		TAILQ_INSERT_TAIL(&c->srv->flushq, c, flush_entry);
	}

	if (evbuffer_get_length(out) <= c->srv->cfg->limits.output_buffer ||
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
	evbuffer_add(bufferevent_get_output(c->bev), data, len);
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
	struct evbuffer	*out;

	if (!conn_can_send(c)) {
		cleanup(data, len, arg);	/* nobody will hold it */
		return;
	}
	out = bufferevent_get_output(c->bev);
	/*
	 * A small event is cheaper to copy into the connection's current
	 * chain than to reference (a chain allocated per recipient), and a
	 * pass's events then leave in a few large TLS records.  A large one
	 * is shared: each recipient's buffer points at the same bytes.
	 */
	if (len <= CONN_COPY_MAX) {
		/* First bytes of the pass: room for a full TLS record. */
		if (!(c->flags & CONN_F_FLUSH) && evbuffer_get_length(out) == 0)
			evbuffer_expand(out, CONN_RECORD);
		evbuffer_add(out, data, len);
		cleanup(data, len, arg);
	} else
		evbuffer_add_reference(out, data, len, cleanup, arg);
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
	struct evbuffer		*in = bufferevent_get_input(c->bev);
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
		evbuffer_remove(in, conn_scratch, take);
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
	c->input_seen = evbuffer_get_length(in);
	/* More complete lines waiting: continue after this pass. */
	if (n == CONN_LINES_PER_PASS && !(c->flags & CONN_F_PENDING) &&
	    evbuffer_get_length(in) > 0) {
		c->flags |= CONN_F_PENDING;
		TAILQ_INSERT_TAIL(&c->srv->pending, c, pending_entry);
	}
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;
	size_t		 len = evbuffer_get_length(bufferevent_get_input(bev));

	if (len > c->input_seen) {
		c->bytes_in += len - c->input_seen;
		c->srv->stats.bytes_in += len - c->input_seen;
		c->input_seen = len;
	}
	c->last_input_ms = server_now_ms();
	/*
	 * Lines wait here while a request is parked or the peer sends faster
	 * than its share of each pass; past this much it is flooding.
	 */
	if (len > CONN_INPUT_MAX + 2 * c->srv->cfg->limits.max_line) {
		conn_send_json(c, proto_error(NULL, PROTO_ERR_RATE_LIMITED,
		    "too much unanswered input; slow down"));
		conn_close_after_flush(c, "input_flood");
		return;
	}
	if (c->flags & CONN_F_PENDING)
		return;		/* the end of the pass will get to it */
	conn_process_input(c);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return;
	if (c->flags & CONN_F_DRAINING)
		conn_close_internal(c, c->close_reason, 1);
	else
		/* Idle again: gather the next pass's output before writing. */
		bufferevent_disable(bev, EV_WRITE);
}

void
conn_flush(struct server *srv)
{
	struct conn	*c;

	/* Writing was held back during the pass; now one write each. */
	while ((c = TAILQ_FIRST(&srv->flushq)) != NULL) {
		TAILQ_REMOVE(&srv->flushq, c, flush_entry);
		c->flags &= ~CONN_F_FLUSH;
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
			bufferevent_enable(c->bev, EV_WRITE);
	}
}

static const char *
conn_error_reason(struct conn *c, short what)
{
	unsigned long	 e;

	if (what & BEV_EVENT_EOF)
		return "eof";
	while ((e = bufferevent_get_openssl_error(c->bev)) != 0)
		log_debug("session=%llu tls error: %s",
		    (unsigned long long)c->id, ERR_reason_error_string(e));
	if (!(c->flags & CONN_F_TLS_DONE))
		return "tls_handshake_failed";
	return EVUTIL_SOCKET_ERROR() ? "io_error" : "tls_error";
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;

	if (what & BEV_EVENT_CONNECTED) {
		c->flags |= CONN_F_TLS_DONE;
		conn_timeouts(c, c->srv->cfg->limits.idle_timeout, 0);
		bufferevent_disable(bev, EV_WRITE);
		log_debug("session=%llu event=connect peer=%s tls=%s",
		    (unsigned long long)c->id, c->peer_text,
		    conn_tls_version(c));
		dispatch_welcome(c);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (c->flags & CONN_F_DRAINING)
			conn_close_internal(c, "flush_timeout", 0);
		else if (c->flags & CONN_F_TLS_DONE)
			conn_close_internal(c, "idle_timeout", 1);
		else {
			c->srv->stats.tls_handshake_failures++;
			conn_close_internal(c, "handshake_timeout", 0);
		}
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		const char *reason = conn_error_reason(c, what);

		if (!(c->flags & CONN_F_TLS_DONE))
			c->srv->stats.tls_handshake_failures++;
		conn_close_internal(c, reason, 0);
	}
}

/* A closed socket we still read from briefly, so that data the peer had
 * in flight does not turn our close into a reset that eats the reply. */
struct conn_linger {
	int			 fd;
	struct event		*ev;
	TAILQ_ENTRY(conn_linger) entry;
};

/* Kept so that shutdown can close them rather than leak them. */
static TAILQ_HEAD(, conn_linger) conn_lingers =
    TAILQ_HEAD_INITIALIZER(conn_lingers);

static void
conn_linger_free(struct conn_linger *lg)
{
	TAILQ_REMOVE(&conn_lingers, lg, entry);
	event_free(lg->ev);
	close(lg->fd);
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
		close(fd);
		return;
	}
	lg = xcalloc(1, sizeof(*lg));
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
	SSL		*ssl = bufferevent_openssl_get_ssl(c->bev);
	int		 sock = bufferevent_getfd(c->bev);
	int		 graceful = c->flags & CONN_F_DRAINING;

	bufferevent_free(c->bev);
	SSL_free(ssl);
	if (graceful)
		conn_linger(c->srv, sock);
	else
		close(sock);
	free(c);
}

static void
conn_close_internal(struct conn *c, const char *reason, int notify)
{
	struct server	*srv = c->srv;
	SSL		*ssl;
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

	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
	if (notify && (c->flags & CONN_F_TLS_DONE)) {
		/* close_notify goes straight to the socket (a socket BIO). */
		ssl = bufferevent_openssl_get_ssl(c->bev);
		SSL_set_quiet_shutdown(ssl, 0);
		if (SSL_shutdown(ssl) < 0)
			ERR_clear_error();
		c->flags |= CONN_F_DRAINING;	/* linger on close */
	} else
		c->flags &= ~CONN_F_DRAINING;
	listener_release(c->listener, (struct sockaddr *)&c->peer);
	event_base_once(srv->base, -1, EV_TIMEOUT, conn_free_cb, c, NULL);

	if (srv->accept_paused)
		server_accept_resume(srv);
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
	bufferevent_disable(c->bev, EV_READ);
	conn_timeouts(c, 0, CONN_FLUSH_TIMEOUT);
	bufferevent_enable(c->bev, EV_WRITE);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_close_internal(c, reason, 1);
}

void
conn_resume(struct conn *c)
{
	c->flags &= ~CONN_F_WAITING;
	if ((c->flags & (CONN_F_CLOSING | CONN_F_PENDING)) == 0 &&
	    evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
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
		conn_timeouts(c, lim->idle_timeout, 0);
}

const char *
conn_tls_version(const struct conn *c)
{
	return SSL_get_version(bufferevent_openssl_get_ssl(c->bev));
}

const char *
conn_tls_cipher(const struct conn *c)
{
	return SSL_get_cipher_name(bufferevent_openssl_get_ssl(c->bev));
}

void
conn_table_free(void)
{
	while (!TAILQ_EMPTY(&conn_lingers))
		conn_linger_free(TAILQ_FIRST(&conn_lingers));
	free(conn_scratch);
	conn_scratch = NULL;
	conn_scratch_len = 0;
}
