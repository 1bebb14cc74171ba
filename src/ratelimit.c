/* ratelimit: token buckets, a bounded table of them, per-address keys. */
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"
#include "siphash.h"
#include "xmalloc.h"

/*
 * Refills are computed in floating point (elapsed * rate / 1000), so a
 * bucket that should hold exactly one token may hold 0.9999999999.  Treat
 * anything this close to a whole token as the whole token.
 */
#define RATELIMIT_EPSILON	1e-9

/*
 * Entries looked at per insert, from the tail of the list, for ones that
 * have refilled and may go; those that stay move to the head, so the sweep
 * goes round the whole table like a clock hand and a key that takes long
 * to refill cannot hide the others behind it.
 */
#define RATELIMIT_SWEEP		8

struct ratelimit_entry {
	char				*key;
	uint64_t			 hash;
	struct ratelimit		 bucket;
	struct ratelimit_entry		*chain;		/* next in hash bucket */
	TAILQ_ENTRY(ratelimit_entry)	 lru;		/* sweep order */
};
TAILQ_HEAD(ratelimit_lru, ratelimit_entry);

struct ratelimit_table {
	struct ratelimit_entry	**buckets;
	size_t			  nbuckets;	/* power of two */
	size_t			  size;
	size_t			  max_entries;
	struct ratelimit_lru	  lru;
	uint8_t			  hash_key[SIPHASH_KEY_LEN];	/* random */
};

void
ratelimit_init(struct ratelimit *rl, double rate, double burst,
    int64_t now_ms)
{
	rl->rate = rate;
	rl->burst = burst;
	rl->tokens = burst;
	rl->last_ms = now_ms;
}

void
ratelimit_configure(struct ratelimit *rl, double rate, double burst)
{
	rl->rate = rate;
	rl->burst = burst;
	if (rl->tokens > burst)
		rl->tokens = burst;
}

/*
 * Add the tokens earned since last_ms.  A clock that steps backwards earns
 * nothing; we still move last_ms back to it, because keeping the later
 * time would freeze the bucket for as long as the step, while re-earning
 * that interval is capped at burst anyway.
 */
static void
ratelimit_refill(struct ratelimit *rl, int64_t now_ms)
{
	if (now_ms > rl->last_ms) {
		rl->tokens += (double)(now_ms - rl->last_ms) * rl->rate /
		    1000.0;
		if (rl->tokens > rl->burst)
			rl->tokens = rl->burst;
	}
	rl->last_ms = now_ms;
}

static bool
ratelimit_has_token(const struct ratelimit *rl)
{
	return rl->tokens >= 1.0 - RATELIMIT_EPSILON;
}

/* Subtract one token, never going below zero. */
static void
ratelimit_consume(struct ratelimit *rl)
{
	rl->tokens -= 1.0;
	if (rl->tokens < 0.0)
		rl->tokens = 0.0;
}

bool
ratelimit_take(struct ratelimit *rl, int64_t now_ms)
{
	ratelimit_refill(rl, now_ms);
	if (!ratelimit_has_token(rl))
		return false;
	ratelimit_consume(rl);
	return true;
}

/* Keyed: the keys are addresses and user names that clients choose. */
static uint64_t
ratelimit_hash(const struct ratelimit_table *t, const char *key)
{
	return siphash24(t->hash_key, key, strlen(key));
}

struct ratelimit_table *
ratelimit_table_new(size_t max_entries)
{
	struct ratelimit_table	*t;
	size_t			 n;

	if (max_entries == 0)
		max_entries = 1;
	/* About one entry per chain when full; the table never resizes. */
	for (n = 16; n < max_entries && n < (SIZE_MAX >> 2); n <<= 1)
		continue;

	t = xcalloc(1, sizeof *t);
	t->buckets = xcalloc(n, sizeof *t->buckets);
	t->nbuckets = n;
	t->max_entries = max_entries;
	TAILQ_INIT(&t->lru);
	siphash_key_random(t->hash_key);
	return t;
}

static struct ratelimit_entry **
ratelimit_table_slot(struct ratelimit_table *t, uint64_t hash)
{
	return &t->buckets[hash & (t->nbuckets - 1)];
}

