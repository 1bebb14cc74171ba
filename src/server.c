/* server: the daemon's lifecycle: start, signals, reload, shutdown. */
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>
#include <systemd/sd-daemon.h>

#include "admin.h"
#include "auth.h"
#include "chat.h"
#include "config.h"
#include "conn.h"
#include "dispatch.h"
#include "listener.h"
#include "log.h"
#include "notify.h"
#include "proto.h"
#include "server.h"
#include "store.h"
#include "tls.h"
#include "version.h"
#include "xmalloc.h"

#define SERVER_STOP_GRACE	10	/* seconds to flush at shutdown */
#define SERVER_STATUS_PERIOD	10	/* seconds between STATUS= updates */
#define SERVER_ACCEPT_RETRY_MS	500	/* after running out of descriptors */
/* Running out again sooner than this is the same episode: not logged. */
#define SERVER_FD_EPISODE_MS	30000
#define SERVER_FD_RESERVE	64	/* descriptors beyond the connections */
#define SERVER_AUTH_THREADS	2

int64_t
server_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* For intervals: immune to the wall clock being set. */
static int64_t
server_mono_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
server_status(struct server *srv)
{
	notify_status("%llu connections, %llu sessions",
	    (unsigned long long)srv->stats.connections,
	    (unsigned long long)srv->stats.sessions);
}

static void
server_status_timer_cb(int fd, short what, void *arg)
{
	server_status(arg);
}

static void
server_ticket_rotate(void)
{
	if (tls_ticket_rotate() == -1)
		log_warnx("TLS ticket key rotation failed: no new session "
		    "tickets until the next one");
}

static void
server_ticket_timer_cb(int fd, short what, void *arg)
{
	server_ticket_rotate();
}

/*
 * Ask for as many descriptors as max_connections needs.  When the hard
 * limit is lower, say so: otherwise an operator sees connections refused
 * at a number that appears nowhere in their configuration.
 */
static void
server_raise_nofile(const struct config *cfg)
{
	struct rlimit	 rl;
	rlim_t		 want = (rlim_t)cfg->limits.max_connections +
			    SERVER_FD_RESERVE;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ?
	    want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		log_warn("setrlimit(RLIMIT_NOFILE)");
	if (rl.rlim_cur < want)
		log_notice("descriptor limit %llu is below the %llu that "
		    "max_connections = %d needs; raise LimitNOFILE",
		    (unsigned long long)rl.rlim_cur, (unsigned long long)want,
		    cfg->limits.max_connections);
}

static void
server_log_fingerprint(struct server *srv)
{
	char	 fp[160];

	if (tls_ctx_fingerprint(srv->tls, fp, sizeof(fp)) == 0)
		log_notice("certificate %s %s", srv->cfg->tls_certificate, fp);
}

/* Open every configured listener; keep ones that already match. */
static int
server_listeners_apply(struct server *srv, const struct config *cfg,
    char **cause)
{
	struct listener	*keep = NULL, *l, *next, *fresh = NULL;
	size_t		 i;
	bool		 found;

	/* Sockets from systemd replace the listen entries, on reload too. */
	if (srv->socket_activated)
		return 0;

	for (i = 0; i < cfg->nlisten; i++) {
		found = false;
		for (l = srv->listeners; l != NULL; l = listener_next(l))
			if (listener_matches(l, &cfg->listen[i]))
				found = true;
		if (found)
			continue;
		if ((l = listener_new(srv, &cfg->listen[i], cause)) == NULL) {
			for (l = fresh; l != NULL; l = next) {
				next = listener_next(l);
				listener_free(l);
			}
			return -1;
		}
		listener_set_next(l, fresh);
		fresh = l;
	}
	/* Close the listeners the new configuration no longer has. */
	for (l = srv->listeners; l != NULL; l = next) {
		next = listener_next(l);
		found = false;
		for (i = 0; i < cfg->nlisten; i++)
			if (listener_matches(l, &cfg->listen[i]))
				found = true;
		if (found) {
			listener_set_next(l, keep);
			keep = l;
			continue;
		}
		conn_forget_listener(l);
		log_info("closed listener %s", listener_name(l));
		listener_free(l);
	}
	for (l = fresh; l != NULL; l = next) {
		next = listener_next(l);
		listener_set_next(l, keep);
		keep = l;
	}
	srv->listeners = keep;
	return 0;
}

