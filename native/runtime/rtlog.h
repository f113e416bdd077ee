/* Error reporting of berth-runtime, as runc does it: with --log, a line (text or JSON) is appended
 * to the log file and the bare message goes to stderr; without it, the formatted line goes to stderr. */
#ifndef BERTH_RUNTIME_RTLOG_H
#define BERTH_RUNTIME_RTLOG_H

#include "../common/error.h"

int rtlog_open (const char *path, const char *format, berth_error_t *err);

void rtlog_error (const char *msg);

void rtlog_warn (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* Reports err (its message, or "out of memory") and releases it. */
void rtlog_report (berth_error_t *err);

/* Fills buf with the current UTC time as RFC 3339 with nanoseconds (nanos=1) or seconds. */
void rtlog_now (char *buf, size_t len, int nanos);

#endif
