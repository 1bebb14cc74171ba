/* outq: queue output during a pass, gather it into TLS records after. */
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "outq.h"
#include "xmalloc.h"

#define OUTQ_RECORD	16384		/* a full TLS record's payload */
#define OUTQ_BLOCK	(64 * 1024)	/* arena block */
#define OUTQ_KEEP	(1024 * 1024)	/* arena kept between passes */

struct outq_item {
	struct outq_item	*next;
	const void		*data;
	size_t			 len;
	outq_cleanup_fn		 cleanup;	/* NULL: bytes in the arena */
	void			*arg;
};

struct outq_block {
	struct outq_block	*next;
	size_t			 used;
	size_t			 size;
	alignas(max_align_t) unsigned char data[];
};

/* The pass arena: items and copied bytes, all dead once a pass is done. */
static struct outq_block	*outq_blocks, *outq_cur;
/* One record being gathered; warm in cache for every connection. */
static unsigned char		*outq_record;

static void *
outq_alloc(size_t n)
{
	struct outq_block	*b;
	void			*p;

	n = (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
	while (outq_cur == NULL || outq_cur->used + n > outq_cur->size) {
		if (outq_cur != NULL && outq_cur->next != NULL) {
			outq_cur = outq_cur->next;
			continue;
		}
		b = xmalloc(sizeof(*b) + (n > OUTQ_BLOCK ? n : OUTQ_BLOCK));
		b->next = NULL;
		b->used = 0;
		b->size = n > OUTQ_BLOCK ? n : OUTQ_BLOCK;
		if (outq_cur != NULL)
			outq_cur->next = b;
		else
			outq_blocks = b;
		outq_cur = b;
	}
	p = outq_cur->data + outq_cur->used;
	outq_cur->used += n;
	return p;
}

void
outq_pass_done(void)
{
	struct outq_block	*b, **pp = &outq_blocks;
	size_t			 kept = 0;

	/* Keep what a normal pass needs; a huge one's blocks go back. */
	while ((b = *pp) != NULL) {
		if (kept + b->size > OUTQ_KEEP && kept > 0) {
			*pp = b->next;
			free(b);
			continue;
		}
		kept += b->size;
		b->used = 0;
		pp = &b->next;
	}
	outq_cur = outq_blocks;
}

void
outq_free_all(void)
{
	struct outq_block	*b;

	while ((b = outq_blocks) != NULL) {
		outq_blocks = b->next;
		free(b);
	}
	outq_cur = NULL;
	free(outq_record);
	outq_record = NULL;
}

void
outq_init(struct outq *q)
{
	memset(q, 0, sizeof(*q));
	q->tail = &q->head;
}

static void
outq_append(struct outq *q, struct outq_item *it)
{
	it->next = NULL;
	*q->tail = it;
	q->tail = &it->next;
	q->queued += it->len;
}

void
outq_push_copy(struct outq *q, const void *data, size_t len)
{
	struct outq_item	*it = outq_alloc(sizeof(*it) + len);

	memcpy(it + 1, data, len);
	it->data = it + 1;
	it->len = len;
	it->cleanup = NULL;
	it->arg = NULL;
	outq_append(q, it);
}

void
outq_push_shared(struct outq *q, const void *data, size_t len,
    outq_cleanup_fn cleanup, void *arg)
{
	struct outq_item	*it = outq_alloc(sizeof(*it));

	it->data = data;
	it->len = len;
	it->cleanup = cleanup;
	it->arg = arg;
	outq_append(q, it);
}

size_t
outq_length(const struct outq *q)
{
	return q->queued +
	    (q->backlog != NULL ? evbuffer_get_length(q->backlog) : 0);
}

static void
outq_backlog_add(struct outq *q, const void *data, size_t len)
{
	if (q->backlog == NULL)
		q->backlog = evbuffer_new();
	evbuffer_add(q->backlog, data, len);
}

static enum outq_status
outq_status_of(SSL *ssl, int r)
{
	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_WANT_WRITE:
	case SSL_ERROR_WANT_READ:
		return OUTQ_BLOCKED;
	default:
		return OUTQ_ERROR;
	}
}

/*
 * One record.  Without SSL_MODE_ENABLE_PARTIAL_WRITE, SSL_write() takes
 * all n bytes or none; after "none" it must be called again with the same
 * n bytes (the record is already encrypted), which the backlog keeps.
 */
static enum outq_status
outq_write_record(struct outq *q, SSL *ssl, size_t n)
{
	enum outq_status	 st;
	int			 r;

	ERR_clear_error();
	errno = 0;
	if ((r = SSL_write(ssl, outq_record, (int)n)) > 0)
		return OUTQ_DONE;
	if ((st = outq_status_of(ssl, r)) == OUTQ_BLOCKED) {
		outq_backlog_add(q, outq_record, n);
		q->retry_len = n;
	}
	return st;
}

static enum outq_status
outq_write_backlog(struct outq *q, SSL *ssl)
{
	size_t	 len, n;
	int	 r;

	while ((len = evbuffer_get_length(q->backlog)) > 0) {
		n = q->retry_len ? q->retry_len :
		    (len < OUTQ_RECORD ? len : OUTQ_RECORD);
		ERR_clear_error();
		errno = 0;
		r = SSL_write(ssl, evbuffer_pullup(q->backlog, (ssize_t)n),
		    (int)n);
		if (r <= 0) {
			q->retry_len = n;
			return outq_status_of(ssl, r);
		}
		evbuffer_drain(q->backlog, (size_t)r);
		q->retry_len = 0;
	}
	evbuffer_free(q->backlog);
	q->backlog = NULL;
	return OUTQ_DONE;
}

static void
outq_release(struct outq *q)
{
	struct outq_item	*it;

	for (it = q->head; it != NULL; it = it->next)
		if (it->cleanup != NULL)
			it->cleanup(it->data, it->len, it->arg);
	q->head = NULL;
	q->tail = &q->head;
	q->queued = 0;
}

enum outq_status
outq_write(struct outq *q, SSL *ssl)
{
	enum outq_status	 st = OUTQ_DONE;
	struct outq_item	*it;
	const unsigned char	*p;
	size_t			 fill = 0, left, take;

	if (outq_record == NULL)
		outq_record = xmalloc(OUTQ_RECORD);
	if (q->backlog != NULL)
		st = outq_write_backlog(q, ssl);
	for (it = q->head; it != NULL && st != OUTQ_ERROR; it = it->next) {
		p = it->data;
		left = it->len;
		if (st == OUTQ_BLOCKED) {	/* keep the order */
			outq_backlog_add(q, p, left);
			continue;
		}
		while (left > 0 && st == OUTQ_DONE) {
			take = OUTQ_RECORD - fill < left ? OUTQ_RECORD - fill :
			    left;
			memcpy(outq_record + fill, p, take);
			fill += take;
			p += take;
			left -= take;
			if (fill == OUTQ_RECORD) {
				st = outq_write_record(q, ssl, fill);
				fill = 0;
			}
		}
		if (left > 0 && st == OUTQ_BLOCKED)
			outq_backlog_add(q, p, left);
	}
	if (fill > 0 && st == OUTQ_DONE)
		st = outq_write_record(q, ssl, fill);
	outq_release(q);
	return st;
}

void
outq_discard(struct outq *q)
{
	outq_release(q);
	if (q->backlog != NULL)
		evbuffer_free(q->backlog);
	q->backlog = NULL;
	q->retry_len = 0;
}
