/* `create`: the state dir, the cgroup with its limits, then the init, forked in the container's
 * namespaces by a short-lived middle process; `create` exits once the init waits for `start`. With
 * --systemd-cgroup the cgroup is a transient systemd unit started once the middle process exists
 * (it is the unit's first pid) and before it goes on. On any failure the init, the unit, the cgroup
 * and the state dir are removed. */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/util.h"
#include "cgroup_systemd.h"
#include "console.h"
#include "ns.h"
#include "rtlog.h"
#include "runtime.h"
#include "state.h"
#include "sync.h"

struct create_opts
{
  const char *root;
  const char *id;
  char *bundle;
  char *pid_file;
  char *console_socket;
  int no_pivot;
};

struct create_run
{
  struct rt_spec spec;
  struct cg_layout cg;
  char *cg_path;
  char *state_dir;
  uint32_t cg_made;   /* the hierarchies where this create made the container cgroup (cg_create) */
  int systemd;                /* --systemd-cgroup: the cgroup is the unit's */
  struct cgsd_unit unit;
  int unit_started;
  pid_t middle;
  int middle_in_v2;           /* the middle was born in the v2 cgroup (clone3, CLONE_INTO_CGROUP) */
  int cgroup_v2_fd;
  pid_t init;
  int sync[2];
  int state_dir_fd;
  int console_fd;
};

static int
parse (int argc, char **argv, struct create_opts *o, berth_error_t *err)
{
  static const struct option longopts[] = {
    { "bundle", required_argument, NULL, 'b' },     { "pid-file", required_argument, NULL, 'p' },
    { "console-socket", required_argument, NULL, 'c' }, { "no-pivot", no_argument, NULL, 'n' },
    { "no-new-keyring", no_argument, NULL, 'k' },   { "preserve-fds", required_argument, NULL, 'f' },
    { NULL, 0, NULL, 0 },
  };
  const char *bundle = ".";
  int c;
  optind = 1;
  while ((c = getopt_long (argc, argv, "+b:", longopts, NULL)) != -1)
    {
      switch (c)
        {
        case 'b': bundle = optarg; break;
        case 'p': o->pid_file = absolute_path (optarg); if (!o->pid_file) return berth_error (err, ENOMEM, "pid-file"); break;
        case 'c': o->console_socket = absolute_path (optarg); if (!o->console_socket) return berth_error (err, ENOMEM, "console-socket"); break;
        case 'n': o->no_pivot = 1; break;
        case 'k': break;
        case 'f':
          if (strcmp (optarg, "0") != 0)
            return berth_error (err, 0, "--preserve-fds is not supported by berth-runtime");
          break;
        default: return berth_error (err, 0, "usage: create [--bundle DIR] [--pid-file FILE] [--console-socket SOCKET] [--no-pivot] ID");
        }
    }
  if (optind != argc - 1)
    return berth_error (err, 0, "create requires exactly 1 argument: the container id");
  o->id = argv[optind];
  o->bundle = realpath (bundle, NULL);
  if (o->bundle == NULL)
    return berth_error (err, errno, "bundle %s", bundle);
  return 0;
}

static void
undo (struct create_run *r)
{
  berth_error_t ignored = NULL;
  if (r->middle > 0)
    {
      kill (r->middle, SIGKILL);
      waitpid (r->middle, NULL, 0);
    }
  if (r->init > 0)
    {
      kill (r->init, SIGKILL);
      waitpid (r->init, NULL, 0); /* reparented to us, the subreaper, once the middle process is gone */
    }
  /* Only a cgroup this create made holds nothing but its own processes. */
  if (r->cg_path && cg_has_procs_hierarchy (&r->cg, r->cg_made))
    {
      if (cg_signal_all (&r->cg, r->cg_path, SIGKILL, &ignored) < 0)
        berth_error_release (&ignored);
    }
  if (r->unit_started && cgsd_stop (r->unit.unit, &ignored) < 0)
    rtlog_report (&ignored);
  if (r->cg_made && r->cg_path)
    {
      if (cg_destroy_in (&r->cg, r->cg_path, r->cg_made, &ignored) < 0)
        rtlog_report (&ignored);
    }
  if (r->state_dir && state_remove_dir (r->state_dir, &ignored) < 0)
    rtlog_report (&ignored);
}

