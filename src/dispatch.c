/* dispatch: the request table, replies, parked requests, shared events. */
#include <stdbool.h>
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
#include "server.h"
#include "version.h"
#include "xmalloc.h"

typedef void	dispatch_fn(struct conn *, struct proto_request *);

struct dispatch_event {
	int	 refs;
	size_t	 len;
	char	*data;
};

void
dispatch_reply(struct conn *c, json_t *obj)
{
	conn_send_json(c, obj);
}

void
dispatch_fail(struct conn *c, const json_t *ref, enum proto_err err,
    const char *fmt, ...)
{
	char	 msg[256];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dispatch_reply(c, proto_error(ref, err, msg));
}

static void
dispatch_ping(struct conn *c, struct proto_request *req)
{
	dispatch_reply(c, proto_pong(req->ref));
}

static void
dispatch_echo(struct conn *c, struct proto_request *req)
{
	json_t	*ok = proto_ok(req->ref);

	json_object_set_new(ok, "content", json_stringn(req->content,
	    req->content_len));
	dispatch_reply(c, ok);
}

static void
dispatch_time(struct conn *c, struct proto_request *req)
{
	json_t	*ok = proto_ok(req->ref);
	char	 ts[PROTO_TIME_LEN];

	proto_format_time(server_now_ms(), ts);
	json_object_set_new(ok, "time", json_string(ts));
	dispatch_reply(c, ok);
}

static void
dispatch_quit(struct conn *c, struct proto_request *req)
{
	dispatch_reply(c, proto_ok(req->ref));
	conn_close_after_flush(c, "quit");
}

/* One row per request type, in enum proto_type order. */
static dispatch_fn *const dispatch_table[PROTO_REQ__COUNT] = {
	[PROTO_REQ_PING] = dispatch_ping,
	[PROTO_REQ_ECHO] = dispatch_echo,
	[PROTO_REQ_TIME] = dispatch_time,
	[PROTO_REQ_REGISTER] = account_register,
	[PROTO_REQ_LOGIN] = account_login,
	[PROTO_REQ_QUIT] = dispatch_quit,
	[PROTO_REQ_JOIN] = room_join,
	[PROTO_REQ_LEAVE] = room_leave,
	[PROTO_REQ_MESSAGE] = message_send,
	[PROTO_REQ_TYPING] = message_typing,
	[PROTO_REQ_PRESENCE] = room_presence,
	[PROTO_REQ_HISTORY] = message_history,
	[PROTO_REQ_USERS] = room_users,
	[PROTO_REQ_ROOMS] = room_list,
	[PROTO_REQ_TOPIC] = room_topic,
	[PROTO_REQ_PASSWD] = account_passwd,
};

void
dispatch_welcome(struct conn *c)
{
	const struct config *cfg = c->srv->cfg;
	json_t	*w = json_object();
	char	 ts[PROTO_TIME_LEN];

	proto_format_time(server_now_ms(), ts);
	json_object_set_new(w, "type", json_string("welcome"));
	json_object_set_new(w, "server", json_string("netsockd"));
	json_object_set_new(w, "version", json_string(NETSOCK_VERSION));
	json_object_set_new(w, "protocol", json_integer(PROTO_VERSION));
	json_object_set_new(w, "time", json_string(ts));
	json_object_set_new(w, "registration",
	    json_boolean(cfg->registration));
	json_object_set_new(w, "motd", json_string(cfg->motd));
	dispatch_reply(c, w);
}

struct dispatch_wait *
dispatch_wait_get(struct conn *c)
{
	if (c->wait == NULL)
		c->wait = xcalloc(1, sizeof(*c->wait));
	return c->wait;
}

void
dispatch_wait_free(struct conn *c)
{
	struct dispatch_wait	*w = c->wait;

	if (w == NULL)
		return;
	if (w->has_req)
		proto_request_clear(&w->req);
	json_decref(w->auth_ref);
	free(w->auth_user);
	free(w);
	c->wait = NULL;
}

void
dispatch_request(struct conn *c, struct proto_request *req)
{
	dispatch_table[req->type](c, req);
}

void
dispatch_line(struct conn *c, const char *line, size_t len)
{
	struct proto_request	 req;
	struct dispatch_wait	*w;
	enum proto_err		 err;
	char			 msg[256];

	err = proto_decode(line, len, c->session != NULL, &req, msg,
	    sizeof(msg));
	if (err != PROTO_OK) {
		/* Behind uncommitted messages even an error waits its turn. */
		if (c->uncommitted > 0)
			message_reply_in_turn(c, proto_error(req.ref, err, msg));
		else
			dispatch_fail(c, req.ref, err, "%s", msg);
		proto_request_clear(&req);
		return;
	}
	/*
	 * Behind a message not yet committed only more messages may go on
	 * (they commit in order); anything else would be answered before
	 * that message's ok, so it waits for the end of the pass.
	 */
	if (c->uncommitted > 0 && req.type != PROTO_REQ_MESSAGE) {
		w = dispatch_wait_get(c);
		w->req = req;
		w->has_req = true;
		c->flags |= CONN_F_WAITING;
		return;
	}
	dispatch_request(c, &req);
	proto_request_clear(&req);
}

void
dispatch_closed(struct conn *c)
{
	if (c->session != NULL)
		account_logout(c);
	dispatch_wait_free(c);
}

void
dispatch_auth_done(const struct auth_result *res, void *arg)
{
	struct conn	*c = conn_find(res->cookie);

	/*
	 * The connection went away meanwhile, or is going (kicked, flooding):
	 * nobody to answer, and no session may start on it.
	 */
	if (c != NULL && c->state == CONN_STATE_OPEN)
		account_auth_done(c, res);
	/* Either way a check slot is free for whoever waits for one. */
	account_unpark(arg);
}

void
dispatch_end_of_pass(struct server *srv)
{
	message_commit(srv);
}

bool
dispatch_has_work(void)
{
	return message_queued();
}

static void
dispatch_event_cleanup(const void *data, size_t len, void *arg)
{
	dispatch_event_put(arg);
}

struct dispatch_event *
dispatch_event_new(json_t *obj)
{
	size_t	 len;
	char	*line = proto_dump(obj, &len);

	return dispatch_event_take(line, len);
}

struct dispatch_event *
dispatch_event_take(char *line, size_t len)
{
	struct dispatch_event	*ev = xcalloc(1, sizeof(*ev));

	ev->refs = 1;
	ev->data = line;
	ev->len = len;
	return ev;
}

void
dispatch_event_put(struct dispatch_event *ev)
{
	if (ev != NULL && --ev->refs == 0) {
		free(ev->data);
		free(ev);
	}
}

void
dispatch_event_send(struct chat_session *s, void *arg)
{
	struct dispatch_event	*ev = arg;
	struct conn		*c = s->owner;

	ev->refs++;
	conn_send_shared(c, ev->data, ev->len, dispatch_event_cleanup, ev);
}
