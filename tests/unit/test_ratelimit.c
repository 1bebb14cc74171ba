/* Unit tests for ratelimit.c: token buckets and the bounded key table. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>

#include <cmocka.h>

#include "ratelimit.h"

/* Take until refused; how many were allowed (bounded, so a bug ends). */
static int
count_takes(struct ratelimit *rl, int64_t now_ms)
{
	int	n;

	for (n = 0; n < 1000; n++) {
		if (!ratelimit_take(rl, now_ms))
			break;
	}
	return n;
}

static void
test_bucket_full_allows_burst_then_refuses(void **state)
{
	struct ratelimit	rl;

	ratelimit_init(&rl, 2.0, 5.0, 1000);
	assert_int_equal(count_takes(&rl, 1000), 5);
	assert_false(ratelimit_take(&rl, 1000));
}

static void
test_bucket_refill_restores_floor_of_elapsed_times_rate(void **state)
{
	static const struct {
		int64_t	elapsed_ms;
		int	expect;
	} cases[] = {
		{ 0, 0 },
		{ 499, 0 },	/* 0.998 tokens */
		{ 500, 1 },
		{ 1000, 2 },
		{ 1750, 3 },	/* 3.5 tokens */
		{ 2000, 4 },
	};
	struct ratelimit	rl;
	size_t			i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		ratelimit_init(&rl, 2.0, 10.0, 0);
		assert_int_equal(count_takes(&rl, 0), 10);
		assert_int_equal(count_takes(&rl, cases[i].elapsed_ms),
		    cases[i].expect);
	}
}

static void
test_bucket_refill_capped_at_burst(void **state)
{
	struct ratelimit	rl;

	ratelimit_init(&rl, 100.0, 3.0, 0);
	assert_int_equal(count_takes(&rl, 0), 3);
	/* An hour idle earns 360000 tokens, but the bucket holds 3. */
	assert_int_equal(count_takes(&rl, 3600 * 1000), 3);
}

static void
test_bucket_time_going_backwards_adds_nothing(void **state)
{
	struct ratelimit	rl;

	ratelimit_init(&rl, 1.0, 2.0, 10000);
	assert_int_equal(count_takes(&rl, 10000), 2);
	assert_false(ratelimit_take(&rl, 5000));
	assert_false(ratelimit_take(&rl, 0));
	/* Refill resumes from the new, earlier time. */
	assert_false(ratelimit_take(&rl, 999));
	assert_true(ratelimit_take(&rl, 1000));
	assert_false(ratelimit_take(&rl, 1000));
}

static void
test_bucket_configure_caps_current_fill(void **state)
{
	struct ratelimit	rl;

	ratelimit_init(&rl, 1.0, 10.0, 0);
	ratelimit_configure(&rl, 1.0, 4.0);
	assert_true(rl.tokens == 4.0);
	assert_int_equal(count_takes(&rl, 0), 4);

	/* Raising the burst keeps the current (empty) fill. */
	ratelimit_configure(&rl, 10.0, 20.0);
	assert_int_equal(count_takes(&rl, 0), 0);
	assert_int_equal(count_takes(&rl, 1000), 10);
}

static void
test_table_absent_key_allowed(void **state)
{
	struct ratelimit_table	*t = ratelimit_table_new(8);

	assert_true(ratelimit_table_check(t, "192.0.2.1", 3, 1000, 0));
	assert_int_equal(ratelimit_table_size(t), 0);
	ratelimit_table_free(t);
}

static void
test_table_hit_check_forget(void **state)
{
	struct ratelimit_table	*t = ratelimit_table_new(8);

	ratelimit_table_hit(t, "alice", 2, 60000, 0);
	assert_int_equal(ratelimit_table_size(t), 1);
	assert_true(ratelimit_table_check(t, "alice", 2, 60000, 0));
	ratelimit_table_hit(t, "alice", 2, 60000, 0);
	assert_false(ratelimit_table_check(t, "alice", 2, 60000, 0));
	/* Other keys are independent. */
	assert_true(ratelimit_table_check(t, "bob", 2, 60000, 0));
	/* Hits past empty do not go negative: one refill step allows again. */
	ratelimit_table_hit(t, "alice", 2, 60000, 0);
	ratelimit_table_hit(t, "alice", 2, 60000, 0);
	assert_false(ratelimit_table_check(t, "alice", 2, 60000, 29999));
	assert_true(ratelimit_table_check(t, "alice", 2, 60000, 30000));

	ratelimit_table_forget(t, "alice");
	assert_int_equal(ratelimit_table_size(t), 0);
	assert_true(ratelimit_table_check(t, "alice", 2, 60000, 30000));
	ratelimit_table_forget(t, "nobody");
	ratelimit_table_free(t);
}

static void
test_table_ten_per_minute(void **state)
{
	struct ratelimit_table	*t = ratelimit_table_new(16);
	int			 i;

	for (i = 0; i < 10; i++) {
		assert_true(ratelimit_table_check(t, "198.51.100.7", 10,
		    60000, 1000));
		ratelimit_table_hit(t, "198.51.100.7", 10, 60000, 1000);
	}
	assert_false(ratelimit_table_check(t, "198.51.100.7", 10, 60000,
	    1000));
	assert_false(ratelimit_table_check(t, "198.51.100.7", 10, 60000,
	    6999));
	assert_true(ratelimit_table_check(t, "198.51.100.7", 10, 60000,
	    7000));
	ratelimit_table_hit(t, "198.51.100.7", 10, 60000, 7000);
	assert_false(ratelimit_table_check(t, "198.51.100.7", 10, 60000,
	    7000));
	ratelimit_table_free(t);
}

