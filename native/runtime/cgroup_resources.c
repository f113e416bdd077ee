/* linux.resources (OCI LinuxResources) written to cgroup v1 or v2 files. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "cgroups.h"
#include "devices_bpf.h"
#include "rtlog.h"

/* The dir of the container in the hierarchy of a controller; *dir NULL when that controller is absent. */
static int
ctl_dir (const struct cg_layout *l, const char *controller, const char *path, char **dir, berth_error_t *err)
{
  *dir = NULL;
  const struct cg_hierarchy *h = cg_find (l, controller);
  if (h == NULL)
    return 0;
  return cg_dir (h, path, dir, err);
}

static int
write_i64 (const char *dir, const char *file, int64_t v, berth_error_t *err)
{
  char buf[32];
  snprintf (buf, sizeof (buf), "%" PRId64, v);
  return cg_write (dir, file, buf, err);
}

static int
file_exists (const char *dir, const char *file)
{
  cleanup_free char *p = NULL;
  if (asprintf (&p, "%s/%s", dir, file) < 0)
    return 0;
  return access (p, F_OK) == 0;
}

/* A number from the JSON, if present. */
static int
num (json_t *obj, const char *key, int64_t *out)
{
  json_t *v = json_object_get (obj, key);
  if (json_is_integer (v))
    {
      *out = (int64_t) json_integer_value (v);
      return 1;
    }
  if (json_is_real (v))
    {
      *out = (int64_t) json_real_value (v);
      return 1;
    }
  return 0;
}

static const char *
str (json_t *obj, const char *key)
{
  const char *s = json_string_value (json_object_get (obj, key));
  return s && *s ? s : NULL;
}

/* ---- cgroup v1 ---- */

static int
v1_cpu (const struct cg_layout *l, const char *path, json_t *cpu, berth_error_t *err)
{
  cleanup_free char *dir = NULL;
  cleanup_free char *cpuset = NULL;
  int64_t v, quota, period;
  if (ctl_dir (l, "cpu", path, &dir, err) < 0 || ctl_dir (l, "cpuset", path, &cpuset, err) < 0)
    return -1;
  if (dir)
    {
      if (num (cpu, "shares", &v) && v != 0 && write_i64 (dir, "cpu.shares", v, err) < 0)
        return -1;
      int has_period = num (cpu, "period", &period) && period != 0;
      int has_quota = num (cpu, "quota", &quota) && quota != 0;
      if (has_period && write_i64 (dir, "cpu.cfs_period_us", period, err) < 0)
        {
          /* The old quota may not fit the new period: set the quota first, then retry. */
          berth_error_release (err);
          if (has_quota && write_i64 (dir, "cpu.cfs_quota_us", quota, err) < 0)
            return -1;
          if (write_i64 (dir, "cpu.cfs_period_us", period, err) < 0)
            return -1;
        }
      if (has_quota && write_i64 (dir, "cpu.cfs_quota_us", quota, err) < 0)
        return -1;
      if (num (cpu, "realtimePeriod", &v) && v != 0 && write_i64 (dir, "cpu.rt_period_us", v, err) < 0)
        return -1;
      if (num (cpu, "realtimeRuntime", &v) && v != 0 && write_i64 (dir, "cpu.rt_runtime_us", v, err) < 0)
        return -1;
    }
  else if (json_object_size (cpu) > 0 && (json_object_get (cpu, "shares") || json_object_get (cpu, "quota")))
    return berth_error (err, 0, "cpu limits asked for but the cpu cgroup controller is not mounted");
  if (str (cpu, "cpus") || str (cpu, "mems"))
    {
      if (cpuset == NULL)
        return berth_error (err, 0, "cpuset asked for but the cpuset cgroup controller is not mounted");
      if (str (cpu, "cpus") && cg_write (cpuset, "cpuset.cpus", str (cpu, "cpus"), err) < 0)
        return -1;
      if (str (cpu, "mems") && cg_write (cpuset, "cpuset.mems", str (cpu, "mems"), err) < 0)
        return -1;
    }
  return 0;
}

