/* account: register, login, passwd and logout, with hashing off the loop. */
#include <sys/queue.h>
#include <sys/socket.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth.h"
#include "chat.h"
#include "config.h"
#include "conn.h"
#include "dispatch.h"
#include "log.h"
#include "proto.h"
#include "ratelimit.h"
#include "server.h"
#include "store.h"
#include "xmalloc.h"

/*
 * Password checks (login, passwd) are limited per address and per account
 * (limits.login_failures_per_minute each), charged when the request
 * arrives and given back when the password turns out right, so what stays
 * charged is failures and checks still running; registrations per address
 * (limits.registrations_per_hour).  Every address is a network key
 * (ratelimit_addr_key).  The account's limit binds only addresses that
 * failed a check within the last minute (account_fail_recent): failures
 * from elsewhere never lock an owner out of an address that has not
 * failed, yet each address trying an account under attack gets one guess
 * a minute.  Hashes in flight per address are bounded by the auth pool.
 * A table full of keys still limited fails closed (ratelimit.h); it is
 * charged only for checks that reached the workers, which caps how fast
 * anyone can fill it.
 */
#define ACCOUNT_LIMIT_KEYS	65536
#define ACCOUNT_WINDOW_MS	60000
#define ACCOUNT_REG_WINDOW_MS	(3600 * 1000)

static struct ratelimit_table	*account_fail_by_addr;
static struct ratelimit_table	*account_fail_by_user;
static struct ratelimit_table	*account_fail_recent;	/* 1 per window */
static struct ratelimit_table	*account_reg_by_addr;

/* What one password check is charged to. */
struct account_keys {
	char	 addr[RATELIMIT_ADDR_KEY_LEN];
	char	 user[PROTO_USER_MAX + 2];
};

/*
 * Requests for a password check that found every check their address may
 * have under way (AUTH_MAX_PER_OWNER) in use: they wait here, oldest
 * first, rather than being refused, and run again as soon as a check of
 * that address is answered.  A connection has at most one request in
 * flight, so the line is bounded by the connections an address may open
 * (max_per_ip); entries of connections gone meanwhile are dropped as the
 * line is walked.
 */
struct account_parked {
	uint64_t			 conn_id;
	char				 addr[RATELIMIT_ADDR_KEY_LEN];
	TAILQ_ENTRY(account_parked)	 entry;
};

static TAILQ_HEAD(, account_parked) account_parked_list =
    TAILQ_HEAD_INITIALIZER(account_parked_list);

static void	account_unpark_all(void);

void
account_init(void)
{
	account_fail_by_addr = ratelimit_table_new(ACCOUNT_LIMIT_KEYS);
	account_fail_by_user = ratelimit_table_new(ACCOUNT_LIMIT_KEYS);
	account_fail_recent = ratelimit_table_new(ACCOUNT_LIMIT_KEYS);
	account_reg_by_addr = ratelimit_table_new(ACCOUNT_LIMIT_KEYS);
}

void
account_free(void)
{
	ratelimit_table_free(account_fail_by_addr);
	ratelimit_table_free(account_fail_by_user);
	ratelimit_table_free(account_fail_recent);
	ratelimit_table_free(account_reg_by_addr);
	account_fail_by_addr = account_fail_by_user = NULL;
	account_fail_recent = account_reg_by_addr = NULL;
	account_unpark_all();
}

/* The remote address as every per-address limit counts it. */
static void
account_addr_key(const struct conn *c, char *buf, size_t len)
{
	ratelimit_addr_key((const struct sockaddr *)&c->peer,
	    c->srv->cfg->limits.ipv6_prefix, buf, len);
}

static void
account_user_key(const char *name, char *buf, size_t len)
{
	size_t	 i;

	for (i = 0; name[i] != '\0' && i + 1 < len; i++)
		buf[i] = (char)tolower((unsigned char)name[i]);
	buf[i] = '\0';
}

