/* The exit file the monitor shares with berthd (pid files: common/util.h). */
#ifndef BERTH_MONITOR_STATUS_H
#define BERTH_MONITOR_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "../common/error.h"

/* Room for what exit_json writes. */
#define EXIT_JSON_MAX 512
/* Formats the exit file's line, {"exitCode","signal","oomKilled","finishedAt","error"} and "\n",
 * from a wait status into buf (EXIT_JSON_MAX bytes, NUL-terminated); returns its length. */
int exit_json (char *buf, size_t size, int status, bool oom_killed, const char *error, berth_error_t *err);
/* Writes the exit file atomically: json is what exit_json made. */
int write_exit_file (const char *path, const char *json, size_t len, berth_error_t *err);

#endif
