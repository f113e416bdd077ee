#include "cgroups.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/util.h"
#include "mountinfo.h"

static const char *const v1_controllers[] = {
  "cpuset", "cpu", "cpuacct", "blkio", "memory", "devices", "freezer", "net_cls", "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc", NULL,
};

static int
known_controller (const char *opt)
{
  if (strncmp (opt, "name=", 5) == 0)
    return 1;
  for (int i = 0; v1_controllers[i]; i++)
    if (strcmp (v1_controllers[i], opt) == 0)
      return 1;
  return 0;
}

struct layout_scan
{
  struct cg_layout *l;
  berth_error_t *err;
  int failed;
};

static int
has_hierarchy (const struct cg_layout *l, const char *controllers, int unified)
{
  for (size_t i = 0; i < l->n; i++)
    if (l->h[i].unified == unified && strcmp (l->h[i].controllers, controllers) == 0)
      return 1;
  return 0;
}

static int
scan_mount (const struct mountinfo_entry *e, void *data)
{
  struct layout_scan *s = data;
  int unified = strcmp (e->fstype, "cgroup2") == 0;
  if (!unified && strcmp (e->fstype, "cgroup") != 0)
    return 0;
  if (strcmp (e->root, "/") != 0)
    return 0; /* a bind of part of a hierarchy: the hierarchy's root is elsewhere */
  char controllers[256] = "";
  if (!unified)
    {
      cleanup_free char *opts = strdup (e->super_options);
      if (opts == NULL)
        {
          s->failed = berth_error (s->err, ENOMEM, "cgroup layout");
          return 1;
        }
      char *save = NULL;
      for (char *o = strtok_r (opts, ",", &save); o; o = strtok_r (NULL, ",", &save))
        if (known_controller (o) && strlen (controllers) + strlen (o) + 2 < sizeof (controllers))
          {
            if (controllers[0])
              strcat (controllers, ",");
            strcat (controllers, o);
          }
      if (controllers[0] == '\0')
        return 0;
    }
  if (has_hierarchy (s->l, controllers, unified) || s->l->n >= CG_MAX_HIERARCHIES)
    return 0;
  struct cg_hierarchy *h = &s->l->h[s->l->n];
  h->mountpoint = strdup (e->mountpoint);
  h->controllers = strdup (controllers);
  h->unified = unified;
  if (h->mountpoint == NULL || h->controllers == NULL)
    {
      free (h->mountpoint);
      free (h->controllers);
      s->failed = berth_error (s->err, ENOMEM, "cgroup layout");
      return 1;
    }
  s->l->n++;
  return 0;
}

int
cg_layout_load (struct cg_layout *l, berth_error_t *err)
{
  memset (l, 0, sizeof (*l));
  struct layout_scan s = { l, err, 0 };
  if (mountinfo_foreach (scan_mount, &s, err) < 0 || s.failed)
    return -1;
  int v1 = 0;
  for (size_t i = 0; i < l->n; i++)
    if (!l->h[i].unified)
      v1 = 1;
  if (l->n == 0)
    return berth_error (err, 0, "no cgroup hierarchy is mounted");
  l->v2 = !v1;
  return 0;
}

void
cg_layout_free (struct cg_layout *l)
{
  for (size_t i = 0; i < l->n; i++)
    {
      free (l->h[i].mountpoint);
      free (l->h[i].controllers);
    }
  memset (l, 0, sizeof (*l));
}

int
cg_normalize_path (const char *spec_path, const char *id, char **out, berth_error_t *err)
{
  cleanup_free char *raw = NULL;
  if (spec_path == NULL || *spec_path == '\0')
    {
      if (asprintf (&raw, "/%s", id) < 0)
        return berth_error (err, ENOMEM, "cgroup path");
    }
  else if (asprintf (&raw, "%s%s", spec_path[0] == '/' ? "" : "/", spec_path) < 0)
    return berth_error (err, ENOMEM, "cgroup path");
  /* Clean it: no empty, "." or ".." components, no trailing slash. */
  char *clean = malloc (strlen (raw) + 2);
  if (clean == NULL)
    return berth_error (err, ENOMEM, "cgroup path");
  clean[0] = '\0';
  char *save = NULL;
  for (char *c = strtok_r (raw, "/", &save); c; c = strtok_r (NULL, "/", &save))
    {
      if (strcmp (c, ".") == 0)
        continue;
      if (strcmp (c, "..") == 0)
        {
          free (clean);
          return berth_error (err, 0, "invalid cgroupsPath %s: \"..\" is not allowed", spec_path);
        }
      strcat (clean, "/");
      strcat (clean, c);
    }
  if (clean[0] == '\0')
    {
      free (clean);
      return berth_error (err, 0, "invalid cgroupsPath %s: the root cgroup cannot be a container's", spec_path);
    }
  *out = clean;
  return 0;
}

