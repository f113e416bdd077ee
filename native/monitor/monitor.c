/* berth-monitor: one per container, in the spirit of conmon. It outlives berthd: it holds the
 * container's stdio, writes its output to the CRI log and to attach clients, feeds its stdin, is the
 * subreaper of the runtime's processes, and records the container's exit status atomically in a
 * file berthd reads. docs/monitor.md describes the command line, the files and the sockets.
 *
 *   berth-monitor --log FILE --exit-file FILE --pid-file FILE [--container-pid-file FILE]
 *                 [--stdin [--stdin-once]] [--tty --console-socket PATH]
 *                 [--attach-socket PATH [--wait-attach]] [--control-socket PATH] [--oom-cgroup DIR]
 *                 -- CMD...
 *
 * CMD is either the container process itself, or an OCI runtime's `create` (with
 * --container-pid-file naming the pid file the runtime writes): then the container's init, left behind
 * by the runtime, is reparented to the monitor and watched. With --wait-attach, CMD runs only once the
 * first attach client connected (for exec sessions, whose output must not go before berthd is there).
 * SIGUSR1 reopens the log (after rotation).
 *
 * The monitor runs one poll loop and never blocks elsewhere: the container's output is read as it
 * comes, written to the log and sent to attach clients without waiting for any of them. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "../common/version.h"
#include "../common/cleanup.h"
#include "../common/error.h"
#include "../common/util.h"
#include "attach.h"
#include "console.h"
#include "control.h"
#include "input.h"
#include "log.h"
#include "oom.h"
#include "status.h"

/* How long output is still read once the container is gone (its own children may hold it open). */
#define DRAIN_GRACE_MS 1000
/* Children reaped before the runtime told the container's pid, remembered in case one was it. */
#define REAPED_MAX 16
/* Reads of one output fd, and of one attach client, per turn of the loop. */
#define TURN_MAX 16
/* How long attach clients may take to receive the end of the output and the exit status. */
#define FINISH_MS 10000

struct options
{
  const char *log_path;
  const char *exit_file;
  const char *pid_file;
  const char *container_pid_file;
  const char *oom_cgroup;
  const char *console_socket;
  const char *attach_socket;
  const char *control_socket;
  bool stdin_pipe, stdin_once, tty, wait_attach, backpressure;
  char **cmd;
};

struct state
{
  const struct options *o;
  int log_fd;
  struct log_stream out, err;
  int out_fd, err_fd;
  int child_in, child_out, child_err;  /* CMD's stdio, held until it runs */
  bool started;           /* CMD runs (or ran) */
  pid_t runtime_pid;      /* the `create` process, when there is one */
  pid_t container_pid;    /* 0 until known */
  bool done;              /* the container exited, or was never created */
  int status;             /* wait status of the container, or of the failed runtime */
  bool oom_killed;
  struct oom_watch oom;   /* memory.events watched while the container runs (cgroup v2) */
  bool oom_watched;       /* the watch was set up */
  struct oom_watch pod_oom;  /* the parent cgroup's memory.events: its counts include the container's */
  const char *error;      /* why the container never ran */
  struct timespec done_at;
  struct { pid_t pid; int status; } reaped[REAPED_MAX];
  size_t nreaped;

  struct console console;
  struct attach attach;
  struct control control;
  struct input input;
  struct attach_client *stdin_owner;  /* the first client that sent stdin or half-closed (--stdin-once) */
  bool stdin_owned;
  bool have_winsize;                  /* a resize that came before the pty master did */
  struct winsize winsize;
};

/* Output is read in chunks of this size; each chunk is one attach frame. */
static char chunk[8192];
static char client_input[ATTACH_INPUT_MAX];

static const char usage[] =
  "usage: berth-monitor --log FILE --exit-file FILE --pid-file FILE [--container-pid-file FILE]\n"
  "                     [--stdin [--stdin-once]] [--tty --console-socket PATH]\n"
  "                     [--attach-socket PATH [--wait-attach] [--attach-backpressure]] [--control-socket PATH]\n"
  "                     [--oom-cgroup DIR]\n"
  "                     -- CMD...\n";

