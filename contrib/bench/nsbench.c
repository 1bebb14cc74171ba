/* nsbench: netsockd load generator speaking the netsock protocol over TLS. */

/*
 * One binary, five scenarios (fanout, idle, logins, durable, abuse); see
 * contrib/bench/README.md for the method.  Every session is a real client:
 * TCP, a TLS 1.3 handshake, the welcome line, register, join, and then
 * NDJSON requests and events.  Sessions are spread over --threads event
 * loops (one event_base each, nothing shared but a few atomic counters);
 * the main thread only drives the stages and samples the daemon's CPU time
 * and memory from /proc at the stage and window boundaries.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <jansson.h>

#define NSB_MAX_THREADS		16
#define NSB_MAX_WINDOWS		2
#define NSB_MAX_LINE		(4 * 1024 * 1024)	/* join replies list members */
#define NSB_RATE_RING		1024	/* in-flight cap per publisher, rate mode */
#define NSB_HDR_LEN		39	/* "n:PPPP:SSSSSSSSSS:TTTT...T:" */
#define NSB_MAX_SIZE		16000
#define NSB_DRAIN_TIMEOUT	10.0	/* seconds to wait for acks and deliveries */
#define NSB_ERRLEN		160

/* The abuse scenario. */
#define NSB_ATK_TICK_MS		50	/* attackers' clock */
#define NSB_ATK_RETRY		1.0	/* s before a cut-off attacker returns */
#define NSB_ATK_FILL_RETRY	0.05	/* s before a refused fill retries */
#define NSB_ATK_PEEK		512	/* bytes of a big line looked at */
#define NSB_ATK_RCVBUF		65536	/* history clients' receive buffer */
#define NSB_QUIT_DEADLINE	5.0	/* s: the contract, after a close */

/* Log-linear histogram: 64 sub-buckets per power of two, about 1.6%. */
#define NSB_HIST_SUB_BITS	6
#define NSB_HIST_SUB		(1 << NSB_HIST_SUB_BITS)
#define NSB_HIST_BUCKETS	((64 - NSB_HIST_SUB_BITS + 1) * NSB_HIST_SUB)

struct nsb_hist {
	uint64_t	 count;
	uint64_t	 max;
	uint64_t	 bucket[NSB_HIST_BUCKETS];
};

enum nsb_scenario {
	NSB_FANOUT,
	NSB_IDLE,
	NSB_LOGINS,
	NSB_DURABLE,
	NSB_ABUSE,
};

enum nsb_role {
	NSB_ROLE_PUB,		/* sends messages, receives the others' */
	NSB_ROLE_SUB,		/* receives */
	NSB_ROLE_IDLE,		/* logs in, joins, holds */
	NSB_ROLE_STORM,		/* logs in and out, over and over */
	/* Abuse: the attackers, and the slow history reader who reads. */
	NSB_ROLE_FLOOD,		/* presence changes, as fast as it can */
	NSB_ROLE_PASSWD,	/* passwd with a wrong old password */
	NSB_ROLE_HOG,		/* largest history pages, never read */
	NSB_ROLE_SLOWREAD,	/* largest history pages, read slowly */
	NSB_ROLE_TRICKLE,	/* login, quit, then a byte now and then */
};

enum nsb_state {
	NSB_ST_DOWN,		/* no connection */
	NSB_ST_HANDSHAKE,	/* TCP + TLS, waiting for welcome */
	NSB_ST_CONNECTED,	/* welcome seen, not logged in */
	NSB_ST_REGISTER,
	NSB_ST_LOGIN,
	NSB_ST_JOIN,
	NSB_ST_READY,
	NSB_ST_QUIT,
	NSB_ST_DEAD,		/* failed or dropped; never reused */
};

enum nsb_stage {
	NSB_STAGE_INIT,
	NSB_STAGE_CONNECT,	/* connect everyone, read welcome */
	NSB_STAGE_AUTH,		/* register (or log in) and join */
	NSB_STAGE_FILL,		/* abuse: history for the hogs to ask for */
	NSB_STAGE_RUN,		/* send, hold, storm: see the windows */
	NSB_STAGE_STOP,		/* no new sends; drain */
	NSB_STAGE_EXIT,
};

struct nsb_opts {
	enum nsb_scenario	 scenario;
	const char		*host;
	int			 port;
	pid_t			 daemon_pid;
	bool			 json;
	int			 threads;
	int			 subs;
	int			 pubs;
	int			 window;
	double			 rate;
	double			 duration;
	double			 warmup;
	int			 size;
	int			 max_lag;
	int			 n;
	bool			 spread;
	int			 room_size;
	double			 hold;
	int			 users;
	double			 storm_rate;
	int			 connect_conc;
	int			 auth_conc;
	bool			 shared_room;
	double			 setup_timeout;
	char			 prefix[16];
	const char		*password;

	/* abuse */
	double			 slowloris_rate;	/* connects/s */
	double			 trickle_rate;		/* cycles/s */
	int			 trickle_users;
	bool			 trickle_login;
	double			 trickle_interval;	/* s between bytes */
	int			 flooders;
	int			 flood_window;
	int			 passwd_sessions;	/* of one account */
	int			 passwd_window;
	int			 hogs;
	int			 hog_requests;
	int			 slow_readers;
	int			 slow_read_rate;	/* bytes/s */
	int			 hist_fill;
	int			 hist_size;
	int			 hist_limit;
	double			 settle;
	double			 handshake_timeout;	/* the daemon's */
	int			 max_raw;
};

struct nsb_thread;

struct nsb_conn {
	struct nsb_thread	*th;
	struct bufferevent	*bev;
	int			 idx;		/* in nsb_conns */
	enum nsb_role		 role;
	enum nsb_state		 state;
	int			 pub;		/* publisher number or -1 */
	bool			 counted;	/* reached its setup goal */
	char			 user[40];
	char			 room[80];

	/* Receivers: per publisher, next expected sequence and count. */
	uint32_t		*rx_next;
	uint32_t		*rx_cnt;

	/* Publishers: a prebuilt line and a ring of send times. */
	char			*line;
	size_t			 linelen;
	size_t			 hdroff;	/* where the content header starts */
	uint32_t		 seq;		/* next sequence number to send */
	uint32_t		 acked;		/* replies seen (ok or error) */
	uint32_t		 oks;
	uint64_t		*ring;
	uint32_t		 ringmask;

	/* Storm clients: when the current connect + login began. */
	uint64_t		 t0;

	/* Attackers and the slow history readers (abuse). */
	int			 num;		/* number within the role */
	bool			 own_fd;	/* fd and SSL freed by us */
	struct bufferevent	*zombie;	/* closed, freed on the tick */
	bool			 zombie_keep;	/* its fd goes on trickling */
	uint64_t		 t_quit;	/* when quit was answered */
	uint64_t		 t_retry;	/* next reconnect or fill try */
	uint32_t		 inflight;	/* attack requests unanswered */
	uint32_t		 fill_left;	/* history messages to post */
	bool			 filling;
	bool			 hog_sent;	/* requests out, reading off */
	bool			 throttled;	/* read rate limit set */
	bool			 been_ready;	/* logged in once: returns count */
	size_t			 scan;		/* input searched for '\n' */
};

/* A socket the attackers drive by hand: slowloris, trickle after quit. */
enum nsb_raw_kind {
	NSB_RAW_SLOWLORIS,
	NSB_RAW_TRICKLE,
};

struct nsb_raw {
	int			 fd;
	enum nsb_raw_kind	 kind;
	bool			 fin;		/* FIN seen: probe at once */
	uint32_t		 sent;		/* ClientHello bytes sent */
	uint64_t		 t_open;	/* connect, or quit answered */
	uint64_t		 t_next;	/* next byte */
};

/* What the attackers did, per thread; summed after the run. */
enum nsb_ctr {
	NSB_C_SL_OPENED, NSB_C_SL_CLOSED, NSB_C_SL_OPEN_END, NSB_C_SL_OVERDUE,
	NSB_C_SL_BYTES,
	NSB_C_TQ_CYCLES, NSB_C_TQ_LOGIN_OK, NSB_C_TQ_LOGIN_ERR,
	NSB_C_TQ_TRICKLING, NSB_C_TQ_EARLY, NSB_C_TQ_CLOSED,
	NSB_C_TQ_OPEN_END, NSB_C_TQ_OVERDUE, NSB_C_TQ_BYTES,
	NSB_C_SL_NOT_STARTED, NSB_C_TQ_NOT_STARTED,
	NSB_C_FL_SENT, NSB_C_FL_OK, NSB_C_FL_LIMITED, NSB_C_FL_ERR,
	NSB_C_FL_CLOSED, NSB_C_FL_RECONNECTS,
	NSB_C_PW_SENT, NSB_C_PW_FAILED, NSB_C_PW_LIMITED, NSB_C_PW_OK,
	NSB_C_PW_ERR, NSB_C_PW_CLOSED, NSB_C_PW_RECONNECTS,
	NSB_C_HOG_REQUESTS, NSB_C_HOG_CLOSED, NSB_C_HOG_RECONNECTS,
	NSB_C_SR_PAGES, NSB_C_SR_BYTES, NSB_C_SR_ERR, NSB_C_SR_CUT,
	NSB_C_SR_RECONNECTS,
	NSB_C_LOGIN_REFUSED,
	NSB_C_COUNT
};

/* Group and name of each counter in the JSON "attackers" object. */
static const struct {
	const char	*group;
	const char	*name;
} nsb_ctr_names[NSB_C_COUNT] = {
	[NSB_C_SL_OPENED] = { "slowloris", "opened" },
	[NSB_C_SL_CLOSED] = { "slowloris", "closed_by_server" },
	[NSB_C_SL_OPEN_END] = { "slowloris", "open_at_end" },
	[NSB_C_SL_OVERDUE] = { "slowloris", "overdue" },
	[NSB_C_SL_BYTES] = { "slowloris", "bytes_sent" },
	[NSB_C_TQ_CYCLES] = { "trickle", "cycles" },
	[NSB_C_TQ_LOGIN_OK] = { "trickle", "logins_ok" },
	[NSB_C_TQ_LOGIN_ERR] = { "trickle", "logins_refused" },
	[NSB_C_TQ_TRICKLING] = { "trickle", "trickled_after_quit" },
	[NSB_C_TQ_EARLY] = { "trickle", "closed_before_quit" },
	[NSB_C_TQ_CLOSED] = { "trickle", "closed_by_server" },
	[NSB_C_TQ_OPEN_END] = { "trickle", "open_at_end" },
	[NSB_C_TQ_OVERDUE] = { "trickle", "overdue" },
	[NSB_C_TQ_BYTES] = { "trickle", "bytes_sent" },
	[NSB_C_SL_NOT_STARTED] = { "slowloris", "not_started" },
	[NSB_C_TQ_NOT_STARTED] = { "trickle", "not_started" },
	[NSB_C_FL_SENT] = { "presence", "sent" },
	[NSB_C_FL_OK] = { "presence", "ok" },
	[NSB_C_FL_LIMITED] = { "presence", "rate_limited" },
	[NSB_C_FL_ERR] = { "presence", "other_errors" },
	[NSB_C_FL_CLOSED] = { "presence", "closed_by_server" },
	[NSB_C_FL_RECONNECTS] = { "presence", "reconnects" },
	[NSB_C_PW_SENT] = { "passwd", "sent" },
	[NSB_C_PW_FAILED] = { "passwd", "auth_failed" },
	[NSB_C_PW_LIMITED] = { "passwd", "rate_limited" },
	[NSB_C_PW_OK] = { "passwd", "ok" },
	[NSB_C_PW_ERR] = { "passwd", "other_errors" },
	[NSB_C_PW_CLOSED] = { "passwd", "closed_by_server" },
	[NSB_C_PW_RECONNECTS] = { "passwd", "reconnects" },
	[NSB_C_HOG_REQUESTS] = { "history_hogs", "requests" },
	[NSB_C_HOG_CLOSED] = { "history_hogs", "closed_by_server" },
	[NSB_C_HOG_RECONNECTS] = { "history_hogs", "reconnects" },
	[NSB_C_SR_PAGES] = { "slow_readers", "pages" },
	[NSB_C_SR_BYTES] = { "slow_readers", "bytes" },
	[NSB_C_SR_ERR] = { "slow_readers", "errors" },
	[NSB_C_SR_CUT] = { "slow_readers", "cut_off" },
	[NSB_C_SR_RECONNECTS] = { "slow_readers", "reconnects" },
	[NSB_C_LOGIN_REFUSED] = { "reconnect", "failed" },
};

struct nsb_atk {
	uint64_t		 ctr[NSB_C_COUNT];
	struct nsb_hist		 sl_life;	/* connect -> server closed */
	struct nsb_hist		 tq_life;	/* quit answered -> closed */
	uint64_t		 sl_held_max;	/* ns, open ones included */
	uint64_t		 tq_held_max;
};

struct nsb_window {
	uint64_t		 deliveries;
	uint64_t		 acks;
	uint64_t		 logins;
	uint64_t		 dropped;	/* sessions the daemon closed */
	struct nsb_hist		 lat;		/* send -> event received */
	struct nsb_hist		 acklat;	/* send -> ok received */
	struct nsb_hist		 loginlat;	/* connect -> login ok */
};

struct nsb_thread {
	int			 id;
	pthread_t		 tid;
	struct event_base	*base;
	struct event		*tick;
	enum nsb_stage		 stage;

	struct nsb_conn		**conns;
	int			 nconns;
	struct nsb_conn		**pubs;
	int			 npubs;
	struct nsb_conn		**storms;
	int			 nstorms;

	int			 next_connect;
	int			 connecting;
	bool			 pumping;	/* a pump is on the stack */
	int			 connect_cap;
	int			 next_auth;
	int			 authing;
	int			 auth_cap;

	/* Abuse: attackers, their raw sockets and their clock. */
	struct nsb_conn		**atks;
	int			 natks;
	struct nsb_raw		*raw;
	int			 nraw;
	int			 rawcap;
	struct pollfd		*pfd;
	struct event		*atk_tick;
	double			 sl_rate;
	uint64_t		 sl_started;
	double			 tq_rate;
	uint64_t		 tq_started;
	int			 ntrickle;
	struct nsb_atk		 atk;
	_Atomic uint64_t	 a_filled;

	/* Rate pacing (fanout --rate) and storm pacing. */
	double			 rate;
	uint64_t		 rate_sent;
	int			 rate_rr;
	double			 storm_rate;
	uint64_t		 storm_started;

	/* Lag guard: sequence numbers seen by this thread's probe receiver. */
	struct nsb_conn		*probe;
	_Atomic uint32_t	*probe_seq;
	_Atomic int		 a_probe_alive;

	/* Read by the main thread while running. */
	_Atomic uint64_t	 a_welcomed;
	_Atomic uint64_t	 a_ready;
	_Atomic uint64_t	 a_failed;
	_Atomic uint64_t	 a_inflight;
	_Atomic uint64_t	 a_rx_distinct;
	_Atomic uint64_t	 a_acked;

	/* Read by the main thread after join only. */
	struct nsb_window	 win[NSB_MAX_WINDOWS];
	uint64_t		 dups;
	uint64_t		 gaps;
	uint64_t		 foreign;
	uint64_t		 errors;
	uint64_t		 dropped;
	uint64_t		 lag_stalls;
	uint64_t		 unsent;
	uint64_t		 storm_fail;
	char			 lasterr[NSB_ERRLEN];
	uint64_t		 nerrs;
};

/* What the main thread publishes to the event loops. */
struct nsb_run {
	_Atomic int		 stage;
	uint64_t		 t_go;		/* RUN began */
	uint64_t		 t_end;		/* no sends from here on */
	int			 nwin;
	uint64_t		 win[NSB_MAX_WINDOWS + 1];	/* boundaries */
	int			 storm_win;	/* window with the storm, or -1 */
	SSL_CTX			*ctx;
	struct sockaddr_in	 dst;
	int			 ntotal;
	int			 receivers;	/* sessions that get each message */

	/* abuse */
	uint64_t		 t_settle;	/* raw sockets closed from here */
	int			 nfill;		/* sessions posting history */
	char			*fill_line;	/* one big history message */
	size_t			 fill_len;
	char			*hist_line;	/* the largest history page */
	size_t			 hist_len;
	char			*passwd_line;
	size_t			 passwd_len;
	char			*presence_line[3];
	size_t			 presence_len[3];
	unsigned char		*hello;		/* a ClientHello, for slowloris */
	size_t			 hello_len;
	struct ev_token_bucket_cfg *slow_cfg;	/* slow readers' read rate */
};

/* A sample of both processes at one instant. */
struct nsb_snap {
	uint64_t		 t;
	double			 srv_cpu;	/* s, utime + stime; < 0: unknown */
	long			 srv_rss;	/* KiB; < 0: unknown */
	double			 cli_cpu;	/* s */
	double			 sys_busy;	/* s, all CPUs, from /proc/stat */
};

static struct nsb_opts		 nsb_opt;
static struct nsb_run		 nsb_run;
static struct nsb_conn		*nsb_conns;
static struct nsb_thread	*nsb_threads;

static void	nsb_conn_fail(struct nsb_conn *, const char *);
static void	nsb_pub_fill(struct nsb_conn *, uint64_t);
static void	nsb_pump_connect(struct nsb_thread *);
static void	nsb_pump_auth(struct nsb_thread *);
static void	nsb_storm_pump(struct nsb_thread *, uint64_t);
static bool	nsb_atk_role(enum nsb_role);
static void	nsb_atk_lost(struct nsb_conn *);
static bool	nsb_atk_reply(struct nsb_conn *, bool, const char *, size_t);
static void	nsb_atk_welcome(struct nsb_conn *);

