/*
 * ratelimit: token buckets.  A single bucket for per-session message and
 * typing rates, and a bounded table of buckets keyed by a string (remote
 * address, account name) for failed logins and registrations.  Pure: time
 * is passed in as milliseconds, nothing here reads a clock or does I/O.
 */
#ifndef NETSOCK_RATELIMIT_H
#define NETSOCK_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ratelimit {
	double		 tokens;
	double		 rate;		/* tokens per second */
	double		 burst;		/* bucket size */
	int64_t		 last_ms;
};

/* A full bucket. */
void	ratelimit_init(struct ratelimit *rl, double rate, double burst,
	    int64_t now_ms);
/* New rate and burst, keeping the current fill (capped at burst). */
void	ratelimit_configure(struct ratelimit *rl, double rate, double burst);
/* Take one token if there is one: true if allowed. */
bool	ratelimit_take(struct ratelimit *rl, int64_t now_ms);

/*
 * A table of buckets by key, holding at most max_entries keys (the least
 * recently touched is dropped first, which only ever forgives).  Each key
 * allows 'limit' events per 'window_ms', refilled continuously.  A limit
 * or window of zero or less means no limit (check true, hit does nothing).
 * Keys that have refilled completely may be dropped at any time, since an
 * absent key behaves exactly like a full one.
 */
struct ratelimit_table;

struct ratelimit_table *ratelimit_table_new(size_t max_entries);
void	ratelimit_table_free(struct ratelimit_table *t);
/* Would one more event for key be allowed now?  Does not consume. */
bool	ratelimit_table_check(struct ratelimit_table *t, const char *key,
	    int limit, int64_t window_ms, int64_t now_ms);
/* Record one event for key (consumes a token; never blocks). */
void	ratelimit_table_hit(struct ratelimit_table *t, const char *key,
	    int limit, int64_t window_ms, int64_t now_ms);
/* Forget key (for example after a successful login). */
void	ratelimit_table_forget(struct ratelimit_table *t, const char *key);
size_t	ratelimit_table_size(const struct ratelimit_table *t);

#endif
