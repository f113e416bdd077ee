/* The systemd cgroup driver over D-Bus (sd-bus): StartTransientUnit, SetUnitProperties and StopUnit on
 * org.freedesktop.systemd1.Manager, each job awaited through its JobRemoved signal. The resources go
 * as unit properties where systemd has one (so that systemd, which owns the unit's cgroup, keeps
 * them); cgroup_resources.c then writes them all to the cgroup's files, as runc does. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "cgroup_systemd.h"
#include "cgroups.h"

#define SD_DEST "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MANAGER "org.freedesktop.systemd1.Manager"
/* How long a call or a job may take (runc waits 30 s too). */
#define SD_TIMEOUT_USEC (30ULL * 1000 * 1000)
#define USEC_INFINITY UINT64_MAX

static inline void
bus_closep (sd_bus **b)
{
  if (*b)
    sd_bus_flush_close_unref (*b);
}

static inline void
msg_unrefp (sd_bus_message **m)
{
  if (*m)
    sd_bus_message_unref (*m);
}

static inline void
slot_unrefp (sd_bus_slot **s)
{
  if (*s)
    sd_bus_slot_unref (*s);
}

#define cleanup_bus __attribute__ ((cleanup (bus_closep)))
#define cleanup_msg __attribute__ ((cleanup (msg_unrefp)))
#define cleanup_slot __attribute__ ((cleanup (slot_unrefp)))
#define cleanup_bus_error __attribute__ ((cleanup (sd_bus_error_free)))

/* A D-Bus error as a berth error: systemd's message with our context. */
static int
bus_fail (berth_error_t *err, int r, const sd_bus_error *e, const char *what, const char *unit)
{
  if (e && sd_bus_error_is_set (e))
    return berth_error (err, -r > 0 ? -r : 0, "%s %s: %s (%s)", what, unit, e->message ? e->message : "", e->name);
  return berth_error (err, -r, "%s %s", what, unit);
}

static int
bus_open (sd_bus **bus, berth_error_t *err)
{
  if (access ("/run/systemd/system", F_OK) < 0)
    return berth_error (err, errno, "--systemd-cgroup needs systemd as the host's init: /run/systemd/system is missing");
  int r = sd_bus_open_system (bus);
  if (r < 0)
    return berth_error (err, -r, "connect to the system bus (systemd's D-Bus API) for --systemd-cgroup");
  return 0;
}

/* systemd's major version (Manager.Version, "252.30-1~deb12u2" -> 252), or 0 when unknown. */
static int
systemd_version (sd_bus *bus)
{
  cleanup_bus_error sd_bus_error e = SD_BUS_ERROR_NULL;
  cleanup_free char *v = NULL;
  if (sd_bus_get_property_string (bus, SD_DEST, SD_PATH, SD_MANAGER, "Version", &e, &v) < 0 || v == NULL)
    return 0;
  const char *p = v;
  while (*p == 'v' || *p == '"')
    p++;
  return atoi (p);
}

/* ---- properties ---- */

static int
num (json_t *obj, const char *key, int64_t *out)
{
  json_t *v = json_object_get (obj, key);
  if (json_is_integer (v))
    *out = (int64_t) json_integer_value (v);
  else if (json_is_real (v))
    *out = (int64_t) json_real_value (v);
  else
    return 0;
  return 1;
}

static int
prop_b (sd_bus_message *m, const char *name, int v)
{
  return sd_bus_message_append (m, "(sv)", name, "b", v);
}

static int
prop_s (sd_bus_message *m, const char *name, const char *v)
{
  return sd_bus_message_append (m, "(sv)", name, "s", v);
}

static int
prop_t (sd_bus_message *m, const char *name, uint64_t v)
{
  return sd_bus_message_append (m, "(sv)", name, "t", v);
}