static const char *nsb_scenario_names[] = {
	[NSB_FANOUT] = "fanout",
	[NSB_IDLE] = "idle",
	[NSB_LOGINS] = "logins",
	[NSB_DURABLE] = "durable",
	[NSB_ABUSE] = "abuse",
};

/* ---- small helpers ---------------------------------------------------- */

static uint64_t
nsb_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t
nsb_ns(double seconds)
{
	return (uint64_t)(seconds * 1e9);
}

static void
nsb_sleep_until(uint64_t t)
{
	struct timespec	ts;

	ts.tv_sec = (time_t)(t / 1000000000ULL);
	ts.tv_nsec = (long)(t % 1000000000ULL);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	    EINTR)
		;
}

static void
nsb_die(const char *what)
{
	fprintf(stderr, "nsbench: %s\n", what);
	exit(2);
}

static void *
nsb_calloc(size_t n, size_t size)
{
	void	*p;

	if ((p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size)) == NULL)
		nsb_die("out of memory");
	return p;
}

/* Record an error text once per thread (the first one is the telling one). */
static void
nsb_thread_error(struct nsb_thread *th, const char *what)
{
	if (th->nerrs++ == 0)
		snprintf(th->lasterr, sizeof th->lasterr, "%s", what);
}

/* ---- histogram --------------------------------------------------------- */

static size_t
nsb_hist_index(uint64_t v)
{
	int	msb, shift;

	if (v < 2 * NSB_HIST_SUB)
		return (size_t)v;
	msb = 63 - __builtin_clzll(v);
	shift = msb - NSB_HIST_SUB_BITS;
	return (size_t)(shift + 1) * NSB_HIST_SUB +
	    (size_t)((v >> shift) - NSB_HIST_SUB);
}

/* The middle of a bucket: what a value in it is reported as. */
static uint64_t
nsb_hist_value(size_t idx)
{
	int		shift;
	uint64_t	low;

	if (idx < 2 * NSB_HIST_SUB)
		return idx;
	shift = (int)(idx / NSB_HIST_SUB) - 1;
	low = (uint64_t)(idx % NSB_HIST_SUB + NSB_HIST_SUB) << shift;
	return low + ((1ULL << shift) >> 1);
}

static void
nsb_hist_add(struct nsb_hist *h, uint64_t v)
{
	h->bucket[nsb_hist_index(v)]++;
	h->count++;
	if (v > h->max)
		h->max = v;
}

static void
nsb_hist_merge(struct nsb_hist *to, const struct nsb_hist *from)
{
	size_t	i;

	for (i = 0; i < NSB_HIST_BUCKETS; i++)
		to->bucket[i] += from->bucket[i];
	to->count += from->count;
	if (from->max > to->max)
		to->max = from->max;
}

/* Quantile q (0..1) in milliseconds; -1 when empty. */
static double
nsb_hist_ms(const struct nsb_hist *h, double q)
{
	uint64_t	rank, seen = 0, v;
	size_t		i;

	if (h->count == 0)
		return -1;
	rank = (uint64_t)(q * (double)h->count + 0.999999);
	if (rank == 0)
		rank = 1;
	for (i = 0; i < NSB_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank) {
			v = nsb_hist_value(i);
			return (double)(v > h->max ? h->max : v) / 1e6;
		}
	}
	return (double)h->max / 1e6;
}

/* ---- the daemon and ourselves, from /proc and getrusage ---------------- */

static double
nsb_proc_cpu(pid_t pid)
{
	char			 path[64], buf[4096], *p;
	FILE			*f;
	size_t			 n;
	unsigned long long	 ut, st;
	int			 i;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces: fields count from its ')'. */
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	p++;
	for (i = 0; i < 11 && p != NULL; i++)	/* to field 14, utime */
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p, " %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long
nsb_proc_rss(pid_t pid)
{
	char	 path[64], line[256];
	FILE	*f;
	long	 kib = -1;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL) {
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	}
	fclose(f);
	return kib;
}

/* Descriptors the daemon has open (/proc/PID/fd); -1 if unknown. */
static long
nsb_proc_fds(pid_t pid)
{
	char		 path[64];
	DIR		*d;
	struct dirent	*e;
	long		 n = 0;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n;
}

static double
nsb_self_cpu(void)
{
	struct rusage	ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/*
 * Busy time of the whole machine: what is neither the daemon nor nsbench
 * is other load (other people's tests...) that makes a run noisy.
 */
static double
nsb_sys_busy(void)
{
	unsigned long long	 v[8];
	FILE			*f;
	int			 n;

	if ((f = fopen("/proc/stat", "r")) == NULL)
		return -1;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
	    &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n != 8)
		return -1;
	/* user nice system [idle iowait] irq softirq steal */
	return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) /
	    (double)sysconf(_SC_CLK_TCK);
}

static void
nsb_snap(struct nsb_snap *s)
{
	s->t = nsb_now();
	s->srv_cpu = nsb_proc_cpu(nsb_opt.daemon_pid);
	s->srv_rss = nsb_proc_rss(nsb_opt.daemon_pid);
	s->cli_cpu = nsb_self_cpu();
	s->sys_busy = nsb_sys_busy();
}

/* ---- wire helpers ------------------------------------------------------ */

/* The value of string field NAME in a JSON line, copied; false if absent. */
static bool
nsb_field(const char *line, size_t len, const char *name, char *out,
    size_t outsz)
{
	char		 key[40];
	const char	*p, *e;
	int		 klen;
	size_t		 n;

	klen = snprintf(key, sizeof key, "\"%s\":\"", name);
	if (klen <= 0 || (size_t)klen >= sizeof key)
		return false;
	if ((p = memmem(line, len, key, (size_t)klen)) == NULL)
		return false;
	p += klen;
	for (e = p; e < line + len && *e != '"'; e++) {
		if (*e == '\\' && e + 1 < line + len)
			e++;
	}
	n = (size_t)(e - p);
	if (n >= outsz)
		n = outsz - 1;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

static void
nsb_send(struct nsb_conn *c, const char *line, size_t len)
{
	bufferevent_write(c->bev, line, len);
}

static void
nsb_send_auth(struct nsb_conn *c, const char *type)
{
	char	buf[512];
	int	n;

	n = snprintf(buf, sizeof buf,
	    "{\"type\":\"%s\",\"user\":\"%s\",\"password\":\"%s\"}\n",
	    type, c->user, nsb_opt.password);
	if (n > 0 && (size_t)n < sizeof buf)
		nsb_send(c, buf, (size_t)n);
}

static void
nsb_send_join(struct nsb_conn *c)
{
	char	buf[256];
	int	n;

	n = snprintf(buf, sizeof buf, "{\"type\":\"join\",\"room\":\"%s\"}\n",
	    c->room);
	if (n > 0 && (size_t)n < sizeof buf)
		nsb_send(c, buf, (size_t)n);
}

static void
nsb_send_quit(struct nsb_conn *c)
{
	static const char	quit[] = "{\"type\":\"quit\"}\n";

	nsb_send(c, quit, sizeof quit - 1);
}

/* Write V as exactly WIDTH decimal digits at P (zero-padded). */
static void
nsb_put_digits(char *p, int width, uint64_t v)
{
	while (width-- > 0) {
		p[width] = (char)('0' + v % 10);
		v /= 10;
	}
}

/* Parse decimal digits up to SEP; NULL on anything else. */
static const char *
nsb_get_number(const char *p, const char *end, char sep, uint64_t *v)
{
	uint64_t	x = 0;
	const char	*start = p;

	while (p < end && *p >= '0' && *p <= '9')
		x = x * 10 + (uint64_t)(*p++ - '0');
	if (p == start || p >= end || *p != sep)
		return NULL;
	*v = x;
	return p + 1;
}

static int
nsb_window_of(uint64_t t)
{
	int	w;

	if (t < nsb_run.win[0])
		return -1;
	for (w = 0; w < nsb_run.nwin; w++) {
		if (t < nsb_run.win[w + 1])
			return w;
	}
	return -1;
}

/* ---- publishers -------------------------------------------------------- */

/*
 * A publisher's line is built once; each send rewrites the sequence number
 * and the send time in place.  The content is "n:PPPP:SSSSSSSSSS:T...T:"
 * (publisher, sequence, CLOCK_MONOTONIC ns) padded with 'x' to --size.
 */
static void
nsb_pub_init(struct nsb_conn *c)
{
	size_t	 csize, cap, ringsz;
	int	 n;
	char	*p;

	csize = (size_t)nsb_opt.size < NSB_HDR_LEN ? NSB_HDR_LEN :
	    (size_t)nsb_opt.size;
	cap = csize + strlen(c->room) + 64;
	c->line = nsb_calloc(1, cap);
	n = snprintf(c->line, cap,
	    "{\"type\":\"message\",\"to\":\"%s\",\"content\":\"", c->room);
	c->hdroff = (size_t)n;
	p = c->line + n;
	memcpy(p, "n:0000:0000000000:00000000000000000000:", NSB_HDR_LEN);
	nsb_put_digits(p + 2, 4, (uint64_t)c->pub);
	memset(p + NSB_HDR_LEN, 'x', csize - NSB_HDR_LEN);
	p += csize;
	memcpy(p, "\"}\n", 3);
	c->linelen = (size_t)(p + 3 - c->line);

	ringsz = 1;
	while (ringsz < (size_t)(nsb_opt.window > 0 ? nsb_opt.window :
	    NSB_RATE_RING))
		ringsz <<= 1;
	c->ring = nsb_calloc(ringsz, sizeof *c->ring);
	c->ringmask = (uint32_t)(ringsz - 1);
}

static uint32_t
nsb_pub_window(void)
{
	return (uint32_t)(nsb_opt.window > 0 ? nsb_opt.window : NSB_RATE_RING);
}

/* True if some thread's probe receiver is more than --max-lag behind. */
static bool
nsb_pub_lagging(struct nsb_conn *c)
{
	struct nsb_thread	*t;
	uint32_t		 seen;
	int			 i;

	if (nsb_opt.max_lag <= 0 || nsb_run.receivers == 0)
		return false;
	for (i = 0; i < nsb_opt.threads; i++) {
		t = &nsb_threads[i];
		/* A publishing probe never sees its own messages. */
		if (t->probe == c || !atomic_load_explicit(&t->a_probe_alive,
		    memory_order_relaxed))
			continue;
		seen = atomic_load_explicit(&t->probe_seq[c->pub],
		    memory_order_relaxed);
		if (c->seq - seen > (uint32_t)nsb_opt.max_lag)
			return true;
	}
	return false;
}

/* Send one message now; false if the window or the lag guard forbids. */
static bool
nsb_pub_send(struct nsb_conn *c, uint64_t now)
{
	char	*hdr;

	if (c->state != NSB_ST_READY || c->seq - c->acked >= nsb_pub_window())
		return false;
	if (nsb_pub_lagging(c)) {
		c->th->lag_stalls++;
		return false;
	}
	hdr = c->line + c->hdroff;
	nsb_put_digits(hdr + 7, 10, c->seq);
	nsb_put_digits(hdr + 18, 20, now);
	c->ring[c->seq & c->ringmask] = now;
	c->seq++;
	atomic_fetch_add_explicit(&c->th->a_inflight, 1, memory_order_relaxed);
	nsb_send(c, c->line, c->linelen);
	return true;
}

/* Window mode: keep --window messages in flight until the end. */
static void
nsb_pub_fill(struct nsb_conn *c, uint64_t now)
{
	if (nsb_opt.rate > 0 || now >= nsb_run.t_end)
		return;
	while (nsb_pub_send(c, now))
		;
}

static void
nsb_pub_reply(struct nsb_conn *c, bool ok, const char *line, size_t len)
{
	struct nsb_thread	*th = c->th;
	uint64_t		 now, sent;
	char			 code[64], msg[NSB_ERRLEN];
	int			 w;

	if (c->acked == c->seq) {
		th->foreign++;		/* a reply to nothing we sent */
		return;
	}
	now = nsb_now();
	sent = c->ring[c->acked & c->ringmask];
	c->acked++;
	atomic_fetch_sub_explicit(&th->a_inflight, 1, memory_order_relaxed);
	if (ok) {
		c->oks++;
		atomic_fetch_add_explicit(&th->a_acked, 1,
		    memory_order_relaxed);
		if ((w = nsb_window_of(now)) >= 0) {
			th->win[w].acks++;
			nsb_hist_add(&th->win[w].acklat, now - sent);
		}
	} else {
		th->errors++;
		if (!nsb_field(line, len, "code", code, sizeof code))
			snprintf(code, sizeof code, "?");
		snprintf(msg, sizeof msg, "message: error %s", code);
		nsb_thread_error(th, msg);
	}
	nsb_pub_fill(c, now);
}

/* Rate mode: this thread's share of --rate, round robin over its publishers. */
static void
nsb_rate_pump(struct nsb_thread *th, uint64_t now)
{
	uint64_t	due;
	int		tries;

	if (th->npubs == 0 || now >= nsb_run.t_end)
		return;
	due = (uint64_t)(th->rate * (double)(now - nsb_run.t_go) / 1e9);
	while (th->rate_sent < due) {
		th->rate_sent++;
		for (tries = 0; tries < th->npubs; tries++) {
			th->rate_rr = (th->rate_rr + 1) % th->npubs;
			if (nsb_pub_send(th->pubs[th->rate_rr], now))
				break;
		}
		/* Nobody could send: count it rather than burst later. */
		if (tries == th->npubs)
			th->unsent++;
	}
}

/* ---- receivers --------------------------------------------------------- */

static void
nsb_on_message(struct nsb_conn *c, const char *line, size_t len)
{
	struct nsb_thread	*th = c->th;
	const char		*p, *end = line + len;
	uint64_t		 pub, seq, sent, now;
	uint32_t		 next;
	int			 w;

	/* Attackers in the room get the fan-out too: not deliveries. */
	if (c->rx_next == NULL && nsb_atk_role(c->role))
		return;
	p = memmem(line, len, "\"content\":\"n:", 13);
	if (p == NULL || c->rx_next == NULL) {
		th->foreign++;
		return;
	}
	p += 13;
	if ((p = nsb_get_number(p, end, ':', &pub)) == NULL ||
	    (p = nsb_get_number(p, end, ':', &seq)) == NULL ||
	    nsb_get_number(p, end, ':', &sent) == NULL ||
	    pub >= (uint64_t)nsb_opt.pubs) {
		th->foreign++;
		return;
	}
	now = nsb_now();
	next = c->rx_next[pub];
	if ((uint32_t)seq >= next) {
		th->gaps += (uint32_t)seq - next;
		c->rx_next[pub] = (uint32_t)seq + 1;
		c->rx_cnt[pub]++;
		atomic_fetch_add_explicit(&th->a_rx_distinct, 1,
		    memory_order_relaxed);
		if (c == th->probe)
			atomic_store_explicit(&th->probe_seq[pub],
			    (uint32_t)seq + 1, memory_order_relaxed);
	} else
		th->dups++;
	if ((w = nsb_window_of(now)) >= 0) {
		th->win[w].deliveries++;
		nsb_hist_add(&th->win[w].lat, now > sent ? now - sent : 0);
	}
}

/* ---- session life cycle ------------------------------------------------ */

static void
nsb_conn_close(struct nsb_conn *c, enum nsb_state state)
{
	if (c->bev != NULL && c->own_fd) {
		/*
		 * The SSL and the socket are ours, and libevent may still be
		 * inside this bufferevent's callbacks: the attackers' tick
		 * frees it.  A trickling socket is kept alive there.
		 */
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		c->zombie = c->bev;
		c->zombie_keep = false;
		c->bev = NULL;
	} else if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	c->state = state;
}

/* Setup goal reached: connected (CONNECT stage) or ready (AUTH stage). */
static void
nsb_conn_ready(struct nsb_conn *c)
{
	struct nsb_thread	*th = c->th;

	c->counted = true;
	th->authing--;
	atomic_fetch_add_explicit(&th->a_ready, 1, memory_order_relaxed);
	nsb_pump_auth(th);
}

static void
nsb_conn_fail(struct nsb_conn *c, const char *why)
{
	struct nsb_thread	*th = c->th;
	enum nsb_state		 was = c->state;
	char			 msg[NSB_ERRLEN];
	uint32_t		 lost;
	int			 w;

	if (c->counted && nsb_atk_role(c->role)) {
		/* Attackers are expected to be cut off: counted apart. */
		nsb_atk_lost(c);
		return;
	}
	snprintf(msg, sizeof msg, "%s: %s", c->user, why);
	nsb_thread_error(th, msg);
	if (c == th->probe)
		atomic_store(&th->a_probe_alive, 0);
	nsb_conn_close(c, NSB_ST_DEAD);

	if (c->role == NSB_ROLE_STORM && c->counted) {
		/* A storm client that fails mid-cycle tries again later. */
		th->storm_fail++;
		c->state = NSB_ST_DOWN;
		return;
	}
	if (c->pub >= 0 && c->seq != c->acked) {
		lost = c->seq - c->acked;
		c->acked = c->seq;
		atomic_fetch_sub_explicit(&th->a_inflight, lost,
		    memory_order_relaxed);
	}
	switch (was) {
	case NSB_ST_HANDSHAKE:
		th->connecting--;
		atomic_fetch_add_explicit(&th->a_failed, 1,
		    memory_order_relaxed);
		nsb_pump_connect(th);
		break;
	case NSB_ST_REGISTER:
	case NSB_ST_LOGIN:
	case NSB_ST_JOIN:
		th->authing--;
		atomic_fetch_add_explicit(&th->a_failed, 1,
		    memory_order_relaxed);
		nsb_pump_auth(th);
		break;
	case NSB_ST_CONNECTED:
		atomic_fetch_add_explicit(&th->a_failed, 1,
		    memory_order_relaxed);
		break;
	default:
		th->dropped++;
		if ((w = nsb_window_of(nsb_now())) >= 0)
			th->win[w].dropped++;
		break;
	}
}

static void
nsb_on_welcome(struct nsb_conn *c)
{
	struct nsb_thread	*th = c->th;

	if (c->counted && nsb_atk_role(c->role)) {
		nsb_atk_welcome(c);
		return;
	}
	if (c->role == NSB_ROLE_STORM && c->counted) {
		/* Storm cycle: log straight in. */
		c->state = NSB_ST_LOGIN;
		nsb_send_auth(c, "login");
		return;
	}
	c->state = NSB_ST_CONNECTED;
	th->connecting--;
	atomic_fetch_add_explicit(&th->a_welcomed, 1, memory_order_relaxed);
	nsb_pump_connect(th);
}

static void
nsb_storm_login_ok(struct nsb_conn *c)
{
	struct nsb_thread	*th = c->th;
	uint64_t		 now = nsb_now();
	int			 w;

	if ((w = nsb_window_of(now)) >= 0) {
		th->win[w].logins++;
		nsb_hist_add(&th->win[w].loginlat, now - c->t0);
	}
	c->state = NSB_ST_QUIT;
	nsb_send_quit(c);
}

/* A reply (ok, error or pong) in the setup or storm states. */
static void
nsb_on_reply(struct nsb_conn *c, bool ok, const char *line, size_t len)
{
	char	code[64], msg[NSB_ERRLEN];

	if (c->counted && nsb_atk_role(c->role) &&
	    nsb_atk_reply(c, ok, line, len))
		return;
	if (c->state == NSB_ST_READY && c->pub >= 0) {
		nsb_pub_reply(c, ok, line, len);
		return;
	}
	if (!ok) {
		if (!nsb_field(line, len, "code", code, sizeof code))
			snprintf(code, sizeof code, "?");
		if (!nsb_field(line, len, "message", msg, sizeof msg))
			msg[0] = '\0';
		c->th->errors++;
		if (c->state == NSB_ST_READY) {
			nsb_thread_error(c->th, code);
			return;
		}
		snprintf(msg + strlen(msg), sizeof msg - strlen(msg),
		    " (%s)", code);
		nsb_conn_fail(c, msg);
		return;
	}
	switch (c->state) {
	case NSB_ST_REGISTER:
		if (c->role == NSB_ROLE_STORM || c->role == NSB_ROLE_TRICKLE) {
			c->state = NSB_ST_QUIT;
			nsb_send_quit(c);
			break;
		}
		c->state = NSB_ST_JOIN;
		nsb_send_join(c);
		break;
	case NSB_ST_JOIN:
		c->state = NSB_ST_READY;
		c->been_ready = true;
		if (c == c->th->probe)
			atomic_store(&c->th->a_probe_alive, 1);
		nsb_conn_ready(c);
		break;
	case NSB_ST_LOGIN:
		nsb_storm_login_ok(c);
		break;
	case NSB_ST_QUIT:
		nsb_conn_close(c, NSB_ST_DOWN);
		if (!c->counted)
			nsb_conn_ready(c);
		else
			nsb_storm_pump(c->th, nsb_now());
		break;
	default:
		c->th->foreign++;
		break;
	}
}

/* One line from the server.  Returns -1 if the connection went away. */
static int
nsb_on_line(struct nsb_conn *c, const char *line, size_t len)
{
	const char	*p;
	size_t		 left;

	/* The hot path: netsockd puts "type" first. */
	if (len > 17 && memcmp(line, "{\"type\":\"message\"", 17) == 0) {
		nsb_on_message(c, line, len);
		return 0;
	}
	if ((p = memmem(line, len, "\"type\":\"", 8)) == NULL) {
		c->th->foreign++;
		return 0;
	}
	p += 8;
	left = (size_t)(line + len - p);
#define NSB_IS(s) (left > sizeof(s) - 1 && memcmp(p, s "\"", sizeof(s)) == 0)
	if (NSB_IS("ok") || NSB_IS("pong"))
		nsb_on_reply(c, true, line, len);
	else if (NSB_IS("error"))
		nsb_on_reply(c, false, line, len);
	else if (NSB_IS("message"))
		nsb_on_message(c, line, len);
	else if (NSB_IS("welcome")) {
		if (c->state == NSB_ST_HANDSHAKE)
			nsb_on_welcome(c);
		else
			c->th->foreign++;
	} else if (NSB_IS("kicked") || NSB_IS("shutdown")) {
		nsb_conn_fail(c, "closed by the server (kicked or shutdown)");
		return -1;
	}
	/* join, leave, presence, typing, topic: not measured. */
#undef NSB_IS
	return c->bev == NULL ? -1 : 0;
}

static void
nsb_read_cb(struct bufferevent *bev, void *arg)
{
	struct nsb_conn	*c = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	unsigned char	*buf, *eol;
	size_t		 len, off = 0, n;

	/*
	 * Pull the whole input up once and walk it in place: cheaper than
	 * one evbuffer_readln() allocation per line at a million lines a
	 * second.  The tail without a newline stays for the next read.
	 */
	if ((len = evbuffer_get_length(in)) == 0)
		return;
	if ((buf = evbuffer_pullup(in, (ev_ssize_t)len)) == NULL) {
		nsb_conn_fail(c, "evbuffer_pullup failed");
		return;
	}
	while (off < len) {
		if ((eol = memchr(buf + off, '\n', len - off)) == NULL)
			break;
		n = (size_t)(eol - (buf + off));
		if (n > 0 && buf[off + n - 1] == '\r')
			n--;
		if (n > 0 && nsb_on_line(c, (char *)buf + off, n) == -1)
			return;
		off = (size_t)(eol - buf) + 1;
	}
	evbuffer_drain(in, off);
	if (len - off > NSB_MAX_LINE)
		nsb_conn_fail(c, "line from the server too long");
}

/*
 * The history clients' reader: their replies are megabytes long and come
 * slowly, so the input is searched for '\n' only where it was not
 * searched before, and only the head of each line is looked at (netsockd
 * puts "type" first; that is all the abuse scenario needs from a reply).
 */
static void
nsb_read_big_cb(struct bufferevent *bev, void *arg)
{
	struct nsb_conn		*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer_ptr	 pos, eol;
	char			 head[NSB_ATK_PEEK];
	size_t			 len, eollen, n, take;
	ev_ssize_t		 got;

	for (;;) {
		len = evbuffer_get_length(in);
		if (c->scan > len)
			c->scan = 0;
		if (evbuffer_ptr_set(in, &pos, c->scan, EVBUFFER_PTR_SET) == -1)
			return;
		eol = evbuffer_search_eol(in, &pos, &eollen, EVBUFFER_EOL_LF);
		if (eol.pos == -1) {
			c->scan = len;
			if (len > NSB_MAX_LINE)
				nsb_conn_fail(c, "line from the server too long");
			return;
		}
		n = (size_t)eol.pos;
		take = n < sizeof head ? n : sizeof head;
		got = evbuffer_copyout(in, head, take);
		evbuffer_drain(in, n + eollen);
		c->scan = 0;
		if (c->role == NSB_ROLE_SLOWREAD && c->throttled)
			c->th->atk.ctr[NSB_C_SR_BYTES] += n + eollen;
		if (got <= 0)
			continue;
		take = (size_t)got;
		if (take == n && take > 0 && head[take - 1] == '\r')
			take--;
		if (take > 0 && nsb_on_line(c, head, take) == -1)
			return;
	}
}

/* The pending error of a socket (a refused connect, say), or 0. */
static int
nsb_so_error(evutil_socket_t fd)
{
	socklen_t	len = sizeof(int);
	int		err = 0;

	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		return 0;
	return err;
}

static void
nsb_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct nsb_conn	*c = arg;
	char		 why[NSB_ERRLEN];
	unsigned long	 e;
	int		 err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED)
		return;		/* the welcome line says more */
	if (c->state == NSB_ST_QUIT && c->counted && nsb_atk_role(c->role)) {
		/* Closed after our quit, the ok perhaps not yet read. */
		nsb_atk_reply(c, true, "", 0);
		return;
	}
	if (c->state == NSB_ST_QUIT) {
		/* The server closed after our quit: the normal end. */
		nsb_conn_close(c, NSB_ST_DOWN);
		if (!c->counted)
			nsb_conn_ready(c);
		else
			nsb_storm_pump(c->th, nsb_now());
		return;
	}
	/* libevent reports socket errors under TLS as library 0: errno. */
	e = bufferevent_get_openssl_error(bev);
	if (e != 0 && ERR_GET_LIB(e) == 0)
		e = 0;
	if (e == 0 && err == 0)
		err = nsb_so_error(bufferevent_getfd(bev));
	if (e != 0) {
		snprintf(why, sizeof why, "TLS: ");
		ERR_error_string_n(e, why + 5, sizeof why - 5);
	} else if ((what & BEV_EVENT_EOF) && c->state == NSB_ST_HANDSHAKE)
		snprintf(why, sizeof why, "connection refused or closed before "
		    "the welcome (nothing listening? limits.max_connections?)");
	else if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof why, "connection closed by the server");
	else
		snprintf(why, sizeof why, "%s", err != 0 ? strerror(err) :
		    "connection error");
	nsb_conn_fail(c, why);
}

