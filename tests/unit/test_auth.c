/* Unit tests for auth.c: scrypt hashes, their encoding, and the pool. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/evp.h>

#include "auth.h"

#define TEST_LN		10	/* the cheapest cost auth accepts */
#define TEST_PREFIX	"$scrypt$ln=10,r=8,p=1$"
#define SAFETY_SECONDS	60

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *
hash_str(const char *pw, int ln)
{
	char	*h = auth_hash_password(pw, strlen(pw), ln);

	assert_non_null(h);
	return h;
}

static bool
verify_str(const char *pw, const char *hash, bool *failed)
{
	return auth_verify_password(pw, strlen(pw), hash, failed);
}

static void
test_hash_then_verify_ok(void **state)
{
	char	*h = hash_str("correct horse", TEST_LN);
	bool	 failed = true;

	assert_true(verify_str("correct horse", h, &failed));
	assert_false(failed);
	free(h);
}

static void
test_wrong_password_not_verified(void **state)
{
	char	*h = hash_str("correct horse", TEST_LN);
	bool	 failed = true;

	assert_false(verify_str("correct horsf", h, &failed));
	assert_false(failed);
	assert_false(verify_str("", h, &failed));
	assert_false(failed);
	free(h);
}

static void
test_length_is_honoured_not_nul(void **state)
{
	char	*h = auth_hash_password("ab\0cd", 5, TEST_LN);

	assert_non_null(h);
	assert_true(auth_verify_password("ab\0cd", 5, h, NULL));
	assert_false(auth_verify_password("ab", 2, h, NULL));
	assert_false(auth_verify_password("ab\0ce", 5, h, NULL));
	free(h);
}

static void
test_same_password_hashes_differ_and_both_verify(void **state)
{
	char	*h1 = hash_str("same", TEST_LN);
	char	*h2 = hash_str("same", TEST_LN);

	assert_string_not_equal(h1, h2);
	assert_true(verify_str("same", h1, NULL));
	assert_true(verify_str("same", h2, NULL));
	free(h1);
	free(h2);
}

static void
test_hash_format(void **state)
{
	char		*h = hash_str("format", TEST_LN);
	const char	*salt, *key;

	assert_int_equal(strncmp(h, TEST_PREFIX, strlen(TEST_PREFIX)), 0);
	salt = h + strlen(TEST_PREFIX);
	/* 16 bytes: 22 base64 characters and "==". */
	assert_int_equal(strspn(salt, b64_alphabet), 22);
	assert_memory_equal(salt + 22, "==$", 3);
	/* 32 bytes: 43 base64 characters and "=", then the end. */
	key = salt + 25;
	assert_int_equal(strspn(key, b64_alphabet), 43);
	assert_string_equal(key + 43, "=");
	assert_int_equal(strlen(h), strlen(TEST_PREFIX) + 24 + 1 + 44);
	free(h);
}

static void
test_password_not_in_hash(void **state)
{
	const char	*pw = "Secr3tPassw0rd";
	char		*h = hash_str(pw, TEST_LN);

	assert_null(strstr(h, pw));
	assert_null(strstr(h, "Secr3t"));
	free(h);
}

static void
test_out_of_range_cost_refused(void **state)
{
	assert_null(auth_hash_password("x", 1, AUTH_MIN_LOG2_N - 1));
	assert_null(auth_hash_password("x", 1, AUTH_MAX_LOG2_N + 1));
}

/* The whole key is compared: a change in its last byte is a mismatch. */
static void
test_key_differing_in_last_byte_not_verified(void **state)
{
	char		*h = hash_str("pw", TEST_LN);
	char		*key64 = h + strlen(TEST_PREFIX) + 25;
	unsigned char	 key[33];
	bool		 failed = true;

	assert_int_equal(EVP_DecodeBlock(key, (unsigned char *)key64, 44),
	    33);
	key[31] ^= 0x01;
	EVP_EncodeBlock((unsigned char *)key64, key, 32);
	assert_false(verify_str("pw", h, &failed));
	assert_false(failed);
	free(h);
}

/*
 * A hash with other r and p, made with a different OpenSSL entry point
 * (EVP_PBE_scrypt): the costs come from the string, and our KDF agrees.
 */
