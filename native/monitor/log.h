/* The CRI container log format: "<RFC3339Nano time> <stdout|stderr> <P|F> <content>\n", one record
 * per line of output; a line longer than the buffer is split into P(artial) records ending with F. */
#ifndef BERTH_MONITOR_LOG_H
#define BERTH_MONITOR_LOG_H

#include <stddef.h>

#include "../common/error.h"

#define LOG_LINE_MAX 16384

struct log_stream
{
  const char *name;          /* "stdout" or "stderr" */
  char buf[LOG_LINE_MAX];
  size_t len;
};

int log_open (const char *path, berth_error_t *err);
/* Feeds bytes read from a stream; writes complete records to fd. */
int log_feed (int fd, struct log_stream *s, const char *data, size_t len, berth_error_t *err);
/* Writes what is left of an unterminated last line, as a final record. */
int log_flush (int fd, struct log_stream *s, berth_error_t *err);

#endif