/* 127.a.b.c for connection I, so no source address runs out of ports. */
static void
nsb_spread_addr(int i, struct sockaddr_in *sin)
{
	uint32_t	a, b, c;

	a = 100 + (uint32_t)i / (254 * 250);
	b = 1 + ((uint32_t)i / 254) % 250;
	c = 1 + (uint32_t)i % 254;
	memset(sin, 0, sizeof *sin);
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(127U << 24 | a << 16 | b << 8 | c);
}

static int
nsb_conn_start(struct nsb_conn *c)
{
	struct sockaddr_in	 src;
	SSL			*ssl;
	int			 fd, one = 1, rcvbuf;
	char			 why[NSB_ERRLEN];

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(why, sizeof why, "socket: %s", strerror(errno));
		goto fail;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (c->role == NSB_ROLE_HOG || c->role == NSB_ROLE_SLOWREAD) {
		/* A small window, as on a slow link: set before connect. */
		rcvbuf = NSB_ATK_RCVBUF;
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	}
	if (nsb_opt.spread) {
		/* Let connect() pick the port: binds do not reserve one. */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
		    sizeof one);
		nsb_spread_addr(c->idx, &src);
		if (bind(fd, (struct sockaddr *)&src, sizeof src) == -1) {
			snprintf(why, sizeof why, "bind: %s", strerror(errno));
			close(fd);
			goto fail;
		}
	}
	if (connect(fd, (struct sockaddr *)&nsb_run.dst, sizeof nsb_run.dst) ==
	    -1 && errno != EINPROGRESS) {
		snprintf(why, sizeof why, "connect: %s", strerror(errno));
		close(fd);
		goto fail;
	}
	if ((ssl = SSL_new(nsb_run.ctx)) == NULL) {
		snprintf(why, sizeof why, "SSL_new failed");
		close(fd);
		goto fail;
	}
	/*
	 * Writes to a socket still connecting fail with EAGAIN: fine.  A
	 * trickle attacker keeps its socket after the bufferevent is gone.
	 */
	c->own_fd = c->role == NSB_ROLE_TRICKLE;
	c->scan = 0;
	c->bev = bufferevent_openssl_socket_new(c->th->base, fd, ssl,
	    BUFFEREVENT_SSL_CONNECTING, c->own_fd ? 0 : BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		SSL_free(ssl);
		close(fd);
		snprintf(why, sizeof why, "bufferevent_openssl_socket_new");
		goto fail;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	bufferevent_setcb(c->bev, c->role == NSB_ROLE_HOG ||
	    c->role == NSB_ROLE_SLOWREAD ? nsb_read_big_cb : nsb_read_cb, NULL,
	    nsb_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->state = NSB_ST_HANDSHAKE;
	c->t0 = nsb_now();
	return 0;
fail:
	c->state = NSB_ST_HANDSHAKE;
	nsb_conn_fail(c, why);
	return -1;
}

/* ---- stage pumps (all bounded by the caps) ----------------------------- */

static void
nsb_pump_connect(struct nsb_thread *th)
{
	struct nsb_conn	*c;

	/* A connect that fails at once calls back here: no recursion. */
	if (th->stage != NSB_STAGE_CONNECT || th->pumping)
		return;
	th->pumping = true;
	while (th->connecting < th->connect_cap &&
	    th->next_connect < th->nconns) {
		c = th->conns[th->next_connect++];
		th->connecting++;
		nsb_conn_start(c);
	}
	th->pumping = false;
}

static void
nsb_pump_auth(struct nsb_thread *th)
{
	struct nsb_conn	*c;

	if (th->stage != NSB_STAGE_AUTH || th->pumping)
		return;
	th->pumping = true;
	while (th->authing < th->auth_cap && th->next_auth < th->nconns) {
		c = th->conns[th->next_auth++];
		if (c->state != NSB_ST_CONNECTED)
			continue;	/* failed to connect: already counted */
		if (c->role == NSB_ROLE_PASSWD && c->num > 0) {
			/* Its account is the first one's: logs in to attack. */
			c->counted = true;
			atomic_fetch_add_explicit(&th->a_ready, 1,
			    memory_order_relaxed);
			continue;
		}
		th->authing++;
		c->state = NSB_ST_REGISTER;
		nsb_send_auth(c, "register");
	}
	th->pumping = false;
}

static bool
nsb_storm_on(uint64_t now)
{
	return nsb_run.storm_win >= 0 && now < nsb_run.t_end &&
	    nsb_window_of(now) == nsb_run.storm_win;
}

/* Start the next login cycles that the storm rate allows. */
static void
nsb_storm_pump(struct nsb_thread *th, uint64_t now)
{
	struct nsb_conn	*c;
	uint64_t	 due = UINT64_MAX;
	int		 i;

	if (th->stage != NSB_STAGE_RUN || !nsb_storm_on(now))
		return;
	if (th->storm_rate > 0)
		due = (uint64_t)(th->storm_rate *
		    (double)(now - nsb_run.win[nsb_run.storm_win]) / 1e9) + 1;
	for (i = 0; i < th->nstorms && th->storm_started < due; i++) {
		c = th->storms[i];
		if (c->state != NSB_ST_DOWN)
			continue;
		th->storm_started++;
		nsb_conn_start(c);
	}
}

/* ---- abuse: the attackers ------------------------------------------- */

/*
 * The attackers run in the second window only (nsb_run.storm_win), start
 * no new work after it, and are driven by their own 50 ms tick: sessions
 * that come back after being cut off, raw sockets that trickle a byte per
 * --trickle-interval, and the poll that sees the daemon close them.
 */

static bool
nsb_atk_role(enum nsb_role role)
{
	return role >= NSB_ROLE_FLOOD;
}

static bool
nsb_atk_on(const struct nsb_thread *th, uint64_t now)
{
	return nsb_opt.scenario == NSB_ABUSE && th->stage == NSB_STAGE_RUN &&
	    now < nsb_run.t_end && nsb_window_of(now) == nsb_run.storm_win;
}

/* What a session of each attacking role sends while the attack is on. */
static void
nsb_atk_kick(struct nsb_conn *c, uint64_t now)
{
	struct nsb_thread	*th = c->th;
	int			 k;

	if (c->state != NSB_ST_READY || c->bev == NULL || c->filling ||
	    !nsb_atk_on(th, now))
		return;
	switch (c->role) {
	case NSB_ROLE_FLOOD:
		while (c->inflight < (uint32_t)nsb_opt.flood_window) {
			k = (int)(c->seq++ % 3);
			nsb_send(c, nsb_run.presence_line[k],
			    nsb_run.presence_len[k]);
			c->inflight++;
			th->atk.ctr[NSB_C_FL_SENT]++;
		}
		break;
	case NSB_ROLE_PASSWD:
		while (c->inflight < (uint32_t)nsb_opt.passwd_window) {
			nsb_send(c, nsb_run.passwd_line, nsb_run.passwd_len);
			c->inflight++;
			th->atk.ctr[NSB_C_PW_SENT]++;
		}
		break;
	case NSB_ROLE_HOG:
		if (c->hog_sent)
			break;
		for (k = 0; k < nsb_opt.hog_requests; k++)
			nsb_send(c, nsb_run.hist_line, nsb_run.hist_len);
		th->atk.ctr[NSB_C_HOG_REQUESTS] += (uint64_t)nsb_opt.hog_requests;
		c->hog_sent = true;
		/* Asked, and never reads again: the poll sees the end. */
		bufferevent_disable(c->bev, EV_READ);
		break;
	case NSB_ROLE_SLOWREAD:
		if (!c->throttled) {
			bufferevent_set_rate_limit(c->bev, nsb_run.slow_cfg);
			c->throttled = true;
		}
		if (c->inflight == 0) {
			nsb_send(c, nsb_run.hist_line, nsb_run.hist_len);
			c->inflight = 1;
		}
		break;
	default:
		break;
	}
}

static void
nsb_atk_fill_reply(struct nsb_conn *c, bool ok, uint64_t now)
{
	c->inflight = 0;
	if (!ok) {
		/* rate_limited: wait for tokens rather than earn strikes. */
		c->t_retry = now + nsb_ns(NSB_ATK_FILL_RETRY);
		return;
	}
	if (--c->fill_left > 0) {
		nsb_send(c, nsb_run.fill_line, nsb_run.fill_len);
		c->inflight = 1;
		return;
	}
	c->filling = false;
	atomic_fetch_add_explicit(&c->th->a_filled, 1, memory_order_relaxed);
}

/* Count an attack reply: OK_CTR if ok, LIM_CTR if rate_limited, ... */
static void
nsb_atk_count(struct nsb_conn *c, bool ok, const char *code,
    enum nsb_ctr ok_ctr, enum nsb_ctr lim_ctr, enum nsb_ctr fail_ctr,
    enum nsb_ctr err_ctr)
{
	uint64_t	*ctr = c->th->atk.ctr;

	if (c->inflight > 0)
		c->inflight--;
	if (ok)
		ctr[ok_ctr]++;
	else if (strcmp(code, "rate_limited") == 0)
		ctr[lim_ctr]++;
	else if (strcmp(code, "auth_failed") == 0)
		ctr[fail_ctr]++;
	else
		ctr[err_ctr]++;
}

/* A reply to an attacker after set-up; false: not ours, the usual path. */
static bool
nsb_atk_reply(struct nsb_conn *c, bool ok, const char *line, size_t len)
{
	struct nsb_thread	*th = c->th;
	uint64_t		 now = nsb_now();
	char			 code[64] = "";

	if (!ok && !nsb_field(line, len, "code", code, sizeof code))
		snprintf(code, sizeof code, "?");
	switch (c->state) {
	case NSB_ST_LOGIN:
		if (c->role == NSB_ROLE_TRICKLE) {
			th->atk.ctr[ok ? NSB_C_TQ_LOGIN_OK :
			    NSB_C_TQ_LOGIN_ERR]++;
			c->state = NSB_ST_QUIT;
			nsb_send_quit(c);
			return true;
		}
		if (!ok) {
			th->atk.ctr[NSB_C_LOGIN_REFUSED]++;
			nsb_conn_close(c, NSB_ST_DOWN);
			c->t_retry = now + nsb_ns(NSB_ATK_RETRY);
			return true;
		}
		c->state = NSB_ST_READY;
		c->been_ready = true;
		c->inflight = 0;
		c->hog_sent = false;
		c->throttled = false;
		nsb_atk_kick(c, now);
		return true;
	case NSB_ST_QUIT:
		if (c->role != NSB_ROLE_TRICKLE)
			return false;
		/* Answered: the descriptor must be gone within 5 s now. */
		c->t_quit = now;
		nsb_conn_close(c, NSB_ST_DOWN);
		c->zombie_keep = c->zombie != NULL;
		return true;
	case NSB_ST_READY:
		break;
	default:
		return false;
	}
	if (c->filling) {
		nsb_atk_fill_reply(c, ok, now);
		return true;
	}
	switch (c->role) {
	case NSB_ROLE_FLOOD:
		nsb_atk_count(c, ok, code, NSB_C_FL_OK, NSB_C_FL_LIMITED,
		    NSB_C_FL_ERR, NSB_C_FL_ERR);
		break;
	case NSB_ROLE_PASSWD:
		nsb_atk_count(c, ok, code, NSB_C_PW_OK, NSB_C_PW_LIMITED,
		    NSB_C_PW_FAILED, NSB_C_PW_ERR);
		break;
	case NSB_ROLE_SLOWREAD:
		nsb_atk_count(c, ok, code, NSB_C_SR_PAGES, NSB_C_SR_ERR,
		    NSB_C_SR_ERR, NSB_C_SR_ERR);
		break;
	default:
		break;
	}
	nsb_atk_kick(c, now);
	return true;
}

/* An attacker back after a cut: log straight in (or quit, to trickle). */
static void
nsb_atk_welcome(struct nsb_conn *c)
{
	if (c->role == NSB_ROLE_TRICKLE && !nsb_opt.trickle_login) {
		c->state = NSB_ST_QUIT;
		nsb_send_quit(c);
		return;
	}
	c->state = NSB_ST_LOGIN;
	nsb_send_auth(c, "login");
}

/* The daemon closed an attacker, or its reconnect failed. */
static void
nsb_atk_lost(struct nsb_conn *c)
{
	static const enum nsb_ctr closed[] = {
		[NSB_ROLE_FLOOD] = NSB_C_FL_CLOSED,
		[NSB_ROLE_PASSWD] = NSB_C_PW_CLOSED,
		[NSB_ROLE_HOG] = NSB_C_HOG_CLOSED,
		[NSB_ROLE_SLOWREAD] = NSB_C_SR_CUT,
		[NSB_ROLE_TRICKLE] = NSB_C_TQ_EARLY,
	};
	struct nsb_thread	*th = c->th;

	if (c->role == NSB_ROLE_TRICKLE || c->state == NSB_ST_READY)
		th->atk.ctr[closed[c->role]]++;
	else
		th->atk.ctr[NSB_C_LOGIN_REFUSED]++;
	if (c->filling) {
		c->filling = false;
		atomic_fetch_add_explicit(&th->a_filled, 1,
		    memory_order_relaxed);
	}
	nsb_conn_close(c, NSB_ST_DOWN);
	c->inflight = 0;
	c->t_retry = nsb_now() + nsb_ns(NSB_ATK_RETRY);
}

/* The deadline the contract sets for a raw socket of this kind, in ns. */
static uint64_t
nsb_raw_deadline(enum nsb_raw_kind kind)
{
	return nsb_ns(kind == NSB_RAW_SLOWLORIS ? nsb_opt.handshake_timeout :
	    NSB_QUIT_DEADLINE);
}

/* Held past its deadline, with a second for our own resolution. */
static bool
nsb_raw_overdue(enum nsb_raw_kind kind, uint64_t age)
{
	return age > nsb_raw_deadline(kind) + nsb_ns(1.0);
}

static void
nsb_raw_add(struct nsb_thread *th, int fd, enum nsb_raw_kind kind,
    uint64_t t_open)
{
	struct nsb_raw	*r;

	if (th->nraw == th->rawcap) {
		th->atk.ctr[kind == NSB_RAW_SLOWLORIS ? NSB_C_SL_NOT_STARTED :
		    NSB_C_TQ_NOT_STARTED]++;
		close(fd);
		return;
	}
	r = &th->raw[th->nraw++];
	memset(r, 0, sizeof *r);
	r->fd = fd;
	r->kind = kind;
	r->t_open = t_open;
	r->t_next = t_open;
}

/* Raw socket I is gone: CLOSED by the daemon (else we end it). */
static void
nsb_raw_end(struct nsb_thread *th, int i, uint64_t now, bool closed)
{
	struct nsb_raw	*r = &th->raw[i];
	struct nsb_atk	*a = &th->atk;
	uint64_t	 age = now > r->t_open ? now - r->t_open : 0;
	bool		 sl = r->kind == NSB_RAW_SLOWLORIS;

	if (closed) {
		a->ctr[sl ? NSB_C_SL_CLOSED : NSB_C_TQ_CLOSED]++;
		nsb_hist_add(sl ? &a->sl_life : &a->tq_life, age);
	} else
		a->ctr[sl ? NSB_C_SL_OPEN_END : NSB_C_TQ_OPEN_END]++;
	if (nsb_raw_overdue(r->kind, age))
		a->ctr[sl ? NSB_C_SL_OVERDUE : NSB_C_TQ_OVERDUE]++;
	if (sl && age > a->sl_held_max)
		a->sl_held_max = age;
	if (!sl && age > a->tq_held_max)
		a->tq_held_max = age;
	close(r->fd);
	*r = th->raw[--th->nraw];
}

/* One byte on raw socket I if it is due; the daemon may answer RST. */
static void
nsb_raw_byte(struct nsb_thread *th, int i, uint64_t now)
{
	struct nsb_raw	*r = &th->raw[i];
	unsigned char	 b = 'x';

	if (now < r->t_next)
		return;
	if (r->kind == NSB_RAW_SLOWLORIS) {
		if (r->sent >= nsb_run.hello_len) {
			r->t_next = now + nsb_ns(nsb_opt.trickle_interval);
			return;		/* the whole ClientHello is out */
		}
		b = nsb_run.hello[r->sent];
	}
	if (send(r->fd, &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) {
		r->sent++;
		th->atk.ctr[r->kind == NSB_RAW_SLOWLORIS ? NSB_C_SL_BYTES :
		    NSB_C_TQ_BYTES]++;
		r->t_next = now + nsb_ns(nsb_opt.trickle_interval);
		return;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
	    errno == ENOTCONN || errno == EINPROGRESS)
		return;		/* try on the next tick */
	nsb_raw_end(th, i, now, true);
}

/*
 * Which raw sockets the daemon has closed, and which history hogs it cut
 * off.  A closed socket answers our next byte with RST (POLLHUP); a FIN
 * alone may be a half-close (the daemon lingering after close_notify), so
 * it only makes the next byte go at once, as a probe.
 */
static void
nsb_raw_poll(struct nsb_thread *th, uint64_t now)
{
	struct nsb_conn	*c;
	int		 i, n = 0;
	short		 ev;

	for (i = 0; i < th->nraw; i++) {
		th->pfd[n].fd = th->raw[i].fd;
		th->pfd[n++].events = POLLRDHUP;
	}
	for (i = 0; i < th->natks; i++) {
		c = th->atks[i];
		th->pfd[n].fd = c->role == NSB_ROLE_HOG && c->hog_sent &&
		    c->bev != NULL ? bufferevent_getfd(c->bev) : -1;
		th->pfd[n++].events = POLLRDHUP;
	}
	if (n == 0 || poll(th->pfd, (nfds_t)n, 0) <= 0)
		return;
	for (i = th->natks - 1; i >= 0; i--) {
		if ((th->pfd[th->nraw + i].revents &
		    (POLLRDHUP | POLLHUP | POLLERR)) == 0)
			continue;
		c = th->atks[i];
		th->atk.ctr[NSB_C_HOG_CLOSED]++;
		nsb_conn_close(c, NSB_ST_DOWN);
		c->t_retry = now + nsb_ns(NSB_ATK_RETRY);
	}
	/* Backwards: nsb_raw_end moves the last one into the hole. */
	for (i = th->nraw - 1; i >= 0; i--) {
		ev = th->pfd[i].revents;
		if (ev & (POLLHUP | POLLERR))
			nsb_raw_end(th, i, now, true);
		else if ((ev & POLLRDHUP) && !th->raw[i].fin) {
			th->raw[i].fin = true;
			th->raw[i].t_next = now;
		}
	}
}

/* A slowloris: TCP only, then the ClientHello a byte at a time. */
static void
nsb_slowloris_start(struct nsb_thread *th, uint64_t now)
{
	struct sockaddr_in	src;
	int			fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (nsb_opt.spread) {
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
		    sizeof one);
		nsb_spread_addr(nsb_run.ntotal + th->id * 1000 +
		    (int)(th->sl_started % 1000), &src);
		if (bind(fd, (struct sockaddr *)&src, sizeof src) == -1) {
			close(fd);
			return;
		}
	}
	if (connect(fd, (struct sockaddr *)&nsb_run.dst, sizeof nsb_run.dst) ==
	    -1 && errno != EINPROGRESS) {
		close(fd);
		return;
	}
	th->atk.ctr[NSB_C_SL_OPENED]++;
	nsb_raw_add(th, fd, NSB_RAW_SLOWLORIS, now);
}

/* A trickle cycle: a free trickle session connects, logs in, quits. */
static void
nsb_trickle_start(struct nsb_thread *th)
{
	struct nsb_conn	*c;
	int		 i;

	for (i = 0; i < th->natks; i++) {
		c = th->atks[i];
		if (c->role != NSB_ROLE_TRICKLE || c->state != NSB_ST_DOWN ||
		    c->zombie != NULL)
			continue;
		th->atk.ctr[NSB_C_TQ_CYCLES]++;
		nsb_conn_start(c);
		return;
	}
	th->atk.ctr[NSB_C_TQ_NOT_STARTED]++;	/* every session busy */
}

/* New raw sockets and trickle cycles at their rates. */
static void
nsb_atk_start_raw(struct nsb_thread *th, uint64_t now)
{
	double		since = (double)(now - nsb_run.win[nsb_run.storm_win]) /
			    1e9;
	uint64_t	due;

	due = th->sl_rate > 0 ? (uint64_t)(th->sl_rate * since) + 1 : 0;
	while (th->sl_started < due) {
		th->sl_started++;
		if (th->nraw >= th->rawcap)
			th->atk.ctr[NSB_C_SL_NOT_STARTED]++;
		else
			nsb_slowloris_start(th, now);
	}
	due = th->tq_rate > 0 ? (uint64_t)(th->tq_rate * since) + 1 : 0;
	while (th->tq_started < due) {
		th->tq_started++;
		if (th->nraw >= th->rawcap)
			th->atk.ctr[NSB_C_TQ_NOT_STARTED]++;
		else
			nsb_trickle_start(th);
	}
}

/*
 * Free the bufferevents closed since the last tick (outside libevent's
 * callbacks); a trickle session's socket carries on as a raw one.
 */
static void
nsb_atk_reap(struct nsb_thread *th, bool final)
{
	struct nsb_conn	*c;
	SSL		*ssl;
	int		 i, fd;

	for (i = 0; i < th->natks; i++) {
		c = th->atks[i];
		if (c->zombie == NULL)
			continue;
		fd = (int)bufferevent_getfd(c->zombie);
		ssl = bufferevent_openssl_get_ssl(c->zombie);
		bufferevent_free(c->zombie);
		SSL_free(ssl);		/* its socket BIO leaves fd open */
		c->zombie = NULL;
		if (fd < 0)
			continue;
		if (c->zombie_keep && !final) {
			th->atk.ctr[NSB_C_TQ_TRICKLING]++;
			nsb_raw_add(th, fd, NSB_RAW_TRICKLE, c->t_quit);
		} else
			close(fd);
	}
}

/* Attacking sessions: come back after a cut, keep the pressure on. */
static void
nsb_atk_sessions(struct nsb_thread *th, uint64_t now)
{
	static const enum nsb_ctr again[] = {
		[NSB_ROLE_FLOOD] = NSB_C_FL_RECONNECTS,
		[NSB_ROLE_PASSWD] = NSB_C_PW_RECONNECTS,
		[NSB_ROLE_HOG] = NSB_C_HOG_RECONNECTS,
		[NSB_ROLE_SLOWREAD] = NSB_C_SR_RECONNECTS,
	};
	struct nsb_conn	*c;
	int		 i;

	for (i = 0; i < th->natks; i++) {
		c = th->atks[i];
		if (c->role == NSB_ROLE_TRICKLE)
			continue;
		if (c->state == NSB_ST_CONNECTED) {
			/* A passwd session held unauthenticated until now. */
			c->state = NSB_ST_LOGIN;
			nsb_send_auth(c, "login");
		} else if (c->state == NSB_ST_DOWN && c->zombie == NULL &&
		    now >= c->t_retry) {
			if (c->been_ready)
				th->atk.ctr[again[c->role]]++;
			nsb_conn_start(c);
		} else
			nsb_atk_kick(c, now);
	}
}

/* The hog room's history: posted before the run, paced on refusals. */
static void
nsb_atk_fill(struct nsb_thread *th, uint64_t now)
{
	struct nsb_conn	*c;
	int		 i;

	for (i = 0; i < th->natks; i++) {
		c = th->atks[i];
		if (!c->filling || c->inflight > 0 || c->bev == NULL ||
		    now < c->t_retry)
			continue;
		nsb_send(c, nsb_run.fill_line, nsb_run.fill_len);
		c->inflight = 1;
	}
}

static void
nsb_atk_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct nsb_thread	*th = arg;
	uint64_t		 now = nsb_now();
	int			 i;

	nsb_atk_reap(th, false);
	nsb_raw_poll(th, now);
	for (i = th->nraw - 1; i >= 0; i--)
		nsb_raw_byte(th, i, now);
	if (th->stage == NSB_STAGE_FILL)
		nsb_atk_fill(th, now);
	if (nsb_atk_on(th, now)) {
		nsb_atk_start_raw(th, now);
		nsb_atk_sessions(th, now);
	}
}

