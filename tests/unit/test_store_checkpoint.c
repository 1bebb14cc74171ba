/*
 * test_store_checkpoint: the store as the event loop sees it: it never
 * waits long for the database's write lock, and the WAL stays bounded
 * while the checkpoint thread, not the loop, copies it and starts it over.
 */
#include <sys/stat.h>

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store.h"
#include "xmalloc.h"

/*
 * The length past which store.c has the WAL started over
 * (STORE_WAL_MAX_PAGES), and room for restarts that had to be tried
 * again, or a thread slow to be scheduled on a loaded machine.  Unbounded,
 * the commits below take the WAL past 80,000 pages.
 */
#define WAL_MAX_PAGES	16000
#define WAL_SLACK_PAGES	16000
#define PAGE_SIZE	4096
#define COMMITS		20000

struct fixture {
	char		 dir[64];
	char		 path[128];
	char		 wal[140];
	struct store	*st;
};

static int
setup(void **state)
{
	struct fixture	*f = xcalloc(1, sizeof(*f));
	char		*cause = NULL;

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store_cp.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/netsockd.db", f->dir);
	snprintf(f->wal, sizeof(f->wal), "%s-wal", f->path);
	if ((f->st = store_open(f->path, &cause)) == NULL) {
		fprintf(stderr, "store_open: %s\n", cause);
		free(cause);
		return -1;
	}
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

/* Another process's connection (a sqlite3 shell, say). */
static sqlite3 *
other_connection(const char *path)
{
	sqlite3	*db = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	return db;
}

/*
 * While another connection holds the write lock, a group commit cannot
 * begin: store_begin() says so (STORE_BUSY, so that the caller retries at
 * a later pass) instead of sleeping in SQLite's busy handler for seconds,
 * or failing like a broken database.  Once the lock is released, it
 * begins; what was refused left nothing behind.
 */
static void
test_begin_is_busy_while_another_connection_writes(void **state)
{
	struct fixture	*f = *state;
	sqlite3		*db = other_connection(f->path);
	int64_t		 uid, rid;
	int		 i;

	assert_int_equal(store_user_add(f->st, "a", "h", 1, &uid), STORE_OK);
	assert_int_equal(store_room_add(f->st, "#r", 1, &rid), STORE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
	    SQLITE_OK);
	/* Each attempt gives up after a few milliseconds: 100 are quick. */
	for (i = 0; i < 100; i++)
		assert_int_equal(store_begin(f->st), STORE_BUSY);
	assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(store_begin(f->st), STORE_OK);
	assert_int_equal(store_message_add(f->st, uid, "a", rid, 0, "#r", "x",
	    1, 1, NULL), STORE_OK);
	assert_int_equal(store_commit(f->st), STORE_OK);
	assert_int_equal(store_message_count(f->st), 1);
	sqlite3_close(db);
}

static off_t
file_size(const char *path)
{
	struct stat	 sb;

	return stat(path, &sb) == 0 ? sb.st_size : 0;
}

/*
 * Group commits back to back, as under a message flood: the WAL grows
 * past the point where the checkpoint thread is asked to start it over,
 * and must not grow much further, although the loop never checkpoints
 * (a commit that finds the thread restarting the WAL is put off, as the
 * loop does, and tried again).  About 300 MB go through the WAL.
 */
static void
test_wal_stays_bounded_under_back_to_back_commits(void **state)
{
	struct fixture	*f = *state;
	char		 content[2000];
	int64_t		 uid, rid;
	off_t		 max = 0, size;
	int		 i, busy = 0, rc;

	memset(content, 'x', sizeof(content));
	assert_int_equal(store_user_add(f->st, "a", "h", 1, &uid), STORE_OK);
	assert_int_equal(store_room_add(f->st, "#r", 1, &rid), STORE_OK);
	for (i = 0; i < COMMITS; i++) {
		while ((rc = store_begin(f->st)) == STORE_BUSY) {
			busy++;
			usleep(100);		/* the loop's next pass */
		}
		assert_int_equal(rc, STORE_OK);
		assert_int_equal(store_message_add(f->st, uid, "a", rid, 0,
		    "#r", content, sizeof(content), i, NULL), STORE_OK);
		assert_int_equal(store_commit(f->st), STORE_OK);
		if ((size = file_size(f->wal)) > max)
			max = size;
	}
	print_message("# WAL at most %lld pages; %d commits put off\n",
	    (long long)(max / PAGE_SIZE), busy);
	assert_int_equal(store_message_count(f->st), COMMITS);
	assert_true(max > (off_t)WAL_MAX_PAGES * PAGE_SIZE / 2);
	assert_true(max < (off_t)(WAL_MAX_PAGES + WAL_SLACK_PAGES) *
	    PAGE_SIZE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_begin_is_busy_while_another_connection_writes,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_wal_stays_bounded_under_back_to_back_commits,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
