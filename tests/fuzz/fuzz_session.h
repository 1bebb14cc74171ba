/*
 * fuzz_session: what the whole-path fuzzer (fuzz_session.c) and its stubs
 * of the parts that cannot run in-process (stub_conn.c for conn.c,
 * stub_auth.c for auth.c) tell each other.  The service layer (dispatch,
 * account, room, message, chat, store, proto) is the real code; only the
 * sockets, TLS and the password-hashing threads are replaced.
 */
#ifndef NETSOCK_FUZZ_SESSION_H
#define NETSOCK_FUZZ_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn;
struct server;

/* Abort (so libFuzzer records the input) when an invariant breaks. */
#define FUZZ_CHECK(x) do {						\
	if (!(x))							\
		fuzz_fail(__FILE__, __LINE__, #x);			\
} while (0)

void	fuzz_fail(const char *file, int line, const char *what)
	    __attribute__((noreturn));

#define FUZZ_NITEMS(a)		(sizeof(a) / sizeof((a)[0]))

/* Connections the fuzzer can hold at once ('0' to '7' in the input). */
#define FUZZ_SLOTS		8

/*
 * stub_conn.c: a connection is a slot whose peer writes what the input
 * says and either reads everything the server sends (the default) or
 * nothing (blocked) until unblocked.  Output is captured in memory and
 * each line handed to fuzz_output_line() as it is queued.
 */
void	fuzz_conn_reset(void);		/* before an iteration */
/* Accept a connection in slot (TLS done, welcome sent); false if busy. */
bool	fuzz_conn_open(struct server *srv, int slot, int addr);
/* Bytes from the peer, as one TLS record would bring them. */
void	fuzz_conn_input(int slot, const uint8_t *data, size_t len);
/* The peer goes away (EOF). */
void	fuzz_conn_hangup(int slot);
/* The connection in slot, NULL if none is open there. */
struct conn *fuzz_conn_get(int slot);
/* The peer stops, or starts again, reading. */
void	fuzz_conn_block(int slot);
/* After each pass: every connection that is idle (nothing parked,
 * nothing queued, no complete line left) got one reply per request. */
void	fuzz_conn_check_idle(void);
/* Open connections, and connections closed but not yet freed. */
size_t	fuzz_conn_count(void);
size_t	fuzz_conn_dead(void);

/*
 * fuzz_session.c: the oracles.  A connection's requests wait in its
 * fuzz_expect list, oldest first, each until its answer (ok, error, pong)
 * is queued: answers come in request order, one each.
 */
struct fuzz_expect;
struct fuzz_expect_list {
	struct fuzz_expect	*head;
	struct fuzz_expect	*tail;
};
enum fuzz_out {
	FUZZ_OUT_REPLY,		/* conn_send: an answer, welcome, kicked */
	FUZZ_OUT_EVENT,		/* conn_send_shared: another's doing */
	FUZZ_OUT_CONN		/* conn's own (line_too_long): no request */
};
/* A request line about to be dispatched on c. */
void	fuzz_input_line(const struct conn *c, struct fuzz_expect_list *l,
	    const char *line, size_t len);
/* Check one line queued for c; true if it answers a request. */
bool	fuzz_output_line(const struct conn *c, struct fuzz_expect_list *l,
	    const char *data, size_t len, enum fuzz_out kind);
void	fuzz_expect_clear(struct fuzz_expect_list *l);
/* The fake clock (server_now_ms() reads it). */
int64_t	fuzz_now_ms(void);

/*
 * stub_auth.c: password jobs wait in a queue until the input says the
 * workers finished one (or the pass ends); the "hash" is "plain:" and the
 * password in hex, so a verification is a comparison.
 */
void	fuzz_auth_reset(void);
/* Deliver up to max finished jobs (in submission order); how many. */
size_t	fuzz_auth_run(struct server *srv, size_t max);
/* The oldest job fails (as a KDF failure would): nothing verified. */
void	fuzz_auth_fail(struct server *srv);
size_t	fuzz_auth_queued(void);

#endif