static struct ratelimit_entry *
ratelimit_table_find(struct ratelimit_table *t, const char *key)
{
	struct ratelimit_entry	*e;
	uint64_t		 hash = ratelimit_hash(t, key);

	for (e = *ratelimit_table_slot(t, hash); e != NULL; e = e->chain) {
		if (e->hash == hash && strcmp(e->key, key) == 0)
			return e;
	}
	return NULL;
}

static void
ratelimit_table_remove(struct ratelimit_table *t, struct ratelimit_entry *e)
{
	struct ratelimit_entry	**pp;

	for (pp = ratelimit_table_slot(t, e->hash); *pp != e;
	    pp = &(*pp)->chain)
		continue;
	*pp = e->chain;
	TAILQ_REMOVE(&t->lru, e, lru);
	t->size--;
	free(e->key);
	free(e);
}

static void
ratelimit_table_touch(struct ratelimit_table *t, struct ratelimit_entry *e)
{
	TAILQ_REMOVE(&t->lru, e, lru);
	TAILQ_INSERT_HEAD(&t->lru, e, lru);
}

/*
 * Bring an entry up to date: the caller's limit and window win (they come
 * from the live configuration, which a reload may have changed), then
 * refill to now.
 */
static void
ratelimit_table_refresh(struct ratelimit_entry *e, int limit,
    int64_t window_ms, int64_t now_ms)
{
	ratelimit_configure(&e->bucket, (double)limit * 1000.0 /
	    (double)window_ms, (double)limit);
	ratelimit_refill(&e->bucket, now_ms);
}

/* A full entry is indistinguishable from an absent one: drop it. */
static bool
ratelimit_table_drop_if_full(struct ratelimit_table *t,
    struct ratelimit_entry *e)
{
	if (e->bucket.tokens < e->bucket.burst - RATELIMIT_EPSILON)
		return false;
	ratelimit_table_remove(t, e);
	return true;
}

/*
 * Keep memory bounded under key churn without a timer: look at a few
 * entries at the tail and drop those that have refilled completely; the
 * others go to the head.  O(RATELIMIT_SWEEP) per call.  Nothing that is
 * still refilling is ever dropped.
 */
static void
ratelimit_table_sweep(struct ratelimit_table *t, int64_t now_ms)
{
	struct ratelimit_entry	*e;
	int			 n;

	for (n = 0; n < RATELIMIT_SWEEP &&
	    (e = TAILQ_LAST(&t->lru, ratelimit_lru)) != NULL; n++) {
		ratelimit_refill(&e->bucket, now_ms);
		if (!ratelimit_table_drop_if_full(t, e))
			ratelimit_table_touch(t, e);
	}
}

/* No room for a new key, even after dropping what has refilled. */
static bool
ratelimit_table_saturated(struct ratelimit_table *t, int64_t now_ms)
{
	if (t->size < t->max_entries)
		return false;
	ratelimit_table_sweep(t, now_ms);
	return t->size >= t->max_entries;
}

/* NULL when the table is saturated: evicting would forgive someone. */
static struct ratelimit_entry *
ratelimit_table_insert(struct ratelimit_table *t, const char *key,
    int limit, int64_t window_ms, int64_t now_ms)
{
	struct ratelimit_entry	*e, **slot;

	ratelimit_table_sweep(t, now_ms);
	if (t->size >= t->max_entries)
		return NULL;

	e = xcalloc(1, sizeof *e);
	e->key = xstrdup(key);
	e->hash = ratelimit_hash(t, key);
	ratelimit_init(&e->bucket, (double)limit * 1000.0 / (double)window_ms,
	    (double)limit, now_ms);
	slot = ratelimit_table_slot(t, e->hash);
	e->chain = *slot;
	*slot = e;
	TAILQ_INSERT_HEAD(&t->lru, e, lru);
	t->size++;
	return e;
}

/* A limit or window of zero or less means "no limit". */
static bool
ratelimit_table_unlimited(int limit, int64_t window_ms)
{
	return limit <= 0 || window_ms <= 0;
}

