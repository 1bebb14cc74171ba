/* Unit tests for chat.c: users, sessions, rooms, membership and routing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chat.h"
#include "xmalloc.h"

/*
 * Delivery recorder: owners are addresses inside 'slots', so the index of
 * an owner says who it is and hits[i] counts deliveries to that session.
 */
struct recorder {
	char	*slots;
	int	*hits;
	size_t	 n;
	size_t	 total;
};

static void
recorder_init(struct recorder *rec, size_t n)
{
	rec->slots = xcalloc(n, 1);
	rec->hits = xcalloc(n, sizeof *rec->hits);
	rec->n = n;
	rec->total = 0;
}

static void
recorder_reset(struct recorder *rec)
{
	memset(rec->hits, 0, rec->n * sizeof *rec->hits);
	rec->total = 0;
}

static void
recorder_free(struct recorder *rec)
{
	free(rec->slots);
	free(rec->hits);
}

static void *
recorder_owner(struct recorder *rec, size_t i)
{
	return &rec->slots[i];
}

static void
recorder_fn(struct chat_session *s, void *arg)
{
	struct recorder	*rec = arg;
	char		*owner = s->owner;

	assert_true(owner >= rec->slots && owner < rec->slots + rec->n);
	rec->hits[owner - rec->slots]++;
	rec->total++;
}

/* hits must equal expect exactly (0 or 1 for each session). */
static void
recorder_check(const struct recorder *rec, const int *expect)
{
	size_t	i, want = 0;

	for (i = 0; i < rec->n; i++) {
		assert_int_equal(rec->hits[i], expect[i]);
		want += expect[i];
	}
	assert_int_equal(rec->total, want);
}

/* Collect names from chat_*_each_* callbacks. */
struct names {
	const char	*v[16];
	size_t		 n;
};

static void
names_user_fn(struct chat_user *u, void *arg)
{
	struct names	*nm = arg;

	assert_true(nm->n < 16);
	nm->v[nm->n++] = chat_user_name(u);
}

static void
names_room_fn(struct chat_room *r, void *arg)
{
	struct names	*nm = arg;

	assert_true(nm->n < 16);
	nm->v[nm->n++] = chat_room_name(r);
}

static void
count_user_fn(struct chat_user *u, void *arg)
{
	(*(size_t *)arg)++;
}

static void
test_user_find_is_case_insensitive_and_keeps_registered_spelling(void **state)
{
	struct chat		*ch = chat_new();
	struct chat_user	*u;

	assert_null(chat_user_find(ch, "Alice"));
	u = chat_user_get(ch, 7, "Alice");
	assert_non_null(u);
	assert_ptr_equal(chat_user_find(ch, "alice"), u);
	assert_ptr_equal(chat_user_find(ch, "ALICE"), u);
	assert_ptr_equal(chat_user_find(ch, "aLiCe"), u);
	assert_null(chat_user_find(ch, "alic"));
	assert_null(chat_user_find(ch, "alicee"));
	/* A second get with another spelling returns the same object. */
	assert_ptr_equal(chat_user_get(ch, 7, "ALICE"), u);
	assert_string_equal(chat_user_name(u), "Alice");
	assert_int_equal(chat_user_id(u), 7);
	chat_free(ch);
}

static void
test_two_sessions_first_last_flags_and_status(void **state)
{
	struct chat		*ch = chat_new();
	struct chat_user	*u;
	struct chat_session	*s1, *s2;
	bool			 first, last;
	int			 o1, o2;

	u = chat_user_get(ch, 1, "bob");
	/* Keep bob alive across both sessions ending. */
	chat_member_add(chat_room_add(ch, 1, "#r", ""), u);
	assert_false(chat_user_online(u));
	assert_int_equal(chat_user_status(u), PROTO_STATUS_OFFLINE);

	first = false;
	s1 = chat_session_add(ch, u, &o1, &first);
	assert_true(first);
	assert_ptr_equal(s1->user, u);
	assert_ptr_equal(s1->owner, &o1);
	assert_int_equal(s1->strikes, 0);
	assert_true(chat_user_online(u));
	assert_int_equal(chat_user_status(u), PROTO_STATUS_ONLINE);
	assert_string_equal(chat_user_status_text(u), "");
	assert_int_equal(chat_user_sessions(u), 1);

	first = true;
	s2 = chat_session_add(ch, u, &o2, &first);
	assert_false(first);
	assert_int_equal(chat_user_sessions(u), 2);
	assert_int_equal(chat_users_online(ch), 1);

	last = true;
	chat_session_remove(ch, s2, &last);
	assert_false(last);
	assert_true(chat_user_online(u));
	assert_int_equal(chat_user_sessions(u), 1);

	last = false;
	chat_session_remove(ch, s1, &last);
	assert_true(last);
	assert_false(chat_user_online(u));
	assert_int_equal(chat_user_sessions(u), 0);
	assert_int_equal(chat_user_status(u), PROTO_STATUS_OFFLINE);
	assert_int_equal(chat_users_online(ch), 0);
	chat_free(ch);
}

