/*
 * test_conn: the end-of-pass scheduling of connections.  Real conn.c and
 * outq.c on socketpairs (no handshake: the tests set the state); the
 * layers above are stubs that do what a hostile pass can make them do:
 * reschedule, overflow or close other connections while the work list is
 * walked.  A corrupted list shows as a wrong count, an assertion in a
 * debug build, or a loop that never ends (an alarm fails the test).
 */
#include <sys/socket.h>

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "config.h"
#include "conn.h"
#include "dispatch.h"
#include "listener.h"
#include "server.h"

#define NCONN	4
#define LINES_PER_PASS	64	/* conn.c's CONN_LINES_PER_PASS */

static struct server	 srv;
static SSL_CTX		*ctx;
static struct conn	*conns[NCONN];
static int		 peers[NCONN];
static int		 handled[NCONN];	/* lines dispatched, per conn */
static int		 closed[NCONN];		/* dispatch_closed calls */
static int		 released;		/* listener_release calls */

/* What the stub dispatch does on a connection's first line of a pass. */
static void		(*on_line)(int idx, int nth);

/* ------------------------------------------------------------ stubs */

static int
index_of(const struct conn *c)
{
	int	 i;

	for (i = 0; i < NCONN; i++)
		if (conns[i] == c)
			return i;
	fail_msg("unknown connection");
	return -1;
}

void
dispatch_line(struct conn *c, const char *line, size_t len)
{
	int	 i = index_of(c);

	handled[i]++;
	if (on_line != NULL)
		on_line(i, handled[i]);
}

void
dispatch_closed(struct conn *c)
{
	closed[index_of(c)]++;
}

void
dispatch_welcome(struct conn *c)
{
}

void
listener_release(struct listener *l, const struct sockaddr *sa)
{
	released++;
}

void
server_accept_resume(struct server *s)
{
}

int64_t
server_now_ms(void)
{
	return 0;
}

/* ------------------------------------------------------------ helpers */

static void
event_cleanup(const void *data, size_t len, void *arg)
{
	free((void *)data);
}

/* An event of len bytes queued on conns[i], as a fan-out does. */
static void
send_event(int i, size_t len)
{
	char	*p = calloc(1, len);

	assert_non_null(p);
	conn_send_shared(conns[i], p, len, event_cleanup, NULL);
}

static void
add_lines(int i, int n)
{
	int	 k;

	for (k = 0; k < n; k++)
		evbuffer_add(conns[i]->in, "{\"type\":\"ping\"}\n", 16);
}

/* Run passes (bounded) until nothing is pending; returns how many. */
static int
run_passes(int max)
{
	int	 n;

	for (n = 0; n < max && conn_has_work(); n++)
		conn_end_of_pass(&srv);
	return n;
}

static void
alarm_cb(int sig)
{
	(void)sig;
	/* A loop over a corrupted list never ends: fail loudly instead. */
	_exit(99);
}

static int
setup(void **state)
{
	struct sockaddr_in	 sin;
	int			 sv[2], i;

	memset(&srv, 0, sizeof(srv));
	TAILQ_INIT(&srv.conns);
	srv.base = event_base_new();
	srv.cfg = config_defaults("/nonexistent");
	srv.state = SERVER_RUNNING;
	ctx = SSL_CTX_new(TLS_server_method());
	conn_table_init();
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0x7f000001);
	for (i = 0; i < NCONN; i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		conns[i] = conn_new(&srv, NULL, sv[0],
		    (struct sockaddr *)&sin, sizeof(sin), ctx);
		assert_non_null(conns[i]);
		conns[i]->state = CONN_STATE_OPEN;	/* as after a handshake */
		peers[i] = sv[1];
		handled[i] = closed[i] = 0;
	}
	released = 0;
	on_line = NULL;
	signal(SIGALRM, alarm_cb);
	alarm(20);
	return 0;
}

static int
teardown(void **state)
{
	int	 i;

	alarm(0);
	for (i = 0; i < NCONN; i++) {
		/* Closed ones may be freed already: ask the stub. */
		if (closed[i] == 0)
			conn_close(conns[i], "test over");
		close(peers[i]);
	}
	/* The deferred frees and the lingers. */
	event_base_loop(srv.base, EVLOOP_NONBLOCK);
	conn_table_free();
	event_base_free(srv.base);
	config_free(srv.cfg);
	SSL_CTX_free(ctx);
	return 0;
}

/* ------------------------------------------------------------ tests */

