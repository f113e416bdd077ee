/* The container's init, forked by `create` in the container's namespaces and cgroup: sets up the
 * rootfs and the process, reports READY, waits on the exec fifo for `start`, then execs. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "console.h"
#include "mounts.h"
#include "process.h"
#include "runtime.h"
#include "state.h"
#include "sync.h"

static int
setup (const struct init_ctx *ctx, struct exec_plan *plan, berth_error_t *err)
{
  const struct rt_spec *spec = ctx->spec;
  const struct rt_namespace *cgns = spec_namespace (spec, CLONE_NEWCGROUP);
  umask (022);
  if (cgns && cgns->path == NULL && unshare (CLONE_NEWCGROUP) < 0)
    return berth_error (err, errno, "unshare the cgroup namespace");
  if (process_set_oom_score_adj (&spec->process, err) < 0)
    return -1;
  struct rootfs_ctx rctx = { spec, ctx->cg, ctx->cg_path, cgns != NULL && cgns->path == NULL, ctx->userns_fd };
  if (rootfs_prepare (&rctx, err) < 0 || rootfs_pivot (spec->rootfs, ctx->no_pivot, err) < 0)
    return berth_error_wrap (err, "the container's root filesystem");
  if (spec->process.terminal)
    {
      cleanup_free char *slave_path = NULL;
      cleanup_close int slave = console_create (ctx->console_fd, &slave_path, err);
      if (slave < 0 || rootfs_bind_console (slave_path, err) < 0 || console_attach (slave, err) < 0)
        return berth_error_wrap (err, "the container's terminal");
      close (ctx->console_fd);
    }
  if (process_set_hostname (spec->hostname, err) < 0 || process_apply_sysctls (spec, err) < 0 || rootfs_finalize (spec, err) < 0
      || process_set_rlimits (&spec->process, err) < 0)
    return -1;
  return process_prepare (&spec->process, spec->seccomp, plan, err);
}

void
container_init (const struct init_ctx *ctx)
{
  berth_error_t err = NULL;
  struct exec_plan plan;
  memset (&plan, 0, sizeof (plan));
  if (setup (ctx, &plan, &err) < 0)
    sync_fail (ctx->sync_fd, &err);
  if (sync_send (ctx->sync_fd, SYNC_READY, 0, NULL, &err) < 0)
    _exit (1);
  close (ctx->sync_fd);
  /* Blocks until `start` opens the fifo for reading. */
  int fifo = openat (ctx->state_dir_fd, EXEC_FIFO, O_WRONLY | O_CLOEXEC);
  if (fifo < 0)
    {
      fprintf (stderr, "berth-runtime: open the exec fifo: %s\n", strerror (errno));
      _exit (1);
    }
  if (write (fifo, "0", 1) != 1)
    {
      fprintf (stderr, "berth-runtime: write the exec fifo: %s\n", strerror (errno));
      _exit (1);
    }
  close (fifo);
  close (ctx->state_dir_fd);
  /* From the user namespace on, the process's privileges are only those of the container's. */
  int userns_fd = ctx->userns_fd;
  process_exec (&plan, &userns_fd, &err);
  fprintf (stderr, "berth-runtime: %s\n", err && err->msg ? err->msg : "exec failed");
  _exit (127);
}