static int
parse_options (int argc, char **argv, struct options *o)
{
  static const struct option longopts[] = {
    { "log", required_argument, NULL, 'l' },
    { "exit-file", required_argument, NULL, 'e' },
    { "pid-file", required_argument, NULL, 'p' },
    { "container-pid-file", required_argument, NULL, 'c' },
    { "oom-cgroup", required_argument, NULL, 'm' },
    { "console-socket", required_argument, NULL, 'C' },
    { "attach-socket", required_argument, NULL, 'a' },
    { "control-socket", required_argument, NULL, 'k' },
    { "stdin", no_argument, NULL, 'i' },
    { "stdin-once", no_argument, NULL, 'o' },
    { "tty", no_argument, NULL, 't' },
    { "wait-attach", no_argument, NULL, 'w' },
    { "attach-backpressure", no_argument, NULL, 'B' },
    { NULL, 0, NULL, 0 },
  };
  int c;
  while ((c = getopt_long (argc, argv, "+", longopts, NULL)) != -1)
    {
      switch (c)
        {
        case 'l': o->log_path = optarg; break;
        case 'e': o->exit_file = optarg; break;
        case 'p': o->pid_file = optarg; break;
        case 'c': o->container_pid_file = optarg; break;
        case 'm': o->oom_cgroup = optarg; break;
        case 'C': o->console_socket = optarg; break;
        case 'a': o->attach_socket = optarg; break;
        case 'k': o->control_socket = optarg; break;
        case 'i': o->stdin_pipe = true; break;
        case 'o': o->stdin_once = true; break;
        case 't': o->tty = true; break;
        case 'w': o->wait_attach = true; break;
        case 'B': o->backpressure = true; break;
        default: return -1;
        }
    }
  if (!o->log_path || !o->exit_file || !o->pid_file || optind >= argc)
    return -1;
  if (o->tty != (o->console_socket != NULL))
    {
      fprintf (stderr, "berth-monitor: --tty and --console-socket go together\n");
      return -1;
    }
  if (o->stdin_once && !o->stdin_pipe)
    {
      fprintf (stderr, "berth-monitor: --stdin-once needs --stdin\n");
      return -1;
    }
  if ((o->wait_attach || o->backpressure) && !o->attach_socket)
    {
      fprintf (stderr, "berth-monitor: --wait-attach and --attach-backpressure need --attach-socket\n");
      return -1;
    }
  o->cmd = argv + optind;
  return 0;
}

/* With fd 0, 1 or 2 closed, a pipe could land there and lose its close-on-exec in the child. */
static int
ensure_std_fds (berth_error_t *err)
{
  for (int fd = 0; fd < 3; fd++)
    {
      if (fcntl (fd, F_GETFD) >= 0 || errno != EBADF)
        continue;
      int null = open ("/dev/null", O_RDWR);
      if (null < 0)
        return berth_error (err, errno, "open /dev/null");
      if (null != fd)
        return berth_error (err, EBADF, "fd %d is closed and could not be filled", fd);
    }
  return 0;
}

static pid_t
spawn (char **cmd, int in_r, int out_w, int err_w, berth_error_t *err)
{
  pid_t pid = fork ();
  if (pid < 0)
    return berth_error (err, errno, "fork");
  if (pid == 0)
    {
      sigset_t none;
      sigemptyset (&none);
      sigprocmask (SIG_SETMASK, &none, NULL);
      int in = in_r >= 0 ? in_r : open ("/dev/null", O_RDONLY);
      if (in < 0 || dup2 (in, 0) < 0 || dup2 (out_w, 1) < 0 || dup2 (err_w, 2) < 0)
        _exit (127);
      execvp (cmd[0], cmd);
      fprintf (stderr, "berth-monitor: exec %s: %s\n", cmd[0], strerror (errno));
      _exit (127);
    }
  return pid;
}

static void
close_child_fds (struct state *st)
{
  int *fds[] = { &st->child_in, &st->child_out, &st->child_err };
  for (size_t i = 0; i < sizeof (fds) / sizeof (fds[0]); i++)
    if (*fds[i] >= 0)
      {
        close (*fds[i]);
        *fds[i] = -1;
      }
}

/* With --oom-cgroup on cgroup v2, watches memory.events (held open, polled for POLLPRI) from before
 * the container runs: systemd removes a scope's cgroup as soon as its last process died, maybe before
 * the exit is seen. A watch that cannot be set up is reported on stderr; the read at the exit remains. */
