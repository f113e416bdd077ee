/* The files the monitor shares with berthd: the container's pid and its exit status. */
#ifndef BERTH_MONITOR_STATUS_H
#define BERTH_MONITOR_STATUS_H

#include <stdbool.h>
#include <sys/types.h>

#include "../common/error.h"

int read_pid_file (const char *path, pid_t *pid, berth_error_t *err);
/* Writes "<pid>\n" atomically. */
int write_pid_file (const char *path, pid_t pid, berth_error_t *err);
/* Writes {"exitCode","signal","oomKilled","finishedAt","error"} atomically, from a wait status. */
int write_exit_file (const char *path, int status, bool oom_killed, const char *error, berth_error_t *err);

#endif
