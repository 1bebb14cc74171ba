/* room: join, leave, topic, the room and user lists, and presence. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

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

/* Users whose room creations are counted (the least recent forgiven). */
#define ROOM_CREATORS_MAX	65536
#define ROOM_CREATE_WINDOW_MS	(3600 * 1000)

/* Rooms created per user, across all their sessions and reconnects. */
static struct ratelimit_table	*room_creators;

/* The key of the session's user in room_creators: its account id. */
static void
room_creator_key(struct conn *c, char *key, size_t len)
{
	snprintf(key, len, "%lld",
	    (long long)chat_user_id(c->session->user));
}

/* May the session's user create one more room now (rooms_per_hour)? */
static bool
room_create_allowed(struct conn *c)
{
	char	 key[24];

	if (room_creators == NULL)
		room_creators = ratelimit_table_new(ROOM_CREATORS_MAX);
	room_creator_key(c, key, sizeof(key));
	return ratelimit_table_check(room_creators, key,
	    c->srv->cfg->limits.rooms_per_hour, ROOM_CREATE_WINDOW_MS,
	    server_now_ms());
}

static void
room_created(struct conn *c)
{
	char	 key[24];

	room_creator_key(c, key, sizeof(key));
	ratelimit_table_hit(room_creators, key,
	    c->srv->cfg->limits.rooms_per_hour, ROOM_CREATE_WINDOW_MS,
	    server_now_ms());
}

void
room_free(void)
{
	ratelimit_table_free(room_creators);
	room_creators = NULL;
}

static void
room_member_name_cb(struct chat_user *u, void *arg)
{
	json_array_append_new(arg, json_string(chat_user_name(u)));
}

/* Room and user names in events: as spelt when created / registered. */
static void
room_event(struct conn *c, struct chat_room *r, const char *type)
{
	struct dispatch_event	*ev;

	ev = dispatch_event_new(json_pack("{s:s, s:s, s:s}", "type", type,
	    "room", chat_room_name(r), "user",
	    chat_user_name(c->session->user)));
	chat_deliver_room(r, c->session, dispatch_event_send, ev);
	dispatch_event_put(ev);
}

void
room_join(struct conn *c, struct proto_request *req)
{
	struct server		*srv = c->srv;
	struct chat_user	*u = c->session->user;
	struct chat_room	*r;
	int64_t			 id;
	json_t			*ok, *members;
	int			 rc;

	if (!proto_room_name_valid(req->room)) {
		dispatch_fail(c, req->ref, PROTO_ERR_INVALID_NAME, "room names "
		    "are # and 1 to %d of A-Z a-z 0-9 _ . -", PROTO_ROOM_MAX);
		return;
	}
	r = chat_room_find(srv->chat, req->room);
	if (r == NULL && !srv->cfg->rooms_allow_create) {
		dispatch_fail(c, req->ref, PROTO_ERR_NO_SUCH_ROOM,
		    "no room %s, and rooms cannot be created here", req->room);
		return;
	}
	if (r == NULL && !room_create_allowed(c)) {
		message_rate_limited(c, req, "new rooms");
		return;
	}
	/* Joining a room one is in already reaches nobody: not counted. */
	if ((r == NULL || !chat_is_member(r, u)) &&
	    !message_fanout_allowed(c, req))
		return;
	if (r == NULL) {
		rc = store_room_add(srv->store, req->room, server_now_ms(), &id);
		if (rc != STORE_OK) {
			dispatch_fail(c, req->ref, PROTO_ERR_INTERNAL,
			    "could not create the room");
			return;
		}
		room_created(c);
		r = chat_room_add(srv->chat, id, req->room, "");
	}
	if (!chat_is_member(r, u)) {
		rc = store_member_add(srv->store, chat_room_id(r),
		    chat_user_id(u));
		if (rc != STORE_OK && rc != STORE_EXISTS) {
			dispatch_fail(c, req->ref, PROTO_ERR_INTERNAL,
			    "could not join the room");
			return;
		}
		chat_member_add(r, u);
		room_event(c, r, "join");
	}
	ok = proto_ok(req->ref);
	members = json_array();
	chat_room_each_member(r, room_member_name_cb, members);
	json_object_set_new(ok, "room", json_string(chat_room_name(r)));
	json_object_set_new(ok, "topic", json_string(chat_room_topic(r)));
	json_object_set_new(ok, "members", members);
	dispatch_reply(c, ok);
}

/* The room, if it exists and the session's user is a member. */
static struct chat_room *
room_member_of(struct conn *c, struct proto_request *req, const char *name,
    enum proto_err missing)
{
	struct chat_room	*r = chat_room_find(c->srv->chat, name);

	if (r == NULL) {
		dispatch_fail(c, req->ref, missing, "no room %s", name);
		return NULL;
	}
	if (!chat_is_member(r, c->session->user)) {
		dispatch_fail(c, req->ref, PROTO_ERR_NOT_MEMBER,
		    "not a member of %s", chat_room_name(r));
		return NULL;
	}
	return r;
}