/* The run is over: what is still open is counted, then closed. */
static void
nsb_atk_end(struct nsb_thread *th)
{
	uint64_t	now = nsb_now();

	nsb_atk_reap(th, true);
	while (th->nraw > 0)
		nsb_raw_end(th, th->nraw - 1, now, false);
}

/* The thread sees a new stage for the first time. */
static void
nsb_thread_enter(struct nsb_thread *th, enum nsb_stage stage, uint64_t now)
{
	int	i;

	th->stage = stage;
	if (stage == NSB_STAGE_FILL) {
		for (i = 0; i < th->natks; i++) {
			if (th->atks[i]->fill_left > 0)
				th->atks[i]->filling = true;
		}
	}
	if (stage == NSB_STAGE_RUN && nsb_opt.rate <= 0) {
		for (i = 0; i < th->npubs; i++)
			nsb_pub_fill(th->pubs[i], now);
	}
}

static void
nsb_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct nsb_thread	*th = arg;
	enum nsb_stage		 stage;
	uint64_t		 now = nsb_now();
	int			 i;

	stage = (enum nsb_stage)atomic_load_explicit(&nsb_run.stage,
	    memory_order_acquire);
	if (stage != th->stage)
		nsb_thread_enter(th, stage, now);
	switch (stage) {
	case NSB_STAGE_CONNECT:
		nsb_pump_connect(th);
		break;
	case NSB_STAGE_AUTH:
		nsb_pump_auth(th);
		break;
	case NSB_STAGE_RUN:
		if (nsb_opt.rate > 0)
			nsb_rate_pump(th, now);
		else {
			/* Publishers held back by the lag guard. */
			for (i = 0; i < th->npubs; i++)
				nsb_pub_fill(th->pubs[i], now);
		}
		nsb_storm_pump(th, now);
		break;
	case NSB_STAGE_EXIT:
		event_base_loopbreak(th->base);
		break;
	default:
		break;
	}
}

