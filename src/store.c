/* store: the SQLite database (schema, migrations, every SQL statement). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store.h"
#include "store_checkpoint.h"
#include "log.h"
#include "xmalloc.h"

#define STORE_NITEMS(a)		(sizeof (a) / sizeof (a)[0])

/*
 * A writer waiting for another connection (a sqlite3 shell, a backup).
 * Opening (before any client is served) may wait a while; once open, the
 * handle is used on the event loop, where every millisecond in SQLite's
 * busy handler stalls every session: a write that cannot have the lock
 * almost at once fails (a message then gets an error, never an ok).
 */
#define STORE_BUSY_TIMEOUT_MS	5000
#define STORE_LOOP_BUSY_MS	5

/*
 * WAL growth in pages after which a checkpoint is asked of the checkpoint
 * thread (SQLite's own default threshold), and the length past which the
 * thread is asked to start the WAL over.  Under steady writes the
 * thread's checkpoints rarely finish between two commits, and only one
 * that does lets the WAL start over from its head; past the bound the
 * thread takes the write lock for the end of its copy (store_checkpoint.h)
 * and the loop's group commit waits for the next pass (STORE_BUSY), so
 * the loop never checkpoints.  Without the thread the loop checkpoints
 * every STORE_CHECKPOINT_PAGES, as SQLite would.
 */
#define STORE_CHECKPOINT_PAGES	1000
#define STORE_WAL_MAX_PAGES	16000

/*
 * Durability is a choice, made here.  In WAL mode a transaction is in the
 * WAL file (in the kernel's page cache at least) when COMMIT returns, so
 * with NORMAL it survives a crash or kill -9 of the process: every message
 * whose id a client has seen is still there after a restart.  What NORMAL
 * gives up is power loss or a kernel crash, which may roll back the last
 * transactions (never corrupt the database).  FULL closes that window too,
 * at the price of an fsync per commit; group commit keeps that affordable
 * if an operator ever wants it.
 */
#define STORE_SYNCHRONOUS	"NORMAL"
/* What PRAGMA synchronous reads back for it (FULL would be "2"). */
#define STORE_SYNCHRONOUS_LEVEL	"1"

/*
 * The schema, one entry per version: migration i (store_migrations[i - 1])
 * brings user_version from i - 1 to i inside one transaction.  Version 2
 * is one more entry here (and STORE_SCHEMA_VERSION in store.h); an entry
 * is never edited once released.  Plain CREATE (no IF NOT EXISTS): a
 * version-0 file holding a table of the same name is refused, not adopted.
 */
static const char *const store_migrations[] = {
	/* 1: the initial schema. */
	"CREATE TABLE users ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
	"  hash TEXT NOT NULL,"
	"  created_ms INTEGER NOT NULL);"
	"CREATE TABLE bans ("
	"  user_id INTEGER PRIMARY KEY"
	"    REFERENCES users(id) ON DELETE CASCADE,"
	"  reason TEXT NOT NULL,"
	"  ts_ms INTEGER NOT NULL);"
	"CREATE TABLE rooms ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
	"  topic TEXT NOT NULL DEFAULT '',"
	"  created_ms INTEGER NOT NULL);"
	"CREATE TABLE members ("
	"  room_id INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,"
	"  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  PRIMARY KEY (room_id, user_id)) WITHOUT ROWID;"
	"CREATE INDEX members_by_user ON members(user_id);"
	/*
	 * No foreign key on sender_id: a deleted user's messages stay in
	 * history under the name they were sent with.  AUTOINCREMENT so an
	 * id is never handed out twice, even after the newest row is gone.
	 */
	"CREATE TABLE messages ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  ts_ms INTEGER NOT NULL,"
	"  sender_id INTEGER NOT NULL,"
	"  sender TEXT NOT NULL,"
	"  room_id INTEGER REFERENCES rooms(id) ON DELETE CASCADE,"
	"  peer_lo INTEGER,"
	"  peer_hi INTEGER,"
	"  recipient TEXT NOT NULL,"
	"  content TEXT NOT NULL);"
	"CREATE INDEX messages_by_room ON messages(room_id, id)"
	"  WHERE room_id IS NOT NULL;"
	"CREATE INDEX messages_by_peers ON messages(peer_lo, peer_hi, id)"
	"  WHERE peer_lo IS NOT NULL;",
};
_Static_assert(STORE_NITEMS(store_migrations) == STORE_SCHEMA_VERSION,
    "one migration per schema version");

/* Every statement used after open; prepared once, reset after each use. */
enum store_stmt {
	STORE_STMT_BEGIN,
	STORE_STMT_COMMIT,
	STORE_STMT_ROLLBACK,
	STORE_STMT_USER_ADD,
	STORE_STMT_USER_FIND,
	STORE_STMT_USER_SET_HASH,
	STORE_STMT_USER_DEL,
	STORE_STMT_USER_LIST,
	STORE_STMT_BAN_SET,
	STORE_STMT_BAN_CLEAR,
	STORE_STMT_ROOM_ADD,
	STORE_STMT_ROOM_SET_TOPIC,
	STORE_STMT_ROOM_LIST,
	STORE_STMT_MEMBER_ADD,
	STORE_STMT_MEMBER_DEL,
	STORE_STMT_MEMBER_LIST,
	STORE_STMT_MESSAGE_ADD,
	STORE_STMT_MESSAGE_COUNT,
	STORE_STMT_HISTORY_ROOM_AFTER,
	STORE_STMT_HISTORY_ROOM_BEFORE,
	STORE_STMT_HISTORY_DIRECT_AFTER,
	STORE_STMT_HISTORY_DIRECT_BEFORE,
	STORE_STMT_SIZE,
	STORE_STMT_MAX
};

