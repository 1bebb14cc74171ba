/* auth: scrypt password hashing and verification on a pthread pool. */
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "auth.h"
#include "siphash.h"
#include "xmalloc.h"

#define AUTH_PREFIX		"$scrypt$"
#define AUTH_R			8
#define AUTH_P			1
#define AUTH_SALT_LEN		16
#define AUTH_KEY_LEN		32
/* Standard base64 with '=' padding, as EVP_EncodeBlock writes it. */
#define AUTH_B64_LEN(n)		(4 * (((n) + 2) / 3))
#define AUTH_SALT_B64_LEN	AUTH_B64_LEN(AUTH_SALT_LEN)	/* 24 */
#define AUTH_KEY_B64_LEN	AUTH_B64_LEN(AUTH_KEY_LEN)	/* 44 */

/*
 * scrypt needs 128 * r * (N + 2 + p) bytes.  Stored hashes are ours, but a
 * corrupt or hand-edited one must fail cleanly rather than have the
 * kernel's OOM killer end the daemon: 2 GiB allows ln=20 (1 GiB at r=8)
 * with room, anything larger fails the verification.
 */
#define AUTH_MAXMEM_SLACK	((uint64_t)1 << 20)
#define AUTH_MAXMEM_CAP		((uint64_t)2 << 30)

#define AUTH_MAX_THREADS	64
#define AUTH_OWNER_BUCKETS	256	/* owners in flight: few (<= pending) */

/* The cost fields of a stored hash, in order, with what we accept. */
static const struct auth_cost_field {
	const char	*name;
	char		 end;
	int		 min;
	int		 max;
} auth_cost_fields[] = {
	{ "ln", ',', 1, 24 },
	{ "r", ',', 1, 32 },
	{ "p", '$', 1, 16 },
};
#define AUTH_NCOST_FIELDS \
	(sizeof auth_cost_fields / sizeof auth_cost_fields[0])

struct auth_parsed {
	int		 cost[AUTH_NCOST_FIELDS];	/* ln, r, p */
	unsigned char	 salt[AUTH_SALT_LEN];
	unsigned char	 key[AUTH_KEY_LEN];
};

/*
 * Jobs in flight for one owner.  Touched only on the loop thread (submit
 * and delivery), so it needs no lock.
 */
struct auth_owner {
	char			*key;
	int			 jobs;
	struct auth_owner	*next;
};

/* One job, which becomes its own result when the worker is done. */
struct auth_work {
	TAILQ_ENTRY(auth_work)	 entry;
	struct auth_owner	*owner;		/* NULL: not counted */
	char			*verify_pw;
	size_t			 verify_len;
	char			*stored_hash;	/* NULL: the dummy */
	char			*hash_pw;
	size_t			 hash_len;
	int			 log2_n;	/* for hash_pw, fixed at submit */
	struct auth_result	 result;
};
TAILQ_HEAD(auth_queue, auth_work);

/*
 * Workers wake the loop with event_active() on ev (fd -1, added nowhere)
 * rather than through a pipe or eventfd of our own: with
 * evthread_use_pthreads() libevent already has a locked, thread-safe
 * notification channel into the loop, so we manage no descriptors, and
 * several wake-ups before the loop runs collapse into one callback.
 */
struct auth {
	struct event		*ev;		/* results ready: wakes the loop */
	auth_done_fn		*done;
	void			*arg;
	pthread_t		*threads;
	int			 nthreads;
	size_t			 max_pending;
	struct auth_owner	*owners[AUTH_OWNER_BUCKETS];	/* loop only */
	uint8_t			 owner_key[SIPHASH_KEY_LEN];	/* random */

	pthread_mutex_t		 lock;		/* protects all below */
	pthread_cond_t		 cond;		/* job queued, or stopping */
	struct auth_queue	 jobs;
	struct auth_queue	 results;
	size_t			 pending;	/* queued+running+undelivered */
	int			 log2_n;
	char			*dummy;		/* hash of random bytes */
	int			 dummy_log2_n;
	bool			 stopping;
};

