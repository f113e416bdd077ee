#ifndef BERTH_COMMON_UTIL_H
#define BERTH_COMMON_UTIL_H

#include <stddef.h>
#include <sys/types.h>

#include "error.h"

/* write(2) until all of buf is written, retrying on EINTR and short writes. */
int safe_write (int fd, const void *buf, size_t len, berth_error_t *err);

/* Reads all of fd into a NUL-terminated malloc'd buffer. */
int read_all_fd (int fd, const char *what, char **out, size_t *len, berth_error_t *err);

/* Writes path atomically: a temp file beside it, fsync, rename, fsync of the directory. */
int write_file_atomic (const char *path, const void *data, size_t len, mode_t mode, berth_error_t *err);

/* Pid files as runc writes them: the decimal pid, no newline, written atomically. */
int write_pid_file (const char *path, pid_t pid, berth_error_t *err);
/* Reads a pid file; an empty file or one without a positive number is an error. */
int read_pid_file (const char *path, pid_t *pid, berth_error_t *err);

#endif
