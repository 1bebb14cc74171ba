/*
 * admin: the daemon side of the admin channel, a Unix stream socket
 * separate from the chat listeners.  Checks each peer with SO_PEERCRED,
 * reads one request line (admin_proto.h), runs the command from its table
 * and answers with one reply line.  It talks to chat, store and the server
 * lifecycle, never to client sockets directly.
 */
#ifndef NETSOCK_ADMIN_H
#define NETSOCK_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

struct auth_result;
struct server;
struct admin;

/* Auth job cookies with this bit belong to the admin channel. */
#define ADMIN_COOKIE_BIT	(UINT64_C(1) << 63)

/*
 * Listen at path (its directory created if missing, mode 0660).  A stale
 * socket file is replaced; a live daemon on it makes this fail.  NULL with
 * *cause on failure.
 */
struct admin	*admin_new(struct server *srv, const char *path, char **cause);
void		 admin_free(struct admin *a);
/* A password job for an admin request finished. */
void		 admin_auth_done(struct admin *a, const struct auth_result *res);

#endif
