/* Listening unix sockets for the monitor's console, attach and control endpoints. */
#ifndef BERTH_MONITOR_SOCK_H
#define BERTH_MONITOR_SOCK_H

#include "../common/error.h"

/* Binds and listens on a unix socket of the given type (SOCK_STREAM) at path, mode
 * 0600, non-blocking and close-on-exec. A stale socket at path is replaced; any other file is not.
 * A path longer than sun_path is bound through /proc/self/fd/N of its directory. Returns the fd. */
int sock_listen (const char *path, int type, berth_error_t *err);

/* Removes the socket file at path (ignoring a missing one) and closes *fd. */
void sock_close (int *fd, const char *path);

/* accept4 (non-blocking, close-on-exec): the fd, or -1 with errno (EAGAIN when none is waiting). */
int sock_accept (int listen_fd);

#endif
