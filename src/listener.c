/* listener: listening sockets and admission control before TLS. */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "config.h"
#include "conn.h"
#include "listener.h"
#include "log.h"
#include "ratelimit.h"
#include "server.h"
#include "siphash.h"
#include "xmalloc.h"

/* The kernel caps this at net.core.somaxconn; bursts of new connections
 * must not be dropped at a backlog of 128. */
#define LISTENER_BACKLOG	4096
#define LISTENER_ADDR_BUCKETS	4096

struct listener {
	struct server		*srv;
	struct evconnlistener	*evl;
	struct config_listen	 entry;
	char			 name[80];
	uint64_t		 connections;	/* open now */
	struct listener		*next;
};

/*
 * Open connections per remote address, for max_per_ip.  The limit counts
 * a network (ratelimit_addr_key: an IPv6 /64 by default); each exact
 * address remembers the network it was counted under, so a release
 * finds the same entry even if a reload changed limits.ipv6_prefix in
 * between.  Only admitted connections create entries, and an entry goes
 * with its last connection: both tables hold at most one entry per open
 * connection.
 */
struct listener_net {
	char			 key[RATELIMIT_ADDR_KEY_LEN];
	int			 count;
	struct listener_net	*next;
};

struct listener_addr {
	unsigned char		 addr[16];
	int			 family;
	int			 count;
	struct listener_net	*net;
	struct listener_addr	*next;
};

static struct listener_addr	*listener_addrs[LISTENER_ADDR_BUCKETS];
static struct listener_net	*listener_nets[LISTENER_ADDR_BUCKETS];
/* Keyed: an IPv6 peer picks its address from a whole prefix. */
static uint8_t			 listener_addr_hash_key[SIPHASH_KEY_LEN];
static bool			 listener_addr_hash_keyed;

static uint64_t
listener_hash(const void *data, size_t len)
{
	if (!listener_addr_hash_keyed) {
		siphash_key_random(listener_addr_hash_key);
		listener_addr_hash_keyed = true;
	}
	return siphash24(listener_addr_hash_key, data, len);
}

