/* Errors for berth's C helpers, in the style of crun: a function that can fail returns a negative
 * value and fills a `berth_error_t` out-parameter with errno and a message giving the context. */
#ifndef BERTH_COMMON_ERROR_H
#define BERTH_COMMON_ERROR_H

#include <stdio.h>

typedef struct berth_error_s {
  int status;      /* errno of the failure, or 0 when it was not a syscall */
  char *msg;       /* "context: strerror(errno)" */
} *berth_error_t;

/* Sets *err (if err is non-NULL and not already set) and returns -1, so callers can
 * `return berth_error (err, errno, "open %s", path);`. */
int berth_error (berth_error_t *err, int status, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

/* Prints "prefix: msg" to f. */
void berth_error_print (FILE *f, const char *prefix, berth_error_t err);

void berth_error_release (berth_error_t *err);

#endif