static void
test_verify_uses_stored_costs(void **state)
{
	static const unsigned char salt[16] = "0123456789abcdef";
	unsigned char	 key[32];
	char		 salt64[25], key64[45], hash[160];
	bool		 failed = true;

	assert_int_equal(EVP_PBE_scrypt("pw", 2, salt, sizeof salt, 1 << 9,
	    4, 2, 0, key, sizeof key), 1);
	EVP_EncodeBlock((unsigned char *)salt64, salt, sizeof salt);
	EVP_EncodeBlock((unsigned char *)key64, key, sizeof key);
	snprintf(hash, sizeof hash, "$scrypt$ln=9,r=4,p=2$%s$%s", salt64,
	    key64);
	assert_true(verify_str("pw", hash, &failed));
	assert_false(failed);
	assert_false(verify_str("pW", hash, &failed));
	assert_false(failed);

	/* Same key, but claiming r=8: a different KDF, so no match. */
	snprintf(hash, sizeof hash, "$scrypt$ln=9,r=8,p=2$%s$%s", salt64,
	    key64);
	assert_false(verify_str("pw", hash, &failed));
	assert_false(failed);
}

static void
test_malformed_hashes_failed(void **state)
{
	static const struct {
		const char	*what;
		const char	*prefix;	/* replaces TEST_PREFIX */
		const char	*salt;		/* NULL: the real one */
		const char	*key;		/* NULL: the real one */
	} cases[] = {
		{ "wrong scheme", "$scrypy$ln=10,r=8,p=1$", NULL, NULL },
		{ "no scheme", "ln=10,r=8,p=1$", NULL, NULL },
		{ "ln=99", "$scrypt$ln=99,r=8,p=1$", NULL, NULL },
		{ "ln=0", "$scrypt$ln=0,r=8,p=1$", NULL, NULL },
		{ "ln=25", "$scrypt$ln=25,r=8,p=1$", NULL, NULL },
		{ "ln huge", "$scrypt$ln=4294967306,r=8,p=1$", NULL, NULL },
		{ "ln negative", "$scrypt$ln=-10,r=8,p=1$", NULL, NULL },
		{ "ln empty", "$scrypt$ln=,r=8,p=1$", NULL, NULL },
		{ "r=0", "$scrypt$ln=10,r=0,p=1$", NULL, NULL },
		{ "r=33", "$scrypt$ln=10,r=33,p=1$", NULL, NULL },
		{ "p=17", "$scrypt$ln=10,r=8,p=17$", NULL, NULL },
		{ "fields swapped", "$scrypt$r=8,ln=10,p=1$", NULL, NULL },
		{ "p missing", "$scrypt$ln=10,r=8$", NULL, NULL },
		{ "too much memory", "$scrypt$ln=24,r=32,p=1$", NULL, NULL },
		{ "salt bad base64", NULL, "!!!!!!!!!!!!!!!!!!!!!!==", NULL },
		{ "salt short", NULL, "AAAAAAAAAAAAAAAAAAAA==", NULL },
		{ "salt unpadded", NULL, "AAAAAAAAAAAAAAAAAAAAAA", NULL },
		{ "salt stray bits", NULL, "AAAAAAAAAAAAAAAAAAAAAB==", NULL },
		{ "salt blank", NULL, " AAAAAAAAAAAAAAAAAAAAA==", NULL },
		{ "key bad base64", NULL, NULL,
		    "*******************************************=" },
		{ "key empty", NULL, NULL, "" },
		{ "key too long", NULL, NULL,
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" },
	};
	char		*good = hash_str("pw", TEST_LN);
	const char	*salt = good + strlen(TEST_PREFIX);
	char		 real_salt[25], real_key[45], bad[256];
	bool		 failed;
	size_t		 i;

	memcpy(real_salt, salt, 24);
	real_salt[24] = '\0';
	snprintf(real_key, sizeof real_key, "%s", salt + 25);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(bad, sizeof bad, "%s%s$%s",
		    cases[i].prefix != NULL ? cases[i].prefix : TEST_PREFIX,
		    cases[i].salt != NULL ? cases[i].salt : real_salt,
		    cases[i].key != NULL ? cases[i].key : real_key);
		failed = false;
		if (verify_str("pw", bad, &failed) || !failed)
			fail_msg("case \"%s\" (%s) not failed", cases[i].what,
			    bad);
	}

	/* Whole-string cases. */
	failed = false;
	assert_false(verify_str("pw", "", &failed));
	assert_true(failed);
	failed = false;
	assert_false(verify_str("pw", "$scrypt$", &failed));
	assert_true(failed);
	failed = false;
	assert_false(verify_str("pw", NULL, &failed));
	assert_true(failed);
	snprintf(bad, sizeof bad, "%s\n", good);
	failed = false;
	assert_false(verify_str("pw", bad, &failed));
	assert_true(failed);

	/* The unmodified hash does verify, so the cases above are fair. */
	snprintf(bad, sizeof bad, "%s%s$%s", TEST_PREFIX, real_salt,
	    real_key);
	assert_true(verify_str("pw", bad, &failed));
	assert_false(failed);
	free(good);
}