static void
test_set_status_copies_text_and_online_resets_it(void **state)
{
	struct chat		*ch = chat_new();
	struct chat_user	*u;
	struct chat_session	*s;
	char			 buf[32];

	u = chat_user_get(ch, 1, "carol");
	s = chat_session_add(ch, u, buf, NULL);
	snprintf(buf, sizeof buf, "at lunch");
	chat_user_set_status(u, PROTO_STATUS_AWAY, buf);
	snprintf(buf, sizeof buf, "overwritten");
	assert_int_equal(chat_user_status(u), PROTO_STATUS_AWAY);
	assert_string_equal(chat_user_status_text(u), "at lunch");

	chat_user_set_status(u, PROTO_STATUS_BUSY, NULL);
	assert_int_equal(chat_user_status(u), PROTO_STATUS_BUSY);
	assert_string_equal(chat_user_status_text(u), "");

	/* Its own text passed back in must survive. */
	chat_user_set_status(u, PROTO_STATUS_AWAY, "brb");
	chat_user_set_status(u, PROTO_STATUS_BUSY, chat_user_status_text(u));
	assert_string_equal(chat_user_status_text(u), "brb");

	/* Coming back online after going offline starts afresh. */
	chat_member_add(chat_room_add(ch, 1, "#keep", ""), u);
	chat_session_remove(ch, s, NULL);
	assert_int_equal(chat_user_status(u), PROTO_STATUS_OFFLINE);
	s = chat_session_add(ch, u, buf, NULL);
	assert_int_equal(chat_user_status(u), PROTO_STATUS_ONLINE);
	assert_string_equal(chat_user_status_text(u), "");
	chat_session_remove(ch, s, NULL);
	chat_free(ch);
}

static void
test_room_add_and_find_case_insensitive(void **state)
{
	struct chat		*ch = chat_new();
	struct chat_room	*r;

	assert_null(chat_room_find(ch, "#Lobby"));
	r = chat_room_add(ch, 42, "#Lobby", "welcome");
	assert_ptr_equal(chat_room_find(ch, "#lobby"), r);
	assert_ptr_equal(chat_room_find(ch, "#LOBBY"), r);
	assert_null(chat_room_find(ch, "#lobb"));
	assert_string_equal(chat_room_name(r), "#Lobby");
	assert_string_equal(chat_room_topic(r), "welcome");
	assert_int_equal(chat_room_id(r), 42);
	assert_int_equal(chat_room_members(r), 0);

	/* Adding the same name again returns the existing room unchanged. */
	assert_ptr_equal(chat_room_add(ch, 43, "#LOBBY", "other"), r);
	assert_int_equal(chat_room_id(r), 42);
	assert_string_equal(chat_room_topic(r), "welcome");
	assert_int_equal(chat_rooms(ch), 1);

	chat_room_set_topic(r, "new topic");
	assert_string_equal(chat_room_topic(r), "new topic");
	chat_room_set_topic(r, NULL);
	assert_string_equal(chat_room_topic(r), "");
	assert_string_equal(chat_room_topic(chat_room_add(ch, 2, "#x", NULL)),
	    "");
	chat_free(ch);
}

