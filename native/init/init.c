/* berth-init: PID 1 of a pod that shares one PID namespace among its containers. No image, no
 * pause container: a few KiB that reap orphans and wait to be told to go.
 *
 *   berth-init --pid-file FILE [--pin FILE] [--cgroup-v1 DIR]... [--cgroup-v2 DIR]
 *
 * Creates a PID namespace, forks its first process (this program, as PID 1 inside it), writes that
 * process's host PID to FILE atomically and, with --pin, bind-mounts its /proc/PID/ns/pid onto the pin
 * file so that containers can join the namespace by path. With --cgroup-v1/--cgroup-v2 (the pod's
 * cgroup, already made, in each hierarchy) the init starts inside it. The launcher then exits; the init outlives it
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

#include "../common/version.h"
#include "../common/cgroup.h"
#include "../common/cleanup.h"
#include "../common/error.h"
#include "../common/util.h"

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if __has_feature(address_sanitizer)
/* Under AddressSanitizer (make -C native sanitize): no leak check at exit. LeakSanitizer stops the world
 * from a thread it clones, and after unshare(CLONE_NEWPID) that clone lands in the new namespace, where it
 * cannot find this process's threads: the check never ends. ASAN_OPTIONS can still turn it on. */
const char *__asan_default_options (void);
const char *
__asan_default_options (void)
{
  return "detect_leaks=0";
}
#endif

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

/* The hierarchies a pod's cgroup can be in: v1 controllers, named ones and a hybrid host's unified one. */
#define MAX_CGROUP_DIRS 16

struct init_opts
{
  const char *pid_file;
  const char *pin;
  const char *v1[MAX_CGROUP_DIRS];
  size_t n_v1;
  const char *v2;
};

static int
usage (void)
{
  fprintf (stderr, "usage: berth-init --pid-file FILE [--pin FILE] [--cgroup-v1 DIR]... [--cgroup-v2 DIR]\n");
  return 2;
}

static int
parse_args (int argc, char **argv, struct init_opts *o)
{
  static const struct option longopts[] = {
    { "pid-file", required_argument, NULL, 'p' },
    { "pin", required_argument, NULL, 'n' },
    { "cgroup-v1", required_argument, NULL, '1' },
    { "cgroup-v2", required_argument, NULL, '2' },
    { NULL, 0, NULL, 0 },
  };
  int c;
  while ((c = getopt_long (argc, argv, "", longopts, NULL)) != -1)
    {
      if (c == 'p')
        o->pid_file = optarg;
      else if (c == 'n')
        o->pin = optarg;
      else if (c == '1' && o->n_v1 < MAX_CGROUP_DIRS)
        o->v1[o->n_v1++] = optarg;
      else if (c == '2')
        o->v2 = optarg;
      else
        return -1;
    }
  return o->pid_file != NULL && optind == argc ? 0 : -1;
}

/* The launcher (single-threaded) moves itself into each v1 cgroup by writing "0" to its `tasks`: a thread
 * moving itself takes no global lock, where a write of another process's pid to cgroup.procs waits for an
 * RCU grace period (5-15 ms). The init forked next inherits them. */
static int
join_v1_self (const struct init_opts *o, berth_error_t *err)
{
  for (size_t i = 0; i < o->n_v1; i++)
    if (cg_write (o->v1[i], "tasks", "0", err) < 0)
      return -1;
  return 0;
}

static int
fail (berth_error_t *err)
{
  berth_error_print (stderr, "berth-init", *err);
  berth_error_release (err);
  return 1;
}

int
main (int argc, char **argv)
{
  if (berth_print_version (argc, argv, "berth-init"))
    return 0;
  struct init_opts o;
  memset (&o, 0, sizeof (o));
  if (parse_args (argc, argv, &o) < 0)
    return usage ();

  berth_error_t err = NULL;
  if (join_v1_self (&o, &err) < 0)
    return fail (&err);
  cleanup_close int v2_fd = -1;
  if (o.v2 && (v2_fd = open (o.v2, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    {
      berth_error (&err, errno, "open %s", o.v2);
      return fail (&err);
    }
  if (unshare (CLONE_NEWPID) < 0)
    {
      berth_error (&err, errno, "unshare the PID namespace");
      return fail (&err);
    }
  /* Born in the unified hierarchy's cgroup where the kernel can (clone3), else moved in after the fork. */
  int born_in = 0;
  pid_t pid = cg_fork_into (v2_fd, &born_in);
  if (pid < 0)
    {
      berth_error (&err, errno, "fork the pod init");
      return fail (&err);
    }
  if (pid == 0)
    {
      if (v2_fd >= 0)
        close (v2_fd);
      _exit (run_init ());
    }

  char pid_text[32];
  snprintf (pid_text, sizeof (pid_text), "%d", (int) pid);
  if ((o.v2 && !born_in && cg_write (o.v2, "cgroup.procs", pid_text, &err) < 0)
      || (o.pin && pin_ns (pid, o.pin, &err) < 0) || write_pid_file (o.pid_file, pid, &err) < 0)
    {
      kill (pid, SIGKILL);
      waitpid (pid, NULL, 0);
      if (o.pin)
        {
          umount2 (o.pin, MNT_DETACH);
          unlink (o.pin);
        }
      return fail (&err);
    }
  return 0;
}