/* --- the pool on a real event_base ------------------------------------ */

#define POOL_MAX	32
#define COOKIE_BASE	7000

struct pool_state {
	struct event_base	*base;
	int			 want;
	int			 ncalls;
	int			 bogus;		/* unknown cookies */
	int			 seen[POOL_MAX];
	bool			 verified[POOL_MAX];
	bool			 failed[POOL_MAX];
	char			*checked[POOL_MAX];	/* checked_hash */
	char			*new_hash[POOL_MAX];
	bool			 timed_out;
};

static void
pool_done(const struct auth_result *r, void *arg)
{
	struct pool_state	*ps = arg;
	uint64_t		 i = r->cookie - COOKIE_BASE;

	if (r->cookie < COOKIE_BASE || i >= POOL_MAX) {
		ps->bogus++;
		return;
	}
	ps->seen[i]++;
	ps->verified[i] = r->verified;
	ps->failed[i] = r->failed;
	free(ps->new_hash[i]);
	ps->new_hash[i] = r->new_hash != NULL ? strdup(r->new_hash) : NULL;
	free(ps->checked[i]);
	ps->checked[i] = r->checked_hash != NULL ? strdup(r->checked_hash) :
	    NULL;
	if (++ps->ncalls == ps->want)
		event_base_loopexit(ps->base, NULL);
}

static void
pool_safety_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pool_state	*ps = arg;

	ps->timed_out = true;
	event_base_loopexit(ps->base, NULL);
}

/* Run the loop until want callbacks arrived; fail instead of hanging. */
static void
pool_run(struct pool_state *ps, int want)
{
	struct timeval	 tv = { SAFETY_SECONDS, 0 };
	struct event	*safety;

	ps->want = want;
	safety = evtimer_new(ps->base, pool_safety_timer_cb, ps);
	assert_non_null(safety);
	evtimer_add(safety, &tv);
	assert_int_equal(event_base_dispatch(ps->base), 0);
	event_free(safety);
	assert_false(ps->timed_out);
	assert_int_equal(ps->ncalls, want);
	assert_int_equal(ps->bogus, 0);
}

static int
pool_setup(void **state)
{
	struct pool_state	*ps = calloc(1, sizeof *ps);

	if (ps == NULL || (ps->base = event_base_new()) == NULL)
		return -1;
	*state = ps;
	return 0;
}

static int
pool_teardown(void **state)
{
	struct pool_state	*ps = *state;
	int			 i;

	for (i = 0; i < POOL_MAX; i++) {
		free(ps->new_hash[i]);
		free(ps->checked[i]);
	}
	event_base_free(ps->base);
	free(ps);
	return 0;
}

enum pool_kind {
	POOL_HASH,
	POOL_VERIFY_OK,
	POOL_VERIFY_WRONG,
	POOL_VERIFY_UNKNOWN,
	POOL_PASSWD_OK,
	POOL_PASSWD_WRONG,
};

