/*
 * conn: one TLS client connection.  Owns its socket, its SSL and nothing
 * about chat: it runs the handshake, frames NDJSON lines (enforcing
 * max_line), bounds input and output, enforces the deadlines (handshake
 * from accept, idle from the last complete line, closing within
 * CONN_CLOSE_MS) and writes bytes.  Lines go to dispatch; replies and
 * events come back through conn_send*().
 *
 * Lifetime: conn_close() is the only exit.  It marks the connection
 * closed, tells everyone who cares, logs one line with the reason, and
 * frees it later from the event loop, so a close inside a callback or a
 * fan-out never frees memory still in use.  Its descriptor, and its slot
 * in the connection limits, go when the socket is really closed (after
 * a short linger that lets the peer read the last reply).  Code that
 * must find a connection again after an asynchronous step keeps its id,
 * not a pointer.
 */
#ifndef NETSOCK_CONN_H
#define NETSOCK_CONN_H

#include <sys/queue.h>
#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "outq.h"

struct server;
struct listener;
struct chat_session;
struct dispatch_wait;
struct ssl_ctx_st;
struct ssl_st;
struct event;
struct evbuffer;

/*
 * Where a connection is in its life.  Only these transitions happen
 * (checked in debug builds): HANDSHAKE -> OPEN -> DRAINING -> CLOSED,
 * and from HANDSHAKE or OPEN straight to CLOSED.
 */
enum conn_state {
	CONN_STATE_HANDSHAKE,		/* TLS handshake under way */
	CONN_STATE_OPEN,		/* lines in, replies and events out */
	CONN_STATE_DRAINING,		/* closing: flushing what is queued */
	CONN_STATE_CLOSED		/* gone from chat; free pending */
};

struct conn {
	uint64_t		 id;
	struct server		*srv;
	struct listener		*listener;	/* counts us; may be NULL */
	int			 fd;
	enum conn_state		 state;
	struct ssl_st		*ssl;
	struct event		*rev;		/* readable; its deadline */
	struct event		*wev;		/* writable, when blocked */
	struct evbuffer		*in;		/* unframed input */
	struct outq		 out;
	struct sockaddr_storage	 peer;
	char			 peer_text[64];	/* "addr:port" / "[addr]:port" */
	int64_t			 connected_ms;	/* wall clock, for people */
	int64_t			 last_input_ms;	/* wall clock of the last line */
	/* Deadlines, on the monotonic clock (milliseconds). */
	int64_t			 accepted_mono;	/* handshake counts from it */
	int64_t			 last_line_mono; /* idle counts from it */
	int64_t			 close_by_mono;	/* DRAINING/linger end by it */
	uint64_t		 bytes_in;
	uint64_t		 bytes_out;	/* queued so far, in total */
	uint64_t		 reply_end;	/* bytes_out after the last reply */
	struct chat_session	*session;	/* chat's, NULL before login */
	struct dispatch_wait	*wait;		/* request parked meanwhile */
	uint32_t		 uncommitted;	/* messages awaiting commit */
	const char		*close_reason;	/* static string */
	int			 flags;
#define CONN_F_WAITING		0x01	/* a request awaits an async result */
#define CONN_F_OUTPUT_WAIT	0x02	/* input waits for replies to leave */
#define CONN_F_READ_BLOCKED	0x04	/* SSL_read needs the socket writable */
#define CONN_F_LINGER		0x08	/* close_notify sent: linger on free */
#define CONN_F_EOF		0x100	/* the peer sent all it will send */
	/* One link per list, each with the flag that says it is on it. */
#define CONN_F_PENDING		0x10	/* on conn_pending: input to handle */
#define CONN_F_INWORK		0x20	/* on this end-of-pass work list */
#define CONN_F_OVERFLOW		0x40	/* on conn_overflow: to be cut off */
#define CONN_F_FLUSH		0x80	/* on conn_flushq: output to write */
	TAILQ_ENTRY(conn)	 entry;		/* srv->conns: all open ones */
	TAILQ_ENTRY(conn)	 pending_entry;	/* conn_pending */
	TAILQ_ENTRY(conn)	 work_entry;	/* the end-of-pass work list */
	TAILQ_ENTRY(conn)	 overflow_entry; /* conn_overflow */
	TAILQ_ENTRY(conn)	 flush_entry;	/* conn_flushq */
	struct conn		*hash_next;	/* id lookup */
};

TAILQ_HEAD(conn_list, conn);

/*
 * Take over an accepted, admitted socket and start the TLS handshake with
 * ctx.  Returns the new connection (owned by the connection table).
 */
struct conn	*conn_new(struct server *srv, struct listener *l, int fd,
		    const struct sockaddr *sa, int salen, struct ssl_ctx_st *ctx);

/*
 * Output.  conn_send and conn_send_json queue a reply: the answer to
 * this connection's own request, which it asked for and is reading (the
 * welcome, kicked and shutdown lines count as replies too).
 * conn_send_shared queues an event that others caused.  Only events the
 * peer leaves unread count against limits.output_buffer; replies are
 * bounded instead by not reading further requests while more than
 * CONN_REPLY_AHEAD bytes of replies wait to be written.
 */
/* Queue a reply (copied).  Never blocks, never frees c. */
void		 conn_send(struct conn *c, const void *data, size_t len);
/* Queue a JSON value as one reply line; steals the reference. */
void		 conn_send_json(struct conn *c, json_t *obj);
/* Queue an event shared with other connections without copying it:
 * cleanup(data, arg) runs when no connection holds it any more. */
void		 conn_send_shared(struct conn *c, const void *data, size_t len,
		    void (*cleanup)(const void *, size_t, void *), void *arg);

/* Close now (hard) with a reason for the log; no-op if already closing. */
void		 conn_close(struct conn *c, const char *reason);
/* Send what is queued, then a TLS close_notify, then close. */
void		 conn_close_after_flush(struct conn *c, const char *reason);

/* The request in flight has its reply queued: take lines again. */
void		 conn_resume(struct conn *c);
/* Run the end-of-pass work: slow readers cut off, pending input. */
void		 conn_end_of_pass(struct server *srv);
/* Input is waiting for conn_end_of_pass: the next pass must not sleep. */
bool		 conn_has_work(void);
/*
 * Write what this pass queued: one TLS write per connection per pass, so
 * a burst of events costs one record and one syscall, not one each.
 */
void		 conn_flush(struct server *srv);

/* After a reload: the new line limit and idle timeout apply to c too. */
void		 conn_apply_limits(struct conn *c);
struct conn	*conn_find(uint64_t id);
/* Closed: nothing more goes to or comes from c (its free is pending). */
static inline bool
conn_closed(const struct conn *c)
{
	return c->state == CONN_STATE_CLOSED;
}
/* The listener l is going away: connections it counted forget it
 * (NULL: every listener). */
void		 conn_forget_listener(struct listener *l);
/* TLS protocol and cipher names, for the admin channel. */
const char	*conn_tls_version(const struct conn *c);
const char	*conn_tls_cipher(const struct conn *c);

void		 conn_table_init(void);
/* Close every connection with reason (shutdown); frees nothing yet. */
void		 conn_table_free(void);

#endif
