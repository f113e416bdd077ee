/* The files the monitor shares with berthd: the container's pid and its exit status. */
#ifndef BERTH_MONITOR_STATUS_H
#define BERTH_MONITOR_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "../common/error.h"

int read_pid_file (const char *path, pid_t *pid, berth_error_t *err);
/* Writes "<pid>\n" atomically. */
int write_pid_file (const char *path, pid_t pid, berth_error_t *err);
/* Room for what exit_json writes. */
#define EXIT_JSON_MAX 512
/* Formats the exit file's line, {"exitCode","signal","oomKilled","finishedAt","error"} and "\n",
 * from a wait status into buf (EXIT_JSON_MAX bytes, NUL-terminated); returns its length. */
int exit_json (char *buf, size_t size, int status, bool oom_killed, const char *error, berth_error_t *err);
/* Writes the exit file atomically: json is what exit_json made. */
int write_exit_file (const char *path, const char *json, size_t len, berth_error_t *err);

#endif