static int
prop_bits (sd_bus_message *m, const char *name, const char *list, berth_error_t *err)
{
  cleanup_free unsigned char *bits = NULL;
  size_t len = 0;
  if (cgsd_cpu_list_to_bits (list, &bits, &len, err) < 0)
    return -1;
  int r = sd_bus_message_open_container (m, SD_BUS_TYPE_STRUCT, "sv");
  if (r >= 0)
    r = sd_bus_message_append (m, "s", name);
  if (r >= 0)
    r = sd_bus_message_open_container (m, SD_BUS_TYPE_VARIANT, "ay");
  if (r >= 0)
    r = sd_bus_message_append_array (m, 'y', bits, len);
  if (r >= 0)
    r = sd_bus_message_close_container (m);
  if (r >= 0)
    r = sd_bus_message_close_container (m);
  return r < 0 ? berth_error (err, -r, "D-Bus property %s", name) : 0;
}

/* CPUQuotaPerSecUSec from an OCI quota and period, as runc computes it: the quota per second of CPU,
 * rounded up to 10 ms (systemd keeps it as a whole percentage). */
static int
prop_quota (sd_bus_message *m, int64_t quota, int64_t period, int version)
{
  int r = 0;
  if (period > 0 && version >= 242 && (r = prop_t (m, "CPUQuotaPeriodUSec", (uint64_t) period)) < 0)
    return r;
  if (quota == 0 && period == 0)
    return 0;
  uint64_t per_sec = USEC_INFINITY;
  if (quota > 0)
    {
      uint64_t p = period > 0 ? (uint64_t) period : 100000;
      per_sec = (uint64_t) quota * 1000000 / p;
      if (per_sec % 10000)
        per_sec = (per_sec / 10000 + 1) * 10000;
    }
  return prop_t (m, "CPUQuotaPerSecUSec", per_sec);
}

static int
parse_max (const char *v, uint64_t *out)
{
  char *end = NULL;
  while (*v == ' ')
    v++;
  if (strncmp (v, "max", 3) == 0 && (v[3] == '\0' || v[3] == '\n' || v[3] == ' '))
    {
      *out = USEC_INFINITY;
      return 0;
    }
  errno = 0;
  unsigned long long n = strtoull (v, &end, 10);
  if (errno || end == v || (*end && *end != '\n' && *end != ' '))
    return -1;
  *out = n;
  return 0;
}

/* The `unified` keys systemd has a property for (the others only go to files). */
static int
unified_props (sd_bus_message *m, json_t *unified, int version, berth_error_t *err)
{
  static const struct
  {
    const char *key, *prop;
  } direct[] = {
    { "memory.max", "MemoryMax" }, { "memory.high", "MemoryHigh" }, { "memory.low", "MemoryLow" },
    { "memory.min", "MemoryMin" }, { "memory.swap.max", "MemorySwapMax" }, { "pids.max", "TasksMax" },
    { "cpu.weight", "CPUWeight" },
  };
  const char *key;
  json_t *value;
  json_object_foreach (unified, key, value)
  {
    const char *v = json_string_value (value);
    if (v == NULL)
      return berth_error (err, 0, "invalid unified resource %s", key);
    int r = 0;
    uint64_t n;
    for (size_t i = 0; i < sizeof (direct) / sizeof (direct[0]); i++)
      if (strcmp (key, direct[i].key) == 0)
        {
          if (parse_max (v, &n) < 0)
            return berth_error (err, 0, "invalid unified resource %s: \"%s\"", key, v);
          r = prop_t (m, direct[i].prop, n);
        }
    if (strcmp (key, "io.weight") == 0)
      {
        /* The file's form: "[default ]WEIGHT", or per-device "MAJ:MIN WEIGHT" lines, which systemd's
           IOWeight cannot say: those reach the file only. */
        const char *w = strncmp (v, "default ", 8) == 0 ? v + 8 : v;
        if (strpbrk (w, ": \n") == NULL)
          {
            if (parse_max (w, &n) < 0 || n == USEC_INFINITY)
              return berth_error (err, 0, "invalid unified resource %s: \"%s\"", key, v);
            r = prop_t (m, "IOWeight", n);
          }
      }
    if (strcmp (key, "cpu.max") == 0)
      {
        /* "QUOTA [PERIOD]", QUOTA being "max" for no limit. */
        uint64_t quota, period = 100000;
        const char *sp = strchr (v, ' ');
        if (parse_max (v, &quota) < 0 || (sp && parse_max (sp + 1, &period) < 0) || period == USEC_INFINITY)
          return berth_error (err, 0, "invalid unified resource %s: \"%s\"", key, v);
        r = prop_quota (m, quota == USEC_INFINITY ? 0 : (int64_t) quota, (int64_t) period, version);
      }
    if (r < 0)
      return berth_error (err, -r, "D-Bus property for %s", key);
  }
  return 0;
}

