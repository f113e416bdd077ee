
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"

int
safe_write (int fd, const void *buf, size_t len, berth_error_t *err)
{
  const char *p = buf;
  while (len > 0)
    {
      ssize_t n = write (fd, p, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return berth_error (err, errno, "write");
      p += n;
      len -= (size_t) n;
    }
  return 0;
}

int
read_all_fd (int fd, const char *what, char **out, size_t *len, berth_error_t *err)
{
  size_t size = 0, alloc = 4096;
  cleanup_free char *buf = malloc (alloc);
  if (buf == NULL)
    return berth_error (err, ENOMEM, "read %s", what);
  for (;;)
    {
      if (alloc - size < 2)
        {
          char *bigger = realloc (buf, alloc * 2);
          if (bigger == NULL)
            return berth_error (err, ENOMEM, "read %s", what);
          buf = bigger;
          alloc *= 2;
        }
      ssize_t n = read (fd, buf + size, alloc - size - 1);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return berth_error (err, errno, "read %s", what);
      if (n == 0)
        break;
      size += (size_t) n;
    }
  buf[size] = '\0';
  *out = buf;
  buf = NULL;
  if (len)
    *len = size;
  return 0;
}

static int
fsync_parent (const char *path, berth_error_t *err)
{
  cleanup_free char *copy = strdup (path);
  if (copy == NULL)
    return berth_error (err, ENOMEM, "fsync parent of %s", path);
  const char *dir = dirname (copy);
  cleanup_close int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return berth_error (err, errno, "open %s", dir);
  if (fsync (dfd) < 0)
    return berth_error (err, errno, "fsync %s", dir);
  return 0;
}

int
write_file_atomic (const char *path, const void *data, size_t len, mode_t mode, berth_error_t *err)
{
  cleanup_free char *tmp = NULL;
  if (asprintf (&tmp, "%s.tmp-%d", path, (int) getpid ()) < 0)
    return berth_error (err, ENOMEM, "write %s", path);
  cleanup_close int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return berth_error (err, errno, "open %s", tmp);
  if (safe_write (fd, data, len, err) < 0 || fsync (fd) < 0)
    {
      int saved = errno;
      unlink (tmp);
      return berth_error (err, saved, "write %s", tmp);
    }
  if (rename (tmp, path) < 0)
    {
      int saved = errno;
      unlink (tmp);
      return berth_error (err, saved, "rename %s to %s", tmp, path);
    }
  return fsync_parent (path, err);
}

int
read_pid_file (const char *path, pid_t *pid, berth_error_t *err)
{
  cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return berth_error (err, errno, "open %s", path);
  cleanup_free char *text = NULL;
  if (read_all_fd (fd, path, &text, NULL, err) < 0)
    return -1;
  long v = strtol (text, NULL, 10);
  if (v <= 0)
    return berth_error (err, EINVAL, "%s holds no pid", path);
  *pid = (pid_t) v;
  return 0;
}

int
write_pid_file (const char *path, pid_t pid, berth_error_t *err)
{
  char buf[32];
  int n = snprintf (buf, sizeof (buf), "%d", (int) pid);
  return write_file_atomic (path, buf, (size_t) n, 0644, err);
}
