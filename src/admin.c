/* admin: the admin channel's listener, permission check and commands. */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "admin.h"
#include "admin_proto.h"
#include "auth.h"
#include "chat.h"
#include "config.h"
#include "conn.h"
#include "dispatch.h"
#include "listener.h"
#include "log.h"
#include "proto.h"
#include "secret.h"
#include "server.h"
#include "store.h"
#include "version.h"
#include "xmalloc.h"

#define ADMIN_MAX_CONNS		32	/* admin clients at once */
#define ADMIN_TIMEOUT		30	/* seconds for a request to arrive */
#define ADMIN_ACCEPT_RETRY_MS	500	/* after running out of descriptors */

struct admin_conn {
	uint64_t		 id;
	struct admin		*admin;
	struct bufferevent	*bev;
	uid_t			 uid;
	pid_t			 pid;
	int			 flags;
#define ADMIN_F_WAITING		0x1	/* for the auth workers */
#define ADMIN_F_DONE		0x2	/* replied; closing after flush */
#define ADMIN_F_SHUTDOWN	0x4	/* shut the daemon down after flush */
	char			*user;		/* user add / passwd */
	int64_t			 user_id;
	TAILQ_ENTRY(admin_conn)	 entry;
};

struct admin {
	struct server		*srv;
	int			 fd;
	struct event		*ev;
	struct event		*retry;		/* accepting again after EMFILE */
	bool			 starved;	/* out of descriptors; logged */
	char			*path;
	gid_t			 gid;		/* the socket's group */
	uint64_t		 next_id;
	size_t			 nconns;
	TAILQ_HEAD(, admin_conn) conns;
};

typedef json_t	*admin_cmd_fn(struct admin_conn *, json_t *req);

static void	admin_conn_free(struct admin_conn *);

static json_t	*admin_error(int, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

/* A failure reply with the exit status netsockctl should use. */
static json_t *
admin_error(int status, const char *fmt, ...)
{
	char	 msg[512];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:s, s:i}", "ok", 0, "error", msg, "status",
	    status);
}

static json_t *
admin_ok(void)
{
	return json_pack("{s:b}", "ok", 1);
}

