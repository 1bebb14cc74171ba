/* Unit tests for store.c: open/refuse, migrations, rows, history, commits. */
#include <sys/stat.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store.h"
#include "xmalloc.h"

#define NITEMS(a)	(sizeof (a) / sizeof (a)[0])
#define NOBODY		65534

/* Per test: a fresh directory, the database path in it, an open store. */
struct fixture {
	char		 dir[64];
	char		 path[128];
	struct store	*st;
};

static int
setup(void **state)
{
	struct fixture	*f;

	f = xcalloc(1, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/test_store.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof f->path, "%s/netsockd.db", f->dir);
	*state = f;
	return 0;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	store_free(f->st);
	nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Setup plus an open store. */
static int
setup_open(void **state)
{
	struct fixture	*f;
	char		*cause;

	if (setup(state) != 0)
		return -1;
	f = *state;
	f->st = store_open(f->path, &cause);
	if (f->st == NULL) {
		fprintf(stderr, "store_open: %s\n", cause);
		free(cause);
		return -1;
	}
	return 0;
}

static struct store *
reopen(struct fixture *f)
{
	char	*cause = NULL;

	store_free(f->st);
	f->st = store_open(f->path, &cause);
	if (f->st == NULL)
		fail_msg("reopen: %s", cause);
	assert_null(cause);
	return f->st;
}

/* ------------------------------------------------ raw SQLite, for setup */

static void
raw_exec(const char *path, const char *sql)
{
	sqlite3	*db;
	char	*err = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("raw_exec %s: %s", sql, err);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* The first column of the first row, as text ("" if no row). */
static void
raw_text(const char *path, const char *sql, char *buf, size_t len)
{
	sqlite3		*db;
	sqlite3_stmt	*s;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	buf[0] = '\0';
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != NULL)
		snprintf(buf, len, "%s", sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static long long
raw_int(const char *path, const char *sql)
{
	char	buf[64];

	raw_text(path, sql, buf, sizeof buf);
	return strtoll(buf, NULL, 10);
}

static void
write_file(const char *path, const char *data, size_t len)
{
	int	fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* store_open must fail with exactly "<path>: <reason>". */
static void
assert_refused(const char *path, const char *reason)
{
	struct store	*st;
	char		*cause = NULL, *want;

	st = store_open(path, &cause);
	assert_null(st);
	assert_non_null(cause);
	xasprintf(&want, "%s: %s", path, reason);
	assert_string_equal(cause, want);
	free(want);
	free(cause);
}

/* ------------------------------------------------------- open, refusal */

static void
test_open_fresh_creates_schema_version_1(void **state)
{
	struct fixture	*f = *state;
	char		 buf[512];

	store_free(f->st);
	f->st = NULL;
	assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 1);
	raw_text(f->path, "PRAGMA journal_mode", buf, sizeof buf);
	assert_string_equal(buf, "wal");
	raw_text(f->path, "SELECT group_concat(name, ' ') FROM (SELECT name"
	    " FROM sqlite_schema WHERE name NOT LIKE 'sqlite_autoindex%'"
	    " ORDER BY name)", buf, sizeof buf);
	assert_string_equal(buf, "bans members members_by_user messages "
	    "messages_by_peers messages_by_room rooms sqlite_sequence users");
}

static void
test_open_enforces_foreign_keys(void **state)
{
	struct fixture	*f = *state;

	int64_t		 u;

	/* PRAGMA foreign_keys is per connection: only behaviour shows it. */
	assert_int_equal(store_user_add(f->st, "a", "h", 1, &u), STORE_OK);
	assert_int_equal(store_member_add(f->st, 42, u), STORE_NOT_FOUND);
	assert_int_equal(store_ban_set(f->st, u + 1, "r", 1), STORE_NOT_FOUND);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM members"), 0);
}

static void
test_reopen_keeps_data(void **state)
{
	struct fixture		*f = *state;
	struct store_user	 u;
	int64_t			 uid, rid, mid;

	assert_int_equal(store_user_add(f->st, "Alice", "h1", 1000, &uid),
	    STORE_OK);
	assert_int_equal(store_room_add(f->st, "#Lobby", 2000, &rid),
	    STORE_OK);
	assert_int_equal(store_member_add(f->st, rid, uid), STORE_OK);
	assert_int_equal(store_message_add(f->st, uid, "Alice", rid, 0,
	    "#Lobby", "hello", 5, 3000, &mid), STORE_OK);
	reopen(f);
	assert_int_equal(store_user_find(f->st, "alice", &u), STORE_OK);
	assert_int_equal(u.id, uid);
	assert_string_equal(u.name, "Alice");
	store_user_clear(&u);
	assert_int_equal(store_member_add(f->st, rid, uid), STORE_EXISTS);
	assert_int_equal(store_message_count(f->st), 1);
	assert_int_equal(mid, 1);
}

static void
test_open_refuses_newer_schema_version(void **state)
{
	struct fixture	*f = *state;

	raw_exec(f->path, "CREATE TABLE t(x); PRAGMA user_version = 99;");
	assert_refused(f->path, "database schema version 99 is newer than "
	    "this netsockd supports (1); upgrade netsockd");
	/* Left alone: not migrated, not switched to WAL. */
	assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 99);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_schema"
	    " WHERE name = 'users'"), 0);
}

static void
test_open_refuses_negative_schema_version(void **state)
{
	struct fixture	*f = *state;

	raw_exec(f->path, "PRAGMA user_version = -1;");
	assert_refused(f->path,
	    "database schema version -1 is not one netsockd ever wrote");
	assert_int_equal(raw_int(f->path, "PRAGMA user_version"), -1);
}

static void
test_open_refuses_file_that_is_not_a_database(void **state)
{
	struct fixture	*f = *state;
	char		 text[4096], back[4096];
	size_t		 i;
	int		 fd;

	for (i = 0; i < sizeof text; i++)
		text[i] = i % 64 == 63 ? '\n' : 'a' + i % 26;
	write_file(f->path, text, sizeof text);
	assert_refused(f->path, "file is not a database");
	/* Not a byte changed. */
	fd = open(f->path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, back, sizeof back), (ssize_t)sizeof back);
	assert_int_equal(read(fd, back, 1), 0);
	close(fd);
	assert_memory_equal(back, text, sizeof text);
}