static void
test_member_add_twice_returns_false_second_time(void **state)
{
	struct chat		*ch = chat_new();
	struct chat_room	*r = chat_room_add(ch, 1, "#a", "");
	struct chat_user	*u = chat_user_get(ch, 1, "dave");

	assert_false(chat_is_member(r, u));
	assert_true(chat_member_add(r, u));
	assert_false(chat_member_add(r, u));
	assert_true(chat_is_member(r, u));
	assert_int_equal(chat_room_members(r), 1);
	chat_free(ch);
}

static void
test_member_del_removes_from_room_and_user(void **state)
{
	struct chat		*ch = chat_new();
	struct chat_room	*a = chat_room_add(ch, 1, "#a", "");
	struct chat_room	*b = chat_room_add(ch, 2, "#b", "");
	struct chat_user	*u = chat_user_get(ch, 1, "erin");
	struct chat_user	*v = chat_user_get(ch, 2, "frank");
	struct names		 nm = { .n = 0 };

	chat_member_add(a, u);
	chat_member_add(b, u);
	chat_member_add(a, v);
	assert_true(chat_member_del(ch, a, u));
	assert_false(chat_member_del(ch, a, u));
	assert_false(chat_is_member(a, u));
	assert_true(chat_is_member(b, u));
	assert_true(chat_is_member(a, v));
	assert_int_equal(chat_room_members(a), 1);

	chat_user_each_room(u, names_room_fn, &nm);
	assert_int_equal(nm.n, 1);
	assert_string_equal(nm.v[0], "#b");

	nm.n = 0;
	chat_room_each_member(a, names_user_fn, &nm);
	assert_int_equal(nm.n, 1);
	assert_string_equal(nm.v[0], "frank");
	chat_free(ch);
}

static void
test_each_member_and_user_each_room_keep_join_order(void **state)
{
	static const char	*names[] = { "zed", "Amy", "mike", "Bea", "al" };
	static const char	*after[] = { "zed", "mike", "Bea", "al" };
	struct chat		*ch = chat_new();
	struct chat_room	*r = chat_room_add(ch, 1, "#order", "");
	struct chat_room	*r2 = chat_room_add(ch, 2, "#a", "");
	struct chat_user	*u;
	struct names		 nm = { .n = 0 };
	size_t			 i;

	for (i = 0; i < 5; i++)
		chat_member_add(r, chat_user_get(ch, i, names[i]));
	chat_room_each_member(r, names_user_fn, &nm);
	assert_int_equal(nm.n, 5);
	for (i = 0; i < 5; i++)
		assert_string_equal(nm.v[i], names[i]);

	/* Leaving from the middle keeps the others in order. */
	chat_member_del(ch, r, chat_user_find(ch, "amy"));
	nm.n = 0;
	chat_room_each_member(r, names_user_fn, &nm);
	assert_int_equal(nm.n, 4);
	for (i = 0; i < 4; i++)
		assert_string_equal(nm.v[i], after[i]);

	u = chat_user_find(ch, "zed");
	chat_member_add(r2, u);
	nm.n = 0;
	chat_user_each_room(u, names_room_fn, &nm);
	assert_int_equal(nm.n, 2);
	assert_string_equal(nm.v[0], "#order");
	assert_string_equal(nm.v[1], "#a");
	chat_free(ch);
}

static void
test_each_room_sorted_by_name_case_insensitively(void **state)
{
	static const char	*add[] = {
		"#delta", "#Bravo", "#alpha", "#Charlie", "#_x", "#ALPHA2", "#b"
	};
	static const char	*sorted[] = {
		"#_x", "#alpha", "#ALPHA2", "#b", "#Bravo", "#Charlie", "#delta"
	};
	struct chat		*ch = chat_new();
	struct names		 nm = { .n = 0 };
	size_t			 i;

	chat_each_room(ch, names_room_fn, &nm);
	assert_int_equal(nm.n, 0);
	for (i = 0; i < 7; i++)
		chat_room_add(ch, i, add[i], "");
	assert_int_equal(chat_rooms(ch), 7);
	chat_each_room(ch, names_room_fn, &nm);
	assert_int_equal(nm.n, 7);
	for (i = 0; i < 7; i++)
		assert_string_equal(nm.v[i], sorted[i]);
	chat_free(ch);
}

/*
 * Sessions 0-1 belong to u0, 2 to u1, 3-4 to u2 (who is not in the room),
 * 5 to u3.  u4 is a member with no session.
 */
