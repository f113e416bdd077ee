/* The systemd cgroup driver (--systemd-cgroup, cgroup v2 only): the container's cgroup is a transient
 * unit that systemd creates over D-Bus, named from linux.cgroupsPath in runc's "slice:prefix:name"
 * form. The unit's cgroup is then written through the cgroupfs v2 code, as runc does.
 *
 * cgroup_systemd_name.c holds the naming rules (no D-Bus, unit-tested); cgroup_systemd.c talks to
 * systemd with sd-bus. */
#ifndef BERTH_RUNTIME_CGROUP_SYSTEMD_H
#define BERTH_RUNTIME_CGROUP_SYSTEMD_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "../common/error.h"

/* The prefix of the unit when linux.cgroupsPath is empty (":berth:<id>"). */
#define CGSD_DEFAULT_PREFIX "berth"

struct cgsd_unit
{
  char *slice;  /* the parent slice ("system.slice" when the path's slice is empty) */
  char *unit;   /* "<prefix>-<name>.scope", or "<name>" when name ends in ".slice" */
  char *path;   /* the cgroup systemd gives the unit: "/a.slice/a-b.slice/<unit>" */
  int is_slice;
};

/* Parses "slice:prefix:name" ("" gives ":berth:<id>"). */
int cgsd_unit_parse (const char *cgroups_path, const char *id, struct cgsd_unit *u, berth_error_t *err);
void cgsd_unit_free (struct cgsd_unit *u);

/* "a-b-c.slice" -> "/a.slice/a-b.slice/a-b-c.slice"; "-.slice" -> "/". */
int cgsd_slice_expand (const char *slice, char **out, berth_error_t *err);

/* A cpuset list ("0-3,8") as systemd's AllowedCPUs bitmask: byte i holds bits 8i..8i+7, lowest bit first. */
int cgsd_cpu_list_to_bits (const char *list, unsigned char **bits, size_t *len, berth_error_t *err);

/* Starts the transient unit holding pid with the resources as unit properties and waits for its job. An
 * existing unit is an error. */
int cgsd_start (const struct cgsd_unit *u, pid_t pid, json_t *resources, berth_error_t *err);

/* SetUnitProperties (runtime) with the resources systemd knows. */
int cgsd_update (const char *unit, json_t *resources, berth_error_t *err);

/* Stops the unit and waits for its job; a unit that does not exist is fine. */
int cgsd_stop (const char *unit, berth_error_t *err);

#endif