static void
test_open_refuses_corrupt_database(void **state)
{
	struct fixture	*f = *state;
	struct store	*st;
	char		 junk[1024], *cause = NULL, *want;
	int		 fd;

	raw_exec(f->path, "PRAGMA page_size = 1024; CREATE TABLE t(x);"
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
	    " WHERE i < 200) INSERT INTO t SELECT randomblob(100) FROM n;");
	/* Overwrite page 4, a leaf of t: page 1 (the header) stays valid. */
	memset(junk, 0xa5, sizeof junk);
	fd = open(f->path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, junk, sizeof junk, 3 * 1024),
	    (ssize_t)sizeof junk);
	close(fd);

	st = store_open(f->path, &cause);
	assert_null(st);
	assert_non_null(cause);
	xasprintf(&want, "%s: database disk image is malformed (quick_check: ",
	    f->path);
	assert_true(strncmp(cause, want, strlen(want)) == 0);
	free(want);
	free(cause);
}

static void
test_open_refuses_path_in_missing_directory(void **state)
{
	struct fixture	*f = *state;

	snprintf(f->path, sizeof f->path, "%s/missing/netsockd.db", f->dir);
	assert_refused(f->path, "unable to open database file");
}

static void
test_open_refuses_directory(void **state)
{
	struct fixture	*f = *state;

	assert_refused(f->dir, "unable to open database file");
}

/*
 * A read-only file is refused rather than opened read-only.  Root ignores
 * file modes, so as root the open runs in a child that dropped to nobody;
 * where that is not allowed either, the test is skipped.
 */
static void
test_open_refuses_read_only_file(void **state)
{
	struct fixture	*f = *state;
	pid_t		 pid;
	int		 status;

	store_free(f->st);
	f->st = NULL;
	assert_int_equal(chmod(f->path, 0444), 0);
	if (geteuid() != 0) {
		assert_refused(f->path, "attempt to write a readonly database");
		return;
	}
	/* nobody must reach the file, but not write the directory. */
	assert_int_equal(chmod(f->dir, 0755), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store	*st;
		char		*cause = NULL, want[256];

		if (setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
			_exit(77);
		snprintf(want, sizeof want, "%s: %s", f->path,
		    "attempt to write a readonly database");
		st = store_open(f->path, &cause);
		_exit(st == NULL && cause != NULL &&
		    strcmp(cause, want) == 0 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		skip();
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---------------------------------------------------------- migrations */

static void
test_migrate_from_empty_file(void **state)
{
	struct fixture	*f = *state;
	struct store	*st;
	char		*cause = NULL;

	write_file(f->path, "", 0);
	st = store_open(f->path, &cause);
	assert_non_null(st);
	assert_null(cause);
	store_free(st);
	assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 1);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_schema"
	    " WHERE type = 'table' AND name IN ('users', 'bans', 'rooms',"
	    " 'members', 'messages')"), 5);
}

static void
test_migrate_from_version_0_keeps_unrelated_table(void **state)
{
	struct fixture	*f = *state;
	struct store	*st;
	char		*cause = NULL, buf[64];

	raw_exec(f->path, "CREATE TABLE notes(x); INSERT INTO notes"
	    " VALUES ('keep me');");
	st = store_open(f->path, &cause);
	assert_non_null(st);
	assert_int_equal(store_user_add(st, "bob", "h", 1, NULL), STORE_OK);
	store_free(st);
	assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 1);
	raw_text(f->path, "SELECT x FROM notes", buf, sizeof buf);
	assert_string_equal(buf, "keep me");
	raw_text(f->path, "SELECT name FROM users", buf, sizeof buf);
	assert_string_equal(buf, "bob");
}

/* A failing step leaves nothing behind: the version and tables as before. */
static void
test_migrate_failure_rolls_back_whole_step(void **state)
{
	struct fixture	*f = *state;

	raw_exec(f->path, "CREATE TABLE messages(x);");
	assert_refused(f->path,
	    "schema migration failed: table messages already exists");
	assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 0);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_schema"
	    " WHERE name IN ('users', 'bans', 'rooms', 'members')"), 0);
}

/* --------------------------------------------------------------- users */

static void
test_user_add_and_find_case_insensitive(void **state)
{
	struct fixture		*f = *state;
	struct store_user	 u;
	int64_t			 id = 0, id2 = -5;

	assert_int_equal(store_user_add(f->st, "Alice", "hash-a", 1234, &id),
	    STORE_OK);
	assert_int_equal(id, 1);
	assert_int_equal(store_user_add(f->st, "aLICE", "other", 1, &id2),
	    STORE_EXISTS);
	assert_int_equal(id2, -5);
	assert_int_equal(store_user_find(f->st, "ALICE", &u), STORE_OK);
	assert_int_equal(u.id, 1);
	assert_string_equal(u.name, "Alice");
	assert_string_equal(u.hash, "hash-a");
	assert_int_equal(u.created_ms, 1234);
	assert_false(u.banned);
	assert_null(u.ban_reason);
	store_user_clear(&u);
	assert_null(u.name);
	assert_null(u.hash);
	assert_int_equal(u.id, 0);

	u.id = 77;
	assert_int_equal(store_user_find(f->st, "bob", &u), STORE_NOT_FOUND);
	assert_int_equal(u.id, 0);
	assert_null(u.name);
	store_user_clear(&u);
}

static void
test_user_set_hash(void **state)
{
	struct fixture		*f = *state;
	struct store_user	 u;
	int64_t			 id;

	assert_int_equal(store_user_add(f->st, "carol", "old", 1, &id),
	    STORE_OK);
	assert_int_equal(store_user_set_hash(f->st, id, "new"), STORE_OK);
	assert_int_equal(store_user_find(f->st, "Carol", &u), STORE_OK);
	assert_string_equal(u.hash, "new");
	store_user_clear(&u);
	assert_int_equal(store_user_set_hash(f->st, id + 1, "x"),
	    STORE_NOT_FOUND);
}

struct member_seen {
	char	text[512];
};

static void
member_cb(int64_t room_id, int64_t user_id, const char *name, void *arg)
{
	struct member_seen	*m = arg;
	size_t			 used = strlen(m->text);

	snprintf(m->text + used, sizeof m->text - used, "%s%lld/%lld/%s",
	    used == 0 ? "" : " ", (long long)room_id, (long long)user_id, name);
}

/*
 * History pages in the calling convention the tests below were written
 * for: 0 is no bound for before and for after, rows come oldest first to
 * a callback that cannot stop them.  The rows are copied as the store
 * hands them over (nearest the anchor first), then replayed oldest first.
 */
typedef void	hist_fn(const struct store_message *, void *);

struct hist_copy {
	struct store_message	 rows[512];
	size_t			 n;
};

static bool
hist_copy_cb(const struct store_message *m, void *arg)
{
	struct hist_copy	*hc = arg;
	struct store_message	*r;
	char			*content;

	assert_true(hc->n < NITEMS(hc->rows));
	r = &hc->rows[hc->n++];
	*r = *m;
	r->from = xstrdup(m->from);
	r->to = xstrdup(m->to);
	content = xmalloc(m->content_len + 1);
	memcpy(content, m->content, m->content_len + 1);
	r->content = content;
	return true;
}