#define STORE_HISTORY_COLUMNS	"id, ts_ms, sender, recipient, content"

static const char *const store_sql[STORE_STMT_MAX] = {
	[STORE_STMT_BEGIN] = "BEGIN IMMEDIATE",
	[STORE_STMT_COMMIT] = "COMMIT",
	[STORE_STMT_ROLLBACK] = "ROLLBACK",
	[STORE_STMT_USER_ADD] =
	    "INSERT INTO users (name, hash, created_ms) VALUES (?1, ?2, ?3)",
	[STORE_STMT_USER_FIND] =
	    "SELECT u.id, u.name, u.hash, u.created_ms, b.reason"
	    " FROM users u LEFT JOIN bans b ON b.user_id = u.id"
	    " WHERE u.name = ?1",
	[STORE_STMT_USER_SET_HASH] =
	    "UPDATE users SET hash = ?2 WHERE id = ?1",
	[STORE_STMT_USER_DEL] = "DELETE FROM users WHERE id = ?1",
	[STORE_STMT_USER_LIST] =
	    "SELECT u.id, u.name, u.hash, u.created_ms, b.reason"
	    " FROM users u LEFT JOIN bans b ON b.user_id = u.id"
	    " ORDER BY u.name COLLATE NOCASE",
	[STORE_STMT_BAN_SET] =
	    "INSERT INTO bans (user_id, reason, ts_ms) VALUES (?1, ?2, ?3)"
	    " ON CONFLICT (user_id) DO UPDATE"
	    " SET reason = excluded.reason, ts_ms = excluded.ts_ms",
	[STORE_STMT_BAN_CLEAR] = "DELETE FROM bans WHERE user_id = ?1",
	[STORE_STMT_ROOM_ADD] =
	    "INSERT INTO rooms (name, created_ms) VALUES (?1, ?2)",
	[STORE_STMT_ROOM_SET_TOPIC] =
	    "UPDATE rooms SET topic = ?2 WHERE id = ?1",
	[STORE_STMT_ROOM_LIST] =
	    "SELECT id, name, topic, created_ms FROM rooms ORDER BY name",
	[STORE_STMT_MEMBER_ADD] =
	    "INSERT INTO members (room_id, user_id) VALUES (?1, ?2)",
	[STORE_STMT_MEMBER_DEL] =
	    "DELETE FROM members WHERE room_id = ?1 AND user_id = ?2",
	[STORE_STMT_MEMBER_LIST] =
	    "SELECT m.room_id, m.user_id, u.name"
	    " FROM members m JOIN users u ON u.id = m.user_id"
	    " ORDER BY m.room_id, u.name",
	[STORE_STMT_MESSAGE_ADD] =
	    "INSERT INTO messages (ts_ms, sender_id, sender, room_id,"
	    " peer_lo, peer_hi, recipient, content)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[STORE_STMT_MESSAGE_COUNT] = "SELECT count(*) FROM messages",
	/* History: index range scans on messages_by_room / _by_peers. */
	[STORE_STMT_HISTORY_ROOM_AFTER] =
	    "SELECT " STORE_HISTORY_COLUMNS " FROM messages"
	    " WHERE room_id = ?1 AND id > ?2 AND id < ?3"
	    " ORDER BY id ASC LIMIT ?4",
	[STORE_STMT_HISTORY_ROOM_BEFORE] =
	    "SELECT " STORE_HISTORY_COLUMNS " FROM messages"
	    " WHERE room_id = ?1 AND id < ?2"
	    " ORDER BY id DESC LIMIT ?3",
	[STORE_STMT_HISTORY_DIRECT_AFTER] =
	    "SELECT " STORE_HISTORY_COLUMNS " FROM messages"
	    " WHERE peer_lo = ?1 AND peer_hi = ?2 AND id > ?3 AND id < ?4"
	    " ORDER BY id ASC LIMIT ?5",
	[STORE_STMT_HISTORY_DIRECT_BEFORE] =
	    "SELECT " STORE_HISTORY_COLUMNS " FROM messages"
	    " WHERE peer_lo = ?1 AND peer_hi = ?2 AND id < ?3"
	    " ORDER BY id DESC LIMIT ?4",
	/* (Parenthesised: clang asks whether two literals lack a comma.) */
	[STORE_STMT_SIZE] = ("SELECT page_count * page_size"
	    " FROM pragma_page_count(), pragma_page_size()"),
};

/* Which statement store_explain() describes, by its public number. */
static const enum store_stmt store_explain_stmts[] = {
	[STORE_EXPLAIN_HISTORY_ROOM_AFTER] = STORE_STMT_HISTORY_ROOM_AFTER,
	[STORE_EXPLAIN_HISTORY_ROOM_BEFORE] = STORE_STMT_HISTORY_ROOM_BEFORE,
	[STORE_EXPLAIN_HISTORY_DIRECT_AFTER] = STORE_STMT_HISTORY_DIRECT_AFTER,
	[STORE_EXPLAIN_HISTORY_DIRECT_BEFORE] =
	    STORE_STMT_HISTORY_DIRECT_BEFORE,
};

