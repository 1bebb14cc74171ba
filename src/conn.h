/*
 * conn: one TLS client connection.  Owns its socket, its SSL and nothing
 * about chat: it runs the handshake and idle timeouts, frames NDJSON lines
 * (enforcing max_line), caps the output queue, and writes bytes.  Lines go to
 * dispatch; replies and events come back through conn_send*().
 *
 * Lifetime: conn_close() is the only exit.  It marks the connection
 * closing, tells everyone who cares, logs one line with the reason, and
 * frees it later from the event loop, so a close inside a callback or a
 * fan-out never frees memory still in use.  Code that must find a
 * connection again after an asynchronous step keeps its id, not a pointer.
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

struct conn {
	uint64_t		 id;
	struct server		*srv;
	struct listener		*listener;	/* counts us; may be NULL */
	int			 fd;
	struct ssl_st		*ssl;
	struct event		*rev;		/* readable; idle timeout */
	struct event		*wev;		/* writable, when blocked */
	struct evbuffer		*in;		/* unframed input */
	struct outq		 out;
	struct sockaddr_storage	 peer;
	char			 peer_text[64];	/* "addr:port" / "[addr]:port" */
	int64_t			 connected_ms;
	int64_t			 last_input_ms;
	uint64_t		 bytes_in;
	uint64_t		 bytes_out;
	struct chat_session	*session;	/* chat's, NULL before login */
	struct dispatch_wait	*wait;		/* request parked meanwhile */
	uint32_t		 uncommitted;	/* messages awaiting commit */
	const char		*close_reason;	/* static string */
	int			 flags;
#define CONN_F_TLS_DONE		0x01	/* handshake completed */
#define CONN_F_CLOSING		0x02	/* closed; free pending */
#define CONN_F_DRAINING		0x04	/* close once output is flushed */
#define CONN_F_WAITING		0x08	/* a request awaits an async result */
#define CONN_F_PENDING		0x10	/* on the pending-input list */
#define CONN_F_OVERFLOW		0x20	/* output_buffer passed: cut off */
#define CONN_F_INWORK		0x40	/* on the end-of-pass work list */
#define CONN_F_FLUSH		0x80	/* on the flush list */
#define CONN_F_READ_BLOCKED	0x100	/* SSL_read needs the socket writable */
	TAILQ_ENTRY(conn)	 entry;		/* all connections */
	TAILQ_ENTRY(conn)	 pending_entry;	/* pending input / overflow */
	TAILQ_ENTRY(conn)	 flush_entry;	/* output queued this pass */
	struct conn		*hash_next;	/* id lookup */
};

TAILQ_HEAD(conn_list, conn);

/*
 * Take over an accepted, admitted socket and start the TLS handshake with
 * ctx.  Returns the new connection (owned by the connection table).
 */
struct conn	*conn_new(struct server *srv, struct listener *l, int fd,
		    const struct sockaddr *sa, int salen, struct ssl_ctx_st *ctx);

/* Queue bytes for the peer (copied).  Never blocks, never frees c. */
void		 conn_send(struct conn *c, const void *data, size_t len);
/* Queue a JSON value as one line; steals the reference. */
void		 conn_send_json(struct conn *c, json_t *obj);
/* Queue bytes shared with other connections without copying them:
 * cleanup(data, arg) runs when no connection holds them any more. */
void		 conn_send_shared(struct conn *c, const void *data, size_t len,
		    void (*cleanup)(const void *, size_t, void *), void *arg);

/* Close now (hard) with a reason for the log; no-op if already closing. */
void		 conn_close(struct conn *c, const char *reason);
/* Send what is queued, then a TLS close_notify, then close. */
void		 conn_close_after_flush(struct conn *c, const char *reason);

/* The request in flight has its reply queued: take lines again. */
void		 conn_resume(struct conn *c);
/* Run the end-of-pass work: pending input, slow readers. */
void		 conn_end_of_pass(struct server *srv);
/*
 * Write what this pass queued: one TLS write per connection per pass, so
 * a burst of events costs one record and one syscall, not one each.
 */
void		 conn_flush(struct server *srv);

/* After a reload: the new line limit and idle timeout apply to c too. */
void		 conn_apply_limits(struct conn *c);
struct conn	*conn_find(uint64_t id);
/* TLS protocol and cipher names, for the admin channel. */
const char	*conn_tls_version(const struct conn *c);
const char	*conn_tls_cipher(const struct conn *c);

void		 conn_table_init(void);
/* Close every connection with reason (shutdown); frees nothing yet. */
void		 conn_table_free(void);

#endif