const struct cg_hierarchy *
cg_find (const struct cg_layout *l, const char *controller)
{
  for (size_t i = 0; i < l->n; i++)
    {
      if (l->v2)
        {
          if (l->h[i].unified)
            return &l->h[i];
          continue;
        }
      if (l->h[i].unified)
        continue;
      const char *c = l->h[i].controllers;
      size_t n = strlen (controller);
      while (c && *c)
        {
          if (strncmp (c, controller, n) == 0 && (c[n] == ',' || c[n] == '\0'))
            return &l->h[i];
          c = strchr (c, ',');
          if (c)
            c++;
        }
    }
  return NULL;
}

int
cg_dir (const struct cg_hierarchy *h, const char *path, char **out, berth_error_t *err)
{
  if (asprintf (out, "%s%s", h->mountpoint, path) < 0)
    return berth_error (err, ENOMEM, "cgroup dir");
  return 0;
}

static int
cg_read (const char *dir, const char *file, char **out, berth_error_t *err)
{
  cleanup_free char *p = NULL;
  if (asprintf (&p, "%s/%s", dir, file) < 0)
    return berth_error (err, ENOMEM, "cgroup file");
  cleanup_close int fd = open (p, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return berth_error (err, errno, "open %s", p);
  return read_all_fd (fd, p, out, NULL, err);
}

/* A new cpuset cgroup starts with no cpus and no mems: give it its parent's. */
static int
cpuset_inherit (const char *dir, berth_error_t *err)
{
  static const char *const files[] = { "cpuset.cpus", "cpuset.mems" };
  cleanup_free char *parent = strdup (dir);
  if (parent == NULL)
    return berth_error (err, ENOMEM, "cpuset");
  char *slash = strrchr (parent, '/');
  if (slash == NULL)
    return 0;
  *slash = '\0';
  for (size_t i = 0; i < 2; i++)
    {
      cleanup_free char *mine = NULL;
      cleanup_free char *theirs = NULL;
      if (cg_read (dir, files[i], &mine, err) < 0)
        return -1;
      if (strspn (mine, " \n") != strlen (mine))
        continue;
      if (cg_read (parent, files[i], &theirs, err) < 0 || cg_write (dir, files[i], theirs, err) < 0)
        return -1;
    }
  return 0;
}

static int
has_word (const char *list, const char *word)
{
  size_t n = strlen (word);
  for (const char *p = list; (p = strstr (p, word)) != NULL; p += n)
    if ((p == list || p[-1] == ' ' || p[-1] == '\n') && (p[n] == '\0' || p[n] == ' ' || p[n] == '\n'))
      return 1;
  return 0;
}

/* Appends word to the space-separated list *out unless it is there. */
static int
add_word (char **out, const char *word, size_t len, berth_error_t *err)
{
  char buf[64];
  if (len == 0 || len >= sizeof (buf))
    return 0;
  memcpy (buf, word, len);
  buf[len] = '\0';
  if (*out && has_word (*out, buf))
    return 0;
  char *next = NULL;
  if (asprintf (&next, "%s%s%s", *out ? *out : "", *out ? " " : "", buf) < 0)
    return berth_error (err, ENOMEM, "cgroup controllers");
  free (*out);
  *out = next;
  return 0;
}

static int
nonempty_string (json_t *obj, const char *key)
{
  const char *s = json_string_value (json_object_get (obj, key));
  return s != NULL && *s != '\0';
}

int
cg_needed_controllers (json_t *resources, char **out, berth_error_t *err)
{
  *out = NULL;
  static const char *const always[] = { "cpu", "memory", "pids" };
  for (size_t i = 0; i < 3; i++)
    if (add_word (out, always[i], strlen (always[i]), err) < 0)
      return -1;
  json_t *cpu = json_object_get (resources, "cpu");
  if ((nonempty_string (cpu, "cpus") || nonempty_string (cpu, "mems")) && add_word (out, "cpuset", 6, err) < 0)
    return -1;
  json_t *blkio = json_object_get (resources, "blockIO");
  if (json_is_object (blkio) && json_object_size (blkio) > 0 && add_word (out, "io", 2, err) < 0)
    return -1;
  if (json_array_size (json_object_get (resources, "hugepageLimits")) > 0 && add_word (out, "hugetlb", 7, err) < 0)
    return -1;
  const char *key;
  json_t *value;
  json_object_foreach (json_object_get (resources, "unified"), key, value)
  {
    /* "memory.high" needs memory; "cgroup.*" files are the core's, not a controller's. */
    const char *dot = strchr (key, '.');
    if (dot == NULL || (dot - key == 6 && strncmp (key, "cgroup", 6) == 0))
      continue;
    if (add_word (out, key, (size_t) (dot - key), err) < 0)
      return -1;
  }
  return 0;
}

/* On cgroup v2, lets the children of dir use the needed controllers, one by one, skipping those
 * already enabled. strict: a controller dir does not have is an error (a pure v2 host), else it is
 * skipped (the unified hierarchy of a hybrid host, where v1 serves the others). */
static int
delegate (const char *dir, const char *needed, int strict, berth_error_t *err)
{
  cleanup_free char *avail = NULL;
  cleanup_free char *enabled = NULL;
  cleanup_free char *want = strdup (needed);
  if (want == NULL)
    return berth_error (err, ENOMEM, "cgroup controllers");
  if (cg_read (dir, "cgroup.controllers", &avail, err) < 0 || cg_read (dir, "cgroup.subtree_control", &enabled, err) < 0)
    return -1;
  char *save = NULL;
  for (char *c = strtok_r (want, " ", &save); c; c = strtok_r (NULL, " ", &save))
    {
      if (has_word (enabled, c))
        continue;
      if (!has_word (avail, c))
        {
          if (strict)
            return berth_error (err, 0, "cgroup controller \"%s\" is not available in %s", c, dir);
          continue;
        }
      char value[72];
      snprintf (value, sizeof (value), "+%s", c);
      if (cg_write (dir, "cgroup.subtree_control", value, err) < 0)
        {
          int e = (*err)->status;
          if (e != EBUSY && e != EOPNOTSUPP)
            return -1;
          berth_error_release (err);
          return berth_error (err, e,
                              "enable the %s controller in %s/cgroup.subtree_control: the cgroup has processes of its own; a "
                              "container's parent must have none",
                              c, dir);
        }
    }
  return 0;
}

static int
create_in (const struct cg_hierarchy *h, const char *path, const char *needed, int strict, int *made_leaf,
           berth_error_t *err)
{
  cleanup_free char *dir = strdup (h->mountpoint);
  cleanup_free char *rest = strdup (path);
  if (dir == NULL || rest == NULL)
    return berth_error (err, ENOMEM, "cgroup create");
  int cpuset = !h->unified && strstr (h->controllers, "cpuset") != NULL;
  int made = 0;
  char *save = NULL;
  for (char *c = strtok_r (rest, "/", &save); c; c = strtok_r (NULL, "/", &save))
    {
      if (h->unified && delegate (dir, needed, strict, err) < 0)
        return -1;
      char *next = NULL;
      if (asprintf (&next, "%s/%s", dir, c) < 0)
        return berth_error (err, ENOMEM, "cgroup create");
      free (dir);
      dir = next;
      made = mkdir (dir, 0755) == 0;
      if (!made && errno != EEXIST)
        return berth_error (err, errno, "mkdir %s", dir);
      if (cpuset && cpuset_inherit (dir, err) < 0)
        return -1;
    }
  /* The last mkdir was the leaf's. */
  if (made)
    *made_leaf = 1;
  return 0;
}

int
cg_create (const struct cg_layout *l, const char *path, json_t *resources, uint32_t *made, berth_error_t *err)
{
  cleanup_free char *needed = NULL;
  if (cg_needed_controllers (resources, &needed, err) < 0)
    return -1;
  for (size_t i = 0; i < l->n; i++)
    {
      int made_leaf = 0;
      int r = create_in (&l->h[i], path, needed, l->v2, &made_leaf, err);
      if (made_leaf)
        *made |= UINT32_C (1) << i;
      if (r < 0)
        return -1;
    }
  return 0;
}

/* Which hierarchies write_each writes in. */
enum cg_which
{
  CG_ALL,
  CG_V1_ONLY,
  CG_V2_ONLY,
};

/* Writes value to `file` of the cgroup in each hierarchy `which` names. */
static int
write_each (const struct cg_layout *l, const char *path, enum cg_which which, const char *file, const char *value,
            berth_error_t *err)
{
  for (size_t i = 0; i < l->n; i++)
    {
      if ((which == CG_V1_ONLY && l->h[i].unified) || (which == CG_V2_ONLY && !l->h[i].unified))
        continue;
      cleanup_free char *dir = NULL;
      if (cg_dir (&l->h[i], path, &dir, err) < 0 || cg_write (dir, file, value, err) < 0)
        return -1;
    }
  return 0;
}

int
cg_enter (const struct cg_layout *l, const char *path, pid_t pid, berth_error_t *err)
{
  char value[32];
  snprintf (value, sizeof (value), "%d", (int) pid);
  return write_each (l, path, CG_ALL, "cgroup.procs", value, err);
}

/* The v1 half of cg_enter, done by the process itself: "0" written to each v1 hierarchy's `tasks`
 * moves the calling thread without the global threadgroup lock, which a write to cgroup.procs takes
 * (percpu_down_write: an RCU grace period, 5-15 ms, when no other write came just before). Only for a
 * single-threaded caller: its children inherit the cgroups. */
int
cg_enter_self_v1 (const struct cg_layout *l, const char *path, berth_error_t *err)
{
  return write_each (l, path, CG_V1_ONLY, "tasks", "0", err);
}

/* The unified half of cg_enter (cgroup.procs of the cgroup v2 hierarchy, if one is mounted). */
int
cg_enter_v2 (const struct cg_layout *l, const char *path, pid_t pid, berth_error_t *err)
{
  char value[32];
  snprintf (value, sizeof (value), "%d", (int) pid);
  return write_each (l, path, CG_V2_ONLY, "cgroup.procs", value, err);
}

/* An fd of the cgroup's directory in the v2 hierarchy (for clone3's CLONE_INTO_CGROUP); -1 without one. */
int
cg_open_v2 (const struct cg_layout *l, const char *path, berth_error_t *err)
{
  for (size_t i = 0; i < l->n; i++)
    {
      if (!l->h[i].unified)
        continue;
      cleanup_free char *dir = NULL;
      if (cg_dir (&l->h[i], path, &dir, err) < 0)
        return -2;
      int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0)
        {
          berth_error (err, errno, "open %s", dir);
          return -2;
        }
      return fd;
    }
  return -1;
}

