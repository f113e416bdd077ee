/* berth-init: PID 1 of a pod that shares one PID namespace among its containers. No image, no
 * pause container: a few KiB that reap orphans and wait to be told to go.
 *
 *   berth-init --pid-file FILE [--pin FILE]
 *
 * Creates a PID namespace, forks its first process (this program, as PID 1 inside it), writes that
 * process's host PID to FILE atomically and, with --pin, bind-mounts its /proc/PID/ns/pid onto the pin
 * file so that containers can join the namespace by path. The launcher then exits; the init outlives it
 * (and berthd), reaping every child, until SIGTERM or SIGKILL. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/error.h"
#include "../common/util.h"

static void
reap_all (void)
{
  while (waitpid (-1, NULL, WNOHANG) > 0)
    ;
}

static void
ignore_signal (int sig)
{
  (void) sig;
}

/* The init's whole life: signals are blocked and taken synchronously, so none can be missed. A
 * namespace's init only receives the signals it has a handler for, hence the no-op handlers. */
static int
run_init (void)
{
  static const int handled[] = { SIGTERM, SIGINT, SIGQUIT, SIGCHLD };
  struct sigaction sa;
  memset (&sa, 0, sizeof (sa));
  sa.sa_handler = ignore_signal;
  for (size_t i = 0; i < sizeof (handled) / sizeof (handled[0]); i++)
    if (sigaction (handled[i], &sa, NULL) < 0)
      return 1;
  sigset_t all;
  sigfillset (&all);
  if (sigprocmask (SIG_BLOCK, &all, NULL) < 0)
    return 1;
  if (setsid () < 0)
    return 1;
  prctl (PR_SET_NAME, "berth-init", 0, 0, 0);
  int null = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0)
    {
      dup2 (null, 0);
      dup2 (null, 1);
      dup2 (null, 2);
      if (null > 2)
        close (null);
    }
  if (chdir ("/") < 0)
    return 1;
  for (;;)
    {
      siginfo_t info;
      int sig = sigwaitinfo (&all, &info);
      if (sig < 0 && errno == EINTR)
        continue;
      if (sig == SIGCHLD)
        reap_all ();
      else if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT)
        return 0;
    }
}

static int
pin_ns (pid_t pid, const char *pin, berth_error_t *err)
{
  cleanup_free char *source = NULL;
  if (asprintf (&source, "/proc/%d/ns/pid", (int) pid) < 0)
    return berth_error (err, ENOMEM, "pin path");
  cleanup_close int fd = open (pin, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (fd < 0)
    return berth_error (err, errno, "create %s", pin);
  if (mount (source, pin, NULL, MS_BIND, NULL) < 0)
    {
      int saved = errno;
      unlink (pin);
      return berth_error (err, saved, "bind-mount %s on %s", source, pin);
    }
  return 0;
}

int
main (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "pid-file", required_argument, NULL, 'p' },
    { "pin", required_argument, NULL, 'n' },
    { NULL, 0, NULL, 0 },
  };
  const char *pid_file = NULL, *pin = NULL;
  int c;
  while ((c = getopt_long (argc, argv, "", longopts, NULL)) != -1)
    {
      if (c == 'p')
        pid_file = optarg;
      else if (c == 'n')
        pin = optarg;
      else
        {
          fprintf (stderr, "usage: berth-init --pid-file FILE [--pin FILE]\n");
          return 2;
        }
    }
  if (pid_file == NULL || optind != argc)
    {
      fprintf (stderr, "usage: berth-init --pid-file FILE [--pin FILE]\n");
      return 2;
    }

  berth_error_t err = NULL;
  if (unshare (CLONE_NEWPID) < 0)
    {
      berth_error (&err, errno, "unshare the PID namespace");
      berth_error_print (stderr, "berth-init", err);
      berth_error_release (&err);
      return 1;
    }
  pid_t pid = fork ();
  if (pid < 0)
    {
      berth_error (&err, errno, "fork the pod init");
      berth_error_print (stderr, "berth-init", err);
      berth_error_release (&err);
      return 1;
    }
  if (pid == 0)
    _exit (run_init ());

  if ((pin && pin_ns (pid, pin, &err) < 0) || write_pid_file (pid_file, pid, &err) < 0)
    {
      berth_error_print (stderr, "berth-init", err);
      berth_error_release (&err);
      kill (pid, SIGKILL);
      waitpid (pid, NULL, 0);
      if (pin)
        {
          umount2 (pin, MNT_DETACH);
          unlink (pin);
        }
      return 1;
    }
  return 0;
}
