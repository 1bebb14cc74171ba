/*
 * dispatch: the glue between a connection and the chat service.  Decodes
 * each line with proto, runs the handler from the request table, and
 * queues the reply.  The handlers live by subject in account.c (register,
 * login, passwd), room.c (join, leave, topic, rooms, users, presence) and
 * message.c (message, typing, history); this header is what they share.
 *
 * Ordering: exactly one reply per request, in request order.  A request
 * that waits for something (a password hash, the group commit) parks the
 * connection (CONN_F_WAITING); lines behind it wait in the input buffer,
 * and a request already decoded waits in c->wait.
 */
#ifndef NETSOCK_DISPATCH_H
#define NETSOCK_DISPATCH_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "proto.h"

struct auth_result;
struct chat_session;
struct conn;
struct server;

/* Rate-limited requests in a row before a session is closed as a flood
 * (messages, typing, requests that reach others, password checks). */
#define DISPATCH_MAX_STRIKES	50

/* What a parked connection is waiting with. */
struct dispatch_wait {
	struct proto_request	 req;		/* decoded, not yet handled */
	bool			 has_req;
	/* An account request waiting for the auth workers. */
	enum proto_type		 auth_type;
	json_t			*auth_ref;	/* new reference */
	char			*auth_user;	/* name as given or stored */
	int64_t			 auth_user_id;	/* 0: unknown user */
	bool			 auth_banned;
	bool			 auth_charged_user; /* took a token from the
					   account's failure bucket */
};

/* The TLS handshake is done: send welcome. */
void	dispatch_welcome(struct conn *c);
/* One complete line (terminator stripped, not NUL-terminated). */
void	dispatch_line(struct conn *c, const char *line, size_t len);
/* c is closing: drop its session from chat, forget what it waited for. */
void	dispatch_closed(struct conn *c);
/* After each pass of the event loop: commit and acknowledge. */
void	dispatch_end_of_pass(struct server *srv);
/* Something accepted waits for dispatch_end_of_pass. */
bool	dispatch_has_work(void);
/* A password job finished (arg is the server). */
void	dispatch_auth_done(const struct auth_result *res, void *arg);

/* For the handlers. */
void	dispatch_reply(struct conn *c, json_t *obj);
void	dispatch_fail(struct conn *c, const json_t *ref, enum proto_err err,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The connection's wait record, created on first use. */
struct dispatch_wait *dispatch_wait_get(struct conn *c);
void	dispatch_wait_free(struct conn *c);
/* Run a decoded request now (from the line or from c->wait). */
void	dispatch_request(struct conn *c, struct proto_request *req);

/*
 * An event encoded once and shared, without copying, by every recipient's
 * output buffer.  dispatch_event_new steals obj and holds one reference
 * for the caller, released with dispatch_event_put.
 */
struct dispatch_event;
struct dispatch_event *dispatch_event_new(json_t *obj);
/* The same for a line already encoded (malloc'd; the event owns it). */
struct dispatch_event *dispatch_event_take(char *line, size_t len);
void	dispatch_event_put(struct dispatch_event *ev);
/* chat_deliver_fn: queue ev (the arg) on the session's connection. */
void	dispatch_event_send(struct chat_session *s, void *ev);

/* Handlers, by subject. */
void	account_register(struct conn *, struct proto_request *);
void	account_login(struct conn *, struct proto_request *);
void	account_passwd(struct conn *, struct proto_request *);
void	account_auth_done(struct conn *, const struct auth_result *);
/* A check was answered: requests waiting for their address's turn go. */
void	account_unpark(struct server *);
/* A session ends: presence offline when it was the user's last. */
void	account_logout(struct conn *);
/* Send 'kicked' with reason, end the session now, close after flush. */
void	account_kick(struct conn *, const char *reason);
/* Kick every session of the user called name; returns how many. */
int	account_kick_user(struct server *, const char *name,
	    const char *reason);
/* After a reload: the session's buckets take the new rates. */
void	account_apply_limits(struct conn *);
void	account_init(void);
void	account_free(void);

void	room_join(struct conn *, struct proto_request *);
void	room_leave(struct conn *, struct proto_request *);
void	room_topic(struct conn *, struct proto_request *);
void	room_list(struct conn *, struct proto_request *);
void	room_users(struct conn *, struct proto_request *);
void	room_presence(struct conn *, struct proto_request *);
/* Forget the room creations counted per user (at exit). */
void	room_free(void);

void	message_send(struct conn *, struct proto_request *);
void	message_typing(struct conn *, struct proto_request *);
void	message_history(struct conn *, struct proto_request *);
/* Commit what this pass accepted, then acknowledge and fan out. */
void	message_commit(struct server *);
/* Queue a reply (steals it) behind c's messages awaiting commit. */
void	message_reply_in_turn(struct conn *, json_t *reply);
/*
 * Requests that reach others besides messages and typing (join, leave,
 * topic, presence) take a token from the session's bucket for them, at
 * the message rate.  Refused: rate_limited is answered (and too many
 * refusals in a row close the connection, as for messages); false.
 */
bool	message_fanout_allowed(struct conn *, const struct proto_request *);
/* Answer rate_limited ("too many <what>"), counting towards the close. */
void	message_rate_limited(struct conn *, const struct proto_request *,
	    const char *what);
/* Drop queued messages (shutdown without a final pass), and with them
 * the rest of what the request handlers hold (room_free). */
void	message_free(void);
bool	message_queued(void);

#endif