struct store {
	sqlite3		*db;
	sqlite3_stmt	*stmt[STORE_STMT_MAX];
	struct store_checkpoint *checkpoint;	/* NULL: done on the loop */
	int		 wal_pages;	/* the WAL's length at the last commit */
	int		 wal_ask_at;	/* pages: ask the thread again */

	/*
	 * Messages durably stored: count(*) at open, plus one per insert
	 * that committed.  Inserts inside an explicit transaction wait in
	 * pending until store_commit().  After a rollback or a failed
	 * commit the counter is read again from the table, because SQLite
	 * may already have rolled back on its own (I/O error, disk full)
	 * and only the table knows what survived.
	 */
	int64_t		 messages;
	int64_t		 pending;
};

/* A history row copied out of SQLite, so the callback runs unhurried. */
struct store_row {
	int64_t		 id;
	int64_t		 ts_ms;
	char		*from;
	char		*to;
	char		*content;
	size_t		 content_len;
};

static int
store_fail(struct store *st, const char *what)
{
	log_warnx("store: %s: %s", what, sqlite3_errmsg(st->db));
	return STORE_ERROR;
}

/* Ready a statement for its next use, dropping borrowed bindings. */
static void
store_done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* Bind failures are programming errors or OOM; report like the rest. */
static int
store_bind_fail(struct store *st, sqlite3_stmt *s, const char *what)
{
	store_fail(st, what);
	store_done(s);
	return STORE_ERROR;
}

/*
 * Text of a column; "" for SQL NULL.  NULL for a non-NULL value means
 * SQLite ran out of memory: fatal, as everywhere else (xmalloc.h).
 */
static const char *
store_text(sqlite3_stmt *s, int col)
{
	const unsigned char	*p;

	p = sqlite3_column_text(s, col);
	if (p != NULL)
		return (const char *)p;
	if (sqlite3_column_type(s, col) != SQLITE_NULL) {
		log_warnx("store: out of memory reading a column");
		abort();
	}
	return "";
}

/* Step a statement that returns no rows; map the expected misses. */
static int
store_run(struct store *st, enum store_stmt which, const char *what)
{
	sqlite3_stmt	*s = st->stmt[which];
	int		 rc, ret;

	rc = sqlite3_step(s);
	switch (rc) {
	case SQLITE_DONE:
		ret = STORE_OK;
		break;
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		ret = STORE_EXISTS;
		break;
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		/* The room or user referred to does not exist. */
		ret = STORE_NOT_FOUND;
		break;
	default:
		ret = store_fail(st, what);
		break;
	}
	store_done(s);
	return ret;
}

/* As store_run(), for an UPDATE or DELETE of one row: none is a miss. */
static int
store_run_one(struct store *st, enum store_stmt which, const char *what)
{
	int	ret;

	ret = store_run(st, which, what);
	if (ret == STORE_OK && sqlite3_changes(st->db) == 0)
		ret = STORE_NOT_FOUND;
	return ret;
}

/* One integer from a statement's first row (count(*), a pragma). */
static int
store_one_int(struct store *st, enum store_stmt which, const char *what,
    int64_t *out)
{
	sqlite3_stmt	*s = st->stmt[which];
	int		 rc, ret = STORE_OK;

	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	else
		ret = store_fail(st, what);
	store_done(s);
	return ret;
}

static int
store_count_messages(struct store *st)
{
	st->pending = 0;
	return store_one_int(st, STORE_STMT_MESSAGE_COUNT, "count messages",
	    &st->messages);
}

/* ---------------------------------------------------------------- open */

static void
store_cause(char **cause, const char *path, const char *reason)
{
	if (*cause == NULL)
		xasprintf(cause, "%s: %s", path, reason);
}

/*
 * The first column of the first row of a one-off statement (pragmas at
 * open) copied into buf; "" when there is no row.  The SQL is constant.
 */
static int
store_query(sqlite3 *db, const char *sql, char *buf, size_t len)
{
	sqlite3_stmt		*s;
	const unsigned char	*p;
	int			 rc;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return -1;
	buf[0] = '\0';
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		if ((p = sqlite3_column_text(s, 0)) != NULL)
			snprintf(buf, len, "%s", (const char *)p);
		rc = SQLITE_DONE;
	}
	if (rc != SQLITE_DONE) {
		/* Keep the step's message: finalize would repeat it anyway. */
		sqlite3_finalize(s);
		return -1;
	}
	sqlite3_finalize(s);
	return 0;
}

static int
store_user_version(sqlite3 *db, long long *version)
{
	char	buf[32];

	if (store_query(db, "PRAGMA user_version", buf, sizeof buf) != 0)
		return -1;
	*version = strtoll(buf, NULL, 10);
	return 0;
}

static int
store_check_version(long long version, const char *path, char **cause)
{
	char	reason[160];

	if (version >= 0 && version <= STORE_SCHEMA_VERSION)
		return 0;
	if (version < 0)
		snprintf(reason, sizeof reason, "database schema version "
		    "%lld is not one netsockd ever wrote", version);
	else
		snprintf(reason, sizeof reason, "database schema version "
		    "%lld is newer than this netsockd supports (%d); upgrade "
		    "netsockd", version, STORE_SCHEMA_VERSION);
	store_cause(cause, path, reason);
	return -1;
}