static void
test_deliver_room_reaches_every_member_session_except_once(void **state)
{
	static const int	 expect_except1[] = { 1, 0, 1, 0, 0, 1 };
	static const int	 expect_all[] = { 1, 1, 1, 0, 0, 1 };
	static const int	 owner_of[] = { 0, 0, 1, 2, 2, 3 };
	struct chat		*ch = chat_new();
	struct chat_room	*r = chat_room_add(ch, 1, "#room", "");
	struct chat_user	*u[5];
	struct chat_session	*s[6];
	struct recorder		 rec;
	char			 name[16];
	size_t			 i;

	recorder_init(&rec, 6);
	for (i = 0; i < 5; i++) {
		snprintf(name, sizeof name, "user%zu", i);
		u[i] = chat_user_get(ch, i, name);
		if (i != 2)
			chat_member_add(r, u[i]);
	}
	for (i = 0; i < 6; i++)
		s[i] = chat_session_add(ch, u[owner_of[i]],
		    recorder_owner(&rec, i), NULL);

	chat_deliver_room(r, s[1], recorder_fn, &rec);
	recorder_check(&rec, expect_except1);

	recorder_reset(&rec);
	chat_deliver_room(r, NULL, recorder_fn, &rec);
	recorder_check(&rec, expect_all);

	for (i = 0; i < 6; i++)
		chat_session_remove(ch, s[i], NULL);
	recorder_free(&rec);
	chat_free(ch);
}

static void
test_deliver_user_reaches_all_its_sessions_except(void **state)
{
	static const int	 expect_except[] = { 1, 0, 1, 0 };
	static const int	 expect_all[] = { 1, 1, 1, 0 };
	struct chat		*ch = chat_new();
	struct chat_user	*u = chat_user_get(ch, 1, "gina");
	struct chat_user	*v = chat_user_get(ch, 2, "hank");
	struct chat_session	*s[4];
	struct recorder		 rec;
	size_t			 i;

	recorder_init(&rec, 4);
	for (i = 0; i < 3; i++)
		s[i] = chat_session_add(ch, u, recorder_owner(&rec, i), NULL);
	s[3] = chat_session_add(ch, v, recorder_owner(&rec, 3), NULL);

	chat_deliver_user(u, s[1], recorder_fn, &rec);
	recorder_check(&rec, expect_except);
	recorder_reset(&rec);
	chat_deliver_user(u, NULL, recorder_fn, &rec);
	recorder_check(&rec, expect_all);

	for (i = 0; i < 4; i++)
		chat_session_remove(ch, s[i], NULL);
	recorder_free(&rec);
	chat_free(ch);
}

/*
 * u (sessions 0, 1) is in #a and #b.  v (2, 3) is in both, w (4) only in
 * #b, x (5) in no room with u, y is an offline member of #a, z (6) is in
 * #a and #c.  Presence of u, except session 0, reaches 1 (u's other
 * session), 2, 3, 4 and 6 once each.
 */
