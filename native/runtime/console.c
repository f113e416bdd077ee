#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "../common/cleanup.h"

int
console_connect (const char *path, berth_error_t *err)
{
  struct sockaddr_un addr;
  memset (&addr, 0, sizeof (addr));
  addr.sun_family = AF_UNIX;
  if (strlen (path) >= sizeof (addr.sun_path))
    return berth_error (err, ENAMETOOLONG, "console socket %s", path);
  strcpy (addr.sun_path, path);
  cleanup_close int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return berth_error (err, errno, "socket");
  if (connect (fd, (struct sockaddr *) &addr, sizeof (addr)) < 0)
    return berth_error (err, errno, "connect to the console socket %s", path);
  return steal_fd (&fd);
}

static int
send_fd (int sock, int fd, const char *name, berth_error_t *err)
{
  char control[CMSG_SPACE (sizeof (int))];
  memset (control, 0, sizeof (control));
  struct iovec iov = { (void *) name, strlen (name) };
  struct msghdr msg = { 0 };
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof (control);
  struct cmsghdr *c = CMSG_FIRSTHDR (&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (c), &fd, sizeof (int));
  ssize_t n;
  do
    n = sendmsg (sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return berth_error (err, errno, "send the pty master to the console socket");
  return 0;
}

int
console_create (int sock, char **slave_path, berth_error_t *err)
{
  cleanup_close int master = open ("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0)
    return berth_error (err, errno, "open /dev/ptmx");
  if (unlockpt (master) < 0)
    return berth_error (err, errno, "unlockpt");
  char name[128];
  if (ptsname_r (master, name, sizeof (name)) != 0)
    return berth_error (err, errno, "ptsname");
  cleanup_close int slave = open (name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0)
    return berth_error (err, errno, "open %s", name);
  if (send_fd (sock, master, name, err) < 0)
    return -1;
  *slave_path = strdup (name);
  if (*slave_path == NULL)
    return berth_error (err, ENOMEM, "pty");
  return steal_fd (&slave);
}

int
console_attach (int slave, berth_error_t *err)
{
  if (setsid () < 0)
    return berth_error (err, errno, "setsid");
  if (ioctl (slave, TIOCSCTTY, 0) < 0)
    return berth_error (err, errno, "make the pty the controlling terminal");
  for (int fd = 0; fd < 3; fd++)
    if (dup2 (slave, fd) < 0)
      return berth_error (err, errno, "dup2 the pty to %d", fd);
  return 0;
}