/* scrypt with our fixed salt and key sizes.  false on any failure. */
static bool
auth_kdf(const char *pw, size_t len, int ln, uint32_t r, uint32_t p,
    const unsigned char *salt, unsigned char *key)
{
	EVP_KDF		*kdf;
	EVP_KDF_CTX	*ctx = NULL;
	OSSL_PARAM	 params[7], *q = params;
	uint64_t	 n = (uint64_t)1 << ln;
	uint64_t	 maxmem;
	bool		 ok = false;

	maxmem = 128 * (uint64_t)r * (n + 2 + p) + AUTH_MAXMEM_SLACK;
	if (maxmem > AUTH_MAXMEM_CAP)
		return false;

	if ((kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_SCRYPT, NULL)) == NULL)
		goto out;
	if ((ctx = EVP_KDF_CTX_new(kdf)) == NULL)
		goto out;
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
	    (void *)(pw != NULL ? pw : ""), len);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
	    (void *)salt, AUTH_SALT_LEN);
	*q++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	*q++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
	*q++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
	*q++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM,
	    &maxmem);
	*q = OSSL_PARAM_construct_end();
	ok = EVP_KDF_derive(ctx, key, AUTH_KEY_LEN, params) == 1;
out:
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	/* Workers live long: do not let their error queues fill up. */
	if (!ok)
		ERR_clear_error();
	return ok;
}

char *
auth_hash_password(const char *pw, size_t len, int log2_n)
{
	unsigned char	 salt[AUTH_SALT_LEN], key[AUTH_KEY_LEN];
	char		 salt64[AUTH_SALT_B64_LEN + 1];
	char		 key64[AUTH_KEY_B64_LEN + 1];
	char		*hash = NULL;

	if (log2_n < AUTH_MIN_LOG2_N || log2_n > AUTH_MAX_LOG2_N)
		return NULL;
	if (RAND_bytes(salt, sizeof salt) != 1) {
		ERR_clear_error();
		return NULL;
	}
	if (auth_kdf(pw, len, log2_n, AUTH_R, AUTH_P, salt, key)) {
		EVP_EncodeBlock((unsigned char *)salt64, salt, sizeof salt);
		EVP_EncodeBlock((unsigned char *)key64, key, sizeof key);
		xasprintf(&hash, AUTH_PREFIX "ln=%d,r=%d,p=%d$%s$%s",
		    log2_n, AUTH_R, AUTH_P, salt64, key64);
	}
	OPENSSL_cleanse(key, sizeof key);
	OPENSSL_cleanse(key64, sizeof key64);
	return hash;
}

/*
 * Parse "name=digits" followed by the field's end character.  Returns the
 * position after it, or NULL.
 */
static const char *
auth_parse_cost(const char *s, const struct auth_cost_field *f, int *out)
{
	size_t	 nlen = strlen(f->name);
	int	 v = 0, digits = 0;

	if (strncmp(s, f->name, nlen) != 0 || s[nlen] != '=')
		return NULL;
	for (s += nlen + 1; *s >= '0' && *s <= '9'; s++) {
		if (++digits > 4)	/* no overflow, and far out of range */
			return NULL;
		v = v * 10 + (*s - '0');
	}
	if (digits == 0 || *s != f->end || v < f->min || v > f->max)
		return NULL;
	*out = v;
	return s + 1;
}

/*
 * Decode exactly len bytes from the padded base64 in src[0..srclen).
 * EVP_DecodeBlock tolerates surrounding blanks and stray bits, so the
 * result is re-encoded and compared: only our own canonical text passes.
 */
static bool
auth_b64_decode(const char *src, size_t srclen, unsigned char *dst,
    size_t len)
{
	unsigned char	 buf[AUTH_KEY_B64_LEN];
	char		 again[AUTH_KEY_B64_LEN + 1];
	bool		 ok;

	if (len > AUTH_KEY_LEN || srclen != AUTH_B64_LEN(len))
		return false;
	if (EVP_DecodeBlock(buf, (const unsigned char *)src, srclen) < 0)
		return false;
	EVP_EncodeBlock((unsigned char *)again, buf, len);
	ok = memcmp(again, src, srclen) == 0;
	if (ok)
		memcpy(dst, buf, len);
	OPENSSL_cleanse(buf, sizeof buf);
	return ok;
}

static bool
auth_parse(const char *hash, struct auth_parsed *ph)
{
	const char	*s = hash, *dollar;
	size_t		 i;

	if (strncmp(s, AUTH_PREFIX, strlen(AUTH_PREFIX)) != 0)
		return false;
	s += strlen(AUTH_PREFIX);
	for (i = 0; i < AUTH_NCOST_FIELDS; i++) {
		if ((s = auth_parse_cost(s, &auth_cost_fields[i],
		    &ph->cost[i])) == NULL)
			return false;
	}
	if ((dollar = strchr(s, '$')) == NULL)
		return false;
	if (!auth_b64_decode(s, dollar - s, ph->salt, AUTH_SALT_LEN))
		return false;
	s = dollar + 1;
	return auth_b64_decode(s, strlen(s), ph->key, AUTH_KEY_LEN);
}