static void
account_keys(const struct conn *c, const char *user, struct account_keys *k)
{
	account_addr_key(c, k->addr, sizeof(k->addr));
	account_user_key(user, k->user, sizeof(k->user));
}

static void
account_rate_limited(struct conn *c, const json_t *ref, const char *why)
{
	c->srv->stats.rate_limited++;
	dispatch_fail(c, ref, PROTO_ERR_RATE_LIMITED, "%s", why);
	/* A session that keeps asking after refusals is flooding, as with
	 * messages: every refused request still costs a parse and a reply. */
	if (c->session != NULL &&
	    ++c->session->strikes >= DISPATCH_MAX_STRIKES)
		conn_close_after_flush(c, "flood");
}

static void
account_parked_remove(struct account_parked *p)
{
	TAILQ_REMOVE(&account_parked_list, p, entry);
	free(p);
}

/* Forget every waiting request (their connections keep them). */
static void
account_unpark_all(void)
{
	while (!TAILQ_EMPTY(&account_parked_list))
		account_parked_remove(TAILQ_FIRST(&account_parked_list));
}

/*
 * Every check addr may have is under way: req waits its turn (the
 * request now belongs to c's wait record, and the connection takes no
 * further lines meanwhile).  True if it had to wait.
 */
static bool
account_park_if_full(struct conn *c, struct proto_request *req,
    const char *addr)
{
	struct dispatch_wait	*w;
	struct account_parked	*p;

	if (!auth_owner_full(c->srv->auth, addr))
		return false;
	w = dispatch_wait_get(c);
	w->req = *req;
	w->has_req = true;
	req->root = NULL;		/* the caller's clear leaves it alone */
	c->flags |= CONN_F_WAITING;
	p = xcalloc(1, sizeof(*p));
	p->conn_id = c->id;
	snprintf(p->addr, sizeof(p->addr), "%s", addr);
	TAILQ_INSERT_TAIL(&account_parked_list, p, entry);
	return true;
}

void
account_unpark(struct server *srv)
{
	struct account_parked	*p, *next;
	struct proto_request	 req;
	struct conn		*c;

	for (p = TAILQ_FIRST(&account_parked_list); p != NULL; p = next) {
		next = TAILQ_NEXT(p, entry);
		c = conn_find(p->conn_id);
		if (c == NULL || conn_closed(c) || c->wait == NULL ||
		    !c->wait->has_req) {
			account_parked_remove(p);
			continue;
		}
		if (auth_owner_full(srv->auth, p->addr))
			continue;
		account_parked_remove(p);
		req = c->wait->req;
		c->wait->has_req = false;
		c->flags &= ~CONN_F_WAITING;
		/* From the start: the limits are checked as it runs now. */
		dispatch_request(c, &req);
		proto_request_clear(&req);
		/* (Parking again appends; next stays valid.) */
		if (!(c->flags & CONN_F_WAITING))
			conn_resume(c);
	}
}

/*
 * May a password check for the account of k run now from c's address?
 * If not, rate_limited is answered.
 */
static bool
account_check_allowed(struct conn *c, const json_t *ref,
    const struct account_keys *k)
{
	int	 limit = c->srv->cfg->limits.login_failures_per_minute;
	int64_t	 now = server_now_ms();

	if (!ratelimit_table_check(account_fail_by_addr, k->addr, limit,
	    ACCOUNT_WINDOW_MS, now)) {
		account_rate_limited(c, ref, "too many failed password checks "
		    "from your address; try again in a minute");
		return false;
	}
	if (!ratelimit_table_check(account_fail_by_user, k->user, limit,
	    ACCOUNT_WINDOW_MS, now) && !ratelimit_table_check(
	    account_fail_recent, k->addr, 1, ACCOUNT_WINDOW_MS, now)) {
		account_rate_limited(c, ref, "too many failed logins for this "
		    "account; try again in a minute");
		return false;
	}
	return true;
}

