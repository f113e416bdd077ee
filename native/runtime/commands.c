/* start, state, kill, delete and update: commands on an existing container's state. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "cgroup_systemd.h"
#include "cgroups.h"
#include "rtlog.h"
#include "runtime.h"
#include "state.h"

char *
absolute_path (const char *path)
{
  char *out = NULL;
  if (path[0] == '/')
    return strdup (path);
  cleanup_free char *cwd = getcwd (NULL, 0);
  if (cwd == NULL || asprintf (&out, "%s/%s", cwd, path) < 0)
    return NULL;
  return out;
}

int
wait_process_gone (pid_t pid, unsigned long long start, int ms)
{
  for (int waited = 0;; waited += 10)
    {
      char s = 0;
      unsigned long long now = proc_start_time (pid, &s);
      if (now == 0 || now != start || s == 'Z' || s == 'X')
        return 0;
      if (waited >= ms)
        return -1;
      struct timespec ts = { 0, 10 * 1000 * 1000 };
      nanosleep (&ts, NULL);
    }
}

/* Parses the single ID argument of a command (after its options). */
static int
one_id (int argc, char **argv, const char *cmd, const char **id, berth_error_t *err)
{
  if (optind != argc - 1)
    return berth_error (err, 0, "%s requires exactly 1 argument: the container id", cmd);
  *id = argv[optind];
  return 0;
}

static int
fail (berth_error_t *err)
{
  rtlog_report (err);
  return 1;
}

static int
no_options (int argc, char **argv, const char *usage, berth_error_t *err)
{
  static const struct option none[] = { { NULL, 0, NULL, 0 } };
  optind = 1;
  if (getopt_long (argc, argv, "+", none, NULL) != -1)
    return berth_error (err, 0, "usage: %s", usage);
  return 0;
}

int
cmd_start (const struct global_opts *g, int argc, char **argv)
{
  berth_error_t err = NULL;
  const char *id = NULL;
  struct rt_state st;
  if (no_options (argc, argv, "start ID", &err) < 0 || one_id (argc, argv, "start", &id, &err) < 0)
    return fail (&err);
  if (state_load (g->root, id, &st, &err) < 0)
    {
      state_free (&st);
      return fail (&err);
    }
  int ret = 1;
  enum rt_status status = state_status (&st);
  cleanup_free char *fifo = NULL;
  if (status == STATUS_RUNNING)
    berth_error (&err, 0, "cannot start an already running container");
  else if (status == STATUS_STOPPED)
    berth_error (&err, 0, "cannot start a container that has stopped");
  else if (asprintf (&fifo, "%s/%s", st.dir, EXEC_FIFO) < 0)
    berth_error (&err, ENOMEM, "start");
  else
    {
      cleanup_close int fd = open (fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0)
        berth_error (&err, errno, "open %s", fifo);
      while (fd >= 0)
        {
          struct pollfd p = { fd, POLLIN, 0 };
          int n = poll (&p, 1, 100);
          if (n < 0 && errno != EINTR)
            {
              berth_error (&err, errno, "poll %s", fifo);
              break;
            }
          if (n > 0)
            {
              char c;
              ssize_t got = read (fd, &c, 1);
              if (got == 1)
                {
                  if (unlink (fifo) < 0 && errno != ENOENT)
                    berth_error (&err, errno, "remove %s", fifo);
                  else
                    ret = 0;
                  break;
                }
              if (got < 0 && errno != EAGAIN && errno != EINTR)
                {
                  berth_error (&err, errno, "read %s", fifo);
                  break;
                }
            }
          if (state_status (&st) == STATUS_STOPPED)
            {
              berth_error (&err, 0, "cannot start a container that has stopped");
              break;
            }
        }
    }
  state_free (&st);
  return ret ? fail (&err) : 0;
}