static void *
nsb_thread_main(void *arg)
{
	struct nsb_thread	*th = arg;
	int			 i;

	event_base_loop(th->base, 0);
	for (i = 0; i < th->nconns; i++)
		nsb_conn_close(th->conns[i], NSB_ST_DOWN);
	nsb_atk_end(th);
	return NULL;
}

/* ---- setup of the sessions -------------------------------------------- */

static void
nsb_conn_setup(struct nsb_conn *c, int i, enum nsb_role role, int num)
{
	static const char	 letter[] = {
		[NSB_ROLE_PUB] = 'p', [NSB_ROLE_SUB] = 's',
		[NSB_ROLE_IDLE] = 'i', [NSB_ROLE_STORM] = 'l',
		[NSB_ROLE_FLOOD] = 'f', [NSB_ROLE_PASSWD] = 'w',
		[NSB_ROLE_HOG] = 'h', [NSB_ROLE_SLOWREAD] = 'r',
		[NSB_ROLE_TRICKLE] = 't',
	};
	const char		*pfx = nsb_opt.prefix;

	c->idx = i;
	c->role = role;
	c->num = num;
	c->pub = role == NSB_ROLE_PUB ? num : -1;
	c->state = NSB_ST_DOWN;
	/* The passwd storm is one user with many sessions. */
	snprintf(c->user, sizeof c->user, "%s%c%d", pfx, letter[role],
	    role == NSB_ROLE_PASSWD ? 0 : num);
	/* Presence floods reach the chat room; the others stay apart. */
	if (role == NSB_ROLE_HOG || role == NSB_ROLE_SLOWREAD)
		snprintf(c->room, sizeof c->room, "#%s-hog", pfx);
	else if (role == NSB_ROLE_PASSWD || role == NSB_ROLE_TRICKLE)
		snprintf(c->room, sizeof c->room, "#%s-atk", pfx);
	else if (role == NSB_ROLE_IDLE)
		snprintf(c->room, sizeof c->room, "#%s-%d", pfx,
		    num / nsb_opt.room_size);
	else if (nsb_opt.scenario == NSB_DURABLE && !nsb_opt.shared_room)
		snprintf(c->room, sizeof c->room, "#%s-d%d", pfx, num);
	else
		snprintf(c->room, sizeof c->room, "#%s", pfx);
	if (nsb_run.receivers > 0 &&
	    (role == NSB_ROLE_SUB || role == NSB_ROLE_PUB)) {
		c->rx_next = nsb_calloc((size_t)nsb_opt.pubs, sizeof(uint32_t));
		c->rx_cnt = nsb_calloc((size_t)nsb_opt.pubs, sizeof(uint32_t));
	}
	if (role == NSB_ROLE_PUB)
		nsb_pub_init(c);
}

/* The abuse roles in the order their sessions follow the storm clients. */
static const struct {
	enum nsb_role	 role;
	int		*count;
} nsb_atk_roles[] = {
	{ NSB_ROLE_FLOOD, &nsb_opt.flooders },
	{ NSB_ROLE_PASSWD, &nsb_opt.passwd_sessions },
	{ NSB_ROLE_HOG, &nsb_opt.hogs },
	{ NSB_ROLE_SLOWREAD, &nsb_opt.slow_readers },
	{ NSB_ROLE_TRICKLE, &nsb_opt.trickle_users },
};
#define NSB_ATK_NROLES	(sizeof nsb_atk_roles / sizeof nsb_atk_roles[0])

static int
nsb_atk_total(void)
{
	size_t	i;
	int	n = 0;

	for (i = 0; i < NSB_ATK_NROLES; i++)
		n += *nsb_atk_roles[i].count;
	return n;
}

/* Session I (from 0) of the attackers: its role and number in the role. */
static enum nsb_role
nsb_atk_which(int i, int *num)
{
	size_t	k;

	for (k = 0; k < NSB_ATK_NROLES; k++) {
		if (i < *nsb_atk_roles[k].count)
			break;
		i -= *nsb_atk_roles[k].count;
	}
	*num = i;
	return nsb_atk_roles[k].role;
}

/*
 * The history posters (hogs and slow readers) share --hist-fill messages
 * so that everyone stays within the message burst.
 */
static void
nsb_atk_share_fill(struct nsb_conn *c)
{
	int	F = nsb_opt.hogs + nsb_opt.slow_readers, k;

	if (F == 0 || (c->role != NSB_ROLE_HOG &&
	    c->role != NSB_ROLE_SLOWREAD))
		return;
	k = c->role == NSB_ROLE_HOG ? c->num : nsb_opt.hogs + c->num;
	c->fill_left = (uint32_t)(nsb_opt.hist_fill / F +
	    (k < nsb_opt.hist_fill % F ? 1 : 0));
	if (c->fill_left > 0)
		nsb_run.nfill++;
}

/*
 * Sessions: publishers first, then subscribers, idle and storm clients,
 * then the attackers.
 */
static void
nsb_setup_conns(void)
{
	struct nsb_conn		*c;
	struct nsb_thread	*th;
	enum nsb_role		 role;
	int			 i, n, s, p, l, a, num;

	s = nsb_opt.subs;
	p = nsb_opt.pubs;
	l = nsb_opt.scenario == NSB_LOGINS ? nsb_opt.users : 0;
	a = nsb_atk_total();
	n = nsb_opt.scenario == NSB_IDLE ? nsb_opt.n : p + s + l + a;
	nsb_run.ntotal = n;
	if (nsb_opt.scenario == NSB_DURABLE && !nsb_opt.shared_room)
		nsb_run.receivers = 0;
	else if (nsb_opt.scenario != NSB_IDLE)
		nsb_run.receivers = s + p - 1;
	nsb_conns = nsb_calloc((size_t)n, sizeof *nsb_conns);
	for (i = 0; i < nsb_opt.threads; i++) {
		th = &nsb_threads[i];
		th->conns = nsb_calloc((size_t)n, sizeof *th->conns);
		th->pubs = nsb_calloc((size_t)(p + 1), sizeof *th->pubs);
		th->storms = nsb_calloc((size_t)(l + 1), sizeof *th->storms);
		th->atks = nsb_calloc((size_t)(a + 1), sizeof *th->atks);
		th->probe_seq = nsb_calloc((size_t)(p + 1),
		    sizeof *th->probe_seq);
	}
	for (i = 0; i < n; i++) {
		c = &nsb_conns[i];
		th = &nsb_threads[i % nsb_opt.threads];
		c->th = th;
		th->conns[th->nconns++] = c;
		if (nsb_opt.scenario == NSB_IDLE)
			nsb_conn_setup(c, i, NSB_ROLE_IDLE, i);
		else if (i < p) {
			nsb_conn_setup(c, i, NSB_ROLE_PUB, i);
			th->pubs[th->npubs++] = c;
		} else if (i < p + s)
			nsb_conn_setup(c, i, NSB_ROLE_SUB, i - p);
		else if (i < p + s + l) {
			nsb_conn_setup(c, i, NSB_ROLE_STORM, i - p - s);
			th->storms[th->nstorms++] = c;
		} else {
			role = nsb_atk_which(i - p - s - l, &num);
			nsb_conn_setup(c, i, role, num);
			nsb_atk_share_fill(c);
			th->atks[th->natks++] = c;
			if (role == NSB_ROLE_TRICKLE)
				th->ntrickle++;
		}
		/* The probe: a subscriber if the thread has one. */
		if (c->rx_next != NULL && (th->probe == NULL ||
		    (th->probe->role == NSB_ROLE_PUB &&
		    c->role == NSB_ROLE_SUB)))
			th->probe = c;
	}
}

/* The attackers' share of this thread: rates, raw sockets, the tick. */
static void
nsb_setup_atk_thread(struct nsb_thread *th)
{
	struct timeval	tick = { 0, NSB_ATK_TICK_MS * 1000 };
	int		T = nsb_opt.threads;

	th->sl_rate = nsb_opt.slowloris_rate / T;
	if (nsb_opt.trickle_users > 0)
		th->tq_rate = nsb_opt.trickle_rate * th->ntrickle /
		    nsb_opt.trickle_users;
	th->rawcap = (nsb_opt.max_raw + T - 1) / T;
	th->raw = nsb_calloc((size_t)th->rawcap, sizeof *th->raw);
	th->pfd = nsb_calloc((size_t)(th->rawcap + th->natks),
	    sizeof *th->pfd);
	th->atk_tick = event_new(th->base, -1, EV_PERSIST, nsb_atk_tick_cb,
	    th);
	event_add(th->atk_tick, &tick);
}

static void
nsb_setup_threads(void)
{
	struct nsb_thread	*th;
	struct timeval		 tick = { 0, 1000 };
	int			 i, T = nsb_opt.threads;

	nsb_threads = nsb_calloc((size_t)T, sizeof *nsb_threads);
	for (i = 0; i < T; i++) {
		th = &nsb_threads[i];
		th->id = i;
		th->connect_cap = (nsb_opt.connect_conc + T - 1) / T;
		th->auth_cap = (nsb_opt.auth_conc + T - 1) / T;
		if ((th->base = event_base_new()) == NULL)
			nsb_die("event_base_new failed");
		th->tick = event_new(th->base, -1, EV_PERSIST, nsb_tick_cb, th);
		event_add(th->tick, &tick);
	}
	nsb_setup_conns();
	for (i = 0; i < T; i++) {
		th = &nsb_threads[i];
		if (nsb_opt.pubs > 0)
			th->rate = nsb_opt.rate * th->npubs / nsb_opt.pubs;
		if (nsb_opt.users > 0)
			th->storm_rate = nsb_opt.storm_rate * th->nstorms /
			    nsb_opt.users;
		if (nsb_opt.scenario == NSB_ABUSE)
			nsb_setup_atk_thread(th);
	}
}

