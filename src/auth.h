/*
 * auth: password hashing with scrypt (OpenSSL EVP_KDF) on a small pool of
 * worker threads, so a burst of logins never stalls the event loop.  A job
 * is submitted from the loop thread; its result comes back on the loop
 * thread through a libevent event, addressed by an opaque cookie (the
 * session id), never by a pointer that may have died meanwhile.
 *
 * Hash encoding (parameters beside the hash, so the cost can be raised
 * later and old hashes still verify):
 *	$scrypt$ln=15,r=8,p=1$<base64 salt>$<base64 key>
 * Salt 16 bytes, key 32 bytes, standard base64 WITH '=' padding (as
 * OpenSSL's EVP_EncodeBlock writes it: 24 and 44 characters).  Stored
 * hashes verify with ln 1..24, r 1..32, p 1..16 as long as scrypt needs
 * at most 2 GiB; anything else, or non-canonical base64, is "failed".
 *
 * Bounds: at most AUTH_PENDING_PER_THREAD jobs per worker are pending at
 * once (queued, running or not yet delivered), and at most
 * AUTH_MAX_PER_OWNER of them for one owner (the caller's key for whoever
 * is charged: a remote address).  Jobs run in the order submitted, so a
 * job waits behind at most AUTH_MAX_PER_OWNER jobs of any one owner: each
 * address gets its share of the workers, however many connections it
 * opens.  The owner's count drops when the job's result is delivered,
 * whether or not its connection still exists.
 *
 * Threads: the workers wake the loop with event_active() on an event of
 * base, so the program must call evthread_use_pthreads() BEFORE creating
 * base.  Everything else (auth_new, auth_submit, auth_owner_full,
 * auth_set_cost, auth_pending, auth_free) is called on the loop thread.
 */
#ifndef NETSOCK_AUTH_H
#define NETSOCK_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct auth;

#define AUTH_DEFAULT_LOG2_N	15	/* scrypt N = 32768, r = 8, p = 1 */
#define AUTH_MIN_LOG2_N		10
#define AUTH_MAX_LOG2_N		20
#define AUTH_WORKER_NICE	19	/* workers yield to the event loop */
#define AUTH_PENDING_PER_THREAD	64	/* auth_submit refuses beyond
					   this many per worker */
#define AUTH_MAX_PER_OWNER	4	/* jobs in flight for one owner */

/* What a job asks for: a verification, a new hash, or both (passwd). */
struct auth_job {
	const char	*verify_password;	/* NULL: no verification */
	size_t		 verify_len;
	const char	*stored_hash;	/* NULL with verify: a dummy hash, so
					   unknown users cost the same time */
	const char	*hash_password;	/* NULL: no new hash */
	size_t		 hash_len;
	uint64_t	 cookie;	/* handed back unchanged */
	const char	*owner;		/* who is charged (copied); NULL:
					   nobody (the admin channel) */
};

struct auth_result {
	uint64_t	 cookie;
	bool		 verified;	/* verification asked and matched */
	char		*new_hash;	/* hash asked and made; borrowed for
					   the callback, NULL on failure */
	bool		 failed;	/* internal error (bad stored hash,
					   KDF failure) */
	const char	*checked_hash;	/* the job's stored_hash, borrowed
					   for the callback; NULL if none */
};
/*
 * With both verify and hash (passwd) the new hash is made only if the
 * verification matched; otherwise new_hash is NULL and failed is false.
 * With stored_hash NULL (unknown user) the result is never verified.
 */

typedef void	auth_done_fn(const struct auth_result *, void *arg);

/*
 * Start nthreads (1..64) workers hashing at cost 2^log2_n (AUTH_MIN_LOG2_N
 * .. AUTH_MAX_LOG2_N); NULL if the arguments are out of range or a thread
 * cannot start.  Computes the dummy hash before returning, so this blocks
 * for one KDF: call it at start-up.  done is called on the loop thread of
 * base for every finished job, with arg; it must not call auth_free.
 */
struct auth	*auth_new(struct event_base *base, int nthreads, int log2_n,
		    auth_done_fn *done, void *arg);
/*
 * Stop the workers (jobs not started are dropped, passwords wiped; jobs
 * running are finished first; no done callback is called from here on).
 * Call before event_base_free(base).  auth_free(NULL) does nothing.
 */
void		 auth_free(struct auth *a);
/*
 * New cost (clamped to the range above) for jobs submitted from now on
 * (reload).  Does not block: the dummy hash is remade at the new cost by
 * the first worker that needs it.
 */
void		 auth_set_cost(struct auth *a, int log2_n);
/*
 * Queue a job; passwords, stored_hash and owner are copied (passwords
 * wiped after use).  -1 if the job asks for nothing, the pool is full
 * (AUTH_PENDING_PER_THREAD per worker) or the job's owner has
 * AUTH_MAX_PER_OWNER jobs in flight.
 */
int		 auth_submit(struct auth *a, const struct auth_job *job);
/* owner has AUTH_MAX_PER_OWNER jobs in flight: its next one is refused. */
bool		 auth_owner_full(struct auth *a, const char *owner);
/* Jobs queued, running or not yet delivered, for stats and back-pressure. */
size_t		 auth_pending(struct auth *a);

/*
 * Synchronous primitives (used by the workers, tests and tools).  The hash
 * is a new string (free it), NULL on failure or log2_n out of range.
 * failed may be NULL; it is set true for a malformed hash or KDF failure.
 */
char		*auth_hash_password(const char *pw, size_t len, int log2_n);
bool		 auth_verify_password(const char *pw, size_t len,
		    const char *hash, bool *failed);

#endif