static const char *
admin_arg(json_t *req, const char *key)
{
	json_t	*v = json_object_get(req, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static void
admin_ts(json_t *obj, const char *key, int64_t ms)
{
	char	 ts[PROTO_TIME_LEN];

	proto_format_time(ms, ts);
	json_object_set_new(obj, key, json_string(ts));
}

static json_t *
admin_cmd_stats(struct admin_conn *ac, json_t *req)
{
	struct server	*srv = ac->admin->srv;
	struct stats	*st = &srv->stats;
	struct listener	*l;
	json_t		*r, *more, *ls = json_array();

	for (l = srv->listeners; l != NULL; l = listener_next(l))
		json_array_append_new(ls, json_pack("{s:s, s:I}", "address",
		    listener_name(l), "connections",
		    (json_int_t)listener_connections(l)));
	r = json_pack("{s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "ok", 1, "version", NETSOCK_VERSION,
	    "pid", (json_int_t)getpid(),
	    "uptime_seconds", (json_int_t)((server_now_ms() -
	    st->started_ms) / 1000),
	    "connections", (json_int_t)st->connections,
	    "connections_total", (json_int_t)st->connections_total,
	    "sessions", (json_int_t)st->sessions,
	    "users_online", (json_int_t)chat_users_online(srv->chat),
	    "rooms", (json_int_t)chat_rooms(srv->chat),
	    "messages_stored", (json_int_t)store_message_count(srv->store));
	more = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "messages_in", (json_int_t)st->messages_in,
	    "messages_out", (json_int_t)st->messages_out,
	    "bytes_in", (json_int_t)st->bytes_in,
	    "bytes_out", (json_int_t)st->bytes_out,
	    "tls_handshake_failures", (json_int_t)st->tls_handshake_failures,
	    "rate_limited", (json_int_t)st->rate_limited,
	    "kicks", (json_int_t)st->kicks,
	    "connections_rejected", (json_int_t)st->connections_rejected,
	    "slow_readers", (json_int_t)st->slow_readers);
	json_object_update(r, more);
	json_decref(more);
	json_object_set_new(r, "config", srv->config_path ?
	    json_string(srv->config_path) : json_null());
	json_object_set_new(r, "database", json_string(srv->cfg->database));
	json_object_set_new(r, "database_bytes",
	    json_integer(store_size_bytes(srv->store)));
	json_object_set_new(r, "listeners", ls);
	return r;
}

static json_t *
admin_cmd_sessions(struct admin_conn *ac, json_t *req)
{
	struct server	*srv = ac->admin->srv;
	struct conn	*c;
	json_t		*list = json_array(), *s;
	int64_t		 now = server_now_ms();
	bool		 tls;

	TAILQ_FOREACH(c, &srv->conns, entry) {
		tls = c->state != CONN_STATE_HANDSHAKE;
		s = json_pack("{s:I, s:o, s:s}", "id", (json_int_t)c->id,
		    "user", c->session ? json_string(chat_user_name(
		    c->session->user)) : json_null(), "remote", c->peer_text);
		admin_ts(s, "connected_since", c->connected_ms);
		json_object_set_new(s, "idle_seconds",
		    json_integer((now - c->last_input_ms) / 1000));
		json_object_set_new(s, "bytes_in", json_integer(
		    (json_int_t)c->bytes_in));
		json_object_set_new(s, "bytes_out", json_integer(
		    (json_int_t)c->bytes_out));
		json_object_set_new(s, "tls_version", tls ?
		    json_string(conn_tls_version(c)) : json_null());
		json_object_set_new(s, "tls_cipher", tls ?
		    json_string(conn_tls_cipher(c)) : json_null());
		json_array_append_new(list, s);
	}
	return json_pack("{s:b, s:o}", "ok", 1, "sessions", list);
}

static void
admin_room_cb(struct chat_room *r, void *arg)
{
	json_array_append_new(arg, json_pack("{s:s, s:I, s:s}", "room",
	    chat_room_name(r), "members", (json_int_t)chat_room_members(r),
	    "topic", chat_room_topic(r)));
}

static json_t *
admin_cmd_rooms(struct admin_conn *ac, json_t *req)
{
	json_t	*list = json_array();

	chat_each_room(ac->admin->srv->chat, admin_room_cb, list);
	return json_pack("{s:b, s:o}", "ok", 1, "rooms", list);
}

static json_t *
admin_cmd_kick(struct admin_conn *ac, json_t *req)
{
	struct server	*srv = ac->admin->srv;
	const char	*user = admin_arg(req, "user");
	const char	*reason = admin_arg(req, "reason");
	json_t		*sid = json_object_get(req, "session");
	struct conn	*c;
	int		 n;

	if (reason == NULL || *reason == '\0')
		reason = "kicked by the operator";
	if (json_is_integer(sid)) {
		c = conn_find((uint64_t)json_integer_value(sid));
		if (c == NULL || conn_closed(c))
			return admin_error(ADMIN_STATUS_FAILED,
			    "no session %" JSON_INTEGER_FORMAT,
			    json_integer_value(sid));
		account_kick(c, reason);
		return json_pack("{s:b, s:i}", "ok", 1, "kicked", 1);
	}
	if (user == NULL)
		return admin_error(ADMIN_STATUS_USAGE, "kick needs a user or a "
		    "session id");
	if ((n = account_kick_user(srv, user, reason)) == 0)
		return admin_error(ADMIN_STATUS_FAILED, "%s has no session",
		    user);
	return json_pack("{s:b, s:i}", "ok", 1, "kicked", n);
}

/* Look the account up, or say why not. */
static json_t *
admin_find_user(struct admin_conn *ac, json_t *req, struct store_user *su)
{
	const char	*user = admin_arg(req, "user");
	int		 rc;

	memset(su, 0, sizeof(*su));
	if (user == NULL)
		return admin_error(ADMIN_STATUS_USAGE, "a user name is needed");
	rc = store_user_find(ac->admin->srv->store, user, su);
	if (rc == STORE_NOT_FOUND)
		return admin_error(ADMIN_STATUS_FAILED, "no user %s", user);
	if (rc != STORE_OK)
		return admin_error(ADMIN_STATUS_FAILED, "the account database "
		    "is unavailable");
	return NULL;
}

static json_t *
admin_cmd_ban(struct admin_conn *ac, json_t *req)
{
	struct server		*srv = ac->admin->srv;
	const char		*reason = admin_arg(req, "reason");
	struct store_user	 su;
	json_t			*r;
	int			 n;

	if ((r = admin_find_user(ac, req, &su)) != NULL)
		return r;
	if (reason == NULL || *reason == '\0')
		reason = "banned by the operator";
	if (store_ban_set(srv->store, su.id, reason, server_now_ms()) !=
	    STORE_OK) {
		store_user_clear(&su);
		return admin_error(ADMIN_STATUS_FAILED, "could not store the "
		    "ban");
	}
	log_emit(LOG_NOTICE, LOG_ID_BAN, (struct log_field[]){ { "USER",
	    su.name } }, 1, "event=ban user=%s", su.name);
	n = account_kick_user(srv, su.name, reason);
	r = json_pack("{s:b, s:s, s:i}", "ok", 1, "user", su.name, "kicked", n);
	store_user_clear(&su);
	return r;
}

static json_t *
admin_cmd_unban(struct admin_conn *ac, json_t *req)
{
	struct store_user	 su;
	json_t			*r;

	if ((r = admin_find_user(ac, req, &su)) != NULL)
		return r;
	if (!su.banned)
		r = admin_error(ADMIN_STATUS_FAILED, "%s is not banned",
		    su.name);
	else if (store_ban_clear(ac->admin->srv->store, su.id) != STORE_OK)
		r = admin_error(ADMIN_STATUS_FAILED, "could not lift the ban");
	else {
		log_info("event=unban user=%s", su.name);
		r = json_pack("{s:b, s:s}", "ok", 1, "user", su.name);
	}
	store_user_clear(&su);
	return r;
}

/* Queue a hash of the request's password; the reply comes later. */
static json_t *
admin_hash(struct admin_conn *ac, json_t *req, const char *user,
    int64_t user_id)
{
	json_t		*pw = json_object_get(req, "password");
	struct auth_job	 job;
	size_t		 len;

	if (!json_is_string(pw))
		return admin_error(ADMIN_STATUS_USAGE, "a password is needed");
	len = json_string_length(pw);
	if (len < PROTO_PASSWORD_MIN || len > PROTO_PASSWORD_MAX)
		return admin_error(ADMIN_STATUS_USAGE, "passwords are %d to %d "
		    "bytes", PROTO_PASSWORD_MIN, PROTO_PASSWORD_MAX);
	memset(&job, 0, sizeof(job));
	job.hash_password = json_string_value(pw);
	job.hash_len = len;
	job.cookie = ADMIN_COOKIE_BIT | ac->id;
	if (auth_submit(ac->admin->srv->auth, &job) == -1)
		return admin_error(ADMIN_STATUS_FAILED, "server busy, try "
		    "again");
	ac->user = xstrdup(user);
	ac->user_id = user_id;
	ac->flags |= ADMIN_F_WAITING;
	return NULL;
}

static json_t *
admin_cmd_user_add(struct admin_conn *ac, json_t *req)
{
	const char		*user = admin_arg(req, "user");
	struct store_user	 su;
	int			 rc;

	if (user == NULL || !proto_user_name_valid(user))
		return admin_error(ADMIN_STATUS_USAGE, "user names are 1 to %d "
		    "of A-Z a-z 0-9 _ . - and do not start with . or -",
		    PROTO_USER_MAX);
	rc = store_user_find(ac->admin->srv->store, user, &su);
	store_user_clear(&su);
	if (rc == STORE_OK)
		return admin_error(ADMIN_STATUS_FAILED, "user %s exists", user);
	return admin_hash(ac, req, user, 0);
}

static json_t *
admin_cmd_user_passwd(struct admin_conn *ac, json_t *req)
{
	struct store_user	 su;
	json_t			*r;

	if ((r = admin_find_user(ac, req, &su)) != NULL)
		return r;
	r = admin_hash(ac, req, su.name, su.id);
	store_user_clear(&su);
	return r;
}

static json_t *
admin_cmd_user_del(struct admin_conn *ac, json_t *req)
{
	struct server		*srv = ac->admin->srv;
	struct store_user	 su;
	struct chat_user	*u;
	json_t			*r;

	if ((r = admin_find_user(ac, req, &su)) != NULL)
		return r;
	account_kick_user(srv, su.name, "account deleted");
	if (store_user_del(srv->store, su.id) != STORE_OK)
		r = admin_error(ADMIN_STATUS_FAILED, "could not delete %s",
		    su.name);
	else {
		if ((u = chat_user_find(srv->chat, su.name)) != NULL)
			chat_user_remove(srv->chat, u);
		log_notice("event=user_del user=%s", su.name);
		r = json_pack("{s:b, s:s}", "ok", 1, "user", su.name);
	}
	store_user_clear(&su);
	return r;
}

struct admin_list_ctx {
	struct chat	*chat;
	json_t		*list;
};

static void
admin_user_cb(const struct store_user *su, void *arg)
{
	struct admin_list_ctx	*ctx = arg;
	struct chat_user	*u = chat_user_find(ctx->chat, su->name);
	json_t			*o;

	o = json_pack("{s:s}", "user", su->name);
	admin_ts(o, "created", su->created_ms);
	json_object_set_new(o, "banned", json_boolean(su->banned));
	json_object_set_new(o, "online", json_boolean(u != NULL &&
	    chat_user_online(u)));
	json_array_append_new(ctx->list, o);
}

static json_t *
admin_cmd_user_list(struct admin_conn *ac, json_t *req)
{
	struct admin_list_ctx	 ctx = { ac->admin->srv->chat, json_array() };

	if (store_user_list(ac->admin->srv->store, admin_user_cb, &ctx) !=
	    STORE_OK) {
		json_decref(ctx.list);
		return admin_error(ADMIN_STATUS_FAILED, "the account database "
		    "is unavailable");
	}
	return json_pack("{s:b, s:o}", "ok", 1, "users", ctx.list);
}

static json_t *
admin_cmd_reload(struct admin_conn *ac, json_t *req)
{
	char	*cause = NULL;
	json_t	*r;

	if (server_reload(ac->admin->srv, &cause) == 0)
		return admin_ok();
	r = admin_error(ADMIN_STATUS_FAILED, "reload rejected: %s", cause);
	free(cause);
	return r;
}

static json_t *
admin_cmd_shutdown(struct admin_conn *ac, json_t *req)
{
	/* After the reply is out: shutting down stops the loop soon. */
	ac->flags |= ADMIN_F_SHUTDOWN;
	return admin_ok();
}

/* The command table: wire name and handler. */
static const struct {
	const char	*name;
	admin_cmd_fn	*fn;
} admin_commands[] = {
	{ "stats", admin_cmd_stats },
	{ "sessions", admin_cmd_sessions },
	{ "rooms", admin_cmd_rooms },
	{ "kick", admin_cmd_kick },
	{ "ban", admin_cmd_ban },
	{ "unban", admin_cmd_unban },
	{ "user-add", admin_cmd_user_add },
	{ "user-del", admin_cmd_user_del },
	{ "user-passwd", admin_cmd_user_passwd },
	{ "user-list", admin_cmd_user_list },
	{ "reload", admin_cmd_reload },
	{ "shutdown", admin_cmd_shutdown },
};

static void
admin_reply(struct admin_conn *ac, json_t *reply)
{
	size_t	 len;
	char	*line = proto_dump(reply, &len);

	bufferevent_write(ac->bev, line, len);
	free(line);
	ac->flags |= ADMIN_F_DONE;
	bufferevent_disable(ac->bev, EV_READ);
}

static json_t *
admin_run(struct admin_conn *ac, const char *line, size_t len)
{
	json_t		*req, *v, *r = NULL;
	json_error_t	 err;
	const char	*cmd;
	size_t		 i;

	req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
	if (!json_is_object(req)) {
		json_decref(req);
		return admin_error(ADMIN_STATUS_USAGE, "request is not a JSON "
		    "object");
	}
	v = json_object_get(req, "version");
	if (!json_is_integer(v) || json_integer_value(v) != ADMIN_PROTO_VERSION)
		r = admin_error(ADMIN_STATUS_USAGE, "admin protocol version "
		    "mismatch: this netsockd speaks version %d",
		    ADMIN_PROTO_VERSION);
	else if ((cmd = admin_arg(req, "command")) == NULL)
		r = admin_error(ADMIN_STATUS_USAGE, "no command");
	else {
		for (i = 0; i < sizeof(admin_commands) /
		    sizeof(admin_commands[0]); i++)
			if (strcmp(cmd, admin_commands[i].name) == 0)
				break;
		if (i == sizeof(admin_commands) / sizeof(admin_commands[0]))
			r = admin_error(ADMIN_STATUS_USAGE, "unknown command");
		else {
			log_info("admin: uid=%u pid=%d command=%s",
			    (unsigned)ac->uid, (int)ac->pid, cmd);
			r = admin_commands[i].fn(ac, req);
		}
	}
	/* Its password is wiped as jansson frees it (proto_json_wipe_freed). */
	json_decref(req);
	return r;
}

static void
admin_read_cb(struct bufferevent *bev, void *arg)
{
	struct admin_conn	*ac = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer_ptr	 eol;
	size_t			 len, eol_len;
	char			*line;
	json_t			*r;

	if (ac->flags & (ADMIN_F_WAITING | ADMIN_F_DONE))
		return;
	eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
	if (eol.pos < 0) {
		if (evbuffer_get_length(in) > ADMIN_REQUEST_MAX)
			admin_reply(ac, admin_error(ADMIN_STATUS_USAGE,
			    "request too long"));
		return;
	}
	/* The request may carry a password: no copy left in the buffer. */
	len = (size_t)eol.pos;
	line = xmalloc(len + eol_len);
	secret_evbuffer_remove(in, line, len + eol_len);
	r = admin_run(ac, line, len);
	OPENSSL_cleanse(line, len + eol_len);
	free(line);
	if (r != NULL)
		admin_reply(ac, r);
}

static void
admin_write_cb(struct bufferevent *bev, void *arg)
{
	struct admin_conn	*ac = arg;
	struct server		*srv = ac->admin->srv;
	bool			 stop = ac->flags & ADMIN_F_SHUTDOWN;

	if (!(ac->flags & ADMIN_F_DONE))
		return;
	admin_conn_free(ac);
	if (stop)
		server_shutdown(srv, "netsockctl shutdown");
}

static void
admin_event_cb(struct bufferevent *bev, short what, void *arg)
{
	admin_conn_free(arg);
}

static void
admin_conn_free(struct admin_conn *ac)
{
	struct admin	*a = ac->admin;

	TAILQ_REMOVE(&a->conns, ac, entry);
	a->nconns--;
	secret_evbuffer_clear(bufferevent_get_input(ac->bev));
	bufferevent_free(ac->bev);
	free(ac->user);
	free(ac);
}

static struct admin_conn *
admin_conn_find(struct admin *a, uint64_t id)
{
	struct admin_conn	*ac;

	TAILQ_FOREACH(ac, &a->conns, entry)
		if (ac->id == id)
			return ac;
	return NULL;
}

void
admin_auth_done(struct admin *a, const struct auth_result *res)
{
	struct server		*srv = a->srv;
	struct admin_conn	*ac;
	int64_t			 id;
	json_t			*r;
	int			 rc;

	ac = admin_conn_find(a, res->cookie & ~ADMIN_COOKIE_BIT);
	if (ac == NULL || !(ac->flags & ADMIN_F_WAITING))
		return;
	ac->flags &= ~ADMIN_F_WAITING;
	if (res->new_hash == NULL)
		r = admin_error(ADMIN_STATUS_FAILED, "could not hash the "
		    "password");
	else if (ac->user_id == 0) {
		rc = store_user_add(srv->store, ac->user, res->new_hash,
		    server_now_ms(), &id);
		r = rc == STORE_OK ? json_pack("{s:b, s:s}", "ok", 1, "user",
		    ac->user) : rc == STORE_EXISTS ?
		    admin_error(ADMIN_STATUS_FAILED, "user %s exists",
		    ac->user) : admin_error(ADMIN_STATUS_FAILED,
		    "could not store the account");
		if (rc == STORE_OK)
			log_notice("event=user_add user=%s", ac->user);
	} else {
		rc = store_user_set_hash(srv->store, ac->user_id,
		    res->new_hash);
		r = rc == STORE_OK ? json_pack("{s:b, s:s}", "ok", 1, "user",
		    ac->user) : admin_error(ADMIN_STATUS_FAILED,
		    "could not store the password");
		if (rc == STORE_OK)
			log_notice("event=user_passwd user=%s", ac->user);
	}
	admin_reply(ac, r);
}

/*
 * Who may administer: root, the daemon's own uid, or members (by primary
 * group) of the socket's group.
 */
static bool
admin_peer_allowed(struct admin *a, const struct ucred *cred)
{
	return cred->uid == 0 || cred->uid == geteuid() ||
	    cred->gid == a->gid;
}

static void
admin_retry_timer_cb(int fd, short what, void *arg)
{
	struct admin	*a = arg;

	event_add(a->ev, NULL);
}

/*
 * accept4() failed.  The connection it could not take is still queued,
 * so the level-triggered event would fire again at once: without
 * descriptors, stop listening for a while instead of spinning, and say so
 * once for the whole shortage.
 */
static void
admin_accept_failed(struct admin *a, int err)
{
	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
		if (err != EAGAIN && err != EINTR && err != ECONNABORTED)
			log_warnx("admin: accept: %s", strerror(err));
		return;
	}
	if (!a->starved)
		log_warnx("admin: accept: %s: admin connections wait until "
		    "descriptors are free", strerror(err));
	a->starved = true;
	event_del(a->ev);
	event_add(a->retry,
	    &(struct timeval){ 0, ADMIN_ACCEPT_RETRY_MS * 1000 });
}

