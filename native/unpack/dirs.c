/* Entry paths and the directories of the layer. Hostile names never escape the layer: a name is split
 * into components (absolute names, ".." and NUL bytes are refused), and an entry's parent is reached
 * from the layer root one component at a time with O_NOFOLLOW, so a parent that is a symlink (even
 * one pointing inside the layer) is refused. Everything after that is done relative to the parent's
 * fd, with the entry's last component only. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "unpack.h"

/* Deeper than any real image; a bound on the directories the walk holds open. */
#define MAX_DEPTH 512

struct dir_chain
{
  int root;
  size_t depth;
  char *names[MAX_DEPTH];
  int fds[MAX_DEPTH];
};

int
entry_path_parse (struct entry_path *p, const char *name, berth_error_t *err)
{
  memset (p, 0, sizeof *p);
  if (name[0] == '/')
    return unpack_fail (err, FAULT_BAD_LAYER, "layer entry \"%s\" is an absolute path", name);
  p->buf = strdup (name);
  p->parts = calloc (strlen (name) / 2 + 1, sizeof *p->parts);
  if (p->buf == NULL || p->parts == NULL)
    return unpack_fail (err, FAULT_SYSTEM, "allocate an entry path");
  char *save = NULL;
  for (char *part = strtok_r (p->buf, "/", &save); part; part = strtok_r (NULL, "/", &save))
    {
      if (strcmp (part, ".") == 0)
        continue;
      if (strcmp (part, "..") == 0)
        return unpack_fail (err, FAULT_BAD_LAYER, "layer entry \"%s\" contains \"..\"", name);
      p->parts[p->n++] = part;
    }
  if (p->n > MAX_DEPTH)
    return unpack_fail (err, FAULT_BAD_LAYER, "layer entry \"%.200s...\" is nested more than %d deep", name, MAX_DEPTH);
  return 0;
}

void
entry_path_release (struct entry_path *p)
{
  free (p->buf);
  free (p->parts);
  memset (p, 0, sizeof *p);
}

int
dir_chain_new (struct dir_chain **out, int root_fd, berth_error_t *err)
{
  struct dir_chain *c = calloc (1, sizeof *c);
  if (c == NULL)
    return unpack_fail (err, FAULT_SYSTEM, "allocate the directory walk");
  c->root = root_fd;
  *out = c;
  return 0;
}

static void
truncate_chain (struct dir_chain *c, size_t depth)
{
  while (c->depth > depth)
    {
      c->depth--;
      close (c->fds[c->depth]);
      free (c->names[c->depth]);
    }
}

void
dir_chain_free (struct dir_chain *c)
{
  if (c == NULL)
    return;
  truncate_chain (c, 0);
  free (c);
}

/* Why the component `parts[i]` could not be opened as a directory, as a message naming the entry. */
static int
walk_error (int parent, char *const *parts, size_t i, int create, const char *entry, int open_errno, berth_error_t *err)
{
  struct stat st;
  char where[512] = "";
  for (size_t k = 0; k <= i; k++)
    {
      size_t used = strlen (where);
      snprintf (where + used, sizeof where - used, "%s%s", k ? "/" : "", parts[k]);
    }
  if (fstatat (parent, parts[i], &st, AT_SYMLINK_NOFOLLOW) == 0)
    {
      if (S_ISLNK (st.st_mode))
        return unpack_fail (err, FAULT_BAD_LAYER, "layer entry \"%s\" goes through the symlink \"%s\"", entry, where);
      if (!S_ISDIR (st.st_mode))
        return unpack_fail (err, FAULT_BAD_LAYER, "layer entry \"%s\" has a parent \"%s\" that is not a directory", entry, where);
    }
  else if (errno == ENOENT && !create)
    return unpack_fail (err, FAULT_BAD_LAYER, "layer entry \"%s\" needs \"%s\", which is not in the layer", entry, where);
  errno = open_errno;
  return unpack_fail (err, FAULT_SYSTEM, "open the directory \"%s\" of layer entry \"%s\": %s", where, entry, strerror (open_errno));
}

static int
open_component (int parent, const char *name, int create)
{
  int fd = openat (parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0 || errno != ENOENT || !create)
    return fd;
  if (mkdirat (parent, name, 0755) < 0 && errno != EEXIST)
    return -1;
  return openat (parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

int
dir_chain_walk (struct dir_chain *c, char *const *parts, size_t n, int create, const char *entry, int *fd, berth_error_t *err)
{
  size_t common = 0;
  while (common < c->depth && common < n && strcmp (c->names[common], parts[common]) == 0)
    common++;
  truncate_chain (c, common);
  for (size_t i = common; i < n; i++)
    {
      int parent = i == 0 ? c->root : c->fds[i - 1];
      int child = open_component (parent, parts[i], create);
      if (child < 0)
        return walk_error (parent, parts, i, create, entry, errno, err);
      c->names[i] = strdup (parts[i]);
      if (c->names[i] == NULL)
        {
          close (child);
          return unpack_fail (err, FAULT_SYSTEM, "allocate a directory name");
        }
      c->fds[i] = child;
      c->depth = i + 1;
    }
  *fd = n == 0 ? c->root : c->fds[n - 1];
  return 0;
}

int
remove_tree_at (int dir_fd, const char *name, berth_error_t *err)
{
  struct stat st;
  if (fstatat (dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : unpack_fail (err, FAULT_SYSTEM, "stat \"%s\": %s", name, strerror (errno));
  if (!S_ISDIR (st.st_mode))
    {
      if (unlinkat (dir_fd, name, 0) < 0 && errno != ENOENT)
        return unpack_fail (err, FAULT_SYSTEM, "remove \"%s\": %s", name, strerror (errno));
      return 0;
    }
  int fd = openat (dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return unpack_fail (err, FAULT_SYSTEM, "open \"%s\": %s", name, strerror (errno));
  cleanup_dir DIR *dir = fdopendir (fd);
  if (dir == NULL)
    {
      close (fd);
      return unpack_fail (err, FAULT_SYSTEM, "read \"%s\": %s", name, strerror (errno));
    }
  for (struct dirent *de = readdir (dir); de; de = readdir (dir))
    {
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      if (remove_tree_at (dirfd (dir), de->d_name, err) < 0)
        return -1;
    }
  if (unlinkat (dir_fd, name, AT_REMOVEDIR) < 0)
    return unpack_fail (err, FAULT_SYSTEM, "remove the directory \"%s\": %s", name, strerror (errno));
  return 0;
}
