/* berth-pinns: creates a pod's namespaces and pins them with bind mounts, so that they outlive this
 * process and containers can join them by path. No pause container, no image.
 *
 *   berth-pinns --dir DIR --id ID [--net] [--ipc] [--uts] [--hostname NAME] [--sysctl KEY=VALUE]...
 *
 * Pins DIR/net/ID, DIR/ipc/ID and DIR/uts/ID for the namespaces asked for, sets the hostname in the new
 * UTS namespace, brings loopback up in the new network namespace, and writes the sysctls inside the new
 * namespaces. On any failure everything made so far is undone and the error, with errno and context, is
 * printed to stderr; the exit status is 1. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/error.h"
#include "../common/util.h"

#define MAX_SYSCTLS 64

struct ns_kind
{
  const char *name;   /* as in /proc/self/ns/<name> and DIR/<name>/ID */
  int flag;
  int wanted;
  int pinned;
};

struct options
{
  const char *dir;
  const char *id;
  const char *hostname;
  const char *sysctls[MAX_SYSCTLS];
  int n_sysctls;
};

static struct ns_kind kinds[] = {
  { "net", CLONE_NEWNET, 0, 0 },
  { "ipc", CLONE_NEWIPC, 0, 0 },
  { "uts", CLONE_NEWUTS, 0, 0 },
};
#define N_KINDS (sizeof (kinds) / sizeof (kinds[0]))

static int
valid_id (const char *id)
{
  if (id == NULL || *id == '\0' || strlen (id) > 128)
    return 0;
  for (const char *p = id; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
      return 0;
  return 1;
}

static int
pin_path (const struct options *o, const char *kind, char **out, berth_error_t *err)
{
  if (asprintf (out, "%s/%s/%s", o->dir, kind, o->id) < 0)
    return berth_error (err, ENOMEM, "pin path");
  return 0;
}

/* Creates DIR/<kind>/ID as an empty file to bind-mount onto. */
static int
create_pin_target (const struct options *o, const char *kind, berth_error_t *err)
{
  cleanup_free char *kdir = NULL;
  cleanup_free char *target = NULL;
  if (asprintf (&kdir, "%s/%s", o->dir, kind) < 0)
    return berth_error (err, ENOMEM, "pin dir");
  if (mkdir (o->dir, 0711) < 0 && errno != EEXIST)
    return berth_error (err, errno, "mkdir %s", o->dir);
  if (mkdir (kdir, 0711) < 0 && errno != EEXIST)
    return berth_error (err, errno, "mkdir %s", kdir);
  if (pin_path (o, kind, &target, err) < 0)
    return -1;
  cleanup_close int fd = open (target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (fd < 0)
    return berth_error (err, errno, "create %s", target);
  return 0;
}

static int
bind_ns (const struct options *o, struct ns_kind *k, berth_error_t *err)
{
  cleanup_free char *source = NULL;
  cleanup_free char *target = NULL;
  if (asprintf (&source, "/proc/self/ns/%s", k->name) < 0)
    return berth_error (err, ENOMEM, "ns path");
  if (pin_path (o, k->name, &target, err) < 0)
    return -1;
  if (mount (source, target, NULL, MS_BIND, NULL) < 0)
    return berth_error (err, errno, "bind-mount %s on %s", source, target);
  k->pinned = 1;
  return 0;
}

static void
undo (const struct options *o)
{
  for (size_t i = 0; i < N_KINDS; i++)
    {
      if (!kinds[i].wanted)
        continue;
      cleanup_free char *target = NULL;
      berth_error_t ignored = NULL;
      if (pin_path (o, kinds[i].name, &target, &ignored) < 0)
        {
          berth_error_release (&ignored);
          continue;
        }
      if (kinds[i].pinned)
        umount2 (target, MNT_DETACH);
      unlink (target);
    }
}

static int
loopback_up (berth_error_t *err)
{
  cleanup_close int sock = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0)
    return berth_error (err, errno, "socket for loopback");
  struct ifreq ifr;
  memset (&ifr, 0, sizeof (ifr));
  strncpy (ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl (sock, SIOCGIFFLAGS, &ifr) < 0)
    return berth_error (err, errno, "get flags of lo");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl (sock, SIOCSIFFLAGS, &ifr) < 0)
    return berth_error (err, errno, "bring lo up");
  return 0;
}