static void
hist_replay(struct hist_copy *hc, bool newest_first, hist_fn *cb, void *arg)
{
	struct store_message	*r;
	size_t			 i;

	for (i = 0; i < hc->n; i++) {
		r = &hc->rows[newest_first ? hc->n - 1 - i : i];
		cb(r, arg);
	}
	for (i = 0; i < hc->n; i++) {
		free((char *)hc->rows[i].from);
		free((char *)hc->rows[i].to);
		free((char *)hc->rows[i].content);
	}
}

static int
hist_room(struct store *st, int64_t room, int64_t before, int64_t after,
    int limit, hist_fn *cb, void *arg)
{
	struct store_page	 pg = { before, after, after != 0, limit, 0 };
	struct hist_copy	*hc = xcalloc(1, sizeof *hc);
	bool			 more;
	int			 rc;

	rc = store_history_room(st, room, &pg, hist_copy_cb, hc, &more);
	hist_replay(hc, !pg.has_after, cb, arg);
	free(hc);
	return rc;
}

static int
hist_direct(struct store *st, int64_t a, int64_t b, int64_t before,
    int64_t after, int limit, hist_fn *cb, void *arg)
{
	struct store_page	 pg = { before, after, after != 0, limit, 0 };
	struct hist_copy	*hc = xcalloc(1, sizeof *hc);
	bool			 more;
	int			 rc;

	rc = store_history_direct(st, a, b, &pg, hist_copy_cb, hc, &more);
	hist_replay(hc, !pg.has_after, cb, arg);
	free(hc);
	return rc;
}

struct hist {
	int64_t	ids[256];
	char	from[256][16];
	char	to[256][16];
	size_t	n;
};

static void
hist_cb(const struct store_message *m, void *arg)
{
	struct hist	*h = arg;

	assert_true(h->n < NITEMS(h->ids));
	assert_int_equal(strlen(m->content), m->content_len);
	h->ids[h->n] = m->id;
	snprintf(h->from[h->n], sizeof h->from[0], "%s", m->from);
	snprintf(h->to[h->n], sizeof h->to[0], "%s", m->to);
	h->n++;
}

static void
test_user_del_cascades_but_keeps_messages(void **state)
{
	struct fixture		*f = *state;
	struct store_user	 u;
	struct member_seen	 seen = { "" };
	struct hist		 h = { .n = 0 };
	int64_t			 a, b, r, m1, m2;

	assert_int_equal(store_user_add(f->st, "Alice", "h", 1, &a), STORE_OK);
	assert_int_equal(store_user_add(f->st, "bob", "h", 1, &b), STORE_OK);
	assert_int_equal(store_room_add(f->st, "#r", 1, &r), STORE_OK);
	assert_int_equal(store_member_add(f->st, r, a), STORE_OK);
	assert_int_equal(store_member_add(f->st, r, b), STORE_OK);
	assert_int_equal(store_ban_set(f->st, a, "spam", 5), STORE_OK);
	assert_int_equal(store_message_add(f->st, a, "Alice", r, 0, "#r",
	    "in room", 7, 10, &m1), STORE_OK);
	assert_int_equal(store_message_add(f->st, a, "Alice", 0, b, "bob",
	    "direct", 6, 11, &m2), STORE_OK);

	assert_int_equal(store_user_del(f->st, a), STORE_OK);
	assert_int_equal(store_user_find(f->st, "alice", &u), STORE_NOT_FOUND);
	assert_int_equal(store_member_list(f->st, member_cb, &seen), STORE_OK);
	assert_string_equal(seen.text, "1/2/bob");
	assert_int_equal(store_ban_clear(f->st, a), STORE_NOT_FOUND);
	assert_int_equal(store_user_del(f->st, a), STORE_NOT_FOUND);

	assert_int_equal(hist_room(f->st, r, 0, 0, 50, hist_cb, &h),
	    STORE_OK);
	assert_int_equal(h.n, 1);
	assert_int_equal(h.ids[0], m1);
	assert_string_equal(h.from[0], "Alice");
	h.n = 0;
	assert_int_equal(hist_direct(f->st, b, a, 0, 0, 50, hist_cb,
	    &h), STORE_OK);
	assert_int_equal(h.n, 1);
	assert_int_equal(h.ids[0], m2);
	assert_int_equal(store_message_count(f->st), 2);
	/* The name is free again. */
	assert_int_equal(store_user_add(f->st, "ALICE", "h", 2, NULL),
	    STORE_OK);
}

struct user_seen {
	char	text[512];
};

static void
user_cb(const struct store_user *u, void *arg)
{
	struct user_seen	*s = arg;
	size_t			 used = strlen(s->text);

	snprintf(s->text + used, sizeof s->text - used, "%s%lld:%s:%s:%lld:%s",
	    used == 0 ? "" : " ", (long long)u->id, u->name, u->hash,
	    (long long)u->created_ms,
	    u->banned ? u->ban_reason : "-");
}

static void
test_user_list_ordered_by_name_nocase(void **state)
{
	struct fixture		*f = *state;
	struct user_seen	 seen = { "" };
	int64_t			 bob;

	assert_int_equal(store_user_list(f->st, user_cb, &seen), STORE_OK);
	assert_string_equal(seen.text, "");
	assert_int_equal(store_user_add(f->st, "bob", "hb", 10, &bob),
	    STORE_OK);
	assert_int_equal(store_user_add(f->st, "Alice", "ha", 20, NULL),
	    STORE_OK);
	assert_int_equal(store_user_add(f->st, "carol", "hc", 30, NULL),
	    STORE_OK);
	assert_int_equal(store_ban_set(f->st, bob, "flood", 40), STORE_OK);
	assert_int_equal(store_user_list(f->st, user_cb, &seen), STORE_OK);
	assert_string_equal(seen.text,
	    "2:Alice:ha:20:- 1:bob:hb:10:flood 3:carol:hc:30:-");
}

/* ---------------------------------------------------------------- bans */

