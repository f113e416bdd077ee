/* The cgroup pieces berth-runtime and berth-init share: a write of a cgroup file, and a fork whose child is
 * born in a cgroup v2 directory (clone3 with CLONE_INTO_CGROUP). */
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"

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

int
cg_write (const char *dir, const char *file, const char *value, berth_error_t *err)
{
  cleanup_free char *p = NULL;
  if (asprintf (&p, "%s/%s", dir, file) < 0)
    return berth_error (err, ENOMEM, "cgroup file");
  cleanup_close int fd = open (p, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return berth_error (err, errno, "open %s", p);
  ssize_t n;
  do
    n = write (fd, value, strlen (value));
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return berth_error (err, errno, "write %s to %s", value, p);
  return 0;
}