/* An unknown key is allowed unless the table could not count it. */
bool
ratelimit_table_check(struct ratelimit_table *t, const char *key,
    int limit, int64_t window_ms, int64_t now_ms)
{
	struct ratelimit_entry	*e;

	if (ratelimit_table_unlimited(limit, window_ms))
		return true;
	if ((e = ratelimit_table_find(t, key)) == NULL)
		return !ratelimit_table_saturated(t, now_ms);
	ratelimit_table_refresh(e, limit, window_ms, now_ms);
	if (ratelimit_table_drop_if_full(t, e))
		return true;
	ratelimit_table_touch(t, e);
	return ratelimit_has_token(&e->bucket);
}

bool
ratelimit_table_hit(struct ratelimit_table *t, const char *key,
    int limit, int64_t window_ms, int64_t now_ms)
{
	struct ratelimit_entry	*e;

	if (ratelimit_table_unlimited(limit, window_ms))
		return true;
	if ((e = ratelimit_table_find(t, key)) != NULL) {
		ratelimit_table_refresh(e, limit, window_ms, now_ms);
		ratelimit_table_touch(t, e);
	} else if ((e = ratelimit_table_insert(t, key, limit, window_ms,
	    now_ms)) == NULL)
		return false;
	ratelimit_consume(&e->bucket);
	return true;
}

void
ratelimit_table_refund(struct ratelimit_table *t, const char *key,
    int limit, int64_t window_ms, int64_t now_ms)
{
	struct ratelimit_entry	*e;

	if (ratelimit_table_unlimited(limit, window_ms) ||
	    (e = ratelimit_table_find(t, key)) == NULL)
		return;
	ratelimit_table_refresh(e, limit, window_ms, now_ms);
	e->bucket.tokens += 1.0;
	if (e->bucket.tokens > e->bucket.burst)
		e->bucket.tokens = e->bucket.burst;
	ratelimit_table_drop_if_full(t, e);
}

void
ratelimit_table_forget(struct ratelimit_table *t, const char *key)
{
	struct ratelimit_entry	*e;

	if ((e = ratelimit_table_find(t, key)) != NULL)
		ratelimit_table_remove(t, e);
}

size_t
ratelimit_table_size(const struct ratelimit_table *t)
{
	return t->size;
}

void
ratelimit_table_free(struct ratelimit_table *t)
{
	struct ratelimit_entry	*e;

	if (t == NULL)
		return;
	while ((e = TAILQ_FIRST(&t->lru)) != NULL)
		ratelimit_table_remove(t, e);
	free(t->buckets);
	free(t);
}

/* Clear the host bits of an IPv6 address past its first prefix bits. */
static void
ratelimit_addr_mask(struct in6_addr *a, int prefix)
{
	int	i, bits;

	for (i = 0; i < 16; i++) {
		bits = prefix - 8 * i;
		if (bits >= 8)
			continue;
		a->s6_addr[i] &= bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
	}
}

int
ratelimit_addr_key(const struct sockaddr *sa, int ipv6_prefix, char *buf,
    size_t len)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	char			 text[INET6_ADDRSTRLEN];

	if (len > 0)
		buf[0] = '\0';
	if (sa->sa_family == AF_INET) {
		memcpy(&sin, sa, sizeof sin);
		inet_ntop(AF_INET, &sin.sin_addr, text, sizeof text);
		snprintf(buf, len, "%s", text);
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -1;
	memcpy(&sin6, sa, sizeof sin6);
	/* A dual-stack socket shows IPv4 peers this way: still IPv4. */
	if (IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr)) {
		inet_ntop(AF_INET, &sin6.sin6_addr.s6_addr[12], text,
		    sizeof text);
		snprintf(buf, len, "%s", text);
		return 0;
	}
	if (ipv6_prefix < 0)
		ipv6_prefix = 0;
	if (ipv6_prefix > 128)
		ipv6_prefix = 128;
	ratelimit_addr_mask(&sin6.sin6_addr, ipv6_prefix);
	inet_ntop(AF_INET6, &sin6.sin6_addr, text, sizeof text);
	snprintf(buf, len, "%s/%d", text, ipv6_prefix);
	return 0;
}
