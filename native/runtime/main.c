/* berth-runtime: an OCI runtime (runtime-spec 1.0.2) with the part of runc's command line berth uses,
 * so that berth drives it, runc or crun alike.
 *
 *   berth-runtime [--root DIR] [--log FILE] [--log-format text|json] [--systemd-cgroup] COMMAND ...
 *     create --bundle DIR --pid-file FILE [--console-socket SOCKET] [--no-pivot] ID
 *     start ID | state ID | kill [--all] ID [SIGNAL] | delete [--force] ID
 *     exec --process FILE [--pid-file FILE] [--detach] [--console-socket SOCKET] [--tty] ID
 *     update --resources FILE ID
 *
 * --systemd-cgroup (cgroup v2 hosts) makes `create` put the container in a transient systemd unit
 * named by linux.cgroupsPath "slice:prefix:name"; later commands find the unit in the state.
 *
 * The state of the containers is kept in DIR (default /run/berth/runtime). Errors are reported as runc
 * reports them: a line in the --log file (text or JSON) and the message on stderr. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/version.h"
#include "../common/cleanup.h"
#include "rtlog.h"
#include "runtime.h"

static const struct
{
  const char *name;
  int (*fn) (const struct global_opts *g, int argc, char **argv);
} commands[] = {
  { "create", cmd_create }, { "start", cmd_start }, { "state", cmd_state },   { "kill", cmd_kill },
  { "delete", cmd_delete }, { "exec", cmd_exec },   { "update", cmd_update },
};

static void
usage (FILE *f)
{
  fprintf (f, "usage: berth-runtime [--root DIR] [--log FILE] [--log-format text|json] [--systemd-cgroup] COMMAND [OPTIONS] ID\n"
              "commands: create, start, state, kill, delete, exec, update\n");
}

int
main (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "root", required_argument, NULL, 'r' },      { "log", required_argument, NULL, 'l' },
    { "log-format", required_argument, NULL, 'f' }, { "systemd-cgroup", no_argument, NULL, 's' },
    { "debug", no_argument, NULL, 'd' },           { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'v' },         { NULL, 0, NULL, 0 },
  };
  struct global_opts g = { DEFAULT_ROOT, 0 };
  const char *log_path = NULL, *log_format = NULL;
  int systemd = 0, c;
  while ((c = getopt_long (argc, argv, "+hv", longopts, NULL)) != -1)
    {
      switch (c)
        {
        case 'r': g.root = optarg; break;
        case 'l': log_path = optarg; break;
        case 'f': log_format = optarg; break;
        case 's': systemd = 1; break;
        case 'd': break;
        case 'h': usage (stdout); return 0;
        case 'v': printf ("berth-runtime version %s\nspec: 1.0.2\n", BERTH_VERSION); return 0;
        default: usage (stderr); return 2;
        }
    }
  berth_error_t err = NULL;
  cleanup_free char *root = absolute_path (g.root);
  if (root == NULL)
    {
      fprintf (stderr, "berth-runtime: out of memory\n");
      return 1;
    }
  g.root = root;
  if (rtlog_open (log_path, log_format, &err) < 0)
    {
      rtlog_report (&err);
      return 1;
    }
  g.systemd_cgroup = systemd;
  if (optind >= argc)
    {
      usage (stderr);
      return 2;
    }
  const char *name = argv[optind];
  for (size_t i = 0; i < sizeof (commands) / sizeof (commands[0]); i++)
    if (strcmp (commands[i].name, name) == 0)
      return commands[i].fn (&g, argc - optind, argv + optind);
  berth_error (&err, 0, "unknown command %s", name);
  rtlog_report (&err);
  return 1;
}