static void
test_deliver_presence_reaches_room_mates_once(void **state)
{
	static const int	 expect[] = { 0, 1, 1, 1, 1, 0, 1 };
	static const int	 expect_noexcept[] = { 1, 1, 1, 1, 1, 0, 1 };
	static const int	 expect_other[] = { 1, 1, 0, 1, 1, 0, 1 };
	struct chat		*ch = chat_new();
	struct chat_room	*a = chat_room_add(ch, 1, "#a", "");
	struct chat_room	*b = chat_room_add(ch, 2, "#b", "");
	struct chat_room	*c = chat_room_add(ch, 3, "#c", "");
	struct chat_user	*u, *v, *w, *x, *y, *z;
	struct chat_session	*s[7];
	struct recorder		 rec;
	size_t			 i;

	recorder_init(&rec, 7);
	u = chat_user_get(ch, 1, "u");
	v = chat_user_get(ch, 2, "v");
	w = chat_user_get(ch, 3, "w");
	x = chat_user_get(ch, 4, "x");
	y = chat_user_get(ch, 5, "y");
	z = chat_user_get(ch, 6, "z");
	chat_member_add(a, u);
	chat_member_add(b, u);
	chat_member_add(a, v);
	chat_member_add(b, v);
	chat_member_add(b, w);
	chat_member_add(c, x);
	chat_member_add(a, y);
	chat_member_add(a, z);
	chat_member_add(c, z);
	s[0] = chat_session_add(ch, u, recorder_owner(&rec, 0), NULL);
	s[1] = chat_session_add(ch, u, recorder_owner(&rec, 1), NULL);
	s[2] = chat_session_add(ch, v, recorder_owner(&rec, 2), NULL);
	s[3] = chat_session_add(ch, v, recorder_owner(&rec, 3), NULL);
	s[4] = chat_session_add(ch, w, recorder_owner(&rec, 4), NULL);
	s[5] = chat_session_add(ch, x, recorder_owner(&rec, 5), NULL);
	s[6] = chat_session_add(ch, z, recorder_owner(&rec, 6), NULL);
	assert_false(chat_user_online(y));

	chat_deliver_presence(ch, u, s[0], recorder_fn, &rec);
	recorder_check(&rec, expect);

	/* A new generation: everyone is reached again. */
	recorder_reset(&rec);
	chat_deliver_presence(ch, u, NULL, recorder_fn, &rec);
	recorder_check(&rec, expect_noexcept);

	/* 'except' may be another user's session too. */
	recorder_reset(&rec);
	chat_deliver_presence(ch, u, s[2], recorder_fn, &rec);
	recorder_check(&rec, expect_other);

	for (i = 0; i < 7; i++)
		chat_session_remove(ch, s[i], NULL);
	recorder_free(&rec);
	chat_free(ch);
}

/* A user in no room still tells its own other sessions. */
static void
test_deliver_presence_without_rooms_reaches_own_sessions(void **state)
{
	static const int	 expect[] = { 0, 1, 0 };
	struct chat		*ch = chat_new();
	struct chat_user	*u = chat_user_get(ch, 1, "loner");
	struct chat_user	*v = chat_user_get(ch, 2, "other");
	struct chat_session	*s[3];
	struct recorder		 rec;
	size_t			 i;

	recorder_init(&rec, 3);
	s[0] = chat_session_add(ch, u, recorder_owner(&rec, 0), NULL);
	s[1] = chat_session_add(ch, u, recorder_owner(&rec, 1), NULL);
	s[2] = chat_session_add(ch, v, recorder_owner(&rec, 2), NULL);
	chat_deliver_presence(ch, u, s[0], recorder_fn, &rec);
	recorder_check(&rec, expect);
	for (i = 0; i < 3; i++)
		chat_session_remove(ch, s[i], NULL);
	recorder_free(&rec);
	chat_free(ch);
}

static void
test_user_lifetime_follows_sessions_and_rooms(void **state)
{
	struct chat		*ch = chat_new();
	struct chat_room	*r = chat_room_add(ch, 1, "#life", "");
	struct chat_user	*u, *m;
	struct chat_session	*s;
	bool			 last = false;
	int			 o;

	/* Online, in no room: gone with its last session. */
	u = chat_user_get(ch, 1, "Ivy");
	s = chat_session_add(ch, u, &o, NULL);
	chat_session_remove(ch, s, &last);
	assert_true(last);
	assert_null(chat_user_find(ch, "ivy"));

	/* A member with no session stays, offline. */
	m = chat_user_get(ch, 2, "Jack");
	chat_member_add(r, m);
	s = chat_session_add(ch, m, &o, NULL);
	chat_session_remove(ch, s, NULL);
	assert_ptr_equal(chat_user_find(ch, "jack"), m);
	assert_false(chat_user_online(m));
	assert_int_equal(chat_user_status(m), PROTO_STATUS_OFFLINE);
	assert_true(chat_is_member(r, m));

	/* An offline user leaving its last room is gone. */
	assert_true(chat_member_del(ch, r, m));
	assert_null(chat_user_find(ch, "jack"));
	assert_int_equal(chat_room_members(r), 0);

	/* An online user leaving its last room stays until it logs out. */
	u = chat_user_get(ch, 3, "Kim");
	chat_member_add(r, u);
	s = chat_session_add(ch, u, &o, NULL);
	assert_true(chat_member_del(ch, r, u));
	assert_ptr_equal(chat_user_find(ch, "kim"), u);
	chat_session_remove(ch, s, NULL);
	assert_null(chat_user_find(ch, "kim"));
	chat_free(ch);
}

