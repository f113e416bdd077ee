#include "oom.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/util.h"

/* Finds the line "oom_kill N" in a flat-keyed cgroup file. */
static int
parse_count (const char *text, const char *path, long *count, berth_error_t *err)
{
  static const char key[] = "oom_kill ";
  for (const char *line = text; *line; )
    {
      if (strncmp (line, key, sizeof (key) - 1) == 0)
        {
          char *end;
          errno = 0;
          long v = strtol (line + sizeof (key) - 1, &end, 10);
          if (errno || end == line + sizeof (key) - 1 || v < 0)
            return berth_error (err, EINVAL, "%s: bad oom_kill line", path);
          *count = v;
          return 0;
        }
      const char *nl = strchr (line, '\n');
      if (nl == NULL)
        break;
      line = nl + 1;
    }
  return berth_error (err, ENOENT, "%s has no oom_kill line", path);
}

static int
read_count_fd (int fd, const char *path, long *count, berth_error_t *err)
{
  cleanup_free char *text = NULL;
  if (read_all_fd (fd, path, &text, NULL, err) < 0)
    return -1;
  return parse_count (text, path, count, err);
}

int
oom_kill_count (const char *dir, long *count, berth_error_t *err)
{
  static const char *const files[] = { "memory.events", "memory.oom_control" };
  for (size_t i = 0; i < sizeof (files) / sizeof (files[0]); i++)
    {
      cleanup_free char *path = NULL;
      if (asprintf (&path, "%s/%s", dir, files[i]) < 0)
        return berth_error (err, ENOMEM, "read %s", dir);
      cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC);
      if (fd < 0 && errno == ENOENT)
        continue;
      if (fd < 0)
        return berth_error (err, errno, "open %s", path);
      return read_count_fd (fd, path, count, err);
    }
  return berth_error (err, ENOENT, "%s has neither memory.events nor memory.oom_control", dir);
}

/* Reads the watched file's count from offset 0 (a kernfs file's read also rearms its POLLPRI).
 * Returns 0 with *gone set when the cgroup is gone: a cgroup removed while its file is open reads
 * ENODEV. */
static int
watch_read (struct oom_watch *w, long *count, bool *gone, berth_error_t *err)
{
  /* memory.events is a few short lines. */
  char text[4096];
  size_t size = 0;
  *gone = false;
  for (;;)
    {
      if (size == sizeof (text) - 1)
        return berth_error (err, EFBIG, "read %s", w->path);
      ssize_t n = pread (w->fd, text + size, sizeof (text) - 1 - size, (off_t) size);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == ENODEV || errno == ENOENT))
        {
          *gone = true;
          return 0;
        }
      if (n < 0)
        return berth_error (err, errno, "read %s", w->path);
      if (n == 0)
        break;
      size += (size_t) n;
    }
  text[size] = '\0';
  return parse_count (text, w->path, count, err);
}

void
oom_watch_init (struct oom_watch *w)
{
  w->fd = -1;
  w->path = NULL;
  w->baseline = 0;
}

void
oom_watch_close (struct oom_watch *w)
{
  if (w->fd >= 0)
    close (w->fd);
  w->fd = -1;
  free (w->path);
  w->path = NULL;
}

int
oom_watch_start (struct oom_watch *w, const char *dir, berth_error_t *err)
{
  oom_watch_close (w);
  if (asprintf (&w->path, "%s/memory.events", dir) < 0)
    {
      w->path = NULL;
      return berth_error (err, ENOMEM, "watch %s/memory.events", dir);
    }
  /* Opened before the baseline is read: a change after that read polls POLLPRI. */
  w->fd = open (w->path, O_RDONLY | O_CLOEXEC);
  if (w->fd < 0)
    {
      int e = errno;
      if (e == ENOENT || e == ENODEV)
        {
          oom_watch_close (w);
          return 0;
        }
      berth_error (err, e, "open %s", w->path);
      oom_watch_close (w);
      return -1;
    }
  bool gone = false;
  if (watch_read (w, &w->baseline, &gone, err) < 0 || gone)
    {
      oom_watch_close (w);
      return gone ? 0 : -1;
    }
  return 1;
}

int
oom_watch_service (struct oom_watch *w, berth_error_t *err)
{
  if (w->fd < 0)
    return 0;
  long count = 0;
  bool gone = false;
  if (watch_read (w, &count, &gone, err) < 0 || gone)
    {
      oom_watch_close (w);
      return gone ? 0 : -1;
    }
  return count > w->baseline ? 1 : 0;
}

int
oom_watch_rebase (struct oom_watch *w, berth_error_t *err)
{
  if (w->fd < 0)
    return 0;
  bool gone = false;
  long count = 0;
  if (watch_read (w, &count, &gone, err) < 0 || gone)
    {
      oom_watch_close (w);
      return gone ? 0 : -1;
    }
  w->baseline = count;
  return 0;
}
