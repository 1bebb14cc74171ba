/*
 * outq: a connection's output on its way into TLS records.
 *
 * During a loop pass, output is only queued: a reply is copied into a
 * per-pass arena, an event shared by many recipients is referenced, not
 * copied.  At the end of the pass outq_write() gathers each connection's
 * queue into one reused record buffer and hands it to SSL_write(), so a
 * pass's events leave in as few records and syscalls as possible and an
 * event's bytes are read once per recipient, straight into encryption.
 *
 * What the socket does not take stays in a backlog (copied then, and only
 * then) and is retried when the socket is writable again.
 */
#ifndef NETSOCK_OUTQ_H
#define NETSOCK_OUTQ_H

#include <stddef.h>

struct evbuffer;
struct outq_item;
struct ssl_st;

typedef void (*outq_cleanup_fn)(const void *data, size_t len, void *arg);

struct outq {
	struct outq_item	*head;		/* queued this pass, in order */
	struct outq_item	**tail;
	size_t			 queued;	/* bytes in head..tail */
	struct evbuffer		*backlog;	/* unwritten; NULL when empty */
	size_t			 retry_len;	/* a record SSL must retry */
};

enum outq_status {
	OUTQ_DONE,		/* everything written */
	OUTQ_BLOCKED,		/* the rest waits for the socket */
	OUTQ_ERROR		/* the connection is broken */
};

void	outq_init(struct outq *q);
/* Queue a copy of data. */
void	outq_push_copy(struct outq *q, const void *data, size_t len);
/* Queue data by reference; cleanup(data, len, arg) once written or
 * dropped, always before the end of the pass. */
void	outq_push_shared(struct outq *q, const void *data, size_t len,
	    outq_cleanup_fn cleanup, void *arg);
/* Bytes queued or waiting in the backlog. */
size_t	outq_length(const struct outq *q);
/* Write the backlog, then the queue; whatever blocks goes to the backlog. */
enum outq_status outq_write(struct outq *q, struct ssl_st *ssl);
/* Drop everything (closing): queued references are released. */
void	outq_discard(struct outq *q);
/* After every queue was written or discarded: reuse the pass arena. */
void	outq_pass_done(void);
/* At exit: free the arena and the record buffer. */
void	outq_free_all(void);

#endif