static void
test_ban_set_update_clear(void **state)
{
	struct fixture		*f = *state;
	struct store_user	 u;
	int64_t			 id;

	assert_int_equal(store_user_add(f->st, "mallory", "h", 1, &id),
	    STORE_OK);
	assert_int_equal(store_ban_set(f->st, id, "spam", 100), STORE_OK);
	assert_int_equal(store_user_find(f->st, "MALLORY", &u), STORE_OK);
	assert_true(u.banned);
	assert_string_equal(u.ban_reason, "spam");
	store_user_clear(&u);
	assert_null(u.ban_reason);

	assert_int_equal(store_ban_set(f->st, id, "worse", 200), STORE_OK);
	assert_int_equal(store_user_find(f->st, "mallory", &u), STORE_OK);
	assert_string_equal(u.ban_reason, "worse");
	store_user_clear(&u);

	assert_int_equal(store_ban_clear(f->st, id), STORE_OK);
	assert_int_equal(store_user_find(f->st, "mallory", &u), STORE_OK);
	assert_false(u.banned);
	assert_null(u.ban_reason);
	store_user_clear(&u);
	assert_int_equal(store_ban_clear(f->st, id), STORE_NOT_FOUND);
	assert_int_equal(store_ban_set(f->st, id + 1, "nobody", 1),
	    STORE_NOT_FOUND);
}

/* --------------------------------------------------------------- rooms */

struct room_seen {
	char	text[512];
};

static void
room_cb(const struct store_room *r, void *arg)
{
	struct room_seen	*s = arg;
	size_t			 used = strlen(s->text);

	snprintf(s->text + used, sizeof s->text - used, "%s%lld:%s:%s:%lld",
	    used == 0 ? "" : " ", (long long)r->id, r->name, r->topic,
	    (long long)r->created_ms);
}

static void
test_rooms_add_duplicate_topic_list(void **state)
{
	struct fixture		*f = *state;
	struct room_seen	 seen = { "" };
	int64_t			 b, a, c;

	assert_int_equal(store_room_add(f->st, "#b", 1, &b), STORE_OK);
	assert_int_equal(store_room_add(f->st, "#Alpha", 2, &a), STORE_OK);
	assert_int_equal(store_room_add(f->st, "#c", 3, &c), STORE_OK);
	assert_int_equal(b, 1);
	assert_int_equal(a, 2);
	assert_int_equal(c, 3);
	assert_int_equal(store_room_add(f->st, "#ALPHA", 4, NULL),
	    STORE_EXISTS);
	assert_int_equal(store_room_set_topic(f->st, a, "first things"),
	    STORE_OK);
	assert_int_equal(store_room_set_topic(f->st, 99, "x"),
	    STORE_NOT_FOUND);
	assert_int_equal(store_room_list(f->st, room_cb, &seen), STORE_OK);
	assert_string_equal(seen.text,
	    "2:#Alpha:first things:2 1:#b::1 3:#c::3");
}

/* ------------------------------------------------------------- members */

static void
test_members_add_duplicate_del_list(void **state)
{
	struct fixture		*f = *state;
	struct member_seen	 seen = { "" };
	int64_t			 u1, u2, r1, r2;

	assert_int_equal(store_user_add(f->st, "zed", "h", 1, &u1), STORE_OK);
	assert_int_equal(store_user_add(f->st, "Amy", "h", 1, &u2), STORE_OK);
	assert_int_equal(store_room_add(f->st, "#one", 1, &r1), STORE_OK);
	assert_int_equal(store_room_add(f->st, "#two", 1, &r2), STORE_OK);

	assert_int_equal(store_member_add(f->st, r1, u1), STORE_OK);
	assert_int_equal(store_member_add(f->st, r1, u2), STORE_OK);
	assert_int_equal(store_member_add(f->st, r2, u1), STORE_OK);
	assert_int_equal(store_member_add(f->st, r1, u1), STORE_EXISTS);
	assert_int_equal(store_member_add(f->st, r1, 99), STORE_NOT_FOUND);
	assert_int_equal(store_member_add(f->st, 99, u1), STORE_NOT_FOUND);
	assert_int_equal(store_member_list(f->st, member_cb, &seen), STORE_OK);
	assert_string_equal(seen.text, "1/2/Amy 1/1/zed 2/1/zed");

	assert_int_equal(store_member_del(f->st, r2, u1), STORE_OK);
	assert_int_equal(store_member_del(f->st, r2, u1), STORE_NOT_FOUND);
	seen.text[0] = '\0';
	assert_int_equal(store_member_list(f->st, member_cb, &seen), STORE_OK);
	assert_string_equal(seen.text, "1/2/Amy 1/1/zed");
}

/* ------------------------------------------------------------ messages */

static void
test_message_ids_increase_and_are_never_reused(void **state)
{
	struct fixture	*f = *state;
	int64_t		 a, b, r, id, last = 0;
	int		 i;

	assert_int_equal(store_user_add(f->st, "a", "h", 1, &a), STORE_OK);
	assert_int_equal(store_user_add(f->st, "b", "h", 1, &b), STORE_OK);
	assert_int_equal(store_room_add(f->st, "#r", 1, &r), STORE_OK);
	for (i = 0; i < 6; i++) {
		if (i % 2 == 0)
			assert_int_equal(store_message_add(f->st, a, "a", r, 0,
			    "#r", "x", 1, i, &id), STORE_OK);
		else
			assert_int_equal(store_message_add(f->st, a, "a", 0, b,
			    "b", "x", 1, i, &id), STORE_OK);
		assert_int_equal(id, last + 1);
		last = id;
	}
	store_free(f->st);
	f->st = NULL;
	raw_exec(f->path, "DELETE FROM messages WHERE id >= 5;");
	reopen(f);
	assert_int_equal(store_message_count(f->st), 4);
	assert_int_equal(store_message_add(f->st, b, "b", r, 0, "#r", "y", 1,
	    9, &id), STORE_OK);
	assert_int_equal(id, 7);
	assert_int_equal(store_message_count(f->st), 5);
}

static void
test_message_add_rejects_bad_target(void **state)
{
	struct fixture	*f = *state;
	int64_t		 a, b, r, id = -1;

	assert_int_equal(store_user_add(f->st, "a", "h", 1, &a), STORE_OK);
	assert_int_equal(store_user_add(f->st, "b", "h", 1, &b), STORE_OK);
	assert_int_equal(store_room_add(f->st, "#r", 1, &r), STORE_OK);
	assert_int_equal(store_message_add(f->st, a, "a", r, b, "#r", "x", 1,
	    1, &id), STORE_ERROR);
	assert_int_equal(store_message_add(f->st, a, "a", 0, 0, "#r", "x", 1,
	    1, &id), STORE_ERROR);
	assert_int_equal(store_message_add(f->st, a, "a", r + 1, 0, "#gone",
	    "x", 1, 1, &id), STORE_NOT_FOUND);
	assert_int_equal(id, -1);
	assert_int_equal(store_message_count(f->st), 0);
}

struct content_seen {
	size_t	n;
	size_t	len[4];
	char	data[4][8];
};

static void
content_cb(const struct store_message *m, void *arg)
{
	struct content_seen	*s = arg;

	assert_true(s->n < 4 && m->content_len < 8);
	s->len[s->n] = m->content_len;
	memcpy(s->data[s->n], m->content, m->content_len + 1);
	s->n++;
}

