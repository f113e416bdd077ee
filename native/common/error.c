
#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* The formatted context of an error, or NULL when there is no memory for it. */
static char *
vcontext (const char *fmt, va_list ap)
{
  char *context = NULL;
  if (vasprintf (&context, fmt, ap) < 0)
    return NULL;
  return context;
}

int
berth_error (berth_error_t *err, int status, const char *fmt, ...)
{
  va_list ap;

  if (err == NULL || *err != NULL)
    return -1;

  va_start (ap, fmt);
  char *context = vcontext (fmt, ap);
  va_end (ap);

  *err = calloc (1, sizeof (**err));
  if (*err == NULL)
    {
      free (context);
      return -1;
    }
  (*err)->status = status;
  if (status != 0)
    {
      if (asprintf (&(*err)->msg, "%s: %s", context ? context : "error", strerror (status)) < 0)
        (*err)->msg = NULL;
      free (context);
    }
  else
    (*err)->msg = context;
  return -1;
}

int
berth_error_wrap (berth_error_t *err, const char *fmt, ...)
{
  va_list ap;

  if (err == NULL)
    return -1;
  va_start (ap, fmt);
  char *context = vcontext (fmt, ap);
  va_end (ap);
  if (*err == NULL)
    {
      berth_error (err, 0, "%s", context ? context : "error");
      free (context);
      return -1;
    }
  char *msg = NULL;
  /* Out of memory: the cause's own message is kept, without the context. */
  if (context && asprintf (&msg, "%s: %s", context, (*err)->msg ? (*err)->msg : "out of memory") >= 0)
    {
      free ((*err)->msg);
      (*err)->msg = msg;
    }
  free (context);
  return -1;
}

void
berth_error_print (FILE *f, const char *prefix, berth_error_t err)
{
  if (err == NULL)
    return;
  fprintf (f, "%s: %s\n", prefix, err->msg ? err->msg : "out of memory");
}

void
berth_error_release (berth_error_t *err)
{
  if (err == NULL || *err == NULL)
    return;
  free ((*err)->msg);
  free (*err);
  *err = NULL;
}
