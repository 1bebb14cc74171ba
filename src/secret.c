/* secret: input lines taken out of evbuffers without a copy left behind. */
#include <string.h>

#include <event2/buffer.h>

#include "secret.h"

/* Wipe the first len bytes of in where they are, chain by chain. */
static void
secret_evbuffer_wipe(struct evbuffer *in, size_t len)
{
	struct evbuffer_iovec	 vec[8];
	struct evbuffer_ptr	 pos;
	size_t			 done = 0, chunk;
	int			 i, n;

	evbuffer_ptr_set(in, &pos, 0, EVBUFFER_PTR_SET);
	while (done < len) {
		n = evbuffer_peek(in, (ev_ssize_t)(len - done), &pos, vec, 8);
		if (n <= 0)
			break;
		for (i = 0; i < n && i < 8 && done < len; i++) {
			chunk = vec[i].iov_len < len - done ? vec[i].iov_len :
			    len - done;
			explicit_bzero(vec[i].iov_base, chunk);
			done += chunk;
		}
		if (evbuffer_ptr_set(in, &pos, done, EVBUFFER_PTR_SET) != 0)
			break;
	}
}

void
secret_evbuffer_remove(struct evbuffer *in, void *dst, size_t len)
{
	evbuffer_copyout(in, dst, len);
	secret_evbuffer_wipe(in, len);
	evbuffer_drain(in, len);
}

void
secret_evbuffer_clear(struct evbuffer *in)
{
	size_t	len = evbuffer_get_length(in);

	secret_evbuffer_wipe(in, len);
	evbuffer_drain(in, len);
}