static void
test_message_content_length_is_exact(void **state)
{
	struct fixture		*f = *state;
	struct content_seen	 s = { .n = 0 };
	int64_t			 a, b;

	assert_int_equal(store_user_add(f->st, "a", "h", 1, &a), STORE_OK);
	assert_int_equal(store_user_add(f->st, "b", "h", 1, &b), STORE_OK);
	assert_int_equal(store_message_add(f->st, a, "a", 0, b, "b",
	    "ab\0cd", 5, 1, NULL), STORE_OK);
	assert_int_equal(store_message_add(f->st, b, "b", 0, a, "a",
	    "", 0, 2, NULL), STORE_OK);
	assert_int_equal(hist_direct(f->st, a, b, 0, 0, 10,
	    content_cb, &s), STORE_OK);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.len[0], 5);
	assert_memory_equal(s.data[0], "ab\0cd", 6);
	assert_int_equal(s.len[1], 0);
	assert_int_equal(s.data[1][0], '\0');
}

/* ------------------------------------------------------------- history */

/*
 * 30 messages: every third in #one (10), every third in #two, the rest
 * direct, alternating a->b, b->a and (every fourth) a->c.
 */
struct history_world {
	int64_t	a, b, c, r1, r2;
	int64_t	room[10];
	size_t	nroom;
	int64_t	ab[10];
	size_t	nab;
	int64_t	ac[10];
	size_t	nac;
};

static void
history_world(struct store *st, struct history_world *w)
{
	int64_t	id;
	int	i, d = 0;

	memset(w, 0, sizeof *w);
	assert_int_equal(store_user_add(st, "a", "h", 1, &w->a), STORE_OK);
	assert_int_equal(store_user_add(st, "b", "h", 1, &w->b), STORE_OK);
	assert_int_equal(store_user_add(st, "c", "h", 1, &w->c), STORE_OK);
	assert_int_equal(store_room_add(st, "#one", 1, &w->r1), STORE_OK);
	assert_int_equal(store_room_add(st, "#two", 1, &w->r2), STORE_OK);
	for (i = 0; i < 30; i++) {
		switch (i % 3) {
		case 0:
			assert_int_equal(store_message_add(st, w->b, "b",
			    w->r2, 0, "#two", "t", 1, i, &id), STORE_OK);
			break;
		case 1:
			assert_int_equal(store_message_add(st, w->a, "a",
			    w->r1, 0, "#one", "o", 1, i, &id), STORE_OK);
			w->room[w->nroom++] = id;
			break;
		default:
			if (d % 4 == 3) {
				assert_int_equal(store_message_add(st, w->a,
				    "a", 0, w->c, "c", "d", 1, i, &id),
				    STORE_OK);
				w->ac[w->nac++] = id;
			} else if (d % 2 == 0) {
				assert_int_equal(store_message_add(st, w->a,
				    "a", 0, w->b, "b", "d", 1, i, &id),
				    STORE_OK);
				w->ab[w->nab++] = id;
			} else {
				assert_int_equal(store_message_add(st, w->b,
				    "b", 0, w->a, "a", "d", 1, i, &id),
				    STORE_OK);
				w->ab[w->nab++] = id;
			}
			d++;
			break;
		}
	}
	assert_int_equal(w->nroom, 10);
	assert_int_equal(w->nab, 8);
	assert_int_equal(w->nac, 2);
}

/*
 * One history query against the ids of one conversation: bounds are
 * indexes into ids (-1: no bound), the expected answer is ids[first ..
 * first + count - 1].
 */
struct history_case {
	int	before;
	int	after;
	int	limit;
	int	first;
	int	count;
};

static const struct history_case history_room_cases[] = {
	{ -1, -1, 50, 0, 10 },	/* neither: all, oldest first */
	{ -1, -1, 3, 7, 3 },	/* neither, limited: the newest 3 */
	{ 5, -1, 3, 2, 3 },	/* before: the newest 3 below */
	{ 5, -1, 50, 0, 5 },
	{ 0, -1, 50, 0, 0 },	/* nothing before the first */
	{ -1, 5, 3, 6, 3 },	/* after: the oldest 3 above */
	{ -1, 5, 50, 6, 4 },
	{ -1, 9, 50, 0, 0 },	/* nothing after the last */
	{ 7, 2, 50, 3, 4 },	/* both: strictly between */
	{ 7, 2, 2, 3, 2 },	/* both, limited: the oldest of them */
	{ 3, 2, 50, 0, 0 },	/* adjacent: nothing between */
	{ -1, -1, 0, 0, 0 },	/* limit 0: nothing */
};

static void
check_history_case(const int64_t *ids, const struct history_case *c,
    const struct hist *h, size_t i)
{
	int	k;

	if (h->n != (size_t)c->count)
		fail_msg("case %zu: %zu rows, want %d", i, h->n, c->count);
	for (k = 0; k < c->count; k++) {
		if (h->ids[k] != ids[c->first + k])
			fail_msg("case %zu row %d: id %lld, want %lld", i, k,
			    (long long)h->ids[k],
			    (long long)ids[c->first + k]);
	}
}

static void
test_history_room_bounds_and_limits(void **state)
{
	struct fixture			*f = *state;
	struct history_world		 w;
	const struct history_case	*c;
	struct hist			 h;
	size_t				 i;

	history_world(f->st, &w);
	for (i = 0; i < NITEMS(history_room_cases); i++) {
		c = &history_room_cases[i];
		h.n = 0;
		assert_int_equal(hist_room(f->st, w.r1,
		    c->before < 0 ? 0 : w.room[c->before],
		    c->after < 0 ? 0 : w.room[c->after], c->limit,
		    hist_cb, &h), STORE_OK);
		check_history_case(w.room, c, &h, i);
	}
	/* Bounds that are not ids of this room work as well. */
	h.n = 0;
	assert_int_equal(hist_room(f->st, w.r1, w.room[8] - 1,
	    w.room[5] + 1, 50, hist_cb, &h), STORE_OK);
	assert_int_equal(h.n, 2);
	assert_int_equal(h.ids[0], w.room[6]);
	assert_int_equal(h.ids[1], w.room[7]);
	assert_string_equal(h.from[0], "a");
	assert_string_equal(h.to[0], "#one");
	/* Another room, a room with nothing. */
	h.n = 0;
	assert_int_equal(hist_room(f->st, w.r2, 0, 0, 50, hist_cb,
	    &h), STORE_OK);
	assert_int_equal(h.n, 10);
	assert_string_equal(h.to[9], "#two");
	h.n = 0;
	assert_int_equal(hist_room(f->st, 99, 0, 0, 50, hist_cb,
	    &h), STORE_OK);
	assert_int_equal(h.n, 0);
}

