#include "input.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void
input_init (struct input *in)
{
  in->fd = -1;
  in->tty = false;
  in->close_requested = false;
  in->off = in->len = 0;
}

int
input_set (struct input *in, int fd, bool tty, berth_error_t *err)
{
  int flags = fcntl (fd, F_GETFL);
  if (flags < 0 || fcntl (fd, F_SETFL, flags | O_NONBLOCK) < 0)
    {
      int saved = errno;
      close (fd);
      return berth_error (err, saved, "make the container's stdin non-blocking");
    }
  input_close (in);
  in->fd = fd;
  in->tty = tty;
  return 0;
}

bool
input_pending (const struct input *in)
{
  return in->fd >= 0 && in->off < in->len;
}

void
input_close (struct input *in)
{
  if (in->fd >= 0)
    close (in->fd);
  in->fd = -1;
  in->off = in->len = 0;
}

void
input_flush (struct input *in)
{
  while (in->fd >= 0 && in->off < in->len)
    {
      ssize_t n = write (in->fd, in->buf + in->off, in->len - in->off);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
      if (n < 0)
        {
          /* EPIPE: the container closed its stdin; EIO: the pty's other side is gone. */
          if (errno != EPIPE && errno != EIO)
            fprintf (stderr, "berth-monitor: write the container's stdin: %s\n", strerror (errno));
          input_close (in);
          return;
        }
      in->off += (size_t) n;
    }
  in->off = in->len = 0;
  if (in->fd >= 0 && in->close_requested)
    {
      in->close_requested = false;
      if (in->tty)
        {
          /* A pty cannot be closed for the container alone: end its input the way a terminal
           * user does, with the EOF character (^D), after which stdin is discarded. */
          in->buf[0] = 4;
          in->len = 1;
          ssize_t n;
          do
            n = write (in->fd, in->buf, 1);
          while (n < 0 && errno == EINTR);
          if (n < 0)
            fprintf (stderr, "berth-monitor: send EOF to the terminal: %s\n", strerror (errno));
        }
      input_close (in);
    }
}

void
input_write (struct input *in, const char *data, size_t len)
{
  if (in->fd < 0 || len == 0)
    return;
  if (len > sizeof (in->buf))
    len = sizeof (in->buf);
  memcpy (in->buf, data, len);
  in->off = 0;
  in->len = len;
  input_flush (in);
}

void
input_request_close (struct input *in)
{
  if (in->fd < 0)
    return;
  in->close_requested = true;
  if (!input_pending (in))
    input_flush (in);
}