/* Refuse what we must not touch: read-only, not ours, too new, corrupt. */
static int
store_open_check(sqlite3 *db, const char *path, char **cause)
{
	long long	 version;
	char		 result[256], reason[320];

	/* READWRITE quietly degrades to read-only on a protected file. */
	if (sqlite3_db_readonly(db, "main") != 0) {
		store_cause(cause, path, sqlite3_errstr(SQLITE_READONLY));
		return -1;
	}
	/* The first read: a file that is not a database fails here. */
	if (store_user_version(db, &version) != 0) {
		store_cause(cause, path, sqlite3_errmsg(db));
		return -1;
	}
	if (store_check_version(version, path, cause) != 0)
		return -1;
	if (store_query(db, "PRAGMA quick_check", result, sizeof result) != 0) {
		store_cause(cause, path, sqlite3_errmsg(db));
		return -1;
	}
	if (strcmp(result, "ok") != 0) {
		snprintf(reason, sizeof reason, "%s (quick_check: %s)",
		    sqlite3_errstr(SQLITE_CORRUPT), result);
		store_cause(cause, path, reason);
		return -1;
	}
	return 0;
}

/* Set a pragma and check that it took: "PRAGMA x=y" reads back as want. */
static int
store_pragma(sqlite3 *db, const char *set, const char *get, const char *want,
    const char *path, char **cause)
{
	char	result[64], reason[160];

	if (sqlite3_exec(db, set, NULL, NULL, NULL) != SQLITE_OK ||
	    store_query(db, get, result, sizeof result) != 0) {
		store_cause(cause, path, sqlite3_errmsg(db));
		return -1;
	}
	if (strcmp(result, want) != 0) {
		snprintf(reason, sizeof reason, "%s returned %s, expected %s",
		    get, result, want);
		store_cause(cause, path, reason);
		return -1;
	}
	return 0;
}

static int
store_open_pragmas(sqlite3 *db, const char *path, char **cause)
{
	/* foreign_keys is a no-op inside a transaction: set it first. */
	if (store_pragma(db, "PRAGMA journal_mode = WAL",
	    "PRAGMA journal_mode", "wal", path, cause) != 0 ||
	    store_pragma(db, "PRAGMA foreign_keys = ON",
	    "PRAGMA foreign_keys", "1", path, cause) != 0 ||
	    store_pragma(db, "PRAGMA synchronous = " STORE_SYNCHRONOUS,
	    "PRAGMA synchronous", STORE_SYNCHRONOUS_LEVEL, path, cause) != 0)
		return -1;
	return 0;
}

/* Run migration version (from version - 1), inside the open transaction. */
static int
store_migrate_one(sqlite3 *db, long long version)
{
	char	*sql;
	int	 rc;

	if (sqlite3_exec(db, store_migrations[version - 1], NULL, NULL,
	    NULL) != SQLITE_OK)
		return -1;
	/* A pragma takes no parameters; version is ours, not data. */
	xasprintf(&sql, "PRAGMA user_version = %lld", version);
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	free(sql);
	return rc == SQLITE_OK ? 0 : -1;
}

/*
 * Bring the schema up to STORE_SCHEMA_VERSION, one transaction per step.
 * The version is read again under the write lock, so two processes
 * opening the same new file cannot both run a step.
 */
static int
store_migrate(sqlite3 *db, const char *path, char **cause)
{
	long long	 version;
	char		 reason[320];

	for (;;) {
		if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL,
		    NULL) != SQLITE_OK)
			goto fail;
		if (store_user_version(db, &version) != 0)
			goto fail_rollback;
		if (version == STORE_SCHEMA_VERSION)
			break;
		if (store_check_version(version, path, cause) != 0)
			goto fail_rollback;
		if (store_migrate_one(db, version + 1) != 0 ||
		    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			goto fail_rollback;
		log_info("store: %s: schema migrated to version %lld", path,
		    version + 1);
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail_rollback;
	return 0;

fail_rollback:
	if (*cause == NULL) {
		snprintf(reason, sizeof reason, "schema migration failed: %s",
		    sqlite3_errmsg(db));
		store_cause(cause, path, reason);
	}
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
fail:
	store_cause(cause, path, sqlite3_errmsg(db));
	return -1;
}

static int
store_prepare_all(struct store *st, const char *path, char **cause)
{
	size_t	i;

	for (i = 0; i < STORE_STMT_MAX; i++) {
		if (sqlite3_prepare_v3(st->db, store_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &st->stmt[i], NULL) !=
		    SQLITE_OK) {
			store_cause(cause, path, sqlite3_errmsg(st->db));
			return -1;
		}
	}
	return 0;
}

