#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "../common/util.h"

/* O_NOFOLLOW: a symlink put where the log file goes must not send the container's output elsewhere. */
int
log_open (const char *path, berth_error_t *err)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0)
    return berth_error (err, errno, "open log %s", path);
  return fd;
}

static size_t
timestamp (char *out, size_t size)
{
  struct timespec ts;
  struct tm tm;
  clock_gettime (CLOCK_REALTIME, &ts);
  gmtime_r (&ts.tv_sec, &tm);
  size_t n = strftime (out, size, "%Y-%m-%dT%H:%M:%S", &tm);
  n += (size_t) snprintf (out + n, size - n, ".%09ldZ", ts.tv_nsec);
  return n;
}

static int
write_record (int fd, const char *stream, char tag, const char *data, size_t len, berth_error_t *err)
{
  char head[96];
  size_t n = timestamp (head, sizeof (head));
  n += (size_t) snprintf (head + n, sizeof (head) - n, " %s %c ", stream, tag);
  /* One writev per record: with O_APPEND, records from the two streams never interleave. */
  struct iovec iov[3] = { { head, n }, { (void *) data, len }, { (void *) "\n", 1 } };
  ssize_t want = (ssize_t) (n + len + 1);
  for (;;)
    {
      ssize_t w = writev (fd, iov, 3);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        return berth_error (err, errno, "write log record");
      if (w != want)
        return berth_error (err, EIO, "short write of a log record");
      return 0;
    }
}

int
log_feed (int fd, struct log_stream *s, const char *data, size_t len, berth_error_t *err)
{
  while (len > 0)
    {
      const char *nl = memchr (data, '\n', len);
      size_t take = nl ? (size_t) (nl - data) : len;
      size_t room = LOG_LINE_MAX - s->len;
      if (take > room)
        take = room;
      memcpy (s->buf + s->len, data, take);
      s->len += take;
      data += take;
      len -= take;
      if (len > 0 && *data == '\n')
        {
          if (write_record (fd, s->name, 'F', s->buf, s->len, err) < 0)
            return -1;
          s->len = 0;
          data++;
          len--;
        }
      else if (s->len == LOG_LINE_MAX)
        {
          if (write_record (fd, s->name, 'P', s->buf, s->len, err) < 0)
            return -1;
          s->len = 0;
        }
    }
  return 0;
}

int
log_flush (int fd, struct log_stream *s, berth_error_t *err)
{
  if (s->len == 0)
    return 0;
  int ret = write_record (fd, s->name, 'F', s->buf, s->len, err);
  s->len = 0;
  return ret;
}