static const struct history_case history_direct_cases[] = {
	{ -1, -1, 50, 0, 8 },
	{ -1, -1, 2, 6, 2 },
	{ 4, -1, 3, 1, 3 },
	{ -1, 4, 2, 5, 2 },
	{ 6, 1, 50, 2, 4 },
	{ 6, 1, 1, 2, 1 },
};

static void
test_history_direct_symmetric_and_private(void **state)
{
	struct fixture			*f = *state;
	struct history_world		 w;
	const struct history_case	*c;
	struct hist			 h, hr;
	size_t				 i;
	int				 k;

	history_world(f->st, &w);
	for (i = 0; i < NITEMS(history_direct_cases); i++) {
		c = &history_direct_cases[i];
		h.n = hr.n = 0;
		assert_int_equal(hist_direct(f->st, w.a, w.b,
		    c->before < 0 ? 0 : w.ab[c->before],
		    c->after < 0 ? 0 : w.ab[c->after], c->limit,
		    hist_cb, &h), STORE_OK);
		check_history_case(w.ab, c, &h, i);
		assert_int_equal(hist_direct(f->st, w.b, w.a,
		    c->before < 0 ? 0 : w.ab[c->before],
		    c->after < 0 ? 0 : w.ab[c->after], c->limit,
		    hist_cb, &hr), STORE_OK);
		check_history_case(w.ab, c, &hr, i);
	}
	/* Both directions are in one conversation, with their names. */
	h.n = 0;
	assert_int_equal(hist_direct(f->st, w.b, w.a, 0, 0, 2,
	    hist_cb, &h), STORE_OK);
	for (k = 0; k < 2; k++) {
		assert_true(strcmp(h.from[k], "a") == 0 ?
		    strcmp(h.to[k], "b") == 0 : strcmp(h.to[k], "a") == 0);
	}
	assert_string_not_equal(h.from[0], h.from[1]);
	h.n = 0;
	assert_int_equal(hist_direct(f->st, w.c, w.a, 0, 0, 50,
	    hist_cb, &h), STORE_OK);
	assert_int_equal(h.n, 2);
	assert_int_equal(h.ids[0], w.ac[0]);
	assert_int_equal(h.ids[1], w.ac[1]);
	h.n = 0;
	assert_int_equal(hist_direct(f->st, w.b, w.c, 0, 0, 50,
	    hist_cb, &h), STORE_OK);
	assert_int_equal(h.n, 0);
}

/* Rows as the store hands them over, up to 'stop_at' of them. */
struct page_seen {
	int64_t	ids[16];
	size_t	n;
	size_t	stop_at;	/* refuse the row after this many; 0: never */
};

static bool
page_cb(const struct store_message *m, void *arg)
{
	struct page_seen	*p = arg;

	if (p->stop_at != 0 && p->n == p->stop_at)
		return false;
	assert_true(p->n < NITEMS(p->ids));
	p->ids[p->n++] = m->id;
	return true;
}

struct page_case {
	int	before;		/* index in room[], or -1 */
	int	after;		/* index in room[], -1: none, -2: after 0 */
	int	limit;
	size_t	max_bytes;
	size_t	stop_at;
	int	first;		/* index in room[] of the first row handed */
	int	step;		/* +1 oldest first, -1 newest first */
	int	count;
	bool	more;
};

/*
 * #one holds 10 messages of "o" from "a": 6 bytes of text each.  Pages
 * come nearest the anchor first, and say whether rows lie beyond them.
 */
static const struct page_case page_cases[] = {
	{ -1, -1, 3, 0, 0, 9, -1, 3, true },	/* newest 3 of 10 */
	{ -1, -1, 10, 0, 0, 9, -1, 10, false },	/* exactly all */
	{ -1, -1, 50, 0, 0, 9, -1, 10, false },
	{ -1, -2, 3, 0, 0, 0, 1, 3, true },	/* after 0: the oldest */
	{ -1, -2, 10, 0, 0, 0, 1, 10, false },
	{ -1, -2, 50, 0, 0, 0, 1, 10, false },
	{ -1, 5, 4, 0, 0, 6, 1, 4, false },	/* after: to the end */
	{ -1, 5, 3, 0, 0, 6, 1, 3, true },
	{ -1, 9, 3, 0, 0, 0, 1, 0, false },	/* nothing after the last */
	{ 5, -1, 5, 0, 0, 4, -1, 5, false },	/* before: to the start */
	{ 5, -1, 4, 0, 0, 4, -1, 4, true },
	{ 0, -1, 4, 0, 0, 0, -1, 0, false },	/* nothing before the first */
	{ 7, 2, 4, 0, 0, 3, 1, 4, false },	/* both: the range is done */
	{ 7, 2, 3, 0, 0, 3, 1, 3, true },	/* more within the range */
	{ 7, -2, 7, 0, 0, 0, 1, 7, false },	/* after 0 and before */
	{ -1, -1, 10, 13, 0, 9, -1, 2, true },	/* text past 13 bytes */
	{ -1, -2, 10, 12, 0, 0, 1, 2, true },	/* exactly 12 fit */
	{ -1, -1, 10, 60, 0, 9, -1, 10, false },	/* all 60 fit */
	{ -1, -1, 10, 1, 0, 9, -1, 1, true },	/* the first row always */
	{ -1, -2, 1, 1, 0, 0, 1, 1, true },
	{ 1, -1, 10, 1, 0, 0, -1, 1, false },	/* and alone: no more */
	{ -1, -1, 10, 0, 2, 9, -1, 2, true },	/* cb stops: more */
	{ -1, 6, 10, 0, 3, 7, 1, 3, false },	/* stops after the last */
};

static void
test_history_pages_say_more(void **state)
{
	struct fixture		*f = *state;
	struct history_world	 w;
	const struct page_case	*c;
	struct store_page	 pg;
	struct page_seen	 p;
	size_t			 i;
	int			 k;
	bool			 more;

	history_world(f->st, &w);
	for (i = 0; i < NITEMS(page_cases); i++) {
		c = &page_cases[i];
		memset(&pg, 0, sizeof pg);
		memset(&p, 0, sizeof p);
		pg.before = c->before < 0 ? 0 : w.room[c->before];
		pg.has_after = c->after != -1;
		pg.after = c->after < 0 ? 0 : w.room[c->after];
		pg.limit = c->limit;
		pg.max_bytes = c->max_bytes;
		p.stop_at = c->stop_at;
		more = !c->more;
		assert_int_equal(store_history_room(f->st, w.r1, &pg, page_cb,
		    &p, &more), STORE_OK);
		if (p.n != (size_t)c->count || more != c->more)
			fail_msg("case %zu: %zu rows, more %d; want %d, %d", i,
			    p.n, more, c->count, c->more);
		for (k = 0; k < c->count; k++)
			assert_int_equal(p.ids[k],
			    w.room[c->first + k * c->step]);
	}
	/* Direct pages too: after 0 is the conversation's beginning. */
	memset(&pg, 0, sizeof pg);
	memset(&p, 0, sizeof p);
	pg.has_after = true;
	pg.limit = 2;
	assert_int_equal(store_history_direct(f->st, w.b, w.a, &pg, page_cb,
	    &p, &more), STORE_OK);
	assert_int_equal(p.n, 2);
	assert_int_equal(p.ids[0], w.ab[0]);
	assert_int_equal(p.ids[1], w.ab[1]);
	assert_true(more);
	pg.limit = (int)w.nab;
	p.n = 0;
	assert_int_equal(store_history_direct(f->st, w.a, w.b, &pg, page_cb,
	    &p, &more), STORE_OK);
	assert_int_equal(p.n, w.nab);
	assert_false(more);
}

