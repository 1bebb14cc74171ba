/* version: the one place the daemon's version string comes from. */
#ifndef NETSOCK_VERSION_H
#define NETSOCK_VERSION_H

/* PACKAGE_VERSION comes from configure, as -D on the command line. */
#define NETSOCK_VERSION	PACKAGE_VERSION

#endif
