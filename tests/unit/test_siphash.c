/* Unit tests for siphash.c: the reference vectors, and random keys. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#include "siphash.h"

/*
 * From the SipHash paper and its reference implementation: key 00..0f,
 * message 00, 01, ... of the given length.  15 and 63 bytes cover a
 * partial last word; 0 covers the empty message.
 */
static void
test_reference_vectors(void **state)
{
	uint8_t	key[SIPHASH_KEY_LEN], msg[64];
	size_t	i;

	for (i = 0; i < sizeof key; i++)
		key[i] = (uint8_t)i;
	for (i = 0; i < sizeof msg; i++)
		msg[i] = (uint8_t)i;
	assert_true(siphash24(key, msg, 0) == 0x726fdb47dd0e0e31ULL);
	assert_true(siphash24(key, msg, 15) == 0xa129ca6149be45e5ULL);
	assert_true(siphash24(key, msg, 63) == 0x958a324ceb064572ULL);
}

/* Every byte and the length count: no two of these collide. */
static void
test_length_and_every_byte_matter(void **state)
{
	uint8_t		key[SIPHASH_KEY_LEN] = { 1 }, msg[16] = { 0 };
	uint64_t	base = siphash24(key, msg, sizeof msg);
	size_t		i;

	assert_true(siphash24(key, msg, sizeof msg - 1) != base);
	for (i = 0; i < sizeof msg; i++) {
		msg[i] = 1;
		assert_true(siphash24(key, msg, sizeof msg) != base);
		msg[i] = 0;
	}
}

/* Two random keys differ, and so do the hashes of one name under them. */
static void
test_random_keys_differ(void **state)
{
	uint8_t	a[SIPHASH_KEY_LEN], b[SIPHASH_KEY_LEN];

	siphash_key_random(a);
	siphash_key_random(b);
	assert_memory_not_equal(a, b, sizeof a);
	assert_true(siphash24(a, "#lobby", 6) != siphash24(b, "#lobby", 6));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference_vectors),
		cmocka_unit_test(test_length_and_every_byte_matter),
		cmocka_unit_test(test_random_keys_differ),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