static void
test_user_remove_drops_memberships(void **state)
{
	struct chat		*ch = chat_new();
	struct chat_room	*a = chat_room_add(ch, 1, "#a", "");
	struct chat_room	*b = chat_room_add(ch, 2, "#b", "");
	struct chat_user	*u = chat_user_get(ch, 1, "leo");
	struct chat_user	*v = chat_user_get(ch, 2, "mia");
	struct names		 nm = { .n = 0 };

	chat_member_add(a, v);
	chat_member_add(a, u);
	chat_member_add(b, u);
	chat_user_remove(ch, u);
	assert_null(chat_user_find(ch, "leo"));
	assert_int_equal(chat_room_members(a), 1);
	assert_int_equal(chat_room_members(b), 0);
	chat_room_each_member(a, names_user_fn, &nm);
	assert_int_equal(nm.n, 1);
	assert_string_equal(nm.v[0], "mia");
	assert_true(chat_is_member(a, v));

	/* A user with neither rooms nor sessions can be removed as well. */
	u = chat_user_get(ch, 3, "ned");
	chat_user_remove(ch, u);
	assert_null(chat_user_find(ch, "ned"));
	chat_free(ch);
}

/*
 * A name whose account was deleted and registered again is a new user:
 * the stale object (other id) is never handed out for it.
 */
static void
test_user_get_with_another_id_is_a_fresh_user(void **state)
{
	struct chat		*ch = chat_new();
	struct chat_room	*r = chat_room_add(ch, 1, "#old", "");
	struct chat_user	*old, *u;
	struct recorder		 rec;
	int			 expect[2] = { 0, 0 };

	recorder_init(&rec, 2);
	old = chat_user_get(ch, 10, "Olga");
	chat_member_add(r, old);
	u = chat_user_get(ch, 11, "olga");
	assert_int_equal(chat_user_id(u), 11);
	assert_string_equal(chat_user_name(u), "olga");
	assert_ptr_equal(chat_user_find(ch, "OLGA"), u);
	/* The old account's memberships went with it. */
	assert_int_equal(chat_room_members(r), 0);
	assert_false(chat_is_member(r, u));
	assert_int_equal(chat_user_sessions(u), 0);
	/* The same id again is the same user. */
	assert_ptr_equal(chat_user_get(ch, 11, "Olga"), u);

	/*
	 * Stale with a session still open: detached until it ends; the new
	 * user's deliveries never reach the old session.
	 */
	old = u;
	chat_member_add(r, old);
	chat_session_add(ch, old, recorder_owner(&rec, 0), NULL);
	u = chat_user_get(ch, 12, "Olga");
	chat_session_add(ch, u, recorder_owner(&rec, 1), NULL);
	assert_ptr_equal(chat_user_find(ch, "olga"), u);
	assert_int_equal(chat_user_id(u), 12);
	assert_int_equal(chat_room_members(r), 0);
	assert_int_equal(chat_users_online(ch), 2);
	chat_deliver_user(u, NULL, recorder_fn, &rec);
	expect[1] = 1;
	recorder_check(&rec, expect);
	recorder_free(&rec);
	chat_free(ch);		/* frees the detached user too (ASan) */
}

/* A detached user goes with its last session; it may not hold rooms. */
static void
test_detached_user_freed_with_last_session(void **state)
{
	struct chat		*ch = chat_new();
	struct chat_room	*r = chat_room_add(ch, 1, "#r", "");
	struct chat_user	*old, *u;
	struct chat_session	*s1, *s2;
	bool			 last = true;
	int			 o;

	old = chat_user_get(ch, 1, "pia");
	s1 = chat_session_add(ch, old, &o, NULL);
	s2 = chat_session_add(ch, old, &o, NULL);
	u = chat_user_get(ch, 2, "pia");
	/* A join by a stale session must not outlive it. */
	chat_member_add(r, old);
	chat_session_remove(ch, s1, &last);
	assert_false(last);
	assert_int_equal(chat_room_members(r), 1);
	chat_session_remove(ch, s2, &last);
	assert_true(last);
	assert_int_equal(chat_room_members(r), 0);
	assert_int_equal(chat_users_online(ch), 0);
	assert_ptr_equal(chat_user_find(ch, "pia"), u);
	chat_free(ch);
}

