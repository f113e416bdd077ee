#ifndef BERTH_COMMON_CGROUP_FORK_H
#define BERTH_COMMON_CGROUP_FORK_H

#include <sys/types.h>

/* fork(), the child born in the v2 cgroup cgroup_fd when the kernel can (*born_in says whether). */
pid_t cg_fork_into (int cgroup_fd, int *born_in);

#endif