bool
auth_verify_password(const char *pw, size_t len, const char *hash,
    bool *failed)
{
	struct auth_parsed	 ph;
	unsigned char		 key[AUTH_KEY_LEN];
	bool			 ok = false, bad = true;

	if (hash != NULL && auth_parse(hash, &ph) &&
	    auth_kdf(pw, len, ph.cost[0], ph.cost[1], ph.cost[2], ph.salt,
	    key)) {
		ok = CRYPTO_memcmp(key, ph.key, sizeof key) == 0;
		bad = false;
	}
	OPENSSL_cleanse(key, sizeof key);
	OPENSSL_cleanse(&ph, sizeof ph);
	if (failed != NULL)
		*failed = bad;
	return ok;
}

/* A hash of random bytes nobody knows, for unknown users. */
static char *
auth_dummy_make(int log2_n)
{
	unsigned char	 pw[16];
	char		*hash;

	if (RAND_bytes(pw, sizeof pw) != 1) {
		ERR_clear_error();
		return NULL;
	}
	hash = auth_hash_password((const char *)pw, sizeof pw, log2_n);
	OPENSSL_cleanse(pw, sizeof pw);
	return hash;
}

/*
 * A copy of the dummy hash at the current cost.  After auth_set_cost the
 * first worker that needs it makes a new one (the loop thread must not
 * spend a KDF on it); until it is installed, others use the old one.
 */
static char *
auth_dummy_get(struct auth *a)
{
	char	*copy, *fresh;
	int	 want;

	pthread_mutex_lock(&a->lock);
	want = a->log2_n;
	if (a->dummy_log2_n == want) {
		copy = xstrdup(a->dummy);
		pthread_mutex_unlock(&a->lock);
		return copy;
	}
	pthread_mutex_unlock(&a->lock);

	fresh = auth_dummy_make(want);

	pthread_mutex_lock(&a->lock);
	if (fresh != NULL && a->log2_n == want && a->dummy_log2_n != want) {
		free(a->dummy);
		a->dummy = fresh;
		a->dummy_log2_n = want;
		fresh = NULL;
	}
	copy = xstrdup(a->dummy);
	pthread_mutex_unlock(&a->lock);
	free(fresh);
	return copy;
}

static char *
auth_secret_copy(const char *pw, size_t len)
{
	char	*copy = xmalloc(len + 1);

	memcpy(copy, pw, len);
	copy[len] = '\0';
	return copy;
}

static void
auth_secret_free(char **pw, size_t len)
{
	if (*pw == NULL)
		return;
	OPENSSL_cleanse(*pw, len);
	free(*pw);
	*pw = NULL;
}

/*
 * Wipe the passwords as soon as they are no longer needed.  The stored
 * hash stays until delivery: the caller compares it with the account's
 * hash then, to tell whether the password changed meanwhile.
 */
static void
auth_work_wipe(struct auth_work *w)
{
	auth_secret_free(&w->verify_pw, w->verify_len);
	auth_secret_free(&w->hash_pw, w->hash_len);
}

static void
auth_work_free(struct auth_work *w)
{
	auth_work_wipe(w);
	free(w->stored_hash);
	if (w->result.new_hash != NULL)
		auth_secret_free(&w->result.new_hash,
		    strlen(w->result.new_hash));
	free(w);
}

/* The slot of owner key (keyed hash: clients choose their addresses). */
static struct auth_owner **
auth_owner_slot(struct auth *a, const char *key)
{
	struct auth_owner	**pp;
	uint64_t		  h;

	h = siphash24(a->owner_key, key, strlen(key));
	for (pp = &a->owners[h % AUTH_OWNER_BUCKETS]; *pp != NULL;
	    pp = &(*pp)->next) {
		if (strcmp((*pp)->key, key) == 0)
			break;
	}
	return pp;
}

bool
auth_owner_full(struct auth *a, const char *owner)
{
	struct auth_owner	*o;

	if (owner == NULL)
		return false;
	o = *auth_owner_slot(a, owner);
	return o != NULL && o->jobs >= AUTH_MAX_PER_OWNER;
}

