/*
 * admin_proto: the admin channel's wire format, shared by netsockd
 * (admin.c) and netsockctl.  Over the Unix stream socket the client sends
 * ONE request line and the daemon answers with ONE reply line, then closes.
 * Both are JSON objects ending in "\n".
 *
 * Request:  {"version":1,"command":"<name>", <arguments>}
 *   stats | sessions | rooms | reload | shutdown          no arguments
 *   kick        "user":U | "session":ID, "reason":S?
 *   ban         "user":U, "reason":S?
 *   unban       "user":U
 *   user-add    "user":U, "password":P
 *   user-del    "user":U
 *   user-passwd "user":U, "password":P
 *   user-list   no arguments
 *
 * Reply: the document `netsockctl --json` prints.  Always an object with
 * "ok" (true or false).  On success, the command's fields (see
 * netsockctl(8)); on failure "error" (one line for people) and "status",
 * the exit status netsockctl should use (1: the thing asked about does not
 * exist, or the reload was rejected; 2: the request was malformed; 3: this
 * peer is not allowed to administer the daemon).
 *
 * A change that old clients or daemons could misread bumps
 * ADMIN_PROTO_VERSION; the daemon answers other versions with an error.
 */
#ifndef NETSOCK_ADMIN_PROTO_H
#define NETSOCK_ADMIN_PROTO_H

#define ADMIN_PROTO_VERSION	1
#define ADMIN_REQUEST_MAX	8192	/* bytes in one request line */

#define ADMIN_STATUS_OK		0
#define ADMIN_STATUS_FAILED	1	/* no such thing; reload rejected */
#define ADMIN_STATUS_USAGE	2	/* malformed request */
#define ADMIN_STATUS_UNREACHABLE 3	/* not reached, or refused (peer
					   credentials not allowed) */

#endif
