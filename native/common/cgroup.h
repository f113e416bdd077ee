#ifndef BERTH_COMMON_CGROUP_H
#define BERTH_COMMON_CGROUP_H

#include <sys/types.h>

#include "error.h"

/* The cgroup pieces berth-runtime and berth-init share. */

/* fork(), the child born in the v2 cgroup cgroup_fd when the kernel can (*born_in says whether). */
pid_t cg_fork_into (int cgroup_fd, int *born_in);

/* Writes value to dir/file in one write(2), as cgroup files take it. */
int cg_write (const char *dir, const char *file, const char *value, berth_error_t *err);

#endif
