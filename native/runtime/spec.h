/* The parts of an OCI runtime spec (config.json, runtime-spec 1.0.2) that berth-runtime acts on,
 * parsed with jansson. linux.resources and linux.seccomp stay JSON: cgroups.c and seccomp.c read them. */
#ifndef BERTH_RUNTIME_SPEC_H
#define BERTH_RUNTIME_SPEC_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/error.h"

struct rt_caps
{
  uint64_t bounding, effective, permitted, inheritable, ambient;
};

struct rt_rlimit
{
  int resource;
  char *type;
  uint64_t soft, hard;
};

struct rt_process
{
  int terminal;
  uid_t uid;
  gid_t gid;
  gid_t *additional_gids;
  size_t n_additional_gids;
  int has_umask;
  mode_t umask;
  char **args;        /* NULL-terminated */
  char **env;         /* NULL-terminated */
  char *cwd;
  int has_caps;       /* no "capabilities" object: the capabilities are left as they are */
  struct rt_caps caps;
  struct rt_rlimit *rlimits;
  size_t n_rlimits;
  int no_new_privileges;
  int has_oom_score_adj;
  int oom_score_adj;
  char *apparmor_profile; /* process.apparmorProfile: the profile the process execs into, or NULL */
};

struct rt_mount
{
  char *destination;
  char *type;
  char *source;
  char **options;     /* NULL-terminated */
  int idmap;          /* uidMappings/gidMappings given: an idmapped bind, with the container's user namespace */
};

struct rt_namespace
{
  int flag;           /* CLONE_NEW* */
  char *path;         /* NULL: a new namespace */
};

struct rt_device
{
  char *path;
  char type;          /* c, b, u or p */
  long major, minor;
  int has_mode;
  mode_t mode;
  uid_t uid;
  gid_t gid;
};

struct rt_spec
{
  json_t *json;
  char *bundle;
  char *rootfs;       /* absolute */
  int root_readonly;
  char *hostname;
  struct rt_process process;
  struct rt_mount *mounts;
  size_t n_mounts;
  struct rt_namespace *namespaces;
  size_t n_namespaces;
  struct rt_device *devices;
  size_t n_devices;
  char **masked_paths;
  char **readonly_paths;
  char **sysctl_keys;
  char **sysctl_values;
  size_t n_sysctls;
  char *cgroups_path;
  char *rootfs_propagation;
  json_t *resources;  /* borrowed from json */
  json_t *seccomp;    /* borrowed from json */
};

/* Reads BUNDLE/config.json; bundle must be absolute. */
int spec_load (const char *bundle, struct rt_spec *spec, berth_error_t *err);
/* Parses a loaded config.json, which spec now owns (spec_free releases it, also after a failure). */
int spec_parse (json_t *json, const char *bundle, struct rt_spec *spec, berth_error_t *err);
void spec_free (struct rt_spec *spec);

/* Parses an OCI process object (config.json's "process", or exec's --process file). */
int process_parse (json_t *obj, struct rt_process *p, berth_error_t *err);
void process_free (struct rt_process *p);

/* Reads a JSON file ("-" is stdin). */
int json_load_path (const char *path, json_t **out, berth_error_t *err);

/* The namespace of the spec of a kind, or NULL. */
const struct rt_namespace *spec_namespace (const struct rt_spec *spec, int flag);

/* Namespace kinds: "network" <-> CLONE_NEWNET <-> /proc/PID/ns/net. */
int ns_flag_from_type (const char *type);
const char *ns_proc_name (int flag);
const char *ns_type_name (int flag);

void strv_free (char **v);

#endif
