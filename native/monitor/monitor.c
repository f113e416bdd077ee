/* berth-monitor: one per container, in the spirit of conmon. It outlives berthd: it holds the
 * container's stdout and stderr, writes them to the CRI log, is the subreaper of the runtime's
 * processes, and records the container's exit status atomically in a file berthd reads.
 *
 *   berth-monitor --log FILE --exit-file FILE --pid-file FILE [--container-pid-file FILE] -- CMD...
 *
 * CMD is either the container process itself, or an OCI runtime's `create` (with
 * --container-pid-file naming the pid file the runtime writes): then the container's init, left behind
 * by the runtime, is reparented to the monitor and watched. SIGUSR1 reopens the log (after rotation). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/error.h"
#include "../common/util.h"
#include "log.h"

struct options
{
  const char *log_path;
  const char *exit_file;
  const char *pid_file;
  const char *container_pid_file;
  char **cmd;
};

struct state
{
  int log_fd;
  struct log_stream out, err;
  int out_fd, err_fd;
  pid_t runtime_pid;      /* the `create` process, when there is one */
  pid_t container_pid;    /* 0 until known */
  int done;
  int status;             /* wait status of the container */
};

static int
parse_options (int argc, char **argv, struct options *o)
{
  static const struct option longopts[] = {
    { "log", required_argument, NULL, 'l' },
    { "exit-file", required_argument, NULL, 'e' },
    { "pid-file", required_argument, NULL, 'p' },
    { "container-pid-file", required_argument, NULL, 'c' },
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
        default: return -1;
        }
    }
  if (!o->log_path || !o->exit_file || !o->pid_file || optind >= argc)
    return -1;
  o->cmd = argv + optind;
  return 0;
}

static pid_t
spawn (char **cmd, int out_w, int err_w, berth_error_t *err)
{
  pid_t pid = fork ();
  if (pid < 0)
    return berth_error (err, errno, "fork");
  if (pid == 0)
    {
      sigset_t none;
      sigemptyset (&none);
      sigprocmask (SIG_SETMASK, &none, NULL);
      int null = open ("/dev/null", O_RDONLY);
      if (null < 0 || dup2 (null, 0) < 0 || dup2 (out_w, 1) < 0 || dup2 (err_w, 2) < 0)
        _exit (127);
      execvp (cmd[0], cmd);
      fprintf (stderr, "berth-monitor: exec %s: %s\n", cmd[0], strerror (errno));
      _exit (127);
    }
  return pid;
}

static int
read_pid_file (const char *path, pid_t *pid, berth_error_t *err)
{
  cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return berth_error (err, errno, "open %s", path);
  cleanup_free char *text = NULL;
  if (read_all_fd (fd, path, &text, NULL, err) < 0)
    return -1;
  long v = strtol (text, NULL, 10);
  if (v <= 0)
    return berth_error (err, EINVAL, "%s holds no pid", path);
  *pid = (pid_t) v;
  return 0;
}

static int
write_pid (const char *path, pid_t pid, berth_error_t *err)
{
  char buf[32];
  int n = snprintf (buf, sizeof (buf), "%d\n", (int) pid);
  return write_file_atomic (path, buf, (size_t) n, 0644, err);
}