static void
watch_oom (struct state *st)
{
  if (st->o->oom_cgroup == NULL || st->oom_watched)
    return;
  berth_error_t err = NULL;
  int ret = oom_watch_start (&st->oom, st->o->oom_cgroup, &err);
  if (ret < 0)
    {
      berth_error_print (stderr, "berth-monitor: watch OOM kills", err);
      berth_error_release (&err);
    }
  st->oom_watched = ret > 0;
  if (!st->oom_watched)
    return;
  /* The parent's counts are hierarchical and outlive the container's cgroup: they tell a kill whose
   * notification was deferred past the exit and past systemd's removal of the scope (see
   * container_exited). */
  cleanup_free char *parent = strdup (st->o->oom_cgroup);
  char *slash = parent ? strrchr (parent, '/') : NULL;
  if (slash == NULL || slash == parent)
    return;
  *slash = '\0';
  if (oom_watch_start (&st->pod_oom, parent, &err) < 0)
    {
      berth_error_print (stderr, "berth-monitor: watch the parent cgroup's OOM kills", err);
      berth_error_release (&err);
    }
}

static void
service_oom_watch (struct state *st)
{
  berth_error_t err = NULL;
  int ret = oom_watch_service (&st->oom, &err);
  if (ret < 0)
    {
      berth_error_print (stderr, "berth-monitor: watch OOM kills", err);
      berth_error_release (&err);
    }
  /* One kill is all it takes: no need to watch any further. */
  if (ret > 0)
    {
      st->oom_killed = true;
      oom_watch_close (&st->oom);
    }
}

/* The parent's memory.events changed: a kill of the container's own (its watch tells), or of a sibling
 * (its cgroup is still there and counts none): then the parent's count is the new baseline. */
static void
service_pod_oom_watch (struct state *st)
{
  berth_error_t err = NULL;
  int ret = oom_watch_service (&st->pod_oom, &err);
  if (st->oom_killed)
    oom_watch_close (&st->pod_oom);
  else if (ret > 0 && st->oom.fd >= 0)
    {
      service_oom_watch (st);
      if (!st->oom_killed && st->oom.fd >= 0)
        ret = oom_watch_rebase (&st->pod_oom, &err);
    }
  if (ret < 0)
    {
      berth_error_print (stderr, "berth-monitor: watch the parent cgroup's OOM kills", err);
      berth_error_release (&err);
    }
}

/* Runs CMD on the stdio setup made for it, and lets go of the child's ends of it. */
static int
start_cmd (struct state *st, berth_error_t *err)
{
  const struct options *o = st->o;
  /* CMD is the container: its cgroup is there already. */
  if (!o->container_pid_file)
    watch_oom (st);
  pid_t child = spawn (o->cmd, st->child_in, st->child_out, st->child_err, err);
  if (child < 0)
    return -1;
  st->started = true;
  close_child_fds (st);
  if (o->container_pid_file)
    st->runtime_pid = child;
  else
    {
      st->container_pid = child;
      if (write_pid_file (o->pid_file, child, err) < 0)
        return -1;
    }
  return 0;
}

static int
set_nonblock (int fd, berth_error_t *err)
{
  int flags = fcntl (fd, F_GETFL);
  if (flags < 0 || fcntl (fd, F_SETFL, flags | O_NONBLOCK) < 0)
    return berth_error (err, errno, "fcntl O_NONBLOCK");
  return 0;
}