void
room_leave(struct conn *c, struct proto_request *req)
{
	struct server		*srv = c->srv;
	struct chat_room	*r;
	json_t			*ok;

	if ((r = room_member_of(c, req, req->room,
	    PROTO_ERR_NOT_MEMBER)) == NULL || !message_fanout_allowed(c, req))
		return;
	if (store_member_del(srv->store, chat_room_id(r),
	    chat_user_id(c->session->user)) == STORE_ERROR) {
		dispatch_fail(c, req->ref, PROTO_ERR_INTERNAL,
		    "could not leave the room");
		return;
	}
	/* Members who stay, and the leaver's other sessions, hear of it. */
	room_event(c, r, "leave");
	ok = proto_ok(req->ref);
	json_object_set_new(ok, "room", json_string(chat_room_name(r)));
	chat_member_del(srv->chat, r, c->session->user);
	dispatch_reply(c, ok);
}

void
room_topic(struct conn *c, struct proto_request *req)
{
	struct server		*srv = c->srv;
	struct chat_room	*r;
	struct dispatch_event	*ev;

	if ((r = room_member_of(c, req, req->room,
	    PROTO_ERR_NOT_MEMBER)) == NULL || !message_fanout_allowed(c, req))
		return;
	if (store_room_set_topic(srv->store, chat_room_id(r),
	    req->topic) != STORE_OK) {
		dispatch_fail(c, req->ref, PROTO_ERR_INTERNAL,
		    "could not set the topic");
		return;
	}
	chat_room_set_topic(r, req->topic);
	dispatch_reply(c, proto_ok(req->ref));
	ev = dispatch_event_new(json_pack("{s:s, s:s, s:s, s:s}", "type",
	    "topic", "room", chat_room_name(r), "topic", req->topic, "by",
	    chat_user_name(c->session->user)));
	chat_deliver_room(r, c->session, dispatch_event_send, ev);
	dispatch_event_put(ev);
}

/*
 * The rooms list.  Whether the caller is in each room is a binary search
 * in a sorted copy of the caller's rooms, so that the list costs
 * O(rooms log joined), however many rooms and memberships there are.
 */
struct room_list_ctx {
	json_t			 *rooms;
	const struct chat_room	**mine;
	size_t			  nmine, cap;
};

static int
room_ptr_cmp(const void *a, const void *b)
{
	uintptr_t	x = (uintptr_t)*(const struct chat_room * const *)a;
	uintptr_t	y = (uintptr_t)*(const struct chat_room * const *)b;

	return x < y ? -1 : x > y;
}

static void
room_mine_cb(struct chat_room *r, void *arg)
{
	struct room_list_ctx	*ctx = arg;

	if (ctx->nmine == ctx->cap) {
		ctx->cap = ctx->cap == 0 ? 16 : ctx->cap * 2;
		ctx->mine = xreallocarray(ctx->mine, ctx->cap,
		    sizeof *ctx->mine);
	}
	ctx->mine[ctx->nmine++] = r;
}

static void
room_list_cb(struct chat_room *r, void *arg)
{
	struct room_list_ctx	*ctx = arg;
	const struct chat_room	*key = r;
	bool			 joined;

	joined = ctx->nmine > 0 && bsearch(&key, ctx->mine, ctx->nmine,
	    sizeof *ctx->mine, room_ptr_cmp) != NULL;
	json_array_append_new(ctx->rooms, json_pack("{s:s, s:s, s:I, s:b}",
	    "room", chat_room_name(r), "topic", chat_room_topic(r),
	    "members", (json_int_t)chat_room_members(r), "joined", joined));
}

void
room_list(struct conn *c, struct proto_request *req)
{
	struct room_list_ctx	 ctx = { json_array(), NULL, 0, 0 };
	json_t			*ok = proto_ok(req->ref);

	chat_user_each_room(c->session->user, room_mine_cb, &ctx);
	if (ctx.nmine > 0)
		qsort(ctx.mine, ctx.nmine, sizeof *ctx.mine, room_ptr_cmp);
	chat_each_room(c->srv->chat, room_list_cb, &ctx);
	free(ctx.mine);
	json_object_set_new(ok, "rooms", ctx.rooms);
	dispatch_reply(c, ok);
}

static void
room_user_status_cb(struct chat_user *u, void *arg)
{
	json_array_append_new(arg, json_pack("{s:s, s:s}", "user",
	    chat_user_name(u), "status",
	    proto_status_name(chat_user_status(u))));
}

void
room_users(struct conn *c, struct proto_request *req)
{
	struct chat_room	*r;
	json_t			*ok, *users = json_array();

	if (req->room != NULL) {
		if ((r = room_member_of(c, req, req->room,
		    PROTO_ERR_NO_SUCH_ROOM)) == NULL) {
			json_decref(users);
			return;
		}
		chat_room_each_member(r, room_user_status_cb, users);
	} else
		chat_each_online_user(c->srv->chat, room_user_status_cb, users);
	ok = proto_ok(req->ref);
	json_object_set_new(ok, "users", users);
	dispatch_reply(c, ok);
}

void
room_presence(struct conn *c, struct proto_request *req)
{
	struct chat_user	*u = c->session->user;
	struct dispatch_event	*ev;
	const char		*text = req->text ? req->text : "";

	if (!message_fanout_allowed(c, req))
		return;
	chat_user_set_status(u, req->status, text);
	dispatch_reply(c, proto_ok(req->ref));
	ev = dispatch_event_new(json_pack("{s:s, s:s, s:s, s:s}", "type",
	    "presence", "user", chat_user_name(u), "status",
	    proto_status_name(req->status), "text", text));
	chat_deliver_presence(c->srv->chat, u, c->session, dispatch_event_send,
	    ev);
	dispatch_event_put(ev);
}
