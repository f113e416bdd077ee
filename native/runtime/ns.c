#include "ns.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../common/cleanup.h"

#define MAX_NS 8

int
ns_spec_flags (const struct rt_spec *spec)
{
  int flags = 0;
  for (size_t i = 0; i < spec->n_namespaces; i++)
    flags |= spec->namespaces[i].flag;
  return flags;
}

static void
close_all (int *fds, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (fds[i] >= 0)
      close (fds[i]);
}

/* Closes *fd if open and marks it closed. */
static void
drop_fd (int *fd)
{
  close_all (fd, 1);
  *fd = -1;
}

/* setns on every fd, the mount namespace last: joining it changes how later paths resolve. */
static int
join_all (int *fds, const int *flags, const char *const *names, size_t n, berth_error_t *err)
{
  for (int pass = 0; pass < 2; pass++)
    for (size_t i = 0; i < n; i++)
      {
        if ((flags[i] == CLONE_NEWNS) != (pass == 1))
          continue;
        if (setns (fds[i], flags[i]) < 0)
          return berth_error (err, errno, "setns %s", names[i]);
      }
  return 0;
}

int
ns_enter_for_init (const struct rt_spec *spec, int *userns_fd, berth_error_t *err)
{
  *userns_fd = -1;
  int fds[MAX_NS] = { 0 }, flags[MAX_NS] = { 0 };
  const char *names[MAX_NS] = { 0 };
  size_t n = 0;
  int new_flags = 0;
  for (size_t i = 0; i < spec->n_namespaces && n < MAX_NS; i++)
    {
      const struct rt_namespace *ns = &spec->namespaces[i];
      if (ns->path == NULL)
        {
          if (ns->flag != CLONE_NEWCGROUP)
            new_flags |= ns->flag;
          continue;
        }
      int fd = open (ns->path, O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        {
          int saved = errno;
          close_all (fds, n);
          drop_fd (userns_fd);
          return berth_error (err, saved, "open %s namespace %s", ns_type_name (ns->flag), ns->path);
        }
      if (ns->flag == CLONE_NEWUSER)
        {
          *userns_fd = fd;
          continue;
        }
      fds[n] = fd;
      flags[n] = ns->flag;
      names[n] = ns->path;
      n++;
    }
  int r = join_all (fds, flags, names, n, err);
  close_all (fds, n);
  if (r < 0)
    {
      drop_fd (userns_fd);
      return -1;
    }
  if (new_flags && unshare (new_flags) < 0)
    {
      int saved = errno;
      drop_fd (userns_fd);
      return berth_error (err, saved, "unshare namespaces (flags 0x%x)", (unsigned) new_flags);
    }
  return 0;
}

int
ns_join_process (pid_t pid, int flags, int *userns_fd, berth_error_t *err)
{
  *userns_fd = -1;
  if (flags & CLONE_NEWUSER)
    {
      char path[64];
      snprintf (path, sizeof (path), "/proc/%d/ns/user", (int) pid);
      if ((*userns_fd = open (path, O_RDONLY | O_CLOEXEC)) < 0)
        return berth_error (err, errno, "open %s", path);
    }
  static const int order[] = { CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET, CLONE_NEWPID, CLONE_NEWCGROUP, CLONE_NEWNS };
  int fds[MAX_NS] = { 0 }, fl[MAX_NS] = { 0 };
  const char *names[MAX_NS] = { 0 };
  char paths[MAX_NS][64];
  size_t n = 0;
  for (size_t i = 0; i < sizeof (order) / sizeof (order[0]); i++)
    {
      if (!(flags & order[i]))
        continue;
      snprintf (paths[n], sizeof (paths[n]), "/proc/%d/ns/%s", (int) pid, ns_proc_name (order[i]));
      int fd = open (paths[n], O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        {
          int saved = errno;
          close_all (fds, n);
          drop_fd (userns_fd);
          return berth_error (err, saved, "open %s", paths[n]);
        }
      fds[n] = fd;
      fl[n] = order[i];
      names[n] = paths[n];
      n++;
    }
  int r = join_all (fds, fl, names, n, err);
  close_all (fds, n);
  if (r < 0)
    {
      drop_fd (userns_fd);
    }
  return r;
}

int
ns_join_user (int *userns_fd, berth_error_t *err)
{
  if (*userns_fd < 0)
    return 0;
  int r = setns (*userns_fd, CLONE_NEWUSER);
  int saved = errno;
  drop_fd (userns_fd);
  if (r < 0)
    return berth_error (err, saved, "setns user namespace");
  return 0;
}