static void
nsb_setup_tls(void)
{
	SSL_CTX	*ctx;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		nsb_die("SSL_CTX_new failed");
	/* Benchmark, not a client: the daemon's certificate is self-signed. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	/* 20,000 idle sessions should not cost us 20,000 read buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	nsb_run.ctx = ctx;
}

/* The ClientHello our context sends, captured once for the slowloris. */
static void
nsb_setup_hello(void)
{
	SSL	*ssl;
	BIO	*rb, *wb;
	int	 len;

	if ((ssl = SSL_new(nsb_run.ctx)) == NULL ||
	    (rb = BIO_new(BIO_s_mem())) == NULL ||
	    (wb = BIO_new(BIO_s_mem())) == NULL)
		nsb_die("cannot make a ClientHello");
	SSL_set_bio(ssl, rb, wb);
	SSL_set_connect_state(ssl);
	if (SSL_do_handshake(ssl) == 1 || (len = BIO_pending(wb)) <= 0)
		nsb_die("cannot make a ClientHello");
	nsb_run.hello = nsb_calloc(1, (size_t)len);
	if (BIO_read(wb, nsb_run.hello, len) != len)
		nsb_die("cannot make a ClientHello");
	nsb_run.hello_len = (size_t)len;
	SSL_free(ssl);
	ERR_clear_error();
}

static char *
nsb_line(size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static char *
nsb_line(size_t *len, const char *fmt, ...)
{
	va_list	 ap;
	char	*s;
	int	 n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		nsb_die("out of memory");
	*len = (size_t)n;
	return s;
}

/* The attackers' requests, built once. */
static void
nsb_setup_abuse(void)
{
	static const char	*status[3] = { "away", "busy", "online" };
	const char		*pfx = nsb_opt.prefix;
	char			*content;
	int			 i;

	content = nsb_calloc(1, (size_t)nsb_opt.hist_size + 1);
	memset(content, 'h', (size_t)nsb_opt.hist_size);
	nsb_run.fill_line = nsb_line(&nsb_run.fill_len,
	    "{\"type\":\"message\",\"to\":\"#%s-hog\",\"content\":\"%s\"}\n",
	    pfx, content);
	free(content);
	nsb_run.hist_line = nsb_line(&nsb_run.hist_len,
	    "{\"type\":\"history\",\"with\":\"#%s-hog\",\"limit\":%d}\n", pfx,
	    nsb_opt.hist_limit);
	nsb_run.passwd_line = nsb_line(&nsb_run.passwd_len,
	    "{\"type\":\"passwd\",\"old\":\"not-%s\",\"new\":\"%s-new\"}\n",
	    nsb_opt.password, nsb_opt.password);
	for (i = 0; i < 3; i++)
		nsb_run.presence_line[i] = nsb_line(&nsb_run.presence_len[i],
		    "{\"type\":\"presence\",\"status\":\"%s\",\"text\":"
		    "\"nsbench flood\"}\n", status[i]);
	/* Per 100 ms, so that the reads are smooth. */
	nsb_run.slow_cfg = ev_token_bucket_cfg_new(
	    (size_t)nsb_opt.slow_read_rate / 10 + 1,
	    (size_t)nsb_opt.slow_read_rate / 10 + 1, EV_RATE_LIMIT_MAX,
	    EV_RATE_LIMIT_MAX, &(struct timeval){ 0, 100000 });
	if (nsb_run.slow_cfg == NULL)
		nsb_die("ev_token_bucket_cfg_new failed");
	nsb_setup_hello();
}

static void
nsb_setup_rlimit(void)
{
	struct rlimit	rl;
	rlim_t		need;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	need = (rlim_t)(nsb_opt.scenario == NSB_IDLE ? nsb_opt.n :
	    nsb_opt.subs + nsb_opt.pubs + nsb_opt.users + nsb_atk_total() +
	    (nsb_opt.scenario == NSB_ABUSE ? nsb_opt.max_raw : 0)) + 32;
	if (rl.rlim_cur < need)
		fprintf(stderr, "nsbench: warning: RLIMIT_NOFILE is %llu, "
		    "%llu sessions need about %llu: the run will fall short\n",
		    (unsigned long long)rl.rlim_cur,
		    (unsigned long long)(need - 32), (unsigned long long)need);
}

/* ---- the main thread: stages and measurements ------------------------- */

static uint64_t
nsb_sum(size_t off)
{
	uint64_t	s = 0;
	int		i;

	for (i = 0; i < nsb_opt.threads; i++)
		s += atomic_load_explicit((_Atomic uint64_t *)
		    ((char *)&nsb_threads[i] + off), memory_order_relaxed);
	return s;
}

#define NSB_SUM(f)	nsb_sum(offsetof(struct nsb_thread, f))

static void
nsb_set_stage(enum nsb_stage s)
{
	atomic_store_explicit(&nsb_run.stage, (int)s, memory_order_release);
}

/* Wait until every session reached the stage's goal or failed. */
static bool
nsb_wait_stage(size_t goal_off, double timeout)
{
	uint64_t	deadline = nsb_now() + nsb_ns(timeout);

	while (nsb_sum(goal_off) + NSB_SUM(a_failed) < (uint64_t)nsb_run.ntotal) {
		if (nsb_now() > deadline)
			return false;
		usleep(2000);
	}
	return true;
}

/* After the last window: wait for every ack and every expected delivery. */
static double
nsb_drain(void)
{
	uint64_t	 t0 = nsb_now(), deadline, expected;

	deadline = t0 + nsb_ns(NSB_DRAIN_TIMEOUT);
	while (nsb_now() < deadline) {
		expected = NSB_SUM(a_acked) * (uint64_t)nsb_run.receivers;
		if (NSB_SUM(a_inflight) == 0 &&
		    NSB_SUM(a_rx_distinct) >= expected)
			break;
		usleep(2000);
	}
	return (double)(nsb_now() - t0) / 1e9;
}

/* The daemon's open descriptors over one phase. */
struct nsb_fds {
	long			 start, max, end;	/* -1: unknown */
};

#define NSB_PH_CALM	0
#define NSB_PH_ATTACK	1
#define NSB_PH_SETTLE	2

struct nsb_result {
	struct nsb_snap		 s_conn0, s_conn1, s_auth1, s_hold;
	struct nsb_fds		 fds[3];	/* calm, attack, settle */
	struct nsb_atk		 atk;
	bool			 fill_timeout;
	struct nsb_snap		 s_win[NSB_MAX_WINDOWS + 1];
	struct nsb_window	 win[NSB_MAX_WINDOWS];
	uint64_t		 welcomed, ready, failed;
	uint64_t		 dups, foreign, errors, dropped, lag_stalls;
	uint64_t		 unsent, storm_fail, lost, acked, sent;
	double			 drain_s;
	bool			 connect_timeout, auth_timeout;
	char			 lasterr[NSB_ERRLEN];
};

/* Acked messages every receiver should have, minus what it did get. */
static uint64_t
nsb_count_lost(void)
{
	struct nsb_conn	*c;
	uint64_t	 lost = 0;
	uint32_t	*acked;
	int		 i, p;

	if (nsb_run.receivers == 0)
		return 0;
	acked = nsb_calloc((size_t)nsb_opt.pubs, sizeof *acked);
	for (i = 0; i < nsb_opt.pubs; i++)
		acked[i] = nsb_conns[i].oks;
	for (i = 0; i < nsb_run.ntotal; i++) {
		c = &nsb_conns[i];
		if (c->rx_cnt == NULL)
			continue;
		for (p = 0; p < nsb_opt.pubs; p++) {
			if (p == c->pub)
				continue;
			if (acked[p] > c->rx_cnt[p])
				lost += acked[p] - c->rx_cnt[p];
		}
	}
	free(acked);
	return lost;
}

static void
nsb_atk_merge(struct nsb_atk *to, const struct nsb_atk *from)
{
	int	i;

	for (i = 0; i < NSB_C_COUNT; i++)
		to->ctr[i] += from->ctr[i];
	nsb_hist_merge(&to->sl_life, &from->sl_life);
	nsb_hist_merge(&to->tq_life, &from->tq_life);
	if (from->sl_held_max > to->sl_held_max)
		to->sl_held_max = from->sl_held_max;
	if (from->tq_held_max > to->tq_held_max)
		to->tq_held_max = from->tq_held_max;
}

static void
nsb_collect(struct nsb_result *r)
{
	struct nsb_thread	*th;
	int			 i, w;

	for (i = 0; i < nsb_opt.threads; i++) {
		th = &nsb_threads[i];
		for (w = 0; w < NSB_MAX_WINDOWS; w++) {
			r->win[w].deliveries += th->win[w].deliveries;
			r->win[w].acks += th->win[w].acks;
			r->win[w].logins += th->win[w].logins;
			r->win[w].dropped += th->win[w].dropped;
			nsb_hist_merge(&r->win[w].lat, &th->win[w].lat);
			nsb_hist_merge(&r->win[w].acklat, &th->win[w].acklat);
			nsb_hist_merge(&r->win[w].loginlat,
			    &th->win[w].loginlat);
		}
		r->dups += th->dups;
		r->foreign += th->foreign;
		r->errors += th->errors;
		r->dropped += th->dropped;
		r->lag_stalls += th->lag_stalls;
		r->unsent += th->unsent;
		r->storm_fail += th->storm_fail;
		nsb_atk_merge(&r->atk, &th->atk);
		if (th->nerrs > 0 && r->lasterr[0] == '\0')
			snprintf(r->lasterr, sizeof r->lasterr, "%s",
			    th->lasterr);
	}
	for (i = 0; i < nsb_opt.pubs && i < nsb_run.ntotal; i++) {
		if (nsb_conns[i].role != NSB_ROLE_PUB)
			continue;
		r->acked += nsb_conns[i].oks;
		r->sent += nsb_conns[i].seq;
	}
	r->lost = nsb_count_lost();
}

/* ---- output ------------------------------------------------------------ */

static double
nsb_dcpu(const struct nsb_snap *a, const struct nsb_snap *b)
{
	if (a->srv_cpu < 0 || b->srv_cpu < 0)
		return -1;
	return b->srv_cpu - a->srv_cpu;
}

static double
nsb_dt(const struct nsb_snap *a, const struct nsb_snap *b)
{
	return (double)(b->t - a->t) / 1e9;
}

/* CPUs busy with neither the daemon nor us (utilisation); -1 if unknown. */
static double
nsb_other(const struct nsb_snap *a, const struct nsb_snap *b)
{
	double	cpu = nsb_dcpu(a, b), busy = b->sys_busy - a->sys_busy;

	if (cpu < 0 || a->sys_busy < 0 || b->sys_busy < 0)
		return -1;
	busy -= cpu + (b->cli_cpu - a->cli_cpu);
	return busy < 0 ? 0 : busy / nsb_dt(a, b);
}

/* A number, or null when it is unknown (negative). */
static json_t *
nsb_jnum(double v)
{
	return v < 0 ? json_null() : json_real(v);
}

static void
nsb_jset(json_t *o, const char *k, json_t *v)
{
	json_object_set_new(o, k, v);
}

static json_t *
nsb_jhist(const struct nsb_hist *h)
{
	json_t	*o = json_object();

	nsb_jset(o, "count", json_integer((json_int_t)h->count));
	nsb_jset(o, "p50", nsb_jnum(nsb_hist_ms(h, 0.50)));
	nsb_jset(o, "p90", nsb_jnum(nsb_hist_ms(h, 0.90)));
	nsb_jset(o, "p99", nsb_jnum(nsb_hist_ms(h, 0.99)));
	nsb_jset(o, "p999", nsb_jnum(nsb_hist_ms(h, 0.999)));
	nsb_jset(o, "max", nsb_jnum(h->count ? (double)h->max / 1e6 : -1));
	return o;
}

static json_t *
nsb_jconnect(const struct nsb_result *r)
{
	json_t	*o = json_object();
	double	 dt = nsb_dt(&r->s_conn0, &r->s_conn1);
	double	 cpu = nsb_dcpu(&r->s_conn0, &r->s_conn1);
	double	 n = (double)r->welcomed;

	nsb_jset(o, "sessions", json_integer((json_int_t)r->welcomed));
	nsb_jset(o, "wall_s", json_real(dt));
	nsb_jset(o, "connects_per_s", json_real(dt > 0 ? n / dt : 0));
	nsb_jset(o, "server_cpu_s", nsb_jnum(cpu));
	nsb_jset(o, "server_cpu_us_per_connect",
	    nsb_jnum(cpu < 0 || n == 0 ? -1 : cpu * 1e6 / n));
	nsb_jset(o, "client_cpu_us_per_connect", json_real(n == 0 ? 0 :
	    (r->s_conn1.cli_cpu - r->s_conn0.cli_cpu) * 1e6 / n));
	nsb_jset(o, "other_cpu_util", nsb_jnum(nsb_other(&r->s_conn0,
	    &r->s_conn1)));
	return o;
}

static json_t *
nsb_jfds(const struct nsb_fds *f)
{
	json_t	*o = json_object();

	nsb_jset(o, "start", nsb_jnum((double)f->start));
	nsb_jset(o, "max", nsb_jnum((double)f->max));
	nsb_jset(o, "end", nsb_jnum((double)f->end));
	return o;
}

/* p99 under attack over p99 in calm; -1 when either is unknown. */
static double
nsb_p99_ratio(const struct nsb_result *r)
{
	double	calm = nsb_hist_ms(&r->win[0].lat, 0.99);
	double	atk = nsb_hist_ms(&r->win[1].lat, 0.99);

	return calm > 0 && atk >= 0 ? atk / calm : -1;
}

/* Descriptors after the settle, less those at the end of the calm. */
static long
nsb_fd_growth(const struct nsb_result *r)
{
	if (r->fds[NSB_PH_SETTLE].end < 0 || r->fds[NSB_PH_CALM].end < 0)
		return LONG_MIN;
	return r->fds[NSB_PH_SETTLE].end - r->fds[NSB_PH_CALM].end;
}

static uint64_t
nsb_readers_cut(const struct nsb_result *r)
{
	return r->dropped + r->atk.ctr[NSB_C_SR_CUT];
}

/* The abuse scenario's own figures: descriptors, attackers, targets. */
static json_t *
nsb_jabuse(const struct nsb_result *r)
{
	json_t	*o = json_object(), *a = json_object(), *g;
	long	 growth = nsb_fd_growth(r);
	int	 i;

	nsb_jset(o, "handshake_timeout_s", json_real(nsb_opt.handshake_timeout));
	nsb_jset(o, "settle_s", json_real(nsb_opt.settle));
	nsb_jset(o, "p99_ratio", nsb_jnum(nsb_p99_ratio(r)));
	nsb_jset(o, "readers_disconnected",
	    json_integer((json_int_t)nsb_readers_cut(r)));
	nsb_jset(o, "fds_after_settle",
	    nsb_jnum((double)r->fds[NSB_PH_SETTLE].end));
	nsb_jset(o, "fd_growth", growth == LONG_MIN ? json_null() :
	    json_integer(growth));
	nsb_jset(o, "fill_timeout", json_boolean(r->fill_timeout));
	nsb_jset(o, "slowloris_lifetime_ms", nsb_jhist(&r->atk.sl_life));
	nsb_jset(o, "slowloris_held_max_s",
	    json_real((double)r->atk.sl_held_max / 1e9));
	nsb_jset(o, "trickle_lifetime_ms", nsb_jhist(&r->atk.tq_life));
	nsb_jset(o, "trickle_held_max_s",
	    json_real((double)r->atk.tq_held_max / 1e9));
	for (i = 0; i < NSB_C_COUNT; i++) {
		if ((g = json_object_get(a, nsb_ctr_names[i].group)) == NULL) {
			g = json_object();
			json_object_set_new(a, nsb_ctr_names[i].group, g);
		}
		nsb_jset(g, nsb_ctr_names[i].name,
		    json_integer((json_int_t)r->atk.ctr[i]));
	}
	nsb_jset(o, "attackers", a);
	return o;
}

/* One measured window: rates, CPU, latency. */
static json_t *
nsb_jwindow(const struct nsb_result *r, int w)
{
	const struct nsb_window	*win = &r->win[w];
	const struct nsb_snap	*a = &r->s_win[w], *b = &r->s_win[w + 1];
	json_t			*o = json_object();
	double			 dt = nsb_dt(a, b), cpu = nsb_dcpu(a, b);
	double			 ccpu = b->cli_cpu - a->cli_cpu;

	nsb_jset(o, "seconds", json_real(dt));
	nsb_jset(o, "deliveries", json_integer((json_int_t)win->deliveries));
	nsb_jset(o, "deliveries_per_s", json_real((double)win->deliveries / dt));
	nsb_jset(o, "acked", json_integer((json_int_t)win->acks));
	nsb_jset(o, "acked_per_s", json_real((double)win->acks / dt));
	nsb_jset(o, "server_cpu_s", nsb_jnum(cpu));
	nsb_jset(o, "server_cpu_util", nsb_jnum(cpu < 0 ? -1 : cpu / dt));
	nsb_jset(o, "deliveries_per_server_cpu_s", nsb_jnum(cpu <= 0 ? -1 :
	    (double)win->deliveries / cpu));
	nsb_jset(o, "acked_per_server_cpu_s", nsb_jnum(cpu <= 0 ? -1 :
	    (double)win->acks / cpu));
	nsb_jset(o, "client_cpu_s", json_real(ccpu));
	nsb_jset(o, "client_cpu_util", json_real(ccpu / dt));
	nsb_jset(o, "other_cpu_util", nsb_jnum(nsb_other(a, b)));
	nsb_jset(o, "server_rss_kib", b->srv_rss < 0 ? json_null() :
	    json_integer(b->srv_rss));
	nsb_jset(o, "latency_ms", nsb_jhist(&win->lat));
	nsb_jset(o, "ack_latency_ms", nsb_jhist(&win->acklat));
	if (nsb_opt.scenario == NSB_ABUSE) {
		nsb_jset(o, "attack", json_boolean(w == nsb_run.storm_win));
		nsb_jset(o, "dropped", json_integer((json_int_t)win->dropped));
		nsb_jset(o, "fds", nsb_jfds(&r->fds[w]));
	}
	if (nsb_opt.scenario == NSB_LOGINS) {
		nsb_jset(o, "storm", json_boolean(w == nsb_run.storm_win));
		nsb_jset(o, "logins", json_integer((json_int_t)win->logins));
		nsb_jset(o, "logins_per_s", json_real((double)win->logins /
		    dt));
		nsb_jset(o, "login_latency_ms", nsb_jhist(&win->loginlat));
	}
	return o;
}

static json_t *
nsb_jidle(const struct nsb_result *r)
{
	json_t	*o = json_object();
	double	 n = (double)r->ready, hold = nsb_dt(&r->s_auth1, &r->s_hold);
	double	 cpu = nsb_dcpu(&r->s_auth1, &r->s_hold);
	long	 base = r->s_conn0.srv_rss;

	nsb_jset(o, "sessions", json_integer((json_int_t)r->ready));
	nsb_jset(o, "room_size", json_integer(nsb_opt.room_size));
	nsb_jset(o, "rss_before_kib", base < 0 ? json_null() :
	    json_integer(base));
	nsb_jset(o, "rss_connected_kib", r->s_conn1.srv_rss < 0 ?
	    json_null() : json_integer(r->s_conn1.srv_rss));
	nsb_jset(o, "rss_after_kib", r->s_hold.srv_rss < 0 ? json_null() :
	    json_integer(r->s_hold.srv_rss));
	nsb_jset(o, "kib_per_connection", nsb_jnum(base < 0 ||
	    r->welcomed == 0 ? -1 : (double)(r->s_conn1.srv_rss - base) /
	    (double)r->welcomed));
	nsb_jset(o, "kib_per_session", nsb_jnum(base < 0 || n == 0 ? -1 :
	    (double)(r->s_hold.srv_rss - base) / n));
	nsb_jset(o, "auth_wall_s", json_real(nsb_dt(&r->s_conn1,
	    &r->s_auth1)));
	nsb_jset(o, "auth_server_cpu_s", nsb_jnum(nsb_dcpu(&r->s_conn1,
	    &r->s_auth1)));
	nsb_jset(o, "hold_s", json_real(hold));
	nsb_jset(o, "hold_server_cpu_us_per_session_s",
	    nsb_jnum(cpu < 0 || n == 0 || hold <= 0 ? -1 :
	    cpu * 1e6 / n / hold));
	return o;
}

static json_t *
nsb_json(const struct nsb_result *r)
{
	json_t	*o = json_object(), *wins;
	int	 w;

	nsb_jset(o, "scenario",
	    json_string(nsb_scenario_names[nsb_opt.scenario]));
	nsb_jset(o, "prefix", json_string(nsb_opt.prefix));
	nsb_jset(o, "threads", json_integer(nsb_opt.threads));
	nsb_jset(o, "sessions_wanted", json_integer(nsb_run.ntotal));
	nsb_jset(o, "sessions_connected",
	    json_integer((json_int_t)r->welcomed));
	nsb_jset(o, "sessions_ready", json_integer((json_int_t)r->ready));
	nsb_jset(o, "failed", json_integer((json_int_t)r->failed));
	nsb_jset(o, "complete", json_boolean(r->ready ==
	    (uint64_t)nsb_run.ntotal));
	nsb_jset(o, "connect", nsb_jconnect(r));
	if (nsb_opt.scenario == NSB_IDLE)
		nsb_jset(o, "idle", nsb_jidle(r));
	else {
		nsb_jset(o, "subscribers", json_integer(nsb_opt.subs));
		nsb_jset(o, "publishers", json_integer(nsb_opt.pubs));
		nsb_jset(o, "receivers_per_message",
		    json_integer(nsb_run.receivers));
		nsb_jset(o, "window", json_integer(nsb_opt.window));
		nsb_jset(o, "rate", json_real(nsb_opt.rate));
		nsb_jset(o, "size", json_integer(nsb_opt.size));
		nsb_jset(o, "sent", json_integer((json_int_t)r->sent));
		nsb_jset(o, "acked", json_integer((json_int_t)r->acked));
		nsb_jset(o, "lost", json_integer((json_int_t)r->lost));
		nsb_jset(o, "duplicated", json_integer((json_int_t)r->dups));
		nsb_jset(o, "message_errors",
		    json_integer((json_int_t)r->errors));
		nsb_jset(o, "dropped", json_integer((json_int_t)r->dropped));
		nsb_jset(o, "lag_stalls",
		    json_integer((json_int_t)r->lag_stalls));
		nsb_jset(o, "unsent", json_integer((json_int_t)r->unsent));
		nsb_jset(o, "storm_failures",
		    json_integer((json_int_t)r->storm_fail));
		nsb_jset(o, "drain_s", json_real(r->drain_s));
		wins = json_array();
		for (w = 0; w < nsb_run.nwin; w++)
			json_array_append_new(wins, nsb_jwindow(r, w));
		nsb_jset(o, "windows", wins);
		if (nsb_opt.scenario == NSB_ABUSE)
			nsb_jset(o, "abuse", nsb_jabuse(r));
	}
	nsb_jset(o, "foreign_lines", json_integer((json_int_t)r->foreign));
	nsb_jset(o, "first_error", r->lasterr[0] == '\0' ? json_null() :
	    json_string(r->lasterr));
	return o;
}

/* "12%", or "n/a" when the daemon's CPU time is unknown. */
static const char *
nsb_pct(double v, char *buf, size_t len)
{
	if (v < 0)
		snprintf(buf, len, "n/a");
	else
		snprintf(buf, len, "%.0f%%", v * 100);
	return buf;
}

static void
nsb_print_window(const struct nsb_result *r, int w)
{
	const struct nsb_window	*win = &r->win[w];
	const struct nsb_snap	*a = &r->s_win[w], *b = &r->s_win[w + 1];
	double			 dt = nsb_dt(a, b), cpu = nsb_dcpu(a, b);
	const char		*label = "";
	char			 pct[16];

	if (nsb_opt.scenario == NSB_ABUSE)
		label = w == nsb_run.storm_win ? "[attack] " : "[calm]   ";
	else if (nsb_run.storm_win >= 0)
		label = w == nsb_run.storm_win ? "[storm] " : "[calm]  ";
	printf("%s%.0f deliveries/s, %.0f deliveries/server-CPU-s, "
	    "%.0f acked/s (%.0f acked/server-CPU-s); server CPU %.0f%%, "
	    "client CPU %.0f%%, other load %s\n", label,
	    (double)win->deliveries / dt,
	    cpu > 0 ? (double)win->deliveries / cpu : -1,
	    (double)win->acks / dt, cpu > 0 ? (double)win->acks / cpu : -1,
	    cpu < 0 ? -1 : cpu / dt * 100,
	    (b->cli_cpu - a->cli_cpu) / dt * 100,
	    nsb_pct(nsb_other(a, b), pct, sizeof pct));
	printf("%slatency ms p50 %.3f p99 %.3f max %.3f (%" PRIu64
	    " samples); ack ms p50 %.3f p99 %.3f max %.3f\n", label,
	    nsb_hist_ms(&win->lat, 0.5), nsb_hist_ms(&win->lat, 0.99),
	    win->lat.count ? (double)win->lat.max / 1e6 : -1, win->lat.count,
	    nsb_hist_ms(&win->acklat, 0.5), nsb_hist_ms(&win->acklat, 0.99),
	    win->acklat.count ? (double)win->acklat.max / 1e6 : -1);
	if (nsb_opt.scenario == NSB_ABUSE)
		printf("%sdaemon descriptors: %ld at the start, %ld at most, "
		    "%ld at the end; chat sessions dropped %" PRIu64 "\n", label,
		    r->fds[w].start, r->fds[w].max, r->fds[w].end, win->dropped);
	if (nsb_opt.scenario == NSB_LOGINS)
		printf("%slogins %.1f/s, login ms p50 %.1f p99 %.1f\n", label,
		    (double)win->logins / dt, nsb_hist_ms(&win->loginlat, 0.5),
		    nsb_hist_ms(&win->loginlat, 0.99));
}

/* A raw attack: how long the daemon held its sockets. */
static void
nsb_print_raw(const char *what, const struct nsb_hist *life, uint64_t held,
    const uint64_t *ctr, enum nsb_ctr closed, enum nsb_ctr open_end,
    enum nsb_ctr overdue, double deadline)
{
	printf("%s: %" PRIu64 " closed by the daemon", what, ctr[closed]);
	if (life->count > 0)
		printf(" after p50 %.2f s, max %.2f s", nsb_hist_ms(life, 0.5) /
		    1e3, (double)life->max / 1e9);
	printf(" (deadline %g s); %" PRIu64 " still open at the end; longest "
	    "held %.1f s; %" PRIu64 " held past the deadline\n", deadline,
	    ctr[open_end], (double)held / 1e9, ctr[overdue]);
}

static void
nsb_print_abuse(const struct nsb_result *r)
{
	const uint64_t	*c = r->atk.ctr;
	long		 growth = nsb_fd_growth(r);
	double		 ratio = nsb_p99_ratio(r);

	printf("after %.0f s settle: %ld daemon descriptors (%+ld against "
	    "the end of the calm window)\n", nsb_opt.settle,
	    r->fds[NSB_PH_SETTLE].end, growth == LONG_MIN ? 0 : growth);
	printf("slowloris: %" PRIu64 " connects, %" PRIu64 " bytes; ",
	    c[NSB_C_SL_OPENED], c[NSB_C_SL_BYTES]);
	nsb_print_raw("held", &r->atk.sl_life, r->atk.sl_held_max, c,
	    NSB_C_SL_CLOSED, NSB_C_SL_OPEN_END, NSB_C_SL_OVERDUE,
	    nsb_opt.handshake_timeout);
	printf("trickle after quit: %" PRIu64 " cycles (%" PRIu64 " logins "
	    "ok, %" PRIu64 " refused), %" PRIu64 " trickled; ",
	    c[NSB_C_TQ_CYCLES], c[NSB_C_TQ_LOGIN_OK], c[NSB_C_TQ_LOGIN_ERR],
	    c[NSB_C_TQ_TRICKLING]);
	nsb_print_raw("held", &r->atk.tq_life, r->atk.tq_held_max, c,
	    NSB_C_TQ_CLOSED, NSB_C_TQ_OPEN_END, NSB_C_TQ_OVERDUE,
	    NSB_QUIT_DEADLINE);
	printf("presence flood: %" PRIu64 " sent, %" PRIu64 " ok, %" PRIu64
	    " rate_limited, %" PRIu64 " other errors; cut off %" PRIu64
	    " times\n", c[NSB_C_FL_SENT], c[NSB_C_FL_OK], c[NSB_C_FL_LIMITED],
	    c[NSB_C_FL_ERR], c[NSB_C_FL_CLOSED]);
	printf("passwd storm: %" PRIu64 " sent, %" PRIu64 " auth_failed, %"
	    PRIu64 " rate_limited, %" PRIu64 " other errors; cut off %" PRIu64
	    " times\n", c[NSB_C_PW_SENT], c[NSB_C_PW_FAILED],
	    c[NSB_C_PW_LIMITED], c[NSB_C_PW_ERR] + c[NSB_C_PW_OK],
	    c[NSB_C_PW_CLOSED]);
	printf("history hogs: %" PRIu64 " requests, cut off %" PRIu64 " times; "
	    "slow readers: %" PRIu64 " pages, %.1f MB read, cut off %" PRIu64
	    " times; reconnects failed %" PRIu64 "\n",
	    c[NSB_C_HOG_REQUESTS], c[NSB_C_HOG_CLOSED], c[NSB_C_SR_PAGES],
	    (double)c[NSB_C_SR_BYTES] / 1e6, c[NSB_C_SR_CUT],
	    c[NSB_C_LOGIN_REFUSED]);
	printf("targets: p99 attack/calm %.2f (<= 2: %s); descriptor growth "
	    "%+ld (<= 0: %s); readers disconnected %" PRIu64 " (0: %s)\n",
	    ratio, ratio >= 0 && ratio <= 2 ? "ok" : "MISS",
	    growth == LONG_MIN ? 0 : growth,
	    growth != LONG_MIN && growth <= 0 ? "ok" : "MISS",
	    nsb_readers_cut(r), nsb_readers_cut(r) == 0 ? "ok" : "MISS");
}

static void
nsb_print(const struct nsb_result *r)
{
	double	 cdt = nsb_dt(&r->s_conn0, &r->s_conn1);
	double	 ccpu = nsb_dcpu(&r->s_conn0, &r->s_conn1);
	json_t	*o;
	char	*s, pct[16];
	int	 w;

	printf("%s: %" PRIu64 "/%d sessions ready (%" PRIu64 " failed)%s%s\n",
	    nsb_scenario_names[nsb_opt.scenario], r->ready, nsb_run.ntotal,
	    r->failed, r->lasterr[0] != '\0' ? "; first error: " : "",
	    r->lasterr);
	printf("connect: %" PRIu64 " in %.2f s (%.0f/s), server CPU %.0f "
	    "us/connect, client CPU %.0f us/connect, other load %s\n",
	    r->welcomed, cdt,
	    cdt > 0 ? (double)r->welcomed / cdt : 0,
	    ccpu < 0 || r->welcomed == 0 ? -1 :
	    ccpu * 1e6 / (double)r->welcomed, r->welcomed == 0 ? 0 :
	    (r->s_conn1.cli_cpu - r->s_conn0.cli_cpu) * 1e6 /
	    (double)r->welcomed, nsb_pct(nsb_other(&r->s_conn0, &r->s_conn1),
	    pct, sizeof pct));
	if (nsb_opt.scenario == NSB_IDLE) {
		printf("idle: RSS %ld KiB before, %ld connected, %ld after "
		    "login+join; %.2f KiB per session\n",
		    r->s_conn0.srv_rss, r->s_conn1.srv_rss, r->s_hold.srv_rss,
		    r->ready == 0 || r->s_conn0.srv_rss < 0 ? -1.0 :
		    (double)(r->s_hold.srv_rss - r->s_conn0.srv_rss) /
		    (double)r->ready);
	} else {
		for (w = 0; w < nsb_run.nwin; w++)
			nsb_print_window(r, w);
		printf("sent %" PRIu64 ", acked %" PRIu64 ", lost %" PRIu64
		    ", duplicated %" PRIu64 ", errors %" PRIu64 ", dropped "
		    "sessions %" PRIu64 ", lag stalls %" PRIu64 ", unsent %"
		    PRIu64 "\n", r->sent, r->acked, r->lost, r->dups,
		    r->errors, r->dropped, r->lag_stalls, r->unsent);
		if (nsb_opt.scenario == NSB_ABUSE && r->s_win[2].t != 0)
			nsb_print_abuse(r);
	}
	if (nsb_opt.json) {
		o = nsb_json(r);
		if ((s = json_dumps(o, JSON_COMPACT)) != NULL) {
			printf("%s\n", s);
			free(s);
		}
		json_decref(o);
	}
	fflush(stdout);
}

/* ---- the run ----------------------------------------------------------- */

static void
nsb_windows(uint64_t t_go)
{
	double	warm = nsb_opt.warmup, d = nsb_opt.duration;

	nsb_run.t_go = t_go;
	nsb_run.storm_win = -1;
	nsb_run.nwin = nsb_opt.scenario == NSB_LOGINS ||
	    nsb_opt.scenario == NSB_ABUSE ? 2 : 1;
	nsb_run.win[0] = t_go + nsb_ns(warm);
	nsb_run.win[1] = nsb_run.win[0] + nsb_ns(d);
	if (nsb_run.nwin == 2) {
		nsb_run.win[2] = nsb_run.win[1] + nsb_ns(d);
		nsb_run.storm_win = 1;
	}
	nsb_run.t_end = nsb_run.win[nsb_run.nwin];
	nsb_run.t_settle = nsb_run.t_end + nsb_ns(nsb_opt.settle);
}

/* Sleep until T, sampling the daemon's descriptors into F on the way. */
static void
nsb_sleep_fds(uint64_t t, struct nsb_fds *f)
{
	uint64_t	next;
	long		n;

	for (;;) {
		n = nsb_proc_fds(nsb_opt.daemon_pid);
		if (f->start < 0)
			f->start = n;
		if (n > f->max)
			f->max = n;
		f->end = n;
		if ((next = nsb_now() + nsb_ns(0.1)) >= t)
			break;
		nsb_sleep_until(next);
	}
	nsb_sleep_until(t);
	if ((n = nsb_proc_fds(nsb_opt.daemon_pid)) > f->max)
		f->max = n;
	f->end = n;
}

/* Abuse: the hog room gets its history before anything is measured. */
static void
nsb_fill(struct nsb_result *r)
{
	uint64_t	deadline = nsb_now() + nsb_ns(nsb_opt.setup_timeout);

	if (nsb_run.nfill == 0)
		return;
	nsb_set_stage(NSB_STAGE_FILL);
	while (NSB_SUM(a_filled) < (uint64_t)nsb_run.nfill) {
		if (nsb_now() > deadline) {
			r->fill_timeout = true;
			fprintf(stderr, "nsbench: posting the history timed "
			    "out after %.0f s\n", nsb_opt.setup_timeout);
			return;
		}
		usleep(2000);
	}
}

/* The measured windows; the abuse scenario samples descriptors too. */
static void
nsb_measure(struct nsb_result *r)
{
	int	w;

	nsb_windows(nsb_now());
	nsb_set_stage(NSB_STAGE_RUN);
	for (w = 0; w <= nsb_run.nwin; w++) {
		if (nsb_opt.scenario != NSB_ABUSE || w == 0)
			nsb_sleep_until(nsb_run.win[w]);
		else
			nsb_sleep_fds(nsb_run.win[w], &r->fds[w - 1]);
		nsb_snap(&r->s_win[w]);
	}
	nsb_set_stage(NSB_STAGE_STOP);
	/* The attackers' sockets: all gone once their deadlines passed? */
	if (nsb_opt.scenario == NSB_ABUSE)
		nsb_sleep_fds(nsb_run.t_settle, &r->fds[NSB_PH_SETTLE]);
}

static int
nsb_run_all(struct nsb_result *r)
{
	int	i;

	for (i = 0; i < 3; i++)
		r->fds[i].start = r->fds[i].max = r->fds[i].end = -1;
	for (i = 0; i < nsb_opt.threads; i++) {
		if (pthread_create(&nsb_threads[i].tid, NULL, nsb_thread_main,
		    &nsb_threads[i]) != 0)
			nsb_die("pthread_create failed");
	}

	nsb_snap(&r->s_conn0);
	nsb_set_stage(NSB_STAGE_CONNECT);
	r->connect_timeout = !nsb_wait_stage(offsetof(struct nsb_thread,
	    a_welcomed), nsb_opt.setup_timeout);
	nsb_snap(&r->s_conn1);
	r->welcomed = NSB_SUM(a_welcomed);

	nsb_set_stage(NSB_STAGE_AUTH);
	r->auth_timeout = !nsb_wait_stage(offsetof(struct nsb_thread,
	    a_ready), nsb_opt.setup_timeout);
	nsb_snap(&r->s_auth1);
	r->ready = NSB_SUM(a_ready);
	r->failed = NSB_SUM(a_failed);

	if (nsb_opt.scenario == NSB_IDLE) {
		nsb_sleep_until(r->s_auth1.t + nsb_ns(nsb_opt.hold));
		nsb_snap(&r->s_hold);
	} else if (r->ready == (uint64_t)nsb_run.ntotal) {
		if (nsb_opt.scenario == NSB_ABUSE)
			nsb_fill(r);
		nsb_measure(r);
		r->drain_s = nsb_drain();
	}
	nsb_set_stage(NSB_STAGE_EXIT);
	for (i = 0; i < nsb_opt.threads; i++)
		pthread_join(nsb_threads[i].tid, NULL);
	nsb_collect(r);
	if (r->connect_timeout || r->auth_timeout)
		fprintf(stderr, "nsbench: setup timed out after %.0f s in the "
		    "%s stage\n", nsb_opt.setup_timeout, r->connect_timeout ?
		    "connect" : "login/join");
	if (r->ready != (uint64_t)nsb_run.ntotal)
		fprintf(stderr, "nsbench: only %" PRIu64 " of %d sessions "
		    "got ready%s%s\n", r->ready, nsb_run.ntotal,
		    r->lasterr[0] != '\0' ? "; first error: " : "",
		    r->lasterr);
	return r->ready == (uint64_t)nsb_run.ntotal ? 0 : 1;
}

static void
nsb_cleanup(void)
{
	struct nsb_thread	*th;
	int			 i;

	for (i = 0; i < nsb_run.ntotal; i++) {
		free(nsb_conns[i].rx_next);
		free(nsb_conns[i].rx_cnt);
		free(nsb_conns[i].line);
		free(nsb_conns[i].ring);
	}
	for (i = 0; i < nsb_opt.threads; i++) {
		th = &nsb_threads[i];
		event_free(th->tick);
		if (th->atk_tick != NULL) {
			event_free(th->atk_tick);
			th->atk_tick = NULL;
		}
		event_base_free(th->base);
		free(th->conns);
		free(th->pubs);
		free(th->storms);
		free(th->probe_seq);
		free(th->atks);
		free(th->raw);
		free(th->pfd);
	}
	free(nsb_conns);
	free(nsb_threads);
	free(nsb_run.fill_line);
	free(nsb_run.hist_line);
	free(nsb_run.passwd_line);
	for (i = 0; i < 3; i++)
		free(nsb_run.presence_line[i]);
	free(nsb_run.hello);
	if (nsb_run.slow_cfg != NULL)
		ev_token_bucket_cfg_free(nsb_run.slow_cfg);
	SSL_CTX_free(nsb_run.ctx);
}

/* ---- options ----------------------------------------------------------- */

static void
nsb_usage(FILE *f)
{
	fprintf(f,
"usage: nsbench SCENARIO [options]\n"
"  fanout  -s SUBS -P PUBS [--window W | --rate R] [--duration S] [--size B]\n"
"  idle    -n N [--spread] [--room-size K] [--hold S]\n"
"  logins  [-s SUBS -P PUBS --rate R] [--users U] [--storm-rate L]\n"
"  durable -P PUBS [--window W] [--shared-room] [--duration S]\n"
"  abuse   [-s SUBS -P PUBS --rate R] [--slowloris R] [--trickle R]\n"
"          [--trickle-users U] [--trickle-no-login] [--trickle-interval S]\n"
"          [--flooders N] [--flood-window W] [--passwd-sessions N]\n"
"          [--passwd-window W] [--hogs N] [--hog-requests K]\n"
"          [--slow-readers N] [--slow-read-rate B] [--hist-fill M]\n"
"          [--hist-size B] [--hist-limit L] [--settle S]\n"
"          [--handshake-timeout S] [--max-raw N]\n"
"common: -h HOST (127.0.0.1) -p PORT (7443) --daemon-pid PID --json\n"
"        --threads T (1) --warmup S (2) --duration S (5) --max-lag M (4096)\n"
"        --connect-concurrency C (256) --auth-concurrency C (128)\n"
"        --prefix P (random) --password P --setup-timeout S (600)\n");
}

enum {
	NSB_O_PID = 256, NSB_O_JSON, NSB_O_WINDOW, NSB_O_RATE, NSB_O_DURATION,
	NSB_O_WARMUP, NSB_O_SIZE, NSB_O_SPREAD, NSB_O_ROOMSIZE, NSB_O_HOLD,
	NSB_O_USERS, NSB_O_STORMRATE, NSB_O_THREADS, NSB_O_MAXLAG,
	NSB_O_CCONC, NSB_O_ACONC, NSB_O_PREFIX, NSB_O_PASSWORD, NSB_O_SHARED,
	NSB_O_SETUPTO, NSB_O_HELP,
	NSB_O_SLOWLORIS, NSB_O_TRICKLE, NSB_O_TQUSERS, NSB_O_TQNOLOGIN,
	NSB_O_TQINTERVAL, NSB_O_FLOODERS, NSB_O_FLOODWIN, NSB_O_PWUSERS,
	NSB_O_PWWIN, NSB_O_HOGS, NSB_O_HOGREQ, NSB_O_SLOWREADERS,
	NSB_O_SLOWRATE, NSB_O_HISTFILL, NSB_O_HISTSIZE, NSB_O_HISTLIMIT,
	NSB_O_SETTLE, NSB_O_HSTIMEOUT, NSB_O_MAXRAW,
};

static const struct option nsb_longopts[] = {
	{ "host", required_argument, NULL, 'h' },
	{ "port", required_argument, NULL, 'p' },
	{ "daemon-pid", required_argument, NULL, NSB_O_PID },
	{ "json", no_argument, NULL, NSB_O_JSON },
	{ "window", required_argument, NULL, NSB_O_WINDOW },
	{ "rate", required_argument, NULL, NSB_O_RATE },
	{ "duration", required_argument, NULL, NSB_O_DURATION },
	{ "warmup", required_argument, NULL, NSB_O_WARMUP },
	{ "size", required_argument, NULL, NSB_O_SIZE },
	{ "spread", no_argument, NULL, NSB_O_SPREAD },
	{ "room-size", required_argument, NULL, NSB_O_ROOMSIZE },
	{ "hold", required_argument, NULL, NSB_O_HOLD },
	{ "users", required_argument, NULL, NSB_O_USERS },
	{ "storm-rate", required_argument, NULL, NSB_O_STORMRATE },
	{ "threads", required_argument, NULL, NSB_O_THREADS },
	{ "max-lag", required_argument, NULL, NSB_O_MAXLAG },
	{ "connect-concurrency", required_argument, NULL, NSB_O_CCONC },
	{ "auth-concurrency", required_argument, NULL, NSB_O_ACONC },
	{ "prefix", required_argument, NULL, NSB_O_PREFIX },
	{ "password", required_argument, NULL, NSB_O_PASSWORD },
	{ "shared-room", no_argument, NULL, NSB_O_SHARED },
	{ "setup-timeout", required_argument, NULL, NSB_O_SETUPTO },
	{ "help", no_argument, NULL, NSB_O_HELP },
	{ "slowloris", required_argument, NULL, NSB_O_SLOWLORIS },
	{ "trickle", required_argument, NULL, NSB_O_TRICKLE },
	{ "trickle-users", required_argument, NULL, NSB_O_TQUSERS },
	{ "trickle-no-login", no_argument, NULL, NSB_O_TQNOLOGIN },
	{ "trickle-interval", required_argument, NULL, NSB_O_TQINTERVAL },
	{ "flooders", required_argument, NULL, NSB_O_FLOODERS },
	{ "flood-window", required_argument, NULL, NSB_O_FLOODWIN },
	{ "passwd-sessions", required_argument, NULL, NSB_O_PWUSERS },
	{ "passwd-window", required_argument, NULL, NSB_O_PWWIN },
	{ "hogs", required_argument, NULL, NSB_O_HOGS },
	{ "hog-requests", required_argument, NULL, NSB_O_HOGREQ },
	{ "slow-readers", required_argument, NULL, NSB_O_SLOWREADERS },
	{ "slow-read-rate", required_argument, NULL, NSB_O_SLOWRATE },
	{ "hist-fill", required_argument, NULL, NSB_O_HISTFILL },
	{ "hist-size", required_argument, NULL, NSB_O_HISTSIZE },
	{ "hist-limit", required_argument, NULL, NSB_O_HISTLIMIT },
	{ "settle", required_argument, NULL, NSB_O_SETTLE },
	{ "handshake-timeout", required_argument, NULL, NSB_O_HSTIMEOUT },
	{ "max-raw", required_argument, NULL, NSB_O_MAXRAW },
	{ NULL, 0, NULL, 0 },
};

static long
nsb_num(const char *s, const char *name, long lo, long hi)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || v < lo || v > hi) {
		fprintf(stderr, "nsbench: %s: want an integer from %ld to "
		    "%ld\n", name, lo, hi);
		exit(2);
	}
	return v;
}

