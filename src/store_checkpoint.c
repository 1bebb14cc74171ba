/* store_checkpoint: WAL checkpoints on a thread of their own. */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "store_checkpoint.h"
#include "xmalloc.h"

/*
 * How long the thread waits, in SQLite's busy handler, for the loop's
 * write transaction to end and for readers to move past the WAL, when it
 * starts the WAL over.  Meanwhile it holds the write lock, so this also
 * bounds how long the loop's writes are put off by one restart.
 */
#define STORE_CHECKPOINT_BUSY_MS	50
/*
 * A restart that could not have the lock (the loop writing back to back)
 * is tried again this soon, this many times, before waiting for the WAL
 * to grow again.  Not for ever: a reader that stays (a backup, a shell)
 * would have the write lock taken from the loop over and over.
 */
#define STORE_CHECKPOINT_RETRY_MS	10
#define STORE_CHECKPOINT_RETRIES	3

struct store_checkpoint {
	sqlite3		*db;		/* the thread's own connection */
	pthread_t	 thread;

	pthread_mutex_t	 lock;		/* protects all below */
	pthread_cond_t	 cond;		/* requested, or stopping */
	bool		 requested;
	bool		 restart;	/* requested: start the WAL over */
	bool		 restarting;	/* under way: the loop stays off */
	bool		 stopping;
	int		 failure;	/* SQLite code, until reported */
};

/*
 * One checkpoint.  PASSIVE copies what no reader still needs, never
 * waits and never blocks the loop's writes.  Under steady writes the loop
 * commits again before it ends, so the WAL is never all copied at the
 * moment of a commit, and only then does SQLite start it over: it grows.
 * Past its bound, RESTART follows: it takes the write lock, copies the
 * little committed since the PASSIVE pass, syncs, and waits for readers
 * to leave the WAL, so that the loop's next commit writes it from its
 * head.  The loop never waits for it: a write that finds the lock taken
 * gets SQLITE_BUSY after a few milliseconds and is retried (store.h).
 */
