/* A fork whose child is born in a cgroup v2 directory (clone3 with CLONE_INTO_CGROUP), shared by
 * berth-runtime's middle process and berth-init's pod init. */
#include "cgroup-fork.h"

#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* clone3's arguments (linux/sched.h's struct clone_args, without including it beside sched.h). */
struct clone3_args
{
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};
#define BERTH_CLONE_INTO_CGROUP 0x200000000ULL

/* fork(), with the child born in the cgroup v2 directory cgroup_fd when the kernel can (clone3 with
 * CLONE_INTO_CGROUP, Linux 5.7): no write to cgroup.procs, which waits for an RCU grace period. Any
 * refusal (an older kernel, a cgroup that cannot take processes) falls back to a plain fork, and
 * *born_in says which. The child of the raw syscall runs no atfork handlers: it must only do what the
 * middle process does (syscalls, fork, _exit), as it is single-threaded and holds no lock. */
pid_t
cg_fork_into (int cgroup_fd, int *born_in)
{
  *born_in = 0;
#ifdef SYS_clone3
  if (cgroup_fd >= 0)
    {
      struct clone3_args a;
      memset (&a, 0, sizeof (a));
      a.flags = BERTH_CLONE_INTO_CGROUP;
      a.exit_signal = SIGCHLD;
      a.cgroup = (uint64_t) cgroup_fd;
      long pid = syscall (SYS_clone3, &a, sizeof (a));
      if (pid >= 0)
        {
          *born_in = 1;
          return (pid_t) pid;
        }
    }
#endif
  return fork ();
}