static const struct pool_kind_expect {
	enum pool_kind	 kind;
	bool		 verified;
	const char	*new_pw;	/* NULL: no new hash expected */
} pool_expect[] = {
	{ POOL_HASH, false, "fresh-pw" },
	{ POOL_VERIFY_OK, true, NULL },
	{ POOL_VERIFY_WRONG, false, NULL },
	{ POOL_VERIFY_UNKNOWN, false, NULL },
	{ POOL_PASSWD_OK, true, "next-pw" },
	{ POOL_PASSWD_WRONG, false, NULL },
};
#define POOL_NKINDS	(sizeof pool_expect / sizeof pool_expect[0])

static void
pool_job(struct auth_job *job, enum pool_kind kind, const char *stored)
{
	memset(job, 0, sizeof *job);
	switch (kind) {
	case POOL_HASH:
		job->hash_password = "fresh-pw";
		break;
	case POOL_VERIFY_OK:
		job->verify_password = "alice-pw";
		job->stored_hash = stored;
		break;
	case POOL_VERIFY_WRONG:
		job->verify_password = "alice-pX";
		job->stored_hash = stored;
		break;
	case POOL_VERIFY_UNKNOWN:
		/* The right password, even: a dummy never matches. */
		job->verify_password = "alice-pw";
		break;
	case POOL_PASSWD_OK:
		job->verify_password = "alice-pw";
		job->stored_hash = stored;
		job->hash_password = "next-pw";
		break;
	case POOL_PASSWD_WRONG:
		job->verify_password = "wrong";
		job->stored_hash = stored;
		job->hash_password = "next-pw";
		break;
	}
	if (job->verify_password != NULL)
		job->verify_len = strlen(job->verify_password);
	if (job->hash_password != NULL)
		job->hash_len = strlen(job->hash_password);
}

static void
test_pool_twenty_mixed_jobs_delivered_by_cookie(void **state)
{
	struct pool_state		*ps = *state;
	const struct pool_kind_expect	*e;
	struct auth			*a;
	struct auth_job			 job;
	char				*stored, pw[32];
	int				 i;

	stored = hash_str("alice-pw", TEST_LN);
	a = auth_new(ps->base, 2, TEST_LN, pool_done, ps);
	assert_non_null(a);
	for (i = 0; i < 20; i++) {
		/* Copied by auth_submit: scribble over ours afterwards. */
		pool_job(&job, pool_expect[i % POOL_NKINDS].kind, stored);
		if (job.verify_password != NULL) {
			snprintf(pw, sizeof pw, "%s", job.verify_password);
			job.verify_password = pw;
		}
		job.cookie = COOKIE_BASE + i;
		assert_int_equal(auth_submit(a, &job), 0);
		memset(pw, 'Z', sizeof pw - 1);
	}
	/* Nothing is delivered before the loop runs. */
	assert_int_equal(auth_pending(a), 20);

	pool_run(ps, 20);
	assert_int_equal(auth_pending(a), 0);

	for (i = 0; i < 20; i++) {
		e = &pool_expect[i % POOL_NKINDS];
		assert_int_equal(ps->seen[i], 1);
		assert_int_equal(ps->failed[i], false);
		assert_int_equal(ps->verified[i], e->verified);
		/* The stored hash comes back, to compare with the store's. */
		if (e->kind == POOL_HASH || e->kind == POOL_VERIFY_UNKNOWN)
			assert_null(ps->checked[i]);
		else
			assert_string_equal(ps->checked[i], stored);
		if (e->new_pw == NULL) {
			assert_null(ps->new_hash[i]);
			continue;
		}
		assert_non_null(ps->new_hash[i]);
		assert_int_equal(strncmp(ps->new_hash[i], TEST_PREFIX,
		    strlen(TEST_PREFIX)), 0);
		assert_true(verify_str(e->new_pw, ps->new_hash[i], NULL));
		assert_false(verify_str("alice-pw", ps->new_hash[i], NULL));
	}
	auth_free(a);
	free(stored);
}