int
cmd_state (const struct global_opts *g, int argc, char **argv)
{
  berth_error_t err = NULL;
  const char *id = NULL;
  struct rt_state st;
  if (no_options (argc, argv, "state ID", &err) < 0 || one_id (argc, argv, "state", &id, &err) < 0)
    return fail (&err);
  if (state_load (g->root, id, &st, &err) < 0)
    {
      state_free (&st);
      return fail (&err);
    }
  enum rt_status status = state_status (&st);
  json_t *o = json_pack ("{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "ociVersion", "1.0.2", "id", st.id, "pid",
                         (json_int_t) (status == STATUS_STOPPED ? 0 : st.pid), "status", state_status_name (status), "bundle", st.bundle,
                         "rootfs", st.rootfs, "created", st.created, "owner", "");
  if (o && st.annotations)
    {
      json_t *a = json_loads (st.annotations, 0, NULL);
      if (a)
        json_object_set_new (o, "annotations", a);
    }
  cleanup_free char *text = o ? json_dumps (o, JSON_INDENT (2) | JSON_PRESERVE_ORDER) : NULL;
  if (o)
    json_decref (o);
  state_free (&st);
  if (text == NULL)
    {
      berth_error (&err, ENOMEM, "state");
      return fail (&err);
    }
  printf ("%s\n", text);
  return 0;
}

static int
parse_signal (const char *s, int *sig)
{
  char *end = NULL;
  long v = strtol (s, &end, 10);
  if (*s && *end == '\0')
    {
      if (v <= 0 || v >= NSIG)
        return -1;
      *sig = (int) v;
      return 0;
    }
  const char *name = strncasecmp (s, "SIG", 3) == 0 ? s + 3 : s;
  for (int i = 1; i < NSIG; i++)
    {
      const char *abbrev = sigabbrev_np (i);
      if (abbrev && strcasecmp (abbrev, name) == 0)
        {
          *sig = i;
          return 0;
        }
    }
  return -1;
}

int
cmd_kill (const struct global_opts *g, int argc, char **argv)
{
  static const struct option longopts[] = { { "all", no_argument, NULL, 'a' }, { NULL, 0, NULL, 0 } };
  berth_error_t err = NULL;
  int all = 0, c;
  optind = 1;
  while ((c = getopt_long (argc, argv, "+a", longopts, NULL)) != -1)
    {
      if (c != 'a')
        {
          berth_error (&err, 0, "usage: kill [--all] ID [SIGNAL]");
          return fail (&err);
        }
      all = 1;
    }
  if (optind >= argc || argc - optind > 2)
    {
      berth_error (&err, 0, "usage: kill [--all] ID [SIGNAL]");
      return fail (&err);
    }
  const char *id = argv[optind];
  int sig = SIGTERM;
  if (argc - optind == 2 && parse_signal (argv[optind + 1], &sig) < 0)
    {
      berth_error (&err, 0, "unknown signal \"%s\"", argv[optind + 1]);
      return fail (&err);
    }
  struct rt_state st;
  if (state_load (g->root, id, &st, &err) < 0)
    {
      state_free (&st);
      return fail (&err);
    }
  int ret = 0;
  enum rt_status status = state_status (&st);
  if (all)
    {
      struct cg_layout cg;
      if (cg_layout_load (&cg, &err) < 0 || cg_signal_all (&cg, st.cgroup_path, sig, &err) < 0)
        ret = 1;
      cg_layout_free (&cg);
    }
  else if (status == STATUS_STOPPED)
    ret = -berth_error (&err, 0, "container not running");
  else if (kill (st.pid, sig) < 0)
    ret = -berth_error (&err, errno, "kill %d", (int) st.pid);
  state_free (&st);
  return ret ? fail (&err) : 0;
}