/* Count one more job for key (loop thread). */
static struct auth_owner *
auth_owner_get(struct auth *a, const char *key)
{
	struct auth_owner	**pp, *o;

	pp = auth_owner_slot(a, key);
	if ((o = *pp) == NULL) {
		o = xcalloc(1, sizeof *o);
		o->key = xstrdup(key);
		*pp = o;
	}
	o->jobs++;
	return o;
}

/* One job of o is over (delivered or dropped); loop thread. */
static void
auth_owner_put(struct auth *a, struct auth_owner *o)
{
	struct auth_owner	**pp;

	if (o == NULL || --o->jobs > 0)
		return;
	pp = auth_owner_slot(a, o->key);
	*pp = o->next;
	free(o->key);
	free(o);
}

/* Worker side: do the job.  No libevent here. */
static void
auth_work_run(struct auth *a, struct auth_work *w)
{
	struct auth_result	*r = &w->result;
	char			*dummy;
	bool			 failed = false;

	if (w->verify_pw != NULL && w->stored_hash != NULL)
		r->verified = auth_verify_password(w->verify_pw,
		    w->verify_len, w->stored_hash, &failed);
	else if (w->verify_pw != NULL) {
		dummy = auth_dummy_get(a);
		(void)auth_verify_password(w->verify_pw, w->verify_len, dummy,
		    &failed);
		free(dummy);
		r->verified = false;
	}
	r->failed = failed;

	/* passwd: no new hash unless the old password matched. */
	if (w->hash_pw != NULL && (w->verify_pw == NULL || r->verified)) {
		r->new_hash = auth_hash_password(w->hash_pw, w->hash_len,
		    w->log2_n);
		if (r->new_hash == NULL)
			r->failed = true;
	}
	auth_work_wipe(w);
}

static void *
auth_worker(void *arg)
{
	struct auth		*a = arg;
	struct auth_work	*w;

	/*
	 * Hashing is slow on purpose and may wait; chat may not.  A lower
	 * priority for this thread only (Linux nice is per thread) lets the
	 * event loop have a core whenever it needs one during a login storm.
	 * Lowering one's own priority needs no privilege; failing is harmless.
	 */
	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid),
	    AUTH_WORKER_NICE);

	for (;;) {
		pthread_mutex_lock(&a->lock);
		while (!a->stopping && TAILQ_EMPTY(&a->jobs))
			pthread_cond_wait(&a->cond, &a->lock);
		if (a->stopping) {
			pthread_mutex_unlock(&a->lock);
			break;
		}
		w = TAILQ_FIRST(&a->jobs);
		TAILQ_REMOVE(&a->jobs, w, entry);
		pthread_mutex_unlock(&a->lock);

		auth_work_run(a, w);

		pthread_mutex_lock(&a->lock);
		TAILQ_INSERT_TAIL(&a->results, w, entry);
		pthread_mutex_unlock(&a->lock);
		/* The one libevent call a worker makes; thread-safe. */
		event_active(a->ev, EV_READ, 0);
	}
	return NULL;
}

/*
 * Loop side: deliver what is ready.  Only the results present on entry are
 * handled, so workers finishing meanwhile cannot keep us here; their
 * event_active runs this again.
 */
static void
auth_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct auth		*a = arg;
	struct auth_queue	 ready;
	struct auth_work	*w;

	TAILQ_INIT(&ready);
	pthread_mutex_lock(&a->lock);
	TAILQ_CONCAT(&ready, &a->results, entry);
	pthread_mutex_unlock(&a->lock);

	while ((w = TAILQ_FIRST(&ready)) != NULL) {
		TAILQ_REMOVE(&ready, w, entry);
		pthread_mutex_lock(&a->lock);
		a->pending--;
		pthread_mutex_unlock(&a->lock);
		/* Before the callback, which may submit this owner's next. */
		auth_owner_put(a, w->owner);
		w->owner = NULL;
		a->done(&w->result, a->arg);
		auth_work_free(w);
	}
}

