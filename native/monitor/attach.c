#include "attach.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sock.h"

void
attach_init (struct attach *a)
{
  memset (a, 0, sizeof (*a));
  a->listen_fd = -1;
}

int
attach_listen (struct attach *a, const char *path, berth_error_t *err)
{
  a->path = path;
  a->listen_fd = sock_listen (path, SOCK_SEQPACKET, err);
  return a->listen_fd < 0 ? -1 : 0;
}

int
attach_accept (struct attach *a, berth_error_t *err)
{
  while (a->listen_fd >= 0)
    {
      int fd = sock_accept (a->listen_fd);
      if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
      if (fd < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM))
        {
          /* Out of fds or memory: refuse this client, keep the others and the container. */
          fprintf (stderr, "berth-monitor: accept an attach client: %s\n", strerror (errno));
          return 0;
        }
      if (fd < 0)
        return berth_error (err, errno, "accept on %s", a->path);
      struct attach_client *c = calloc (1, sizeof (*c));
      if (c == NULL)
        {
          close (fd);
          fprintf (stderr, "berth-monitor: accept an attach client: out of memory\n");
          return 0;
        }
      /* Room for bursts of output while a client catches up: kernel memory, not the monitor's,
       * and used only while the client lags. Beyond wmem_max only with CAP_NET_ADMIN (FORCE). */
      int size = ATTACH_SNDBUF;
      if (setsockopt (fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof (size)) < 0
          && setsockopt (fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof (size)) < 0)
        fprintf (stderr, "berth-monitor: enlarge an attach client's socket buffer: %s\n", strerror (errno));
      c->fd = fd;
      c->pidx = -1;
      c->next = a->clients;
      a->clients = c;
    }
  return 0;
}

void
attach_drop (struct attach *a, struct attach_client *c, const char *why)
{
  if (a->on_leave)
    a->on_leave (a->ctx, c);
  for (struct attach_client **p = &a->clients; *p; p = &(*p)->next)
    if (*p == c)
      {
        *p = c->next;
        break;
      }
  if (why)
    fprintf (stderr, "berth-monitor: attach client disconnected: %s\n", why);
  close (c->fd);
  free (c);
}

void
attach_broadcast (struct attach *a, int stream, const char *data, size_t len)
{
  unsigned char id = (unsigned char) stream;
  struct attach_client *next;
  for (struct attach_client *c = a->clients; c; c = next)
    {
      next = c->next;
      struct iovec iov[2] = { { &id, 1 }, { (void *) data, len } };
      struct msghdr msg;
      memset (&msg, 0, sizeof (msg));
      msg.msg_iov = iov;
      msg.msg_iovlen = 2;
      ssize_t n;
      do
        n = sendmsg (c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
      while (n < 0 && errno == EINTR);
      if (n >= 0)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        attach_drop (a, c, "it does not read fast enough (its socket buffer is full)");
      else if (errno == EPIPE || errno == ECONNRESET)
        attach_drop (a, c, NULL);
      else
        attach_drop (a, c, strerror (errno));
    }
}

ssize_t
attach_recv (struct attach_client *c, char *buf, size_t size)
{
  struct iovec iov = { buf, size };
  struct msghdr msg;
  memset (&msg, 0, sizeof (msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  ssize_t n;
  do
    n = recvmsg (c->fd, &msg, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    return -1;
  if (n < 0)
    return 0;
  if (msg.msg_flags & MSG_TRUNC)
    {
      fprintf (stderr, "berth-monitor: an attach client sent a message over %d bytes\n", ATTACH_INPUT_MAX);
      return 0;
    }
  return n;
}

void
attach_close (struct attach *a)
{
  while (a->clients)
    attach_drop (a, a->clients, NULL);
  sock_close (&a->listen_fd, a->path);
}
