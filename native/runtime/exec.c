/* `exec`: a process (an OCI process JSON) in a running container: in its cgroup, its namespaces (setns
 * to those of its init), with its own user, capabilities, no_new_privs, rlimits, env and cwd, and the
 * container's seccomp profile. Without --detach, waits for it, forwarding signals, and exits with its
 * status (128+signal when it was killed). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/util.h"
#include "cgroups.h"
#include "console.h"
#include "ns.h"
#include "process.h"
#include "rtlog.h"
#include "runtime.h"
#include "state.h"
#include "sync.h"

struct exec_opts
{
  const char *process;
  char *pid_file;
  char *console_socket;
  int detach;
  int tty;
  const char *id;
};

struct exec_run
{
  struct rt_state st;
  struct rt_process proc;
  json_t *seccomp;
  struct cg_layout cg;
  int sync[2];
  int console_fd;
  pid_t middle;
  int middle_in_v2;
  int cgroup_v2_fd;
  pid_t child;
  sigset_t old_mask;
  int userns_fd;      /* the container's user namespace, joined by the process last (ns_join_user) */
};

static int
parse (int argc, char **argv, struct exec_opts *o, berth_error_t *err)
{
  static const struct option longopts[] = {
    { "process", required_argument, NULL, 'p' }, { "pid-file", required_argument, NULL, 'i' },
    { "detach", no_argument, NULL, 'd' },        { "console-socket", required_argument, NULL, 'c' },
    { "tty", no_argument, NULL, 't' },           { NULL, 0, NULL, 0 },
  };
  int c;
  optind = 1;
  while ((c = getopt_long (argc, argv, "+p:dt", longopts, NULL)) != -1)
    {
      switch (c)
        {
        case 'p': o->process = optarg; break;
        case 'i': o->pid_file = absolute_path (optarg); if (!o->pid_file) return berth_error (err, ENOMEM, "pid-file"); break;
        case 'c': o->console_socket = absolute_path (optarg); if (!o->console_socket) return berth_error (err, ENOMEM, "console-socket"); break;
        case 'd': o->detach = 1; break;
        case 't': o->tty = 1; break;
        default: return berth_error (err, 0, "usage: exec --process FILE [--pid-file FILE] [--detach] [--console-socket SOCKET] [--tty] ID");
        }
    }
  if (optind != argc - 1)
    return berth_error (err, 0, "exec requires the container id as its only argument (the process comes from --process)");
  if (o->process == NULL)
    return berth_error (err, 0, "exec: --process is required by berth-runtime");
  o->id = argv[optind];
  return 0;
}

/* The process that runs in the container: what can fail is reported on the sync socket. */
static void
exec_child (struct exec_run *r)
{
  berth_error_t err = NULL;
  struct exec_plan plan;
  memset (&plan, 0, sizeof (plan));
  sigprocmask (SIG_SETMASK, &r->old_mask, NULL);
  if (r->proc.terminal)
    {
      cleanup_free char *slave_path = NULL;
      int slave = console_create (r->console_fd, &slave_path, &err);
      if (slave < 0 || console_attach (slave, &err) < 0)
        sync_fail (r->sync[1], &err);
      close (slave);
      close (r->console_fd);
    }
  if (process_set_oom_score_adj (&r->proc, &err) < 0 || process_set_rlimits (&r->proc, &err) < 0
      || process_prepare (&r->proc, r->seccomp, &plan, &err) < 0 || process_exec (&plan, &r->userns_fd, &err) < 0)
    sync_fail (r->sync[1], &err);
  _exit (127);
}

