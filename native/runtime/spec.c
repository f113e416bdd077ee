#include "spec.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/util.h"
#include "caps.h"

static const struct
{
  const char *type;
  const char *proc;
  int flag;
} ns_kinds[] = {
  { "mount", "mnt", CLONE_NEWNS },     { "network", "net", CLONE_NEWNET }, { "ipc", "ipc", CLONE_NEWIPC },
  { "uts", "uts", CLONE_NEWUTS },      { "pid", "pid", CLONE_NEWPID },     { "cgroup", "cgroup", CLONE_NEWCGROUP },
  { "user", "user", CLONE_NEWUSER },   { "time", "time", CLONE_NEWTIME },
};

int
ns_flag_from_type (const char *type)
{
  for (size_t i = 0; i < sizeof (ns_kinds) / sizeof (ns_kinds[0]); i++)
    if (strcmp (ns_kinds[i].type, type) == 0)
      return ns_kinds[i].flag;
  return 0;
}

const char *
ns_proc_name (int flag)
{
  for (size_t i = 0; i < sizeof (ns_kinds) / sizeof (ns_kinds[0]); i++)
    if (ns_kinds[i].flag == flag)
      return ns_kinds[i].proc;
  return NULL;
}

const char *
ns_type_name (int flag)
{
  for (size_t i = 0; i < sizeof (ns_kinds) / sizeof (ns_kinds[0]); i++)
    if (ns_kinds[i].flag == flag)
      return ns_kinds[i].type;
  return NULL;
}

