/* Device access rules of a container (linux.resources.devices plus the usual character devices), and
 * their cgroup v2 form: an eBPF program of type CGROUP_DEVICE attached to the container's cgroup. */
#ifndef BERTH_RUNTIME_DEVICES_BPF_H
#define BERTH_RUNTIME_DEVICES_BPF_H

#include <jansson.h>

#include "../common/error.h"

#define DEV_ACC_MKNOD 1
#define DEV_ACC_READ 2
#define DEV_ACC_WRITE 4

struct dev_rule
{
  int allow;
  char type;        /* 'a', 'c' or 'b' */
  long major;       /* -1: any */
  long minor;       /* -1: any */
  int access;       /* DEV_ACC_* */
};

/* The spec's rules in order, then the defaults every container gets (as runc adds them). */
int dev_rules_from_spec (json_t *devices, struct dev_rule **out, size_t *n, berth_error_t *err);

/* "c 1:3 rwm" */
void dev_rule_format (const struct dev_rule *r, char *buf, size_t len);

/* Loads the rules as a CGROUP_DEVICE program and attaches it to the cgroup v2 directory. */
int dev_bpf_attach (const char *cgroup_dir, const struct dev_rule *rules, size_t n, berth_error_t *err);

#endif