static int
write_exit (const char *path, int status, const char *error, berth_error_t *err)
{
  struct timespec ts;
  struct tm tm;
  char when[64];
  clock_gettime (CLOCK_REALTIME, &ts);
  gmtime_r (&ts.tv_sec, &tm);
  size_t n = strftime (when, sizeof (when), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf (when + n, sizeof (when) - n, ".%09ldZ", ts.tv_nsec);
  int code = WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
  int sig = WIFSIGNALED (status) ? WTERMSIG (status) : 0;
  char buf[512];
  int len = snprintf (buf, sizeof (buf), "{\"exitCode\":%d,\"signal\":%d,\"finishedAt\":\"%s\",\"error\":\"%s\"}\n", code, sig, when,
                      error ? error : "");
  return write_file_atomic (path, buf, (size_t) len, 0644, err);
}

/* Reads what a pipe has now; marks it closed (-1) at EOF. */
static int
drain (struct state *st, int *fd, struct log_stream *s, berth_error_t *err)
{
  char buf[65536];
  for (;;)
    {
      ssize_t n = read (*fd, buf, sizeof (buf));
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        return 0;
      if (n <= 0)
        {
          close (*fd);
          *fd = -1;
          return log_flush (st->log_fd, s, err);
        }
      if (log_feed (st->log_fd, s, buf, (size_t) n, err) < 0)
        return -1;
    }
}

static int
on_children (struct state *st, const struct options *o, berth_error_t *err)
{
  for (;;)
    {
      int status;
      pid_t pid = waitpid (-1, &status, WNOHANG);
      if (pid <= 0)
        return 0;
      if (pid == st->runtime_pid && st->container_pid == 0)
        {
          st->runtime_pid = 0;
          if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
            {
              st->status = status;
              st->done = 1;
              return write_exit (o->exit_file, status, "the runtime's create failed", err);
            }
          if (read_pid_file (o->container_pid_file, &st->container_pid, err) < 0 || write_pid (o->pid_file, st->container_pid, err) < 0)
            return -1;
        }
      else if (pid == st->container_pid)
        {
          st->status = status;
          st->done = 1;
        }
    }
}

static int
run (const struct options *o, berth_error_t *err)
{
  struct state st;
  memset (&st, 0, sizeof (st));
  st.out.name = "stdout";
  st.err.name = "stderr";
  if (prctl (PR_SET_CHILD_SUBREAPER, 1) < 0)
    return berth_error (err, errno, "become a subreaper");
  st.log_fd = log_open (o->log_path, err);
  if (st.log_fd < 0)
    return -1;

  sigset_t mask;
  sigemptyset (&mask);
  sigaddset (&mask, SIGCHLD);
  sigaddset (&mask, SIGUSR1);
  sigaddset (&mask, SIGPIPE);
  if (sigprocmask (SIG_BLOCK, &mask, NULL) < 0)
    return berth_error (err, errno, "block signals");
  cleanup_close int sfd = signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0)
    return berth_error (err, errno, "signalfd");

  int out[2], errp[2];
  if (pipe2 (out, O_CLOEXEC) < 0 || pipe2 (errp, O_CLOEXEC) < 0)
    return berth_error (err, errno, "pipe");
  pid_t child = spawn (o->cmd, out[1], errp[1], err);
  if (child < 0)
    return -1;
  close (out[1]);
  close (errp[1]);
  st.out_fd = out[0];
  st.err_fd = errp[0];
  fcntl (st.out_fd, F_SETFL, O_NONBLOCK);
  fcntl (st.err_fd, F_SETFL, O_NONBLOCK);
  if (o->container_pid_file)
    st.runtime_pid = child;
  else
    {
      st.container_pid = child;
      if (write_pid (o->pid_file, child, err) < 0)
        return -1;
    }

  /* Until the container exits and its output is read to the end. */
  while (!st.done || st.out_fd >= 0 || st.err_fd >= 0)
    {
      struct pollfd fds[3] = { { sfd, POLLIN, 0 }, { st.out_fd, POLLIN, 0 }, { st.err_fd, POLLIN, 0 } };
      /* Once the container is gone, output its own children still hold open is read for at most 1 s. */
      int ret = poll (fds, 3, st.done ? 1000 : -1);
      if (ret < 0 && errno == EINTR)
        continue;
      if (ret < 0)
        return berth_error (err, errno, "poll");
      if (ret == 0)
        break;
      if (fds[0].revents & POLLIN)
        {
          struct signalfd_siginfo si;
          while (read (sfd, &si, sizeof (si)) == sizeof (si))
            {
              if (si.ssi_signo == SIGCHLD && on_children (&st, o, err) < 0)
                return -1;
              if (si.ssi_signo == SIGUSR1)
                {
                  int fd = log_open (o->log_path, err);
                  if (fd < 0)
                    return -1;
                  close (st.log_fd);
                  st.log_fd = fd;
                }
            }
        }
      if (st.out_fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP)) && drain (&st, &st.out_fd, &st.out, err) < 0)
        return -1;
      if (st.err_fd >= 0 && (fds[2].revents & (POLLIN | POLLHUP)) && drain (&st, &st.err_fd, &st.err, err) < 0)
        return -1;
    }
  if (log_flush (st.log_fd, &st.out, err) < 0 || log_flush (st.log_fd, &st.err, err) < 0)
    return -1;
  close (st.log_fd);
  if (st.runtime_pid == 0 && st.container_pid != 0)
    return write_exit (o->exit_file, st.status, NULL, err);
  return 0;
}

int
main (int argc, char **argv)
{
  struct options o;
  memset (&o, 0, sizeof (o));
  if (parse_options (argc, argv, &o) < 0)
    {
      fprintf (stderr, "usage: berth-monitor --log FILE --exit-file FILE --pid-file FILE [--container-pid-file FILE] -- CMD...\n");
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
