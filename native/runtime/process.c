#include "process.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/util.h"
#include "caps.h"
#include "ns.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

int
process_set_rlimits (const struct rt_process *p, berth_error_t *err)
{
  for (size_t i = 0; i < p->n_rlimits; i++)
    {
      struct rlimit l = { (rlim_t) p->rlimits[i].soft, (rlim_t) p->rlimits[i].hard };
      if (setrlimit (p->rlimits[i].resource, &l) < 0)
        return berth_error (err, errno, "error setting rlimit type %s (soft %llu, hard %llu)", p->rlimits[i].type,
                            (unsigned long long) p->rlimits[i].soft, (unsigned long long) p->rlimits[i].hard);
    }
  return 0;
}

int
process_set_oom_score_adj (const struct rt_process *p, berth_error_t *err)
{
  if (!p->has_oom_score_adj)
    return 0;
  char value[16];
  snprintf (value, sizeof (value), "%d", p->oom_score_adj);
  cleanup_close int fd = open ("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return berth_error (err, errno, "open /proc/self/oom_score_adj");
  if (write (fd, value, strlen (value)) < 0)
    return berth_error (err, errno, "set oom_score_adj to %s", value);
  return 0;
}

int
process_set_hostname (const char *hostname, berth_error_t *err)
{
  if (hostname == NULL || *hostname == '\0')
    return 0;
  if (sethostname (hostname, strlen (hostname)) < 0)
    return berth_error (err, errno, "sethostname %s", hostname);
  return 0;
}

int
process_apply_sysctls (const struct rt_spec *spec, berth_error_t *err)
{
  for (size_t i = 0; i < spec->n_sysctls; i++)
    {
      const char *key = spec->sysctl_keys[i];
      if (strstr (key, "..") || strchr (key, '/') || key[0] == '.')
        return berth_error (err, 0, "invalid sysctl %s", key);
      cleanup_free char *path = NULL;
      if (asprintf (&path, "/proc/sys/%s", key) < 0)
        return berth_error (err, ENOMEM, "sysctl");
      for (char *c = path + strlen ("/proc/sys/"); *c; c++)
        if (*c == '.')
          *c = '/';
      cleanup_close int fd = open (path, O_WRONLY | O_CLOEXEC);
      if (fd < 0)
        return berth_error (err, errno, "sysctl %s: open %s", key, path);
      const char *v = spec->sysctl_values[i];
      if (write (fd, v, strlen (v)) < 0)
        return berth_error (err, errno, "sysctl %s=%s", key, v);
    }
  return 0;
}

static const char *
env_get (char **env, const char *name)
{
  size_t n = strlen (name);
  for (char **e = env; e && *e; e++)
    if (strncmp (*e, name, n) == 0 && (*e)[n] == '=')
      return *e + n + 1;
  return NULL;
}

static int
is_executable_file (const char *path)
{
  struct stat st;
  return stat (path, &st) == 0 && S_ISREG (st.st_mode) && (st.st_mode & 0111);
}

/* args[0] as execvp would find it, with the PATH of the process's own env. */
static int
find_executable (const struct rt_process *p, char **out, berth_error_t *err)
{
  const char *name = p->args[0];
  if (strchr (name, '/'))
    {
      struct stat st;
      if (stat (name, &st) < 0)
        return berth_error (err, errno, "exec: \"%s\": stat %s", name, name);
      if (S_ISDIR (st.st_mode) || !(st.st_mode & 0111))
        return berth_error (err, EACCES, "exec: \"%s\"", name);
      *out = strdup (name);
      return *out ? 0 : berth_error (err, ENOMEM, "exec");
    }
  const char *path = env_get (p->env, "PATH");
  if (path == NULL)
    path = DEFAULT_PATH;
  cleanup_free char *dirs = strdup (path);
  if (dirs == NULL)
    return berth_error (err, ENOMEM, "exec");
  char *save = NULL;
  for (char *d = strtok_r (dirs, ":", &save); d; d = strtok_r (NULL, ":", &save))
    {
      char *candidate = NULL;
      if (asprintf (&candidate, "%s/%s", *d ? d : ".", name) < 0)
        return berth_error (err, ENOMEM, "exec");
      if (is_executable_file (candidate))
        {
          *out = candidate;
          return 0;
        }
      free (candidate);
    }
  return berth_error (err, 0, "exec: \"%s\": executable file not found in $PATH", name);
}

/* The home directory of uid in the container's /etc/passwd, or "/". */
static char *
home_of (uid_t uid)
{
  cleanup_fclose FILE *f = fopen ("/etc/passwd", "re");
  cleanup_free char *line = NULL;
  size_t cap = 0;
  while (f && getline (&line, &cap, f) > 0)
    {
      char *fields[7] = { 0 };
      char *p = line;
      int n = 0;
      for (; n < 7 && p; n++)
        fields[n] = strsep (&p, ":\n");
      if (n < 6 || fields[2] == NULL || fields[5] == NULL || *fields[2] == '\0')
        continue;
      char *end = NULL;
      unsigned long v = strtoul (fields[2], &end, 10);
      if (*end == '\0' && (uid_t) v == uid)
        return strdup (*fields[5] ? fields[5] : "/");
    }
  return strdup ("/");
}

int
process_prepare (const struct rt_process *p, json_t *seccomp, struct exec_plan *plan, berth_error_t *err)
{
  memset (plan, 0, sizeof (*plan));
  plan->p = p;
  if (chdir (p->cwd) < 0)
    return berth_error (err, errno, "chdir to cwd (\"%s\") set in config.json", p->cwd);
  if (find_executable (p, &plan->path, err) < 0)
    return -1;
  size_t n = 0;
  while (p->env && p->env[n])
    n++;
  plan->env = calloc (n + 2, sizeof (char *));
  if (plan->env == NULL)
    return berth_error (err, ENOMEM, "env");
  for (size_t i = 0; i < n; i++)
    if ((plan->env[i] = strdup (p->env[i])) == NULL)
      return berth_error (err, ENOMEM, "env");
  if (env_get (p->env, "HOME") == NULL)
    {
      cleanup_free char *home = home_of (p->uid);
      if (home == NULL || asprintf (&plan->env[n], "HOME=%s", home) < 0)
        return berth_error (err, ENOMEM, "env");
    }
  return rt_seccomp_compile (seccomp, &plan->seccomp, err);
}

static int
switch_user (const struct rt_process *p, berth_error_t *err)
{
  if (setgroups (p->n_additional_gids, p->additional_gids) < 0)
    return berth_error (err, errno, "setgroups");
  if (setresgid (p->gid, p->gid, p->gid) < 0)
    return berth_error (err, errno, "setgid %u", (unsigned) p->gid);
  if (setresuid (p->uid, p->uid, p->uid) < 0)
    return berth_error (err, errno, "setuid %u", (unsigned) p->uid);
  return 0;
}

/* The AppArmor profile the process takes on at execve, as aa_change_onexec sets it. Where the kernel has
 * no AppArmor the write fails: an error, never a process that runs unconfined. */
static int
apparmor_onexec (const char *profile, berth_error_t *err)
{
  if (profile == NULL)
    return 0;
  cleanup_close int fd = open ("/proc/thread-self/attr/apparmor/exec", O_WRONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT)
    fd = open ("/proc/thread-self/attr/exec", O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return berth_error (err, errno, "apply AppArmor profile %s: open the process's attr/exec", profile);
  cleanup_free char *line = NULL;
  if (asprintf (&line, "exec %s", profile) < 0)
    return berth_error (err, ENOMEM, "AppArmor profile");
  if (write (fd, line, strlen (line)) < 0)
    return berth_error (err, errno, "apply AppArmor profile %s (is it loaded?)", profile);
  return 0;
}

int
process_exec (struct exec_plan *plan, int *userns_fd, berth_error_t *err)
{
  const struct rt_process *p = plan->p;
  /* The profile is set while the process is still the host's root (before the user namespace). */
  if (apparmor_onexec (p->apparmor_profile, err) < 0 || ns_join_user (userns_fd, err) < 0)
    return -1;
  /* Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while it is still there. */
  if (!p->no_new_privileges && rt_seccomp_load (plan->seccomp, err) < 0)
    return -1;
  if (p->has_caps)
    {
      if (caps_apply_bounding (&p->caps, err) < 0)
        return -1;
      if (prctl (PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
        return berth_error (err, errno, "prctl PR_SET_KEEPCAPS");
    }
  if (switch_user (p, err) < 0)
    return -1;
  if (p->has_caps)
    {
      if (prctl (PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
        return berth_error (err, errno, "prctl PR_SET_KEEPCAPS");
      if (caps_apply (&p->caps, err) < 0)
        return -1;
    }
  if (p->no_new_privileges && prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return berth_error (err, errno, "prctl PR_SET_NO_NEW_PRIVS");
  umask (p->has_umask ? p->umask : 022);
  /* Whatever fds the caller passed beyond stdio do not reach the container process. */
  if (syscall (SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
    return berth_error (err, errno, "close_range");
  if (p->no_new_privileges && rt_seccomp_load (plan->seccomp, err) < 0)
    return -1;
  execve (plan->path, p->args, plan->env);
  return berth_error (err, errno, "exec %s", plan->path);
}

void
exec_plan_free (struct exec_plan *plan)
{
  free (plan->path);
  strv_free (plan->env);
  rt_seccomp_free (plan->seccomp);
  memset (plan, 0, sizeof (*plan));
}
