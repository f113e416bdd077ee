/* Writing a layer's entries into its directory: files, directories, symlinks, hard links, devices and
 * fifos with their owners, modes, mtimes and xattrs; whiteouts as overlayfs whiteouts (0/0 character
 * devices) and opaque directories (trusted.overlay.opaque=y). A later entry replaces an earlier one at
 * the same path, as tar does. Every operation is relative to the fd of the entry's parent, reached by
 * dir_chain_walk, so nothing is written outside the layer whatever the archive says. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "unpack.h"

#define WHITEOUT_PREFIX ".wh."
#define OPAQUE_MARKER ".wh..wh..opq"
#define OVERLAY_OPAQUE_XATTR "trusted.overlay.opaque"
#define OVERLAY_XATTR_PREFIX "trusted.overlay."

struct dir_time
{
  char *path;
  struct timespec mtime;
};

struct layer_writer
{
  int root;
  struct dir_chain *chain;
  const struct layer_limits *limits;
  uint64_t entries;
  /* Directory mtimes are set last: creating their children changes them. */
  struct dir_time *dir_times;
  size_t n_dir_times, cap_dir_times;
};

static int
remember_dir_time (struct layer_writer *w, const char *path, struct timespec mtime, berth_error_t *err)
{
  if (w->n_dir_times == w->cap_dir_times)
    {
      size_t cap = w->cap_dir_times ? w->cap_dir_times * 2 : 64;
      struct dir_time *grown = realloc (w->dir_times, cap * sizeof *grown);
      if (grown == NULL)
        return unpack_fail (err, FAULT_SYSTEM, "allocate directory times");
      w->dir_times = grown;
      w->cap_dir_times = cap;
    }
  char *copy = strdup (path);
  if (copy == NULL)
    return unpack_fail (err, FAULT_SYSTEM, "allocate directory times");
  w->dir_times[w->n_dir_times++] = (struct dir_time) { copy, mtime };
  return 0;
}

/* An xattr the archive asks for, on the node `base` in `parent` (or on fd when there is one). */
static int
set_xattr (int parent, const char *base, int fd, const struct xattr *x, const char *entry, berth_error_t *err)
{
  int rc;
  if (fd >= 0)
    rc = fsetxattr (fd, x->name, x->value, x->len, 0);
  else
    {
      /* No fd for a symlink or a device node: its path through the parent's fd, which the kernel
       * resolves to that very directory. */
      char at[64 + 256];
      snprintf (at, sizeof at, "/proc/self/fd/%d/%s", parent, base);
      rc = lsetxattr (at, x->name, x->value, x->len, 0);
    }
  if (rc == 0 || errno == ENOTSUP)
    return 0; /* a filesystem without that namespace of xattrs: skipped, as containerd does */
  int fault = (errno == EINVAL || errno == ERANGE || errno == E2BIG) ? FAULT_BAD_LAYER : FAULT_SYSTEM;
  return unpack_fail (err, fault, "set xattr %s on layer entry \"%s\": %s", x->name, entry, strerror (errno));
}

/* Owner, mode, xattrs and mtime of a node just made: through fd when there is one, else by name
 * without following a symlink. */
static int
set_metadata (struct layer_writer *w, int parent, const char *base, int fd, const struct tar_entry *e, const char *rel,
              berth_error_t *err)
{
  int is_symlink = e->type == ENTRY_SYMLINK;
  int rc = fd >= 0 ? fchown (fd, e->uid, e->gid) : fchownat (parent, base, e->uid, e->gid, AT_SYMLINK_NOFOLLOW);
  if (rc < 0)
    return unpack_fail (err, FAULT_SYSTEM, "chown layer entry \"%s\": %s", e->path, strerror (errno));
  /* After chown, which clears the setuid and setgid bits. */
  if (!is_symlink && (fd >= 0 ? fchmod (fd, e->mode) : fchmodat (parent, base, e->mode, 0)) < 0)
    return unpack_fail (err, FAULT_SYSTEM, "chmod layer entry \"%s\": %s", e->path, strerror (errno));
  for (size_t i = 0; i < e->n_xattrs; i++)
    {
      const struct xattr *x = &e->xattrs[i];
      if (strncmp (x->name, OVERLAY_XATTR_PREFIX, strlen (OVERLAY_XATTR_PREFIX)) == 0)
        continue; /* only berth writes overlayfs's own attributes */
      if (is_symlink && strncmp (x->name, "user.", 5) == 0)
        continue; /* the kernel refuses user.* on symlinks */
      if (set_xattr (parent, base, fd, x, e->path, err) < 0)
        return -1;
    }
  if (e->type == ENTRY_DIR)
    return remember_dir_time (w, rel, e->mtime, err);
  struct timespec times[2] = { e->mtime, e->mtime };
  rc = fd >= 0 ? futimens (fd, times) : utimensat (parent, base, times, AT_SYMLINK_NOFOLLOW);
  if (rc < 0)
    return unpack_fail (err, FAULT_SYSTEM, "set the mtime of layer entry \"%s\": %s", e->path, strerror (errno));
  return 0;
}