static int
store_checkpoint_run(struct store_checkpoint *cp, bool restart)
{
	int	 rc;

	rc = sqlite3_wal_checkpoint_v2(cp->db, NULL,
	    SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	if (!restart || (rc != SQLITE_OK && rc != SQLITE_BUSY))
		return rc;
	/*
	 * A loop that commits back to back would hold the write lock at
	 * every instant the busy handler looks: it leaves it alone now.
	 */
	pthread_mutex_lock(&cp->lock);
	cp->restarting = true;
	pthread_mutex_unlock(&cp->lock);
	rc = sqlite3_wal_checkpoint_v2(cp->db, NULL,
	    SQLITE_CHECKPOINT_RESTART, NULL, NULL);
	pthread_mutex_lock(&cp->lock);
	cp->restarting = false;
	pthread_mutex_unlock(&cp->lock);
	return rc;
}

/* With the lock held: wait for a request, or a retry's time. */
static void
store_checkpoint_wait(struct store_checkpoint *cp, int retry_ms)
{
	struct timespec	 ts;

	if (retry_ms == 0) {
		while (!cp->requested && !cp->stopping)
			pthread_cond_wait(&cp->cond, &cp->lock);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)retry_ms * 1000000;
	ts.tv_sec += ts.tv_nsec / 1000000000;
	ts.tv_nsec %= 1000000000;
	while (!cp->requested && !cp->stopping &&
	    pthread_cond_timedwait(&cp->cond, &cp->lock, &ts) == 0)
		;
	cp->requested = cp->restart = true;
}

static void *
store_checkpoint_main(void *arg)
{
	struct store_checkpoint	*cp = arg;
	bool			 failing = false, restart;
	int			 rc, retries = 0;

	pthread_mutex_lock(&cp->lock);
	for (;;) {
		store_checkpoint_wait(cp, retries > 0 ?
		    STORE_CHECKPOINT_RETRY_MS : 0);
		if (cp->stopping)
			break;
		restart = cp->restart;
		cp->requested = cp->restart = false;
		pthread_mutex_unlock(&cp->lock);
		/* SQLITE_BUSY: the lock or a reader could not be waited for. */
		rc = store_checkpoint_run(cp, restart);
		pthread_mutex_lock(&cp->lock);
		/* Reported when it starts failing, not at every attempt. */
		if (rc != SQLITE_OK && rc != SQLITE_BUSY && !failing)
			cp->failure = rc;
		failing = rc != SQLITE_OK && rc != SQLITE_BUSY;
		if (restart && rc == SQLITE_BUSY &&
		    retries < STORE_CHECKPOINT_RETRIES)
			retries++;
		else
			retries = 0;
	}
	pthread_mutex_unlock(&cp->lock);
	return NULL;
}

/* sqlite3_exec callback: the journal mode, as PRAGMA journal_mode says. */
static int
store_checkpoint_mode(void *arg, int ncol, char **values, char **names)
{
	bool	*wal = arg;

	*wal = ncol == 1 && values[0] != NULL && strcmp(values[0], "wal") == 0;
	return 0;
}

struct store_checkpoint *
store_checkpoint_start(const char *path, char **cause)
{
	struct store_checkpoint	*cp;
	sigset_t		 all, old;
	bool			 wal = false;
	int			 rc;

	/* Two connections on two threads need SQLite's own locks built in. */
	if (!sqlite3_threadsafe()) {
		xasprintf(cause, "this SQLite is built without threads");
		return NULL;
	}
	cp = xcalloc(1, sizeof *cp);
	/* NOMUTEX: only the checkpoint thread touches this handle. */
	rc = sqlite3_open_v2(path, &cp->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL);
	/*
	 * Reading the header is what puts a connection in WAL mode; until
	 * then a checkpoint on it is a silent no-op.
	 */
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(cp->db, "PRAGMA journal_mode",
		    store_checkpoint_mode, &wal, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(cp->db, STORE_CHECKPOINT_BUSY_MS);
	if (rc != SQLITE_OK || !wal) {
		xasprintf(cause, "checkpoint connection: %s", rc != SQLITE_OK ?
		    (cp->db != NULL ? sqlite3_errmsg(cp->db) :
		    sqlite3_errstr(rc)) : "not in WAL mode");
		sqlite3_close(cp->db);
		free(cp);
		return NULL;
	}
	pthread_mutex_init(&cp->lock, NULL);
	pthread_cond_init(&cp->cond, NULL);
	/* Signals are the loop's business. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&cp->thread, NULL, store_checkpoint_main, cp);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		xasprintf(cause, "checkpoint thread: %s", strerror(rc));
		pthread_cond_destroy(&cp->cond);
		pthread_mutex_destroy(&cp->lock);
		sqlite3_close(cp->db);
		free(cp);
		return NULL;
	}
	return cp;
}

int
store_checkpoint_request(struct store_checkpoint *cp, bool restart)
{
	int	failure;

	pthread_mutex_lock(&cp->lock);
	cp->requested = true;
	if (restart)
		cp->restart = true;
	failure = cp->failure;
	cp->failure = 0;
	pthread_cond_signal(&cp->cond);
	pthread_mutex_unlock(&cp->lock);
	return failure;
}

bool
store_checkpoint_restarting(struct store_checkpoint *cp)
{
	bool	 restarting;

	pthread_mutex_lock(&cp->lock);
	restarting = cp->restarting;
	pthread_mutex_unlock(&cp->lock);
	return restarting;
}

void
store_checkpoint_stop(struct store_checkpoint *cp)
{
	if (cp == NULL)
		return;
	pthread_mutex_lock(&cp->lock);
	cp->stopping = true;
	pthread_cond_signal(&cp->cond);
	pthread_mutex_unlock(&cp->lock);
	pthread_join(cp->thread, NULL);
	pthread_cond_destroy(&cp->cond);
	pthread_mutex_destroy(&cp->lock);
	sqlite3_close(cp->db);
	free(cp);
}
