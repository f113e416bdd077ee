#include "state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/util.h"
#include "spec.h"

int
state_valid_id (const char *id, berth_error_t *err)
{
  if (id == NULL || *id == '\0')
    return berth_error (err, 0, "container id cannot be empty");
  if (strcmp (id, ".") == 0 || strcmp (id, "..") == 0 || strlen (id) > 1024)
    return berth_error (err, 0, "invalid container id format: %s", id);
  for (const char *p = id; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '+' || *p == '-' || *p == '.'))
      return berth_error (err, 0, "invalid container id format: %s", id);
  return 0;
}

static int
mkdir_p (const char *path, mode_t mode, berth_error_t *err)
{
  cleanup_free char *copy = strdup (path);
  if (copy == NULL)
    return berth_error (err, ENOMEM, "mkdir %s", path);
  for (char *p = copy + 1; *p; p++)
    {
      if (*p != '/')
        continue;
      *p = '\0';
      if (mkdir (copy, mode) < 0 && errno != EEXIST)
        return berth_error (err, errno, "mkdir %s", copy);
      *p = '/';
    }
  if (mkdir (copy, mode) < 0 && errno != EEXIST)
    return berth_error (err, errno, "mkdir %s", copy);
  return 0;
}

int
state_create_dir (const char *root, const char *id, char **dir, berth_error_t *err)
{
  if (state_valid_id (id, err) < 0 || mkdir_p (root, 0711, err) < 0)
    return -1;
  if (asprintf (dir, "%s/%s", root, id) < 0)
    return berth_error (err, ENOMEM, "state dir");
  if (mkdir (*dir, 0711) < 0)
    {
      int saved = errno;
      free (*dir);
      *dir = NULL;
      if (saved == EEXIST)
        return berth_error (err, 0, "container with given ID already exists: %s", id);
      return berth_error (err, saved, "mkdir %s/%s", root, id);
    }
  return 0;
}

int
state_save (const struct rt_state *st, berth_error_t *err)
{
  json_t *ns = json_array ();
  static const int flags[] = { CLONE_NEWNS, CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWPID, CLONE_NEWCGROUP, CLONE_NEWUSER };
  for (size_t i = 0; ns && i < sizeof (flags) / sizeof (flags[0]); i++)
    if (st->ns_flags & flags[i])
      json_array_append_new (ns, json_string (ns_type_name (flags[i])));
  json_t *annotations = NULL;
  if (st->annotations)
    annotations = json_loads (st->annotations, 0, NULL);
  json_t *seccomp = NULL;
  if (st->seccomp)
    seccomp = json_loads (st->seccomp, 0, NULL);
  json_t *process = NULL;
  if (st->process)
    process = json_loads (st->process, 0, NULL);
  json_t *o = json_pack ("{s:s, s:I, s:I, s:s, s:s, s:s, s:s, s:s?, s:o, s:o?, s:o?, s:o?}", "id", st->id, "pid", (json_int_t) st->pid,
                         "pid_start", (json_int_t) st->pid_start, "bundle", st->bundle, "rootfs", st->rootfs, "created", st->created,
                         "cgroup_path", st->cgroup_path, "systemd_unit", st->systemd_unit, "namespaces", ns, "annotations", annotations,
                         "seccomp", seccomp, "process", process);
  if (o == NULL)
    return berth_error (err, ENOMEM, "state.json");
  cleanup_free char *text = json_dumps (o, JSON_COMPACT);
  json_decref (o);
  if (text == NULL)
    return berth_error (err, ENOMEM, "state.json");
  cleanup_free char *path = NULL;
  if (asprintf (&path, "%s/state.json", st->dir) < 0)
    return berth_error (err, ENOMEM, "state.json");
  return write_file_atomic (path, text, strlen (text), 0600, err);
}

static int
dup_field (json_t *o, const char *key, char **out, berth_error_t *err)
{
  const char *v = json_string_value (json_object_get (o, key));
  if (v == NULL)
    return berth_error (err, 0, "corrupt state.json: no %s", key);
  *out = strdup (v);
  if (*out == NULL)
    return berth_error (err, ENOMEM, "state");
  return 0;
}

