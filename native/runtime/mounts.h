/* The container's filesystem: propagation of /, the rootfs bind, the spec's mounts in order (paths
 * resolved inside the rootfs, never following a symlink out of it), /dev, pivot_root, then masked and
 * read-only paths and a read-only root. */
#ifndef BERTH_RUNTIME_MOUNTS_H
#define BERTH_RUNTIME_MOUNTS_H

#include "../common/error.h"
#include "cgroups.h"
#include "spec.h"

struct rootfs_ctx
{
  const struct rt_spec *spec;
  const struct cg_layout *cg;
  const char *cg_path;
  int new_cgroupns;
  int userns_fd;      /* the container's user namespace, for idmapped mounts; -1 without one */
};

/* Before pivot_root (in the container's new mount namespace). */
int rootfs_prepare (const struct rootfs_ctx *ctx, berth_error_t *err);

int rootfs_pivot (const char *rootfs, int no_pivot, berth_error_t *err);

/* After pivot_root: masked paths, read-only paths, read-only root. */
int rootfs_finalize (const struct rt_spec *spec, berth_error_t *err);

/* Binds the pty slave on /dev/console (after pivot_root). */
int rootfs_bind_console (const char *slave, berth_error_t *err);

/* Creates the missing components of PATH inside the directory rootfd (directories, and the last one a
 * file when as_file) and returns an O_PATH fd of it, resolved as if rootfd were /. */
int open_in_root (int rootfd, const char *path, int create, int as_file, berth_error_t *err);

/* devices.c: the default devices, linux.devices and the /dev symlinks, in the rootfs. */
int devices_setup (int rootfd, const struct rt_spec *spec, berth_error_t *err);

#endif