static void
test_table_full_refill_drops_entry(void **state)
{
	struct ratelimit_table	*t = ratelimit_table_new(16);

	ratelimit_table_hit(t, "k", 2, 1000, 0);
	assert_int_equal(ratelimit_table_size(t), 1);
	assert_true(ratelimit_table_check(t, "k", 2, 1000, 499));
	assert_int_equal(ratelimit_table_size(t), 1);
	assert_true(ratelimit_table_check(t, "k", 2, 1000, 500));
	assert_int_equal(ratelimit_table_size(t), 0);
	ratelimit_table_free(t);
}

static void
test_table_evicts_least_recently_touched(void **state)
{
	struct ratelimit_table	*t = ratelimit_table_new(3);

	/* limit 1: one hit empties a key, so "kept" is observable. */
	ratelimit_table_hit(t, "a", 1, 60000, 0);
	ratelimit_table_hit(t, "b", 1, 60000, 1);
	ratelimit_table_hit(t, "c", 1, 60000, 2);
	ratelimit_table_hit(t, "a", 1, 60000, 3);	/* touch a */
	ratelimit_table_hit(t, "d", 1, 60000, 4);	/* evicts b */
	assert_int_equal(ratelimit_table_size(t), 3);

	assert_true(ratelimit_table_check(t, "b", 1, 60000, 5));
	assert_false(ratelimit_table_check(t, "a", 1, 60000, 5));
	assert_false(ratelimit_table_check(t, "c", 1, 60000, 5));
	assert_false(ratelimit_table_check(t, "d", 1, 60000, 5));

	/*
	 * check touches too: a, c, d were checked in that order, so a is
	 * now the oldest (by hits alone it would have been c).
	 */
	ratelimit_table_hit(t, "e", 1, 60000, 6);
	assert_true(ratelimit_table_check(t, "a", 1, 60000, 7));
	assert_false(ratelimit_table_check(t, "c", 1, 60000, 7));
	ratelimit_table_free(t);
}

static void
test_table_many_keys_bounded_by_max(void **state)
{
	struct ratelimit_table	*t = ratelimit_table_new(64);
	char			 key[32];
	int			 i;

	for (i = 0; i < 5000; i++) {
		snprintf(key, sizeof key, "10.0.%d.%d", i / 256, i % 256);
		ratelimit_table_hit(t, key, 1, 60000, 0);
		assert_true(ratelimit_table_size(t) <= 64);
	}
	assert_int_equal(ratelimit_table_size(t), 64);
	/* The newest 64 (4936..4999) are kept, older ones were forgiven. */
	assert_false(ratelimit_table_check(t, "10.0.19.135", 1, 60000, 0));
	assert_false(ratelimit_table_check(t, "10.0.19.72", 1, 60000, 0));
	assert_true(ratelimit_table_check(t, "10.0.19.71", 1, 60000, 0));
	assert_true(ratelimit_table_check(t, "10.0.0.0", 1, 60000, 0));
	assert_int_equal(ratelimit_table_size(t), 64);
	ratelimit_table_free(t);
}

static void
test_table_churn_drops_refilled_entries(void **state)
{
	struct ratelimit_table	*t = ratelimit_table_new(1000);
	char			 key[32];
	int			 i;

	/* Each key refills completely before the next arrives. */
	for (i = 0; i < 500; i++) {
		snprintf(key, sizeof key, "2001:db8::%x", i);
		ratelimit_table_hit(t, key, 1, 1000, (int64_t)i * 1000);
		assert_int_equal(ratelimit_table_size(t), 1);
	}
	ratelimit_table_free(t);
}

static void
test_table_nonpositive_limit_is_unlimited(void **state)
{
	struct ratelimit_table	*t = ratelimit_table_new(4);

	ratelimit_table_hit(t, "x", 0, 1000, 0);
	ratelimit_table_hit(t, "x", 5, 0, 0);
	assert_int_equal(ratelimit_table_size(t), 0);
	assert_true(ratelimit_table_check(t, "x", 0, 1000, 0));
	ratelimit_table_free(t);
	ratelimit_table_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_full_allows_burst_then_refuses),
		cmocka_unit_test(
		    test_bucket_refill_restores_floor_of_elapsed_times_rate),
		cmocka_unit_test(test_bucket_refill_capped_at_burst),
		cmocka_unit_test(test_bucket_time_going_backwards_adds_nothing),
		cmocka_unit_test(test_bucket_configure_caps_current_fill),
		cmocka_unit_test(test_table_absent_key_allowed),
		cmocka_unit_test(test_table_hit_check_forget),
		cmocka_unit_test(test_table_ten_per_minute),
		cmocka_unit_test(test_table_full_refill_drops_entry),
		cmocka_unit_test(test_table_evicts_least_recently_touched),
		cmocka_unit_test(test_table_many_keys_bounded_by_max),
		cmocka_unit_test(test_table_churn_drops_refilled_entries),
		cmocka_unit_test(test_table_nonpositive_limit_is_unlimited),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
