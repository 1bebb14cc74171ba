/* test_netsockctl: the admin tool's formatting helpers (durations, bytes, columns). */
#define NETSOCKCTL_NO_MAIN
#include "netsockctl.c"
#include <setjmp.h>
#include <cmocka.h>

static void
test_duration(void **state)
{
	static const struct { int64_t s; const char *want; } c[] = {
		{ -5, "0s" }, { 0, "0s" }, { 45, "45s" }, { 59, "59s" },
		{ 60, "1m0s" }, { 312, "5m12s" }, { 3599, "59m59s" },
		{ 3600, "1h0m" }, { 11545, "3h12m" }, { 86399, "23h59m" },
		{ 86400, "1d0h" }, { 187200, "2d4h" }, { 400 * 86400LL, "400d0h" },
	};
	char buf[32];
	size_t i;
	for (i = 0; i < nitems(c); i++) {
		ctl_human_duration(c[i].s, buf, sizeof(buf));
		assert_string_equal(buf, c[i].want);
	}
}

static void
test_bytes(void **state)
{
	static const struct { uint64_t n; const char *want; } c[] = {
		{ 0, "0 B" }, { 1023, "1023 B" }, { 1024, "1.0 KiB" },
		{ 1288490, "1.2 MiB" }, { 1048524, "1023.9 KiB" },
		{ 1048525, "1.0 MiB" }, { 1048576, "1.0 MiB" },
		{ 5ULL << 30, "5.0 GiB" }, { 3ULL << 40, "3.0 TiB" },
		{ UINT64_MAX, "16.0 EiB" },
	};
	char buf[32];
	size_t i;
	for (i = 0; i < nitems(c); i++) {
		ctl_human_bytes(c[i].n, buf, sizeof(buf));
		assert_string_equal(buf, c[i].want);
	}
}

static void
test_sanitize_width(void **state)
{
	char *s = ctl_sanitize("a\x1b[31mb\x7f\xc2\x85\xc3\xa9", 12);
	assert_string_equal(s, "a\\x1b[31mb\\x7f\\u0085\xc3\xa9");
	free(s);
	s = ctl_sanitize("x\0y", 3);
	assert_string_equal(s, "x\\x00y");
	free(s);
	setlocale(LC_CTYPE, "C.UTF-8");
	assert_int_equal(ctl_width("\xc3\xa9t\xc3\xa9"), 3);
	assert_int_equal(ctl_width("\xe6\x97\xa5\xe6\x9c\xac"), 4);
	setlocale(LC_CTYPE, "C");
	assert_int_equal(ctl_width("\xc3\xa9t\xc3\xa9"), 3);
}

static void
test_time_session(void **state)
{
	time_t t;
	json_int_t id;
	assert_int_equal(ctl_parse_time("2026-11-21T10:30:00.123Z", &t), 0);
	assert_int_equal(t, 1795257000);
	assert_int_equal(ctl_parse_time("2026-11-21T10:30:00Z", &t), 0);
	assert_int_equal(ctl_parse_time("2026-11-21T10:30:00+01:00", &t), -1);
	assert_int_equal(ctl_parse_session("17", &id), 0);
	assert_int_equal(id, 17);
	assert_int_equal(ctl_parse_session("9223372036854775807", &id), 0);
	assert_int_equal(ctl_parse_session("9223372036854775808", &id), -1);
	assert_int_equal(ctl_parse_session("0", &id), -1);
	assert_int_equal(ctl_parse_session("+1", &id), -1);
	assert_int_equal(ctl_parse_session("", &id), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_bytes),
		cmocka_unit_test(test_sanitize_width),
		cmocka_unit_test(test_time_session),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