/* Listening sockets passed by systemd (netsockd.socket), if any. */
static int
server_listeners_activated(struct server *srv, char **cause)
{
	struct listener	*l;
	int		 n, i;

	if ((n = sd_listen_fds(1)) <= 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (sd_is_socket(SD_LISTEN_FDS_START + i, AF_UNSPEC,
		    SOCK_STREAM, 1) <= 0) {
			xasprintf(cause, "socket %d from systemd is not a "
			    "listening stream socket", SD_LISTEN_FDS_START + i);
			return -1;
		}
		if ((l = listener_new_fd(srv, SD_LISTEN_FDS_START + i,
		    cause)) == NULL)
			return -1;
		listener_set_next(l, srv->listeners);
		srv->listeners = l;
	}
	srv->socket_activated = true;
	log_info("using %d listening socket(s) from systemd instead of the "
	    "listen setting", n);
	return 0;
}

static void
server_signal_cb(int sig, short what, void *arg)
{
	struct server	*srv = arg;
	char		*cause = NULL;

	switch (sig) {
	case SIGTERM:
	case SIGINT:
		server_shutdown(srv, sig == SIGTERM ? "SIGTERM" : "SIGINT");
		break;
	case SIGHUP:
		if (server_reload(srv, &cause) == -1)
			free(cause);
		break;
	}
}

/* Rooms and memberships from the store into chat, at start. */
struct server_loader {
	struct chat		 *chat;
	struct chat_room	**rooms;	/* sorted by id */
	size_t			  n, cap;
};

static void
server_load_room_cb(const struct store_room *sr, void *arg)
{
	struct server_loader	*ld = arg;

	if (ld->n == ld->cap) {
		ld->cap = ld->cap ? ld->cap * 2 : 64;
		ld->rooms = xreallocarray(ld->rooms, ld->cap,
		    sizeof(*ld->rooms));
	}
	ld->rooms[ld->n++] = chat_room_add(ld->chat, sr->id, sr->name,
	    sr->topic);
}

static int
server_room_id_cmp(const void *a, const void *b)
{
	int64_t	 x = chat_room_id(*(struct chat_room *const *)a);
	int64_t	 y = chat_room_id(*(struct chat_room *const *)b);

	return x < y ? -1 : x > y;
}

static int
server_room_key_cmp(const void *key, const void *elem)
{
	int64_t	 x = *(const int64_t *)key;
	int64_t	 y = chat_room_id(*(struct chat_room *const *)elem);

	return x < y ? -1 : x > y;
}

static void
server_load_member_cb(int64_t room_id, int64_t user_id, const char *name,
    void *arg)
{
	struct server_loader	 *ld = arg;
	struct chat_room	**r;

	r = ld->n == 0 ? NULL : bsearch(&room_id, ld->rooms, ld->n,
	    sizeof(*ld->rooms), server_room_key_cmp);
	if (r != NULL)
		chat_member_add(*r, chat_user_get(ld->chat, user_id, name));
}

static int
server_load_chat(struct server *srv, char **cause)
{
	struct server_loader	 ld = { srv->chat, NULL, 0, 0 };
	int			 rc;

	rc = store_room_list(srv->store, server_load_room_cb, &ld);
	if (rc == STORE_OK) {
		if (ld.n > 0)
			qsort(ld.rooms, ld.n, sizeof(*ld.rooms),
			    server_room_id_cmp);
		rc = store_member_list(srv->store, server_load_member_cb, &ld);
	}
	free(ld.rooms);
	if (rc != STORE_OK) {
		xasprintf(cause, "%s: cannot load rooms and memberships",
		    srv->cfg->database);
		return -1;
	}
	log_info("loaded %zu rooms, %lld messages stored", chat_rooms(srv->chat),
	    (long long)store_message_count(srv->store));
	return 0;
}

/* Password jobs come back here and go to whoever asked. */
static void
server_auth_done(const struct auth_result *res, void *arg)
{
	struct server	*srv = arg;

	if (res->cookie & ADMIN_COOKIE_BIT)
		admin_auth_done(srv->admin, res);
	else
		dispatch_auth_done(res, srv);
}