/* Kills what is left of the container, removes its cgroup and its state. */
static int
destroy (struct rt_state *st, berth_error_t *err)
{
  struct cg_layout cg;
  int r = 0;
  if (cg_layout_load (&cg, err) < 0)
    return -1;
  if (state_status (st) != STATUS_STOPPED)
    {
      if (kill (st->pid, SIGKILL) < 0 && errno != ESRCH)
        r = berth_error (err, errno, "kill %d", (int) st->pid);
    }
  if (r == 0 && cg_signal_all (&cg, st->cgroup_path, SIGKILL, err) < 0)
    r = -1;
  if (r == 0 && wait_process_gone (st->pid, st->pid_start, 10000) < 0)
    r = berth_error (err, 0, "container init %d did not exit after SIGKILL", (int) st->pid);
  for (int i = 0; r == 0 && i < 500; i++)
    {
      int n = cg_count_procs (&cg, st->cgroup_path, err);
      if (n < 0)
        r = -1;
      if (n <= 0)
        break;
      struct timespec ts = { 0, 10 * 1000 * 1000 };
      nanosleep (&ts, NULL);
    }
  /* The systemd driver's unit is stopped (it is most likely gone already, collected once empty), then
   * whatever cgroup is left is removed. */
  if (r == 0 && st->systemd_unit && cgsd_stop (st->systemd_unit, err) < 0)
    r = -1;
  if (r == 0 && cg_destroy (&cg, st->cgroup_path, err) < 0)
    r = -1;
  if (r == 0 && state_remove_dir (st->dir, err) < 0)
    r = -1;
  cg_layout_free (&cg);
  return r;
}

int
cmd_delete (const struct global_opts *g, int argc, char **argv)
{
  static const struct option longopts[] = { { "force", no_argument, NULL, 'f' }, { NULL, 0, NULL, 0 } };
  berth_error_t err = NULL;
  int force = 0, c;
  optind = 1;
  while ((c = getopt_long (argc, argv, "+f", longopts, NULL)) != -1)
    {
      if (c != 'f')
        {
          berth_error (&err, 0, "usage: delete [--force] ID");
          return fail (&err);
        }
      force = 1;
    }
  const char *id = NULL;
  if (one_id (argc, argv, "delete", &id, &err) < 0)
    return fail (&err);
  struct rt_state st;
  if (state_load (g->root, id, &st, &err) < 0)
    {
      state_free (&st);
      return fail (&err);
    }
  enum rt_status status = state_status (&st);
  int ret = 0;
  if (status == STATUS_RUNNING && !force)
    ret = -berth_error (&err, 0, "cannot delete container %s that is not stopped: running", id);
  else if (destroy (&st, &err) < 0)
    ret = 1;
  state_free (&st);
  return ret ? fail (&err) : 0;
}

int
cmd_update (const struct global_opts *g, int argc, char **argv)
{
  static const struct option longopts[] = { { "resources", required_argument, NULL, 'r' }, { NULL, 0, NULL, 0 } };
  berth_error_t err = NULL;
  const char *file = NULL;
  int c;
  optind = 1;
  while ((c = getopt_long (argc, argv, "+r:", longopts, NULL)) != -1)
    {
      if (c != 'r')
        {
          berth_error (&err, 0, "usage: update --resources FILE ID (only --resources is supported)");
          return fail (&err);
        }
      file = optarg;
    }
  const char *id = NULL;
  if (file == NULL)
    berth_error (&err, 0, "usage: update --resources FILE ID (only --resources is supported)");
  if (err || one_id (argc, argv, "update", &id, &err) < 0)
    return fail (&err);
  struct rt_state st;
  json_t *resources = NULL;
  struct cg_layout cg;
  memset (&cg, 0, sizeof (cg));
  int ret = 0;
  if (state_load (g->root, id, &st, &err) < 0 || json_load_path (file, &resources, &err) < 0)
    ret = 1;
  else if (state_status (&st) == STATUS_STOPPED)
    ret = -berth_error (&err, 0, "cannot update a stopped container");
  else if (cg_layout_load (&cg, &err) < 0)
    ret = 1;
  /* The systemd driver: the unit's properties first (systemd would otherwise put its values back),
   * then every file, as runc does. */
  else if (st.systemd_unit && cgsd_update (st.systemd_unit, resources, &err) < 0)
    ret = 1;
  else if (cg_apply_resources (&cg, st.cgroup_path, resources, 0, &err) < 0)
    ret = 1;
  if (resources)
    json_decref (resources);
  cg_layout_free (&cg);
  state_free (&st);
  return ret ? fail (&err) : 0;
}