static double
nsb_real(const char *s, const char *name, double lo, double hi)
{
	char	*end;
	double	 v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || end == s || !(v >= lo && v <= hi)) {
		fprintf(stderr, "nsbench: %s: want a number from %g to %g\n",
		    name, lo, hi);
		exit(2);
	}
	return v;
}

static void
nsb_defaults(void)
{
	unsigned char	r[3];
	FILE		*f;

	nsb_opt.host = "127.0.0.1";
	nsb_opt.port = 7443;
	nsb_opt.threads = 1;
	nsb_opt.subs = 100;
	nsb_opt.pubs = 10;
	nsb_opt.window = -1;
	nsb_opt.duration = 5;
	nsb_opt.warmup = 2;
	nsb_opt.size = 100;
	nsb_opt.max_lag = 4096;
	nsb_opt.n = 1000;
	nsb_opt.room_size = 100;
	nsb_opt.hold = 2;
	nsb_opt.users = 16;
	nsb_opt.connect_conc = 256;
	nsb_opt.auth_conc = 128;
	nsb_opt.setup_timeout = 600;
	nsb_opt.password = "nsbench-password";
	nsb_opt.slowloris_rate = 4;
	nsb_opt.trickle_rate = 2;
	nsb_opt.trickle_users = 4;
	nsb_opt.trickle_login = true;
	nsb_opt.trickle_interval = 1;
	nsb_opt.flooders = 2;
	nsb_opt.flood_window = 16;
	nsb_opt.passwd_sessions = 8;
	nsb_opt.passwd_window = 2;
	nsb_opt.hogs = 4;
	nsb_opt.hog_requests = 8;
	nsb_opt.slow_readers = 2;
	nsb_opt.slow_read_rate = 262144;
	nsb_opt.hist_fill = 500;
	nsb_opt.hist_size = 4000;
	nsb_opt.hist_limit = 500;
	nsb_opt.settle = -1;		/* from the deadlines */
	nsb_opt.handshake_timeout = 2;
	nsb_opt.max_raw = 1024;
	/* A fresh prefix per run: names never collide with earlier runs. */
	memset(r, 0, sizeof r);
	if ((f = fopen("/dev/urandom", "r")) != NULL) {
		if (fread(r, 1, sizeof r, f) != sizeof r)
			r[0] = (unsigned char)getpid();
		fclose(f);
	}
	snprintf(nsb_opt.prefix, sizeof nsb_opt.prefix, "b%02x%02x%02x",
	    r[0], r[1], r[2]);
}

