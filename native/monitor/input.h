/* The container's stdin as the monitor holds it: the write end of a pipe, or (with --tty) a dup of
 * the pty master. Writes never block the monitor: what the container does not take yet is kept
 * (one client message at most) and the monitor stops reading attach clients until it is taken. */
#ifndef BERTH_MONITOR_INPUT_H
#define BERTH_MONITOR_INPUT_H

#include <stdbool.h>
#include <stddef.h>

#include "attach.h"

struct input
{
  int fd;                 /* -1 when there is no stdin, or it was closed */
  bool tty;               /* closing means sending the terminal's EOF character */
  bool close_requested;   /* close once what is pending is written */
  size_t off, len;
  char buf[ATTACH_INPUT_MAX];
};

void input_init (struct input *in);
/* Takes ownership of fd and makes it non-blocking. */
int input_set (struct input *in, int fd, bool tty, berth_error_t *err);
/* True while bytes wait for the container to take them. */
bool input_pending (const struct input *in);
/* Queues data (only when nothing is pending) and writes what it can. Without a stdin, or after it
 * was closed, data is discarded. */
void input_write (struct input *in, const char *data, size_t len);
/* Writes what is pending; on the container's side closing (EPIPE, EIO) stdin is closed. */
void input_flush (struct input *in);
/* Closes stdin once what is pending is written (for a pty: sends ^D instead). */
void input_request_close (struct input *in);
void input_close (struct input *in);

#endif
