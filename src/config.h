/*
 * config: the daemon's configuration as an immutable snapshot.  Built
 * completely by config_load() (libconfig file) or config_defaults()
 * (built-in), validated, and only then handed to the server, which swaps
 * snapshots whole on reload.  No libevent, OpenSSL or SQLite here.
 */
#ifndef NETSOCK_CONFIG_H
#define NETSOCK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_DEFAULT_PATH	SYSCONFDIR "/netsockd/netsockd.conf"
#define CONFIG_DEFAULT_PORT	7443

struct config_listen {
	char		*address;	/* numeric IPv4 or IPv6 address */
	int		 port;		/* 1..65535 */
};

struct config_limits {
	int		 max_connections;
	int		 max_per_ip;
	size_t		 max_line;		/* bytes */
	size_t		 max_message;		/* bytes */
	int		 history_max;
	size_t		 history_bytes;		/* bytes in one history reply */
	int		 rooms_per_hour;	/* rooms one user may create */
	int		 ipv6_prefix;		/* bits of an IPv6 address that
						   per-address limits key on */
	double		 messages_per_second;
	int		 message_burst;
	double		 typing_per_second;
	int		 typing_burst;
	int		 login_failures_per_minute;
	int		 registrations_per_hour;
	size_t		 output_buffer;		/* bytes */
	int		 handshake_timeout;	/* seconds */
	int		 idle_timeout;		/* seconds */
};

struct config {
	char		*path;		/* file it came from; NULL: built-in */
	char		*state_dir;	/* where built-in defaults live */
	struct config_listen *listen;
	size_t		 nlisten;
	char		*tls_certificate;
	char		*tls_key;
	bool		 tls_self_signed; /* generate cert/key if absent */
	char		*database;
	char		*admin_socket;
	bool		 registration;
	bool		 rooms_allow_create;
	char		*motd;
	int		 log_level;	/* syslog priority: LOG_DEBUG..LOG_ERR */
	int		 scrypt_log2_n;	/* password hashing cost (auth.scrypt_n) */
	struct config_limits limits;
};

/*
 * Built-in defaults rooted in state_dir (borrowed): listener
 * 127.0.0.1:7443, database, self-signed certificate and admin socket in
 * state_dir.  Returns a new snapshot; free with config_free().
 */
struct config	*config_defaults(const char *state_dir);

/*
 * Read and validate the file at path.  Settings the file leaves out take
 * the built-in defaults of config_defaults(state_dir).  On failure returns
 * NULL and sets *cause to one allocated line naming the file, the line and
 * the setting ("FILE:LINE: limits.max_line: must be an integer"); the
 * caller frees it.
 */
struct config	*config_load(const char *path, const char *state_dir,
		    char **cause);

void		 config_free(struct config *cfg);

/*
 * Settings that differ between the running snapshot and next but only take
 * effect on a restart (database, admin.socket), as one allocated line
 * "database, admin.socket" for the reload to report; NULL if none.  Both
 * snapshots are borrowed; the caller frees the result.
 */
char		*config_restart_pending(const struct config *running,
		    const struct config *next);

/* Map a level name ("debug", "info", "notice", "warning", "error") to a
 * syslog priority; -1 if unknown. */
int		 config_log_level(const char *name);

#endif