/*
 * Charge a check that went to the workers.  The account's bucket gives a
 * token if it has one (a clean address passes without); *charged_user
 * says whether it did, so that only a token taken is given back.
 */
static void
account_check_charge(struct conn *c, const struct account_keys *k,
    bool *charged_user)
{
	int	 limit = c->srv->cfg->limits.login_failures_per_minute;
	int64_t	 now = server_now_ms();

	ratelimit_table_hit(account_fail_by_addr, k->addr, limit,
	    ACCOUNT_WINDOW_MS, now);
	*charged_user = ratelimit_table_check(account_fail_by_user, k->user,
	    limit, ACCOUNT_WINDOW_MS, now) && ratelimit_table_hit(
	    account_fail_by_user, k->user, limit, ACCOUNT_WINDOW_MS, now);
}

/* The password was right: give back what its check was charged. */
static void
account_check_passed(struct conn *c, const struct dispatch_wait *w)
{
	struct account_keys	 k;
	int			 limit;
	int64_t			 now = server_now_ms();

	limit = c->srv->cfg->limits.login_failures_per_minute;
	account_keys(c, w->auth_user, &k);
	ratelimit_table_refund(account_fail_by_addr, k.addr, limit,
	    ACCOUNT_WINDOW_MS, now);
	if (w->auth_charged_user)
		ratelimit_table_refund(account_fail_by_user, k.user, limit,
		    ACCOUNT_WINDOW_MS, now);
}

/* The password was wrong: the charges stay, the address has failed. */
static void
account_check_failed(struct conn *c, const char *user, const char *what)
{
	char		 addr[RATELIMIT_ADDR_KEY_LEN], esc[80], sid[24];
	struct log_field f[] = { { "SESSION", sid }, { "USER", esc },
			    { "PEER", c->peer_text } };

	account_addr_key(c, addr, sizeof(addr));
	ratelimit_table_hit(account_fail_recent, addr, 1, ACCOUNT_WINDOW_MS,
	    server_now_ms());
	log_escape(user, strlen(user), esc, sizeof(esc));
	snprintf(sid, sizeof(sid), "%llu", (unsigned long long)c->id);
	log_emit(LOG_NOTICE, LOG_ID_LOGIN_FAILED, f, 3,
	    "session=%s event=%s user=%s peer=%s", sid, what, esc,
	    c->peer_text);
}

/* A new password's length, or weak_password. */
static bool
account_password_ok(struct conn *c, struct proto_request *req, size_t len)
{
	if (len >= PROTO_PASSWORD_MIN && len <= PROTO_PASSWORD_MAX)
		return true;
	dispatch_fail(c, req->ref, PROTO_ERR_WEAK_PASSWORD, "passwords are %d "
	    "to %d bytes", PROTO_PASSWORD_MIN, PROTO_PASSWORD_MAX);
	return false;
}

/* register and login need a connection that is not logged in yet. */
static bool
account_logged_in_already(struct conn *c, struct proto_request *req)
{
	if (c->session == NULL)
		return false;
	dispatch_fail(c, req->ref, PROTO_ERR_ALREADY_LOGGED_IN,
	    "already logged in as %s", chat_user_name(c->session->user));
	return true;
}

/* Park the connection until the auth workers answer; NULL if refused. */
static struct dispatch_wait *
account_submit(struct conn *c, struct proto_request *req,
    const struct auth_job *job, const char *user, int64_t user_id)
{
	struct dispatch_wait	*w;

	if (auth_submit(c->srv->auth, job) == -1) {
		dispatch_fail(c, req->ref, PROTO_ERR_INTERNAL,
		    "server busy, try again");
		return NULL;
	}
	w = dispatch_wait_get(c);
	w->auth_type = req->type;
	w->auth_ref = req->ref ? json_incref(req->ref) : NULL;
	free(w->auth_user);
	w->auth_user = xstrdup(user);
	w->auth_user_id = user_id;
	w->auth_banned = false;
	w->auth_charged_user = false;
	c->flags |= CONN_F_WAITING;
	return w;
}