static int
resource_props (sd_bus_message *m, json_t *res, int version, berth_error_t *err)
{
  int64_t v, limit = 0, swap = 0, quota = 0, period = 0;
  int r = 0;
  json_t *mem = json_object_get (res, "memory");
  int has_limit = num (mem, "limit", &limit) && limit != 0;
  int has_swap = num (mem, "swap", &swap) && swap != 0;
  if (has_limit)
    r = prop_t (m, "MemoryMax", limit < 0 ? USEC_INFINITY : (uint64_t) limit);
  if (r >= 0 && num (mem, "reservation", &v) && v > 0)
    r = prop_t (m, "MemoryLow", (uint64_t) v);
  /* OCI's swap is memory+swap, systemd's MemorySwapMax the swap alone (as cgroup_resources.c). */
  if (r >= 0 && has_swap)
    {
      if (swap == -1 || (has_limit && limit == -1))
        r = prop_t (m, "MemorySwapMax", USEC_INFINITY);
      else if (has_limit && swap < limit)
        return berth_error (err, 0, "memory+swap limit %" PRId64 " is below the memory limit %" PRId64, swap, limit);
      else if (has_limit)
        r = prop_t (m, "MemorySwapMax", (uint64_t) (swap - limit));
    }
  json_t *pids = json_object_get (res, "pids");
  if (r >= 0 && num (pids, "limit", &v))
    r = prop_t (m, "TasksMax", v > 0 ? (uint64_t) v : USEC_INFINITY);
  json_t *cpu = json_object_get (res, "cpu");
  if (r >= 0 && num (cpu, "shares", &v) && v != 0)
    r = prop_t (m, "CPUWeight", (uint64_t) (1 + ((v - 2) * 9999) / 262142)); /* as cgroup_resources.c */
  int has_quota = num (cpu, "quota", &quota) && quota != 0;
  int has_period = num (cpu, "period", &period) && period != 0;
  if (r >= 0 && (has_quota || has_period))
    r = prop_quota (m, quota, period, version);
  json_t *blkio = json_object_get (res, "blockIO");
  if (r >= 0 && num (blkio, "weight", &v) && v != 0)
    r = prop_t (m, "IOWeight", (uint64_t) (1 + ((v - 10) * 9999) / 990)); /* blkio [10, 1000] onto io [1, 10000] */
  if (r < 0)
    return berth_error (err, -r, "D-Bus unit properties");
  const char *cpus = json_string_value (json_object_get (cpu, "cpus"));
  const char *mems = json_string_value (json_object_get (cpu, "mems"));
  if (version >= 244 && cpus && *cpus && prop_bits (m, "AllowedCPUs", cpus, err) < 0)
    return -1;
  if (version >= 244 && mems && *mems && prop_bits (m, "AllowedMemoryNodes", mems, err) < 0)
    return -1;
  return unified_props (m, json_object_get (res, "unified"), version, err);
}

/* ---- jobs ---- */

struct job_wait
{
  const char *job;  /* the job's object path, once the call has returned it */
  char *result;     /* "done", "failed", "timeout", "canceled", ... */
  int failed;
};

static int
on_job_removed (sd_bus_message *m, void *data, sd_bus_error *ret_error)
{
  (void) ret_error;
  struct job_wait *w = data;
  uint32_t id;
  const char *path, *unit, *result;
  if (sd_bus_message_read (m, "uoss", &id, &path, &unit, &result) < 0 || w->job == NULL || strcmp (path, w->job) != 0)
    return 0;
  w->result = strdup (result);
  if (w->result == NULL)
    w->failed = 1;
  return 0;
}

