#include "attach.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "sock.h"

static const char slow[] = "it does not read fast enough (its socket buffer is full)";

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
  a->listen_fd = sock_listen (path, SOCK_STREAM, err);
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

static void
end_input (struct attach *a, struct attach_client *c)
{
  if (c->input_done)
    return;
  c->input_done = true;
  if (a->on_input_end)
    a->on_input_end (a->ctx, c);
}

/* Reads and throws away what the client sent that nobody will read: closing a unix socket with
 * unread data resets the connection for the peer (ECONNRESET) instead of giving it a clean EOF. */
static void
discard_input (struct attach_client *c)
{
  char buf[4096];
  for (int i = 0; i < 256; i++)
    {
      ssize_t n = recv (c->fd, buf, sizeof (buf), MSG_DONTWAIT);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return;
    }
}

static void
clear_pending (struct attach_client *c)
{
  free (c->pending);
  c->pending = NULL;
  c->pending_off = c->pending_len = 0;
}

void
attach_drop (struct attach *a, struct attach_client *c, const char *why)
{
  end_input (a, c);
  for (struct attach_client **p = &a->clients; *p; p = &(*p)->next)
    if (*p == c)
      {
        *p = c->next;
        break;
      }
  if (why)
    fprintf (stderr, "berth-monitor: attach client disconnected: %s\n", why);
  discard_input (c);
  close (c->fd);
  clear_pending (c);
  free (c);
}

/* Appends to what is pending for a client; false when out of memory. */
static bool
append_pending (struct attach_client *c, const void *data, size_t len)
{
  if (c->pending_off > 0)
    {
      memmove (c->pending, c->pending + c->pending_off, c->pending_len - c->pending_off);
      c->pending_len -= c->pending_off;
      c->pending_off = 0;
    }
  char *bigger = realloc (c->pending, c->pending_len + len);
  if (bigger == NULL)
    return false;
  memcpy (bigger + c->pending_len, data, len);
  c->pending = bigger;
  c->pending_len += len;
  return true;
}

/* Queues a whole frame for a client (backpressure mode). */
static bool
append_frame (struct attach_client *c, const unsigned char *hdr, const char *data, size_t len)
{
  return append_pending (c, hdr, ATTACH_HEADER) && append_pending (c, data, len);
}

static void
frame_header (unsigned char *hdr, int stream, size_t len)
{
  hdr[0] = (unsigned char) stream;
  hdr[1] = (unsigned char) (len >> 24);
  hdr[2] = (unsigned char) (len >> 16);
  hdr[3] = (unsigned char) (len >> 8);
  hdr[4] = (unsigned char) len;
}

/* Sends a frame to a client with nothing pending. 0 when the socket took at least a part of it (the
 * rest is pending then), -1 with errno when it took nothing (EAGAIN: its buffer is full) or failed. */