/* The address bytes of sa (no port), for the per-address table. */
static size_t
listener_addr_key(const struct sockaddr *sa, unsigned char *key)
{
	if (sa->sa_family == AF_INET) {
		memcpy(key, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 4;
	}
	memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	return 16;
}

static struct listener_addr **
listener_addr_slot(const struct sockaddr *sa, unsigned char *key, size_t *len)
{
	struct listener_addr	**pp;

	*len = listener_addr_key(sa, key);
	pp = &listener_addrs[listener_hash(key, *len) % LISTENER_ADDR_BUCKETS];
	while (*pp != NULL && ((*pp)->family != sa->sa_family ||
	    memcmp((*pp)->addr, key, *len) != 0))
		pp = &(*pp)->next;
	return pp;
}

static struct listener_net **
listener_net_slot(const char *key)
{
	struct listener_net	**pp;

	pp = &listener_nets[listener_hash(key, strlen(key)) %
	    LISTENER_ADDR_BUCKETS];
	while (*pp != NULL && strcmp((*pp)->key, key) != 0)
		pp = &(*pp)->next;
	return pp;
}

/* The network entry for a new address, created (count 0) if need be. */
static struct listener_net *
listener_net_get(const struct sockaddr *sa, int ipv6_prefix)
{
	struct listener_net	**pp, *n;
	char			  key[RATELIMIT_ADDR_KEY_LEN];

	ratelimit_addr_key(sa, ipv6_prefix, key, sizeof(key));
	pp = listener_net_slot(key);
	if ((n = *pp) == NULL) {
		n = xcalloc(1, sizeof(*n));
		memcpy(n->key, key, sizeof(n->key));
		*pp = n;
	}
	return n;
}

static void
listener_net_put(struct listener_net *n)
{
	struct listener_net	**pp;

	if (n->count > 0)
		return;
	pp = listener_net_slot(n->key);
	*pp = n->next;
	free(n);
}

/* Count a new connection from sa unless its network is at max_per_ip. */
static bool
listener_addr_admit(const struct sockaddr *sa, int max_per_ip,
    int ipv6_prefix)
{
	struct listener_addr	**pp, *a;
	struct listener_net	 *n;
	unsigned char		  key[16];
	size_t			  len;

	pp = listener_addr_slot(sa, key, &len);
	n = (a = *pp) != NULL ? a->net : listener_net_get(sa, ipv6_prefix);
	if (n->count >= max_per_ip) {
		listener_net_put(n);
		return false;
	}
	if (a == NULL) {
		a = xcalloc(1, sizeof(*a));
		memcpy(a->addr, key, len);
		a->family = sa->sa_family;
		a->net = n;
		*pp = a;
	}
	a->count++;
	n->count++;
	return true;
}

void
listener_release(struct listener *l, const struct sockaddr *sa)
{
	struct listener_addr	**pp, *a;
	unsigned char		  key[16];
	size_t			  len;

	if (l != NULL && l->connections > 0)
		l->connections--;
	pp = listener_addr_slot(sa, key, &len);
	if ((a = *pp) == NULL)
		return;
	a->net->count--;
	listener_net_put(a->net);
	if (--a->count <= 0) {
		*pp = a->next;
		free(a);
	}
}

void
listener_addr_table_free(void)
{
	struct listener_addr	*a, *next;
	struct listener_net	*n, *nnext;
	size_t			 i;

	for (i = 0; i < LISTENER_ADDR_BUCKETS; i++) {
		for (a = listener_addrs[i]; a != NULL; a = next) {
			next = a->next;
			free(a);
		}
		listener_addrs[i] = NULL;
		for (n = listener_nets[i]; n != NULL; n = nnext) {
			nnext = n->next;
			free(n);
		}
		listener_nets[i] = NULL;
	}
}

static void
listener_accept_cb(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct listener		*l = arg;
	struct server		*srv = l->srv;
	const struct config_limits *lim = &srv->cfg->limits;
	int			 on = 1;

	server_accept_ok(srv);
	/* Admission first: refusing costs nothing, a handshake would. */
	if (srv->state != SERVER_RUNNING ||
	    srv->stats.connections >= (uint64_t)lim->max_connections ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)) {
		srv->stats.connections_rejected++;
		close(fd);
		return;
	}
	if (!listener_addr_admit(sa, lim->max_per_ip, lim->ipv6_prefix)) {
		srv->stats.connections_rejected++;
		close(fd);
		return;
	}
	/* Chat is latency-bound: no Nagle; keepalive finds dead peers. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	l->connections++;
	conn_new(srv, l, fd, sa, salen, srv->tls);
}

static void
listener_error_cb(struct evconnlistener *evl, void *arg)
{
	struct listener	*l = arg;
	int		 err = EVUTIL_SOCKET_ERROR();

	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		server_accept_pause(l->srv);
		return;
	}
	log_warnx("listener %s: accept: %s", l->name, strerror(err));
}

/* Wrap a bound socket in a libevent listener; closes fd on failure. */
static struct listener *
listener_wrap(struct server *srv, int fd, const char *address, int port,
    int family, char **cause)
{
	struct listener	*l = xcalloc(1, sizeof(*l));

	l->srv = srv;
	l->entry.address = xstrdup(address);
	l->entry.port = port;
	snprintf(l->name, sizeof(l->name), family == AF_INET6 ? "[%s]:%d" :
	    "%s:%d", address, port);
	l->evl = evconnlistener_new(srv->base, listener_accept_cb, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, LISTENER_BACKLOG, fd);
	if (l->evl == NULL) {
		xasprintf(cause, "listen %s: %s", l->name, strerror(errno));
		close(fd);
		free(l->entry.address);
		free(l);
		return NULL;
	}
	evconnlistener_set_error_cb(l->evl, listener_error_cb);
	log_info("listening on %s", l->name);
	return l;
}

struct listener *
listener_new_fd(struct server *srv, int fd, char **cause)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	char			 addr[INET6_ADDRSTRLEN];
	int			 port;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1 ||
	    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
		xasprintf(cause, "socket %d from systemd is not a TCP socket",
		    fd);
		return NULL;
	}
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof(addr));
		port = ntohs(s6->sin6_port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof(addr));
		port = ntohs(s4->sin_port);
	}
	evutil_make_socket_nonblocking(fd);
	evutil_make_socket_closeonexec(fd);
	return listener_wrap(srv, fd, addr, port, ss.ss_family, cause);
}

struct listener *
listener_new(struct server *srv, const struct config_listen *entry,
    char **cause)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	int			 fd, on = 1;

	memset(&ss, 0, sizeof(ss));
	if (strchr(entry->address, ':') != NULL) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)entry->port);
		inet_pton(AF_INET6, entry->address, &sin6->sin6_addr);
		sslen = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)entry->port);
		inet_pton(AF_INET, entry->address, &sin->sin_addr);
		sslen = sizeof(*sin);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		xasprintf(cause, "listen %s port %d: socket: %s",
		    entry->address, entry->port, strerror(errno));
		return NULL;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	/* So that "::" and "0.0.0.0" can both be listed. */
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&ss, sslen) == -1) {
		xasprintf(cause, "listen %s port %d: bind: %s",
		    entry->address, entry->port, strerror(errno));
		close(fd);
		return NULL;
	}
	/* evconnlistener_new() calls listen() with our backlog. */
	return listener_wrap(srv, fd, entry->address, entry->port,
	    ss.ss_family, cause);
}

void
listener_free(struct listener *l)
{
	if (l == NULL)
		return;
	evconnlistener_free(l->evl);
	free(l->entry.address);
	free(l);
}

struct listener *
listener_next(const struct listener *l)
{
	return l->next;
}

void
listener_set_next(struct listener *l, struct listener *next)
{
	l->next = next;
}

const char *
listener_name(const struct listener *l)
{
	return l->name;
}

uint64_t
listener_connections(const struct listener *l)
{
	return l->connections;
}

bool
listener_matches(const struct listener *l, const struct config_listen *entry)
{
	return l->entry.port == entry->port &&
	    strcmp(l->entry.address, entry->address) == 0;
}

void
listener_enable(struct listener *l, bool on)
{
	if (on)
		evconnlistener_enable(l->evl);
	else
		evconnlistener_disable(l->evl);
}