static int
write_body (struct tar_reader *r, int fd, const char *entry, berth_error_t *err)
{
  for (;;)
    {
      const unsigned char *data;
      size_t len;
      int more = tar_body_chunk (r, &data, &len, err);
      if (more <= 0)
        return more;
      while (len > 0)
        {
          ssize_t n = write (fd, data, len);
          if (n < 0 && errno == EINTR)
            continue;
          if (n < 0)
            return unpack_fail (err, FAULT_SYSTEM, "write layer entry \"%s\": %s", entry, strerror (errno));
          data += n;
          len -= (size_t) n;
        }
    }
}

static int
write_file (struct layer_writer *w, struct tar_reader *r, int parent, const char *base, const struct tar_entry *e, berth_error_t *err)
{
  cleanup_close int fd = openat (parent, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return unpack_fail (err, FAULT_SYSTEM, "create layer entry \"%s\": %s", e->path, strerror (errno));
  if (write_body (r, fd, e->path, err) < 0)
    return -1;
  return set_metadata (w, parent, base, fd, e, e->path, err);
}

static int
write_dir (struct layer_writer *w, int parent, const char *base, const struct tar_entry *e, const char *rel, berth_error_t *err)
{
  if (mkdirat (parent, base, 0700) < 0 && errno != EEXIST)
    return unpack_fail (err, FAULT_SYSTEM, "create layer directory \"%s\": %s", e->path, strerror (errno));
  cleanup_close int fd = openat (parent, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return unpack_fail (err, FAULT_SYSTEM, "open layer directory \"%s\": %s", e->path, strerror (errno));
  return set_metadata (w, parent, base, fd, e, rel, err);
}

/* A hard link: its target must already be in the layer, and not be a directory. The target's parent
 * is walked like any entry's; `*parent` is walked again afterwards (the walk reuses its fds). */
static int
write_hardlink (struct layer_writer *w, const struct entry_path *own, const struct tar_entry *e, berth_error_t *err)
{
  struct entry_path target __attribute__ ((cleanup (entry_path_release))) = { 0 };
  if (entry_path_parse (&target, e->linkpath, err) < 0)
    return -1;
  if (target.n == 0)
    return unpack_fail (err, FAULT_BAD_LAYER, "hard link \"%s\" points at the layer root", e->path);
  int walked;
  if (dir_chain_walk (w->chain, target.parts, target.n - 1, 0, e->linkpath, &walked, err) < 0)
    return -1;
  cleanup_close int source_dir = fcntl (walked, F_DUPFD_CLOEXEC, 0);
  if (source_dir < 0)
    return unpack_fail (err, FAULT_SYSTEM, "dup a directory fd: %s", strerror (errno));
  const char *source = target.parts[target.n - 1];
  struct stat st;
  if (fstatat (source_dir, source, &st, AT_SYMLINK_NOFOLLOW) < 0)
    {
      if (errno == ENOENT)
        return unpack_fail (err, FAULT_BAD_LAYER, "hard link \"%s\" points at \"%s\", which is not in the layer", e->path, e->linkpath);
      return unpack_fail (err, FAULT_SYSTEM, "stat \"%s\": %s", e->linkpath, strerror (errno));
    }
  if (S_ISDIR (st.st_mode))
    return unpack_fail (err, FAULT_BAD_LAYER, "hard link \"%s\" points at a directory", e->path);
  int parent;
  if (dir_chain_walk (w->chain, own->parts, own->n - 1, 1, e->path, &parent, err) < 0)
    return -1;
  const char *base = own->parts[own->n - 1];
  if (remove_tree_at (parent, base, err) < 0)
    return -1;
  if (linkat (source_dir, source, parent, base, 0) < 0)
    return unpack_fail (err, FAULT_SYSTEM, "link \"%s\" to \"%s\": %s", e->path, e->linkpath, strerror (errno));
  return 0;
}

static int
write_node (struct layer_writer *w, int parent, const char *base, const struct tar_entry *e, berth_error_t *err)
{
  mode_t kind = e->type == ENTRY_CHAR ? S_IFCHR : e->type == ENTRY_BLOCK ? S_IFBLK : S_IFIFO;
  dev_t dev = e->type == ENTRY_FIFO ? 0 : makedev (e->devmajor, e->devminor);
  if (mknodat (parent, base, kind | e->mode, dev) < 0)
    return unpack_fail (err, FAULT_SYSTEM, "create layer entry \"%s\": %s", e->path, strerror (errno));
  return set_metadata (w, parent, base, -1, e, e->path, err);
}

/* ".wh.NAME": NAME is gone in this layer. */
static int
write_whiteout (int parent, const char *base, const struct tar_entry *e, berth_error_t *err)
{
  const char *gone = base + strlen (WHITEOUT_PREFIX);
  if (*gone == '\0' || strcmp (gone, ".") == 0 || strcmp (gone, "..") == 0)
    return unpack_fail (err, FAULT_BAD_LAYER, "layer entry \"%s\" is a whiteout of no name", e->path);
  if (remove_tree_at (parent, gone, err) < 0)
    return -1;
  if (mknodat (parent, gone, S_IFCHR, makedev (0, 0)) < 0)
    return unpack_fail (err, FAULT_SYSTEM, "create the whiteout for \"%s\": %s", e->path, strerror (errno));
  return 0;
}

static int
write_entry (struct layer_writer *w, struct tar_reader *r, const struct tar_entry *e, berth_error_t *err)
{
  if (++w->entries > w->limits->max_entries)
    return unpack_fail (err, FAULT_LIMIT, "layer has more than %llu entries (image.max_layer_entries)",
                        (unsigned long long) w->limits->max_entries);
  struct entry_path path __attribute__ ((cleanup (entry_path_release))) = { 0 };
  if (entry_path_parse (&path, e->path, err) < 0)
    return -1;
  if (path.n == 0)
    return e->type == ENTRY_DIR ? set_metadata (w, -1, NULL, w->root, e, "", err) : 0;

  /* A whiteout is one by its name, whatever its type says. */
  const char *base = path.parts[path.n - 1];
  int whiteout = strncmp (base, WHITEOUT_PREFIX, strlen (WHITEOUT_PREFIX)) == 0;
  if (e->type == ENTRY_HARDLINK && !whiteout)
    return write_hardlink (w, &path, e, err);
  int parent;
  if (dir_chain_walk (w->chain, path.parts, path.n - 1, 1, e->path, &parent, err) < 0)
    return -1;
  if (strcmp (base, OPAQUE_MARKER) == 0)
    {
      if (fsetxattr (parent, OVERLAY_OPAQUE_XATTR, "y", 1, 0) < 0)
        return unpack_fail (err, FAULT_SYSTEM, "mark \"%s\" opaque: %s", e->path, strerror (errno));
      return 0;
    }
  if (whiteout)
    return write_whiteout (parent, base, e, err);

  /* What is there already goes, except a directory that stays a directory (tar merges those). */
  struct stat st;
  int keep = e->type == ENTRY_DIR && fstatat (parent, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR (st.st_mode);
  if (!keep && remove_tree_at (parent, base, err) < 0)
    return -1;

  /* The relative path of the entry, for the directory times: the components joined again. */
  switch (e->type)
    {
    case ENTRY_DIR:
      {
        cleanup_free char *rel = NULL;
        size_t len = 0;
        for (size_t i = 0; i < path.n; i++)
          len += strlen (path.parts[i]) + 1;
        rel = malloc (len + 1);
        if (rel == NULL)
          return unpack_fail (err, FAULT_SYSTEM, "allocate a path");
        rel[0] = '\0';
        for (size_t i = 0; i < path.n; i++)
          strcat (strcat (rel, i ? "/" : ""), path.parts[i]);
        return write_dir (w, parent, base, e, rel, err);
      }
    case ENTRY_FILE:
      return write_file (w, r, parent, base, e, err);
    case ENTRY_SYMLINK:
      if (symlinkat (e->linkpath, parent, base) < 0)
        return unpack_fail (err, FAULT_SYSTEM, "create the symlink \"%s\": %s", e->path, strerror (errno));
      return set_metadata (w, parent, base, -1, e, e->path, err);
    case ENTRY_CHAR:
    case ENTRY_BLOCK:
    case ENTRY_FIFO:
      return write_node (w, parent, base, e, err);
    default:
      return unpack_fail (err, FAULT_BAD_LAYER, "layer entry \"%s\" has an unsupported type '%c'", e->path, e->typeflag);
    }
}

/* Directory mtimes, last to first. A directory replaced since (or gone) is skipped: the walk never
 * follows a symlink, and only a directory gets a directory's time. */
static void
apply_dir_times (struct layer_writer *w)
{
  for (size_t i = w->n_dir_times; i-- > 0;)
    {
      struct dir_time *d = &w->dir_times[i];
      struct timespec times[2] = { d->mtime, d->mtime };
      if (d->path[0] == '\0')
        {
          futimens (w->root, times);
          continue;
        }
      berth_error_t ignored = NULL;
      struct entry_path p __attribute__ ((cleanup (entry_path_release))) = { 0 };
      int parent;
      struct stat st;
      if (entry_path_parse (&p, d->path, &ignored) == 0 && p.n > 0
          && dir_chain_walk (w->chain, p.parts, p.n - 1, 0, d->path, &parent, &ignored) == 0
          && fstatat (parent, p.parts[p.n - 1], &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR (st.st_mode))
        utimensat (parent, p.parts[p.n - 1], times, AT_SYMLINK_NOFOLLOW);
      berth_error_release (&ignored);
    }
}

static void
writer_release (struct layer_writer *w)
{
  dir_chain_free (w->chain);
  for (size_t i = 0; i < w->n_dir_times; i++)
    free (w->dir_times[i].path);
  free (w->dir_times);
}

int
unpack_layer (const struct blob_source *src, const struct blob_copy *copy, const char *media_type, int target_fd, const struct layer_limits *limits,
              struct layer_result *result, berth_error_t *err)
{
  struct layer_stream *stream = NULL;
  struct tar_reader *reader = NULL;
  struct layer_writer w = { .root = target_fd, .limits = limits };
  int rc = -1;
  if (layer_stream_open (&stream, src, copy, media_type, limits->max_bytes, err) < 0 || tar_reader_new (&reader, stream, err) < 0
      || dir_chain_new (&w.chain, target_fd, err) < 0)
    goto out;
  for (;;)
    {
      const struct tar_entry *e;
      int more = tar_next (reader, &e, err);
      if (more < 0)
        goto out;
      if (more == 0)
        break;
      if (write_entry (&w, reader, e, err) < 0)
        goto out;
    }
  apply_dir_times (&w);
  if (tar_drain (reader, err) < 0)
    goto out;
  char hex[65];
  layer_stream_digest (stream, hex, &result->size);
  snprintf (result->diff_id, sizeof result->diff_id, "sha256:%s", hex);
  result->entries = w.entries;
  if (copy)
    {
      if (layer_stream_blob_digest (stream, hex, &result->blob_size, err) < 0)
        goto out;
      snprintf (result->blob_digest, sizeof result->blob_digest, "sha256:%s", hex);
    }
  rc = 0;
out:
  writer_release (&w);
  tar_reader_free (reader);
  layer_stream_free (stream);
  return rc;
}
