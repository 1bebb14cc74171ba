/* ratelimit: token buckets and a bounded, LRU-evicting table of them. */
#include <sys/queue.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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

struct ratelimit_entry {
	char				*key;
	uint64_t			 hash;
	struct ratelimit		 bucket;
	struct ratelimit_entry		*chain;		/* next in hash bucket */
	TAILQ_ENTRY(ratelimit_entry)	 lru;		/* head: most recent */
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
 * Keep memory bounded under address churn without a timer: every insert
 * looks at the least recently touched entry and drops it if it has
 * refilled completely.  O(1) per call.
 */
static void
ratelimit_table_sweep(struct ratelimit_table *t, int64_t now_ms)
{
	struct ratelimit_entry	*e;

	if ((e = TAILQ_LAST(&t->lru, ratelimit_lru)) == NULL)
		return;
	ratelimit_refill(&e->bucket, now_ms);
	ratelimit_table_drop_if_full(t, e);
}

static struct ratelimit_entry *
ratelimit_table_insert(struct ratelimit_table *t, const char *key,
    int limit, int64_t window_ms, int64_t now_ms)
{
	struct ratelimit_entry	*e, **slot;

	ratelimit_table_sweep(t, now_ms);
	/* Evicting only ever forgives: the key starts full next time. */
	if (t->size >= t->max_entries)
		ratelimit_table_remove(t, TAILQ_LAST(&t->lru, ratelimit_lru));

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

bool
ratelimit_table_check(struct ratelimit_table *t, const char *key,
    int limit, int64_t window_ms, int64_t now_ms)
{
	struct ratelimit_entry	*e;

	if (ratelimit_table_unlimited(limit, window_ms))
		return true;
	if ((e = ratelimit_table_find(t, key)) == NULL)
		return true;
	ratelimit_table_refresh(e, limit, window_ms, now_ms);
	if (ratelimit_table_drop_if_full(t, e))
		return true;
	ratelimit_table_touch(t, e);
	return ratelimit_has_token(&e->bucket);
}

void
ratelimit_table_hit(struct ratelimit_table *t, const char *key,
    int limit, int64_t window_ms, int64_t now_ms)
{
	struct ratelimit_entry	*e;

	if (ratelimit_table_unlimited(limit, window_ms))
		return;
	if ((e = ratelimit_table_find(t, key)) != NULL) {
		ratelimit_table_refresh(e, limit, window_ms, now_ms);
		ratelimit_table_touch(t, e);
	} else
		e = ratelimit_table_insert(t, key, limit, window_ms, now_ms);
	ratelimit_consume(&e->bucket);
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