static int
server_mkdir_state(const char *dir, char **cause)
{
	if (mkdir(dir, 0750) == -1 && errno != EEXIST) {
		xasprintf(cause, "state directory %s: %s", dir,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* Whether path lives in dir (so dir must exist before we use path). */
static bool
server_in_dir(const char *path, const char *dir)
{
	size_t	 n = strlen(dir);

	return strncmp(path, dir, n) == 0 && path[n] == '/';
}

struct server *
server_new(struct config *cfg, const char *config_path, const char *state_dir,
    char **cause)
{
	struct server	*srv = xcalloc(1, sizeof(*srv));

	srv->cfg = cfg;
	srv->config_path = config_path ? xstrdup(config_path) : NULL;
	srv->state_dir = xstrdup(state_dir);
	srv->state = SERVER_STARTING;
	srv->stats.started_ms = server_now_ms();
	TAILQ_INIT(&srv->conns);
	conn_table_init();

	signal(SIGPIPE, SIG_IGN);
	server_raise_nofile(cfg);
	if ((srv->base = event_base_new()) == NULL) {
		xasprintf(cause, "cannot create the event loop");
		goto fail;
	}
	if ((cfg->tls_self_signed && server_in_dir(cfg->tls_key, state_dir)) ||
	    server_in_dir(cfg->database, state_dir) ||
	    server_in_dir(cfg->admin_socket, state_dir))
		if (server_mkdir_state(state_dir, cause) == -1)
			goto fail;
	if ((srv->tls = tls_ctx_new(cfg, cause)) == NULL)
		goto fail;
	server_log_fingerprint(srv);
	/* Opening checks the whole file: minutes for a large database. */
	notify_status("checking the database %s", cfg->database);
	if ((srv->store = store_open(cfg->database, cause)) == NULL)
		goto fail;
	srv->chat = chat_new();
	account_init();
	if (server_load_chat(srv, cause) == -1)
		goto fail;
	srv->auth = auth_new(srv->base, SERVER_AUTH_THREADS,
	    cfg->scrypt_log2_n, server_auth_done, srv);
	if (srv->auth == NULL) {
		xasprintf(cause, "cannot start the password hashing workers");
		goto fail;
	}
	if ((srv->admin = admin_new(srv, cfg->admin_socket, cause)) == NULL)
		goto fail;
	if (server_listeners_activated(srv, cause) == -1 ||
	    server_listeners_apply(srv, cfg, cause) == -1)
		goto fail;

	srv->sig_term = evsignal_new(srv->base, SIGTERM, server_signal_cb, srv);
	srv->sig_int = evsignal_new(srv->base, SIGINT, server_signal_cb, srv);
	srv->sig_hup = evsignal_new(srv->base, SIGHUP, server_signal_cb, srv);
	event_add(srv->sig_term, NULL);
	event_add(srv->sig_int, NULL);
	event_add(srv->sig_hup, NULL);
	srv->status_timer = event_new(srv->base, -1, EV_PERSIST,
	    server_status_timer_cb, srv);
	event_add(srv->status_timer,
	    &(struct timeval){ SERVER_STATUS_PERIOD, 0 });
	srv->ticket_timer = event_new(srv->base, -1, EV_PERSIST,
	    server_ticket_timer_cb, srv);
	event_add(srv->ticket_timer,
	    &(struct timeval){ TLS_TICKET_ROTATE_SECONDS, 0 });
	notify_init(srv->base);
	return srv;
fail:
	server_free(srv);
	return NULL;
}

int
server_run(struct server *srv, void (*ready)(void))
{
	char		 status[128];
	struct log_field f[] = { { "VERSION", NETSOCK_VERSION } };

	srv->state = SERVER_RUNNING;
	snprintf(status, sizeof(status), "accepting connections, version %s",
	    NETSOCK_VERSION);
	log_emit(LOG_NOTICE, LOG_ID_START, f, 1, "netsockd %s started",
	    NETSOCK_VERSION);
	notify_ready(status);
	if (ready != NULL)
		ready();
	/*
	 * One pass of the loop runs every ready callback.  After it: input
	 * left over from busy peers, then the group commit (whose oks and
	 * fan-out follow it), then one write per connection with output.
	 * With work left over the next pass only polls, it does not wait.
	 */
	while (srv->state != SERVER_DONE) {
		event_base_loop(srv->base, EVLOOP_ONCE |
		    (!conn_has_work() && !dispatch_has_work() ?
		    0 : EVLOOP_NONBLOCK));
		conn_end_of_pass(srv);
		dispatch_end_of_pass(srv);
		conn_flush(srv);
	}
	/* Run the deferred frees of the last connections. */
	event_base_loop(srv->base, EVLOOP_NONBLOCK);
	log_emit(LOG_NOTICE, LOG_ID_STOP, f, 1, "netsockd %s stopped",
	    NETSOCK_VERSION);
	return 0;
}

static void
server_stop_timer_cb(int fd, short what, void *arg)
{
	struct server	*srv = arg;
	struct conn	*c;

	/* Whoever has not taken their output by now is cut off. */
	while ((c = TAILQ_FIRST(&srv->conns)) != NULL)
		conn_close(c, "shutdown_timeout");
	srv->state = SERVER_DONE;
}

void
server_shutdown(struct server *srv, const char *reason)
{
	struct listener	*l, *next;
	struct conn	*c, *cnext;
	json_t		*ev;
	char		*line;
	size_t		 len;

	if (srv->state != SERVER_RUNNING)
		return;
	/* Messages accepted so far are committed and acknowledged first. */
	dispatch_end_of_pass(srv);
	srv->state = SERVER_STOPPING;
	log_info("shutting down (%s)", reason);
	notify_stopping("shutting down");
	for (l = srv->listeners; l != NULL; l = next) {
		next = listener_next(l);
		listener_free(l);
	}
	srv->listeners = NULL;
	conn_forget_listener(NULL);

	ev = json_pack("{s:s, s:s}", "type", "shutdown", "reason",
	    "server shutting down");
	line = proto_dump(ev, &len);
	for (c = TAILQ_FIRST(&srv->conns); c != NULL; c = cnext) {
		cnext = TAILQ_NEXT(c, entry);
		conn_send(c, line, len);
		conn_close_after_flush(c, "shutdown");
	}
	free(line);
	if (TAILQ_EMPTY(&srv->conns)) {
		srv->state = SERVER_DONE;
		return;
	}
	srv->stop_timer = evtimer_new(srv->base, server_stop_timer_cb, srv);
	event_add(srv->stop_timer, &(struct timeval){ SERVER_STOP_GRACE, 0 });
}

int
server_reload(struct server *srv, char **cause)
{
	struct config	*cfg;
	SSL_CTX		*tls;
	struct conn	*c;
	char		*pending;
	struct log_field f[1];

	/*
	 * Stopping is one way: a reload now would reopen the listeners
	 * shutdown closed and tell systemd READY=1 after STOPPING=1.
	 */
	if (srv->state != SERVER_RUNNING) {
		xasprintf(cause, "shutting down");
		log_notice("reload refused: shutting down");
		return -1;
	}
	notify_reloading();
	if (srv->config_path != NULL)
		cfg = config_load(srv->config_path, srv->state_dir, cause);
	else
		cfg = config_defaults(srv->state_dir);
	if (cfg == NULL)
		goto fail;
	if ((tls = tls_ctx_new(cfg, cause)) == NULL) {
		config_free(cfg);
		goto fail;
	}
	if (server_listeners_apply(srv, cfg, cause) == -1) {
		SSL_CTX_free(tls);
		config_free(cfg);
		goto fail;
	}
	/* Settings that need a restart keep their running values, so the
	 * snapshot always says what the daemon really uses. */
	if ((pending = config_restart_pending(srv->cfg, cfg)) != NULL) {
		log_notice("reload: %s: changes take effect after a restart",
		    pending);
		free(pending);
		free(cfg->database);
		cfg->database = xstrdup(srv->cfg->database);
		free(cfg->admin_socket);
		cfg->admin_socket = xstrdup(srv->cfg->admin_socket);
	}
	/* Everything built: swap.  Open connections keep their old SSL_CTX
	 * through their own reference. */
	SSL_CTX_free(srv->tls);
	srv->tls = tls;
	config_free(srv->cfg);
	srv->cfg = cfg;
	TAILQ_FOREACH(c, &srv->conns, entry) {
		conn_apply_limits(c);
		account_apply_limits(c);
	}
	/* As on the timer: tickets from before the reload still resume. */
	server_ticket_rotate();
	log_set_level(cfg->log_level);
	auth_set_cost(srv->auth, cfg->scrypt_log2_n);
	server_raise_nofile(cfg);
	server_log_fingerprint(srv);
	log_emit(LOG_NOTICE, LOG_ID_RELOAD_OK, NULL, 0, "configuration reloaded");
	notify_ready("configuration reloaded");
	return 0;
fail:
	f[0] = (struct log_field){ "REASON", *cause };
	log_emit(LOG_ERR, LOG_ID_RELOAD_FAILED, f, 1,
	    "reload rejected, old configuration kept: %s", *cause);
	notify_ready("reload rejected, old configuration kept");
	return -1;
}

static void
server_accept_timer_cb(int fd, short what, void *arg)
{
	server_accept_resume(arg);
}

void
server_accept_pause(struct server *srv)
{
	struct listener	*l;
	int64_t		 now = server_mono_ms();

	if (srv->accept_paused)
		return;
	srv->accept_paused = true;
	for (l = srv->listeners; l != NULL; l = listener_next(l))
		listener_enable(l, false);
	/*
	 * Once per episode, not once per retry or per refilled slot: at the
	 * limit, every freed descriptor is taken by a waiting connection
	 * and the daemon runs out again at once.
	 */
	if (srv->fd_exhausted_ms == 0 ||
	    now - srv->fd_exhausted_ms >= SERVER_FD_EPISODE_MS)
		log_emit(LOG_WARNING, NULL, NULL, 0, "out of file descriptors "
		    "with %llu connections open: accepting paused until one "
		    "closes (raise LimitNOFILE or lower "
		    "limits.max_connections)",
		    (unsigned long long)srv->stats.connections);
	srv->fd_exhausted_ms = now;
	if (srv->accept_timer == NULL)
		srv->accept_timer = evtimer_new(srv->base,
		    server_accept_timer_cb, srv);
	event_add(srv->accept_timer,
	    &(struct timeval){ 0, SERVER_ACCEPT_RETRY_MS * 1000 });
}

void
server_accept_resume(struct server *srv)
{
	struct listener	*l;

	if (!srv->accept_paused || srv->state != SERVER_RUNNING)
		return;
	srv->accept_paused = false;
	evtimer_del(srv->accept_timer);
	for (l = srv->listeners; l != NULL; l = listener_next(l))
		listener_enable(l, true);
}

void
server_accept_ok(struct server *srv)
{
	if (srv->fd_exhausted_ms == 0 ||
	    server_mono_ms() - srv->fd_exhausted_ms < SERVER_FD_EPISODE_MS)
		return;
	srv->fd_exhausted_ms = 0;
	log_info("accepting connections again");
}

void
server_free(struct server *srv)
{
	struct listener	*l, *next;

	if (srv == NULL)
		return;
	for (l = srv->listeners; l != NULL; l = next) {
		next = listener_next(l);
		listener_free(l);
	}
	listener_addr_table_free();
	admin_free(srv->admin);
	notify_free();
	auth_free(srv->auth);
	message_free();
	account_free();
	chat_free(srv->chat);
	store_free(srv->store);
	if (srv->sig_term != NULL) {
		event_free(srv->sig_term);
		event_free(srv->sig_int);
		event_free(srv->sig_hup);
	}
	if (srv->status_timer != NULL)
		event_free(srv->status_timer);
	if (srv->ticket_timer != NULL)
		event_free(srv->ticket_timer);
	if (srv->stop_timer != NULL)
		event_free(srv->stop_timer);
	if (srv->accept_timer != NULL)
		event_free(srv->accept_timer);
	conn_table_free();
	SSL_CTX_free(srv->tls);
	tls_ticket_free();
	if (srv->base != NULL)
		event_base_free(srv->base);
	config_free(srv->cfg);
	free(srv->config_path);
	free(srv->state_dir);
	free(srv);
}
