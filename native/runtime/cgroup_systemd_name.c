/* Naming rules of the systemd cgroup driver, as runc has them: "slice:prefix:name" gives the unit
 * "<prefix>-<name>.scope" in the slice (a name ending in ".slice" is a slice unit of its own), and a
 * slice's cgroup is found by expanding its dashes ("a-b.slice" lives in "/a.slice/a-b.slice"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cleanup.h"
#include "cgroup_systemd.h"

#define SLICE_SUFFIX ".slice"
#define CPU_LIST_MAX 65536

static int
ends_with (const char *s, const char *suffix)
{
  size_t n = strlen (s), m = strlen (suffix);
  return n >= m && strcmp (s + n - m, suffix) == 0;
}

int
cgsd_slice_expand (const char *slice, char **out, berth_error_t *err)
{
  *out = NULL;
  size_t len = strlen (slice);
  if (!ends_with (slice, SLICE_SUFFIX) || len == strlen (SLICE_SUFFIX) || strchr (slice, '/'))
    return berth_error (err, 0, "invalid slice name: %s", slice);
  if (strcmp (slice, "-" SLICE_SUFFIX) == 0)
    {
      *out = strdup ("/");
      return *out ? 0 : berth_error (err, ENOMEM, "slice");
    }
  size_t base = len - strlen (SLICE_SUFFIX);
  if (slice[0] == '-' || slice[base - 1] == '-' || strstr (slice, "--"))
    return berth_error (err, 0, "invalid slice name: %s", slice);
  /* Each dash ends one more level: "/" + prefix + ".slice" per level, at most (base + 7) * levels bytes. */
  size_t levels = 1;
  for (size_t i = 0; i < base; i++)
    levels += slice[i] == '-';
  size_t cap = levels * (base + strlen (SLICE_SUFFIX) + 1) + 1;
  char *path = malloc (cap);
  if (path == NULL)
    return berth_error (err, ENOMEM, "slice");
  size_t at = 0;
  for (size_t i = 0; i <= base; i++)
    if (i == base || slice[i] == '-')
      at += (size_t) snprintf (path + at, cap - at, "/%.*s" SLICE_SUFFIX, (int) i, slice);
  *out = path;
  return 0;
}

int
cgsd_unit_parse (const char *cgroups_path, const char *id, struct cgsd_unit *u, berth_error_t *err)
{
  memset (u, 0, sizeof (*u));
  cleanup_free char *raw = NULL;
  cleanup_free char *dir = NULL;
  if (cgroups_path == NULL || *cgroups_path == '\0')
    {
      if (asprintf (&raw, ":%s:%s", CGSD_DEFAULT_PREFIX, id) < 0)
        return berth_error (err, ENOMEM, "cgroupsPath");
    }
  else if ((raw = strdup (cgroups_path)) == NULL)
    return berth_error (err, ENOMEM, "cgroupsPath");
  char *prefix = strchr (raw, ':');
  char *name = prefix ? strchr (prefix + 1, ':') : NULL;
  if (name == NULL || strchr (name + 1, ':'))
    return berth_error (err, 0, "expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got \"%s\" instead",
                        cgroups_path);
  *prefix++ = '\0';
  *name++ = '\0';
  if (*name == '\0' || strchr (prefix, '/') || strchr (name, '/'))
    return berth_error (err, 0, "invalid cgroupsPath \"%s\": the name must be set and no part may hold a \"/\"", cgroups_path);
  u->is_slice = ends_with (name, SLICE_SUFFIX);
  u->slice = strdup (*raw ? raw : "system.slice");
  if (u->slice == NULL)
    goto nomem;
  if (u->is_slice)
    u->unit = strdup (name);
  else if (asprintf (&u->unit, "%s-%s.scope", prefix, name) < 0)
    u->unit = NULL;
  if (u->unit == NULL)
    goto nomem;
  /* A slice unit's cgroup follows from its own name; a scope sits in its slice's. */
  if (cgsd_slice_expand (u->is_slice ? u->unit : u->slice, &dir, err) < 0)
    {
      cgsd_unit_free (u);
      return -1;
    }
  if (u->is_slice)
    {
      if (strcmp (dir, "/") == 0)
        {
          cgsd_unit_free (u);
          return berth_error (err, 0, "invalid cgroupsPath \"%s\": the root slice cannot be a container's", cgroups_path);
        }
      u->path = dir;
      dir = NULL;
      return 0;
    }
  if (asprintf (&u->path, "%s/%s", strcmp (dir, "/") == 0 ? "" : dir, u->unit) < 0)
    {
      u->path = NULL;
      goto nomem;
    }
  return 0;
nomem:
  cgsd_unit_free (u);
  return berth_error (err, ENOMEM, "cgroupsPath");
}

void
cgsd_unit_free (struct cgsd_unit *u)
{
  free (u->slice);
  free (u->unit);
  free (u->path);
  memset (u, 0, sizeof (*u));
}

static int
parse_cpu (const char **p, long *out)
{
  char *end = NULL;
  if (**p < '0' || **p > '9')
    return -1;
  errno = 0;
  long v = strtol (*p, &end, 10);
  if (errno || v < 0 || v >= CPU_LIST_MAX)
    return -1;
  *p = end;
  *out = v;
  return 0;
}

int
cgsd_cpu_list_to_bits (const char *list, unsigned char **bits, size_t *len, berth_error_t *err)
{
  *bits = NULL;
  *len = 0;
  long max = -1;
  /* Two passes: the highest cpu sizes the mask, then the bits are set. */
  for (int pass = 0; pass < 2; pass++)
    {
      const char *p = list;
      while (*p == ' ' || *p == '\t')
        p++;
      while (*p && *p != '\n')
        {
          long lo, hi;
          if (parse_cpu (&p, &lo) < 0)
            goto invalid;
          hi = lo;
          if (*p == '-')
            {
              p++;
              if (parse_cpu (&p, &hi) < 0 || hi < lo)
                goto invalid;
            }
          if (pass == 0 && hi > max)
            max = hi;
          for (long c = lo; pass == 1 && c <= hi; c++)
            (*bits)[c / 8] |= (unsigned char) (1u << (c % 8));
          if (*p == ',')
            p++;
          else if (*p && *p != '\n')
            goto invalid;
        }
      if (pass == 0)
        {
          if (max < 0)
            goto invalid;
          *len = (size_t) max / 8 + 1;
          *bits = calloc (*len, 1);
          if (*bits == NULL)
            return berth_error (err, ENOMEM, "cpu list");
        }
    }
  return 0;
invalid:
  free (*bits);
  *bits = NULL;
  *len = 0;
  return berth_error (err, 0, "invalid cpu or memory node list \"%s\"", list);
}
