/* cgroupfs: the container's cgroup under every cgroup v1 hierarchy (and the unified one of a hybrid
 * host), or in the cgroup v2 hierarchy of a unified host. Paths are absolute from each hierarchy's
 * root, like "/berth/<pod>/<ctr>". */
#ifndef BERTH_RUNTIME_CGROUPS_H
#define BERTH_RUNTIME_CGROUPS_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/cgroup.h"
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

/* Creates the cgroup in every hierarchy. On v2 each ancestor delegates to its children, top-down,
 * only the controllers the resources need (see cg_needed_controllers); on a pure v2 host a needed
 * controller the parent does not offer is an error ("... is not available in DIR"). */
/* In *made, bit i is set when the cgroup itself was made in hierarchy i (it did not exist there): what a
 * rollback may remove (cg_destroy_in). */
int cg_create (const struct cg_layout *l, const char *path, json_t *resources, uint32_t *made, berth_error_t *err);
/* Every hierarchy, for cg_destroy_in and cg_has_procs_hierarchy. */
#define CG_ALL_HIERARCHIES UINT32_MAX
/* The v2 controllers a container with these resources needs, space-separated: cpu, memory and pids
 * always; cpuset with cpus/mems, io with blockIO, hugetlb with hugepageLimits, and the controller of
 * each `unified` key. */
int cg_needed_controllers (json_t *resources, char **out, berth_error_t *err);
/* The cgroup v2 path of a process ("/a.slice/b.scope"), from /proc/PID/cgroup. */
int cg_pid_path_v2 (pid_t pid, char **out, berth_error_t *err);
int cg_enter (const struct cg_layout *l, const char *path, pid_t pid, berth_error_t *err);
/* cg_enter in two halves, for a new process that moves itself: the v1 hierarchies by the process (a
 * single-threaded one) writing "0" to their `tasks`, which takes no global lock; the unified one by
 * cgroup.procs, or at birth through clone3's CLONE_INTO_CGROUP with cg_open_v2's fd (-1: no unified
 * hierarchy; -2: an error). */
int cg_enter_self_v1 (const struct cg_layout *l, const char *path, berth_error_t *err);
int cg_enter_v2 (const struct cg_layout *l, const char *path, pid_t pid, berth_error_t *err);
int cg_open_v2 (const struct cg_layout *l, const char *path, berth_error_t *err);
/* Signals every process of the cgroup (and its descendants), frozen meanwhile when a freezer is there;
 * SIGKILL on v2 goes through cgroup.kill when the kernel has it. */
int cg_signal_all (const struct cg_layout *l, const char *path, int sig, berth_error_t *err);
/* Number of processes left in the cgroup, or negative on error. */
int cg_count_procs (const struct cg_layout *l, const char *path, berth_error_t *err);
/* Removes the cgroup (and its descendants) from every hierarchy, waiting while it is busy. */
int cg_destroy (const struct cg_layout *l, const char *path, berth_error_t *err);
/* The same, only in the hierarchies whose bit is set in which. */
int cg_destroy_in (const struct cg_layout *l, const char *path, uint32_t which, berth_error_t *err);
/* Whether the hierarchy cg_signal_all and cg_count_procs look in is one of which. */
int cg_has_procs_hierarchy (const struct cg_layout *l, uint32_t which);

/* Applies an OCI LinuxResources object; with_devices also (re)writes the device rules. */
int cg_apply_resources (const struct cg_layout *l, const char *path, json_t *resources, int with_devices, berth_error_t *err);

#endif
