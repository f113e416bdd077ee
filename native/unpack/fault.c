/* The first failure of an unpack: why it happened (which decides berth-unpack's exit status) and, for a
 * failure of the machine, its errno (ENOSPC is told apart). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "unpack.h"

static enum unpack_fault first_fault;
static int first_errno;

int
unpack_fail (berth_error_t *err, enum unpack_fault fault, const char *fmt, ...)
{
  int saved = errno;
  if (err == NULL || *err != NULL)
    return -1;
  char *msg = NULL;
  va_list ap;
  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    msg = NULL;
  va_end (ap);
  /* A name longer than any filesystem takes is the layer's fault, not the machine's. */
  if (fault == FAULT_SYSTEM && saved == ENAMETOOLONG)
    fault = FAULT_BAD_LAYER;
  first_fault = fault;
  first_errno = fault == FAULT_SYSTEM ? saved : 0;
  berth_error (err, 0, "%s", msg ? msg : "out of memory");
  free (msg);
  return -1;
}

enum unpack_fault
unpack_fault_of (void)
{
  return first_fault;
}

int
unpack_fault_errno (void)
{
  return first_errno;
}