static void
account_rooms_cb(struct chat_room *r, void *arg)
{
	json_array_append_new(arg, json_string(chat_room_name(r)));
}

/* The session is logged in as (id, name): join chat and say so. */
static void
account_start_session(struct conn *c, const json_t *ref, int64_t id,
    const char *name, bool with_rooms)
{
	struct server		*srv = c->srv;
	const struct config_limits *lim = &srv->cfg->limits;
	struct chat_user	*u;
	struct chat_session	*s;
	struct dispatch_event	*ev;
	json_t			*ok, *rooms;
	int64_t			 now = server_now_ms();
	bool			 first;
	char			 sid[24];
	struct log_field	 f[] = { { "SESSION", sid }, { "USER", name },
				    { "PEER", c->peer_text } };

	/*
	 * Sessions of an older account of this name (deleted, the name
	 * taken again) end here: they must not become this user's.
	 */
	if ((u = chat_user_find(srv->chat, name)) != NULL &&
	    chat_user_id(u) != id)
		account_kick_user(srv, name, "account deleted");
	u = chat_user_get(srv->chat, id, name);
	s = chat_session_add(srv->chat, u, c, &first);
	ratelimit_init(&s->messages, lim->messages_per_second,
	    lim->message_burst, now);
	ratelimit_init(&s->typing, lim->typing_per_second, lim->typing_burst,
	    now);
	c->session = s;
	srv->stats.sessions++;

	ok = proto_ok(ref);
	json_object_set_new(ok, "user", json_string(chat_user_name(u)));
	if (with_rooms) {
		rooms = json_array();
		chat_user_each_room(u, account_rooms_cb, rooms);
		json_object_set_new(ok, "rooms", rooms);
	}
	dispatch_reply(c, ok);
	if (first) {
		ev = dispatch_event_new(json_pack("{s:s, s:s, s:s, s:s}",
		    "type", "presence", "user", chat_user_name(u),
		    "status", "online", "text", ""));
		chat_deliver_presence(srv->chat, u, s, dispatch_event_send, ev);
		dispatch_event_put(ev);
	}
	snprintf(sid, sizeof(sid), "%llu", (unsigned long long)c->id);
	log_emit(LOG_INFO, NULL, f, 3, "session=%s event=login user=%s "
	    "peer=%s", sid, chat_user_name(u), c->peer_text);
}

void
account_register(struct conn *c, struct proto_request *req)
{
	struct server		*srv = c->srv;
	const struct config	*cfg = srv->cfg;
	struct store_user	 su;
	struct auth_job		 job;
	char			 addr[RATELIMIT_ADDR_KEY_LEN];
	int			 rc;

	if (account_logged_in_already(c, req))
		return;
	if (!cfg->registration) {
		dispatch_fail(c, req->ref, PROTO_ERR_REGISTRATION_CLOSED,
		    "registration is closed on this server");
		return;
	}
	if (!proto_user_name_valid(req->user)) {
		dispatch_fail(c, req->ref, PROTO_ERR_INVALID_NAME, "user names "
		    "are 1 to %d of A-Z a-z 0-9 _ . - and do not start with "
		    ". or -", PROTO_USER_MAX);
		return;
	}
	if (!account_password_ok(c, req, req->password_len))
		return;
	account_addr_key(c, addr, sizeof(addr));
	if (!ratelimit_table_check(account_reg_by_addr, addr,
	    cfg->limits.registrations_per_hour, ACCOUNT_REG_WINDOW_MS,
	    server_now_ms())) {
		account_rate_limited(c, req->ref, "too many registrations "
		    "from your address; try later");
		return;
	}
	/* A registration's hash counts against the address's bound too. */
	if (account_park_if_full(c, req, addr))
		return;
	ratelimit_table_hit(account_reg_by_addr, addr,
	    cfg->limits.registrations_per_hour, ACCOUNT_REG_WINDOW_MS,
	    server_now_ms());
	rc = store_user_find(srv->store, req->user, &su);
	store_user_clear(&su);
	if (rc == STORE_OK) {
		dispatch_fail(c, req->ref, PROTO_ERR_USER_EXISTS,
		    "the name %s is taken", req->user);
		return;
	}
	if (rc == STORE_ERROR) {
		dispatch_fail(c, req->ref, PROTO_ERR_INTERNAL,
		    "the account database is unavailable");
		return;
	}
	memset(&job, 0, sizeof(job));
	job.hash_password = req->password;
	job.hash_len = req->password_len;
	job.cookie = c->id;
	job.owner = addr;
	account_submit(c, req, &job, req->user, 0);
}

