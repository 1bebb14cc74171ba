/* store_checkpoint: WAL checkpoints on a thread of their own. */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store_checkpoint.h"
#include "xmalloc.h"

struct store_checkpoint {
	sqlite3		*db;		/* the thread's own connection */
	pthread_t	 thread;

	pthread_mutex_t	 lock;		/* protects all below */
	pthread_cond_t	 cond;		/* requested, or stopping */
	bool		 requested;
	bool		 stopping;
	int		 failure;	/* SQLite code, until reported */
};

static void *
store_checkpoint_main(void *arg)
{
	struct store_checkpoint	*cp = arg;
	bool			 failing = false;
	int			 rc;

	pthread_mutex_lock(&cp->lock);
	for (;;) {
		while (!cp->requested && !cp->stopping)
			pthread_cond_wait(&cp->cond, &cp->lock);
		if (cp->stopping)
			break;
		cp->requested = false;
		pthread_mutex_unlock(&cp->lock);
		/*
		 * PASSIVE: copy what no reader still needs, never wait and
		 * never block the loop's writes.  Once everything is copied,
		 * the loop's next commit starts the WAL over from its head.
		 * SQLITE_BUSY is only another checkpoint under way.
		 */
		rc = sqlite3_wal_checkpoint_v2(cp->db, NULL,
		    SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		pthread_mutex_lock(&cp->lock);
		/* Reported when it starts failing, not at every attempt. */
		if (rc != SQLITE_OK && rc != SQLITE_BUSY && !failing)
			cp->failure = rc;
		failing = rc != SQLITE_OK && rc != SQLITE_BUSY;
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
store_checkpoint_request(struct store_checkpoint *cp)
{
	int	failure;

	pthread_mutex_lock(&cp->lock);
	cp->requested = true;
	failure = cp->failure;
	cp->failure = 0;
	pthread_cond_signal(&cp->cond);
	pthread_mutex_unlock(&cp->lock);
	return failure;
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
