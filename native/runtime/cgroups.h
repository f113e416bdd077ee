/* cgroupfs: the container's cgroup under every cgroup v1 hierarchy (and the unified one of a hybrid
 * host), or in the cgroup v2 hierarchy of a unified host. Paths are absolute from each hierarchy's
 * root, like "/berth/<pod>/<ctr>". */
#ifndef BERTH_RUNTIME_CGROUPS_H
#define BERTH_RUNTIME_CGROUPS_H

#include <jansson.h>
#include <sys/types.h>

#include "../common/error.h"

#define CG_MAX_HIERARCHIES 32

struct cg_hierarchy
{
  char *mountpoint;
  char *controllers;  /* v1: "cpu,cpuacct", "name=systemd"; v2: "" */
  int unified;
};

struct cg_layout
{
  struct cg_hierarchy h[CG_MAX_HIERARCHIES];
  size_t n;
  int v2;             /* a cgroup v2-only host */
};

int cg_layout_load (struct cg_layout *l, berth_error_t *err);
void cg_layout_free (struct cg_layout *l);

/* linux.cgroupsPath made absolute and checked ("" gives "/<id>"). */
int cg_normalize_path (const char *spec_path, const char *id, char **out, berth_error_t *err);

/* The hierarchy holding a v1 controller, or the unified one for a v2 host; NULL when not mounted. */
const struct cg_hierarchy *cg_find (const struct cg_layout *l, const char *controller);

/* MOUNTPOINT/PATH of a hierarchy. */
int cg_dir (const struct cg_hierarchy *h, const char *path, char **out, berth_error_t *err);

int cg_create (const struct cg_layout *l, const char *path, berth_error_t *err);
int cg_enter (const struct cg_layout *l, const char *path, pid_t pid, berth_error_t *err);
/* Signals every process of the cgroup (and its descendants), frozen meanwhile when a freezer is there. */
int cg_signal_all (const struct cg_layout *l, const char *path, int sig, berth_error_t *err);
/* Number of processes left in the cgroup, or negative on error. */
int cg_count_procs (const struct cg_layout *l, const char *path, berth_error_t *err);
/* Removes the cgroup (and its descendants) from every hierarchy, waiting while it is busy. */
int cg_destroy (const struct cg_layout *l, const char *path, berth_error_t *err);

int cg_write (const char *dir, const char *file, const char *value, berth_error_t *err);

/* Applies an OCI LinuxResources object; with_devices also (re)writes the device rules. */
int cg_apply_resources (const struct cg_layout *l, const char *path, json_t *resources, int with_devices, berth_error_t *err);

#endif
