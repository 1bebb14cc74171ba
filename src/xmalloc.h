/*
 * xmalloc: allocation that aborts on failure.  Every buffer in netsockd is
 * bounded, so running out of memory is a bug or an attack we cannot
 * recover from; dying loudly beats limping on.
 */
#ifndef NETSOCK_XMALLOC_H
#define NETSOCK_XMALLOC_H

#include <stddef.h>

void	*xmalloc(size_t size);
void	*xcalloc(size_t nmemb, size_t size);
void	*xreallocarray(void *ptr, size_t nmemb, size_t size);
char	*xstrdup(const char *s);
char	*xstrndup(const char *s, size_t n);
int	 xasprintf(char **ret, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#endif
