/* berth-runtime: an OCI runtime with runc's command line (the subset berth uses). */
#ifndef BERTH_RUNTIME_RUNTIME_H
#define BERTH_RUNTIME_RUNTIME_H

#include <sys/types.h>

#include "../common/error.h"
#include "cgroups.h"
#include "spec.h"

#define DEFAULT_ROOT "/run/berth/runtime"

struct global_opts
{
  const char *root;
  int systemd_cgroup;   /* --systemd-cgroup: `create` makes the cgroup a systemd unit (cgroup v2 only) */
};

/* Each command returns the process's exit status; errors are reported through rtlog. */
int cmd_create (const struct global_opts *g, int argc, char **argv);
int cmd_start (const struct global_opts *g, int argc, char **argv);
int cmd_state (const struct global_opts *g, int argc, char **argv);
int cmd_kill (const struct global_opts *g, int argc, char **argv);
int cmd_delete (const struct global_opts *g, int argc, char **argv);
int cmd_exec (const struct global_opts *g, int argc, char **argv);
int cmd_update (const struct global_opts *g, int argc, char **argv);

/* What the container's init gets from `create` (init.c). */
struct init_ctx
{
  const struct rt_spec *spec;
  const struct cg_layout *cg;
  const char *cg_path;
  int sync_fd;        /* to report READY or the error */
  int state_dir_fd;   /* O_PATH of the state dir: the exec fifo is opened through it after pivot_root */
  int console_fd;     /* connected console socket, or -1 */
  int no_pivot;
  int userns_fd;      /* the user namespace to join just before exec, or -1 */
};

void container_init (const struct init_ctx *ctx) __attribute__ ((noreturn));

/* A path made absolute against the current directory (malloc'd). */
char *absolute_path (const char *path);

/* Waits (up to ms) until pid is gone or a zombie; 0 when it is. */
int wait_process_gone (pid_t pid, unsigned long long start, int ms);

#endif