/* After every commit, with the WAL's length in pages. */
static int
store_wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct store	*st = arg;
	int		 failure;

	if (pages < st->wal_pages)	/* started over */
		st->wal_ask_at = 0;
	st->wal_pages = pages;
	if (pages < STORE_CHECKPOINT_PAGES)
		return SQLITE_OK;
	if (st->checkpoint != NULL) {
		if (pages >= st->wal_ask_at) {
			st->wal_ask_at = pages + STORE_CHECKPOINT_PAGES;
			failure = store_checkpoint_request(st->checkpoint,
			    pages >= STORE_WAL_MAX_PAGES);
			if (failure != 0)
				log_warnx("store: checkpoint: %s",
				    sqlite3_errstr(failure));
		}
		return SQLITE_OK;
	}
	sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL,
	    NULL);
	return SQLITE_OK;
}

/* Checkpoints off the loop; without the thread, on it as SQLite would. */
static void
store_start_checkpoints(struct store *st, const char *path)
{
	char	*cause = NULL;

	sqlite3_wal_hook(st->db, store_wal_hook, st);
	if ((st->checkpoint = store_checkpoint_start(path, &cause)) == NULL) {
		log_warnx("store: %s: %s; checkpoints run on the event loop",
		    path, cause);
		free(cause);
	}
}

struct store *
store_open(const char *path, char **cause)
{
	struct store	*st;
	int		 rc;

	*cause = NULL;
	st = xcalloc(1, sizeof *st);
	/* NOMUTEX: only the loop thread ever touches the handle. */
	rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		store_cause(cause, path, st->db != NULL ?
		    sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);

	if (store_open_check(st->db, path, cause) != 0 ||
	    store_open_pragmas(st->db, path, cause) != 0 ||
	    store_migrate(st->db, path, cause) != 0 ||
	    store_prepare_all(st, path, cause) != 0)
		goto fail;
	if (store_count_messages(st) != STORE_OK) {
		store_cause(cause, path, sqlite3_errmsg(st->db));
		goto fail;
	}
	store_start_checkpoints(st, path);
	sqlite3_busy_timeout(st->db, STORE_LOOP_BUSY_MS);
	return st;

fail:
	store_free(st);
	return NULL;
}

void
store_free(struct store *st)
{
	size_t	i;
	int	rc;

	if (st == NULL)
		return;
	store_checkpoint_stop(st->checkpoint);
	for (i = 0; i < STORE_STMT_MAX; i++)
		sqlite3_finalize(st->stmt[i]);
	/* An open transaction, if any, is rolled back by the close. */
	if ((rc = sqlite3_close(st->db)) != SQLITE_OK)
		log_warnx("store: close: %s", sqlite3_errstr(rc));
	free(st);
}

/* -------------------------------------------------------- transactions */

int
store_begin(struct store *st)
{
	sqlite3_stmt	*s = st->stmt[STORE_STMT_BEGIN];
	int		 rc;

	/* The write lock is taken (checkpoint restart, another process). */
	if (st->checkpoint != NULL &&
	    store_checkpoint_restarting(st->checkpoint))
		return STORE_BUSY;
	rc = sqlite3_step(s);
	store_done(s);
	if ((rc & 0xff) == SQLITE_BUSY)
		return STORE_BUSY;
	if (rc != SQLITE_DONE)
		return store_fail(st, "begin");
	st->pending = 0;
	return STORE_OK;
}

int
store_commit(struct store *st)
{
	if (store_run(st, STORE_STMT_COMMIT, "commit") != STORE_OK) {
		store_rollback(st);
		return STORE_ERROR;
	}
	st->messages += st->pending;
	st->pending = 0;
	return STORE_OK;
}

int
store_rollback(struct store *st)
{
	int	ret = STORE_OK;

	/* SQLite may have rolled back already (disk full, I/O error). */
	if (!sqlite3_get_autocommit(st->db) &&
	    store_run(st, STORE_STMT_ROLLBACK, "rollback") != STORE_OK)
		ret = STORE_ERROR;
	if (store_count_messages(st) != STORE_OK)
		ret = STORE_ERROR;
	return ret;
}

/* --------------------------------------------------------------- users */

int
store_user_add(struct store *st, const char *name, const char *hash,
    int64_t created_ms, int64_t *id)
{
	sqlite3_stmt	*s = st->stmt[STORE_STMT_USER_ADD];
	int		 ret;

	if (sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(s, 2, hash, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 3, created_ms) != SQLITE_OK)
		return store_bind_fail(st, s, "user add");
	ret = store_run(st, STORE_STMT_USER_ADD, "user add");
	if (ret == STORE_OK && id != NULL)
		*id = sqlite3_last_insert_rowid(st->db);
	return ret;
}

/* Fill u from a users LEFT JOIN bans row; strings borrowed from s. */
static void
store_user_row(sqlite3_stmt *s, struct store_user *u)
{
	u->id = sqlite3_column_int64(s, 0);
	u->name = (char *)store_text(s, 1);
	u->hash = (char *)store_text(s, 2);
	u->created_ms = sqlite3_column_int64(s, 3);
	u->banned = sqlite3_column_type(s, 4) != SQLITE_NULL;
	u->ban_reason = u->banned ? (char *)store_text(s, 4) : NULL;
}

