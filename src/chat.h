/*
 * chat: who is online, which rooms exist, who is in them, and who must
 * receive what.  Pure in-memory state on the loop thread: no sockets, no
 * SQL, no encoding.  Callers persist changes with store first, then update
 * chat, then ask chat for recipients and send the bytes they encoded once.
 *
 * A session is one logged-in connection; its 'owner' is an opaque pointer
 * (the connection) handed back in delivery callbacks.  Users known to chat
 * are the members of any room plus everyone online; a user object stays
 * while either is true.
 */
#ifndef NETSOCK_CHAT_H
#define NETSOCK_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "ratelimit.h"

struct chat;
struct chat_user;
struct chat_room;

struct chat_session {
	struct chat_user	*user;
	void			*owner;		/* the connection */
	struct ratelimit	 messages;	/* messages_per_second/burst */
	struct ratelimit	 typing;	/* typing_per_second/burst */
	struct ratelimit	 fanout;	/* join, leave, topic, presence:
						   zeroed here, set up by
						   message.c on first use */
	int			 strikes;	/* rate-limited requests in a row */
	struct chat_session	*next;		/* the user's other sessions */
};

/* Called once per recipient session with its owner. */
typedef void	chat_deliver_fn(struct chat_session *s, void *arg);
/* Called once per user or room when listing. */
typedef void	chat_user_fn(struct chat_user *u, void *arg);
typedef void	chat_room_fn(struct chat_room *r, void *arg);

struct chat	*chat_new(void);
void		 chat_free(struct chat *ch);

/* Users.  Names compare case-insensitively; the stored spelling shows. */
struct chat_user *chat_user_find(struct chat *ch, const char *name);
/*
 * Find or create the user with this store id and registered name.  A user
 * of that name with another id (an account deleted, its name registered
 * again) is never returned: it leaves every room and the name table, and
 * if it still has sessions it stays, detached (found by no name, member of
 * no room), until they end: end them before calling this.
 */
struct chat_user *chat_user_get(struct chat *ch, int64_t id, const char *name);
int64_t		 chat_user_id(const struct chat_user *u);
const char	*chat_user_name(const struct chat_user *u);
bool		 chat_user_online(const struct chat_user *u);
size_t		 chat_user_sessions(const struct chat_user *u);
enum proto_status chat_user_status(const struct chat_user *u);	/* offline
						   when no session */
const char	*chat_user_status_text(const struct chat_user *u);
void		 chat_user_set_status(struct chat_user *u,
		    enum proto_status status, const char *text);
/* Rooms u is a member of, in the order joined. */
void		 chat_user_each_room(struct chat_user *u, chat_room_fn *fn,
		    void *arg);
/* Every online user, in no particular order. */
void		 chat_each_online_user(struct chat *ch, chat_user_fn *fn,
		    void *arg);
size_t		 chat_users_online(const struct chat *ch);
/* Forget a deleted account: leaves every room; it must have no session. */
void		 chat_user_remove(struct chat *ch, struct chat_user *u);

/* Rooms. */
struct chat_room *chat_room_find(struct chat *ch, const char *name);
struct chat_room *chat_room_add(struct chat *ch, int64_t id, const char *name,
		    const char *topic);
int64_t		 chat_room_id(const struct chat_room *r);
const char	*chat_room_name(const struct chat_room *r);
const char	*chat_room_topic(const struct chat_room *r);
void		 chat_room_set_topic(struct chat_room *r, const char *topic);
size_t		 chat_room_members(const struct chat_room *r);
/* Members, in the order they joined. */
void		 chat_room_each_member(struct chat_room *r, chat_user_fn *fn,
		    void *arg);
/* Every room, ordered by name (case-insensitively). */
void		 chat_each_room(struct chat *ch, chat_room_fn *fn, void *arg);
size_t		 chat_rooms(const struct chat *ch);

/* Membership: true if it changed.  chat_member_del frees an offline user
 * leaving its last room (u is then invalid). */
bool		 chat_member_add(struct chat_room *r, struct chat_user *u);
bool		 chat_member_del(struct chat *ch, struct chat_room *r,
		    struct chat_user *u);
bool		 chat_is_member(const struct chat_room *r,
		    const struct chat_user *u);

/*
 * Sessions.  chat_session_add returns the new session (owned by chat) and
 * sets *first when it is the user's first (the user comes online: status
 * online, text "").  chat_session_remove frees it and sets *last when it
 * was the user's last (the user goes offline).  first and last may be NULL.
 * A user left with no session and no room is freed too, so announce its
 * offline presence before removing the session (with it as 'except').
 */
struct chat_session *chat_session_add(struct chat *ch, struct chat_user *u,
		    void *owner, bool *first);
void		 chat_session_remove(struct chat *ch, struct chat_session *s,
		    bool *last);

/* Recipients, each session at most once, never 'except' (may be NULL).
 * fn must not add or remove sessions, users, rooms or members. */
void		 chat_deliver_room(struct chat_room *r,
		    const struct chat_session *except, chat_deliver_fn *fn,
		    void *arg);
void		 chat_deliver_user(struct chat_user *u,
		    const struct chat_session *except, chat_deliver_fn *fn,
		    void *arg);
/* Every session of every online user sharing a room with u, and u's own
 * other sessions: who sees u's presence. */
void		 chat_deliver_presence(struct chat *ch, struct chat_user *u,
		    const struct chat_session *except, chat_deliver_fn *fn,
		    void *arg);

#endif