static uint64_t
now_usec (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* Runs the dispatch loop until the job's JobRemoved arrives; its result must be "done". */
static int
await_job (sd_bus *bus, struct job_wait *w, const char *what, const char *unit, berth_error_t *err)
{
  uint64_t deadline = now_usec () + SD_TIMEOUT_USEC;
  while (w->result == NULL && !w->failed)
    {
      int r = sd_bus_process (bus, NULL);
      if (r < 0)
        return berth_error (err, -r, "%s %s: read from the system bus", what, unit);
      if (r > 0)
        continue;
      uint64_t now = now_usec ();
      if (now >= deadline)
        return berth_error (err, ETIMEDOUT, "%s %s: systemd did not finish the job %s in %llu s", what, unit, w->job,
                            (unsigned long long) (SD_TIMEOUT_USEC / 1000000));
      r = sd_bus_wait (bus, deadline - now);
      if (r < 0 && r != -EINTR)
        return berth_error (err, -r, "%s %s: wait on the system bus", what, unit);
    }
  if (w->failed)
    return berth_error (err, ENOMEM, "%s %s", what, unit);
  if (strcmp (w->result, "done") != 0)
    return berth_error (err, 0, "%s %s: systemd's job ended with \"%s\"", what, unit, w->result);
  return 0;
}

/* Subscribes to JobRemoved before the call that makes the job, so the signal cannot be missed. */
static int
watch_jobs (sd_bus *bus, sd_bus_slot **slot, struct job_wait *w, berth_error_t *err)
{
  int r = sd_bus_match_signal (bus, slot, SD_DEST, SD_PATH, SD_MANAGER, "JobRemoved", on_job_removed, w);
  if (r < 0)
    return berth_error (err, -r, "subscribe to systemd's JobRemoved signal");
  cleanup_bus_error sd_bus_error e = SD_BUS_ERROR_NULL;
  r = sd_bus_call_method (bus, SD_DEST, SD_PATH, SD_MANAGER, "Subscribe", &e, NULL, "");
  if (r < 0 && !sd_bus_error_has_name (&e, "org.freedesktop.systemd1.AlreadySubscribed"))
    return bus_fail (err, r, &e, "subscribe to systemd's signals for", "jobs");
  return 0;
}

/* ---- the manager's methods ---- */

int
cgsd_start (const struct cgsd_unit *u, pid_t pid, json_t *resources, berth_error_t *err)
{
  cleanup_bus sd_bus *bus = NULL;
  cleanup_slot sd_bus_slot *slot = NULL;
  cleanup_msg sd_bus_message *m = NULL;
  cleanup_msg sd_bus_message *reply = NULL;
  cleanup_bus_error sd_bus_error e = SD_BUS_ERROR_NULL;
  cleanup_free char *needed = NULL;
  cleanup_free char *description = NULL;
  struct job_wait w = { NULL, NULL, 0 };
  if (bus_open (&bus, err) < 0 || watch_jobs (bus, &slot, &w, err) < 0 || cg_needed_controllers (resources, &needed, err) < 0)
    return -1;
  int version = systemd_version (bus);
  if (asprintf (&description, "berth container %s", u->unit) < 0)
    return berth_error (err, ENOMEM, "unit description");
  size_t nl = strlen (needed);
  int io = strstr (needed, " io ") != NULL || (nl >= 3 && strcmp (needed + nl - 3, " io") == 0);
  int r = sd_bus_message_new_method_call (bus, &m, SD_DEST, SD_PATH, SD_MANAGER, "StartTransientUnit");
  if (r >= 0)
    r = sd_bus_message_append (m, "ss", u->unit, "replace");
  if (r >= 0)
    r = sd_bus_message_open_container (m, SD_BUS_TYPE_ARRAY, "(sv)");
  if (r >= 0)
    r = prop_s (m, "Description", description);
  /* A scope goes into its slice and is delegated; a slice unit hangs from its parent by Wants=. A
   * slice cannot hold processes itself: its pid is moved in through cgroupfs afterwards (create.c). */
  if (r >= 0)
    r = u->is_slice ? sd_bus_message_append (m, "(sv)", "Wants", "as", 1, u->slice) : prop_s (m, "Slice", u->slice);
  if (r >= 0 && !u->is_slice)
    r = prop_b (m, "Delegate", 1);
  if (r >= 0 && !u->is_slice)
    r = sd_bus_message_append (m, "(sv)", "PIDs", "au", 1, (uint32_t) pid);
  if (r >= 0)
    r = prop_b (m, "MemoryAccounting", 1);
  if (r >= 0)
    r = prop_b (m, "CPUAccounting", 1);
  if (r >= 0)
    r = prop_b (m, "TasksAccounting", 1);
  if (r >= 0 && io)
    r = prop_b (m, "IOAccounting", 1);
  if (r >= 0)
    r = prop_b (m, "DefaultDependencies", 0);
  /* A unit that failed is collected too, so a later create with the same name does not find it. */
  if (r >= 0)
    r = prop_s (m, "CollectMode", "inactive-or-failed");
  if (r < 0)
    return berth_error (err, -r, "D-Bus message for unit %s", u->unit);
  if (resource_props (m, resources, version, err) < 0)
    return -1;
  r = sd_bus_message_close_container (m);
  if (r >= 0)
    r = sd_bus_message_append (m, "a(sa(sv))", 0);
  if (r < 0)
    return berth_error (err, -r, "D-Bus message for unit %s", u->unit);
  r = sd_bus_call (bus, m, SD_TIMEOUT_USEC, &e, &reply);
  if (r < 0)
    {
      if (sd_bus_error_has_name (&e, "org.freedesktop.systemd1.UnitExists"))
        return berth_error (err, 0,
                            "systemd unit %s already exists: a container with this cgroupsPath was created before and not deleted", u->unit);
      return bus_fail (err, r, &e, "start the systemd unit", u->unit);
    }
  r = sd_bus_message_read (reply, "o", &w.job);
  if (r < 0)
    return berth_error (err, -r, "start the systemd unit %s: read the job", u->unit);
  r = await_job (bus, &w, "start the systemd unit", u->unit, err);
  free (w.result);
  return r;
}

int
cgsd_update (const char *unit, json_t *resources, berth_error_t *err)
{
  cleanup_bus sd_bus *bus = NULL;
  cleanup_msg sd_bus_message *m = NULL;
  cleanup_bus_error sd_bus_error e = SD_BUS_ERROR_NULL;
  if (bus_open (&bus, err) < 0)
    return -1;
  int version = systemd_version (bus);
  int r = sd_bus_message_new_method_call (bus, &m, SD_DEST, SD_PATH, SD_MANAGER, "SetUnitProperties");
  if (r >= 0)
    r = sd_bus_message_append (m, "sb", unit, 1);
  if (r >= 0)
    r = sd_bus_message_open_container (m, SD_BUS_TYPE_ARRAY, "(sv)");
  if (r < 0)
    return berth_error (err, -r, "D-Bus message for unit %s", unit);
  if (resource_props (m, resources, version, err) < 0)
    return -1;
  r = sd_bus_message_close_container (m);
  if (r < 0)
    return berth_error (err, -r, "D-Bus message for unit %s", unit);
  r = sd_bus_call (bus, m, SD_TIMEOUT_USEC, &e, NULL);
  if (r < 0)
    return bus_fail (err, r, &e, "set the properties of the systemd unit", unit);
  return 0;
}

int
cgsd_stop (const char *unit, berth_error_t *err)
{
  cleanup_bus sd_bus *bus = NULL;
  cleanup_slot sd_bus_slot *slot = NULL;
  cleanup_msg sd_bus_message *reply = NULL;
  cleanup_bus_error sd_bus_error e = SD_BUS_ERROR_NULL;
  struct job_wait w = { NULL, NULL, 0 };
  if (bus_open (&bus, err) < 0 || watch_jobs (bus, &slot, &w, err) < 0)
    return -1;
  int r = sd_bus_call_method (bus, SD_DEST, SD_PATH, SD_MANAGER, "StopUnit", &e, &reply, "ss", unit, "replace");
  if (r < 0)
    {
      if (sd_bus_error_has_name (&e, "org.freedesktop.systemd1.NoSuchUnit"))
        return 0;
      return bus_fail (err, r, &e, "stop the systemd unit", unit);
    }
  r = sd_bus_message_read (reply, "o", &w.job);
  if (r < 0)
    return berth_error (err, -r, "stop the systemd unit %s: read the job", unit);
  r = await_job (bus, &w, "stop the systemd unit", unit, err);
  free (w.result);
  return r;
}
