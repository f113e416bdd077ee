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

/* Adds the caller's context to the error a callee set, keeping its errno: *err's message becomes
 * "context: the cause's message". With no error set, makes one (status 0) from the context alone. Returns
 * -1, so callers can `return berth_error_wrap (err, "sysctl %s", key);`. */
int berth_error_wrap (berth_error_t *err, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

/* Prints "prefix: msg" to f. */
void berth_error_print (FILE *f, const char *prefix, berth_error_t err);

void berth_error_release (berth_error_t *err);

#endif