/* A row longer than the whole budget still makes a page on its own. */
static void
test_history_page_first_row_always(void **state)
{
	struct fixture		*f = *state;
	struct store_page	 pg = { 0 };
	struct page_seen	 p = { .n = 0 };
	char			 big[5000];
	int64_t			 a, r, id[3];
	bool			 more;

	memset(big, 'x', sizeof big);
	assert_int_equal(store_user_add(f->st, "a", "h", 1, &a), STORE_OK);
	assert_int_equal(store_room_add(f->st, "#r", 1, &r), STORE_OK);
	assert_int_equal(store_message_add(f->st, a, "a", r, 0, "#r", big,
	    sizeof big, 1, &id[0]), STORE_OK);
	assert_int_equal(store_message_add(f->st, a, "a", r, 0, "#r", "s", 1,
	    2, &id[1]), STORE_OK);
	assert_int_equal(store_message_add(f->st, a, "a", r, 0, "#r", big,
	    sizeof big, 3, &id[2]), STORE_OK);
	pg.has_after = true;
	pg.limit = 50;
	pg.max_bytes = 1000;
	assert_int_equal(store_history_room(f->st, r, &pg, page_cb, &p,
	    &more), STORE_OK);
	assert_int_equal(p.n, 1);
	assert_int_equal(p.ids[0], id[0]);
	assert_true(more);
	/* Paging on: the small one, then the big one alone. */
	pg.after = id[0];
	p.n = 0;
	assert_int_equal(store_history_room(f->st, r, &pg, page_cb, &p,
	    &more), STORE_OK);
	assert_int_equal(p.n, 1);
	assert_int_equal(p.ids[0], id[1]);
	assert_true(more);
	pg.after = id[1];
	p.n = 0;
	assert_int_equal(store_history_room(f->st, r, &pg, page_cb, &p,
	    &more), STORE_OK);
	assert_int_equal(p.n, 1);
	assert_int_equal(p.ids[0], id[2]);
	assert_false(more);
}

static void
test_history_plans_use_index_range_scans(void **state)
{
	static const struct {
		int		 which;
		const char	*index;
	} plans[] = {
		{ STORE_EXPLAIN_HISTORY_ROOM_AFTER, "messages_by_room" },
		{ STORE_EXPLAIN_HISTORY_ROOM_BEFORE, "messages_by_room" },
		{ STORE_EXPLAIN_HISTORY_DIRECT_AFTER, "messages_by_peers" },
		{ STORE_EXPLAIN_HISTORY_DIRECT_BEFORE, "messages_by_peers" },
	};
	struct fixture	*f = *state;
	char		 buf[4096];
	size_t		 i;

	for (i = 0; i < NITEMS(plans); i++) {
		assert_int_equal(store_explain(f->st, plans[i].which, buf,
		    sizeof buf), STORE_OK);
		print_message("# plan %d: %s\n", plans[i].which, buf);
		assert_non_null(strstr(buf, plans[i].index));
		assert_non_null(strstr(buf, "SEARCH messages"));
		assert_true(strstr(buf, "USING INDEX") != NULL ||
		    strstr(buf, "USING COVERING INDEX") != NULL);
		assert_null(strstr(buf, "SCAN messages"));
		/* Ordered by the index itself: no sort step. */
		assert_null(strstr(buf, "TEMP B-TREE"));
	}
	assert_int_equal(store_explain(f->st, 4, buf, sizeof buf),
	    STORE_ERROR);
}

/* -------------------------------------------------------- transactions */

static void
test_group_commit_makes_all_visible(void **state)
{
	struct fixture	*f = *state;
	struct hist	 h = { .n = 0 };
	int64_t		 a, r, id;
	int		 i;

	assert_int_equal(store_user_add(f->st, "a", "h", 1, &a), STORE_OK);
	assert_int_equal(store_room_add(f->st, "#r", 1, &r), STORE_OK);
	assert_int_equal(store_begin(f->st), STORE_OK);
	for (i = 0; i < 100; i++) {
		assert_int_equal(store_message_add(f->st, a, "a", r, 0, "#r",
		    "m", 1, i, &id), STORE_OK);
		assert_int_equal(id, i + 1);
	}
	/* Counted only once durable. */
	assert_int_equal(store_message_count(f->st), 0);
	assert_int_equal(store_commit(f->st), STORE_OK);
	assert_int_equal(store_message_count(f->st), 100);
	reopen(f);
	assert_int_equal(store_message_count(f->st), 100);
	assert_int_equal(hist_room(f->st, r, 0, 0, 200, hist_cb, &h),
	    STORE_OK);
	assert_int_equal(h.n, 100);
	for (i = 0; i < 100; i++)
		assert_int_equal(h.ids[i], i + 1);
}

static void
test_rollback_discards_everything(void **state)
{
	struct fixture		*f = *state;
	struct hist		 h = { .n = 0 };
	struct store_user	 u;
	int64_t			 a, r;
	int			 i;

	assert_int_equal(store_user_add(f->st, "a", "h", 1, &a), STORE_OK);
	assert_int_equal(store_room_add(f->st, "#r", 1, &r), STORE_OK);
	assert_int_equal(store_message_add(f->st, a, "a", r, 0, "#r", "m", 1,
	    1, NULL), STORE_OK);
	assert_int_equal(store_message_count(f->st), 1);

	assert_int_equal(store_begin(f->st), STORE_OK);
	for (i = 0; i < 10; i++)
		assert_int_equal(store_message_add(f->st, a, "a", r, 0, "#r",
		    "m", 1, i, NULL), STORE_OK);
	assert_int_equal(store_user_add(f->st, "ghost", "h", 1, NULL),
	    STORE_OK);
	assert_int_equal(store_rollback(f->st), STORE_OK);
	assert_int_equal(store_message_count(f->st), 1);
	assert_int_equal(hist_room(f->st, r, 0, 0, 50, hist_cb, &h),
	    STORE_OK);
	assert_int_equal(h.n, 1);
	assert_int_equal(store_user_find(f->st, "ghost", &u), STORE_NOT_FOUND);
	/* And the store carries on in autocommit mode. */
	assert_int_equal(store_message_add(f->st, a, "a", r, 0, "#r", "m", 1,
	    2, NULL), STORE_OK);
	assert_int_equal(store_message_count(f->st), 2);
}