int
store_user_find(struct store *st, const char *name, struct store_user *out)
{
	sqlite3_stmt		*s = st->stmt[STORE_STMT_USER_FIND];
	struct store_user	 row;
	int			 rc, ret;

	memset(out, 0, sizeof *out);
	if (sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC) != SQLITE_OK)
		return store_bind_fail(st, s, "user find");
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		store_user_row(s, &row);
		out->id = row.id;
		out->name = xstrdup(row.name);
		out->hash = xstrdup(row.hash);
		out->created_ms = row.created_ms;
		out->banned = row.banned;
		if (row.banned)
			out->ban_reason = xstrdup(row.ban_reason);
		ret = STORE_OK;
	} else if (rc == SQLITE_DONE)
		ret = STORE_NOT_FOUND;
	else
		ret = store_fail(st, "user find");
	store_done(s);
	return ret;
}

void
store_user_clear(struct store_user *u)
{
	free(u->name);
	free(u->hash);
	free(u->ban_reason);
	memset(u, 0, sizeof *u);
}

int
store_user_set_hash(struct store *st, int64_t user_id, const char *hash)
{
	sqlite3_stmt	*s = st->stmt[STORE_STMT_USER_SET_HASH];

	if (sqlite3_bind_int64(s, 1, user_id) != SQLITE_OK ||
	    sqlite3_bind_text(s, 2, hash, -1, SQLITE_STATIC) != SQLITE_OK)
		return store_bind_fail(st, s, "user set hash");
	return store_run_one(st, STORE_STMT_USER_SET_HASH, "user set hash");
}

/* One statement, so atomic alone; the cascades take memberships and ban. */
int
store_user_del(struct store *st, int64_t user_id)
{
	sqlite3_stmt	*s = st->stmt[STORE_STMT_USER_DEL];

	if (sqlite3_bind_int64(s, 1, user_id) != SQLITE_OK)
		return store_bind_fail(st, s, "user del");
	return store_run_one(st, STORE_STMT_USER_DEL, "user del");
}

/*
 * The list functions call cb while the statement steps: rows are
 * borrowed, and cb must not call the same list function again.
 */
int
store_user_list(struct store *st,
    void (*cb)(const struct store_user *, void *), void *arg)
{
	sqlite3_stmt		*s = st->stmt[STORE_STMT_USER_LIST];
	struct store_user	 row;
	int			 rc, ret = STORE_OK;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		store_user_row(s, &row);
		cb(&row, arg);
	}
	if (rc != SQLITE_DONE)
		ret = store_fail(st, "user list");
	store_done(s);
	return ret;
}

/* ---------------------------------------------------------------- bans */

int
store_ban_set(struct store *st, int64_t user_id, const char *reason,
    int64_t ts_ms)
{
	sqlite3_stmt	*s = st->stmt[STORE_STMT_BAN_SET];

	if (sqlite3_bind_int64(s, 1, user_id) != SQLITE_OK ||
	    sqlite3_bind_text(s, 2, reason, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 3, ts_ms) != SQLITE_OK)
		return store_bind_fail(st, s, "ban set");
	return store_run(st, STORE_STMT_BAN_SET, "ban set");
}

int
store_ban_clear(struct store *st, int64_t user_id)
{
	sqlite3_stmt	*s = st->stmt[STORE_STMT_BAN_CLEAR];

	if (sqlite3_bind_int64(s, 1, user_id) != SQLITE_OK)
		return store_bind_fail(st, s, "ban clear");
	return store_run_one(st, STORE_STMT_BAN_CLEAR, "ban clear");
}

/* --------------------------------------------------------------- rooms */

int
store_room_add(struct store *st, const char *name, int64_t created_ms,
    int64_t *id)
{
	sqlite3_stmt	*s = st->stmt[STORE_STMT_ROOM_ADD];
	int		 ret;

	if (sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 2, created_ms) != SQLITE_OK)
		return store_bind_fail(st, s, "room add");
	ret = store_run(st, STORE_STMT_ROOM_ADD, "room add");
	if (ret == STORE_OK && id != NULL)
		*id = sqlite3_last_insert_rowid(st->db);
	return ret;
}

int
store_room_set_topic(struct store *st, int64_t room_id, const char *topic)
{
	sqlite3_stmt	*s = st->stmt[STORE_STMT_ROOM_SET_TOPIC];

	if (sqlite3_bind_int64(s, 1, room_id) != SQLITE_OK ||
	    sqlite3_bind_text(s, 2, topic, -1, SQLITE_STATIC) != SQLITE_OK)
		return store_bind_fail(st, s, "room set topic");
	return store_run_one(st, STORE_STMT_ROOM_SET_TOPIC, "room set topic");
}

int
store_room_list(struct store *st,
    void (*cb)(const struct store_room *, void *), void *arg)
{
	sqlite3_stmt		*s = st->stmt[STORE_STMT_ROOM_LIST];
	struct store_room	 row;
	int			 rc, ret = STORE_OK;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		row.id = sqlite3_column_int64(s, 0);
		row.name = store_text(s, 1);
		row.topic = store_text(s, 2);
		row.created_ms = sqlite3_column_int64(s, 3);
		cb(&row, arg);
	}
	if (rc != SQLITE_DONE)
		ret = store_fail(st, "room list");
	store_done(s);
	return ret;
}

/* ------------------------------------------------------------- members */

static int
store_member_bind(struct store *st, enum store_stmt which, int64_t room_id,
    int64_t user_id, const char *what)
{
	sqlite3_stmt	*s = st->stmt[which];

	if (sqlite3_bind_int64(s, 1, room_id) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 2, user_id) != SQLITE_OK)
		return store_bind_fail(st, s, what);
	return STORE_OK;
}

