/* Namespaces: new ones (unshare) and joined ones (setns by path, or those of a running container). */
#ifndef BERTH_RUNTIME_NS_H
#define BERTH_RUNTIME_NS_H

#include <sys/types.h>

#include "../common/error.h"
#include "spec.h"

/* For the process that forks the container's init: joins the namespaces the spec gives a path for, then
 * unshares the new ones (the pid namespace is the next child's). A new cgroup namespace is left to the
 * init, which unshares it once it is in its cgroup. The user namespace is not joined here: its fd goes to
 * *userns_fd (-1 without one) for ns_join_user, the last step before exec, so that everything before it
 * (mounts, the pid and cgroup namespaces, oom_score_adj) is done with the host's privileges. */
int ns_enter_for_init (const struct rt_spec *spec, int *userns_fd, berth_error_t *err);

/* Every CLONE_NEW* flag of the spec's namespaces (new or joined). */
int ns_spec_flags (const struct rt_spec *spec);

/* Joins the namespaces in flags of process pid, the mount namespace last (its root becomes ours); its
 * user namespace, as above, is only opened, into *userns_fd. */
int ns_join_process (pid_t pid, int flags, int *userns_fd, berth_error_t *err);

/* Joins the user namespace *userns_fd (nothing when it is -1) and closes it. */
int ns_join_user (int *userns_fd, berth_error_t *err);

#endif