static void
test_pool_set_cost_new_hashes_old_still_verify(void **state)
{
	struct pool_state	*ps = *state;
	struct auth		*a;
	struct auth_job		 job;
	char			*old;

	old = hash_str("alice-pw", TEST_LN);
	a = auth_new(ps->base, 2, TEST_LN, pool_done, ps);
	assert_non_null(a);
	auth_set_cost(a, TEST_LN + 1);

	pool_job(&job, POOL_VERIFY_OK, old);
	job.cookie = COOKIE_BASE + 0;
	assert_int_equal(auth_submit(a, &job), 0);
	pool_job(&job, POOL_HASH, NULL);
	job.cookie = COOKIE_BASE + 1;
	assert_int_equal(auth_submit(a, &job), 0);
	/* Makes a worker regenerate the dummy at the new cost. */
	pool_job(&job, POOL_VERIFY_UNKNOWN, NULL);
	job.cookie = COOKIE_BASE + 2;
	assert_int_equal(auth_submit(a, &job), 0);
	pool_job(&job, POOL_VERIFY_UNKNOWN, NULL);
	job.cookie = COOKIE_BASE + 3;
	assert_int_equal(auth_submit(a, &job), 0);

	pool_run(ps, 4);
	assert_true(ps->verified[0]);
	assert_false(ps->failed[0]);
	assert_non_null(ps->new_hash[1]);
	assert_int_equal(strncmp(ps->new_hash[1], "$scrypt$ln=11,r=8,p=1$",
	    22), 0);
	assert_true(verify_str("fresh-pw", ps->new_hash[1], NULL));
	assert_false(ps->verified[2] || ps->failed[2]);
	assert_false(ps->verified[3] || ps->failed[3]);
	assert_true(verify_str("alice-pw", old, NULL));
	auth_free(a);
	free(old);
}

static void
test_pool_free_with_jobs_queued_calls_nothing(void **state)
{
	struct pool_state	*ps = *state;
	struct auth		*a;
	struct auth_job		 job;
	int			 i;

	a = auth_new(ps->base, 2, 14, pool_done, ps);
	assert_non_null(a);
	for (i = 0; i < 10; i++) {
		pool_job(&job, i % 2 ? POOL_HASH : POOL_PASSWD_OK, NULL);
		job.stored_hash = "$scrypt$not-checked-before-free";
		job.cookie = COOKIE_BASE + i;
		assert_int_equal(auth_submit(a, &job), 0);
	}
	assert_int_equal(auth_pending(a), 10);
	auth_free(a);
	/* The wake-up event went with it: the loop has nothing to run. */
	assert_int_equal(event_base_loop(ps->base, EVLOOP_NONBLOCK), 1);
	assert_int_equal(ps->ncalls, 0);
	assert_int_equal(ps->bogus, 0);
}

static void
test_pool_rejects_bad_arguments(void **state)
{
	struct pool_state	*ps = *state;
	struct auth		*a;
	struct auth_job		 job;

	assert_null(auth_new(ps->base, 0, TEST_LN, pool_done, ps));
	assert_null(auth_new(ps->base, 1, AUTH_MIN_LOG2_N - 1, pool_done,
	    ps));
	assert_null(auth_new(ps->base, 1, AUTH_MAX_LOG2_N + 1, pool_done,
	    ps));
	assert_null(auth_new(ps->base, 1, TEST_LN, NULL, ps));

	a = auth_new(ps->base, 1, TEST_LN, pool_done, ps);
	assert_non_null(a);
	memset(&job, 0, sizeof job);
	job.stored_hash = "$scrypt$whatever";
	assert_int_equal(auth_submit(a, &job), -1);
	assert_int_equal(auth_pending(a), 0);
	auth_free(a);
	auth_free(NULL);
}

/*
 * One owner (a remote address) has at most AUTH_MAX_PER_OWNER jobs in
 * flight; others are not affected; the count drops on delivery.
 */