/* Calls fn on dir and every cgroup below it, children first. */
static int
walk (const char *dir, int (*fn) (const char *dir, void *data), void *data, berth_error_t *err)
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
      if (de->d_type != DT_DIR || strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      cleanup_free char *child = NULL;
      if (asprintf (&child, "%s/%s", dir, de->d_name) < 0)
        return berth_error (err, ENOMEM, "cgroup walk");
      if (walk (child, fn, data, err) < 0)
        return -1;
    }
  return fn (dir, data);
}

struct procs_visit
{
  int sig;
  int count;
  berth_error_t *err;
};

static int
visit_procs (const char *dir, void *data)
{
  struct procs_visit *v = data;
  cleanup_free char *text = NULL;
  if (cg_read (dir, "cgroup.procs", &text, v->err) < 0)
    {
      if ((*v->err)->status == ENOENT)
        {
          berth_error_release (v->err);
          return 0;
        }
      return -1;
    }
  char *save = NULL;
  for (char *t = strtok_r (text, "\n", &save); t; t = strtok_r (NULL, "\n", &save))
    {
      pid_t pid = (pid_t) strtol (t, NULL, 10);
      if (pid <= 0)
        continue;
      v->count++;
      if (v->sig > 0 && kill (pid, v->sig) < 0 && errno != ESRCH)
        return berth_error (v->err, errno, "kill %d", (int) pid);
    }
  return 0;
}

