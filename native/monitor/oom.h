/* Whether the kernel's OOM killer killed anything in a container's memory cgroup. */
#ifndef BERTH_MONITOR_OOM_H
#define BERTH_MONITOR_OOM_H

#include <stdbool.h>

#include "../common/error.h"

/* Reads the "oom_kill N" count of the memory cgroup at dir: from memory.events (cgroup v2), else
 * memory.oom_control (cgroup v1). Fails with ENOENT when dir has neither file. */
int oom_kill_count (const char *dir, long *count, berth_error_t *err);

/* A watch on a cgroup v2 memory.events while the container runs, for the cgroup can be gone by the
 * time the container's exit is seen: systemd removes a scope's cgroup as soon as its last process
 * died. The file is held open and polled for POLLPRI: kernfs wakes poll() waiters at once when the
 * file changes (its inotify event comes later, from a workqueue), and the OOM killer counts the kill
 * before it sends SIGKILL. (cgroup v1's memory.oom_control does not notify: no watch there.) */
struct oom_watch
{
  int fd;         /* DIR/memory.events (close-on-exec), polled for POLLPRI; -1 when not watching */
  char *path;     /* DIR/memory.events */
  long baseline;  /* the oom_kill count when the watch began */
};

void oom_watch_init (struct oom_watch *w);

/* Opens dir/memory.events and reads the baseline count. Returns 1 when watching, 0 when dir has no
 * memory.events (cgroup v1, or the cgroup is gone), -1 on error (not watching). */
int oom_watch_start (struct oom_watch *w, const char *dir, berth_error_t *err);

/* For poll() reporting POLLPRI or POLLERR on w->fd: reads the file again (which rearms the
 * notification). Returns 1 when the oom_kill count is above the baseline, else 0. When the cgroup is
 * gone (ENODEV/ENOENT) the watch is closed (w->fd is -1) and 0 returned; on any other failure it is
 * closed too (a file not read again would poll POLLPRI for ever), and -1 returned. */
int oom_watch_service (struct oom_watch *w, berth_error_t *err);

/* Takes the file's current count as the new baseline (a change that was not the container's). Returns
 * 0, or -1 on error; a cgroup gone closes the watch. */
int oom_watch_rebase (struct oom_watch *w, berth_error_t *err);

void oom_watch_close (struct oom_watch *w);

#endif
