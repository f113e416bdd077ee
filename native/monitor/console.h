/* The console socket of --tty: the OCI runtime connects to it and sends the pty master of the
 * container's terminal as SCM_RIGHTS (runc's --console-socket protocol; the message's bytes, the
 * pty's name, are ignored). The first fd received becomes the master; then the socket is removed. */
#ifndef BERTH_MONITOR_CONSOLE_H
#define BERTH_MONITOR_CONSOLE_H

#include "../common/error.h"

struct console
{
  const char *path;
  int listen_fd;   /* -1 once the master arrived */
  int conn_fd;     /* the runtime's connection, until it sent the master */
  int master_fd;   /* -1 until received; non-blocking */
};

void console_init (struct console *c);
int console_listen (struct console *c, const char *path, berth_error_t *err);
/* Accepts waiting connections and reads the master if it was sent; never blocks. Returns 1 when
 * this call received the master, 0 when not (yet), -1 on an error of the monitor's own. */
int console_service (struct console *c, berth_error_t *err);
void console_close (struct console *c);

#endif