/* The hierarchy used to list the processes: pids, memory or freezer, else the first. */
static const struct cg_hierarchy *
procs_hierarchy (const struct cg_layout *l)
{
  static const char *const prefer[] = { "pids", "freezer", "memory", "cpu", NULL };
  for (int i = 0; prefer[i]; i++)
    {
      const struct cg_hierarchy *h = cg_find (l, prefer[i]);
      if (h)
        return h;
    }
  return &l->h[0];
}

int
cg_count_procs (const struct cg_layout *l, const char *path, berth_error_t *err)
{
  cleanup_free char *dir = NULL;
  if (cg_dir (procs_hierarchy (l), path, &dir, err) < 0)
    return -1;
  struct procs_visit v = { 0, 0, err };
  if (walk (dir, visit_procs, &v, err) < 0)
    return -1;
  return v.count;
}

static int
freeze (const struct cg_layout *l, const char *path, int frozen, berth_error_t *err)
{
  const struct cg_hierarchy *h = cg_find (l, "freezer");
  if (l->v2)
    h = cg_find (l, "");
  if (h == NULL)
    return 0;
  cleanup_free char *dir = NULL;
  if (cg_dir (h, path, &dir, err) < 0)
    return -1;
  const char *file = l->v2 ? "cgroup.freeze" : "freezer.state";
  const char *value = l->v2 ? (frozen ? "1" : "0") : (frozen ? "FROZEN" : "THAWED");
  if (access (dir, F_OK) < 0 && errno == ENOENT)
    return 0; /* no cgroup (any more): nothing to freeze */
  if (cg_write (dir, file, value, err) < 0)
    return -1;
  if (!frozen)
    return 0;
  /* Wait (up to ~2 s) until every task is frozen; a cgroup that does not freeze is signalled anyway. */
  for (int i = 0; i < 200; i++)
    {
      cleanup_free char *state = NULL;
      if (cg_read (dir, l->v2 ? "cgroup.events" : "freezer.state", &state, err) < 0)
        return -1;
      if (l->v2 ? strstr (state, "frozen 1") != NULL : strncmp (state, "FROZEN", 6) == 0)
        return 0;
      struct timespec ts = { 0, 10 * 1000 * 1000 };
      nanosleep (&ts, NULL);
    }
  return 0;
}