static void
admin_accept_cb(int fd, short what, void *arg)
{
	struct admin		*a = arg;
	struct admin_conn	*ac;
	struct ucred		 cred;
	socklen_t		 len = sizeof(cred);
	struct timeval		 tv = { ADMIN_TIMEOUT, 0 };
	static const char	 refused[] = "{\"ok\":false,\"error\":"
				    "\"permission denied\",\"status\":3}\n";
	int			 s;

	if ((s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1) {
		admin_accept_failed(a, errno);
		return;
	}
	if (a->starved) {
		a->starved = false;
		log_info("admin: accepting connections again");
	}
	if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
		close(s);
		return;
	}
	if (!admin_peer_allowed(a, &cred)) {
		log_warnx("admin: refused uid=%u gid=%u pid=%d",
		    (unsigned)cred.uid, (unsigned)cred.gid, (int)cred.pid);
		if (write(s, refused, sizeof(refused) - 1) < 0)
			log_debug("admin: refusal not sent");
		close(s);
		return;
	}
	if (a->nconns >= ADMIN_MAX_CONNS) {
		log_warnx("admin: too many admin connections; refused pid=%d",
		    (int)cred.pid);
		close(s);
		return;
	}
	ac = xcalloc(1, sizeof(*ac));
	ac->id = ++a->next_id;
	ac->admin = a;
	ac->uid = cred.uid;
	ac->pid = cred.pid;
	ac->bev = bufferevent_socket_new(a->srv->base, s, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(ac->bev, admin_read_cb, admin_write_cb,
	    admin_event_cb, ac);
	bufferevent_set_timeouts(ac->bev, &tv, &tv);
	bufferevent_setwatermark(ac->bev, EV_READ, 0, ADMIN_REQUEST_MAX + 2);
	bufferevent_enable(ac->bev, EV_READ | EV_WRITE);
	TAILQ_INSERT_TAIL(&a->conns, ac, entry);
	a->nconns++;
}

/* Make the socket's directory if it is missing (one level, 0755). */
static int
admin_mkdir(const char *path, char **cause)
{
	char	*copy = xstrdup(path), *dir = dirname(copy);
	int	 rc = 0;

	if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
		xasprintf(cause, "admin socket directory %s: %s", dir,
		    strerror(errno));
		rc = -1;
	}
	free(copy);
	return rc;
}