/* The middle process: joins and unshares the namespaces, forks the init, reports its pid, exits. */
static void
middle (struct create_run *r, const struct create_opts *o)
{
  berth_error_t err = NULL;
  struct sync_msg m;
  close (r->sync[0]);
  if (sync_expect (r->sync[1], SYNC_GO, &m, "wait for the cgroup", &err) < 0)
    _exit (1);
  /* With the systemd driver, the cgroup is known only now: systemd has put us in the unit's. */
  if (m.text[0] && (r->cg_path = strdup (m.text)) == NULL)
    {
      berth_error (&err, ENOMEM, "cgroup path");
      sync_fail (r->sync[1], &err);
    }
  if (r->cgroup_v2_fd >= 0)
    close (r->cgroup_v2_fd);
  /* cgroupfs driver: the parent has made the cgroup and put us in its unified half (or we were born
   * there); the v1 hierarchies we join ourselves, which takes no global lock (cg_enter_self_v1). */
  if (!r->systemd && cg_enter_self_v1 (&r->cg, r->cg_path, &err) < 0)
    sync_fail (r->sync[1], &err);
  /* Not dumpable until execve: a container process cannot ptrace us or open /proc/PID/exe (our binary). */
  if (prctl (PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
    {
      berth_error (&err, errno, "prctl PR_SET_DUMPABLE");
      sync_fail (r->sync[1], &err);
    }
  int userns_fd;
  if (ns_enter_for_init (&r->spec, &userns_fd, &err) < 0)
    sync_fail (r->sync[1], &err);
  pid_t pid = fork ();
  if (pid < 0)
    {
      berth_error (&err, errno, "fork the container init");
      sync_fail (r->sync[1], &err);
    }
  if (pid == 0)
    {
      struct init_ctx ctx = { &r->spec, &r->cg, r->cg_path, r->sync[1], r->state_dir_fd, r->console_fd, o->no_pivot, userns_fd };
      container_init (&ctx);
    }
  if (sync_send (r->sync[1], SYNC_PID, pid, NULL, &err) < 0)
    {
      kill (pid, SIGKILL);
      _exit (1);
    }
  _exit (0);
}

static int
save_state (struct create_run *r, const struct create_opts *o, berth_error_t *err)
{
  char created[64];
  rtlog_now (created, sizeof (created), 1);
  json_t *annotations = json_object_get (r->spec.json, "annotations");
  cleanup_free char *ann = json_is_object (annotations) && json_object_size (annotations) ? json_dumps (annotations, JSON_COMPACT) : NULL;
  cleanup_free char *seccomp = r->spec.seccomp ? json_dumps (r->spec.seccomp, JSON_COMPACT) : NULL;
  cleanup_free char *process = json_dumps (json_object_get (r->spec.json, "process"), JSON_COMPACT);
  struct rt_state st = {
    .id = (char *) o->id,
    .dir = r->state_dir,
    .pid = r->init,
    .pid_start = proc_start_time (r->init, NULL),
    .bundle = o->bundle,
    .rootfs = r->spec.rootfs,
    .created = created,
    .cgroup_path = r->cg_path,
    .systemd_unit = r->unit_started ? r->unit.unit : NULL,
    .ns_flags = ns_spec_flags (&r->spec),
    .annotations = ann,
    .seccomp = seccomp,
    .process = process,
  };
  if (st.pid_start == 0)
    return berth_error (err, 0, "the container init (pid %d) exited during create", (int) r->init);
  return state_save (&st, err);
}

/* The middle process reports the init's pid and the init reports that it is ready, on the same
 * socket and racing each other: either may come first. */
static int
await_init (struct create_run *r, berth_error_t *err)
{
  bool have_pid = false, ready = false;
  while (!have_pid || !ready)
    {
      struct sync_msg m;
      int got = sync_recv (r->sync[0], &m, err);
      if (got < 0)
        return -1;
      if (got == 0)
        return berth_error (err, 0, "start the container init: the child exited without a word");
      if (m.type == SYNC_ERROR)
        return berth_error (err, 0, "%s", m.text);
      if (m.type == SYNC_PID && !have_pid)
        {
          r->init = (pid_t) m.value;
          have_pid = true;
        }
      else if (m.type == SYNC_READY && !ready)
        ready = true;
      else
        return berth_error (err, 0, "start the container init: unexpected message %d on the sync socket", m.type);
    }
  return 0;
}

/* The systemd driver, once the middle process exists and before it goes on: the transient unit with
 * the middle process in it (its children, the init, stay there), then, as runc does, the hierarchy
 * down to the unit's cgroup delegates what the container needs (systemd has already enabled what it
 * knows of; hugetlb, misc or rdma it does not) and every resource is written to the cgroup's files. */
static int
systemd_cgroup (struct create_run *r, berth_error_t *err)
{
  if (cgsd_start (&r->unit, r->middle, r->spec.resources, err) < 0)
    return -1;
  r->unit_started = 1;
  if (r->unit.is_slice)
    {
      /* A slice holds no process of its own in systemd's eyes: the middle process goes in by cgroupfs. */
      if ((r->cg_path = strdup (r->unit.path)) == NULL)
        return berth_error (err, ENOMEM, "cgroup path");
      /* Undone on failure only if this create made it: a slice that was there already is not ours. */
      if (cg_create (&r->cg, r->cg_path, r->spec.resources, &r->cg_made, err) < 0 || cg_enter (&r->cg, r->cg_path, r->middle, err) < 0)
        return -1;
    }
  else
    {
      if (cg_pid_path_v2 (r->middle, &r->cg_path, err) < 0)
        return -1;
      /* systemd made the scope's cgroup for this container's unit: it is ours to undo. */
      r->cg_made = CG_ALL_HIERARCHIES;
      if (strcmp (r->cg_path, r->unit.path) != 0)
        rtlog_warn ("systemd put unit %s in %s, not in %s", r->unit.unit, r->cg_path, r->unit.path);
      uint32_t made = 0;
      if (cg_create (&r->cg, r->cg_path, r->spec.resources, &made, err) < 0)
        return -1;
    }
  return cg_apply_resources (&r->cg, r->cg_path, r->spec.resources, 1, err);
}

static int
run (struct create_run *r, const struct create_opts *o, berth_error_t *err)
{
  /* As runc: relative paths of the spec (mount sources) are relative to the bundle. */
  if (chdir (o->bundle) < 0)
    return berth_error (err, errno, "chdir %s", o->bundle);
  if (spec_load (o->bundle, &r->spec, err) < 0)
    return berth_error_wrap (err, "%s/config.json", o->bundle);
  if (r->spec.process.terminal && o->console_socket == NULL)
    return berth_error (err, 0, "cannot allocate tty if runc will detach without setting console socket");
  if (!r->spec.process.terminal && o->console_socket != NULL)
    return berth_error (err, 0, "cannot use console socket if runc will not detach or allocate tty");
  if (cg_layout_load (&r->cg, err) < 0)
    return -1;
  if (r->systemd)
    {
      if (!r->cg.v2)
        return berth_error (err, 0,
                            "--systemd-cgroup needs a cgroup v2 (unified) host: this host mounts cgroup v1 hierarchies (a legacy or "
                            "hybrid layout), which berth-runtime's systemd driver does not support");
      if (cgsd_unit_parse (r->spec.cgroups_path, o->id, &r->unit, err) < 0)
        return -1;
    }
  else if (cg_normalize_path (r->spec.cgroups_path, o->id, &r->cg_path, err) < 0)
    return -1;
  if (state_create_dir (o->root, o->id, &r->state_dir, err) < 0)
    return -1;
  cleanup_free char *fifo = NULL;
  if (asprintf (&fifo, "%s/%s", r->state_dir, EXEC_FIFO) < 0)
    return berth_error (err, ENOMEM, "fifo");
  mode_t old = umask (0);
  int fr = mkfifo (fifo, 0622);
  umask (old);
  if (fr < 0)
    return berth_error (err, errno, "mkfifo %s", fifo);
  r->state_dir_fd = open (r->state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (r->state_dir_fd < 0)
    return berth_error (err, errno, "open %s", r->state_dir);
  if (!r->systemd)
    {
      /* Marked for the rollback in each hierarchy where this create made it: a cgroup that was there
       * already (in one hierarchy or all) is not this container's to destroy. */
      if (cg_create (&r->cg, r->cg_path, r->spec.resources, &r->cg_made, err) < 0
          || cg_apply_resources (&r->cg, r->cg_path, r->spec.resources, 1, err) < 0)
        return -1;
    }
  if (o->console_socket && (r->console_fd = console_connect (o->console_socket, err)) < 0)
    return -1;
  if (prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
    return berth_error (err, errno, "prctl PR_SET_CHILD_SUBREAPER");
  if (sync_pair (r->sync, err) < 0)
    return -1;
  if (!r->systemd && (r->cgroup_v2_fd = cg_open_v2 (&r->cg, r->cg_path, err)) == -2)
    return -1;
  fflush (NULL);
  r->middle = cg_fork_into (r->cgroup_v2_fd, &r->middle_in_v2);
  if (r->middle < 0)
    return berth_error (err, errno, "fork");
  if (r->middle == 0)
    middle (r, o);
  close (r->sync[1]);
  r->sync[1] = -1;
  if (r->cgroup_v2_fd >= 0)
    {
      close (r->cgroup_v2_fd);
      r->cgroup_v2_fd = -1;
    }
  /* cgroupfs driver: the unified half here (unless the middle was born there), the v1 half by the
   * middle itself once it has GO (see middle). */
  if ((r->systemd ? systemd_cgroup (r, err) : r->middle_in_v2 ? 0 : cg_enter_v2 (&r->cg, r->cg_path, r->middle, err)) < 0)
    return -1;
  if (sync_send (r->sync[0], SYNC_GO, 0, r->systemd ? r->cg_path : NULL, err) < 0 || await_init (r, err) < 0)
    return -1;
  int status;
  if (waitpid (r->middle, &status, 0) < 0)
    return berth_error (err, errno, "wait for the middle process");
  r->middle = 0;
  if (save_state (r, o, err) < 0)
    return -1;
  if (o->pid_file && write_pid_file (o->pid_file, r->init, err) < 0)
    return -1;
  return 0;
}

int
cmd_create (const struct global_opts *g, int argc, char **argv)
{
  berth_error_t err = NULL;
  struct create_opts o = { 0 };
  struct create_run r;
  memset (&r, 0, sizeof (r));
  r.sync[0] = r.sync[1] = r.state_dir_fd = r.console_fd = r.cgroup_v2_fd = -1;
  o.root = g->root;
  r.systemd = g->systemd_cgroup;
  int ret = 0;
  if (parse (argc, argv, &o, &err) < 0)
    ret = 1;
  else if (run (&r, &o, &err) < 0)
    {
      undo (&r);
      ret = 1;
    }
  if (ret)
    rtlog_report (&err);
  for (int i = 0; i < 2; i++)
    if (r.sync[i] >= 0)
      close (r.sync[i]);
  if (r.state_dir_fd >= 0)
    close (r.state_dir_fd);
  if (r.console_fd >= 0)
    close (r.console_fd);
  spec_free (&r.spec);
  cg_layout_free (&r.cg);
  cgsd_unit_free (&r.unit);
  free (r.cg_path);
  free (r.state_dir);
  free (o.bundle);
  free (o.pid_file);
  free (o.console_socket);
  return ret;
}