/* Every connection's lines are handled, 64 per pass, none twice. */
static void
test_pending_input_is_handled_in_bounded_passes(void **state)
{
	int	 i;

	for (i = 0; i < NCONN; i++) {
		add_lines(i, 150);
		conn_resume(conns[i]);
	}
	conn_end_of_pass(&srv);
	for (i = 0; i < NCONN; i++)
		assert_int_equal(handled[i], LINES_PER_PASS);
	assert_int_equal(run_passes(10), 2);
	for (i = 0; i < NCONN; i++)
		assert_int_equal(handled[i], 150);
	assert_false(conn_has_work());
}

/* Handling one connection reschedules the others, and itself, while
 * they are still on the work list (the loop that used to spin). */
static void
reschedule_all(int idx, int nth)
{
	int	 i;

	if (nth % LINES_PER_PASS != 1)
		return;
	for (i = 0; i < NCONN; i++) {
		add_lines(i, 1);
		conn_resume(conns[i]);
	}
}

static void
test_rescheduling_during_the_pass_waits_for_the_next(void **state)
{
	int	 i, total = 0, passes;

	for (i = 0; i < NCONN; i++) {
		add_lines(i, 100);
		conn_resume(conns[i]);
	}
	on_line = reschedule_all;
	conn_end_of_pass(&srv);
	/* One pass handles at most its share of each connection. */
	for (i = 0; i < NCONN; i++)
		assert_int_equal(handled[i], LINES_PER_PASS);
	on_line = NULL;
	passes = run_passes(20);
	assert_true(passes <= 3);
	for (i = 0; i < NCONN; i++)
		total += handled[i];
	/* 100 each, plus one per connection for each of the 4 rounds. */
	assert_int_equal(total, NCONN * 100 + NCONN * NCONN);
	assert_false(conn_has_work());
}

/* A fan-out during the pass overflows a connection still waiting on
 * the work list: it is cut off after the pass, the others carry on. */
static void
overflow_conn3(int idx, int nth)
{
	if (idx == 0 && nth == 1)
		send_event(3, 3 * srv.cfg->limits.output_buffer);
}

static void
test_overflow_during_the_pass_cuts_off_after_it(void **state)
{
	int	 i;

	for (i = 0; i < NCONN; i++) {
		add_lines(i, 10);
		conn_resume(conns[i]);
	}
	on_line = overflow_conn3;
	conn_end_of_pass(&srv);
	/* Marked, not closed inside the fan-out; it stops taking input. */
	assert_int_equal(closed[3], 0);
	assert_int_equal(handled[3], 0);
	assert_true(conn_has_work());
	conn_end_of_pass(&srv);
	assert_true(conn_closed(conns[3]));
	assert_int_equal(closed[3], 1);
	for (i = 0; i < 3; i++) {
		assert_int_equal(handled[i], 10);
		assert_false(conn_closed(conns[i]));
	}
	assert_false(conn_has_work());
}

/* A connection closed while it waits on the work list is skipped. */
static void
close_others(int idx, int nth)
{
	if (idx == 0 && nth == 1) {
		conn_close(conns[2], "test");
		conn_close_after_flush(conns[1], "test");
		conn_resume(conns[2]);		/* a stale wake-up */
	}
}

static void
test_closing_during_the_pass_skips_the_closed(void **state)
{
	int	 i;

	for (i = 0; i < NCONN; i++) {
		add_lines(i, 5);
		conn_resume(conns[i]);
	}
	on_line = close_others;
	conn_end_of_pass(&srv);
	assert_int_equal(handled[0], 5);
	assert_int_equal(handled[1], 0);
	assert_int_equal(handled[2], 0);
	assert_int_equal(handled[3], 5);
	assert_int_equal(closed[2], 1);
	assert_int_equal(run_passes(5), 0);
}

/* A closed connection keeps its admission slot until its descriptor is
 * really closed (after its linger, which has a deadline). */
static void
test_admission_slot_is_released_with_the_descriptor(void **state)
{
	int	 k;

	conn_close(conns[0], "test");
	assert_int_equal(released, 0);
	event_base_loop(srv.base, EVLOOP_NONBLOCK);	/* free, linger */
	/* The peer keeps sending: the linger deadline still ends it. */
	for (k = 0; k < 1000 && released == 0; k++) {
		if (k < 50)
			assert_int_equal(write(peers[0], "x", 1), 1);
		event_base_loop(srv.base, EVLOOP_ONCE);
	}
	assert_int_equal(released, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_pending_input_is_handled_in_bounded_passes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_rescheduling_during_the_pass_waits_for_the_next,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_overflow_during_the_pass_cuts_off_after_it, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_closing_during_the_pass_skips_the_closed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_admission_slot_is_released_with_the_descriptor,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
