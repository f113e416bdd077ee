/* /dev of the container (when it is not bound from the host): the default devices, linux.devices,
 * and the usual symlinks. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "mounts.h"

static const struct rt_device default_devices[] = {
  { "/dev/null", 'c', 1, 3, 1, 0666, 0, 0 },    { "/dev/zero", 'c', 1, 5, 1, 0666, 0, 0 },
  { "/dev/full", 'c', 1, 7, 1, 0666, 0, 0 },    { "/dev/random", 'c', 1, 8, 1, 0666, 0, 0 },
  { "/dev/urandom", 'c', 1, 9, 1, 0666, 0, 0 }, { "/dev/tty", 'c', 5, 0, 1, 0666, 0, 0 },
};

static int
make_node (int rootfd, const struct rt_device *d, berth_error_t *err)
{
  cleanup_free char *copy = strdup (d->path);
  cleanup_free char *copy2 = strdup (d->path);
  if (copy == NULL || copy2 == NULL)
    return berth_error (err, ENOMEM, "device %s", d->path);
  cleanup_close int dir = open_in_root (rootfd, dirname (copy), 1, 0, err);
  if (dir < 0)
    return -1;
  const char *name = basename (copy2);
  mode_t type = d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
  mode_t perm = d->has_mode ? (d->mode & 07777) : 0666;
  dev_t dev = makedev ((unsigned) d->major, (unsigned) d->minor);
  if (mknodat (dir, name, type | perm, dev) < 0)
    {
      if (errno != EEXIST)
        return berth_error (err, errno, "mknod %s", d->path);
      if (unlinkat (dir, name, 0) < 0 || mknodat (dir, name, type | perm, dev) < 0)
        return berth_error (err, errno, "mknod %s", d->path);
    }
  if (fchownat (dir, name, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0)
    return berth_error (err, errno, "chown %s", d->path);
  if (fchmodat (dir, name, perm, 0) < 0)
    return berth_error (err, errno, "chmod %s", d->path);
  return 0;
}

static int
make_link (int rootfd, const char *target, const char *path, berth_error_t *err)
{
  cleanup_close int dev = open_in_root (rootfd, "/dev", 1, 0, err);
  if (dev < 0)
    return -1;
  const char *name = strrchr (path, '/') + 1;
  if (unlinkat (dev, name, 0) < 0 && errno != ENOENT)
    return berth_error (err, errno, "remove %s", path);
  if (symlinkat (target, dev, name) < 0)
    return berth_error (err, errno, "symlink %s -> %s", path, target);
  return 0;
}

int
devices_setup (int rootfd, const struct rt_spec *spec, berth_error_t *err)
{
  for (size_t i = 0; i < sizeof (default_devices) / sizeof (default_devices[0]); i++)
    {
      int overridden = 0;
      for (size_t k = 0; k < spec->n_devices; k++)
        if (strcmp (spec->devices[k].path, default_devices[i].path) == 0)
          overridden = 1;
      if (!overridden && make_node (rootfd, &default_devices[i], err) < 0)
        return -1;
    }
  for (size_t k = 0; k < spec->n_devices; k++)
    if (make_node (rootfd, &spec->devices[k], err) < 0)
      return -1;
  static const char *const links[][2] = {
    { "/proc/self/fd", "/dev/fd" },     { "/proc/self/fd/0", "/dev/stdin" }, { "/proc/self/fd/1", "/dev/stdout" },
    { "/proc/self/fd/2", "/dev/stderr" }, { "pts/ptmx", "/dev/ptmx" },
  };
  for (size_t i = 0; i < sizeof (links) / sizeof (links[0]); i++)
    if (make_link (rootfd, links[i][0], links[i][1], err) < 0)
      return -1;
  if (access ("/proc/kcore", F_OK) == 0 && make_link (rootfd, "/proc/kcore", "/dev/core", err) < 0)
    return -1;
  return 0;
}
