#include "oom.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
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

/* Reads the watched file's count. Returns 0 with *gone set when the file (or its cgroup) is gone. */
static int
watch_read (struct oom_watch *w, long *count, bool *gone, berth_error_t *err)
{
  *gone = false;
  cleanup_close int fd = open (w->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 && (errno == ENOENT || errno == ENODEV))
    {
      *gone = true;
      return 0;
    }
  if (fd < 0)
    return berth_error (err, errno, "open %s", w->path);
  berth_error_t rerr = NULL;
  if (read_count_fd (fd, w->path, count, &rerr) < 0)
    {
      /* A cgroup removed while its file is open reads ENODEV. */
      if (rerr && rerr->status == ENODEV)
        {
          berth_error_release (&rerr);
          *gone = true;
          return 0;
        }
      if (err && *err == NULL)
        *err = rerr;
      else
        berth_error_release (&rerr);
      return -1;
    }
  return 0;
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
  cleanup_free char *path = NULL;
  if (asprintf (&path, "%s/memory.events", dir) < 0)
    return berth_error (err, ENOMEM, "watch %s/memory.events", dir);
  cleanup_close int fd = inotify_init1 (IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0)
    return berth_error (err, errno, "inotify_init1 to watch %s", path);
  /* The watch before the baseline: no change after the baseline goes unseen. */
  if (inotify_add_watch (fd, path, IN_MODIFY) < 0)
    {
      if (errno == ENOENT)
        return 0;
      return berth_error (err, errno, "inotify_add_watch %s", path);
    }
  w->path = path;
  long baseline = 0;
  bool gone = false;
  if (watch_read (w, &baseline, &gone, err) < 0 || gone)
    {
      w->path = NULL;
      return gone ? 0 : -1;
    }
  path = NULL;
  w->fd = steal_fd (&fd);
  w->baseline = baseline;
  return 1;
}

int
oom_watch_service (struct oom_watch *w, berth_error_t *err)
{
  if (w->fd < 0)
    return 0;
  /* Events on the one watch without a name: 16 bytes each. */
  char buf[sizeof (struct inotify_event) * 16] __attribute__ ((aligned (__alignof__ (struct inotify_event))));
  bool modified = false, ignored = false;
  for (;;)
    {
      ssize_t n = read (w->fd, buf, sizeof (buf));
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        break;
      if (n <= 0)
        {
          int e = n < 0 ? errno : EIO;
          oom_watch_close (w);
          return berth_error (err, e, "read the inotify fd watching memory.events");
        }
      for (char *p = buf; p < buf + n; )
        {
          const struct inotify_event *ev = (const struct inotify_event *) p;
          /* IN_Q_OVERFLOW: events were lost; read the count anyway. */
          if (ev->mask & (IN_MODIFY | IN_Q_OVERFLOW))
            modified = true;
          if (ev->mask & IN_IGNORED)
            ignored = true;
          p += sizeof (struct inotify_event) + ev->len;
        }
    }
  int ret = 0;
  if (modified)
    {
      long count = 0;
      bool gone = false;
      ret = watch_read (w, &count, &gone, err);
      if (ret == 0 && !gone && count > w->baseline)
        ret = 1;
    }
  /* The file is gone (its cgroup removed): nothing more will come. */
  if (ignored)
    oom_watch_close (w);
  return ret;
}
