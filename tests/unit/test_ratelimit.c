/* Unit tests for ratelimit.c: token buckets and the bounded key table. */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

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
test_table_evicts_only_refilled_entries(void **state)
{
	struct ratelimit_table	*t = ratelimit_table_new(3);

	/* limit 1 per minute: one hit empties a key for a minute. */
	ratelimit_table_hit(t, "a", 1, 60000, 0);
	ratelimit_table_hit(t, "b", 1, 60000, 1);
	ratelimit_table_hit(t, "c", 1, 60000, 2);
	/* Full of keys still refilling: d is not added, nobody forgiven. */
	assert_false(ratelimit_table_hit(t, "d", 1, 60000, 3));
	assert_int_equal(ratelimit_table_size(t), 3);
	assert_false(ratelimit_table_check(t, "a", 1, 60000, 4));
	assert_false(ratelimit_table_check(t, "b", 1, 60000, 4));
	assert_false(ratelimit_table_check(t, "c", 1, 60000, 4));
	/* Fails closed: a key it cannot count is refused. */
	assert_false(ratelimit_table_check(t, "d", 1, 60000, 4));

	/* a has refilled by 60000: it may go, and d takes its place. */
	assert_true(ratelimit_table_hit(t, "d", 1, 60000, 60000));
	assert_int_equal(ratelimit_table_size(t), 3);
	assert_false(ratelimit_table_check(t, "b", 1, 60000, 60000));
	assert_false(ratelimit_table_check(t, "d", 1, 60000, 60000));
	/* Still full of refilling keys, so a unknown is refused... */
	assert_false(ratelimit_table_check(t, "a", 1, 60000, 60000));
	/* ...until b and c have refilled too. */
	assert_true(ratelimit_table_check(t, "a", 1, 60000, 60002));
	assert_int_equal(ratelimit_table_size(t), 1);
	ratelimit_table_free(t);
}

/*
 * An attacker who cycles through keys must not make the table forget the
 * failures of a key that is still limited (a victim account, say).
 */
static void
test_table_churn_never_forgives_a_limited_key(void **state)
{
	struct ratelimit_table	*t = ratelimit_table_new(64);
	char			 key[32];
	int			 i, added = 0;

	/* 10 per minute: a failure refills in 6 s, ten of them in 60 s. */
	for (i = 0; i < 10; i++)
		ratelimit_table_hit(t, "victim", 10, 60000, 0);
	assert_false(ratelimit_table_check(t, "victim", 10, 60000, 0));
	for (i = 0; i < 100000; i++) {
		snprintf(key, sizeof key, "2001:db8:%x::/64", i);
		if (ratelimit_table_hit(t, key, 10, 60000, i / 10))
			added++;
		assert_true(ratelimit_table_size(t) <= 64);
	}
	/* Keys that refilled made room for others; the victim stayed. */
	assert_true(added >= 63);
	/* 10 s later: one token earned back, not ten. */
	assert_true(ratelimit_table_check(t, "victim", 10, 60000, 10000));
	ratelimit_table_hit(t, "victim", 10, 60000, 10000);
	assert_false(ratelimit_table_check(t, "victim", 10, 60000, 10000));
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
	/* The first 64 (0..63) are kept and still limited. */
	assert_false(ratelimit_table_check(t, "10.0.0.0", 1, 60000, 0));
	assert_false(ratelimit_table_check(t, "10.0.0.63", 1, 60000, 0));
	assert_false(ratelimit_table_check(t, "10.0.0.64", 1, 60000, 0));
	/* A minute later they have refilled and make room again. */
	assert_true(ratelimit_table_check(t, "10.0.0.64", 1, 60000, 60000));
	assert_true(ratelimit_table_hit(t, "10.0.0.64", 1, 60000, 60000));
	assert_true(ratelimit_table_size(t) <= 64);
	ratelimit_table_free(t);
}