/* Workers block every signal: libevent handles them on the loop thread. */
static int
auth_start_workers(struct auth *a, int nthreads)
{
	sigset_t	 all, old;
	int		 error = 0;

	a->threads = xcalloc(nthreads, sizeof *a->threads);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (a->nthreads = 0; a->nthreads < nthreads; a->nthreads++) {
		error = pthread_create(&a->threads[a->nthreads], NULL,
		    auth_worker, a);
		if (error != 0)
			break;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return error == 0 ? 0 : -1;
}

struct auth *
auth_new(struct event_base *base, int nthreads, int log2_n,
    auth_done_fn *done, void *arg)
{
	struct auth	*a;

	if (nthreads < 1 || nthreads > AUTH_MAX_THREADS ||
	    log2_n < AUTH_MIN_LOG2_N || log2_n > AUTH_MAX_LOG2_N ||
	    done == NULL)
		return NULL;

	a = xcalloc(1, sizeof *a);
	a->done = done;
	a->arg = arg;
	a->log2_n = log2_n;
	a->max_pending = (size_t)nthreads * AUTH_PENDING_PER_THREAD;
	siphash_key_random(a->owner_key);
	TAILQ_INIT(&a->jobs);
	TAILQ_INIT(&a->results);
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);

	/* At start-up, before the loop runs, one KDF here is fine. */
	a->dummy = auth_dummy_make(log2_n);
	a->dummy_log2_n = log2_n;
	a->ev = event_new(base, -1, 0, auth_done_cb, a);
	if (a->dummy == NULL || a->ev == NULL ||
	    auth_start_workers(a, nthreads) != 0) {
		auth_free(a);
		return NULL;
	}
	return a;
}

void
auth_free(struct auth *a)
{
	struct auth_work	*w;
	int			 i;

	if (a == NULL)
		return;

	pthread_mutex_lock(&a->lock);
	a->stopping = true;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
	/* A worker inside a KDF finishes it first; none is interruptible. */
	for (i = 0; i < a->nthreads; i++)
		pthread_join(a->threads[i], NULL);

	while ((w = TAILQ_FIRST(&a->jobs)) != NULL) {
		TAILQ_REMOVE(&a->jobs, w, entry);
		auth_owner_put(a, w->owner);
		auth_work_free(w);
	}
	while ((w = TAILQ_FIRST(&a->results)) != NULL) {
		TAILQ_REMOVE(&a->results, w, entry);
		auth_owner_put(a, w->owner);
		auth_work_free(w);
	}
	if (a->ev != NULL)
		event_free(a->ev);
	free(a->dummy);
	free(a->threads);
	pthread_cond_destroy(&a->cond);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

void
auth_set_cost(struct auth *a, int log2_n)
{
	if (log2_n < AUTH_MIN_LOG2_N)
		log2_n = AUTH_MIN_LOG2_N;
	if (log2_n > AUTH_MAX_LOG2_N)
		log2_n = AUTH_MAX_LOG2_N;
	pthread_mutex_lock(&a->lock);
	a->log2_n = log2_n;
	pthread_mutex_unlock(&a->lock);
}

int
auth_submit(struct auth *a, const struct auth_job *job)
{
	struct auth_work	*w;

	if (job->verify_password == NULL && job->hash_password == NULL)
		return -1;
	if (auth_owner_full(a, job->owner))
		return -1;

	w = xcalloc(1, sizeof *w);
	w->result.cookie = job->cookie;
	if (job->verify_password != NULL) {
		w->verify_pw = auth_secret_copy(job->verify_password,
		    job->verify_len);
		w->verify_len = job->verify_len;
		if (job->stored_hash != NULL)
			w->stored_hash = xstrdup(job->stored_hash);
		w->result.checked_hash = w->stored_hash;
	}
	if (job->hash_password != NULL) {
		w->hash_pw = auth_secret_copy(job->hash_password,
		    job->hash_len);
		w->hash_len = job->hash_len;
	}

	pthread_mutex_lock(&a->lock);
	if (a->stopping || a->pending >= a->max_pending) {
		pthread_mutex_unlock(&a->lock);
		auth_work_free(w);
		return -1;
	}
	w->log2_n = a->log2_n;
	/* Counted before a worker can see it; uncounted on delivery. */
	if (job->owner != NULL)
		w->owner = auth_owner_get(a, job->owner);
	TAILQ_INSERT_TAIL(&a->jobs, w, entry);
	a->pending++;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
	return 0;
}

size_t
auth_pending(struct auth *a)
{
	size_t	n;

	pthread_mutex_lock(&a->lock);
	n = a->pending;
	pthread_mutex_unlock(&a->lock);
	return n;
}
