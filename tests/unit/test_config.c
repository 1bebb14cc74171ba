/* test_config: unit tests of config.c (defaults, every setting, every error). */

#include <sys/stat.h>

#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "config.h"
#include "xmalloc.h"

/*
 * Every test writes its files into one mkdtemp directory made by the group
 * setup and emptied by the group teardown.  Texts may say "@DIR@" where
 * that directory's path belongs (certificate files live there).
 */
static char	test_dir[] = "/tmp/test_config.XXXXXX";

static int
test_group_setup(void **state)
{
	if (mkdtemp(test_dir) == NULL)
		return -1;
	return 0;
}

static int
test_group_teardown(void **state)
{
	DIR		*d;
	struct dirent	*de;
	char		 path[PATH_MAX];

	if ((d = opendir(test_dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", test_dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	return rmdir(test_dir);
}

/* text with every "@DIR@" replaced by the test directory; caller frees. */
static char *
test_expand(const char *text)
{
	const char	*p, *at;
	char		*out, *tmp;

	out = xstrdup("");
	for (p = text; (at = strstr(p, "@DIR@")) != NULL; p = at + 5) {
		xasprintf(&tmp, "%s%.*s%s", out, (int)(at - p), p, test_dir);
		free(out);
		out = tmp;
	}
	xasprintf(&tmp, "%s%s", out, p);
	free(out);
	return tmp;
}

/* Write text (expanded) to name in the test directory; caller frees. */
static char *
test_write(const char *name, const char *text)
{
	char	*path, *body;
	FILE	*f;

	xasprintf(&path, "%s/%s", test_dir, name);
	body = test_expand(text);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(body, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	free(body);
	return path;
}

/* Load text as a config file; on failure *cause holds the reason. */
static struct config *
test_load(const char *text, char **path, char **cause)
{
	*path = test_write("test.conf", text);
	return config_load(*path, test_dir, cause);
}

/* The readable certificate and key the tls tests point at. */
static void
test_write_tls_files(void)
{
	free(test_write("cert.pem", "not really a certificate\n"));
	free(test_write("key.pem", "not really a key\n"));
}

static void
test_assert_defaults(const struct config *cfg)
{
	const struct config_limits	*l = &cfg->limits;
	char				 buf[PATH_MAX];

	assert_string_equal(cfg->state_dir, test_dir);
	assert_int_equal(cfg->nlisten, 1);
	assert_string_equal(cfg->listen[0].address, "127.0.0.1");
	assert_int_equal(cfg->listen[0].port, 7443);
	assert_true(cfg->tls_self_signed);
	snprintf(buf, sizeof buf, "%s/cert.pem", test_dir);
	assert_string_equal(cfg->tls_certificate, buf);
	snprintf(buf, sizeof buf, "%s/key.pem", test_dir);
	assert_string_equal(cfg->tls_key, buf);
	snprintf(buf, sizeof buf, "%s/netsockd.db", test_dir);
	assert_string_equal(cfg->database, buf);
	snprintf(buf, sizeof buf, "%s/admin.sock", test_dir);
	assert_string_equal(cfg->admin_socket, buf);
	assert_true(cfg->registration);
	assert_true(cfg->rooms_allow_create);
	assert_string_equal(cfg->motd, "");
	assert_int_equal(cfg->log_level, LOG_INFO);
	assert_int_equal(cfg->scrypt_log2_n, 15);

	assert_int_equal(l->max_connections, 10000);
	assert_int_equal(l->max_per_ip, 100);
	assert_int_equal(l->max_line, 16384);
	assert_int_equal(l->max_message, 4096);
	assert_int_equal(l->history_max, 500);
	assert_true(l->messages_per_second == 5.0);
	assert_int_equal(l->message_burst, 20);
	assert_true(l->typing_per_second == 2.0);
	assert_int_equal(l->typing_burst, 5);
	assert_int_equal(l->login_failures_per_minute, 10);
	assert_int_equal(l->registrations_per_hour, 30);
	assert_int_equal(l->output_buffer, 1048576);
	assert_int_equal(l->handshake_timeout, 10);
	assert_int_equal(l->idle_timeout, 300);
}

static void
test_defaults_are_the_documented_values(void **state)
{
	struct config	*cfg;

	cfg = config_defaults(test_dir);
	assert_null(cfg->path);
	test_assert_defaults(cfg);
	config_free(cfg);
}

static void
test_empty_file_gives_defaults(void **state)
{
	struct config	*cfg;
	char		*path, *cause = (char *)"unset";

	cfg = test_load("# nothing but a comment\n", &path, &cause);
	assert_non_null(cfg);
	assert_null(cause);
	assert_string_equal(cfg->path, path);
	test_assert_defaults(cfg);
	config_free(cfg);
	free(path);
}

static const char test_full_text[] =
    "listen = (\n"
    "  { address = \"0.0.0.0\"; port = 7000; },\n"
    "  { address = \"::1\"; port = 7001; }\n"
    ");\n"
    "tls = { certificate = \"@DIR@/cert.pem\"; key = \"@DIR@/key.pem\"; };\n"
    "database = \"/var/tmp/chat.db\";\n"
    "admin = { socket = \"/var/tmp/ctl.sock\"; };\n"
    "registration = false;\n"
    "rooms = { allow_create = false; };\n"
    "motd = \"Be nice.\";\n"
    "log = { level = \"debug\"; };\n"
    "auth = { scrypt_n = 65536; };\n"
    "limits = {\n"
    "  max_connections = 123; max_per_ip = 7;\n"
    "  max_line = 2048; max_message = 1024;\n"
    "  history_max = 99;\n"
    "  messages_per_second = 2.5; message_burst = 3;\n"
    "  typing_per_second = 1; typing_burst = 2;\n"
    "  login_failures_per_minute = 4; registrations_per_hour = 6;\n"
    "  output_buffer = 65536L;\n"
    "  handshake_timeout = 15; idle_timeout = 86400;\n"
    "};\n";

static void
test_full_file_reads_back_every_setting(void **state)
{
	struct config			*cfg;
	const struct config_limits	*l;
	char				*path, *cause, buf[PATH_MAX];

	test_write_tls_files();
	cfg = test_load(test_full_text, &path, &cause);
	if (cfg == NULL)
		fail_msg("%s", cause);
	assert_null(cause);
	assert_string_equal(cfg->path, path);
	assert_string_equal(cfg->state_dir, test_dir);
	assert_int_equal(cfg->nlisten, 2);
	assert_string_equal(cfg->listen[0].address, "0.0.0.0");
	assert_int_equal(cfg->listen[0].port, 7000);
	assert_string_equal(cfg->listen[1].address, "::1");
	assert_int_equal(cfg->listen[1].port, 7001);
	assert_false(cfg->tls_self_signed);
	snprintf(buf, sizeof buf, "%s/cert.pem", test_dir);
	assert_string_equal(cfg->tls_certificate, buf);
	snprintf(buf, sizeof buf, "%s/key.pem", test_dir);
	assert_string_equal(cfg->tls_key, buf);
	assert_string_equal(cfg->database, "/var/tmp/chat.db");
	assert_string_equal(cfg->admin_socket, "/var/tmp/ctl.sock");
	assert_false(cfg->registration);
	assert_false(cfg->rooms_allow_create);
	assert_string_equal(cfg->motd, "Be nice.");
	assert_int_equal(cfg->log_level, LOG_DEBUG);
	assert_int_equal(cfg->scrypt_log2_n, 16);

	l = &cfg->limits;
	assert_int_equal(l->max_connections, 123);
	assert_int_equal(l->max_per_ip, 7);
	assert_int_equal(l->max_line, 2048);
	assert_int_equal(l->max_message, 1024);
	assert_int_equal(l->history_max, 99);
	assert_true(l->messages_per_second == 2.5);
	assert_int_equal(l->message_burst, 3);
	assert_true(l->typing_per_second == 1.0);
	assert_int_equal(l->typing_burst, 2);
	assert_int_equal(l->login_failures_per_minute, 4);
	assert_int_equal(l->registrations_per_hour, 6);
	assert_int_equal(l->output_buffer, 65536);
	assert_int_equal(l->handshake_timeout, 15);
	assert_int_equal(l->idle_timeout, 86400);
	config_free(cfg);
	free(path);
}

static void
test_listen_ipv4_and_ipv6(void **state)
{
	struct config	*cfg;
	char		*path, *cause;

	cfg = test_load("listen = ( { address = \"127.0.0.1\"; port = 1; },\n"
	    "  { address = \"::1\"; port = 65535; } );\n", &path, &cause);
	if (cfg == NULL)
		fail_msg("%s", cause);
	assert_int_equal(cfg->nlisten, 2);
	assert_string_equal(cfg->listen[0].address, "127.0.0.1");
	assert_int_equal(cfg->listen[0].port, 1);
	assert_string_equal(cfg->listen[1].address, "::1");
	assert_int_equal(cfg->listen[1].port, 65535);
	config_free(cfg);
	free(path);
}

static void
test_listen_entry_defaults_address_and_port(void **state)
{
	struct config	*cfg;
	char		*path, *cause;

	cfg = test_load("listen = ( { port = 8000; }, { address = \"::\"; } );\n",
	    &path, &cause);
	if (cfg == NULL)
		fail_msg("%s", cause);
	assert_int_equal(cfg->nlisten, 2);
	assert_string_equal(cfg->listen[0].address, "127.0.0.1");
	assert_int_equal(cfg->listen[0].port, 8000);
	assert_string_equal(cfg->listen[1].address, "::");
	assert_int_equal(cfg->listen[1].port, 7443);
	config_free(cfg);
	free(path);
}

/* Boundaries are inclusive; int64 and hex are integers too. */
static void
test_boundaries_and_integer_forms(void **state)
{
	struct config	*cfg;
	char		*path, *cause;

	cfg = test_load(
	    "auth = { scrypt_n = 1048576L; };\n"
	    "limits = {\n"
	    "  max_line = 16777216; max_message = 16777215;\n"
	    "  output_buffer = 0x1000; history_max = 100000;\n"
	    "  max_per_ip = 2147483647L; message_burst = 1;\n"
	    "  typing_per_second = 1000000.0; messages_per_second = 0.001;\n"
	    "  handshake_timeout = 1;\n"
	    "};\n", &path, &cause);
	if (cfg == NULL)
		fail_msg("%s", cause);
	assert_int_equal(cfg->scrypt_log2_n, 20);
	assert_int_equal(cfg->limits.max_line, 16777216);
	assert_int_equal(cfg->limits.max_message, 16777215);
	assert_int_equal(cfg->limits.output_buffer, 4096);
	assert_int_equal(cfg->limits.history_max, 100000);
	assert_int_equal(cfg->limits.max_per_ip, 2147483647);
	assert_int_equal(cfg->limits.message_burst, 1);
	assert_true(cfg->limits.typing_per_second == 1000000.0);
	assert_true(cfg->limits.messages_per_second == 0.001);
	assert_int_equal(cfg->limits.handshake_timeout, 1);
	config_free(cfg);
	free(path);

	cfg = test_load("auth = { scrypt_n = 1024; };\n", &path, &cause);
	if (cfg == NULL)
		fail_msg("%s", cause);
	assert_int_equal(cfg->scrypt_log2_n, 10);
	config_free(cfg);
	free(path);
}

/* An empty tls group is the same as none: generate a certificate. */
static void
test_empty_tls_group_means_self_signed(void **state)
{
	struct config	*cfg;
	char		*path, *cause, buf[PATH_MAX];

	cfg = test_load("tls = { };\n", &path, &cause);
	if (cfg == NULL)
		fail_msg("%s", cause);
	assert_true(cfg->tls_self_signed);
	snprintf(buf, sizeof buf, "%s/cert.pem", test_dir);
	assert_string_equal(cfg->tls_certificate, buf);
	config_free(cfg);
	free(path);
}

/* Each level name maps to its syslog priority; nothing else does. */
static void
test_log_level_names(void **state)
{
	static const struct {
		const char	*name;
		int		 priority;
	} cases[] = {
		{ "debug", LOG_DEBUG },
		{ "info", LOG_INFO },
		{ "notice", LOG_NOTICE },
		{ "warning", LOG_WARNING },
		{ "error", LOG_ERR },
		{ "INFO", -1 },
		{ "warn", -1 },
		{ "err", -1 },
		{ "", -1 },
	};
	size_t	i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(config_log_level(cases[i].name),
		    cases[i].priority);
	}
}

static void
test_log_level_setting_each_name(void **state)
{
	static const char *names[] = {
	    "debug", "info", "notice", "warning", "error"
	};
	struct config	*cfg;
	char		*path, *cause, *text;
	size_t		 i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		xasprintf(&text, "log = { level = \"%s\"; };\n", names[i]);
		cfg = test_load(text, &path, &cause);
		if (cfg == NULL)
			fail_msg("%s", cause);
		assert_int_equal(cfg->log_level, config_log_level(names[i]));
		config_free(cfg);
		free(path);
		free(text);
	}
}

static void
test_free_null_is_a_no_op(void **state)
{
	config_free(NULL);
}

static void
test_missing_file_names_the_file(void **state)
{
	char	*path, *cause, *want;

	xasprintf(&path, "%s/does-not-exist.conf", test_dir);
	assert_null(config_load(path, test_dir, &cause));
	xasprintf(&want, "%s: No such file or directory", path);
	assert_string_equal(cause, want);
	free(want);
	free(cause);
	free(path);
}

static void
test_long_admin_socket_path(void **state)
{
	char	text[512], *path, *cause, *want;

	/* sun_path holds 107 bytes and a NUL on Linux. */
	snprintf(text, sizeof text, "\nadmin = { socket = \"/%0108d\"; };\n", 0);
	assert_null(test_load(text, &path, &cause));
	xasprintf(&want, "%s:2: admin.socket: path too long (at most 107 bytes)",
	    path);
	assert_string_equal(cause, want);
	free(want);
	free(cause);
	free(path);
}

/* An error in an @include'd file names that file and its line. */
static void
test_error_in_included_file_names_it(void **state)
{
	char	*inc, *path, *cause, *want;

	inc = test_write("inc.conf", "\n\nlimits = { history_max = 0; };\n");
	assert_null(test_load("@include \"@DIR@/inc.conf\"\n", &path, &cause));
	xasprintf(&want, "%s:3: limits.history_max: must be between 1 and "
	    "100000", inc);
	assert_string_equal(cause, want);
	free(want);
	free(cause);
	free(path);
	free(inc);
}

static void
test_restart_pending_names_changed_settings(void **state)
{
	struct config	*a, *b;
	char		*s;

	a = config_defaults(test_dir);
	b = config_defaults(test_dir);
	assert_null(config_restart_pending(a, b));

	/* Settings a reload applies are not reported. */
	free(b->motd);
	b->motd = xstrdup("changed");
	b->limits.max_line = 100;
	assert_null(config_restart_pending(a, b));

	free(b->database);
	b->database = xstrdup("/elsewhere.db");
	s = config_restart_pending(a, b);
	assert_string_equal(s, "database");
	free(s);

	free(b->admin_socket);
	b->admin_socket = xstrdup("/elsewhere.sock");
	s = config_restart_pending(a, b);
	assert_string_equal(s, "database, admin.socket");
	free(s);
	config_free(a);
	config_free(b);
}

/*
 * The shipped example must load.  The test harness (AM_TESTS_ENVIRONMENT)
 * sets NETSOCK_SRCDIR to the top of the source tree; run by hand without
 * it, the test is skipped.
 */
static void
test_shipped_example_loads(void **state)
{
	struct config	*cfg;
	const char	*srcdir = getenv("NETSOCK_SRCDIR");
	char		*path, *cause;

	if (srcdir == NULL || *srcdir == '\0')
		skip();
	xasprintf(&path, "%s/etc/netsockd.conf", srcdir);
	cfg = config_load(path, test_dir, &cause);
	if (cfg == NULL)
		fail_msg("%s", cause);
	assert_int_equal(cfg->nlisten, 1);
	assert_string_equal(cfg->listen[0].address, "127.0.0.1");
	assert_int_equal(cfg->listen[0].port, 7443);
	assert_true(cfg->tls_self_signed);
	assert_string_equal(cfg->database, "/var/lib/netsockd/netsockd.db");
	assert_string_equal(cfg->admin_socket, "/run/netsockd/admin.sock");
	assert_true(cfg->registration);
	assert_true(cfg->rooms_allow_create);
	assert_string_equal(cfg->motd, "");
	assert_int_equal(cfg->log_level, LOG_INFO);
	assert_int_equal(cfg->scrypt_log2_n, 15);
	assert_int_equal(cfg->limits.max_connections, 10000);
	assert_int_equal(cfg->limits.max_per_ip, 100);
	assert_int_equal(cfg->limits.max_line, 16384);
	assert_int_equal(cfg->limits.max_message, 4096);
	assert_int_equal(cfg->limits.history_max, 500);
	assert_true(cfg->limits.messages_per_second == 5.0);
	assert_int_equal(cfg->limits.message_burst, 20);
	assert_true(cfg->limits.typing_per_second == 2.0);
	assert_int_equal(cfg->limits.typing_burst, 5);
	assert_int_equal(cfg->limits.login_failures_per_minute, 10);
	assert_int_equal(cfg->limits.registrations_per_hour, 30);
	assert_int_equal(cfg->limits.output_buffer, 1048576);
	assert_int_equal(cfg->limits.handshake_timeout, 10);
	assert_int_equal(cfg->limits.idle_timeout, 300);
	config_free(cfg);
	free(path);
}

/*
 * Error cases: a file, and the exact message expected after "FILE:" (the
 * path of the file written).  Each becomes its own named test.
 */
struct test_error_case {
	const char	*name;
	const char	*text;
	const char	*want;		/* "LINE: setting: reason" */
};

static const struct test_error_case test_error_cases[] = {
	/* Syntax. */
	{ "syntax error names the line", "a = 1;\nb = ;\n",
	  "2: syntax error: syntax error" },
	{ "duplicate setting is a syntax error",
	  "motd = \"a\";\n\nmotd = \"b\";\n",
	  "3: syntax error: duplicate setting name" },

	/* Types. */
	{ "max_line must be an integer",
	  "\n\nlimits = {\n  max_line = \"big\";\n};\n",
	  "4: limits.max_line: must be an integer" },
	{ "max_connections float is not an integer",
	  "limits = { max_connections = 10.0; };\n",
	  "1: limits.max_connections: must be an integer" },
	{ "messages_per_second must be a number",
	  "limits = { messages_per_second = \"fast\"; };\n",
	  "1: limits.messages_per_second: must be a number" },
	{ "registration int is not a boolean", "registration = 1;\n",
	  "1: registration: must be a boolean (true or false)" },
	{ "allow_create string is not a boolean",
	  "rooms = { allow_create = \"yes\"; };\n",
	  "1: rooms.allow_create: must be a boolean (true or false)" },
	{ "motd must be a string", "motd = 5;\n",
	  "1: motd: must be a string" },
	{ "database must be a string", "database = true;\n",
	  "1: database: must be a string" },
	{ "log.level must be a string", "log = { level = 3; };\n",
	  "1: log.level: must be a string" },
	{ "scrypt_n float is not an integer",
	  "auth = { scrypt_n = 32768.0; };\n",
	  "1: auth.scrypt_n: must be an integer" },
	{ "limits must be a group", "limits = 5;\n",
	  "1: limits: must be a group" },
	{ "tls must be a group", "tls = \"cert.pem\";\n",
	  "1: tls: must be a group" },
	{ "listen group is not a list",
	  "listen = { address = \"127.0.0.1\"; port = 1; };\n",
	  "1: listen: must be a list of groups" },
	{ "listen must not be empty", "listen = ();\n",
	  "1: listen: must have at least one entry" },
	{ "listen empty array is empty too", "listen = [];\n",
	  "1: listen: must have at least one entry" },
	{ "listen entry must be a group", "listen = ( \"127.0.0.1\" );\n",
	  "1: listen[0]: must be a group" },
	{ "listen port must be an integer",
	  "listen = ( { address = \"::1\"; port = \"http\"; } );\n",
	  "1: listen[0].port: must be an integer" },
	{ "listen address must be a string",
	  "listen = ( { address = 127; } );\n",
	  "1: listen[0].address: must be a string" },

	/* Ranges. */
	{ "port 0 is out of range",
	  "listen = (\n  { address = \"127.0.0.1\"; port = 0; }\n);\n",
	  "2: listen[0].port: must be between 1 and 65535" },
	{ "port 65536 is out of range",
	  "listen = (\n  { address = \"127.0.0.1\"; port = 1; },\n"
	  "  { address = \"::1\"; port = 65536; }\n);\n",
	  "3: listen[1].port: must be between 1 and 65535" },
	{ "port past 32 bits does not wrap into range",
	  "listen = ( { port = 4294967297; } );\n",
	  "1: listen[0].port: must be between 1 and 65535" },
	{ "output_buffer past 32 bits does not wrap into range",
	  "limits = { output_buffer = 4294971392; };\n",
	  "1: limits.output_buffer: must be between 4096 and 1073741824" },
	{ "hex past 32 bits does not wrap into range",
	  "limits = { max_per_ip = 0x100000064; };\n",
	  "1: limits.max_per_ip: must be between 1 and 2147483647" },
	{ "int64 output_buffer is range checked",
	  "limits = { output_buffer = 2147483648L; };\n",
	  "1: limits.output_buffer: must be between 4096 and 1073741824" },
	{ "output_buffer below 4096", "limits = { output_buffer = 4095; };\n",
	  "1: limits.output_buffer: must be between 4096 and 1073741824" },
	{ "max_line below 64", "limits = { max_line = 63; };\n",
	  "1: limits.max_line: must be between 64 and 16777216" },
	{ "max_line above 16 MiB", "limits = { max_line = 16777217; };\n",
	  "1: limits.max_line: must be between 64 and 16777216" },
	{ "max_message 0", "limits = { max_message = 0; };\n",
	  "1: limits.max_message: must be between 1 and 16777215" },
	{ "max_message equal to max_line",
	  "limits = {\n  max_line = 1000;\n  max_message = 1000;\n};\n",
	  "3: limits.max_message: must be less than limits.max_line (1000)" },
	{ "max_message above max_line",
	  "limits = {\n  max_message = 5000;\n  max_line = 4096;\n};\n",
	  "2: limits.max_message: must be less than limits.max_line (4096)" },
	{ "max_line at or below default max_message",
	  "\nlimits = { max_line = 4096; };\n",
	  "2: limits.max_line: must be greater than limits.max_message "
	  "(4096)" },
	{ "max_connections 0", "limits = { max_connections = 0; };\n",
	  "1: limits.max_connections: must be between 1 and 2147483647" },
	{ "max_per_ip negative", "limits = { max_per_ip = -1; };\n",
	  "1: limits.max_per_ip: must be between 1 and 2147483647" },
	{ "max_per_ip int64 past int", "limits = { max_per_ip = 2147483648L; };\n",
	  "1: limits.max_per_ip: must be between 1 and 2147483647" },
	{ "history_max above 100000", "limits = { history_max = 100001; };\n",
	  "1: limits.history_max: must be between 1 and 100000" },
	{ "message_burst 0", "limits = { message_burst = 0; };\n",
	  "1: limits.message_burst: must be between 1 and 2147483647" },
	{ "typing_burst 0", "limits = { typing_burst = 0; };\n",
	  "1: limits.typing_burst: must be between 1 and 2147483647" },
	{ "login_failures_per_minute 0",
	  "limits = { login_failures_per_minute = 0; };\n",
	  "1: limits.login_failures_per_minute: must be between 1 and "
	  "2147483647" },
	{ "registrations_per_hour 0",
	  "limits = { registrations_per_hour = 0; };\n",
	  "1: limits.registrations_per_hour: must be between 1 and "
	  "2147483647" },
	{ "handshake_timeout 0", "limits = { handshake_timeout = 0; };\n",
	  "1: limits.handshake_timeout: must be between 1 and 86400" },
	{ "idle_timeout above a day", "limits = { idle_timeout = 86401; };\n",
	  "1: limits.idle_timeout: must be between 1 and 86400" },
	{ "messages_per_second 0", "limits = { messages_per_second = 0.0; };\n",
	  "1: limits.messages_per_second: must be greater than 0 and at most "
	  "1000000" },
	{ "typing_per_second negative int",
	  "limits = { typing_per_second = -2; };\n",
	  "1: limits.typing_per_second: must be greater than 0 and at most "
	  "1000000" },
	{ "messages_per_second above a million",
	  "limits = { messages_per_second = 1e7; };\n",
	  "1: limits.messages_per_second: must be greater than 0 and at most "
	  "1000000" },
	{ "scrypt_n not a power of two", "auth = { scrypt_n = 3000; };\n",
	  "1: auth.scrypt_n: must be a power of two between 1024 and "
	  "1048576" },
	{ "scrypt_n power of two below 1024", "auth = { scrypt_n = 512; };\n",
	  "1: auth.scrypt_n: must be a power of two between 1024 and "
	  "1048576" },
	{ "scrypt_n power of two above 2^20",
	  "auth = { scrypt_n = 2097152; };\n",
	  "1: auth.scrypt_n: must be a power of two between 1024 and "
	  "1048576" },
	{ "scrypt_n 0", "auth = { scrypt_n = 0; };\n",
	  "1: auth.scrypt_n: must be a power of two between 1024 and "
	  "1048576" },

	/* Values. */
	{ "unknown log level", "\n\n\n\nlog = { level = \"loud\"; };\n",
	  "5: log.level: unknown level 'loud' "
	  "(debug, info, notice, warning, error)" },
	{ "log level with a newline stays one line",
	  "log = { level = \"lo\\nud\"; };\n",
	  "1: log.level: unknown level 'lo?ud' "
	  "(debug, info, notice, warning, error)" },
	{ "listen address must be numeric",
	  "listen = ( { address = \"localhost\"; port = 7443; } );\n",
	  "1: listen[0].address: 'localhost' is not a numeric IPv4 or IPv6 "
	  "address" },
	{ "listen address octet out of range",
	  "listen = ( { address = \"1.2.3.256\"; } );\n",
	  "1: listen[0].address: '1.2.3.256' is not a numeric IPv4 or IPv6 "
	  "address" },
	{ "listen address empty", "listen = ( { address = \"\"; } );\n",
	  "1: listen[0].address: '' is not a numeric IPv4 or IPv6 address" },
	{ "the same listener twice",
	  "listen = (\n  { address = \"::1\"; port = 7000; },\n"
	  "  { address = \"0:0::1\"; port = 7000; }\n);\n",
	  "3: listen[1]: same address and port as listen[0]" },
	{ "database must not be empty", "database = \"\";\n",
	  "1: database: must not be empty" },
	{ "admin socket must not be empty", "admin = { socket = \"\"; };\n",
	  "1: admin.socket: must not be empty" },
	{ "missing certificate file",
	  "\n\n\ntls = { certificate = \"/nonexistent/nope.pem\";\n"
	  "  key = \"@DIR@/key.pem\"; };\n",
	  "4: tls.certificate: /nonexistent/nope.pem: No such file or "
	  "directory" },
	{ "missing key file",
	  "tls = {\n  certificate = \"@DIR@/cert.pem\";\n"
	  "  key = \"@DIR@/nokey.pem\";\n};\n",
	  "3: tls.key: @DIR@/nokey.pem: No such file or directory" },
	{ "certificate without key",
	  "tls = {\n  certificate = \"@DIR@/cert.pem\";\n};\n",
	  "2: tls.key: missing (tls.certificate is set: give both or "
	  "neither)" },
	{ "key without certificate",
	  "tls = {\n\n  key = \"@DIR@/key.pem\";\n};\n",
	  "3: tls.certificate: missing (tls.key is set: give both or "
	  "neither)" },

	/* Unknown settings. */
	{ "unknown top-level setting", "motd = \"\";\ncolour = \"blue\";\n",
	  "2: colour: unknown setting" },
	{ "unknown setting inside limits",
	  "\n\n\n\n\n\n\n\n\n\nlimits = {\n  max_lines = 100;\n};\n",
	  "12: limits.max_lines: unknown setting" },
	{ "unknown group at top level", "limit = { max_line = 100; };\n",
	  "1: limit: unknown setting" },
	{ "unknown setting inside tls", "tls = { ca = \"x\"; };\n",
	  "1: tls.ca: unknown setting" },
	{ "unknown setting inside a listener",
	  "listen = (\n  { address = \"::1\"; },\n  { host = \"::1\"; }\n);\n",
	  "3: listen[1].host: unknown setting" },
	{ "a top-level name is not valid inside a group",
	  "log = { motd = \"x\"; };\n",
	  "1: log.motd: unknown setting" },
	{ "a group name alone is not a setting inside another",
	  "limits = { limits = { max_line = 100; }; };\n",
	  "1: limits.limits: unknown setting" },
};

static void
test_error_case(void **state)
{
	const struct test_error_case	*tc = *state;
	struct config			*cfg;
	char				*path, *cause, *want, *tmp;

	test_write_tls_files();
	cfg = test_load(tc->text, &path, &cause);
	if (cfg != NULL) {
		config_free(cfg);
		fail_msg("loaded, but expected an error");
	}
	assert_non_null(cause);
	tmp = test_expand(tc->want);
	xasprintf(&want, "%s:%s", path, tmp);
	assert_string_equal(cause, want);
	/* One line, always. */
	assert_null(strchr(cause, '\n'));
	free(tmp);
	free(want);
	free(cause);
	free(path);
}

int
main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_defaults_are_the_documented_values),
		cmocka_unit_test(test_empty_file_gives_defaults),
		cmocka_unit_test(test_full_file_reads_back_every_setting),
		cmocka_unit_test(test_listen_ipv4_and_ipv6),
		cmocka_unit_test(test_listen_entry_defaults_address_and_port),
		cmocka_unit_test(test_boundaries_and_integer_forms),
		cmocka_unit_test(test_empty_tls_group_means_self_signed),
		cmocka_unit_test(test_log_level_names),
		cmocka_unit_test(test_log_level_setting_each_name),
		cmocka_unit_test(test_free_null_is_a_no_op),
		cmocka_unit_test(test_missing_file_names_the_file),
		cmocka_unit_test(test_long_admin_socket_path),
		cmocka_unit_test(test_error_in_included_file_names_it),
		cmocka_unit_test(test_restart_pending_names_changed_settings),
		cmocka_unit_test(test_shipped_example_loads),
	};
	size_t		 nfixed = sizeof fixed / sizeof fixed[0];
	size_t		 ncases = sizeof test_error_cases /
			    sizeof test_error_cases[0];
	struct CMUnitTest *tests;
	size_t		 i;
	int		 rc;

	/* One named test per error case, so each is its own TAP line. */
	tests = xcalloc(nfixed + ncases, sizeof *tests);
	memcpy(tests, fixed, sizeof fixed);
	for (i = 0; i < ncases; i++) {
		tests[nfixed + i].name = test_error_cases[i].name;
		tests[nfixed + i].test_func = test_error_case;
		tests[nfixed + i].initial_state =
		    (void *)&test_error_cases[i];
	}
	rc = _cmocka_run_group_tests("config", tests, nfixed + ncases,
	    test_group_setup, test_group_teardown);
	free(tests);
	return rc;
}