static void
test_table_refund_gives_one_token_back(void **state)
{
	struct ratelimit_table	*t = ratelimit_table_new(8);

	ratelimit_table_hit(t, "k", 2, 60000, 0);
	ratelimit_table_hit(t, "k", 2, 60000, 0);
	assert_false(ratelimit_table_check(t, "k", 2, 60000, 0));
	ratelimit_table_refund(t, "k", 2, 60000, 0);
	assert_true(ratelimit_table_check(t, "k", 2, 60000, 0));
	assert_int_equal(ratelimit_table_size(t), 1);
	/* Back to full: the entry goes; more refunds change nothing. */
	ratelimit_table_refund(t, "k", 2, 60000, 0);
	assert_int_equal(ratelimit_table_size(t), 0);
	ratelimit_table_refund(t, "k", 2, 60000, 0);
	ratelimit_table_refund(t, "absent", 2, 60000, 0);
	assert_int_equal(ratelimit_table_size(t), 0);
	ratelimit_table_free(t);
}

/* The key of addr (text) with the given IPv6 prefix. */
static void
addr_key(const char *addr, int prefix, char *buf)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof ss);
	if (strchr(addr, ':') != NULL) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(4321);
		assert_int_equal(inet_pton(AF_INET6, addr, &sin6->sin6_addr),
		    1);
	} else {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(1234);
		assert_int_equal(inet_pton(AF_INET, addr, &sin->sin_addr), 1);
	}
	assert_int_equal(ratelimit_addr_key((struct sockaddr *)&ss, prefix,
	    buf, RATELIMIT_ADDR_KEY_LEN), 0);
}

static void
test_addr_key_ipv6_by_prefix_ipv4_as_itself(void **state)
{
	char	a[RATELIMIT_ADDR_KEY_LEN], b[RATELIMIT_ADDR_KEY_LEN];
	struct sockaddr_un_like {
		sa_family_t	family;
		char		path[32];
	} other = { AF_UNIX, "x" };

	/* Two addresses in one /64: one key; the port never counts. */
	addr_key("2001:db8:1:2::1", 64, a);
	addr_key("2001:db8:1:2:ffff:eeee:dddd:cccc", 64, b);
	assert_string_equal(a, b);
	assert_string_equal(a, "2001:db8:1:2::/64");
	/* Another /64: another key. */
	addr_key("2001:db8:1:3::1", 64, b);
	assert_string_not_equal(a, b);
	/* A shorter prefix merges them; 128 keeps every address apart. */
	addr_key("2001:db8:1:2::1", 48, a);
	addr_key("2001:db8:1:3::1", 48, b);
	assert_string_equal(a, b);
	assert_string_equal(a, "2001:db8:1::/48");
	addr_key("2001:db8:1:2::1", 128, a);
	addr_key("2001:db8:1:2::2", 128, b);
	assert_string_not_equal(a, b);
	/* A prefix that is not a multiple of 8. */
	addr_key("2001:db8:1:2::1", 61, a);
	addr_key("2001:db8:1:7::1", 61, b);
	assert_string_equal(a, b);
	addr_key("2001:db8:1:8::1", 61, b);
	assert_string_not_equal(a, b);
	/* Out-of-range prefixes are clamped. */
	addr_key("2001:db8::1", 0, a);
	addr_key("fe80::1", -5, b);
	assert_string_equal(a, b);
	addr_key("2001:db8::1", 500, a);
	assert_string_equal(a, "2001:db8::1/128");

	/* IPv4 counts as itself, whatever the IPv6 prefix. */
	addr_key("192.0.2.1", 64, a);
	assert_string_equal(a, "192.0.2.1");
	addr_key("192.0.2.2", 1, b);
	assert_string_equal(b, "192.0.2.2");
	/* IPv4-mapped IPv6 is that IPv4 address. */
	addr_key("::ffff:192.0.2.1", 64, b);
	assert_string_equal(a, b);
	addr_key("::ffff:192.0.2.1", 8, b);
	assert_string_equal(a, b);

	/* Another family: no key. */
	a[0] = 'x';
	assert_int_equal(ratelimit_addr_key((struct sockaddr *)&other, 64, a,
	    sizeof a), -1);
	assert_string_equal(a, "");
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
		cmocka_unit_test(test_table_evicts_only_refilled_entries),
		cmocka_unit_test(test_table_churn_never_forgives_a_limited_key),
		cmocka_unit_test(test_table_many_keys_bounded_by_max),
		cmocka_unit_test(test_table_refund_gives_one_token_back),
		cmocka_unit_test(test_addr_key_ipv6_by_prefix_ipv4_as_itself),
		cmocka_unit_test(test_table_churn_drops_refilled_entries),
		cmocka_unit_test(test_table_nonpositive_limit_is_unlimited),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
