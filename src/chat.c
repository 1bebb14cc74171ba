/* chat: in-memory users, sessions, rooms and membership, and who receives what. */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "siphash.h"
#include "xmalloc.h"

/*
 * Names are looked up in string-keyed chained hash tables.  Keys are
 * borrowed from the object they index (its name never changes while it is
 * in the table).  Case folding is ASCII only, in both the hash and the
 * comparison, and does not depend on the locale: that is exactly what
 * SQLite's COLLATE NOCASE does in store.c, so chat and the database always
 * agree on whether two names are the same.
 */
#define CHAT_HASH_MIN		64	/* buckets; a power of two */

struct chat_hent {
	const char		*key;
	void			*value;
	struct chat_hent	*next;
};

struct chat_hash {
	struct chat_hent	**slots;
	size_t			  size;		/* power of two */
	size_t			  count;
	uint8_t			  key[SIPHASH_KEY_LEN];	/* random */
};

/*
 * A user is known while it is online or a member of some room.  'rooms' is
 * in join order; 'mark' is the presence generation that last visited it;
 * 'online_idx' is its slot in chat.online while it has sessions.  A user
 * whose account was replaced by another of the same name while it still
 * had sessions is 'detached': out of the name table and of every room,
 * kept (on chat.detached) only until its last session goes.
 */
struct chat_user {
	int64_t			 id;
	char			*name;
	bool			 detached;
	struct chat_user	*next_detached;
	enum proto_status	 status;
	char			*text;
	struct chat_session	*sessions;
	size_t			 nsessions;
	struct chat_room	**rooms;
	size_t			 nrooms;
	size_t			 roomsalloc;
	uint64_t		 mark;
	size_t			 online_idx;
};

/*
 * Membership is stored twice: members in join order here and rooms in the
 * user.  chat_is_member scans whichever side is shorter, which for a huge
 * room is the user's (short) list of rooms, so no per-room set is needed.
 * Leaving is O(members) to keep the join order; leaving is rare next to
 * deliveries, and a memmove of a 10,000-pointer array is cheap.
 */
struct chat_room {
	int64_t			 id;
	char			*name;
	char			*topic;
	struct chat_user	**members;
	size_t			 nmembers;
	size_t			 membersalloc;
};

struct chat {
	struct chat_hash	 users;		/* every known user */
	struct chat_hash	 rooms;
	struct chat_user	*detached;	/* see struct chat_user */
	struct chat_user	**online;	/* users with a session */
	size_t			 nonline;
	size_t			 onlinealloc;
	uint64_t		 generation;	/* for chat_deliver_presence */
};

static unsigned char
chat_fold(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 'a';
	return c;
}

/* strcasecmp for ASCII only, whatever the locale. */
static int
chat_name_cmp(const char *a, const char *b)
{
	const unsigned char	*ua = (const unsigned char *)a;
	const unsigned char	*ub = (const unsigned char *)b;

	while (*ua != '\0' && chat_fold(*ua) == chat_fold(*ub)) {
		ua++;
		ub++;
	}
	return (int)chat_fold(*ua) - (int)chat_fold(*ub);
}

/*
 * Names come from clients, so the hash is keyed (SipHash, a random key per
 * table and per process): nobody can choose names that share a bucket.
 * Only the first CHAT_HASH_PREFIX bytes count; a valid name is shorter,
 * and equal names still hash equal.
 */
#define CHAT_HASH_PREFIX	256

static uint64_t
chat_name_hash(const struct chat_hash *h, const char *s)
{
	unsigned char	folded[CHAT_HASH_PREFIX];
	size_t		n;

	for (n = 0; n < sizeof folded && s[n] != '\0'; n++)
		folded[n] = chat_fold((unsigned char)s[n]);
	return siphash24(h->key, folded, n);
}

static void
chat_hash_init(struct chat_hash *h)
{
	h->size = CHAT_HASH_MIN;
	h->count = 0;
	h->slots = xcalloc(h->size, sizeof *h->slots);
	siphash_key_random(h->key);
}

