#include "mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "mountinfo.h"

static int
resolve (int rootfd, const char *path, int flags)
{
  struct open_how how = { 0 };
  how.flags = (unsigned long long) (flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd;
  do
    fd = syscall (SYS_openat2, rootfd, path, &how, sizeof (how));
  while (fd < 0 && errno == EAGAIN);
  return (int) fd;
}

int
open_in_root (int rootfd, const char *path, int create, int as_file, berth_error_t *err)
{
  int fd = resolve (rootfd, path, O_PATH);
  if (fd >= 0 || errno != ENOENT || !create)
    {
      if (fd < 0)
        return berth_error (err, errno, "open %s in the rootfs", path);
      return fd;
    }
  cleanup_free char *copy = strdup (path);
  cleanup_free char *copy2 = strdup (path);
  if (copy == NULL || copy2 == NULL)
    return berth_error (err, ENOMEM, "%s", path);
  const char *parent = dirname (copy);
  const char *base = basename (copy2);
  if (strcmp (base, "/") == 0 || strcmp (base, ".") == 0 || strcmp (base, "..") == 0)
    return berth_error (err, EINVAL, "create %s in the rootfs", path);
  cleanup_close int pfd = open_in_root (rootfd, parent, 1, 0, err);
  if (pfd < 0)
    return -1;
  if (as_file)
    {
      int f = openat (pfd, base, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0755);
      if (f < 0 && errno != EEXIST)
        return berth_error (err, errno, "create %s in the rootfs", path);
      if (f >= 0)
        close (f);
    }
  else if (mkdirat (pfd, base, 0755) < 0 && errno != EEXIST)
    return berth_error (err, errno, "mkdir %s in the rootfs", path);
  fd = resolve (rootfd, path, O_PATH);
  if (fd < 0)
    return berth_error (err, errno, "open %s in the rootfs", path);
  return fd;
}

struct mount_opts
{
  unsigned long flags;
  unsigned long propagation[4];
  int n_propagation;
  int bind;
  int recursive_ro;  /* "rro": read-only down to every mount below (mount_setattr, AT_RECURSIVE) */
  char *data;   /* the options that are not flags, comma-separated */
};

static const struct
{
  const char *name;
  int clear;
  unsigned long flag;
} flag_opts[] = {
  { "defaults", 0, 0 },           { "ro", 0, MS_RDONLY },         { "rw", 1, MS_RDONLY },          { "suid", 1, MS_NOSUID },
  { "nosuid", 0, MS_NOSUID },     { "dev", 1, MS_NODEV },         { "nodev", 0, MS_NODEV },        { "exec", 1, MS_NOEXEC },
  { "noexec", 0, MS_NOEXEC },     { "sync", 0, MS_SYNCHRONOUS },  { "async", 1, MS_SYNCHRONOUS },  { "dirsync", 0, MS_DIRSYNC },
  { "remount", 0, MS_REMOUNT },   { "mand", 0, MS_MANDLOCK },     { "nomand", 1, MS_MANDLOCK },    { "atime", 1, MS_NOATIME },
  { "noatime", 0, MS_NOATIME },   { "diratime", 1, MS_NODIRATIME }, { "nodiratime", 0, MS_NODIRATIME }, { "relatime", 0, MS_RELATIME },
  { "norelatime", 1, MS_RELATIME }, { "strictatime", 0, MS_STRICTATIME }, { "nostrictatime", 1, MS_STRICTATIME },
  { "nosymfollow", 0, MS_NOSYMFOLLOW }, { "symfollow", 1, MS_NOSYMFOLLOW },
};

static const struct
{
  const char *name;
  unsigned long flag;
} propagation_opts[] = {
  { "private", MS_PRIVATE },    { "rprivate", MS_PRIVATE | MS_REC }, { "shared", MS_SHARED },         { "rshared", MS_SHARED | MS_REC },
  { "slave", MS_SLAVE },        { "rslave", MS_SLAVE | MS_REC },     { "unbindable", MS_UNBINDABLE }, { "runbindable", MS_UNBINDABLE | MS_REC },
};

static int
parse_options (char **options, struct mount_opts *o, berth_error_t *err)
{
  memset (o, 0, sizeof (*o));
  size_t len = 0;
  for (char **p = options; p && *p; p++)
    len += strlen (*p) + 1;
  o->data = calloc (1, len + 1);
  if (o->data == NULL)
    return berth_error (err, ENOMEM, "mount options");
  for (char **p = options; p && *p; p++)
    {
      const char *opt = *p;
      int known = 0;
      if (strcmp (opt, "bind") == 0 || strcmp (opt, "rbind") == 0)
        {
          o->bind = 1;
          o->flags |= MS_BIND | (opt[0] == 'r' ? MS_REC : 0);
          continue;
        }
      if (strcmp (opt, "rro") == 0)
        {
          o->recursive_ro = 1;
          continue;
        }
      for (size_t i = 0; !known && i < sizeof (flag_opts) / sizeof (flag_opts[0]); i++)
        if (strcmp (flag_opts[i].name, opt) == 0)
          {
            known = 1;
            if (flag_opts[i].clear)
              o->flags &= ~flag_opts[i].flag;
            else
              o->flags |= flag_opts[i].flag;
          }
      for (size_t i = 0; !known && i < sizeof (propagation_opts) / sizeof (propagation_opts[0]); i++)
        if (strcmp (propagation_opts[i].name, opt) == 0)
          {
            known = 1;
            if (o->n_propagation < 4)
              o->propagation[o->n_propagation++] = propagation_opts[i].flag;
          }
      if (known || strcmp (opt, "tmpcopyup") == 0)
        continue;
      if (o->data[0])
        strcat (o->data, ",");
      strcat (o->data, opt);
    }
  return 0;
}

static void
fd_path (int fd, char *buf, size_t len)
{
  snprintf (buf, len, "/proc/self/fd/%d", fd);
}

/* The flags of a mount (as statvfs reports them) that a bind remount must keep. */
static unsigned long
flags_to_keep (const struct statvfs *sv)
{
  unsigned long f = 0;
  if (sv->f_flag & ST_NOSUID)
    f |= MS_NOSUID;
  if (sv->f_flag & ST_NODEV)
    f |= MS_NODEV;
  if (sv->f_flag & ST_NOEXEC)
    f |= MS_NOEXEC;
  return f;
}

/* The flags of the mount at fd that a bind remount must keep. */
static unsigned long
kept_flags (int fd)
{
  struct statvfs sv;
  return fstatvfs (fd, &sv) < 0 ? 0 : flags_to_keep (&sv);
}

static int
apply_propagation (int rootfd, const struct rt_mount *m, const struct mount_opts *o, berth_error_t *err)
{
  if (o->n_propagation == 0)
    return 0;
  cleanup_close int fd = open_in_root (rootfd, m->destination, 0, 0, err);
  if (fd < 0)
    return -1;
  char target[64];
  fd_path (fd, target, sizeof (target));
  for (int i = 0; i < o->n_propagation; i++)
    if (mount (NULL, target, NULL, o->propagation[i], NULL) < 0)
      return berth_error (err, errno, "set propagation of %s", m->destination);
  return 0;
}

/* "rro": the bind mount and every mount below it read-only, in one mount_setattr (Linux 5.12); a
 * kernel without it is an error, never a mount left writable below. */
static int
recursive_readonly (int top, const struct rt_mount *m, berth_error_t *err)
{
  struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
  if (mount_setattr (top, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof (attr)) < 0)
    return berth_error (err, errno, "make %s read-only recursively (mount_setattr)", m->destination);
  return 0;
}

/* An idmapped bind (Linux 5.12): a detached copy of the source (with what is below it for rbind), mapped
 * with the container's user namespace, then attached on target. A filesystem that cannot be idmapped is
 * an error, never a plain bind in its place. */
static int
bind_idmapped (const struct rt_mount *m, int target_fd, int recursive, int userns_fd, berth_error_t *err)
{
  if (userns_fd < 0)
    return berth_error (err, 0, "idmapped mount on %s without a user namespace", m->destination);
  cleanup_close int tree = open_tree (AT_FDCWD, m->source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0));
  if (tree < 0)
    return berth_error (err, errno, "copy %s for an idmapped mount (open_tree)", m->source);
  struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t) userns_fd };
  if (mount_setattr (tree, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr, sizeof (attr)) < 0)
    return berth_error (err, errno, "idmap the mount of %s for %s (mount_setattr)", m->source, m->destination);
  if (move_mount (tree, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return berth_error (err, errno, "attach the idmapped mount of %s on %s (move_mount)", m->source, m->destination);
  return 0;
}

static int
mount_bind (int rootfd, const struct rt_mount *m, const struct mount_opts *o, int userns_fd, berth_error_t *err)
{
  struct stat st;
  if (m->source == NULL)
    return berth_error (err, 0, "bind mount on %s has no source", m->destination);
  if (stat (m->source, &st) < 0)
    return berth_error (err, errno, "bind mount source %s", m->source);
  cleanup_close int fd = open_in_root (rootfd, m->destination, 1, !S_ISDIR (st.st_mode), err);
  if (fd < 0)
    return -1;
  char target[64];
  fd_path (fd, target, sizeof (target));
  if (m->idmap)
    {
      if (bind_idmapped (m, fd, (o->flags & MS_REC) != 0, userns_fd, err) < 0)
        return -1;
    }
  else if (mount (m->source, target, NULL, MS_BIND | (o->flags & MS_REC), NULL) < 0)
    return berth_error (err, errno, "bind mount %s on %s", m->source, m->destination);
  unsigned long rest = o->flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
  if (rest != 0 || o->recursive_ro)
    {
      /* The fd above is the mount point under the new mount: open the new mount's root to change it. */
      cleanup_close int top = open_in_root (rootfd, m->destination, 0, 0, err);
      if (top < 0)
        return -1;
      fd_path (top, target, sizeof (target));
      if (rest != 0 && mount (NULL, target, NULL, MS_BIND | MS_REMOUNT | rest | kept_flags (top), NULL) < 0)
        return berth_error (err, errno, "remount %s with its options", m->destination);
      if (o->recursive_ro && recursive_readonly (top, m, err) < 0)
        return -1;
    }
  return apply_propagation (rootfd, m, o, err);
}

/* cgroup v1: a tmpfs with the container's cgroup of each hierarchy bound in it; v2: the cgroup2 fs
 * (in a new cgroup namespace) or a bind of the container's cgroup. */
static int
mount_cgroup (const struct rootfs_ctx *ctx, int rootfd, const struct rt_mount *m, const struct mount_opts *o, berth_error_t *err)
{
  cleanup_close int fd = open_in_root (rootfd, m->destination, 1, 0, err);
  if (fd < 0)
    return -1;
  char target[64];
  fd_path (fd, target, sizeof (target));
  unsigned long flags = o->flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
  if (ctx->cg->v2)
    {
      const struct cg_hierarchy *h = cg_find (ctx->cg, "");
      if (ctx->new_cgroupns)
        {
          if (mount ("cgroup2", target, "cgroup2", flags, NULL) < 0)
            return berth_error (err, errno, "mount cgroup2 on %s", m->destination);
          return 0;
        }
      cleanup_free char *dir = NULL;
      if (cg_dir (h, ctx->cg_path, &dir, err) < 0)
        return -1;
      if (mount (dir, target, NULL, MS_BIND | MS_REC, NULL) < 0)
        return berth_error (err, errno, "bind mount %s on %s", dir, m->destination);
      cleanup_close int top = open_in_root (rootfd, m->destination, 0, 0, err);
      if (top < 0)
        return -1;
      fd_path (top, target, sizeof (target));
      if (flags && mount (NULL, target, NULL, MS_BIND | MS_REMOUNT | flags | kept_flags (top), NULL) < 0)
        return berth_error (err, errno, "remount %s", m->destination);
      return 0;
    }
  if (mount ("tmpfs", target, "tmpfs", flags & ~MS_RDONLY, "mode=755") < 0)
    return berth_error (err, errno, "mount tmpfs on %s", m->destination);
  cleanup_close int top = open_in_root (rootfd, m->destination, 0, 0, err);
  if (top < 0)
    return -1;
  for (size_t i = 0; i < ctx->cg->n; i++)
    {
      const struct cg_hierarchy *h = &ctx->cg->h[i];
      if (h->unified)
        continue;
      const char *name = strrchr (h->mountpoint, '/');
      name = name ? name + 1 : h->mountpoint;
      cleanup_free char *dir = NULL;
      if (cg_dir (h, ctx->cg_path, &dir, err) < 0)
        return -1;
      if (mkdirat (top, name, 0755) < 0 && errno != EEXIST)
        return berth_error (err, errno, "mkdir %s/%s", m->destination, name);
      cleanup_close int sub = openat (top, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0)
        return berth_error (err, errno, "open %s/%s", m->destination, name);
      char subpath[64];
      fd_path (sub, subpath, sizeof (subpath));
      if (mount (dir, subpath, NULL, MS_BIND | MS_REC, NULL) < 0)
        return berth_error (err, errno, "bind mount %s on %s/%s", dir, m->destination, name);
      cleanup_close int subtop = openat (top, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (subtop < 0)
        return berth_error (err, errno, "open %s/%s", m->destination, name);
      fd_path (subtop, subpath, sizeof (subpath));
      if (mount (NULL, subpath, NULL, MS_BIND | MS_REMOUNT | flags | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return berth_error (err, errno, "remount %s/%s", m->destination, name);
      /* "cpu,cpuacct" is also reachable as cpu and cpuacct. */
      if (strchr (h->controllers, ',') && strcmp (name, h->controllers) == 0)
        {
          cleanup_free char *list = strdup (h->controllers);
          char *save = NULL;
          for (char *c = list ? strtok_r (list, ",", &save) : NULL; c; c = strtok_r (NULL, ",", &save))
            if (symlinkat (name, top, c) < 0 && errno != EEXIST)
              return berth_error (err, errno, "symlink %s/%s", m->destination, c);
        }
    }
  if (flags & MS_RDONLY)
    {
      fd_path (top, target, sizeof (target));
      if (mount (NULL, target, NULL, MS_REMOUNT | flags, "mode=755") < 0)
        return berth_error (err, errno, "remount %s read-only", m->destination);
    }
  return 0;
}

static int
mount_one (const struct rootfs_ctx *ctx, int rootfd, const struct rt_mount *m, berth_error_t *err)
{
  struct mount_opts o;
  int r;
  if (parse_options (m->options, &o, err) < 0)
    return -1;
  const char *type = m->type;
  if (m->idmap && !(o.bind || (type && strcmp (type, "bind") == 0)))
    {
      free (o.data);
      return berth_error (err, 0, "mount %s: only a bind mount can be idmapped", m->destination);
    }
  if (o.bind || (type && strcmp (type, "bind") == 0))
    r = mount_bind (rootfd, m, &o, ctx->userns_fd, err);
  else if (type && strcmp (type, "cgroup") == 0)
    r = mount_cgroup (ctx, rootfd, m, &o, err);
  else
    {
      cleanup_close int fd = open_in_root (rootfd, m->destination, 1, 0, err);
      r = -1;
      if (fd >= 0)
        {
          char target[64];
          fd_path (fd, target, sizeof (target));
          if (mount (m->source ? m->source : (type ? type : "none"), target, type, o.flags, o.data[0] ? o.data : NULL) < 0)
            berth_error (err, errno, "mount %s (%s) on %s", m->source ? m->source : "none", type ? type : "no type", m->destination);
          else
            r = apply_propagation (rootfd, m, &o, err);
        }
    }
  free (o.data);
  return r;
}

struct find_mount
{
  const char *path;
  char *best;
};

static int
longest_prefix (const struct mountinfo_entry *e, void *data)
{
  struct find_mount *f = data;
  size_t n = strlen (e->mountpoint);
  int prefix = strcmp (e->mountpoint, "/") == 0 || (strncmp (f->path, e->mountpoint, n) == 0 && (f->path[n] == '/' || f->path[n] == '\0'));
  if (prefix && (f->best == NULL || strlen (f->best) <= n))
    {
      free (f->best);
      f->best = strdup (e->mountpoint);
    }
  return 0;
}

static unsigned long
root_propagation (const char *name)
{
  for (size_t i = 0; name && i < sizeof (propagation_opts) / sizeof (propagation_opts[0]); i++)
    if (strcmp (propagation_opts[i].name, name) == 0)
      return propagation_opts[i].flag;
  return 0;
}

int
rootfs_prepare (const struct rootfs_ctx *ctx, berth_error_t *err)
{
  const struct rt_spec *spec = ctx->spec;
  unsigned long prop = MS_SLAVE | MS_REC;
  if (spec->rootfs_propagation && *spec->rootfs_propagation)
    {
      prop = root_propagation (spec->rootfs_propagation);
      if (prop == 0)
        return berth_error (err, 0, "invalid rootfsPropagation %s", spec->rootfs_propagation);
    }
  if (mount (NULL, "/", NULL, prop, NULL) < 0)
    return berth_error (err, errno, "make / %s", spec->rootfs_propagation ? spec->rootfs_propagation : "rslave");
  /* pivot_root refuses a new root whose parent mount is shared. */
  struct find_mount f = { spec->rootfs, NULL };
  if (mountinfo_foreach (longest_prefix, &f, err) < 0)
    return -1;
  if (f.best && mount (NULL, f.best, NULL, MS_PRIVATE, NULL) < 0)
    {
      int saved = errno;
      free (f.best);
      return berth_error (err, saved, "make the parent mount of the rootfs private");
    }
  free (f.best);
  if (mount (spec->rootfs, spec->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
    return berth_error (err, errno, "bind mount the rootfs %s", spec->rootfs);
  cleanup_close int rootfd = open (spec->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return berth_error (err, errno, "open %s", spec->rootfs);
  int dev_bound = 0;
  for (size_t i = 0; i < spec->n_mounts; i++)
    {
      const struct rt_mount *m = &spec->mounts[i];
      if (mount_one (ctx, rootfd, m, err) < 0)
        return -1;
      if (strcmp (m->destination, "/dev") == 0 && m->type && strcmp (m->type, "bind") == 0)
        dev_bound = 1;
    }
  if (!dev_bound && devices_setup (rootfd, spec, err) < 0)
    return -1;
  cleanup_close int cwd = open_in_root (rootfd, spec->process.cwd, 1, 0, err);
  if (cwd < 0)
    return -1;
  return 0;
}

int
rootfs_pivot (const char *rootfs, int no_pivot, berth_error_t *err)
{
  if (no_pivot)
    {
      if (chdir (rootfs) < 0)
        return berth_error (err, errno, "chdir %s", rootfs);
      if (mount (rootfs, "/", NULL, MS_MOVE, NULL) < 0)
        return berth_error (err, errno, "move %s to /", rootfs);
      if (chroot (".") < 0)
        return berth_error (err, errno, "chroot %s", rootfs);
      if (chdir ("/") < 0)
        return berth_error (err, errno, "chdir /");
      return 0;
    }
  cleanup_close int oldroot = open ("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (oldroot < 0)
    return berth_error (err, errno, "open /");
  cleanup_close int newroot = open (rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (newroot < 0)
    return berth_error (err, errno, "open %s", rootfs);
  if (fchdir (newroot) < 0)
    return berth_error (err, errno, "chdir %s", rootfs);
  /* pivot_root(".", "."): the old root ends up stacked on the new one, then is detached. */
  if (syscall (SYS_pivot_root, ".", ".") < 0)
    return berth_error (err, errno, "pivot_root %s", rootfs);
  if (fchdir (oldroot) < 0)
    return berth_error (err, errno, "chdir to the old root");
  if (mount (NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
    return berth_error (err, errno, "make the old root rslave");
  if (umount2 (".", MNT_DETACH) < 0)
    return berth_error (err, errno, "unmount the old root");
  if (chdir ("/") < 0)
    return berth_error (err, errno, "chdir /");
  return 0;
}

static unsigned long
path_kept_flags (const char *path)
{
  struct statvfs sv;
  return statvfs (path, &sv) < 0 ? 0 : flags_to_keep (&sv);
}

static int
mask_path (const char *path, berth_error_t *err)
{
  if (mount ("/dev/null", path, NULL, MS_BIND, NULL) == 0)
    return 0;
  if (errno == ENOENT)
    return 0;
  if (errno != ENOTDIR)
    return berth_error (err, errno, "mask %s", path);
  /* A directory: an empty read-only tmpfs over it. */
  if (mount ("tmpfs", path, "tmpfs", MS_RDONLY, NULL) < 0)
    return berth_error (err, errno, "mask %s", path);
  return 0;
}

static int
readonly_path (const char *path, berth_error_t *err)
{
  if (mount (path, path, NULL, MS_BIND | MS_REC, NULL) < 0)
    {
      if (errno == ENOENT)
        return 0;
      return berth_error (err, errno, "bind %s read-only", path);
    }
  if (mount (NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | path_kept_flags (path), NULL) < 0)
    return berth_error (err, errno, "remount %s read-only", path);
  return 0;
}

int
rootfs_finalize (const struct rt_spec *spec, berth_error_t *err)
{
  for (char **p = spec->readonly_paths; *p; p++)
    if (readonly_path (*p, err) < 0)
      return -1;
  for (char **p = spec->masked_paths; *p; p++)
    if (mask_path (*p, err) < 0)
      return -1;
  if (spec->root_readonly && mount (NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | path_kept_flags ("/"), NULL) < 0)
    return berth_error (err, errno, "remount / read-only");
  return 0;
}

int
rootfs_bind_console (const char *slave, berth_error_t *err)
{
  cleanup_close int fd = open ("/dev/console", O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 && errno != EEXIST)
    return berth_error (err, errno, "create /dev/console");
  if (mount (slave, "/dev/console", NULL, MS_BIND, NULL) < 0)
    return berth_error (err, errno, "bind %s on /dev/console", slave);
  return 0;
}
