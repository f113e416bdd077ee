#include "sock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/cleanup.h"

/* The name to bind: path itself, or /proc/self/fd/<dirfd>/<base> when path does not fit. */
static int
short_name (const char *path, char *out, size_t size, int *dirfd, berth_error_t *err)
{
  if (strlen (path) < size)
    {
      strcpy (out, path);
      return 0;
    }
  const char *slash = strrchr (path, '/');
  if (slash == NULL)
    return berth_error (err, ENAMETOOLONG, "socket name %s", path);
  cleanup_free char *dir = strndup (path, (size_t) (slash - path));
  if (dir == NULL)
    return berth_error (err, ENOMEM, "socket %s", path);
  *dirfd = open (*dir ? dir : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (*dirfd < 0)
    return berth_error (err, errno, "open %s", dir);
  int n = snprintf (out, size, "/proc/self/fd/%d/%s", *dirfd, slash + 1);
  if (n < 0 || (size_t) n >= size)
    return berth_error (err, ENAMETOOLONG, "socket name %s", path);
  return 0;
}

int
sock_listen (const char *path, int type, berth_error_t *err)
{
  struct sockaddr_un addr;
  memset (&addr, 0, sizeof (addr));
  addr.sun_family = AF_UNIX;
  cleanup_close int dirfd = -1;
  if (short_name (path, addr.sun_path, sizeof (addr.sun_path), &dirfd, err) < 0)
    return -1;

  struct stat sb;
  if (lstat (addr.sun_path, &sb) == 0)
    {
      if (!S_ISSOCK (sb.st_mode))
        return berth_error (err, EEXIST, "socket %s: a file that is not a socket is in the way", path);
      if (unlink (addr.sun_path) < 0)
        return berth_error (err, errno, "remove the stale socket %s", path);
    }
  else if (errno != ENOENT)
    return berth_error (err, errno, "stat %s", path);

  cleanup_close int fd = socket (AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return berth_error (err, errno, "socket for %s", path);
  if (bind (fd, (struct sockaddr *) &addr, sizeof (addr)) < 0)
    return berth_error (err, errno, "bind %s", path);
  /* Whoever may connect may write to the container's stdin: owner only. */
  if (chmod (addr.sun_path, 0600) < 0 || listen (fd, 64) < 0)
    {
      int saved = errno;
      unlink (addr.sun_path);
      return berth_error (err, saved, "listen on %s", path);
    }
  return steal_fd (&fd);
}

void
sock_close (int *fd, const char *path)
{
  if (*fd < 0)
    return;
  /* Unlinking by the full name works for long paths too (unlink has no sun_path limit). */
  if (path)
    unlink (path);
  close (*fd);
  *fd = -1;
}

int
sock_accept (int listen_fd)
{
  for (;;)
    {
      int fd = accept4 (listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
        continue;
      return fd;
    }
}