/* STORE_EXISTS if already a member, STORE_NOT_FOUND if room or user is not. */
int
store_member_add(struct store *st, int64_t room_id, int64_t user_id)
{
	if (store_member_bind(st, STORE_STMT_MEMBER_ADD, room_id, user_id,
	    "member add") != STORE_OK)
		return STORE_ERROR;
	return store_run(st, STORE_STMT_MEMBER_ADD, "member add");
}

int
store_member_del(struct store *st, int64_t room_id, int64_t user_id)
{
	if (store_member_bind(st, STORE_STMT_MEMBER_DEL, room_id, user_id,
	    "member del") != STORE_OK)
		return STORE_ERROR;
	return store_run_one(st, STORE_STMT_MEMBER_DEL, "member del");
}

int
store_member_list(struct store *st,
    void (*cb)(int64_t, int64_t, const char *, void *), void *arg)
{
	sqlite3_stmt	*s = st->stmt[STORE_STMT_MEMBER_LIST];
	int		 rc, ret = STORE_OK;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		cb(sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
		    store_text(s, 2), arg);
	}
	if (rc != SQLITE_DONE)
		ret = store_fail(st, "member list");
	store_done(s);
	return ret;
}

/* ------------------------------------------------------------ messages */

/* Bind the target: a room, or the unordered pair of the two users. */
static int
store_message_bind_target(sqlite3_stmt *s, int64_t from_user_id,
    int64_t room_id, int64_t to_user_id)
{
	int64_t	lo, hi;

	if (room_id > 0) {
		return sqlite3_bind_int64(s, 4, room_id) == SQLITE_OK &&
		    sqlite3_bind_null(s, 5) == SQLITE_OK &&
		    sqlite3_bind_null(s, 6) == SQLITE_OK ? 0 : -1;
	}
	lo = from_user_id < to_user_id ? from_user_id : to_user_id;
	hi = from_user_id < to_user_id ? to_user_id : from_user_id;
	return sqlite3_bind_null(s, 4) == SQLITE_OK &&
	    sqlite3_bind_int64(s, 5, lo) == SQLITE_OK &&
	    sqlite3_bind_int64(s, 6, hi) == SQLITE_OK ? 0 : -1;
}

int
store_message_add(struct store *st, int64_t from_user_id, const char *from,
    int64_t room_id, int64_t to_user_id, const char *to, const char *content,
    size_t content_len, int64_t ts_ms, int64_t *id)
{
	sqlite3_stmt	*s = st->stmt[STORE_STMT_MESSAGE_ADD];
	int		 ret;

	if ((room_id > 0) == (to_user_id > 0) || content_len > INT32_MAX) {
		log_warnx("store: message add: bad target or length");
		return STORE_ERROR;
	}
	if (sqlite3_bind_int64(s, 1, ts_ms) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 2, from_user_id) != SQLITE_OK ||
	    sqlite3_bind_text(s, 3, from, -1, SQLITE_STATIC) != SQLITE_OK ||
	    store_message_bind_target(s, from_user_id, room_id,
	    to_user_id) != 0 ||
	    sqlite3_bind_text(s, 7, to, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(s, 8, content, (int)content_len,
	    SQLITE_STATIC) != SQLITE_OK)
		return store_bind_fail(st, s, "message add");
	ret = store_run(st, STORE_STMT_MESSAGE_ADD, "message add");
	if (ret != STORE_OK)
		return ret;
	if (id != NULL)
		*id = sqlite3_last_insert_rowid(st->db);
	/* Outside a transaction the insert has committed itself. */
	if (sqlite3_get_autocommit(st->db))
		st->messages++;
	else
		st->pending++;
	return STORE_OK;
}

static void
store_rows_free(struct store_row *rows, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		free(rows[i].from);
		free(rows[i].to);
		free(rows[i].content);
	}
	free(rows);
}

static void
store_row_copy(sqlite3_stmt *s, struct store_row *r)
{
	const char	*content;

	r->id = sqlite3_column_int64(s, 0);
	r->ts_ms = sqlite3_column_int64(s, 1);
	r->from = xstrdup(store_text(s, 2));
	r->to = xstrdup(store_text(s, 3));
	/* Content may hold NUL bytes: copy by length (text, then bytes). */
	content = store_text(s, 4);
	r->content_len = (size_t)sqlite3_column_bytes(s, 4);
	r->content = xmalloc(r->content_len + 1);
	memcpy(r->content, content, r->content_len);
	r->content[r->content_len] = '\0';
}

/*
 * Step a bound history statement (its LIMIT is one past pg->limit, to
 * tell whether more rows exist), copying its rows, then hand them to cb
 * in the statement's order: nearest the anchor first.  The statement is
 * reset before any callback, so cb may use the store freely.  A row whose
 * text would take the rows copied past pg->max_bytes is not copied: its
 * JSON is longer still, so it cannot fit the reply either.
 */
