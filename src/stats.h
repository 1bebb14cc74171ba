/*
 * stats: the daemon's counters, incremented where things happen and read
 * by the admin channel and STATUS=.  Plain integers on the loop thread:
 * nothing here scans sessions.
 */
#ifndef NETSOCK_STATS_H
#define NETSOCK_STATS_H

#include <stdint.h>

struct stats {
	int64_t		 started_ms;
	uint64_t	 connections;		/* open now, any state */
	uint64_t	 connections_total;	/* accepted since start */
	uint64_t	 connections_rejected;	/* admission control */
	uint64_t	 sessions;		/* logged in now */
	uint64_t	 messages_in;		/* messages accepted */
	uint64_t	 messages_out;		/* message events delivered */
	uint64_t	 bytes_in;
	uint64_t	 bytes_out;
	uint64_t	 tls_handshake_failures;
	uint64_t	 rate_limited;
	uint64_t	 kicks;
	uint64_t	 slow_readers;		/* cut off at output_buffer */
};

#endif