int
state_load (const char *root, const char *id, struct rt_state *st, berth_error_t *err)
{
  memset (st, 0, sizeof (*st));
  if (state_valid_id (id, err) < 0)
    return -1;
  if (asprintf (&st->dir, "%s/%s", root, id) < 0)
    return berth_error (err, ENOMEM, "state");
  cleanup_free char *path = NULL;
  if (asprintf (&path, "%s/state.json", st->dir) < 0)
    return berth_error (err, ENOMEM, "state");
  if (access (path, F_OK) < 0)
    {
      if (errno == ENOENT || errno == ENOTDIR)
        return berth_error (err, 0, "container does not exist");
      return berth_error (err, errno, "access %s", path);
    }
  json_t *o = NULL;
  if (json_load_path (path, &o, err) < 0)
    return -1;
  int r = 0;
  if (dup_field (o, "id", &st->id, err) < 0 || dup_field (o, "bundle", &st->bundle, err) < 0 || dup_field (o, "rootfs", &st->rootfs, err) < 0
      || dup_field (o, "created", &st->created, err) < 0 || dup_field (o, "cgroup_path", &st->cgroup_path, err) < 0)
    r = -1;
  if (r == 0)
    {
      st->pid = (pid_t) json_integer_value (json_object_get (o, "pid"));
      st->pid_start = (unsigned long long) json_integer_value (json_object_get (o, "pid_start"));
      size_t i;
      json_t *v;
      json_array_foreach (json_object_get (o, "namespaces"), i, v)
      {
        const char *t = json_string_value (v);
        if (t)
          st->ns_flags |= ns_flag_from_type (t);
      }
      const char *unit = json_string_value (json_object_get (o, "systemd_unit"));
      if (unit && (st->systemd_unit = strdup (unit)) == NULL)
        r = berth_error (err, ENOMEM, "state");
      json_t *a = json_object_get (o, "annotations");
      if (json_is_object (a) && json_object_size (a) > 0)
        st->annotations = json_dumps (a, JSON_COMPACT);
      json_t *sc = json_object_get (o, "seccomp");
      if (json_is_object (sc))
        st->seccomp = json_dumps (sc, JSON_COMPACT);
      json_t *pr = json_object_get (o, "process");
      if (json_is_object (pr))
        st->process = json_dumps (pr, JSON_COMPACT);
    }
  json_decref (o);
  return r;
}

void
state_free (struct rt_state *st)
{
  free (st->id);
  free (st->dir);
  free (st->bundle);
  free (st->rootfs);
  free (st->created);
  free (st->cgroup_path);
  free (st->systemd_unit);
  free (st->annotations);
  free (st->seccomp);
  free (st->process);
  memset (st, 0, sizeof (*st));
}

int
state_remove_dir (const char *dir, berth_error_t *err)
{
  cleanup_dir DIR *d = opendir (dir);
  if (d == NULL)
    {
      if (errno == ENOENT)
        return 0;
      return berth_error (err, errno, "opendir %s", dir);
    }
  struct dirent *de;
  while ((de = readdir (d)) != NULL)
    {
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      if (unlinkat (dirfd (d), de->d_name, 0) < 0 && errno != ENOENT)
        return berth_error (err, errno, "remove %s/%s", dir, de->d_name);
    }
  if (rmdir (dir) < 0 && errno != ENOENT)
    return berth_error (err, errno, "rmdir %s", dir);
  return 0;
}

unsigned long long
proc_start_time (pid_t pid, char *state_char)
{
  char path[64];
  snprintf (path, sizeof (path), "/proc/%d/stat", (int) pid);
  cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  char buf[1024];
  ssize_t n = read (fd, buf, sizeof (buf) - 1);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  /* "pid (comm) S ppid ...": comm may hold spaces and parens, so start after the last ')'. */
  char *p = strrchr (buf, ')');
  if (p == NULL || p[1] != ' ')
    return 0;
  p += 2;
  if (state_char)
    *state_char = *p;
  for (int field = 3; field < 22 && p; field++)
    {
      p = strchr (p, ' ');
      if (p)
        p++;
    }
  return p ? strtoull (p, NULL, 10) : 0;
}

enum rt_status
state_status (const struct rt_state *st)
{
  char s = 0;
  if (st->pid <= 0)
    return STATUS_STOPPED;
  unsigned long long start = proc_start_time (st->pid, &s);
  if (start == 0 || start != st->pid_start || s == 'Z' || s == 'X')
    return STATUS_STOPPED;
  cleanup_free char *fifo = NULL;
  if (asprintf (&fifo, "%s/%s", st->dir, EXEC_FIFO) < 0)
    return STATUS_RUNNING;
  if (access (fifo, F_OK) == 0)
    return STATUS_CREATED;
  return STATUS_RUNNING;
}

const char *
state_status_name (enum rt_status s)
{
  switch (s)
    {
    case STATUS_CREATED: return "created";
    case STATUS_RUNNING: return "running";
    default: return "stopped";
    }
}
