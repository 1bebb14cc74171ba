/*
 * server: the running daemon as a whole.  Owns the event loop, the live
 * configuration snapshot and TLS context, the listeners, the store, the
 * auth workers and the counters; handles signals, reload and graceful
 * shutdown.  Everything here runs on the one loop thread.
 */
#ifndef NETSOCK_SERVER_H
#define NETSOCK_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "conn.h"
#include "stats.h"

struct config;
struct event;
struct event_base;
struct listener;
struct store;
struct auth;
struct chat;
struct admin;

enum server_state {
	SERVER_STARTING,
	SERVER_RUNNING,
	SERVER_STOPPING,	/* shutdown sent; draining connections */
	SERVER_DONE
};

struct server {
	struct event_base	*base;
	struct config		*cfg;		/* live snapshot */
	char			*config_path;	/* NULL: built-in defaults */
	char			*state_dir;
	SSL_CTX			*tls;		/* for new connections */
	struct listener		*listeners;	/* linked list */
	struct store		*store;
	struct auth		*auth;
	struct chat		*chat;
	struct admin		*admin;
	struct stats		 stats;
	enum server_state	 state;
	struct conn_list	 conns;		/* every open connection */
	struct event		*sig_term, *sig_int, *sig_hup, *sig_pipe;
	struct event		*stop_timer;	/* shutdown grace period */
	struct event		*status_timer;	/* STATUS= refresh */
	struct event		*ticket_timer;	/* TLS ticket key rotation */
	bool			 socket_activated; /* listeners from systemd */
	bool			 accept_paused;	/* out of descriptors */
	int64_t			 fd_exhausted_ms; /* last ran out; 0: not */
	struct event		*accept_timer;	/* retry after EMFILE */
};

/*
 * Build the server from a loaded configuration (taking ownership of cfg):
 * state directory, TLS context, store, auth workers, listeners.  NULL with
 * *cause when something cannot be set up.
 */
struct server	*server_new(struct config *cfg, const char *config_path,
		    const char *state_dir, char **cause);
/* Run until shutdown completes; returns the process exit status. */
int		 server_run(struct server *srv, void (*ready)(void));
void		 server_free(struct server *srv);

/* SIGTERM / netsockctl shutdown. */
void		 server_shutdown(struct server *srv, const char *reason);
/* SIGHUP / netsockctl reload: 0 applied, -1 rejected with *cause (always
 * while shutting down: nothing is reopened and systemd hears no READY=1). */
int		 server_reload(struct server *srv, char **cause);

/* Accepting paused because descriptors ran out, and resuming. */
void		 server_accept_pause(struct server *srv);
void		 server_accept_resume(struct server *srv);
/* A connection was accepted: a descriptor shortage that has not come
 * back for a while is over. */
void		 server_accept_ok(struct server *srv);

/* Wall-clock milliseconds since the epoch. */
int64_t		 server_now_ms(void);

#endif
