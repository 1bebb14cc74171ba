/*
 * store_checkpoint: WAL checkpoints on a thread of their own.  Used by
 * store.c only.
 *
 * A checkpoint copies the WAL's pages into the database file and fsyncs
 * both: milliseconds on a quiet disk, hundreds on a busy one.  SQLite's
 * automatic checkpoint runs inside the COMMIT that crosses the threshold,
 * on the event loop, where it would stall every session.  Here the loop
 * only says "the WAL has grown" (or "has grown too long"); a thread with
 * its own connection does the copying, the fsyncs and the restart of the
 * WAL, and the loop never runs a checkpoint itself.
 */
#ifndef NETSOCK_STORE_CHECKPOINT_H
#define NETSOCK_STORE_CHECKPOINT_H

#include <stdbool.h>

struct store_checkpoint;

/* Open a second connection to path and start the thread; NULL with
 * *cause set (caller frees) if either fails. */
struct store_checkpoint	*store_checkpoint_start(const char *path,
			    char **cause);

/*
 * Ask for a checkpoint (from the loop thread, typically from the WAL
 * hook).  Never waits for one.  With restart (the WAL is past its bound),
 * the thread also starts the WAL over, holding the write lock for a few
 * milliseconds: the loop's writes meanwhile get SQLITE_BUSY.  Returns an
 * SQLite result code when checkpoints have started failing since the
 * last call, else 0: the caller logs it (the thread does not log).
 */
int			 store_checkpoint_request(struct store_checkpoint *cp,
			    bool restart);

/*
 * Whether the thread is starting the WAL over right now (for at most
 * tens of milliseconds): the loop then puts its writes off (STORE_BUSY)
 * rather than take the write lock.
 */
bool			 store_checkpoint_restarting(struct store_checkpoint *cp);

/* Stop the thread (finishing a checkpoint under way) and close. */
void			 store_checkpoint_stop(struct store_checkpoint *cp);

#endif
