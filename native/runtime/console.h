/* --console-socket: a new pty whose master is sent to the socket with SCM_RIGHTS, as runc does, and
 * whose slave becomes the process's stdio and controlling terminal. */
#ifndef BERTH_RUNTIME_CONSOLE_H
#define BERTH_RUNTIME_CONSOLE_H

#include "../common/error.h"

/* Connects to the unix socket (in the runtime, before the container's root is pivoted away). */
int console_connect (const char *path, berth_error_t *err);

/* In the container: opens a pty from /dev/ptmx, sends its master over sock, returns the slave's fd
 * and its path in *slave_path. */
int console_create (int sock, char **slave_path, berth_error_t *err);

/* Makes the slave the controlling terminal (new session) and stdin, stdout and stderr. */
int console_attach (int slave, berth_error_t *err);

#endif