static int
send_frame (struct attach_client *c, const unsigned char *hdr, const char *data, size_t len)
{
  struct iovec iov[2] = { { (void *) hdr, ATTACH_HEADER }, { (void *) data, len } };
  struct msghdr msg;
  memset (&msg, 0, sizeof (msg));
  msg.msg_iov = iov;
  msg.msg_iovlen = len > 0 ? 2 : 1;
  ssize_t n;
  do
    n = sendmsg (c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return -1;
  size_t sent_hdr = (size_t) n < ATTACH_HEADER ? (size_t) n : ATTACH_HEADER;
  size_t sent_data = (size_t) n - sent_hdr;
  if ((sent_hdr < ATTACH_HEADER && !append_pending (c, hdr + sent_hdr, ATTACH_HEADER - sent_hdr))
      || (sent_data < len && !append_pending (c, data + sent_data, len - sent_data)))
    {
      errno = ENOMEM;
      return -1;
    }
  return 0;
}

/* The client's side takes no more output (it closed, or shut down its reading): it is dropped,
 * unless stdin may still come from it. True when it was dropped. */
static bool
lost_output (struct attach *a, struct attach_client *c, int error)
{
  clear_pending (c);
  c->output_done = true;
  if (error != EPIPE && error != ECONNRESET)
    {
      attach_drop (a, c, strerror (error));
      return true;
    }
  if (c->input_done || c->closing)
    {
      attach_drop (a, c, NULL);
      return true;
    }
  return false;
}

/* Sends what is pending for a client; true when it was dropped (done, or its connection broke). */
static bool
flush (struct attach *a, struct attach_client *c)
{
  while (c->pending_off < c->pending_len)
    {
      ssize_t n = send (c->fd, c->pending + c->pending_off, c->pending_len - c->pending_off, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return false;
      if (n < 0)
        return lost_output (a, c, errno);
      c->pending_off += (size_t) n;
    }
  clear_pending (c);
  if (c->closing)
    {
      attach_drop (a, c, NULL);
      return true;
    }
  return false;
}

void
attach_broadcast (struct attach *a, int stream, const char *data, size_t len)
{
  unsigned char hdr[ATTACH_HEADER];
  frame_header (hdr, stream, len);
  struct attach_client *next;
  for (struct attach_client *c = a->clients; c; c = next)
    {
      next = c->next;
      if (c->output_done || c->closing)
        continue;
      if (a->backpressure)
        {
          /* Nothing is lost: what the socket does not take waits for POLLOUT, and the monitor reads
           * no more of the container's output until this client has it (attach_blocked). */
          if (c->pending == NULL && send_frame (c, hdr, data, len) == 0)
            continue;
          if (c->pending == NULL && errno != EAGAIN && errno != EWOULDBLOCK)
            lost_output (a, c, errno);
          else if (!append_frame (c, hdr, data, len))
            attach_drop (a, c, "out of memory for its pending output");
          continue;
        }
      if (c->pending)
        {
          /* The rest of its last frame is still waiting: it is behind by a whole socket buffer.
           * It gets that rest, then EOF. */
          fprintf (stderr, "berth-monitor: attach client disconnected: %s\n", slow);
          c->closing = true;
          end_input (a, c);
          continue;
        }
      if (send_frame (c, hdr, data, len) == 0)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        attach_drop (a, c, slow);
      else
        lost_output (a, c, errno);
    }
}

bool
attach_blocked (const struct attach *a)
{
  if (!a->backpressure)
    return false;
  for (const struct attach_client *c = a->clients; c; c = c->next)
    if (c->pending && !c->output_done)
      return true;
  return false;
}

int
attach_events (const struct attach_client *c, bool want_input)
{
  int events = 0;
  if (c->pending)
    events |= POLLOUT;
  if (!c->input_done && want_input)
    events |= POLLIN;
  if (events == 0 && !c->input_done)
    return -1;
  return events;
}

bool
attach_service (struct attach *a, struct attach_client *c, short revents)
{
  if (c->pending && (revents & (POLLOUT | POLLHUP | POLLERR)) && flush (a, c))
    return true;
  if (c->input_done && !c->pending && (revents & (POLLHUP | POLLERR)))
    {
      attach_drop (a, c, NULL);
      return true;
    }
  return false;
}

/* True when the client's side is closed altogether, not only for writing (a half-close). */
static bool
peer_closed (int fd)
{
  struct pollfd p = { fd, 0, 0 };
  int n;
  do
    n = poll (&p, 1, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    {
      fprintf (stderr, "berth-monitor: poll an attach client: %s\n", strerror (errno));
      return true;
    }
  return (p.revents & (POLLHUP | POLLERR)) != 0;
}

ssize_t
attach_recv (struct attach *a, struct attach_client *c, char *buf, size_t size)
{
  ssize_t n;
  do
    n = recv (c->fd, buf, size, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n > 0)
    return n;
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    return -1;
  if (n < 0 && errno != ECONNRESET)
    fprintf (stderr, "berth-monitor: read an attach client: %s\n", strerror (errno));
  if (n < 0 || c->output_done || peer_closed (c->fd))
    return ATTACH_GONE;
  c->half_closed = true;
  end_input (a, c);
  return 0;
}

static long
ms_since (const struct timespec *t)
{
  struct timespec now;
  if (clock_gettime (CLOCK_MONOTONIC, &now) < 0)
    return 0;
  return (now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

/* Queues the last frame for a client, after what is pending; false when out of memory. */
static bool
queue_last (struct attach_client *c, const unsigned char *hdr, const char *data, size_t len)
{
  if (c->pending == NULL)
    {
      if (send_frame (c, hdr, data, len) == 0)
        return true;
      if (errno == ENOMEM)
        return false;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        {
          /* It closed: nothing more to send it. */
          c->output_done = true;
          return true;
        }
    }
  return append_pending (c, hdr, ATTACH_HEADER) && append_pending (c, data, len);
}

void
attach_finish (struct attach *a, const char *data, size_t len, int timeout_ms)
{
  sock_close (&a->listen_fd, a->path);
  struct timespec start;
  if (clock_gettime (CLOCK_MONOTONIC, &start) < 0)
    {
      fprintf (stderr, "berth-monitor: clock_gettime: %s\n", strerror (errno));
      attach_close (a);
      return;
    }
  unsigned char hdr[ATTACH_HEADER];
  frame_header (hdr, ATTACH_EXIT, len);
  size_t n = 0;
  struct attach_client *next;
  for (struct attach_client *c = a->clients; c; c = next)
    {
      next = c->next;
      if (!c->output_done && !c->closing && !queue_last (c, hdr, data, len))
        {
          attach_drop (a, c, "out of memory");
          continue;
        }
      c->closing = true;
      end_input (a, c);
      if (c->pending == NULL)
        attach_drop (a, c, NULL);
      else
        n++;
    }
  if (n == 0)
    {
      attach_close (a);
      return;
    }

  /* Clients only leave from here on: n entries are enough. */
  cleanup_free struct pollfd *fds = calloc (n, sizeof (*fds));
  if (fds == NULL)
    {
      fprintf (stderr, "berth-monitor: send the exit status to attach clients: out of memory\n");
      attach_close (a);
      return;
    }
  for (;;)
    {
      long left = timeout_ms - ms_since (&start);
      if (a->clients == NULL || left <= 0)
        break;
      size_t i = 0;
      for (struct attach_client *c = a->clients; c; c = c->next)
        {
          c->pidx = (int) i;
          fds[i++] = (struct pollfd) { c->fd, POLLOUT, 0 };
        }
      int ret = poll (fds, i, (int) left);
      if (ret < 0 && errno == EINTR)
        continue;
      if (ret < 0)
        {
          fprintf (stderr, "berth-monitor: poll attach clients: %s\n", strerror (errno));
          break;
        }
      for (struct attach_client *c = a->clients; c; c = next)
        {
          next = c->next;
          if (fds[c->pidx].revents)
            flush (a, c);
        }
    }
  if (a->clients)
    fprintf (stderr, "berth-monitor: attach clients that did not take the end of the output in %d ms are disconnected\n", timeout_ms);
  attach_close (a);
}

void
attach_close (struct attach *a)
{
  while (a->clients)
    attach_drop (a, a->clients, NULL);
  sock_close (&a->listen_fd, a->path);
}