void
account_login(struct conn *c, struct proto_request *req)
{
	struct server		*srv = c->srv;
	struct store_user	 su;
	struct auth_job		 job;
	struct account_keys	 k;
	struct dispatch_wait	*w;
	int			 rc;

	if (account_logged_in_already(c, req))
		return;
	account_keys(c, req->user, &k);
	if (!account_check_allowed(c, req->ref, &k) ||
	    account_park_if_full(c, req, k.addr))
		return;
	memset(&su, 0, sizeof(su));
	rc = proto_user_name_valid(req->user) ?
	    store_user_find(srv->store, req->user, &su) : STORE_NOT_FOUND;
	if (rc == STORE_ERROR) {
		dispatch_fail(c, req->ref, PROTO_ERR_INTERNAL,
		    "the account database is unavailable");
		return;
	}
	/* An unknown user costs a verification too (a dummy hash). */
	memset(&job, 0, sizeof(job));
	job.verify_password = req->password;
	job.verify_len = req->password_len;
	job.stored_hash = rc == STORE_OK ? su.hash : NULL;
	job.cookie = c->id;
	job.owner = k.addr;
	/* Banned or not is read again when the hash is done. */
	w = account_submit(c, req, &job, rc == STORE_OK ? su.name : req->user,
	    rc == STORE_OK ? su.id : 0);
	if (w != NULL)
		account_check_charge(c, &k, &w->auth_charged_user);
	store_user_clear(&su);
}

void
account_passwd(struct conn *c, struct proto_request *req)
{
	struct server		*srv = c->srv;
	struct store_user	 su;
	struct auth_job		 job;
	struct account_keys	 k;
	struct dispatch_wait	*w;
	const char		*name = chat_user_name(c->session->user);

	if (!account_password_ok(c, req, req->new_password_len))
		return;
	/* Checking the old password is a password check like a login. */
	account_keys(c, name, &k);
	if (!account_check_allowed(c, req->ref, &k) ||
	    account_park_if_full(c, req, k.addr))
		return;
	if (store_user_find(srv->store, name, &su) != STORE_OK ||
	    su.id != chat_user_id(c->session->user)) {
		store_user_clear(&su);
		dispatch_fail(c, req->ref, PROTO_ERR_INTERNAL,
		    "the account database is unavailable");
		return;
	}
	memset(&job, 0, sizeof(job));
	job.verify_password = req->old_password;
	job.verify_len = req->old_password_len;
	job.stored_hash = su.hash;
	job.hash_password = req->new_password;
	job.hash_len = req->new_password_len;
	job.cookie = c->id;
	job.owner = k.addr;
	w = account_submit(c, req, &job, su.name, su.id);
	if (w != NULL)
		account_check_charge(c, &k, &w->auth_charged_user);
	store_user_clear(&su);
}

