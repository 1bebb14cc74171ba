/* test_log: the journal fields and the escaping of client text. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "log.h"

static void
free_all(char **v, size_t n)
{
	while (n > 0)
		free(v[--n]);
}

static void
test_journal_fields_carry_id_and_netsock_fields(void **state)
{
	struct log_field f[] = {
		{ "SESSION", "42" }, { "USER", "alice" }, { "PEER", "127.0.0.1:5" },
	};
	char	*out[16];
	size_t	 n;

	log_init("netsockd");
	n = log_journal_fields(LOG_NOTICE, LOG_ID_KICK, f, 3,
	    "session=42 event=kick", out, 16);
	assert_int_equal(n, 7);
	assert_string_equal(out[0], "MESSAGE=session=42 event=kick");
	assert_string_equal(out[1], "PRIORITY=5");
	assert_string_equal(out[2], "SYSLOG_IDENTIFIER=netsockd");
	assert_string_equal(out[3], "MESSAGE_ID=" LOG_ID_KICK);
	assert_string_equal(out[4], "NETSOCK_SESSION=42");
	assert_string_equal(out[5], "NETSOCK_USER=alice");
	assert_string_equal(out[6], "NETSOCK_PEER=127.0.0.1:5");
	free_all(out, n);
}

static void
test_journal_fields_without_id_skip_null_values(void **state)
{
	struct log_field f[] = { { "USER", NULL }, { "REASON", "idle" } };
	char	*out[16];
	size_t	 n;

	n = log_journal_fields(LOG_INFO, NULL, f, 2, "m", out, 16);
	assert_int_equal(n, 4);
	assert_string_equal(out[1], "PRIORITY=6");
	assert_string_equal(out[3], "NETSOCK_REASON=idle");
	free_all(out, n);
}

static void
test_journal_fields_respect_max(void **state)
{
	struct log_field f[] = { { "A", "1" }, { "B", "2" } };
	char	*out[3];
	size_t	 n;

	n = log_journal_fields(LOG_INFO, LOG_ID_START, f, 2, "m", out, 3);
	assert_int_equal(n, 3);
	free_all(out, n);
}

static void
test_message_ids_are_128_bit_hex(void **state)
{
	const char *ids[] = { LOG_ID_START, LOG_ID_STOP, LOG_ID_RELOAD_OK,
	    LOG_ID_RELOAD_FAILED, LOG_ID_LOGIN_FAILED, LOG_ID_KICK, LOG_ID_BAN,
	    LOG_ID_SLOW_READER, LOG_ID_RATE_LIMITED };
	size_t	 i, j;

	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		assert_int_equal(strlen(ids[i]), 32);
		assert_int_equal(strspn(ids[i], "0123456789abcdef"), 32);
		for (j = 0; j < i; j++)
			assert_string_not_equal(ids[i], ids[j]);
	}
}

static void
test_escape_control_quote_and_high_bytes(void **state)
{
	char	 buf[64];

	assert_string_equal(log_escape("a\nb\"c\\\xc3\xa9", 8, buf,
	    sizeof(buf)), "a\\x0ab\\x22c\\x5c\\xc3\\xa9");
	assert_string_equal(log_escape("plain", 5, buf, sizeof(buf)), "plain");
}

static void
test_escape_truncates_with_ellipsis(void **state)
{
	char	 buf[8];

	assert_string_equal(log_escape("abcdefghijkl", 12, buf, sizeof(buf)),
	    "abcd...");
	assert_string_equal(log_escape("\n\n\n", 3, buf, sizeof(buf)),
	    "\\x0a...");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_journal_fields_carry_id_and_netsock_fields),
		cmocka_unit_test(test_journal_fields_without_id_skip_null_values),
		cmocka_unit_test(test_journal_fields_respect_max),
		cmocka_unit_test(test_message_ids_are_128_bit_hex),
		cmocka_unit_test(test_escape_control_quote_and_high_bytes),
		cmocka_unit_test(test_escape_truncates_with_ellipsis),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
