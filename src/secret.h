/*
 * secret: taking lines out of an input evbuffer without leaving their
 * bytes behind.  Lines may hold passwords; libevent drains a buffer by
 * moving an offset and frees its chains as they are, so the bytes would
 * stay in freed memory.  These wipe them in place first.
 */
#ifndef NETSOCK_SECRET_H
#define NETSOCK_SECRET_H

#include <stddef.h>

struct evbuffer;

/* Copy the first len bytes of in to dst, wipe them in in, drain them. */
void	secret_evbuffer_remove(struct evbuffer *in, void *dst, size_t len);
/* Wipe and drain everything in in. */
void	secret_evbuffer_clear(struct evbuffer *in);

#endif