/*
 * A socket file nobody answers on is left over from a crash.  Anything
 * else at that path (the database, after a typo in the configuration) is
 * not ours to delete: refuse to start instead.
 */
static int
admin_clear_stale(const struct sockaddr_un *sun, char **cause)
{
	struct stat	 st;
	int		 s, rc, err;

	if (lstat(sun->sun_path, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		xasprintf(cause, "admin socket %s: %s", sun->sun_path,
		    strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		xasprintf(cause, "admin socket %s: a file that is not a "
		    "socket is in the way; not removing it", sun->sun_path);
		return -1;
	}
	if ((s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	rc = connect(s, (const struct sockaddr *)sun, sizeof(*sun));
	err = errno;
	close(s);
	if (rc == 0) {
		xasprintf(cause, "admin socket %s is in use: is another "
		    "netsockd running?", sun->sun_path);
		return -1;
	}
	/* Refused is a dead socket; anything else is not known to be. */
	if (err != ECONNREFUSED) {
		xasprintf(cause, "admin socket %s: %s", sun->sun_path,
		    strerror(err));
		return -1;
	}
	unlink(sun->sun_path);
	return 0;
}

struct admin *
admin_new(struct server *srv, const char *path, char **cause)
{
	struct admin		*a;
	struct sockaddr_un	 sun;
	struct stat		 st;
	mode_t			 old;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		xasprintf(cause, "admin socket path too long: %s", path);
		return NULL;
	}
	strcpy(sun.sun_path, path);
	if (admin_mkdir(path, cause) == -1 || admin_clear_stale(&sun, cause) == -1)
		return NULL;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		xasprintf(cause, "admin socket: %s", strerror(errno));
		return NULL;
	}
	/* Born 0660: no window in which others may connect. */
	old = umask(0117);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		umask(old);
		xasprintf(cause, "admin socket %s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	umask(old);
	if (chmod(path, 0660) == -1 || stat(path, &st) == -1 ||
	    listen(fd, 16) == -1) {
		xasprintf(cause, "admin socket %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return NULL;
	}
	a = xcalloc(1, sizeof(*a));
	a->srv = srv;
	a->fd = fd;
	a->path = xstrdup(path);
	a->gid = st.st_gid;
	TAILQ_INIT(&a->conns);
	a->ev = event_new(srv->base, fd, EV_READ | EV_PERSIST, admin_accept_cb,
	    a);
	a->retry = evtimer_new(srv->base, admin_retry_timer_cb, a);
	event_add(a->ev, NULL);
	log_info("admin socket %s", path);
	return a;
}

void
admin_free(struct admin *a)
{
	struct admin_conn	*ac;

	if (a == NULL)
		return;
	while ((ac = TAILQ_FIRST(&a->conns)) != NULL)
		admin_conn_free(ac);
	event_free(a->ev);
	event_free(a->retry);
	close(a->fd);
	unlink(a->path);
	free(a->path);
	free(a);
}
