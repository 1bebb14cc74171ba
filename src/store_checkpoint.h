/*
 * store_checkpoint: WAL checkpoints on a thread of their own.  Used by
 * store.c only.
 *
 * A checkpoint copies the WAL's pages into the database file and fsyncs
 * both: milliseconds on a quiet disk, hundreds on a busy one.  SQLite's
 * automatic checkpoint runs inside the COMMIT that crosses the threshold,
 * on the event loop, where it would stall every session.  Here the loop
 * only says "the WAL has grown"; a thread with its own connection does the
 * copying and the fsyncs.
 */
#ifndef NETSOCK_STORE_CHECKPOINT_H
#define NETSOCK_STORE_CHECKPOINT_H

struct store_checkpoint;

/* Open a second connection to path and start the thread; NULL with
 * *cause set (caller frees) if either fails. */
struct store_checkpoint	*store_checkpoint_start(const char *path,
			    char **cause);

/*
 * Ask for a checkpoint (from the loop thread, typically from the WAL
 * hook).  Never waits for one.  Returns an SQLite result code when
 * checkpoints have started failing since the last call, else 0: the
 * caller logs it (the thread does not log).
 */
int			 store_checkpoint_request(struct store_checkpoint *cp);

/* Stop the thread (finishing a checkpoint under way) and close. */
void			 store_checkpoint_stop(struct store_checkpoint *cp);

#endif
