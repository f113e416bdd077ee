/* The container process's own settings, applied in the process itself just before it execs:
 * rlimits, oom_score_adj, hostname, sysctls, user and groups, capabilities, no_new_privs, seccomp,
 * cwd, env. process_prepare does whatever can fail on the spec's content (so `create` reports it);
 * process_exec applies the rest and execs. */
#ifndef BERTH_RUNTIME_PROCESS_H
#define BERTH_RUNTIME_PROCESS_H

#include <jansson.h>

#include "../common/error.h"
#include "seccomp.h"
#include "spec.h"

struct exec_plan
{
  const struct rt_process *p;
  char *path;             /* args[0] found in the container's PATH */
  char **env;             /* process.env, with HOME added from /etc/passwd when missing */
  struct rt_seccomp *seccomp;
};

int process_set_rlimits (const struct rt_process *p, berth_error_t *err);
int process_set_oom_score_adj (const struct rt_process *p, berth_error_t *err);
int process_set_hostname (const char *hostname, berth_error_t *err);
int process_apply_sysctls (const struct rt_spec *spec, berth_error_t *err);

/* In the container's root: finds the binary, HOME, compiles seccomp, and chdirs to cwd. */
int process_prepare (const struct rt_process *p, json_t *seccomp, struct exec_plan *plan, berth_error_t *err);

/* The AppArmor profile for execve, the user namespace (*userns_fd, -1 for none: ns_join_user), seccomp,
 * capabilities, user, no_new_privs, umask, then execve. Returns only on failure. */
int process_exec (struct exec_plan *plan, int *userns_fd, berth_error_t *err);

void exec_plan_free (struct exec_plan *plan);

#endif