/*
 * The account of w as the store has it now, on the loop thread, after the
 * hash: a ban, a deletion, a new password or a new account of the same
 * name may have come in meanwhile.  STORE_OK only if it is still the
 * account that was checked (same id) with the password it was checked
 * against (same hash); su must be cleared by the caller.
 */
static int
account_reread(struct conn *c, const struct dispatch_wait *w,
    const struct auth_result *res, struct store_user *su)
{
	int	 rc;

	memset(su, 0, sizeof(*su));
	rc = store_user_find(c->srv->store, w->auth_user, su);
	if (rc == STORE_OK && (su->id != w->auth_user_id ||
	    res->checked_hash == NULL || su->hash == NULL ||
	    strcmp(su->hash, res->checked_hash) != 0))
		rc = STORE_NOT_FOUND;
	return rc;
}

static void
account_registered(struct conn *c, struct dispatch_wait *w,
    const struct auth_result *res)
{
	struct server	*srv = c->srv;
	int64_t		 id;
	int		 rc;

	if (res->new_hash == NULL) {
		dispatch_fail(c, w->auth_ref, PROTO_ERR_INTERNAL,
		    "could not hash the password");
		return;
	}
	rc = store_user_add(srv->store, w->auth_user, res->new_hash,
	    server_now_ms(), &id);
	if (rc == STORE_EXISTS)
		dispatch_fail(c, w->auth_ref, PROTO_ERR_USER_EXISTS,
		    "the name %s is taken", w->auth_user);
	else if (rc != STORE_OK)
		dispatch_fail(c, w->auth_ref, PROTO_ERR_INTERNAL,
		    "the account database is unavailable");
	else
		account_start_session(c, w->auth_ref, id, w->auth_user, false);
}

static void
account_logged_in(struct conn *c, struct dispatch_wait *w,
    const struct auth_result *res)
{
	struct store_user	 su;
	int			 rc;

	if (!res->verified || w->auth_user_id == 0) {
		account_check_failed(c, w->auth_user, "login_failed");
		dispatch_fail(c, w->auth_ref, PROTO_ERR_AUTH_FAILED,
		    "wrong user name or password");
		return;
	}
	account_check_passed(c, w);
	rc = account_reread(c, w, res, &su);
	if (rc == STORE_ERROR)
		dispatch_fail(c, w->auth_ref, PROTO_ERR_INTERNAL,
		    "the account database is unavailable");
	else if (rc != STORE_OK)
		/* Deleted or given another password while the hash ran. */
		dispatch_fail(c, w->auth_ref, PROTO_ERR_AUTH_FAILED,
		    "wrong user name or password");
	else if (su.banned)
		dispatch_fail(c, w->auth_ref, PROTO_ERR_BANNED,
		    "this account is banned");
	else
		account_start_session(c, w->auth_ref, su.id, su.name, true);
	store_user_clear(&su);
}

static void
account_password_changed(struct conn *c, struct dispatch_wait *w,
    const struct auth_result *res)
{
	struct store_user	 su;
	int			 rc;

	if (!res->verified) {
		account_check_failed(c, w->auth_user, "passwd_failed");
		dispatch_fail(c, w->auth_ref, PROTO_ERR_AUTH_FAILED,
		    "the old password is wrong");
		return;
	}
	account_check_passed(c, w);
	rc = account_reread(c, w, res, &su);
	store_user_clear(&su);
	if (rc == STORE_NOT_FOUND) {
		/* Another passwd (or the operator) changed it meanwhile. */
		dispatch_fail(c, w->auth_ref, PROTO_ERR_AUTH_FAILED,
		    "the password changed meanwhile; the old one is wrong");
		return;
	}
	if (rc != STORE_OK || res->new_hash == NULL ||
	    store_user_set_hash(c->srv->store, w->auth_user_id,
	    res->new_hash) != STORE_OK) {
		dispatch_fail(c, w->auth_ref, PROTO_ERR_INTERNAL,
		    "could not store the new password");
		return;
	}
	log_info("session=%llu event=passwd user=%s",
	    (unsigned long long)c->id, w->auth_user);
	dispatch_reply(c, proto_ok(w->auth_ref));
}