/* KEY=VALUE with dots in KEY, written to /proc/sys/KEY/with/slashes. */
static int
apply_sysctl (const char *kv, berth_error_t *err)
{
  const char *eq = strchr (kv, '=');
  if (eq == NULL || eq == kv)
    return berth_error (err, 0, "sysctl %s: expected KEY=VALUE", kv);
  cleanup_free char *key = strndup (kv, (size_t) (eq - kv));
  if (key == NULL)
    return berth_error (err, ENOMEM, "sysctl %s", kv);
  if (strstr (key, "..") != NULL || key[0] == '.' || strchr (key, '/') != NULL)
    return berth_error (err, 0, "sysctl %s: invalid key", key);
  for (char *p = key; *p; p++)
    if (*p == '.')
      *p = '/';
  cleanup_free char *file = NULL;
  if (asprintf (&file, "/proc/sys/%s", key) < 0)
    return berth_error (err, ENOMEM, "sysctl %s", kv);
  cleanup_close int fd = open (file, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return berth_error (err, errno, "sysctl %.*s: open %s", (int) (eq - kv), kv, file);
  const char *value = eq + 1;
  if (safe_write (fd, value, strlen (value), err) < 0)
    return berth_error_wrap (err, "sysctl %.*s=%s", (int) (eq - kv), kv, value);
  return 0;
}

static int
run (struct options *o, berth_error_t *err)
{
  int flags = 0;
  for (size_t i = 0; i < N_KINDS; i++)
    if (kinds[i].wanted)
      {
        if (create_pin_target (o, kinds[i].name, err) < 0)
          return -1;
        flags |= kinds[i].flag;
      }
  if (flags == 0)
    return berth_error (err, 0, "no namespace asked for (--net, --ipc, --uts)");
  if (unshare (flags) < 0)
    return berth_error (err, errno, "unshare");
  if (o->hostname)
    {
      if (!(flags & CLONE_NEWUTS))
        return berth_error (err, 0, "--hostname needs --uts");
      if (sethostname (o->hostname, strlen (o->hostname)) < 0)
        return berth_error (err, errno, "sethostname %s", o->hostname);
    }
  if ((flags & CLONE_NEWNET) && loopback_up (err) < 0)
    return -1;
  for (int i = 0; i < o->n_sysctls; i++)
    if (apply_sysctl (o->sysctls[i], err) < 0)
      return -1;
  for (size_t i = 0; i < N_KINDS; i++)
    if (kinds[i].wanted && bind_ns (o, &kinds[i], err) < 0)
      return -1;
  return 0;
}

static void
usage (FILE *f)
{
  fprintf (f, "usage: berth-pinns --dir DIR --id ID [--net] [--ipc] [--uts] [--hostname NAME] [--sysctl KEY=VALUE]...\n");
}

int
main (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "dir", required_argument, NULL, 'd' },     { "id", required_argument, NULL, 'i' },
    { "net", no_argument, NULL, 'n' },           { "ipc", no_argument, NULL, 'p' },
    { "uts", no_argument, NULL, 'u' },           { "hostname", required_argument, NULL, 'h' },
    { "sysctl", required_argument, NULL, 's' },  { "help", no_argument, NULL, '?' },
    { NULL, 0, NULL, 0 },
  };
  struct options o;
  memset (&o, 0, sizeof (o));
  int c;
  while ((c = getopt_long (argc, argv, "", longopts, NULL)) != -1)
    {
      switch (c)
        {
        case 'd': o.dir = optarg; break;
        case 'i': o.id = optarg; break;
        case 'n': kinds[0].wanted = 1; break;
        case 'p': kinds[1].wanted = 1; break;
        case 'u': kinds[2].wanted = 1; break;
        case 'h': o.hostname = optarg; break;
        case 's':
          if (o.n_sysctls >= MAX_SYSCTLS)
            {
              fprintf (stderr, "berth-pinns: more than %d sysctls\n", MAX_SYSCTLS);
              return 2;
            }
          o.sysctls[o.n_sysctls++] = optarg;
          break;
        default: usage (stderr); return 2;
        }
    }
  if (o.dir == NULL || o.dir[0] != '/' || !valid_id (o.id) || optind != argc)
    {
      usage (stderr);
      return 2;
    }
  berth_error_t err = NULL;
  if (run (&o, &err) < 0)
    {
      berth_error_print (stderr, "berth-pinns", err);
      berth_error_release (&err);
      undo (&o);
      return 1;
    }
  return 0;
}