static void
middle (struct exec_run *r)
{
  berth_error_t err = NULL;
  struct sync_msg m;
  close (r->sync[0]);
  if (sync_expect (r->sync[1], SYNC_GO, &m, "wait for the cgroup", &err) < 0)
    _exit (1);
  if (r->cgroup_v2_fd >= 0)
    close (r->cgroup_v2_fd);
  /* The v1 hierarchies we join ourselves (no global lock: cg_enter_self_v1); the parent has done the
   * unified one, or we were born there. */
  if (cg_enter_self_v1 (&r->cg, r->st.cgroup_path, &err) < 0)
    sync_fail (r->sync[1], &err);
  /* Not dumpable until execve: a container process cannot ptrace us or open /proc/PID/exe (our binary). */
  if (prctl (PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
    {
      berth_error (&err, errno, "prctl PR_SET_DUMPABLE");
      sync_fail (r->sync[1], &err);
    }
  if (ns_join_process (r->st.pid, r->st.ns_flags, &r->userns_fd, &err) < 0)
    sync_fail (r->sync[1], &err);
  pid_t pid = fork ();
  if (pid < 0)
    {
      berth_error (&err, errno, "fork");
      sync_fail (r->sync[1], &err);
    }
  if (pid == 0)
    exec_child (r);
  if (sync_send (r->sync[1], SYNC_PID, pid, NULL, &err) < 0)
    {
      kill (pid, SIGKILL);
      _exit (1);
    }
  _exit (0);
}

static int
status_code (int status)
{
  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  if (WIFSIGNALED (status))
    return 128 + WTERMSIG (status);
  return 255;
}

/* Forwards every signal to the child until it exits; returns its exit code. */
static int
wait_child (pid_t child)
{
  sigset_t all;
  sigfillset (&all);
  for (;;)
    {
      int status;
      pid_t got;
      while ((got = waitpid (-1, &status, WNOHANG)) > 0)
        if (got == child)
          return status_code (status);
      if (got < 0 && errno == ECHILD)
        return 255;
      siginfo_t info;
      int sig = sigwaitinfo (&all, &info);
      if (sig < 0 || sig == SIGCHLD)
        continue;
      kill (child, sig);
    }
}

/* As runc: a process without capabilities (or no_new_privs, or an AppArmor profile) gets the container's. */
static void
inherit_from_container (json_t *pj, const char *container_process)
{
  static const char *const keys[] = { "capabilities", "noNewPrivileges", "apparmorProfile" };
  json_t *cp = container_process && json_is_object (pj) ? json_loads (container_process, 0, NULL) : NULL;
  if (cp == NULL)
    return;
  for (size_t i = 0; i < sizeof (keys) / sizeof (keys[0]); i++)
    {
      json_t *v = json_object_get (cp, keys[i]);
      if (v && json_object_get (pj, keys[i]) == NULL)
        json_object_set (pj, keys[i], v);
    }
  json_decref (cp);
}

static int
run (struct exec_run *r, const struct exec_opts *o, const struct global_opts *g, berth_error_t *err)
{
  json_t *pj = NULL;
  if (state_load (g->root, o->id, &r->st, err) < 0)
    return -1;
  if (state_status (&r->st) == STATUS_STOPPED)
    return berth_error (err, 0, "cannot exec in a stopped container");
  if (json_load_path (o->process, &pj, err) < 0)
    return -1;
  inherit_from_container (pj, r->st.process);
  int pr = process_parse (pj, &r->proc, err);
  json_decref (pj);
  if (pr < 0)
    return -1;
  if (o->tty)
    r->proc.terminal = 1;
  if (r->proc.terminal && o->console_socket == NULL)
    return berth_error (err, 0, "a terminal needs --console-socket with berth-runtime");
  if (r->st.seccomp && (r->seccomp = json_loads (r->st.seccomp, 0, NULL)) == NULL)
    return berth_error (err, 0, "corrupt seccomp profile in the container's state");
  if (cg_layout_load (&r->cg, err) < 0)
    return -1;
  if (o->console_socket && r->proc.terminal && (r->console_fd = console_connect (o->console_socket, err)) < 0)
    return -1;
  if (prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
    return berth_error (err, errno, "prctl PR_SET_CHILD_SUBREAPER");
  if (sync_pair (r->sync, err) < 0)
    return -1;
  sigset_t all;
  sigfillset (&all);
  sigprocmask (SIG_BLOCK, &all, &r->old_mask);
  if ((r->cgroup_v2_fd = cg_open_v2 (&r->cg, r->st.cgroup_path, err)) == -2)
    return -1;
  fflush (NULL);
  r->middle = cg_fork_into (r->cgroup_v2_fd, &r->middle_in_v2);
  if (r->middle < 0)
    return berth_error (err, errno, "fork");
  if (r->middle == 0)
    {
      sigprocmask (SIG_SETMASK, &r->old_mask, NULL);
      middle (r);
    }
  close (r->sync[1]);
  r->sync[1] = -1;
  if (r->cgroup_v2_fd >= 0)
    {
      close (r->cgroup_v2_fd);
      r->cgroup_v2_fd = -1;
    }
  struct sync_msg m;
  if ((!r->middle_in_v2 && cg_enter_v2 (&r->cg, r->st.cgroup_path, r->middle, err) < 0) || sync_send (r->sync[0], SYNC_GO, 0, NULL, err) < 0
      || sync_expect (r->sync[0], SYNC_PID, &m, "start the process", err) < 0)
    return -1;
  r->child = (pid_t) m.value;
  waitpid (r->middle, NULL, 0);
  r->middle = 0;
  /* End of file: the process exec'd (the socket is close-on-exec); a message: it failed. */
  int got = sync_recv (r->sync[0], &m, err);
  if (got < 0)
    return -1;
  if (got > 0)
    {
      waitpid (r->child, NULL, 0);
      r->child = 0;
      return berth_error (err, 0, "%s", m.type == SYNC_ERROR ? m.text : "unexpected message from the exec'd process");
    }
  if (o->pid_file && write_pid_file (o->pid_file, r->child, err) < 0)
    return -1;
  return 0;
}

int
cmd_exec (const struct global_opts *g, int argc, char **argv)
{
  berth_error_t err = NULL;
  struct exec_opts o = { 0 };
  struct exec_run r;
  memset (&r, 0, sizeof (r));
  r.sync[0] = r.sync[1] = r.console_fd = r.cgroup_v2_fd = r.userns_fd = -1;
  int ret = 0;
  if (parse (argc, argv, &o, &err) < 0)
    ret = 1;
  else if (run (&r, &o, g, &err) < 0)
    {
      if (r.middle > 0)
        {
          kill (r.middle, SIGKILL);
          waitpid (r.middle, NULL, 0);
        }
      if (r.child > 0)
        {
          kill (r.child, SIGKILL);
          waitpid (r.child, NULL, 0);
        }
      ret = 255;
    }
  else if (!o.detach)
    ret = wait_child (r.child);
  if (err)
    rtlog_report (&err);
  for (int i = 0; i < 2; i++)
    if (r.sync[i] >= 0)
      close (r.sync[i]);
  if (r.console_fd >= 0)
    close (r.console_fd);
  if (r.seccomp)
    json_decref (r.seccomp);
  process_free (&r.proc);
  state_free (&r.st);
  cg_layout_free (&r.cg);
  free (o.pid_file);
  free (o.console_socket);
  return ret;
}
