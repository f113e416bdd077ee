/* Whether the kernel's OOM killer killed anything in a container's memory cgroup. */
#ifndef BERTH_MONITOR_OOM_H
#define BERTH_MONITOR_OOM_H

#include "../common/error.h"

/* Reads the "oom_kill N" count of the memory cgroup at dir: from memory.events (cgroup v2), else
 * memory.oom_control (cgroup v1). Fails with ENOENT when dir has neither file. */
int oom_kill_count (const char *dir, long *count, berth_error_t *err);

#endif