static void	nsb_option_abuse(int, const char *);

static void
nsb_option(int ch, const char *arg)
{
	switch (ch) {
	case 'h':
		nsb_opt.host = arg;
		break;
	case 'p':
		nsb_opt.port = (int)nsb_num(arg, "-p", 1, 65535);
		break;
	case 's':
		nsb_opt.subs = (int)nsb_num(arg, "-s", 0, 100000);
		break;
	case 'P':
		nsb_opt.pubs = (int)nsb_num(arg, "-P", 0, 9999);
		break;
	case 'n':
		nsb_opt.n = (int)nsb_num(arg, "-n", 1, 1000000);
		break;
	case NSB_O_PID:
		nsb_opt.daemon_pid = (pid_t)nsb_num(arg, "--daemon-pid", 1,
		    INT_MAX);
		break;
	case NSB_O_JSON:
		nsb_opt.json = true;
		break;
	case NSB_O_WINDOW:
		nsb_opt.window = (int)nsb_num(arg, "--window", 1, 65536);
		break;
	case NSB_O_RATE:
		nsb_opt.rate = nsb_real(arg, "--rate", 0.001, 1e7);
		break;
	case NSB_O_DURATION:
		nsb_opt.duration = nsb_real(arg, "--duration", 0.1, 3600);
		break;
	case NSB_O_WARMUP:
		nsb_opt.warmup = nsb_real(arg, "--warmup", 0, 3600);
		break;
	case NSB_O_SIZE:
		nsb_opt.size = (int)nsb_num(arg, "--size", 1, NSB_MAX_SIZE);
		break;
	case NSB_O_SPREAD:
		nsb_opt.spread = true;
		break;
	case NSB_O_ROOMSIZE:
		nsb_opt.room_size = (int)nsb_num(arg, "--room-size", 1,
		    1000000);
		break;
	case NSB_O_HOLD:
		nsb_opt.hold = nsb_real(arg, "--hold", 0, 3600);
		break;
	case NSB_O_USERS:
		nsb_opt.users = (int)nsb_num(arg, "--users", 0, 10000);
		break;
	case NSB_O_STORMRATE:
		nsb_opt.storm_rate = nsb_real(arg, "--storm-rate", 0, 1e6);
		break;
	case NSB_O_THREADS:
		nsb_opt.threads = (int)nsb_num(arg, "--threads", 1,
		    NSB_MAX_THREADS);
		break;
	case NSB_O_MAXLAG:
		nsb_opt.max_lag = (int)nsb_num(arg, "--max-lag", 0, INT_MAX);
		break;
	case NSB_O_CCONC:
		nsb_opt.connect_conc = (int)nsb_num(arg,
		    "--connect-concurrency", 1, 100000);
		break;
	case NSB_O_ACONC:
		nsb_opt.auth_conc = (int)nsb_num(arg, "--auth-concurrency", 1,
		    100000);
		break;
	case NSB_O_PREFIX:
		if (strlen(arg) < 1 || strlen(arg) > 12 ||
		    strspn(arg, "abcdefghijklmnopqrstuvwxyz0123456789") !=
		    strlen(arg))
			nsb_die("--prefix: 1 to 12 of a-z 0-9");
		snprintf(nsb_opt.prefix, sizeof nsb_opt.prefix, "%s", arg);
		break;
	case NSB_O_PASSWORD:
		if (strlen(arg) < 8 || strlen(arg) > 200 ||
		    strpbrk(arg, "\"\\") != NULL)
			nsb_die("--password: 8 to 200 bytes, no \" or \\");
		nsb_opt.password = arg;
		break;
	case NSB_O_SHARED:
		nsb_opt.shared_room = true;
		break;
	case NSB_O_SETUPTO:
		nsb_opt.setup_timeout = nsb_real(arg, "--setup-timeout", 1,
		    86400);
		break;
	case NSB_O_HELP:
		nsb_usage(stdout);
		exit(0);
	default:
		nsb_option_abuse(ch, arg);
		break;
	}
}

/* The abuse scenario's options. */
static void
nsb_option_abuse(int ch, const char *arg)
{
	switch (ch) {
	case NSB_O_SLOWLORIS:
		nsb_opt.slowloris_rate = nsb_real(arg, "--slowloris", 0, 10000);
		break;
	case NSB_O_TRICKLE:
		nsb_opt.trickle_rate = nsb_real(arg, "--trickle", 0, 10000);
		break;
	case NSB_O_TQUSERS:
		nsb_opt.trickle_users = (int)nsb_num(arg, "--trickle-users", 0,
		    10000);
		break;
	case NSB_O_TQNOLOGIN:
		nsb_opt.trickle_login = false;
		break;
	case NSB_O_TQINTERVAL:
		nsb_opt.trickle_interval = nsb_real(arg, "--trickle-interval",
		    0.05, 60);
		break;
	case NSB_O_FLOODERS:
		nsb_opt.flooders = (int)nsb_num(arg, "--flooders", 0, 10000);
		break;
	case NSB_O_FLOODWIN:
		nsb_opt.flood_window = (int)nsb_num(arg, "--flood-window", 1,
		    65536);
		break;
	case NSB_O_PWUSERS:
		nsb_opt.passwd_sessions = (int)nsb_num(arg, "--passwd-sessions",
		    0, 10000);
		break;
	case NSB_O_PWWIN:
		nsb_opt.passwd_window = (int)nsb_num(arg, "--passwd-window", 1,
		    1024);
		break;
	case NSB_O_HOGS:
		nsb_opt.hogs = (int)nsb_num(arg, "--hogs", 0, 10000);
		break;
	case NSB_O_HOGREQ:
		nsb_opt.hog_requests = (int)nsb_num(arg, "--hog-requests", 1,
		    10000);
		break;
	case NSB_O_SLOWREADERS:
		nsb_opt.slow_readers = (int)nsb_num(arg, "--slow-readers", 0,
		    10000);
		break;
	case NSB_O_SLOWRATE:
		nsb_opt.slow_read_rate = (int)nsb_num(arg, "--slow-read-rate",
		    1024, INT_MAX);
		break;
	case NSB_O_HISTFILL:
		nsb_opt.hist_fill = (int)nsb_num(arg, "--hist-fill", 0,
		    1000000);
		break;
	case NSB_O_HISTSIZE:
		nsb_opt.hist_size = (int)nsb_num(arg, "--hist-size", 1,
		    NSB_MAX_SIZE);
		break;
	case NSB_O_HISTLIMIT:
		nsb_opt.hist_limit = (int)nsb_num(arg, "--hist-limit", 1,
		    1000000);
		break;
	case NSB_O_SETTLE:
		nsb_opt.settle = nsb_real(arg, "--settle", 0, 3600);
		break;
	case NSB_O_HSTIMEOUT:
		nsb_opt.handshake_timeout = nsb_real(arg,
		    "--handshake-timeout", 0.1, 3600);
		break;
	case NSB_O_MAXRAW:
		nsb_opt.max_raw = (int)nsb_num(arg, "--max-raw", 1, 100000);
		break;
	default:
		nsb_usage(stderr);
		exit(2);
	}
}

/* Attackers only in the abuse scenario; the settle from the deadlines. */
static void
nsb_parse_abuse(void)
{
	size_t	i;

	if (nsb_opt.scenario != NSB_ABUSE) {
		for (i = 0; i < NSB_ATK_NROLES; i++)
			*nsb_atk_roles[i].count = 0;
		nsb_opt.slowloris_rate = nsb_opt.trickle_rate = 0;
		return;
	}
	if (nsb_opt.settle < 0)
		nsb_opt.settle = (nsb_opt.handshake_timeout > NSB_QUIT_DEADLINE ?
		    nsb_opt.handshake_timeout : NSB_QUIT_DEADLINE) + 2 *
		    nsb_opt.trickle_interval + 1;
	if (nsb_opt.trickle_users == 0)
		nsb_opt.trickle_rate = 0;
}

static void
nsb_parse(int argc, char **argv)
{
	size_t	i;
	int	ch;

	if (argc < 2) {
		nsb_usage(stderr);
		exit(2);
	}
	for (i = 0; i < sizeof nsb_scenario_names / sizeof
	    nsb_scenario_names[0]; i++) {
		if (strcmp(argv[1], nsb_scenario_names[i]) == 0)
			break;
	}
	if (i == sizeof nsb_scenario_names / sizeof nsb_scenario_names[0]) {
		if (strcmp(argv[1], "--help") == 0) {
			nsb_usage(stdout);
			exit(0);
		}
		nsb_usage(stderr);
		exit(2);
	}
	nsb_defaults();
	nsb_opt.scenario = (enum nsb_scenario)i;
	if (nsb_opt.scenario == NSB_LOGINS || nsb_opt.scenario == NSB_ABUSE)
		nsb_opt.rate = 500;
	if (nsb_opt.scenario == NSB_DURABLE)
		nsb_opt.subs = 0;
	optind = 2;
	while ((ch = getopt_long(argc, argv, "h:p:s:P:n:", nsb_longopts,
	    NULL)) != -1)
		nsb_option(ch, optarg);
	if (optind != argc) {
		nsb_usage(stderr);
		exit(2);
	}
	if (nsb_opt.window < 0)
		nsb_opt.window = nsb_opt.rate > 0 ? 0 : 16;
	if (nsb_opt.scenario == NSB_IDLE) {
		nsb_opt.subs = nsb_opt.pubs = nsb_opt.users = 0;
		nsb_opt.rate = 0;
	} else if (nsb_opt.pubs == 0)
		nsb_die("-P must be at least 1");
	if (nsb_opt.scenario != NSB_LOGINS)
		nsb_opt.users = 0;
	nsb_parse_abuse();
}

int
main(int argc, char **argv)
{
	struct nsb_result	*r;
	int			 rc;

	nsb_parse(argc, argv);
	signal(SIGPIPE, SIG_IGN);

	memset(&nsb_run.dst, 0, sizeof nsb_run.dst);
	nsb_run.dst.sin_family = AF_INET;
	nsb_run.dst.sin_port = htons((uint16_t)nsb_opt.port);
	if (inet_pton(AF_INET, nsb_opt.host, &nsb_run.dst.sin_addr) != 1)
		nsb_die("-h: want a numeric IPv4 address");
	if (nsb_opt.daemon_pid > 0 && nsb_proc_cpu(nsb_opt.daemon_pid) < 0)
		nsb_die("--daemon-pid: cannot read /proc/PID/stat");

	nsb_setup_rlimit();
	nsb_setup_tls();
	if (nsb_opt.scenario == NSB_ABUSE)
		nsb_setup_abuse();
	nsb_setup_threads();

	r = nsb_calloc(1, sizeof *r);
	rc = nsb_run_all(r);
	nsb_print(r);
	free(r);
	nsb_cleanup();
	return rc;
}