static int
store_history_run(struct store *st, enum store_stmt which,
    const struct store_page *pg, store_history_fn *cb, void *arg, bool *more)
{
	sqlite3_stmt		*s = st->stmt[which];
	struct store_row	*rows = NULL, *r;
	struct store_message	 m;
	size_t			 n = 0, cap = 0, i, bytes = 0, row;
	int			 rc, ret = STORE_OK;

	*more = false;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		row = (size_t)sqlite3_column_bytes(s, 2) +
		    (size_t)sqlite3_column_bytes(s, 3) +
		    (size_t)sqlite3_column_bytes(s, 4);
		if (n == (size_t)pg->limit || (n > 0 && pg->max_bytes > 0 &&
		    (bytes >= pg->max_bytes || row > pg->max_bytes - bytes))) {
			*more = true;
			break;
		}
		bytes += row;
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			rows = xreallocarray(rows, cap, sizeof *rows);
		}
		store_row_copy(s, &rows[n++]);
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = store_fail(st, "history");
	store_done(s);

	for (i = 0; ret == STORE_OK && i < n; i++) {
		r = &rows[i];
		m.id = r->id;
		m.ts_ms = r->ts_ms;
		m.from = r->from;
		m.to = r->to;
		m.content = r->content;
		m.content_len = r->content_len;
		if (!cb(&m, arg)) {
			*more = true;
			break;
		}
	}
	store_rows_free(rows, n);
	return ret;
}

/*
 * Bind the bounds of pg from parameter 'first' on: after, before and
 * the limit (one past it) for an ascending page; before and the limit
 * for a descending one.
 */
static int
store_history_bind(sqlite3_stmt *s, int first, const struct store_page *pg)
{
	int64_t	 before = pg->before > 0 ? pg->before : INT64_MAX;
	int64_t	 limit = (int64_t)pg->limit + 1;
	int	 rc, i = first;

	if (pg->has_after && (rc = sqlite3_bind_int64(s, i++,
	    pg->after)) != SQLITE_OK)
		return rc;
	if ((rc = sqlite3_bind_int64(s, i++, before)) != SQLITE_OK)
		return rc;
	return sqlite3_bind_int64(s, i, limit);
}

int
store_history_room(struct store *st, int64_t room_id,
    const struct store_page *pg, store_history_fn *cb, void *arg, bool *more)
{
	enum store_stmt	 which;
	sqlite3_stmt	*s;
	int		 rc;

	*more = false;
	if (pg->limit <= 0)
		return STORE_OK;
	which = pg->has_after ? STORE_STMT_HISTORY_ROOM_AFTER :
	    STORE_STMT_HISTORY_ROOM_BEFORE;
	s = st->stmt[which];
	if ((rc = sqlite3_bind_int64(s, 1, room_id)) == SQLITE_OK)
		rc = store_history_bind(s, 2, pg);
	if (rc != SQLITE_OK)
		return store_bind_fail(st, s, "history room");
	return store_history_run(st, which, pg, cb, arg, more);
}

int
store_history_direct(struct store *st, int64_t user_a, int64_t user_b,
    const struct store_page *pg, store_history_fn *cb, void *arg, bool *more)
{
	enum store_stmt	 which;
	sqlite3_stmt	*s;
	int64_t		 lo, hi;
	int		 rc;

	*more = false;
	if (pg->limit <= 0)
		return STORE_OK;
	lo = user_a < user_b ? user_a : user_b;
	hi = user_a < user_b ? user_b : user_a;
	which = pg->has_after ? STORE_STMT_HISTORY_DIRECT_AFTER :
	    STORE_STMT_HISTORY_DIRECT_BEFORE;
	s = st->stmt[which];
	if ((rc = sqlite3_bind_int64(s, 1, lo)) == SQLITE_OK &&
	    (rc = sqlite3_bind_int64(s, 2, hi)) == SQLITE_OK)
		rc = store_history_bind(s, 3, pg);
	if (rc != SQLITE_OK)
		return store_bind_fail(st, s, "history direct");
	return store_history_run(st, which, pg, cb, arg, more);
}

int64_t
store_message_count(struct store *st)
{
	return st->messages;
}

/* -1 (logged) if SQLite cannot say. */
int64_t
store_size_bytes(struct store *st)
{
	int64_t	size;

	if (store_one_int(st, STORE_STMT_SIZE, "size", &size) != STORE_OK)
		return -1;
	return size;
}

/* ------------------------------------------------------------ for tests */

int
store_explain(struct store *st, int which, char *buf, size_t len)
{
	sqlite3_stmt	*s;
	char		*sql;
	size_t		 used = 0;
	int		 rc, n, ret = STORE_OK;

	if (which < 0 || (size_t)which >= STORE_NITEMS(store_explain_stmts) ||
	    len == 0)
		return STORE_ERROR;
	xasprintf(&sql, "EXPLAIN QUERY PLAN %s",
	    store_sql[store_explain_stmts[which]]);
	rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
	free(sql);
	if (rc != SQLITE_OK)
		return store_fail(st, "explain");
	buf[0] = '\0';
	/* Columns: id, parent, notused, detail. */
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		n = snprintf(buf + used, len - used, "%s%s",
		    used == 0 ? "" : "\n", store_text(s, 3));
		if (n < 0 || (size_t)n >= len - used) {
			ret = STORE_ERROR;
			break;
		}
		used += (size_t)n;
	}
	if (ret == STORE_OK && rc != SQLITE_DONE)
		ret = store_fail(st, "explain");
	sqlite3_finalize(s);
	return ret;
}
