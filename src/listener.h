/*
 * listener: the TCP listening sockets from the configuration (or passed by
 * systemd), and admission control that runs before any TLS work:
 * max_connections in total and max_per_ip per remote address (an IPv6
 * address counted by its limits.ipv6_prefix, see ratelimit_addr_key).
 */
#ifndef NETSOCK_LISTENER_H
#define NETSOCK_LISTENER_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stdint.h>

struct server;
struct config_listen;

struct listener;

/* Open one listener for entry (SO_REUSEADDR, IPV6_V6ONLY, big backlog).
 * NULL with *cause on failure. */
struct listener	*listener_new(struct server *srv,
		    const struct config_listen *entry, char **cause);
/* Take over a listening socket passed by systemd (sd_listen_fds). */
struct listener	*listener_new_fd(struct server *srv, int fd, char **cause);
void		 listener_free(struct listener *l);
/* Linked list of the server's listeners. */
struct listener	*listener_next(const struct listener *l);
void		 listener_set_next(struct listener *l, struct listener *next);
const char	*listener_name(const struct listener *l);	/* "addr:port" */
uint64_t	 listener_connections(const struct listener *l);
bool		 listener_matches(const struct listener *l,
		    const struct config_listen *entry);

void		 listener_enable(struct listener *l, bool on);

/* A connection from sa was closed: release its admission slot. */
void		 listener_release(struct listener *l, const struct sockaddr *sa);

/* The per-address table used by admission (shared by all listeners). */
void		 listener_addr_table_free(void);

#endif