static void
test_pool_owner_in_flight_bounded(void **state)
{
	struct pool_state	*ps = *state;
	struct auth		*a;
	struct auth_job		 job;
	int			 i, n = 0;

	a = auth_new(ps->base, 1, TEST_LN, pool_done, ps);
	assert_non_null(a);
	for (i = 0; i < AUTH_MAX_PER_OWNER; i++) {
		assert_false(auth_owner_full(a, "192.0.2.1"));
		pool_job(&job, POOL_VERIFY_UNKNOWN, NULL);
		job.owner = "192.0.2.1";
		job.cookie = COOKIE_BASE + n++;
		assert_int_equal(auth_submit(a, &job), 0);
	}
	assert_true(auth_owner_full(a, "192.0.2.1"));
	assert_int_equal(auth_submit(a, &job), -1);
	/* Another owner, and the admin channel (no owner), still go. */
	assert_false(auth_owner_full(a, "192.0.2.2"));
	assert_false(auth_owner_full(a, NULL));
	job.owner = "192.0.2.2";
	job.cookie = COOKIE_BASE + n++;
	assert_int_equal(auth_submit(a, &job), 0);
	job.owner = NULL;
	job.cookie = COOKIE_BASE + n++;
	assert_int_equal(auth_submit(a, &job), 0);
	assert_int_equal(auth_pending(a), n);

	/* Delivered: the owner may submit again. */
	pool_run(ps, n);
	assert_false(auth_owner_full(a, "192.0.2.1"));
	job.owner = "192.0.2.1";
	job.cookie = COOKIE_BASE + n++;
	assert_int_equal(auth_submit(a, &job), 0);
	pool_run(ps, n);
	auth_free(a);
}

/* At most AUTH_PENDING_PER_THREAD jobs per worker wait at once. */
static void
test_pool_pending_bounded_per_worker(void **state)
{
	struct pool_state	*ps = *state;
	struct auth		*a;
	struct auth_job		 job;
	char			 owner[32];
	int			 i;

	a = auth_new(ps->base, 2, TEST_LN, pool_done, ps);
	assert_non_null(a);
	/* Many owners, so that only the pool's bound can refuse. */
	for (i = 0; i < 2 * AUTH_PENDING_PER_THREAD; i++) {
		pool_job(&job, POOL_HASH, NULL);
		snprintf(owner, sizeof owner, "198.51.100.%d", i % 200);
		job.owner = owner;
		job.cookie = COOKIE_BASE + POOL_MAX + i;
		assert_int_equal(auth_submit(a, &job), 0);
	}
	assert_int_equal(auth_submit(a, &job), -1);
	job.owner = NULL;
	assert_int_equal(auth_submit(a, &job), -1);
	assert_int_equal(auth_pending(a), 2 * AUTH_PENDING_PER_THREAD);
	/* Freed with everything pending: no callback, nothing leaked. */
	auth_free(a);
	assert_int_equal(ps->ncalls, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_then_verify_ok),
		cmocka_unit_test(test_wrong_password_not_verified),
		cmocka_unit_test(test_length_is_honoured_not_nul),
		cmocka_unit_test(
		    test_same_password_hashes_differ_and_both_verify),
		cmocka_unit_test(test_hash_format),
		cmocka_unit_test(test_password_not_in_hash),
		cmocka_unit_test(test_out_of_range_cost_refused),
		cmocka_unit_test(test_key_differing_in_last_byte_not_verified),
		cmocka_unit_test(test_verify_uses_stored_costs),
		cmocka_unit_test(test_malformed_hashes_failed),
		cmocka_unit_test_setup_teardown(
		    test_pool_twenty_mixed_jobs_delivered_by_cookie,
		    pool_setup, pool_teardown),
		cmocka_unit_test_setup_teardown(
		    test_pool_set_cost_new_hashes_old_still_verify,
		    pool_setup, pool_teardown),
		cmocka_unit_test_setup_teardown(
		    test_pool_free_with_jobs_queued_calls_nothing,
		    pool_setup, pool_teardown),
		cmocka_unit_test_setup_teardown(
		    test_pool_rejects_bad_arguments,
		    pool_setup, pool_teardown),
		cmocka_unit_test_setup_teardown(
		    test_pool_owner_in_flight_bounded,
		    pool_setup, pool_teardown),
		cmocka_unit_test_setup_teardown(
		    test_pool_pending_bounded_per_worker,
		    pool_setup, pool_teardown),
	};

	/* Workers wake the loop with event_active(): needs locking. */
	if (evthread_use_pthreads() != 0) {
		fprintf(stderr, "evthread_use_pthreads failed\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