static const struct
{
  const char *name;
  int resource;
} rlimit_names[] = {
  { "RLIMIT_AS", RLIMIT_AS },           { "RLIMIT_CORE", RLIMIT_CORE },         { "RLIMIT_CPU", RLIMIT_CPU },
  { "RLIMIT_DATA", RLIMIT_DATA },       { "RLIMIT_FSIZE", RLIMIT_FSIZE },       { "RLIMIT_LOCKS", RLIMIT_LOCKS },
  { "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK }, { "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE }, { "RLIMIT_NICE", RLIMIT_NICE },
  { "RLIMIT_NOFILE", RLIMIT_NOFILE },   { "RLIMIT_NPROC", RLIMIT_NPROC },       { "RLIMIT_RSS", RLIMIT_RSS },
  { "RLIMIT_RTPRIO", RLIMIT_RTPRIO },   { "RLIMIT_RTTIME", RLIMIT_RTTIME },     { "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
  { "RLIMIT_STACK", RLIMIT_STACK },
};

void
strv_free (char **v)
{
  if (v == NULL)
    return;
  for (char **p = v; *p; p++)
    free (*p);
  free (v);
}

static int
dup_string (json_t *v, const char *what, char **out, berth_error_t *err)
{
  if (v == NULL || json_is_null (v))
    return 0;
  if (!json_is_string (v))
    return berth_error (err, 0, "invalid spec: %s must be a string", what);
  *out = strdup (json_string_value (v));
  if (*out == NULL)
    return berth_error (err, ENOMEM, "%s", what);
  return 0;
}

/* A JSON array of strings as a NULL-terminated vector (empty when absent). */
static int
dup_strv (json_t *arr, const char *what, char ***out, berth_error_t *err)
{
  size_t n = arr && json_is_array (arr) ? json_array_size (arr) : 0;
  if (arr && !json_is_null (arr) && !json_is_array (arr))
    return berth_error (err, 0, "invalid spec: %s must be an array", what);
  char **v = calloc (n + 1, sizeof (char *));
  if (v == NULL)
    return berth_error (err, ENOMEM, "%s", what);
  for (size_t i = 0; i < n; i++)
    {
      json_t *s = json_array_get (arr, i);
      if (!json_is_string (s))
        {
          strv_free (v);
          return berth_error (err, 0, "invalid spec: %s[%zu] must be a string", what, i);
        }
      v[i] = strdup (json_string_value (s));
      if (v[i] == NULL)
        {
          strv_free (v);
          return berth_error (err, ENOMEM, "%s", what);
        }
    }
  *out = v;
  return 0;
}

static int
get_uint (json_t *v, const char *what, uint64_t *out, berth_error_t *err)
{
  if (!json_is_integer (v) || json_integer_value (v) < 0)
    return berth_error (err, 0, "invalid spec: %s must be a non-negative integer", what);
  *out = (uint64_t) json_integer_value (v);
  return 0;
}

static int
caps_set (json_t *arr, const char *what, uint64_t *out, berth_error_t *err)
{
  *out = 0;
  if (arr == NULL || json_is_null (arr))
    return 0;
  if (!json_is_array (arr))
    return berth_error (err, 0, "invalid spec: %s must be an array", what);
  size_t i;
  json_t *v;
  json_array_foreach (arr, i, v)
  {
    if (!json_is_string (v))
      return berth_error (err, 0, "invalid spec: %s[%zu] must be a string", what, i);
    int cap = cap_number (json_string_value (v));
    if (cap < 0)
      {
        /* As runc: a capability this kernel or library does not know is skipped with a warning. */
        continue;
      }
    *out |= 1ULL << cap;
  }
  return 0;
}

/* A uid or gid: 0 to 2^32 - 2 ((uid_t) -1 means "no change" to the kernel; more would be cut). */
static int
get_id (json_t *v, const char *what, uint32_t *out, berth_error_t *err)
{
  uint64_t x = 0;
  if (get_uint (v, what, &x, err) < 0)
    return -1;
  if (x >= UINT32_MAX)
    return berth_error (err, 0, "invalid spec: %s %llu is out of range", what, (unsigned long long) x);
  *out = (uint32_t) x;
  return 0;
}

/* process.user: uid, gid, umask, additionalGids. */
static int
parse_user (json_t *user, struct rt_process *p, berth_error_t *err)
{
  if (!json_is_object (user))
    return 0;
  json_t *x;
  uint32_t id;
  if ((x = json_object_get (user, "uid")) != NULL)
    {
      if (get_id (x, "process.user.uid", &id, err) < 0)
        return -1;
      p->uid = (uid_t) id;
    }
  if ((x = json_object_get (user, "gid")) != NULL)
    {
      if (get_id (x, "process.user.gid", &id, err) < 0)
        return -1;
      p->gid = (gid_t) id;
    }
  if ((x = json_object_get (user, "umask")) != NULL && !json_is_null (x))
    {
      uint64_t v = 0;
      if (get_uint (x, "process.user.umask", &v, err) < 0)
        return -1;
      if (v > 0777)
        return berth_error (err, 0, "invalid spec: process.user.umask %llo is not a mode", (unsigned long long) v);
      p->has_umask = 1;
      p->umask = (mode_t) v;
    }
  json_t *gids = json_object_get (user, "additionalGids");
  if (!json_is_array (gids) || json_array_size (gids) == 0)
    return 0;
  p->additional_gids = calloc (json_array_size (gids), sizeof (gid_t));
  if (p->additional_gids == NULL)
    return berth_error (err, ENOMEM, "additionalGids");
  size_t i;
  json_array_foreach (gids, i, x)
  {
    if (get_id (x, "process.user.additionalGids[]", &id, err) < 0)
      return -1;
    p->additional_gids[p->n_additional_gids++] = (gid_t) id;
  }
  return 0;
}

/* process.capabilities: each set by name; no object leaves the capabilities as they are. */
static int
parse_caps (json_t *caps, struct rt_process *p, berth_error_t *err)
{
  if (!json_is_object (caps))
    return 0;
  p->has_caps = 1;
  if (caps_set (json_object_get (caps, "bounding"), "capabilities.bounding", &p->caps.bounding, err) < 0
      || caps_set (json_object_get (caps, "effective"), "capabilities.effective", &p->caps.effective, err) < 0
      || caps_set (json_object_get (caps, "permitted"), "capabilities.permitted", &p->caps.permitted, err) < 0
      || caps_set (json_object_get (caps, "inheritable"), "capabilities.inheritable", &p->caps.inheritable, err) < 0
      || caps_set (json_object_get (caps, "ambient"), "capabilities.ambient", &p->caps.ambient, err) < 0)
    return -1;
  return 0;
}

/* process.rlimits: a known type each, with soft and hard. */
static int
parse_rlimits (json_t *rlimits, struct rt_process *p, berth_error_t *err)
{
  if (!json_is_array (rlimits) || json_array_size (rlimits) == 0)
    return 0;
  p->rlimits = calloc (json_array_size (rlimits), sizeof (struct rt_rlimit));
  if (p->rlimits == NULL)
    return berth_error (err, ENOMEM, "rlimits");
  size_t i;
  json_t *r;
  json_array_foreach (rlimits, i, r)
  {
    const char *type = json_string_value (json_object_get (r, "type"));
    struct rt_rlimit *l = &p->rlimits[p->n_rlimits];
    l->resource = -1;
    for (size_t k = 0; type && k < sizeof (rlimit_names) / sizeof (rlimit_names[0]); k++)
      if (strcmp (rlimit_names[k].name, type) == 0)
        l->resource = rlimit_names[k].resource;
    if (l->resource < 0)
      return berth_error (err, 0, "invalid spec: unknown rlimit type %s", type ? type : "(none)");
    l->type = strdup (type);
    if (l->type == NULL)
      return berth_error (err, ENOMEM, "rlimits");
    p->n_rlimits++;
    if (get_uint (json_object_get (r, "soft"), "rlimit soft", &l->soft, err) < 0
        || get_uint (json_object_get (r, "hard"), "rlimit hard", &l->hard, err) < 0)
      return -1;
  }
  return 0;
}

int
process_parse (json_t *obj, struct rt_process *p, berth_error_t *err)
{
  memset (p, 0, sizeof (*p));
  if (!json_is_object (obj))
    return berth_error (err, 0, "invalid spec: process must be an object");
  p->terminal = json_is_true (json_object_get (obj, "terminal"));
  if (parse_user (json_object_get (obj, "user"), p, err) < 0)
    return -1;
  if (dup_strv (json_object_get (obj, "args"), "process.args", &p->args, err) < 0
      || dup_strv (json_object_get (obj, "env"), "process.env", &p->env, err) < 0
      || dup_string (json_object_get (obj, "cwd"), "process.cwd", &p->cwd, err) < 0
      || dup_string (json_object_get (obj, "apparmorProfile"), "process.apparmorProfile", &p->apparmor_profile, err) < 0)
    return -1;
  if (p->apparmor_profile && (p->apparmor_profile[0] == '\0' || strpbrk (p->apparmor_profile, "\n")))
    return berth_error (err, 0, "invalid spec: process.apparmorProfile must be one line, not empty");
  if (p->args[0] == NULL)
    return berth_error (err, 0, "invalid spec: process.args must not be empty");
  if (p->cwd == NULL || p->cwd[0] != '/')
    return berth_error (err, 0, "invalid spec: process.cwd %s is not an absolute path", p->cwd ? p->cwd : "(none)");
  if (parse_caps (json_object_get (obj, "capabilities"), p, err) < 0
      || parse_rlimits (json_object_get (obj, "rlimits"), p, err) < 0)
    return -1;
  p->no_new_privileges = json_is_true (json_object_get (obj, "noNewPrivileges"));
  json_t *oom = json_object_get (obj, "oomScoreAdj");
  if (json_is_integer (oom))
    {
      json_int_t v = json_integer_value (oom);
      if (v < -1000 || v > 1000)
        return berth_error (err, 0, "invalid spec: process.oomScoreAdj %lld is not from -1000 to 1000", (long long) v);
      p->has_oom_score_adj = 1;
      p->oom_score_adj = (int) v;
    }
  return 0;
}

void
process_free (struct rt_process *p)
{
  free (p->additional_gids);
  strv_free (p->args);
  strv_free (p->env);
  free (p->cwd);
  free (p->apparmor_profile);
  for (size_t i = 0; i < p->n_rlimits; i++)
    free (p->rlimits[i].type);
  free (p->rlimits);
  memset (p, 0, sizeof (*p));
}

int
json_load_path (const char *path, json_t **out, berth_error_t *err)
{
  cleanup_close int fd = strcmp (path, "-") == 0 ? dup (0) : open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return berth_error (err, errno, "open %s", path);
  cleanup_free char *text = NULL;
  size_t len = 0;
  if (read_all_fd (fd, path, &text, &len, err) < 0)
    return -1;
  json_error_t jerr;
  *out = json_loadb (text, len, 0, &jerr);
  if (*out == NULL)
    return berth_error (err, 0, "parse %s: %s (line %d)", path, jerr.text, jerr.line);
  return 0;
}

/* A mount's uidMappings and gidMappings make it an idmapped bind. berth-runtime maps it with the
 * container's own user namespace (berthd gives a mount no other mapping), so only their presence counts;
 * both or neither, as runc wants. */
static int
parse_mount_idmap (json_t *m, struct rt_mount *d, berth_error_t *err)
{
  size_t uids = json_array_size (json_object_get (m, "uidMappings"));
  size_t gids = json_array_size (json_object_get (m, "gidMappings"));
  if ((uids == 0) != (gids == 0))
    return berth_error (err, 0, "invalid spec: mount %s has uidMappings or gidMappings but not both", d->destination);
  d->idmap = uids > 0;
  return 0;
}

static int
parse_mounts (json_t *arr, struct rt_spec *s, berth_error_t *err)
{
  if (!json_is_array (arr))
    return 0;
  s->mounts = calloc (json_array_size (arr) + 1, sizeof (struct rt_mount));
  if (s->mounts == NULL)
    return berth_error (err, ENOMEM, "mounts");
  size_t i;
  json_t *m;
  json_array_foreach (arr, i, m)
  {
    struct rt_mount *d = &s->mounts[s->n_mounts++];
    if (dup_string (json_object_get (m, "destination"), "mounts[].destination", &d->destination, err) < 0
        || dup_string (json_object_get (m, "type"), "mounts[].type", &d->type, err) < 0
        || dup_string (json_object_get (m, "source"), "mounts[].source", &d->source, err) < 0
        || dup_strv (json_object_get (m, "options"), "mounts[].options", &d->options, err) < 0)
      return -1;
    if (d->destination == NULL || d->destination[0] != '/')
      return berth_error (err, 0, "invalid spec: mount destination %s is not an absolute path", d->destination ? d->destination : "(none)");
    if (parse_mount_idmap (m, d, err) < 0)
      return -1;
  }
  return 0;
}

static int
parse_linux (json_t *lx, struct rt_spec *s, berth_error_t *err)
{
  if (!json_is_object (lx))
    return 0;
  json_t *ns = json_object_get (lx, "namespaces");
  s->namespaces = calloc (json_is_array (ns) ? json_array_size (ns) + 1 : 1, sizeof (struct rt_namespace));
  if (s->namespaces == NULL)
    return berth_error (err, ENOMEM, "namespaces");
  size_t i;
  json_t *v;
  if (json_is_array (ns))
    json_array_foreach (ns, i, v)
    {
      const char *type = json_string_value (json_object_get (v, "type"));
      int flag = type ? ns_flag_from_type (type) : 0;
      if (flag == 0)
        return berth_error (err, 0, "invalid spec: unknown namespace type %s", type ? type : "(none)");
      if (flag == CLONE_NEWTIME)
        return berth_error (err, 0, "%s namespaces are not supported by berth-runtime", type);
      if (spec_namespace (s, flag) != NULL)
        return berth_error (err, 0, "invalid spec: namespace %s listed twice", type);
      struct rt_namespace *n = &s->namespaces[s->n_namespaces++];
      n->flag = flag;
      if (dup_string (json_object_get (v, "path"), "namespaces[].path", &n->path, err) < 0)
        return -1;
      if (n->path && *n->path == '\0')
        {
          free (n->path);
          n->path = NULL;
        }
      /* A user namespace is joined, never made: its maps are written by a privileged process (berthd
       * pins the pod's), and the init joins it last, once the rootfs and everything else is set up. */
      if (flag == CLONE_NEWUSER && n->path == NULL)
        return berth_error (err, 0, "a new user namespace is not supported by berth-runtime: give the path of an existing one");
    }
  json_t *devs = json_object_get (lx, "devices");
  if (json_is_array (devs))
    {
      s->devices = calloc (json_array_size (devs) + 1, sizeof (struct rt_device));
      if (s->devices == NULL)
        return berth_error (err, ENOMEM, "devices");
      json_array_foreach (devs, i, v)
      {
        struct rt_device *d = &s->devices[s->n_devices++];
        const char *type = json_string_value (json_object_get (v, "type"));
        if (dup_string (json_object_get (v, "path"), "devices[].path", &d->path, err) < 0)
          return -1;
        if (d->path == NULL || d->path[0] != '/' || type == NULL || strlen (type) != 1 || strchr ("cbup", type[0]) == NULL)
          return berth_error (err, 0, "invalid spec: device %s needs an absolute path and a type c, b, u or p", d->path ? d->path : "(none)");
        d->type = type[0];
        d->major = (long) json_integer_value (json_object_get (v, "major"));
        d->minor = (long) json_integer_value (json_object_get (v, "minor"));
        json_t *mode = json_object_get (v, "fileMode");
        if (json_is_integer (mode))
          {
            d->has_mode = 1;
            d->mode = (mode_t) json_integer_value (mode);
          }
        d->uid = (uid_t) json_integer_value (json_object_get (v, "uid"));
        d->gid = (gid_t) json_integer_value (json_object_get (v, "gid"));
      }
    }
  if (dup_strv (json_object_get (lx, "maskedPaths"), "linux.maskedPaths", &s->masked_paths, err) < 0
      || dup_strv (json_object_get (lx, "readonlyPaths"), "linux.readonlyPaths", &s->readonly_paths, err) < 0
      || dup_string (json_object_get (lx, "cgroupsPath"), "linux.cgroupsPath", &s->cgroups_path, err) < 0
      || dup_string (json_object_get (lx, "rootfsPropagation"), "linux.rootfsPropagation", &s->rootfs_propagation, err) < 0)
    return -1;
  json_t *sysctl = json_object_get (lx, "sysctl");
  if (json_is_object (sysctl))
    {
      size_t n = json_object_size (sysctl);
      s->sysctl_keys = calloc (n + 1, sizeof (char *));
      s->sysctl_values = calloc (n + 1, sizeof (char *));
      if (s->sysctl_keys == NULL || s->sysctl_values == NULL)
        return berth_error (err, ENOMEM, "sysctl");
      const char *key;
      json_object_foreach (sysctl, key, v)
      {
        if (!json_is_string (v))
          return berth_error (err, 0, "invalid spec: sysctl %s must be a string", key);
        s->sysctl_keys[s->n_sysctls] = strdup (key);
        s->sysctl_values[s->n_sysctls] = strdup (json_string_value (v));
        if (s->sysctl_keys[s->n_sysctls] == NULL || s->sysctl_values[s->n_sysctls] == NULL)
          return berth_error (err, ENOMEM, "sysctl");
        s->n_sysctls++;
      }
    }
  s->resources = json_object_get (lx, "resources");
  s->seccomp = json_object_get (lx, "seccomp");
  if (s->seccomp && json_is_null (s->seccomp))
    s->seccomp = NULL;
  return 0;
}

const struct rt_namespace *
spec_namespace (const struct rt_spec *spec, int flag)
{
  for (size_t i = 0; i < spec->n_namespaces; i++)
    if (spec->namespaces[i].flag == flag)
      return &spec->namespaces[i];
  return NULL;
}

int
spec_load (const char *bundle, struct rt_spec *s, berth_error_t *err)
{
  memset (s, 0, sizeof (*s));
  cleanup_free char *path = NULL;
  if (asprintf (&path, "%s/config.json", bundle) < 0)
    return berth_error (err, ENOMEM, "config path");
  json_t *json;
  if (json_load_path (path, &json, err) < 0)
    return -1;
  return spec_parse (json, bundle, s, err);
}

int
spec_parse (json_t *json, const char *bundle, struct rt_spec *s, berth_error_t *err)
{
  memset (s, 0, sizeof (*s));
  s->json = json;
  s->bundle = strdup (bundle);
  if (s->bundle == NULL)
    return berth_error (err, ENOMEM, "bundle");
  json_t *root = json_object_get (s->json, "root");
  const char *root_path = json_string_value (json_object_get (root, "path"));
  if (root_path == NULL || *root_path == '\0')
    return berth_error (err, 0, "invalid spec: root.path is missing");
  cleanup_free char *joined = NULL;
  if (root_path[0] == '/')
    joined = strdup (root_path);
  else if (asprintf (&joined, "%s/%s", bundle, root_path) < 0)
    joined = NULL;
  if (joined == NULL)
    return berth_error (err, ENOMEM, "rootfs");
  s->rootfs = realpath (joined, NULL);
  if (s->rootfs == NULL)
    return berth_error (err, errno, "rootfs %s", joined);
  s->root_readonly = json_is_true (json_object_get (root, "readonly"));
  if (dup_string (json_object_get (s->json, "hostname"), "hostname", &s->hostname, err) < 0)
    return -1;
  json_t *process = json_object_get (s->json, "process");
  if (process == NULL)
    return berth_error (err, 0, "invalid spec: process is missing");
  if (process_parse (process, &s->process, err) < 0 || parse_mounts (json_object_get (s->json, "mounts"), s, err) < 0
      || parse_linux (json_object_get (s->json, "linux"), s, err) < 0)
    return -1;
  if (s->namespaces == NULL)
    return berth_error (err, 0, "invalid spec: linux is missing");
  if (s->masked_paths == NULL && dup_strv (NULL, "", &s->masked_paths, err) < 0)
    return -1;
  if (s->readonly_paths == NULL && dup_strv (NULL, "", &s->readonly_paths, err) < 0)
    return -1;
  if (s->hostname && *s->hostname && spec_namespace (s, CLONE_NEWUTS) == NULL)
    return berth_error (err, 0, "unable to set hostname without a private UTS namespace");
  for (size_t i = 0; i < s->n_mounts; i++)
    if (s->mounts[i].idmap && spec_namespace (s, CLONE_NEWUSER) == NULL)
      return berth_error (err, 0, "invalid spec: mount %s is idmapped but the container has no user namespace", s->mounts[i].destination);
  return 0;
}

void
spec_free (struct rt_spec *s)
{
  for (size_t i = 0; i < s->n_mounts; i++)
    {
      free (s->mounts[i].destination);
      free (s->mounts[i].type);
      free (s->mounts[i].source);
      strv_free (s->mounts[i].options);
    }
  free (s->mounts);
  for (size_t i = 0; i < s->n_namespaces; i++)
    free (s->namespaces[i].path);
  free (s->namespaces);
  for (size_t i = 0; i < s->n_devices; i++)
    free (s->devices[i].path);
  free (s->devices);
  strv_free (s->masked_paths);
  strv_free (s->readonly_paths);
  strv_free (s->sysctl_keys);
  strv_free (s->sysctl_values);
  free (s->cgroups_path);
  free (s->rootfs_propagation);
  free (s->hostname);
  free (s->rootfs);
  free (s->bundle);
  process_free (&s->process);
  if (s->json)
    json_decref (s->json);
  memset (s, 0, sizeof (*s));
}