static void
test_users_online_and_rooms_counts(void **state)
{
	struct chat		*ch = chat_new();
	struct chat_user	*u[3];
	struct chat_session	*s[4];
	struct names		 nm = { .n = 0 };
	size_t			 n = 0;
	int			 o;

	assert_int_equal(chat_users_online(ch), 0);
	assert_int_equal(chat_rooms(ch), 0);
	chat_room_add(ch, 1, "#one", "");
	chat_room_add(ch, 2, "#two", "");
	chat_room_add(ch, 3, "#ONE", "");	/* the same room */
	assert_int_equal(chat_rooms(ch), 2);

	u[0] = chat_user_get(ch, 1, "a");
	u[1] = chat_user_get(ch, 2, "b");
	u[2] = chat_user_get(ch, 3, "c");	/* never online */
	chat_member_add(chat_room_find(ch, "#one"), u[2]);
	s[0] = chat_session_add(ch, u[0], &o, NULL);
	s[1] = chat_session_add(ch, u[0], &o, NULL);
	s[2] = chat_session_add(ch, u[1], &o, NULL);
	assert_int_equal(chat_users_online(ch), 2);
	chat_each_online_user(ch, count_user_fn, &n);
	assert_int_equal(n, 2);

	/* Removing the first online user keeps the other listed. */
	chat_session_remove(ch, s[0], NULL);
	chat_session_remove(ch, s[1], NULL);
	assert_int_equal(chat_users_online(ch), 1);
	chat_each_online_user(ch, names_user_fn, &nm);
	assert_int_equal(nm.n, 1);
	assert_string_equal(nm.v[0], "b");

	s[3] = chat_session_add(ch, u[2], &o, NULL);
	assert_int_equal(chat_users_online(ch), 2);
	chat_session_remove(ch, s[2], NULL);
	chat_session_remove(ch, s[3], NULL);
	assert_int_equal(chat_users_online(ch), 0);
	n = 0;
	chat_each_online_user(ch, count_user_fn, &n);
	assert_int_equal(n, 0);
	chat_free(ch);
}

#define SCALE_MEMBERS	20000

/* One room of 20,000 members, one session each. */
static void
test_scale_room_of_20000_members(void **state)
{
	struct chat		*ch = chat_new();
	struct chat_room	*r = chat_room_add(ch, 1, "#big", "");
	struct chat_room	*small = chat_room_add(ch, 2, "#small", "");
	struct chat_session	**s;
	struct chat_user	*u, *outsider;
	struct recorder		 rec;
	char			 name[32];
	size_t			 i;

	recorder_init(&rec, SCALE_MEMBERS);
	s = xcalloc(SCALE_MEMBERS, sizeof *s);
	for (i = 0; i < SCALE_MEMBERS; i++) {
		snprintf(name, sizeof name, "member%05zu", i);
		u = chat_user_get(ch, i + 1, name);
		assert_true(chat_member_add(r, u));
		s[i] = chat_session_add(ch, u, recorder_owner(&rec, i), NULL);
	}
	assert_int_equal(chat_room_members(r), SCALE_MEMBERS);
	assert_int_equal(chat_users_online(ch), SCALE_MEMBERS);

	chat_deliver_room(r, s[123], recorder_fn, &rec);
	assert_int_equal(rec.total, SCALE_MEMBERS - 1);
	for (i = 0; i < SCALE_MEMBERS; i++)
		assert_int_equal(rec.hits[i], i == 123 ? 0 : 1);

	outsider = chat_user_get(ch, 0, "outsider");
	chat_member_add(small, outsider);
	chat_member_add(small, chat_user_find(ch, "member00007"));
	assert_true(chat_is_member(r, chat_user_find(ch, "member00000")));
	assert_true(chat_is_member(r, chat_user_find(ch, "MEMBER19999")));
	assert_true(chat_is_member(r, chat_user_find(ch, "member10000")));
	assert_false(chat_is_member(r, outsider));
	assert_true(chat_is_member(small, outsider));
	assert_true(chat_is_member(small, chat_user_find(ch, "member00007")));
	assert_false(chat_is_member(small, chat_user_find(ch, "member00008")));

	for (i = 0; i < SCALE_MEMBERS; i++)
		chat_session_remove(ch, s[i], NULL);
	assert_int_equal(chat_users_online(ch), 0);
	assert_int_equal(chat_room_members(r), SCALE_MEMBERS);
	free(s);
	recorder_free(&rec);
	chat_free(ch);
}

