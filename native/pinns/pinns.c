/* berth-pinns: creates a pod's namespaces and pins them with bind mounts, so that they outlive this
 * process and containers can join them by path. No pause container, no image.
 *
 *   berth-pinns --dir DIR --id ID [--net] [--ipc] [--uts] [--user --uid-map C:H:N --gid-map C:H:N]
 *               [--hostname NAME] [--sysctl KEY=VALUE]...
 *
 * A child makes the namespaces (the user namespace first, so that it owns the others), sets the hostname
 * in the new UTS namespace, brings loopback up in the new network namespace and writes the sysctls inside
 * them; this process writes the user namespace's maps (a privileged writer may map any range) and pins
 * DIR/<kind>/ID for each namespace from the child's /proc/PID/ns. On any failure everything made so far is
 * undone and the error, with errno and context, is printed to stderr; the exit status is 1. */
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
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/version.h"
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
  const char *uid_map;   /* C:H:N, for --user */
  const char *gid_map;
  const char *hostname;
  const char *sysctls[MAX_SYSCTLS];
  int n_sysctls;
};

/* The user namespace first: the child unshares it before the others, and it is pinned like them. */
static struct ns_kind kinds[] = {
  { "user", CLONE_NEWUSER, 0, 0 },
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
bind_ns (const struct options *o, pid_t child, struct ns_kind *k, berth_error_t *err)
{
  cleanup_free char *source = NULL;
  cleanup_free char *target = NULL;
  if (asprintf (&source, "/proc/%d/ns/%s", (int) child, k->name) < 0)
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

/* The child's half: its namespaces and what is set inside them. With a user namespace it waits after
 * unsharing it until the parent has written its maps (the namespaces made next belong to it). */
static int
make_namespaces (const struct options *o, int flags, int to_parent, int from_parent, berth_error_t *err)
{
  if (flags & CLONE_NEWUSER)
    {
      char go;
      if (unshare (CLONE_NEWUSER) < 0)
        return berth_error (err, errno, "unshare the user namespace");
      if (safe_write (to_parent, "u", 1, err) < 0)
        return -1;
      if (read (from_parent, &go, 1) != 1)
        return berth_error (err, errno, "wait for the user namespace's maps");
      /* The namespace's root: IPC sysctls are writable only by the owning namespace's root uid. */
      if (setresgid (0, 0, 0) < 0 || setresuid (0, 0, 0) < 0)
        return berth_error (err, errno, "become root in the new user namespace");
    }
  if (unshare (flags & ~CLONE_NEWUSER) < 0)
    return berth_error (err, errno, "unshare");
  if (o->hostname && sethostname (o->hostname, strlen (o->hostname)) < 0)
    return berth_error (err, errno, "sethostname %s", o->hostname);
  if ((flags & CLONE_NEWNET) && loopback_up (err) < 0)
    return -1;
  for (int i = 0; i < o->n_sysctls; i++)
    if (apply_sysctl (o->sysctls[i], err) < 0)
      return -1;
  return 0;
}

/* Reports to the parent ('k', or 'e' and the message), then stays (its namespaces pinnable) until the
 * parent closes its end. */
static void __attribute__ ((noreturn))
child_main (const struct options *o, int flags, int to_parent, int from_parent)
{
  berth_error_t err = NULL;
  if (make_namespaces (o, flags, to_parent, from_parent, &err) < 0)
    {
      char msg[1024];
      int n = snprintf (msg, sizeof (msg), "e%s", err && err->msg ? err->msg : "failed");
      if (write (to_parent, msg, (size_t) (n < (int) sizeof (msg) ? n : (int) sizeof (msg) - 1)) < 0)
        _exit (1);
      _exit (1);
    }
  char c;
  if (write (to_parent, "k", 1) != 1)
    _exit (1);
  while (read (from_parent, &c, 1) > 0)
    ;
  _exit (0);
}

/* "C:H:N" as a /proc/PID/{uid,gid}_map line. */
static int
write_map (pid_t child, const char *file, const char *spec, berth_error_t *err)
{
  unsigned long c, h, n;
  char extra;
  if (spec == NULL || sscanf (spec, "%lu:%lu:%lu%c", &c, &h, &n, &extra) != 3 || n == 0 || c > UINT32_MAX || h > UINT32_MAX
      || n > UINT32_MAX || c + n > (unsigned long) UINT32_MAX + 1 || h + n > (unsigned long) UINT32_MAX + 1)
    return berth_error (err, 0, "%s: expected CONTAINER:HOST:LENGTH, got %s", file, spec ? spec : "nothing");
  char line[96], path[64];
  int len = snprintf (line, sizeof (line), "%lu %lu %lu\n", c, h, n);
  snprintf (path, sizeof (path), "/proc/%d/%s", (int) child, file);
  cleanup_close int fd = open (path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return berth_error (err, errno, "open %s", path);
  if (safe_write (fd, line, (size_t) len, err) < 0)
    return berth_error_wrap (err, "write %s", path);
  return 0;
}

/* One byte from the child: `want`, or its error message. */
static int
expect_child (int from_child, char want, berth_error_t *err)
{
  char buf[1024];
  ssize_t n = read (from_child, buf, sizeof (buf) - 1);
  if (n < 0)
    return berth_error (err, errno, "read from the namespace child");
  if (n == 0)
    return berth_error (err, 0, "the namespace child exited without a word");
  buf[n] = '\0';
  if (buf[0] == want && n == 1)
    return 0;
  if (buf[0] == 'e')
    return berth_error (err, 0, "%s", buf + 1);
  return berth_error (err, 0, "unexpected word from the namespace child: %c", buf[0]);
}

static int
pin_child (struct options *o, pid_t child, int flags, int to_child, int from_child, berth_error_t *err)
{
  if (flags & CLONE_NEWUSER)
    {
      if (expect_child (from_child, 'u', err) < 0 || write_map (child, "uid_map", o->uid_map, err) < 0
          || write_map (child, "gid_map", o->gid_map, err) < 0 || safe_write (to_child, "g", 1, err) < 0)
        return -1;
    }
  if (expect_child (from_child, 'k', err) < 0)
    return -1;
  for (size_t i = 0; i < N_KINDS; i++)
    if (kinds[i].wanted && bind_ns (o, child, &kinds[i], err) < 0)
      return -1;
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
  if ((flags & ~CLONE_NEWUSER) == 0)
    return berth_error (err, 0, "no namespace asked for (--net, --ipc, --uts)");
  if (o->hostname && !(flags & CLONE_NEWUTS))
    return berth_error (err, 0, "--hostname needs --uts");
  if (!(flags & CLONE_NEWUSER) != (o->uid_map == NULL && o->gid_map == NULL))
    return berth_error (err, 0, "--user needs --uid-map and --gid-map, and they need --user");
  int down[2], up[2];
  if (pipe2 (down, O_CLOEXEC) < 0)
    return berth_error (err, errno, "pipe");
  if (pipe2 (up, O_CLOEXEC) < 0)
    {
      close (down[0]);
      close (down[1]);
      return berth_error (err, errno, "pipe");
    }
  fflush (NULL);
  pid_t child = fork ();
  if (child < 0)
    berth_error (err, errno, "fork");
  else if (child == 0)
    {
      close (down[1]);
      close (up[0]);
      child_main (o, flags, up[1], down[0]);
    }
  close (down[0]);
  close (up[1]);
  int r = child < 0 ? -1 : pin_child (o, child, flags, down[1], up[0], err);
  close (down[1]);
  close (up[0]);
  if (child > 0)
    {
      if (r < 0)
        kill (child, SIGKILL);
      waitpid (child, NULL, 0);
    }
  return r;
}

static void
usage (FILE *f)
{
  fprintf (f, "usage: berth-pinns --dir DIR --id ID [--net] [--ipc] [--uts] [--user --uid-map C:H:N --gid-map C:H:N] [--hostname NAME] "
              "[--sysctl KEY=VALUE]...\n");
}

int
main (int argc, char **argv)
{
  if (berth_print_version (argc, argv, "berth-pinns"))
    return 0;
  static const struct option longopts[] = {
    { "dir", required_argument, NULL, 'd' },     { "id", required_argument, NULL, 'i' },
    { "net", no_argument, NULL, 'n' },           { "ipc", no_argument, NULL, 'p' },
    { "uts", no_argument, NULL, 'u' },           { "hostname", required_argument, NULL, 'h' },
    { "sysctl", required_argument, NULL, 's' },  { "help", no_argument, NULL, '?' },
    { "user", no_argument, NULL, 'U' },          { "uid-map", required_argument, NULL, 'M' },
    { "gid-map", required_argument, NULL, 'G' },
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
        case 'U': kinds[0].wanted = 1; break;
        case 'n': kinds[1].wanted = 1; break;
        case 'p': kinds[2].wanted = 1; break;
        case 'u': kinds[3].wanted = 1; break;
        case 'M': o.uid_map = optarg; break;
        case 'G': o.gid_map = optarg; break;
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