static int
read_i64 (const char *dir, const char *file, int64_t *out)
{
  cleanup_free char *p = NULL;
  if (asprintf (&p, "%s/%s", dir, file) < 0)
    return -1;
  cleanup_fclose FILE *f = fopen (p, "re");
  long long v;
  if (f == NULL || fscanf (f, "%lld", &v) != 1)
    return -1;
  *out = v;
  return 0;
}

static int
v1_memory (const struct cg_layout *l, const char *path, json_t *mem, berth_error_t *err)
{
  cleanup_free char *dir = NULL;
  int64_t limit, swap, v;
  if (ctl_dir (l, "memory", path, &dir, err) < 0)
    return -1;
  if (dir == NULL)
    return json_object_size (mem) ? berth_error (err, 0, "memory limits asked for but the memory cgroup controller is not mounted") : 0;
  int has_limit = num (mem, "limit", &limit) && limit != 0;
  int has_swap = num (mem, "swap", &swap) && swap != 0 && file_exists (dir, "memory.memsw.limit_in_bytes");
  if (has_swap)
    {
      /* memory.limit_in_bytes <= memory.memsw.limit_in_bytes at every step: raise memsw first, lower it last. */
      int64_t current;
      int raise = swap == -1 || read_i64 (dir, "memory.memsw.limit_in_bytes", &current) < 0 || swap > current;
      if (raise && write_i64 (dir, "memory.memsw.limit_in_bytes", swap, err) < 0)
        return -1;
      if (has_limit && write_i64 (dir, "memory.limit_in_bytes", limit, err) < 0)
        return -1;
      if (!raise && write_i64 (dir, "memory.memsw.limit_in_bytes", swap, err) < 0)
        return -1;
    }
  else if (has_limit && write_i64 (dir, "memory.limit_in_bytes", limit, err) < 0)
    return -1;
  if (num (mem, "reservation", &v) && v != 0 && write_i64 (dir, "memory.soft_limit_in_bytes", v, err) < 0)
    return -1;
  if (num (mem, "swappiness", &v) && v >= 0 && v <= 100 && write_i64 (dir, "memory.swappiness", v, err) < 0)
    return -1;
  if (json_is_true (json_object_get (mem, "disableOOMKiller")) && cg_write (dir, "memory.oom_control", "1", err) < 0)
    return -1;
  return 0;
}

static int
write_pids (const char *dir, const char *file, json_t *pids, berth_error_t *err)
{
  int64_t v;
  if (!num (pids, "limit", &v))
    return 0;
  if (v > 0)
    return write_i64 (dir, file, v, err);
  return cg_write (dir, file, "max", err);
}

static int
v1_hugetlb (const struct cg_layout *l, const char *path, json_t *limits, berth_error_t *err)
{
  cleanup_free char *dir = NULL;
  if (json_array_size (limits) == 0)
    return 0;
  if (ctl_dir (l, "hugetlb", path, &dir, err) < 0)
    return -1;
  if (dir == NULL)
    return 0; /* as runc: a controller that is not mounted is not set */
  size_t i;
  json_t *h;
  json_array_foreach (limits, i, h)
  {
    int64_t v;
    const char *size = str (h, "pageSize");
    if (size == NULL || strchr (size, '/') || !num (h, "limit", &v))
      return berth_error (err, 0, "invalid hugepageLimits[%zu]", i);
    cleanup_free char *file = NULL;
    if (asprintf (&file, "hugetlb.%s.limit_in_bytes", size) < 0)
      return berth_error (err, ENOMEM, "hugetlb");
    if (write_i64 (dir, file, v, err) < 0)
      return -1;
  }
  return 0;
}