/* Free the entries, not the values. */
static void
chat_hash_clear(struct chat_hash *h)
{
	struct chat_hent	*e, *next;
	size_t			 i;

	for (i = 0; i < h->size; i++) {
		for (e = h->slots[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(h->slots);
	h->slots = NULL;
	h->size = h->count = 0;
}

static struct chat_hent **
chat_hash_slot(const struct chat_hash *h, const char *key)
{
	return &h->slots[chat_name_hash(h, key) & (h->size - 1)];
}

static void *
chat_hash_find(const struct chat_hash *h, const char *key)
{
	struct chat_hent	*e;

	for (e = *chat_hash_slot(h, key); e != NULL; e = e->next) {
		if (chat_name_cmp(e->key, key) == 0)
			return e->value;
	}
	return NULL;
}

/* Double the buckets and rehash; entries are moved, not reallocated. */
static void
chat_hash_grow(struct chat_hash *h)
{
	struct chat_hent	**old = h->slots, *e, *next, **slot;
	size_t			  oldsize = h->size, i;

	h->size = oldsize * 2;
	h->slots = xcalloc(h->size, sizeof *h->slots);
	for (i = 0; i < oldsize; i++) {
		for (e = old[i]; e != NULL; e = next) {
			next = e->next;
			slot = chat_hash_slot(h, e->key);
			e->next = *slot;
			*slot = e;
		}
	}
	free(old);
}

/* The key must not be present already; it is borrowed, not copied. */
static void
chat_hash_insert(struct chat_hash *h, const char *key, void *value)
{
	struct chat_hent	*e, **slot;

	assert(chat_hash_find(h, key) == NULL);
	if ((h->count + 1) * 4 > h->size * 3)
		chat_hash_grow(h);
	e = xmalloc(sizeof *e);
	e->key = key;
	e->value = value;
	slot = chat_hash_slot(h, key);
	e->next = *slot;
	*slot = e;
	h->count++;
}

static void
chat_hash_remove(struct chat_hash *h, const char *key)
{
	struct chat_hent	*e, **prev;

	for (prev = chat_hash_slot(h, key); (e = *prev) != NULL;
	    prev = &e->next) {
		if (chat_name_cmp(e->key, key) == 0) {
			*prev = e->next;
			free(e);
			h->count--;
			return;
		}
	}
	assert(!"chat_hash_remove: key not present");
}

/* Make room for n + 1 elements of 'size' bytes, doubling. */
static void *
chat_array_reserve(void *array, size_t *alloc, size_t n, size_t size)
{
	if (n < *alloc)
		return array;
	*alloc = *alloc == 0 ? 4 : *alloc * 2;
	return xreallocarray(array, *alloc, size);
}

struct chat *
chat_new(void)
{
	struct chat	*ch;

	ch = xcalloc(1, sizeof *ch);
	chat_hash_init(&ch->users);
	chat_hash_init(&ch->rooms);
	return ch;
}

static void
chat_user_destroy(struct chat_user *u)
{
	struct chat_session	*s, *next;

	for (s = u->sessions; s != NULL; s = next) {
		next = s->next;
		free(s);
	}
	free(u->rooms);
	free(u->text);
	free(u->name);
	free(u);
}

static void
chat_room_destroy(struct chat_room *r)
{
	free(r->members);
	free(r->topic);
	free(r->name);
	free(r);
}

void
chat_free(struct chat *ch)
{
	struct chat_hent	*e;
	struct chat_user	*u;
	size_t			 i;

	if (ch == NULL)
		return;
	for (i = 0; i < ch->users.size; i++) {
		for (e = ch->users.slots[i]; e != NULL; e = e->next)
			chat_user_destroy(e->value);
	}
	for (i = 0; i < ch->rooms.size; i++) {
		for (e = ch->rooms.slots[i]; e != NULL; e = e->next)
			chat_room_destroy(e->value);
	}
	while ((u = ch->detached) != NULL) {
		ch->detached = u->next_detached;
		chat_user_destroy(u);
	}
	chat_hash_clear(&ch->users);
	chat_hash_clear(&ch->rooms);
	free(ch->online);
	free(ch);
}

static void	chat_member_unlink(struct chat_room *, struct chat_user *);

static void
chat_detached_del(struct chat *ch, struct chat_user *u)
{
	struct chat_user	**pp;

	for (pp = &ch->detached; *pp != u; pp = &(*pp)->next_detached)
		assert(*pp != NULL);
	*pp = u->next_detached;
}

/*
 * Forget u if nothing keeps it: no session and no room (a detached user:
 * no session).
 */
static void
chat_user_release(struct chat *ch, struct chat_user *u)
{
	if (u->detached) {
		if (u->nsessions != 0)
			return;
		while (u->nrooms != 0)
			chat_member_unlink(u->rooms[u->nrooms - 1], u);
		chat_detached_del(ch, u);
		chat_user_destroy(u);
		return;
	}
	if (u->nsessions != 0 || u->nrooms != 0)
		return;
	chat_hash_remove(&ch->users, u->name);
	chat_user_destroy(u);
}

/*
 * u's account is gone and its name belongs to another now: take it out of
 * the name table and of every room.  Without sessions it is freed; with
 * some it is detached until they end (the caller ends them).
 */
static void
chat_user_evict(struct chat *ch, struct chat_user *u)
{
	while (u->nrooms != 0)
		chat_member_unlink(u->rooms[u->nrooms - 1], u);
	chat_hash_remove(&ch->users, u->name);
	if (u->nsessions == 0) {
		chat_user_destroy(u);
		return;
	}
	u->detached = true;
	u->next_detached = ch->detached;
	ch->detached = u;
}

struct chat_user *
chat_user_find(struct chat *ch, const char *name)
{
	return chat_hash_find(&ch->users, name);
}

/*
 * A user is its account: the name alone is not enough, since a deleted
 * account's name can be registered again.  A user found by name with
 * another id is a stale one (the account was deleted while chat still
 * knew it): it is evicted, never handed out for the new account.  A user
 * created here that never gets a session or a room stays until chat_free
 * or chat_user_remove.
 */
struct chat_user *
chat_user_get(struct chat *ch, int64_t id, const char *name)
{
	struct chat_user	*u;

	if ((u = chat_user_find(ch, name)) != NULL) {
		if (u->id == id)
			return u;
		chat_user_evict(ch, u);
	}
	u = xcalloc(1, sizeof *u);
	u->id = id;
	u->name = xstrdup(name);
	u->status = PROTO_STATUS_ONLINE;
	u->text = xstrdup("");
	chat_hash_insert(&ch->users, u->name, u);
	return u;
}

int64_t
chat_user_id(const struct chat_user *u)
{
	return u->id;
}

const char *
chat_user_name(const struct chat_user *u)
{
	return u->name;
}

bool
chat_user_online(const struct chat_user *u)
{
	return u->nsessions != 0;
}

size_t
chat_user_sessions(const struct chat_user *u)
{
	return u->nsessions;
}

enum proto_status
chat_user_status(const struct chat_user *u)
{
	if (u->nsessions == 0)
		return PROTO_STATUS_OFFLINE;
	return u->status;
}

const char *
chat_user_status_text(const struct chat_user *u)
{
	return u->text;
}

void
chat_user_set_status(struct chat_user *u, enum proto_status status,
    const char *text)
{
	char	*copy;

	/* Copy before freeing: text may be u's own current text. */
	copy = xstrdup(text != NULL ? text : "");
	free(u->text);
	u->text = copy;
	u->status = status;
}

void
chat_user_each_room(struct chat_user *u, chat_room_fn *fn, void *arg)
{
	size_t	i;

	for (i = 0; i < u->nrooms; i++)
		fn(u->rooms[i], arg);
}

/* fn must not add or remove sessions: the array is walked in place. */
void
chat_each_online_user(struct chat *ch, chat_user_fn *fn, void *arg)
{
	size_t	i;

	for (i = 0; i < ch->nonline; i++)
		fn(ch->online[i], arg);
}

size_t
chat_users_online(const struct chat *ch)
{
	return ch->nonline;
}

static void
chat_online_add(struct chat *ch, struct chat_user *u)
{
	ch->online = chat_array_reserve(ch->online, &ch->onlinealloc,
	    ch->nonline, sizeof *ch->online);
	u->online_idx = ch->nonline;
	ch->online[ch->nonline++] = u;
}

/* Swap the last online user into u's slot: order is not promised. */
static void
chat_online_del(struct chat *ch, struct chat_user *u)
{
	struct chat_user	*last;

	assert(u->online_idx < ch->nonline && ch->online[u->online_idx] == u);
	last = ch->online[--ch->nonline];
	ch->online[u->online_idx] = last;
	last->online_idx = u->online_idx;
}

/* Drop both halves of a membership that exists; does not release u. */
static void
chat_member_unlink(struct chat_room *r, struct chat_user *u)
{
	size_t	i;

	for (i = 0; i < r->nmembers && r->members[i] != u; i++)
		;
	assert(i < r->nmembers);
	memmove(&r->members[i], &r->members[i + 1],
	    (r->nmembers - i - 1) * sizeof *r->members);
	r->nmembers--;

	for (i = 0; i < u->nrooms && u->rooms[i] != r; i++)
		;
	assert(i < u->nrooms);
	memmove(&u->rooms[i], &u->rooms[i + 1],
	    (u->nrooms - i - 1) * sizeof *u->rooms);
	u->nrooms--;
}

void
chat_user_remove(struct chat *ch, struct chat_user *u)
{
	assert(u->nsessions == 0);
	while (u->nrooms != 0)
		chat_member_unlink(u->rooms[u->nrooms - 1], u);
	chat_user_release(ch, u);
}

struct chat_room *
chat_room_find(struct chat *ch, const char *name)
{
	return chat_hash_find(&ch->rooms, name);
}

/* If a room of that name exists already, it is returned unchanged. */
struct chat_room *
chat_room_add(struct chat *ch, int64_t id, const char *name,
    const char *topic)
{
	struct chat_room	*r;

	if ((r = chat_room_find(ch, name)) != NULL)
		return r;
	r = xcalloc(1, sizeof *r);
	r->id = id;
	r->name = xstrdup(name);
	r->topic = xstrdup(topic != NULL ? topic : "");
	chat_hash_insert(&ch->rooms, r->name, r);
	return r;
}

int64_t
chat_room_id(const struct chat_room *r)
{
	return r->id;
}

const char *
chat_room_name(const struct chat_room *r)
{
	return r->name;
}

const char *
chat_room_topic(const struct chat_room *r)
{
	return r->topic;
}

void
chat_room_set_topic(struct chat_room *r, const char *topic)
{
	char	*copy;

	copy = xstrdup(topic != NULL ? topic : "");
	free(r->topic);
	r->topic = copy;
}

size_t
chat_room_members(const struct chat_room *r)
{
	return r->nmembers;
}

/* fn must not change the membership of r. */
void
chat_room_each_member(struct chat_room *r, chat_user_fn *fn, void *arg)
{
	size_t	i;

	for (i = 0; i < r->nmembers; i++)
		fn(r->members[i], arg);
}

static int
chat_room_cmp(const void *a, const void *b)
{
	const struct chat_room	*ra = *(const struct chat_room * const *)a;
	const struct chat_room	*rb = *(const struct chat_room * const *)b;

	return chat_name_cmp(ra->name, rb->name);
}

/* A listing: sorting a snapshot of pointers is fine here. */
void
chat_each_room(struct chat *ch, chat_room_fn *fn, void *arg)
{
	struct chat_room	**all;
	struct chat_hent	 *e;
	size_t			  i, n = 0;

	if (ch->rooms.count == 0)
		return;
	all = xreallocarray(NULL, ch->rooms.count, sizeof *all);
	for (i = 0; i < ch->rooms.size; i++) {
		for (e = ch->rooms.slots[i]; e != NULL; e = e->next)
			all[n++] = e->value;
	}
	qsort(all, n, sizeof *all, chat_room_cmp);
	for (i = 0; i < n; i++)
		fn(all[i], arg);
	free(all);
}

size_t
chat_rooms(const struct chat *ch)
{
	return ch->rooms.count;
}

bool
chat_member_add(struct chat_room *r, struct chat_user *u)
{
	if (chat_is_member(r, u))
		return false;
	r->members = chat_array_reserve(r->members, &r->membersalloc,
	    r->nmembers, sizeof *r->members);
	r->members[r->nmembers++] = u;
	u->rooms = chat_array_reserve(u->rooms, &u->roomsalloc, u->nrooms,
	    sizeof *u->rooms);
	u->rooms[u->nrooms++] = r;
	return true;
}

/* An offline user leaving its last room is freed: u is then invalid. */
bool
chat_member_del(struct chat *ch, struct chat_room *r, struct chat_user *u)
{
	if (!chat_is_member(r, u))
		return false;
	chat_member_unlink(r, u);
	chat_user_release(ch, u);
	return true;
}

/* Scan the shorter side: O(min(rooms of u, members of r)). */
bool
chat_is_member(const struct chat_room *r, const struct chat_user *u)
{
	size_t	i;

	if (u->nrooms <= r->nmembers) {
		for (i = 0; i < u->nrooms; i++) {
			if (u->rooms[i] == r)
				return true;
		}
	} else {
		for (i = 0; i < r->nmembers; i++) {
			if (r->members[i] == u)
				return true;
		}
	}
	return false;
}

/*
 * The ratelimit buckets and strikes are zeroed: the caller configures them
 * from the live configuration right after this returns.
 */
struct chat_session *
chat_session_add(struct chat *ch, struct chat_user *u, void *owner,
    bool *first)
{
	struct chat_session	*s;
	bool			 was_offline = u->nsessions == 0;

	s = xcalloc(1, sizeof *s);
	s->user = u;
	s->owner = owner;
	s->next = u->sessions;
	u->sessions = s;
	u->nsessions++;
	if (was_offline) {
		chat_user_set_status(u, PROTO_STATUS_ONLINE, "");
		chat_online_add(ch, u);
	}
	if (first != NULL)
		*first = was_offline;
	return s;
}

/*
 * When s was the last session of a user in no room, the user is freed as
 * well, so a caller announcing "offline" does so before removing s (with s
 * as 'except').
 */
void
chat_session_remove(struct chat *ch, struct chat_session *s, bool *last)
{
	struct chat_user	*u = s->user;
	struct chat_session	**prev;

	for (prev = &u->sessions; *prev != NULL && *prev != s;
	    prev = &(*prev)->next)
		;
	assert(*prev == s);
	*prev = s->next;
	free(s);
	u->nsessions--;
	if (last != NULL)
		*last = u->nsessions == 0;
	if (u->nsessions != 0)
		return;
	chat_online_del(ch, u);
	chat_user_set_status(u, PROTO_STATUS_ONLINE, "");
	chat_user_release(ch, u);
}

/*
 * Deliveries.  fn must not add or remove sessions, users, rooms or members
 * (callers only queue bytes on the connection); the next session is read
 * before fn runs all the same.
 */
static void
chat_deliver_sessions(struct chat_user *u, const struct chat_session *except,
    chat_deliver_fn *fn, void *arg)
{
	struct chat_session	*s, *next;

	for (s = u->sessions; s != NULL; s = next) {
		next = s->next;
		if (s != except)
			fn(s, arg);
	}
}

void
chat_deliver_room(struct chat_room *r, const struct chat_session *except,
    chat_deliver_fn *fn, void *arg)
{
	size_t	i;

	for (i = 0; i < r->nmembers; i++)
		chat_deliver_sessions(r->members[i], except, fn, arg);
}

void
chat_deliver_user(struct chat_user *u, const struct chat_session *except,
    chat_deliver_fn *fn, void *arg)
{
	chat_deliver_sessions(u, except, fn, arg);
}

/*
 * Each room-mate is visited once per call however many rooms it shares
 * with u: a user is skipped when its mark already equals this call's
 * generation.  u is marked first so its own sessions go out exactly once,
 * at the end, whether or not it is in any room.
 */
void
chat_deliver_presence(struct chat *ch, struct chat_user *u,
    const struct chat_session *except, chat_deliver_fn *fn, void *arg)
{
	struct chat_room	*r;
	struct chat_user	*m;
	uint64_t		 gen = ++ch->generation;
	size_t			 i, j;

	u->mark = gen;
	for (i = 0; i < u->nrooms; i++) {
		r = u->rooms[i];
		for (j = 0; j < r->nmembers; j++) {
			m = r->members[j];
			if (m->mark == gen)
				continue;
			m->mark = gen;
			chat_deliver_sessions(m, except, fn, arg);
		}
	}
	chat_deliver_sessions(u, except, fn, arg);
}