void
account_auth_done(struct conn *c, const struct auth_result *res)
{
	struct dispatch_wait	*w = c->wait;

	if (w == NULL || w->auth_user == NULL)
		return;
	switch (w->auth_type) {
	case PROTO_REQ_REGISTER:
		account_registered(c, w, res);
		break;
	case PROTO_REQ_LOGIN:
		account_logged_in(c, w, res);
		break;
	case PROTO_REQ_PASSWD:
		account_password_changed(c, w, res);
		break;
	default:
		break;
	}
	dispatch_wait_free(c);
	conn_resume(c);
}

void
account_logout(struct conn *c)
{
	struct server		*srv = c->srv;
	struct chat_session	*s = c->session;
	struct chat_user	*u = s->user;
	struct dispatch_event	*ev;
	bool			 last;

	/* Tell the room-mates before the user object may go away. */
	if (chat_user_sessions(u) == 1) {
		ev = dispatch_event_new(json_pack("{s:s, s:s, s:s, s:s}",
		    "type", "presence", "user", chat_user_name(u),
		    "status", "offline", "text", ""));
		chat_deliver_presence(srv->chat, u, s, dispatch_event_send, ev);
		dispatch_event_put(ev);
	}
	chat_session_remove(srv->chat, s, &last);
	c->session = NULL;
	srv->stats.sessions--;
}

void
account_kick(struct conn *c, const char *reason)
{
	struct server	*srv = c->srv;
	char		 sid[24], esc[256];
	const char	*user = c->session ? chat_user_name(c->session->user) :
			    NULL;
	struct log_field f[] = { { "SESSION", sid }, { "USER", user },
			    { "PEER", c->peer_text }, { "REASON", esc } };

	snprintf(sid, sizeof(sid), "%llu", (unsigned long long)c->id);
	log_escape(reason, strlen(reason), esc, sizeof(esc));
	log_emit(LOG_NOTICE, LOG_ID_KICK, f, 4, "session=%s event=kick "
	    "user=%s reason=%s", sid, user ? user : "-", esc);
	conn_send_json(c, json_pack("{s:s, s:s}", "type", "kicked", "reason",
	    reason));
	/* Out of chat at once: a kicked session hears nothing more. */
	if (c->session != NULL)
		account_logout(c);
	srv->stats.kicks++;
	conn_close_after_flush(c, "kicked");
}

struct account_conns {
	struct conn	**v;
	size_t		  n, cap;
};

static void
account_collect_cb(struct chat_session *s, void *arg)
{
	struct account_conns	*ac = arg;

	if (ac->n == ac->cap) {
		ac->cap = ac->cap ? ac->cap * 2 : 8;
		ac->v = xreallocarray(ac->v, ac->cap, sizeof(*ac->v));
	}
	ac->v[ac->n++] = s->owner;
}

int
account_kick_user(struct server *srv, const char *name, const char *reason)
{
	struct chat_user	*u = chat_user_find(srv->chat, name);
	struct account_conns	 ac = { NULL, 0, 0 };
	size_t			 i;

	if (u == NULL)
		return 0;
	/* Collect first: kicking changes the user's session list. */
	chat_deliver_user(u, NULL, account_collect_cb, &ac);
	for (i = 0; i < ac.n; i++)
		account_kick(ac.v[i], reason);
	free(ac.v);
	return (int)ac.n;
}

void
account_apply_limits(struct conn *c)
{
	const struct config_limits *lim = &c->srv->cfg->limits;

	if (c->session == NULL)
		return;
	ratelimit_configure(&c->session->messages, lim->messages_per_second,
	    lim->message_burst);
	ratelimit_configure(&c->session->typing, lim->typing_per_second,
	    lim->typing_burst);
}