#define GROWTH_USERS	50000

/* The user table grows well past its initial size and still finds all. */
static void
test_hash_growth_with_50000_users(void **state)
{
	struct chat		*ch = chat_new();
	struct chat_session	**s;
	struct chat_user	*u;
	char			 name[32];
	size_t			 i;
	int			 o;

	s = xcalloc(GROWTH_USERS, sizeof *s);
	for (i = 0; i < GROWTH_USERS; i++) {
		snprintf(name, sizeof name, "User%zu", i);
		u = chat_user_get(ch, (int64_t)i, name);
		s[i] = chat_session_add(ch, u, &o, NULL);
	}
	assert_int_equal(chat_users_online(ch), GROWTH_USERS);
	for (i = 0; i < GROWTH_USERS; i++) {
		snprintf(name, sizeof name, "USER%zu", i);
		u = chat_user_find(ch, name);
		assert_non_null(u);
		assert_int_equal(chat_user_id(u), (int64_t)i);
		snprintf(name, sizeof name, "User%zu", i);
		assert_string_equal(chat_user_name(u), name);
	}
	snprintf(name, sizeof name, "user%d", GROWTH_USERS);
	assert_null(chat_user_find(ch, name));

	/* Remove every other user; the rest are still found. */
	for (i = 0; i < GROWTH_USERS; i += 2)
		chat_session_remove(ch, s[i], NULL);
	assert_int_equal(chat_users_online(ch), GROWTH_USERS / 2);
	for (i = 0; i < GROWTH_USERS; i++) {
		snprintf(name, sizeof name, "user%zu", i);
		if (i % 2 == 0)
			assert_null(chat_user_find(ch, name));
		else
			assert_ptr_equal(chat_user_find(ch, name), s[i]->user);
	}
	free(s);
	chat_free(ch);
}

static void
test_free_with_live_sessions_and_null(void **state)
{
	struct chat		*ch = chat_new();
	struct chat_user	*u = chat_user_get(ch, 1, "pat");
	int			 o;

	chat_member_add(chat_room_add(ch, 1, "#z", "t"), u);
	chat_session_add(ch, u, &o, NULL);
	chat_session_add(ch, u, &o, NULL);
	chat_free(ch);		/* ASan reports anything left behind */
	chat_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_user_find_is_case_insensitive_and_keeps_registered_spelling),
		cmocka_unit_test(test_two_sessions_first_last_flags_and_status),
		cmocka_unit_test(
		    test_set_status_copies_text_and_online_resets_it),
		cmocka_unit_test(test_room_add_and_find_case_insensitive),
		cmocka_unit_test(
		    test_member_add_twice_returns_false_second_time),
		cmocka_unit_test(test_member_del_removes_from_room_and_user),
		cmocka_unit_test(
		    test_each_member_and_user_each_room_keep_join_order),
		cmocka_unit_test(
		    test_each_room_sorted_by_name_case_insensitively),
		cmocka_unit_test(
		    test_deliver_room_reaches_every_member_session_except_once),
		cmocka_unit_test(
		    test_deliver_user_reaches_all_its_sessions_except),
		cmocka_unit_test(test_deliver_presence_reaches_room_mates_once),
		cmocka_unit_test(
		    test_deliver_presence_without_rooms_reaches_own_sessions),
		cmocka_unit_test(test_user_lifetime_follows_sessions_and_rooms),
		cmocka_unit_test(test_user_remove_drops_memberships),
		cmocka_unit_test(
		    test_user_get_with_another_id_is_a_fresh_user),
		cmocka_unit_test(test_detached_user_freed_with_last_session),
		cmocka_unit_test(test_users_online_and_rooms_counts),
		cmocka_unit_test(test_scale_room_of_20000_members),
		cmocka_unit_test(test_hash_growth_with_50000_users),
		cmocka_unit_test(test_free_with_live_sessions_and_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