int
cg_signal_all (const struct cg_layout *l, const char *path, int sig, berth_error_t *err)
{
  cleanup_free char *dir = NULL;
  if (cg_dir (procs_hierarchy (l), path, &dir, err) < 0)
    return -1;
  /* cgroup v2 kills a whole subtree at once with cgroup.kill (Linux 5.14): no freezing, no race with
   * forks. Without the file (an older kernel, or no such cgroup), freeze, signal each and thaw. */
  if (l->v2 && sig == SIGKILL)
    {
      if (cg_write (dir, "cgroup.kill", "1", err) == 0)
        return 0;
      if ((*err)->status != ENOENT)
        return -1;
      berth_error_release (err);
    }
  if (freeze (l, path, 1, err) < 0)
    return -1;
  struct procs_visit v = { sig, 0, err };
  int r = walk (dir, visit_procs, &v, err);
  berth_error_t thaw_err = NULL;
  if (freeze (l, path, 0, r < 0 ? &thaw_err : err) < 0 && r == 0)
    return -1;
  berth_error_release (&thaw_err);
  return r;
}

static int
visit_rmdir (const char *dir, void *data)
{
  berth_error_t *err = data;
  for (int i = 0; i < 500; i++)
    {
      if (rmdir (dir) == 0 || errno == ENOENT)
        return 0;
      if (errno != EBUSY)
        return berth_error (err, errno, "rmdir %s", dir);
      struct timespec ts = { 0, 10 * 1000 * 1000 };
      nanosleep (&ts, NULL);
    }
  return berth_error (err, EBUSY, "rmdir %s", dir);
}

int
cg_destroy (const struct cg_layout *l, const char *path, berth_error_t *err)
{
  return cg_destroy_in (l, path, CG_ALL_HIERARCHIES, err);
}

int
cg_has_procs_hierarchy (const struct cg_layout *l, uint32_t which)
{
  size_t i = (size_t) (procs_hierarchy (l) - l->h);
  return (which >> i) & 1;
}

int
cg_destroy_in (const struct cg_layout *l, const char *path, uint32_t which, berth_error_t *err)
{
  int ret = 0;
  for (size_t i = 0; i < l->n; i++)
    {
      if (!((which >> i) & 1))
        continue;
      cleanup_free char *dir = NULL;
      if (cg_dir (&l->h[i], path, &dir, err) < 0)
        return -1;
      if (walk (dir, visit_rmdir, err, err) < 0)
        ret = -1; /* keep going: remove what can be removed everywhere */
    }
  return ret;
}

int
cg_pid_path_v2 (pid_t pid, char **out, berth_error_t *err)
{
  *out = NULL;
  cleanup_free char *p = NULL;
  if (asprintf (&p, "/proc/%d/cgroup", (int) pid) < 0)
    return berth_error (err, ENOMEM, "cgroup of pid");
  cleanup_close int fd = open (p, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return berth_error (err, errno, "open %s", p);
  cleanup_free char *text = NULL;
  if (read_all_fd (fd, p, &text, NULL, err) < 0)
    return -1;
  char *save = NULL;
  for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    if (strncmp (line, "0::/", 4) == 0)
      {
        *out = strdup (line + 3);
        return *out ? 0 : berth_error (err, ENOMEM, "cgroup of pid");
      }
  return berth_error (err, 0, "%s has no cgroup v2 entry", p);
}
