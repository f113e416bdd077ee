#include "rtlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/util.h"

static int log_fd = -1;
static int log_json = 0;

int
rtlog_open (const char *path, const char *format, berth_error_t *err)
{
  if (format != NULL)
    {
      if (strcmp (format, "json") == 0)
        log_json = 1;
      else if (strcmp (format, "text") != 0)
        return berth_error (err, 0, "unknown log-format %s (text or json)", format);
    }
  if (path == NULL || *path == '\0')
    return 0;
  log_fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0)
    return berth_error (err, errno, "open log file %s", path);
  return 0;
}

void
rtlog_now (char *buf, size_t len, int nanos)
{
  struct timespec ts;
  struct tm tm;
  clock_gettime (CLOCK_REALTIME, &ts);
  gmtime_r (&ts.tv_sec, &tm);
  size_t n = strftime (buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
  if (nanos)
    snprintf (buf + n, len - n, ".%09ldZ", ts.tv_nsec);
  else
    snprintf (buf + n, len - n, "Z");
}

/* Appends s to out, escaped for a JSON string or a logfmt quoted value (same escapes suffice). */
static void
escape (FILE *out, const char *s)
{
  for (const unsigned char *p = (const unsigned char *) s; *p; p++)
    {
      if (*p == '"' || *p == '\\')
        fprintf (out, "\\%c", *p);
      else if (*p == '\n')
        fputs ("\\n", out);
      else if (*p == '\t')
        fputs ("\\t", out);
      else if (*p < 0x20)
        fprintf (out, "\\u%04x", *p);
      else
        fputc (*p, out);
    }
}

static char *
format_line (const char *level, const char *msg)
{
  char when[64];
  char *line = NULL;
  size_t len = 0;
  rtlog_now (when, sizeof (when), 0);
  FILE *f = open_memstream (&line, &len);
  if (f == NULL)
    return NULL;
  if (log_json)
    {
      fprintf (f, "{\"level\":\"%s\",\"msg\":\"", level);
      escape (f, msg);
      fprintf (f, "\",\"time\":\"%s\"}\n", when);
    }
  else
    {
      fprintf (f, "time=\"%s\" level=%s msg=\"", when, level);
      escape (f, msg);
      fputs ("\"\n", f);
    }
  if (fclose (f) != 0)
    {
      free (line);
      return NULL;
    }
  return line;
}

static void
emit (const char *level, const char *msg, int to_stderr)
{
  cleanup_free char *line = format_line (level, msg);
  berth_error_t ignored = NULL;
  if (line == NULL)
    return;
  if (log_fd >= 0)
    {
      if (safe_write (log_fd, line, strlen (line), &ignored) < 0)
        berth_error_release (&ignored);
      if (to_stderr)
        fprintf (stderr, "%s\n", msg);
    }
  else if (to_stderr)
    fputs (line, stderr);
}

void
rtlog_error (const char *msg)
{
  emit ("error", msg, 1);
}

void
rtlog_warn (const char *fmt, ...)
{
  cleanup_free char *msg = NULL;
  va_list ap;
  va_start (ap, fmt);
  int n = vasprintf (&msg, fmt, ap);
  va_end (ap);
  if (n < 0)
    return;
  /* Warnings go to the log only (as runc's do when it has one). */
  if (log_fd >= 0)
    emit ("warning", msg, 0);
}

void
rtlog_report (berth_error_t *err)
{
  rtlog_error (*err && (*err)->msg ? (*err)->msg : "out of memory");
  berth_error_release (err);
}