static void
test_transaction_misuse_is_an_error(void **state)
{
	struct fixture	*f = *state;

	assert_int_equal(store_commit(f->st), STORE_ERROR);
	assert_int_equal(store_rollback(f->st), STORE_OK);
	assert_int_equal(store_begin(f->st), STORE_OK);
	assert_int_equal(store_begin(f->st), STORE_ERROR);
	assert_int_equal(store_commit(f->st), STORE_OK);
	assert_int_equal(store_user_add(f->st, "a", "h", 1, NULL), STORE_OK);
}

/* -------------------------------------------------------- counters, size */

/*
 * With SQLite's automatic checkpoint replaced by the checkpoint thread,
 * committed pages still reach the database file (and not only the WAL),
 * while the store stays open.  The thread's pace is not ours to know, so
 * wait for it, boundedly.
 */
static void
test_checkpoints_reach_the_database_file(void **state)
{
	struct fixture	*f = *state;
	struct stat	 sb;
	char		 content[2000];
	int64_t		 uid, rid, mid;
	int		 i, tries;

	memset(content, 'x', sizeof content);
	assert_int_equal(store_user_add(f->st, "Alice", "h", 1, &uid),
	    STORE_OK);
	assert_int_equal(store_room_add(f->st, "#r", 1, &rid), STORE_OK);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_true(sb.st_size < 1024 * 1024);
	/* About 6 MB in 3,000 commits: the WAL passes 1,000 pages often. */
	for (i = 0; i < 3000; i++)
		assert_int_equal(store_message_add(f->st, uid, "Alice", rid, 0,
		    "#r", content, sizeof content, i, &mid), STORE_OK);
	for (tries = 0; tries < 600; tries++) {
		assert_int_equal(stat(f->path, &sb), 0);
		if (sb.st_size >= 4 * 1024 * 1024)
			break;
		/* A commit lets SQLite start the WAL over once copied. */
		usleep(100 * 1000);
	}
	assert_true(sb.st_size >= 4 * 1024 * 1024);
	assert_int_equal(store_message_count(f->st), 3000);
}

static void
test_message_count_and_size_grow(void **state)
{
	struct fixture	*f = *state;
	char		 content[1000];
	int64_t		 a, r, before, after;
	int		 i;

	before = store_size_bytes(f->st);
	assert_true(before >= 4096);
	assert_int_equal(before % 4096, 0);
	assert_int_equal(raw_int(f->path, "PRAGMA page_size"), 4096);
	memset(content, 'x', sizeof content);
	assert_int_equal(store_user_add(f->st, "a", "h", 1, &a), STORE_OK);
	assert_int_equal(store_room_add(f->st, "#r", 1, &r), STORE_OK);
	assert_int_equal(store_begin(f->st), STORE_OK);
	for (i = 0; i < 200; i++)
		assert_int_equal(store_message_add(f->st, a, "a", r, 0, "#r",
		    content, sizeof content, i, NULL), STORE_OK);
	assert_int_equal(store_commit(f->st), STORE_OK);
	assert_int_equal(store_message_count(f->st), 200);
	after = store_size_bytes(f->st);
	assert_int_equal(after % 4096, 0);
	assert_true(after - before >= 200 * (int64_t)sizeof content);
	/* Bounded by the data: under twice its size plus the empty file. */
	assert_true(after - before < 2 * 200 * (int64_t)sizeof content);
}

static void
test_free_null_is_a_no_op(void **state)
{
	store_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_open_fresh_creates_schema_version_1, setup_open,
		    teardown),
		cmocka_unit_test_setup_teardown(test_open_enforces_foreign_keys,
		    setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_keeps_data,
		    setup_open, teardown),
		cmocka_unit_test_setup_teardown(
		    test_open_refuses_newer_schema_version, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_open_refuses_negative_schema_version, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_open_refuses_file_that_is_not_a_database, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_open_refuses_corrupt_database, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_open_refuses_path_in_missing_directory, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses_directory,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_open_refuses_read_only_file, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_from_empty_file,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_migrate_from_version_0_keeps_unrelated_table, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_migrate_failure_rolls_back_whole_step, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_user_add_and_find_case_insensitive, setup_open,
		    teardown),
		cmocka_unit_test_setup_teardown(test_user_set_hash,
		    setup_open, teardown),
		cmocka_unit_test_setup_teardown(
		    test_user_del_cascades_but_keeps_messages, setup_open,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_user_list_ordered_by_name_nocase, setup_open,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ban_set_update_clear,
		    setup_open, teardown),
		cmocka_unit_test_setup_teardown(
		    test_rooms_add_duplicate_topic_list, setup_open, teardown),
		cmocka_unit_test_setup_teardown(
		    test_members_add_duplicate_del_list, setup_open, teardown),
		cmocka_unit_test_setup_teardown(
		    test_message_ids_increase_and_are_never_reused, setup_open,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_message_add_rejects_bad_target, setup_open, teardown),
		cmocka_unit_test_setup_teardown(
		    test_message_content_length_is_exact, setup_open,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_history_room_bounds_and_limits, setup_open, teardown),
		cmocka_unit_test_setup_teardown(
		    test_history_direct_symmetric_and_private, setup_open,
		    teardown),
		cmocka_unit_test_setup_teardown(test_history_pages_say_more,
		    setup_open, teardown),
		cmocka_unit_test_setup_teardown(
		    test_history_page_first_row_always, setup_open, teardown),
		cmocka_unit_test_setup_teardown(
		    test_history_plans_use_index_range_scans, setup_open,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_group_commit_makes_all_visible, setup_open, teardown),
		cmocka_unit_test_setup_teardown(
		    test_rollback_discards_everything, setup_open, teardown),
		cmocka_unit_test_setup_teardown(
		    test_transaction_misuse_is_an_error, setup_open, teardown),
		cmocka_unit_test_setup_teardown(
		    test_message_count_and_size_grow, setup_open, teardown),
		cmocka_unit_test_setup_teardown(
		    test_checkpoints_reach_the_database_file, setup_open,
		    teardown),
		cmocka_unit_test(test_free_null_is_a_no_op),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
