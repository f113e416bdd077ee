#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sock.h"

#define MAX_FDS 4

void
console_init (struct console *c)
{
  c->path = NULL;
  c->listen_fd = c->conn_fd = c->master_fd = -1;
}

int
console_listen (struct console *c, const char *path, berth_error_t *err)
{
  c->path = path;
  c->listen_fd = sock_listen (path, SOCK_STREAM, err);
  return c->listen_fd < 0 ? -1 : 0;
}

static void
drop_conn (struct console *c)
{
  if (c->conn_fd >= 0)
    close (c->conn_fd);
  c->conn_fd = -1;
}

/* One recvmsg on the connection: 1 and the fd, 0 when nothing is there yet, -1 when the
 * connection ended or broke without sending an fd (it is closed then). */
static int
receive_fd (struct console *c, int *out)
{
  char data[256];
  union
  {
    struct cmsghdr hdr;
    char buf[CMSG_SPACE (sizeof (int) * MAX_FDS)];
  } control;
  struct iovec iov = { data, sizeof (data) };
  struct msghdr msg;
  memset (&msg, 0, sizeof (msg));
  memset (&control, 0, sizeof (control));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof (control.buf);

  ssize_t n;
  do
    n = recvmsg (c->conn_fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    return 0;
  if (n < 0)
    fprintf (stderr, "berth-monitor: read the console socket: %s\n", strerror (errno));

  int fd = -1;
  for (struct cmsghdr *h = n > 0 ? CMSG_FIRSTHDR (&msg) : NULL; h; h = CMSG_NXTHDR (&msg, h))
    {
      if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
        continue;
      size_t count = (h->cmsg_len - CMSG_LEN (0)) / sizeof (int);
      int *fds = (int *) CMSG_DATA (h);
      for (size_t i = 0; i < count; i++)
        {
          if (fd < 0)
            fd = fds[i];
          else
            close (fds[i]);
        }
    }
  if (fd < 0)
    {
      if (n > 0)
        fprintf (stderr, "berth-monitor: a message on the console socket carried no fd\n");
      drop_conn (c);
      return -1;
    }
  *out = fd;
  return 1;
}

int
console_service (struct console *c, berth_error_t *err)
{
  while (c->listen_fd >= 0)
    {
      if (c->conn_fd < 0)
        {
          c->conn_fd = sock_accept (c->listen_fd);
          if (c->conn_fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
          if (c->conn_fd < 0)
            return berth_error (err, errno, "accept on %s", c->path);
        }
      int fd;
      int ret = receive_fd (c, &fd);
      if (ret == 0)
        return 0;
      if (ret < 0)
        continue;
      int flags = fcntl (fd, F_GETFL);
      if (flags < 0 || fcntl (fd, F_SETFL, flags | O_NONBLOCK) < 0)
        {
          int saved = errno;
          close (fd);
          return berth_error (err, saved, "make the pty master non-blocking");
        }
      c->master_fd = fd;
      drop_conn (c);
      sock_close (&c->listen_fd, c->path);
      return 1;
    }
  return 0;
}

void
console_close (struct console *c)
{
  drop_conn (c);
  sock_close (&c->listen_fd, c->path);
  if (c->master_fd >= 0)
    close (c->master_fd);
  c->master_fd = -1;
}