static long
ms_since (const struct timespec *t)
{
  struct timespec now;
  clock_gettime (CLOCK_MONOTONIC, &now);
  return (now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

static int
reopen_log (struct state *st, berth_error_t *err)
{
  int fd = log_open (st->o->log_path, err);
  if (fd < 0)
    return -1;
  close (st->log_fd);
  st->log_fd = fd;
  return 0;
}

static int
apply_winsize (struct state *st, berth_error_t *err)
{
  if (!st->have_winsize || st->console.master_fd < 0)
    return 0;
  if (ioctl (st->console.master_fd, TIOCSWINSZ, &st->winsize) < 0)
    return berth_error (err, errno, "resize the terminal");
  return 0;
}

static int
on_control (void *ctx, const struct control_cmd *cmd, berth_error_t *err)
{
  struct state *st = ctx;
  switch (cmd->kind)
    {
    case CONTROL_REOPEN:
      return reopen_log (st, err);
    case CONTROL_RESIZE:
      if (!st->o->tty)
        return berth_error (err, 0, "the container has no terminal");
      memset (&st->winsize, 0, sizeof (st->winsize));
      st->winsize.ws_row = cmd->rows;
      st->winsize.ws_col = cmd->cols;
      st->have_winsize = true;
      return apply_winsize (st, err);
    }
  return berth_error (err, 0, "unknown command");
}

/* A client's stdin ended (it half-closed, was cut off or left). With --stdin-once, the end of the
 * first client that sent stdin, or that half-closed, is the end of the container's stdin. */
static void
on_input_end (void *ctx, struct attach_client *c)
{
  struct state *st = ctx;
  if (c->half_closed && !st->stdin_owned && st->input.fd >= 0)
    {
      st->stdin_owner = c;
      st->stdin_owned = true;
    }
  if (c != st->stdin_owner)
    return;
  st->stdin_owner = NULL;
  if (st->o->stdin_once)
    input_request_close (&st->input);
}

/* Takes the pty master if the runtime sent it; from then on it is the container's stdio. */
static int
service_console (struct state *st, berth_error_t *err)
{
  int ret = console_service (&st->console, err);
  if (ret <= 0)
    return ret;
  if (apply_winsize (st, err) < 0)
    return -1;
  if (st->o->stdin_pipe)
    {
      int fd = fcntl (st->console.master_fd, F_DUPFD_CLOEXEC, 3);
      if (fd < 0)
        return berth_error (err, errno, "dup the pty master");
      if (input_set (&st->input, fd, true, err) < 0)
        return -1;
    }
  return 0;
}

static void
container_exited (struct state *st, int status)
{
  st->status = status;
  st->done = true;
  clock_gettime (CLOCK_MONOTONIC, &st->done_at);
  if (st->o->oom_cgroup == NULL)
    return;
  /* Now, before the runtime's delete removes the cgroup (still right on cgroup v1, and on v2 when the
   * cgroup is still there). A cgroup already gone after the watch ran is no error: the watch saw
   * what there was, and a kill it saw stays. */
  long count = 0;
  berth_error_t err = NULL;
  if (oom_kill_count (st->o->oom_cgroup, &count, &err) < 0)
    {
      bool gone = err && (err->status == ENOENT || err->status == ENODEV);
      if (!(gone && st->oom_watched))
        berth_error_print (stderr, "berth-monitor: read the OOM kill count", err);
      berth_error_release (&err);
      /* Gone (systemd removed the scope once it was empty) before the watch was told of a kill: the
       * kernel defers a notification that comes within 1/100 s of the last one (as the "max" events of
       * the failed charges before an OOM kill do). A SIGKILL death while the parent counted a kill
       * that no sibling accounts for (siblings' kills are taken into the baseline as they come) is
       * that kill. */
      if (gone && !st->oom_killed && WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL
          && oom_watch_service (&st->pod_oom, &err) > 0)
        st->oom_killed = true;
      berth_error_release (&err);
      return;
    }
  if (count > 0)
    st->oom_killed = true;
}

static int
runtime_exited (struct state *st, int status, berth_error_t *err)
{
  st->runtime_pid = 0;
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    {
      st->status = status;
      st->error = "the runtime's create failed";
      st->done = true;
      clock_gettime (CLOCK_MONOTONIC, &st->done_at);
      return 0;
    }
  /* The runtime sent the pty master before it exited: take it before telling berthd the pid. */
  if (st->o->tty && service_console (st, err) < 0)
    return -1;
  if (read_pid_file (st->o->container_pid_file, &st->container_pid, err) < 0)
    return -1;
  /* The runtime made the cgroup; berthd starts the container once the pid file is there. */
  watch_oom (st);
  if (write_pid_file (st->o->pid_file, st->container_pid, err) < 0)
    return -1;
  for (size_t i = 0; i < st->nreaped; i++)
    if (st->reaped[i].pid == st->container_pid)
      container_exited (st, st->reaped[i].status);
  st->nreaped = 0;
  return 0;
}

static int
on_children (struct state *st, berth_error_t *err)
{
  for (;;)
    {
      int status;
      pid_t pid = waitpid (-1, &status, WNOHANG);
      if (pid < 0 && errno == EINTR)
        continue;
      if (pid <= 0)
        return 0;
      if (pid == st->runtime_pid)
        {
          if (runtime_exited (st, status, err) < 0)
            return -1;
        }
      else if (st->container_pid != 0 && pid == st->container_pid)
        {
          if (!st->done)
            container_exited (st, status);
        }
      else if (st->container_pid == 0 && st->runtime_pid != 0)
        {
          /* Perhaps the container, exited before the runtime told its pid. */
          if (st->nreaped == REAPED_MAX)
            {
              memmove (st->reaped, st->reaped + 1, sizeof (st->reaped[0]) * (REAPED_MAX - 1));
              st->nreaped--;
            }
          st->reaped[st->nreaped].pid = pid;
          st->reaped[st->nreaped].status = status;
          st->nreaped++;
        }
    }
}

static int
on_signals (struct state *st, int sfd, berth_error_t *err)
{
  struct signalfd_siginfo si;
  for (;;)
    {
      ssize_t n = read (sfd, &si, sizeof (si));
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        return 0;
      if (n != sizeof (si))
        return berth_error (err, n < 0 ? errno : EIO, "read signalfd");
      if (si.ssi_signo == SIGCHLD && on_children (st, err) < 0)
        return -1;
      if (si.ssi_signo == SIGUSR1)
        {
          berth_error_t rerr = NULL;
          if (reopen_log (st, &rerr) < 0)
            {
              /* Keep writing to the log that is open. */
              berth_error_print (stderr, "berth-monitor", rerr);
              berth_error_release (&rerr);
            }
        }
    }
}

/* Reads what an output fd has now into the log and to attach clients; closes it at its end (EOF,
 * or EIO from a pty master whose terminal is closed everywhere). */
static int
drain (struct state *st, int *fd, struct log_stream *s, int stream, berth_error_t *err)
{
  for (int turn = 0; turn < TURN_MAX && !attach_blocked (&st->attach); turn++)
    {
      ssize_t n = read (*fd, chunk, sizeof (chunk));
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
      if (n <= 0)
        {
          if (n < 0 && errno != EIO)
            fprintf (stderr, "berth-monitor: read the container's %s: %s\n", s->name, strerror (errno));
          close (*fd);
          *fd = -1;
          return log_flush (st->log_fd, s, err);
        }
      if (log_feed (st->log_fd, s, chunk, (size_t) n, err) < 0)
        return -1;
      attach_broadcast (&st->attach, stream, chunk, (size_t) n);
    }
  return 0;
}

/* Passes what a client sent on to the container's stdin, until it has to wait for the container. */
static void
read_client (struct state *st, struct attach_client *c)
{
  for (int turn = 0; turn < TURN_MAX && !input_pending (&st->input); turn++)
    {
      ssize_t n = attach_recv (&st->attach, c, client_input, sizeof (client_input));
      if (n == ATTACH_GONE)
        attach_drop (&st->attach, c, NULL);
      if (n <= 0)
        return;
      if (st->input.fd >= 0 && !st->stdin_owned)
        {
          st->stdin_owner = c;
          st->stdin_owned = true;
        }
      input_write (&st->input, client_input, (size_t) n);
    }
}

enum
{
  P_SIGNAL,
  P_OUT,
  P_ERR,
  P_MASTER,
  P_CONSOLE_LISTEN,
  P_CONSOLE_CONN,
  P_ATTACH,
  P_CONTROL,
  P_STDIN,
  P_OOM,
  P_OOM_POD,
  P_FIXED
};

static bool
ready (const struct pollfd *p)
{
  return p->fd >= 0 && (p->revents & (POLLIN | POLLOUT | POLLHUP | POLLERR));
}

/* When the container is done and its output drained (or the drain's grace is over with no client
 * behind): 1, the loop ends. Else 0, with the poll timeout in *timeout (-1: none). */
static int
drain_over (struct state *st, int *timeout)
{
  *timeout = -1;
  if (!st->done)
    return 0;
  if (st->out_fd < 0 && st->err_fd < 0 && st->console.master_fd < 0)
    return 1;
  long left = DRAIN_GRACE_MS - ms_since (&st->done_at);
  /* With backpressure the rest waits for the client, however long it takes. */
  if (left <= 0 && !attach_blocked (&st->attach))
    return 1;
  *timeout = left > 0 ? (int) left : -1;
  return 0;
}

/* The poll set: the fixed fds (P_*), then one per attach client and one per control client, each
 * client remembering its slot (pidx). The array grows as clients come; *n is its length. */
static int
fill_pollset (struct state *st, int sfd, struct pollfd **fds, size_t *cap, size_t *n, berth_error_t *err)
{
  size_t want = P_FIXED;
  for (struct attach_client *c = st->attach.clients; c; c = c->next)
    want++;
  for (struct control_client *c = st->control.clients; c; c = c->next)
    want++;
  if (want > *cap)
    {
      struct pollfd *bigger = realloc (*fds, want * 2 * sizeof (**fds));
      if (bigger == NULL)
        return berth_error (err, ENOMEM, "poll set");
      *fds = bigger;
      *cap = want * 2;
    }
  struct pollfd *f = *fds;
  bool pending = input_pending (&st->input);
  /* With backpressure, the container's output waits in its pipe while a client is behind. */
  bool hold = attach_blocked (&st->attach);
  f[P_SIGNAL] = (struct pollfd) { sfd, POLLIN, 0 };
  f[P_OUT] = (struct pollfd) { hold ? -1 : st->out_fd, POLLIN, 0 };
  f[P_ERR] = (struct pollfd) { hold ? -1 : st->err_fd, POLLIN, 0 };
  f[P_MASTER] = (struct pollfd) { hold ? -1 : st->console.master_fd, POLLIN, 0 };
  f[P_CONSOLE_LISTEN] = (struct pollfd) { st->console.listen_fd, POLLIN, 0 };
  f[P_CONSOLE_CONN] = (struct pollfd) { st->console.conn_fd, POLLIN, 0 };
  f[P_ATTACH] = (struct pollfd) { st->attach.listen_fd, POLLIN, 0 };
  f[P_CONTROL] = (struct pollfd) { st->control.listen_fd, POLLIN, 0 };
  f[P_STDIN] = (struct pollfd) { pending ? st->input.fd : -1, POLLOUT, 0 };
  /* Only POLLPRI (and POLLERR) tell a change: a kernfs file, like any file, always polls readable. */
  f[P_OOM] = (struct pollfd) { st->oom.fd, POLLPRI, 0 };
  f[P_OOM_POD] = (struct pollfd) { st->pod_oom.fd, POLLPRI, 0 };
  size_t i = P_FIXED;
  /* While the container has not taken the last input, clients are not read (nor polled for
   * input, which would spin on their pending data): their own sends block, not the monitor.
   * They are polled for output they have pending, and half-closed ones for leaving. */
  for (struct attach_client *c = st->attach.clients; c; c = c->next)
    {
      int events = attach_events (c, !pending);
      c->pidx = (int) i;
      f[i++] = (struct pollfd) { events < 0 ? -1 : c->fd, (short) (events < 0 ? 0 : events), 0 };
    }
  for (struct control_client *c = st->control.clients; c; c = c->next)
    {
      c->pidx = (int) i;
      f[i++] = (struct pollfd) { c->fd, POLLIN, 0 };
    }
  *n = i;
  return 0;
}

/* The fixed fds that are ready: new connections first (a client accepted now gets the output read
 * below), then the OOM watch, the signals, the container's output and its stdin. */
static int
service_fixed (struct state *st, int sfd, struct pollfd *fds, berth_error_t *err)
{
  if ((ready (&fds[P_CONSOLE_LISTEN]) || ready (&fds[P_CONSOLE_CONN])) && service_console (st, err) < 0)
    return -1;
  if (ready (&fds[P_ATTACH]) && attach_accept (&st->attach, err) < 0)
    return -1;
  if (!st->started && st->attach.clients && start_cmd (st, err) < 0)
    return -1;
  if (ready (&fds[P_CONTROL]) && control_accept (&st->control, err) < 0)
    return -1;
  /* Before the signals: an OOM kill is seen before the exit it caused. The kernel counts it before
   * it sends the SIGKILL, and wakes pollers of memory.events at once (kernfs reports POLLPRI |
   * POLLERR), unless the file was notified in the last 1/100 s (e.g. for the "max" events of the
   * charges that failed just before): cgroup_file_notify then defers the wake-up to a timer, which
   * can come after the exit, and the read at the exit is what is left. */
  if (fds[P_OOM].fd >= 0 && (fds[P_OOM].revents & (POLLPRI | POLLERR)))
    service_oom_watch (st);
  if (fds[P_OOM_POD].fd >= 0 && (fds[P_OOM_POD].revents & (POLLPRI | POLLERR)))
    service_pod_oom_watch (st);
  if (ready (&fds[P_SIGNAL]) && on_signals (st, sfd, err) < 0)
    return -1;
  if (st->out_fd >= 0 && ready (&fds[P_OUT]) && drain (st, &st->out_fd, &st->out, ATTACH_STDOUT, err) < 0)
    return -1;
  if (st->err_fd >= 0 && ready (&fds[P_ERR]) && drain (st, &st->err_fd, &st->err, ATTACH_STDERR, err) < 0)
    return -1;
  if (st->console.master_fd >= 0 && ready (&fds[P_MASTER]) && drain (st, &st->console.master_fd, &st->out, ATTACH_STDOUT, err) < 0)
    return -1;
  if (ready (&fds[P_STDIN]))
    input_flush (&st->input);
  return 0;
}

/* The clients whose slot is ready (a client may leave, and be freed, while it is served). */
static void
service_clients (struct state *st, struct pollfd *fds)
{
  struct control_client *cnext;
  for (struct control_client *c = st->control.clients; c; c = cnext)
    {
      cnext = c->next;
      if (c->pidx >= 0 && ready (&fds[c->pidx]))
        control_service (&st->control, c);
    }
  struct attach_client *anext;
  for (struct attach_client *c = st->attach.clients; c; c = anext)
    {
      anext = c->next;
      if (c->pidx < 0 || !ready (&fds[c->pidx]))
        continue;
      short revents = fds[c->pidx].revents;
      if (attach_service (&st->attach, c, revents))
        continue;
      if (!c->input_done && (revents & (POLLIN | POLLHUP | POLLERR)))
        read_client (st, c);
    }
}

static int
loop (struct state *st, int sfd, berth_error_t *err)
{
  cleanup_free struct pollfd *fds = NULL;
  size_t cap = 0;
  for (;;)
    {
      int timeout;
      if (drain_over (st, &timeout))
        return 0;
      size_t n = 0;
      if (fill_pollset (st, sfd, &fds, &cap, &n, err) < 0)
        return -1;
      int ret = poll (fds, n, timeout);
      if (ret < 0 && errno == EINTR)
        continue;
      if (ret < 0)
        return berth_error (err, errno, "poll");
      if (service_fixed (st, sfd, fds, err) < 0)
        return -1;
      service_clients (st, fds);
    }
}

/* Opens the log, the sockets and CMD's stdio; runs CMD unless it waits for an attach client. */
static int
setup (struct state *st, int *sfd, berth_error_t *err)
{
  const struct options *o = st->o;
  if (ensure_std_fds (err) < 0)
    return -1;
  if (prctl (PR_SET_CHILD_SUBREAPER, 1) < 0)
    return berth_error (err, errno, "become a subreaper");
  st->log_fd = log_open (o->log_path, err);
  if (st->log_fd < 0)
    return -1;

  sigset_t mask;
  sigemptyset (&mask);
  sigaddset (&mask, SIGCHLD);
  sigaddset (&mask, SIGUSR1);
  sigaddset (&mask, SIGPIPE);
  if (sigprocmask (SIG_BLOCK, &mask, NULL) < 0)
    return berth_error (err, errno, "block signals");
  *sfd = signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (*sfd < 0)
    return berth_error (err, errno, "signalfd");

  /* The console socket must be there before the runtime runs. */
  if (o->console_socket && console_listen (&st->console, o->console_socket, err) < 0)
    return -1;
  st->attach.backpressure = o->backpressure;
  if (o->attach_socket && attach_listen (&st->attach, o->attach_socket, err) < 0)
    return -1;
  if (o->control_socket && control_listen (&st->control, o->control_socket, err) < 0)
    return -1;

  cleanup_close int in_r = -1, in_w = -1, out_r = -1, out_w = -1, err_r = -1, err_w = -1;
  int p[2];
  if (o->stdin_pipe && !o->tty)
    {
      if (pipe2 (p, O_CLOEXEC) < 0)
        return berth_error (err, errno, "pipe");
      in_r = p[0];
      in_w = p[1];
    }
  if (pipe2 (p, O_CLOEXEC) < 0)
    return berth_error (err, errno, "pipe");
  out_r = p[0];
  out_w = p[1];
  if (pipe2 (p, O_CLOEXEC) < 0)
    return berth_error (err, errno, "pipe");
  err_r = p[0];
  err_w = p[1];
  if (set_nonblock (out_r, err) < 0 || set_nonblock (err_r, err) < 0)
    return -1;

  st->child_in = steal_fd (&in_r);
  st->child_out = steal_fd (&out_w);
  st->child_err = steal_fd (&err_w);
  st->out_fd = steal_fd (&out_r);
  st->err_fd = steal_fd (&err_r);
  if (in_w >= 0 && input_set (&st->input, steal_fd (&in_w), false, err) < 0)
    return -1;
  /* With --wait-attach, the loop starts CMD when the first attach client is accepted. */
  return o->wait_attach ? 0 : start_cmd (st, err);
}

/* The monitor's state: static, for its buffers (the log's line buffers, the pending stdin) are the
 * bulk of its memory and are touched only as far as they are used. */
static struct state state;

static int
run (const struct options *o, berth_error_t *err)
{
  struct state *st = &state;
  st->o = o;
  st->log_fd = st->out_fd = st->err_fd = -1;
  st->child_in = st->child_out = st->child_err = -1;
  st->out.name = "stdout";
  st->err.name = "stderr";
  console_init (&st->console);
  attach_init (&st->attach);
  st->attach.on_input_end = on_input_end;
  st->attach.ctx = st;
  control_init (&st->control, on_control, st);
  input_init (&st->input);
  oom_watch_init (&st->oom);
  oom_watch_init (&st->pod_oom);

  cleanup_close int sfd = -1;
  int ret = setup (st, &sfd, err);
  if (ret == 0)
    ret = loop (st, sfd, err);
  if (ret == 0 && st->log_fd >= 0)
    ret = log_flush (st->log_fd, &st->out, err) < 0 || log_flush (st->log_fd, &st->err, err) < 0 ? -1 : 0;
  /* The exit file first: a client that sees its attach connection end can read it. */
  char json[EXIT_JSON_MAX];
  int len = -1;
  if (ret == 0 && st->done)
    {
      len = exit_json (json, sizeof (json), st->status, st->oom_killed, st->error, err);
      ret = len < 0 ? -1 : write_exit_file (o->exit_file, json, (size_t) len, err);
    }

  close_child_fds (st);
  input_close (&st->input);
  control_close (&st->control);
  console_close (&st->console);
  oom_watch_close (&st->oom);
  oom_watch_close (&st->pod_oom);
  if (st->out_fd >= 0)
    close (st->out_fd);
  if (st->err_fd >= 0)
    close (st->err_fd);
  if (st->log_fd >= 0)
    close (st->log_fd);
  /* Last, for it may wait for clients: the end of the output, then the exit status, then EOF. */
  if (ret == 0 && st->done)
    attach_finish (&st->attach, json, (size_t) len, FINISH_MS);
  else
    attach_close (&st->attach);
  return ret;
}

int
main (int argc, char **argv)
{
  if (berth_print_version (argc, argv, "berth-monitor"))
    return 0;
  struct options o;
  memset (&o, 0, sizeof (o));
  if (parse_options (argc, argv, &o) < 0)
    {
      fputs (usage, stderr);
      return 2;
    }
  berth_error_t err = NULL;
  if (run (&o, &err) < 0)
    {
      berth_error_print (stderr, "berth-monitor", err);
      berth_error_release (&err);
      return 1;
    }
  return 0;
}
