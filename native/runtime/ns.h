/* Namespaces: new ones (unshare) and joined ones (setns by path, or those of a running container). */
#ifndef BERTH_RUNTIME_NS_H
#define BERTH_RUNTIME_NS_H

#include <sys/types.h>

#include "../common/error.h"
#include "spec.h"

/* For the process that forks the container's init: joins the namespaces the spec gives a path for, then
 * unshares the new ones (the pid namespace is the next child's). A new cgroup namespace is left to the
 * init, which unshares it once it is in its cgroup. */
int ns_enter_for_init (const struct rt_spec *spec, berth_error_t *err);

/* Every CLONE_NEW* flag of the spec's namespaces (new or joined). */
int ns_spec_flags (const struct rt_spec *spec);

/* Joins the namespaces in flags of process pid, the mount namespace last (its root becomes ours). */
int ns_join_process (pid_t pid, int flags, berth_error_t *err);

#endif
