#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/util.h"

/* Copies s into out as the inside of a JSON string, cut short to fit. */
static void
json_escape (const char *s, char *out, size_t size)
{
  static const char hex[] = "0123456789abcdef";
  size_t n = 0;
  for (; *s; s++)
    {
      unsigned char ch = (unsigned char) *s;
      char esc[7];
      size_t len;
      if (ch == '"' || ch == '\\')
        esc[0] = '\\', esc[1] = (char) ch, len = 2;
      else if (ch < 0x20)
        memcpy (esc, "\\u00", 4), esc[4] = hex[ch >> 4], esc[5] = hex[ch & 15], len = 6;
      else
        esc[0] = (char) ch, len = 1;
      if (n + len + 1 > size)
        break;
      memcpy (out + n, esc, len);
      n += len;
    }
  out[n] = '\0';
}

int
exit_json (char *buf, size_t size, int status, bool oom_killed, const char *error, berth_error_t *err)
{
  struct timespec ts;
  struct tm tm;
  char when[64];
  if (clock_gettime (CLOCK_REALTIME, &ts) < 0)
    return berth_error (err, errno, "clock_gettime");
  gmtime_r (&ts.tv_sec, &tm);
  size_t n = strftime (when, sizeof (when), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf (when + n, sizeof (when) - n, ".%09ldZ", ts.tv_nsec);
  int code = WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
  int sig = WIFSIGNALED (status) ? WTERMSIG (status) : 0;
  char escaped[256];
  json_escape (error ? error : "", escaped, sizeof (escaped));
  int len = snprintf (buf, size, "{\"exitCode\":%d,\"signal\":%d,\"oomKilled\":%s,\"finishedAt\":\"%s\",\"error\":\"%s\"}\n", code, sig,
                      oom_killed ? "true" : "false", when, escaped);
  if (len < 0 || (size_t) len >= size)
    return berth_error (err, EOVERFLOW, "format the exit status");
  return len;
}

int
write_exit_file (const char *path, const char *json, size_t len, berth_error_t *err)
{
  return write_file_atomic (path, json, len, 0644, err);
}
