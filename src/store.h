/*
 * store: everything netsockd keeps on disk, in one SQLite database.  Owns
 * the sqlite3 handle, the schema and its numbered migrations (PRAGMA
 * user_version), and every SQL statement (prepared once at open).  No
 * sqlite3 type or call exists outside store.c and store_checkpoint.c
 * (WAL checkpoints, on a thread of their own).
 *
 * Return convention: STORE_OK (0) on success, STORE_NOT_FOUND or
 * STORE_EXISTS for the expected misses, STORE_ERROR (-1) for a database
 * failure (already logged with the reason; the caller answers
 * internal_error and carries on).
 */
#ifndef NETSOCK_STORE_H
#define NETSOCK_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_SCHEMA_VERSION	1

enum {
	STORE_ERROR = -1,
	STORE_OK = 0,
	STORE_NOT_FOUND = 1,
	STORE_EXISTS = 2,
	STORE_BUSY = 3		/* store_begin: the write lock is taken; later */
};

struct store;

/* A user row.  Strings are owned; release with store_user_clear(). */
struct store_user {
	int64_t		 id;
	char		*name;		/* as spelt at registration */
	char		*hash;		/* encoded password hash (auth.h) */
	int64_t		 created_ms;
	bool		 banned;
	char		*ban_reason;	/* NULL unless banned */
};

/* A room row, borrowed for the duration of a callback. */
struct store_room {
	int64_t		 id;
	const char	*name;		/* as spelt at creation, with '#' */
	const char	*topic;		/* "" when none */
	int64_t		 created_ms;
};

/* A stored message, borrowed for the duration of a callback. */
struct store_message {
	int64_t		 id;
	int64_t		 ts_ms;
	const char	*from;		/* sender's name as spelt */
	const char	*to;		/* room name or recipient's name */
	const char	*content;
	size_t		 content_len;
};

/*
 * Open (creating if needed) and migrate the database at path.  WAL mode,
 * foreign keys on, busy_timeout set.  A database whose user_version is
 * newer than STORE_SCHEMA_VERSION, or that is not a database, or that
 * cannot be opened for writing, is refused: NULL with *cause set (caller
 * frees).
 */
struct store	*store_open(const char *path, char **cause);
void		 store_free(struct store *st);

/*
 * Explicit transactions for group commit; nesting is not supported.
 * store_begin() waits a few milliseconds at most for the write lock (it
 * runs on the loop): STORE_BUSY when another connection holds it (the
 * checkpoint thread starting the WAL over, another process): try again
 * at a later pass.
 */
int		 store_begin(struct store *st);
int		 store_commit(struct store *st);	/* rolls back on failure */
int		 store_rollback(struct store *st);

/* Users; names compare case-insensitively (they are ASCII). */
int		 store_user_add(struct store *st, const char *name,
		    const char *hash, int64_t created_ms, int64_t *id);
int		 store_user_find(struct store *st, const char *name,
		    struct store_user *out);
void		 store_user_clear(struct store_user *u);
int		 store_user_set_hash(struct store *st, int64_t user_id,
		    const char *hash);
/* Deletes the account, its memberships and its ban; its messages stay in
 * history under the name they were sent with. */
int		 store_user_del(struct store *st, int64_t user_id);
/* Every user, by name; the row is borrowed during the callback. */
int		 store_user_list(struct store *st,
		    void (*cb)(const struct store_user *, void *), void *arg);

/* Bans.  Setting one again replaces the reason; no such user: NOT_FOUND. */
int		 store_ban_set(struct store *st, int64_t user_id,
		    const char *reason, int64_t ts_ms);
int		 store_ban_clear(struct store *st, int64_t user_id);

/* Rooms. */
int		 store_room_add(struct store *st, const char *name,
		    int64_t created_ms, int64_t *id);
int		 store_room_set_topic(struct store *st, int64_t room_id,
		    const char *topic);
int		 store_room_list(struct store *st,
		    void (*cb)(const struct store_room *, void *), void *arg);

/* Memberships (persistent until the user leaves).  Adding: STORE_EXISTS if
 * already a member, STORE_NOT_FOUND if the room or the user does not exist. */
int		 store_member_add(struct store *st, int64_t room_id,
		    int64_t user_id);
int		 store_member_del(struct store *st, int64_t room_id,
		    int64_t user_id);
/* Every membership with the member's name, for loading at start. */
int		 store_member_list(struct store *st,
		    void (*cb)(int64_t room_id, int64_t user_id,
		    const char *user_name, void *), void *arg);

/*
 * Messages.  Ids come from an AUTOINCREMENT key: positive, increasing,
 * never reused.  A room message has room_id > 0 and to_user_id == 0; a
 * direct message has room_id == 0 and to_user_id > 0.  'from' and 'to'
 * are the names shown in events and history.  Call between store_begin()
 * and store_commit() to batch (group commit); alone, it commits itself.
 */
int		 store_message_add(struct store *st, int64_t from_user_id,
		    const char *from, int64_t room_id, int64_t to_user_id,
		    const char *to, const char *content, size_t content_len,
		    int64_t ts_ms, int64_t *id);

/*
 * History: which page of a conversation.  With has_after, the oldest
 * rows above after (and below before, when before > 0): after 0 is the
 * very beginning.  Otherwise the newest rows below before (or the newest
 * of all when before is 0).  Bounds are exclusive.
 */
struct store_page {
	int64_t		 before;	/* 0: no upper bound */
	int64_t		 after;		/* used when has_after */
	bool		 has_after;
	int		 limit;		/* rows at most */
	/*
	 * Rows stop once their text (sender, recipient and content bytes)
	 * would pass max_bytes, the first row aside; 0: no such bound.
	 */
	size_t		 max_bytes;
};

/*
 * Called per row, nearest the page's anchor first: oldest first with
 * has_after, newest first otherwise.  Returning false stops the page
 * there (the row is not part of it).
 */
typedef bool	 store_history_fn(const struct store_message *, void *);

/*
 * Room history by room id; direct history is the conversation between
 * users a and b (either direction).  *more tells whether rows exist past
 * those the page gave cb, in its direction (within both bounds).
 */
int		 store_history_room(struct store *st, int64_t room_id,
		    const struct store_page *pg, store_history_fn *cb,
		    void *arg, bool *more);
int		 store_history_direct(struct store *st, int64_t user_a,
		    int64_t user_b, const struct store_page *pg,
		    store_history_fn *cb, void *arg, bool *more);

/* Number of messages stored (kept as a counter, not a scan per call). */
int64_t		 store_message_count(struct store *st);
/* Size of the database file in bytes (page_count * page_size). */
int64_t		 store_size_bytes(struct store *st);

/* for tests */
enum {
	STORE_EXPLAIN_HISTORY_ROOM_AFTER,
	STORE_EXPLAIN_HISTORY_ROOM_BEFORE,
	STORE_EXPLAIN_HISTORY_DIRECT_AFTER,
	STORE_EXPLAIN_HISTORY_DIRECT_BEFORE
};
/* EXPLAIN QUERY PLAN of one history statement, a line per step, in buf. */
int		 store_explain(struct store *st, int which, char *buf,
		    size_t len);

#endif
