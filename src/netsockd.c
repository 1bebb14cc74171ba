/* netsockd: the TLS chat daemon's entry point: options, config, run. */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/ssl.h>

#include "config.h"
#include "log.h"
#include "proto.h"
#include "server.h"
#include "tls.h"
#include "version.h"
#include "xmalloc.h"

#define NETSOCKD_DEFAULT_PIDFILE	RUNSTATEDIR "/netsockd/netsockd.pid"
#define NETSOCKD_EXIT_USAGE		2

static int	 netsockd_ready_fd = -1;	/* --daemon: tell the parent */
static char	*netsockd_pidfile;

static void
netsockd_usage(FILE *f)
{
	fprintf(f,
	    "usage: netsockd [-c FILE] [-t] [--daemon] [--pidfile FILE] "
	    "[--version] [--help]\n"
	    "\n"
	    "  -c, --config FILE  configuration file (default %s;\n"
	    "                     built-in defaults when absent)\n"
	    "  -t, --test         check the configuration and exit\n"
	    "      --daemon       detach from the terminal, log to syslog\n"
	    "      --pidfile FILE pid file with --daemon (default %s)\n"
	    "  -V, --version      print the version and exit\n"
	    "  -h, --help         print this help and exit\n",
	    CONFIG_DEFAULT_PATH, NETSOCKD_DEFAULT_PIDFILE);
}

/* $STATE_DIRECTORY (its first entry), else ./netsockd-state, absolute. */
static char *
netsockd_state_dir(void)
{
	const char	*env = getenv("STATE_DIRECTORY");
	char		 cwd[PATH_MAX], *dir;

	if (env != NULL && *env != '\0') {
		dir = xstrdup(env);
		dir[strcspn(dir, ":")] = '\0';
		return dir;
	}
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return xstrdup("netsockd-state");
	xasprintf(&dir, "%s/netsockd-state", strcmp(cwd, "/") ? cwd : "");
	return dir;
}

/*
 * Every pass allocates output buffers for its events and frees them once
 * written.  With glibc's defaults the freed top of the heap goes back to
 * the kernel at once and the next pass faults it in again: under fan-out
 * that was half the daemon's CPU.  Keep a working margin instead.
 */
static void
netsockd_tune_malloc(void)
{
	mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
	mallopt(M_TOP_PAD, 16 * 1024 * 1024);
}

/* libevent's own complaints go to our log, at debug level. */
static void
netsockd_event_log_cb(int severity, const char *msg)
{
	log_debug("libevent: %s", msg);
}

static void
netsockd_ready(void)
{
	if (netsockd_ready_fd == -1)
		return;
	if (write(netsockd_ready_fd, "1", 1) != 1)
		log_warn("cannot tell the starting process we are ready");
	close(netsockd_ready_fd);
	netsockd_ready_fd = -1;
}

/*
 * --daemon: fork; the child starts a new session and runs, the parent
 * waits until the child is ready (exit 0) or has died (exit 1), so an
 * init script knows whether the start worked.
 */
static int
netsockd_daemonize(const char *pidfile)
{
	int	 p[2], fd;
	pid_t	 pid;
	char	 c;
	FILE	*f;

	if (pipe(p) == -1) {
		perror("netsockd: pipe");
		return -1;
	}
	if ((pid = fork()) == -1) {
		perror("netsockd: fork");
		return -1;
	}
	if (pid > 0) {
		close(p[1]);
		_exit(read(p[0], &c, 1) == 1 ? 0 : 1);
	}
	close(p[0]);
	netsockd_ready_fd = p[1];
	if (setsid() == -1)
		return -1;
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	log_use_syslog();
	if ((f = fopen(pidfile, "w")) == NULL) {
		log_warn("pid file %s", pidfile);
		return -1;
	}
	fprintf(f, "%ld\n", (long)getpid());
	fclose(f);
	netsockd_pidfile = xstrdup(pidfile);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test", no_argument, NULL, 't' },
		{ "daemon", no_argument, NULL, 'D' },
		{ "pidfile", required_argument, NULL, 'P' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*config_path = NULL, *pidfile = NETSOCKD_DEFAULT_PIDFILE;
	bool		 test_only = false, daemonize = false;
	struct config	*cfg;
	struct server	*srv;
	char		*cause = NULL, *state_dir;
	SSL_CTX		*ctx;
	int		 ch, rc;

	while ((ch = getopt_long(argc, argv, "c:tVh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config_path = optarg;
			break;
		case 't':
			test_only = true;
			break;
		case 'D':
			daemonize = true;
			break;
		case 'P':
			pidfile = optarg;
			break;
		case 'V':
			printf("netsockd %s\n", NETSOCK_VERSION);
			return 0;
		case 'h':
			netsockd_usage(stdout);
			return 0;
		default:
			netsockd_usage(stderr);
			return NETSOCKD_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		netsockd_usage(stderr);
		return NETSOCKD_EXIT_USAGE;
	}

	log_init("netsockd");
	netsockd_tune_malloc();
	proto_json_wipe_freed();
	state_dir = netsockd_state_dir();
	/* No -c and nothing at the default path: built-in defaults. */
	if (config_path == NULL && access(CONFIG_DEFAULT_PATH, F_OK) == 0)
		config_path = CONFIG_DEFAULT_PATH;
	if (config_path != NULL)
		cfg = config_load(config_path, state_dir, &cause);
	else
		cfg = config_defaults(state_dir);
	if (cfg == NULL) {
		fprintf(stderr, "%s\n", cause);
		free(cause);
		free(state_dir);
		return 1;
	}
	if (test_only) {
		/* A configured certificate must also load and match its key. */
		if (!cfg->tls_self_signed) {
			if ((ctx = tls_ctx_new(cfg, &cause)) == NULL) {
				tls_ticket_free();
				fprintf(stderr, "%s: %s\n", config_path, cause);
				free(cause);
				config_free(cfg);
				free(state_dir);
				return 1;
			}
			SSL_CTX_free(ctx);
			tls_ticket_free();
		}
		if (config_path != NULL)
			printf("netsockd: configuration file %s is valid\n",
			    config_path);
		else
			printf("netsockd: no configuration file; the built-in "
			    "defaults are valid\n");
		config_free(cfg);
		free(state_dir);
		return 0;
	}
	log_set_level(cfg->log_level);
	if (daemonize && netsockd_daemonize(pidfile) == -1) {
		config_free(cfg);
		free(state_dir);
		return 1;
	}
	/* Auth workers hand results to the loop with event_active(). */
	evthread_use_pthreads();
	event_set_log_callback(netsockd_event_log_cb);
	if ((srv = server_new(cfg, config_path, state_dir, &cause)) == NULL) {
		log_error("cannot start: %s", cause);
		free(cause);
		free(state_dir);
		rc = 1;
	} else {
		free(state_dir);
		rc = server_run(srv, netsockd_ready);
		server_free(srv);
	}
	if (netsockd_pidfile != NULL) {
		unlink(netsockd_pidfile);
		free(netsockd_pidfile);
	}
	libevent_global_shutdown();
	return rc;
}