static int
v1_devices (const struct cg_layout *l, const char *path, json_t *devices, berth_error_t *err)
{
  cleanup_free char *dir = NULL;
  cleanup_free struct dev_rule *rules = NULL;
  size_t n = 0;
  if (ctl_dir (l, "devices", path, &dir, err) < 0 || dev_rules_from_spec (devices, &rules, &n, err) < 0)
    return -1;
  if (dir == NULL)
    return 0;
  /* Everything denied, then the rules in order (the spec's, then the defaults). */
  if (cg_write (dir, "devices.deny", "a *:* rwm", err) < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    {
      char rule[96];
      dev_rule_format (&rules[i], rule, sizeof (rule));
      if (cg_write (dir, rules[i].allow ? "devices.allow" : "devices.deny", rule, err) < 0)
        return -1;
    }
  /* A hybrid host also gets the cgroup v2 filter in its unified hierarchy (defense in depth, best effort). */
  const struct cg_hierarchy *unified = NULL;
  for (size_t i = 0; i < l->n; i++)
    if (l->h[i].unified)
      unified = &l->h[i];
  cleanup_free char *udir = NULL;
  if (unified && cg_dir (unified, path, &udir, err) < 0)
    return -1;
  berth_error_t warn = NULL;
  if (udir && dev_bpf_attach (udir, rules, n, &warn) < 0)
    {
      rtlog_warn ("%s", warn && warn->msg ? warn->msg : "device filter");
      berth_error_release (&warn);
    }
  return 0;
}

static int
v2_devices (const char *dir, json_t *devices, berth_error_t *err)
{
  cleanup_free struct dev_rule *rules = NULL;
  size_t n = 0;
  if (dev_rules_from_spec (devices, &rules, &n, err) < 0)
    return -1;
  return dev_bpf_attach (dir, rules, n, err);
}

static int
v1_blkio (const struct cg_layout *l, const char *path, json_t *blkio, berth_error_t *err)
{
  cleanup_free char *dir = NULL;
  int64_t v;
  if (!num (blkio, "weight", &v) || v == 0)
    return 0;
  if (ctl_dir (l, "blkio", path, &dir, err) < 0)
    return -1;
  if (dir == NULL)
    return 0;
  return write_i64 (dir, file_exists (dir, "blkio.weight") ? "blkio.weight" : "blkio.bfq.weight", v, err);
}

static int
apply_v1 (const struct cg_layout *l, const char *path, json_t *r, int with_devices, berth_error_t *err)
{
  json_t *unified = json_object_get (r, "unified");
  if (json_object_size (unified) > 0)
    return berth_error (err, 0, "invalid configuration: cannot use unified on cgroup v1");
  json_t *pids = json_object_get (r, "pids");
  if (json_is_object (pids))
    {
      cleanup_free char *dir = NULL;
      if (ctl_dir (l, "pids", path, &dir, err) < 0)
        return -1;
      if (dir && write_pids (dir, "pids.max", pids, err) < 0)
        return -1;
    }
  if (v1_cpu (l, path, json_object_get (r, "cpu"), err) < 0 || v1_memory (l, path, json_object_get (r, "memory"), err) < 0
      || v1_hugetlb (l, path, json_object_get (r, "hugepageLimits"), err) < 0 || v1_blkio (l, path, json_object_get (r, "blockIO"), err) < 0)
    return -1;
  if (with_devices && v1_devices (l, path, json_object_get (r, "devices"), err) < 0)
    return -1;
  return 0;
}

/* ---- cgroup v2 ---- */

static int
apply_v2 (const struct cg_layout *l, const char *path, json_t *r, int with_devices, berth_error_t *err)
{
  cleanup_free char *dir = NULL;
  if (ctl_dir (l, "", path, &dir, err) < 0)
    return -1;
  if (with_devices && v2_devices (dir, json_object_get (r, "devices"), err) < 0)
    return -1;
  int64_t v, quota = 0, period = 0;
  json_t *cpu = json_object_get (r, "cpu");
  if (json_is_object (cpu))
    {
      if (num (cpu, "shares", &v) && v != 0)
        {
          /* cgroup v1 shares [2, 262144] mapped onto v2 weights [1, 10000]. */
          int64_t weight = 1 + ((v - 2) * 9999) / 262142;
          if (write_i64 (dir, "cpu.weight", weight, err) < 0)
            return -1;
        }
      int has_quota = num (cpu, "quota", &quota) && quota != 0;
      int has_period = num (cpu, "period", &period) && period != 0;
      if (has_quota || has_period)
        {
          char value[64];
          if (!has_period)
            period = 100000;
          if (has_quota && quota > 0)
            snprintf (value, sizeof (value), "%" PRId64 " %" PRId64, quota, period);
          else
            snprintf (value, sizeof (value), "max %" PRId64, period);
          if (cg_write (dir, "cpu.max", value, err) < 0)
            return -1;
        }
      if (str (cpu, "cpus") && cg_write (dir, "cpuset.cpus", str (cpu, "cpus"), err) < 0)
        return -1;
      if (str (cpu, "mems") && cg_write (dir, "cpuset.mems", str (cpu, "mems"), err) < 0)
        return -1;
    }
  json_t *mem = json_object_get (r, "memory");
  if (json_is_object (mem))
    {
      int64_t limit = 0, swap = 0;
      int has_limit = num (mem, "limit", &limit) && limit != 0;
      int has_swap = num (mem, "swap", &swap) && swap != 0;
      if (has_swap && swap != -1 && has_limit && limit > 0 && swap < limit)
        return berth_error (err, 0, "memory+swap limit %" PRId64 " is below the memory limit %" PRId64, swap, limit);
      if (has_swap && file_exists (dir, "memory.swap.max"))
        {
          /* OCI's swap is memory+swap; v2's memory.swap.max is the swap alone. */
          if (swap == -1 || (has_limit && limit == -1))
            {
              if (cg_write (dir, "memory.swap.max", "max", err) < 0)
                return -1;
            }
          else if (has_limit && write_i64 (dir, "memory.swap.max", swap - limit, err) < 0)
            return -1;
        }
      if (has_limit && (limit == -1 ? cg_write (dir, "memory.max", "max", err) : write_i64 (dir, "memory.max", limit, err)) < 0)
        return -1;
      if (num (mem, "reservation", &v) && v != 0 && write_i64 (dir, "memory.low", v, err) < 0)
        return -1;
    }
  json_t *pids = json_object_get (r, "pids");
  if (json_is_object (pids) && write_pids (dir, "pids.max", pids, err) < 0)
    return -1;
  /* blockIO.weight [10, 1000]: BFQ's io.bfq.weight has the same range; io.weight [1, 10000] as runc maps it. */
  if (num (json_object_get (r, "blockIO"), "weight", &v) && v != 0)
    {
      int bfq = file_exists (dir, "io.bfq.weight");
      if (write_i64 (dir, bfq ? "io.bfq.weight" : "io.weight", bfq ? v : 1 + ((v - 10) * 9999) / 990, err) < 0)
        return -1;
    }
  size_t i;
  json_t *h;
  json_array_foreach (json_object_get (r, "hugepageLimits"), i, h)
  {
    const char *size = str (h, "pageSize");
    cleanup_free char *file = NULL;
    if (size == NULL || strchr (size, '/') || !num (h, "limit", &v))
      return berth_error (err, 0, "invalid hugepageLimits[%zu]", i);
    if (asprintf (&file, "hugetlb.%s.max", size) < 0)
      return berth_error (err, ENOMEM, "hugetlb");
    if (write_i64 (dir, file, v, err) < 0)
      return -1;
  }
  const char *key;
  json_t *value;
  json_object_foreach (json_object_get (r, "unified"), key, value)
  {
    if (strchr (key, '/') || key[0] == '.' || !json_is_string (value))
      return berth_error (err, 0, "invalid unified resource %s", key);
    if (cg_write (dir, key, json_string_value (value), err) < 0)
      return -1;
  }
  return 0;
}

int
cg_apply_resources (const struct cg_layout *l, const char *path, json_t *resources, int with_devices, berth_error_t *err)
{
  if (!json_is_object (resources))
    return 0;
  if (l->v2)
    return apply_v2 (l, path, resources, with_devices, err);
  return apply_v1 (l, path, resources, with_devices, err);
}
