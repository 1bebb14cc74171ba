/*
 * ratelimit: token buckets.  A single bucket for per-session message and
 * typing rates, a bounded table of buckets keyed by a string (remote
 * address, account name) for password checks and registrations, and the
 * one function that turns a remote address into such a key.  Pure: time
 * is passed in as milliseconds, nothing here reads a clock or does I/O.
 */
#ifndef NETSOCK_RATELIMIT_H
#define NETSOCK_RATELIMIT_H

#include <sys/socket.h>

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
 * A table of buckets by key, holding at most max_entries keys.  Each key
 * allows 'limit' events per 'window_ms', refilled continuously.  A limit
 * or window of zero or less means no limit (check true, hit does nothing).
 *
 * Only keys that have refilled completely are ever dropped, since an
 * absent key behaves exactly like a full one: the table never forgives a
 * key that is still refilling, however many other keys arrive.  When it
 * holds max_entries keys and none of the least recently touched ones has
 * refilled, it is saturated and a new key cannot be added: the table then
 * fails closed.  ratelimit_table_hit returns false (nothing recorded) and
 * ratelimit_table_check answers false for a key it does not hold, since it
 * could not count that key's events.  Saturation takes max_entries keys
 * each charged within its window; callers size the table and charge only
 * work actually done so that this stays out of an attacker's reach, and
 * treat the refusal as the limit being reached.
 */
struct ratelimit_table;

struct ratelimit_table *ratelimit_table_new(size_t max_entries);
void	ratelimit_table_free(struct ratelimit_table *t);
/* Would one more event for key be allowed now?  Does not consume. */
bool	ratelimit_table_check(struct ratelimit_table *t, const char *key,
	    int limit, int64_t window_ms, int64_t now_ms);
/*
 * Record one event for key (consumes a token, never below zero).  false
 * if the key is new and the table is saturated (see above).
 */
bool	ratelimit_table_hit(struct ratelimit_table *t, const char *key,
	    int limit, int64_t window_ms, int64_t now_ms);
/* Give back one token taken by ratelimit_table_hit (capped at limit). */
void	ratelimit_table_refund(struct ratelimit_table *t, const char *key,
	    int limit, int64_t window_ms, int64_t now_ms);
/* Forget key. */
void	ratelimit_table_forget(struct ratelimit_table *t, const char *key);
size_t	ratelimit_table_size(const struct ratelimit_table *t);

/*
 * The key of every per-address limit, written to buf (at least
 * RATELIMIT_ADDR_KEY_LEN bytes): an IPv4 address as itself ("192.0.2.1"),
 * an IPv4-mapped IPv6 address (::ffff:192.0.2.1) as that IPv4 address, and
 * any other IPv6 address by its first ipv6_prefix bits (clamped to 0..128)
 * with the prefix length ("2001:db8:1:2::/64"): one network is one
 * address.  -1 (and "") for any other address family.
 */
#define RATELIMIT_ADDR_KEY_LEN	64
int	ratelimit_addr_key(const struct sockaddr *sa, int ipv6_prefix,
	    char *buf, size_t len);

#endif
