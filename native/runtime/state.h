/* The state directory of a container: ROOT/ID/state.json (what later commands need to find the
 * container again) and ROOT/ID/exec.fifo (present while the container is created but not started). */
#ifndef BERTH_RUNTIME_STATE_H
#define BERTH_RUNTIME_STATE_H

#include <sys/types.h>

#include "../common/error.h"

#define EXEC_FIFO "exec.fifo"

struct rt_state
{
  char *id;
  char *dir;              /* ROOT/ID */
  pid_t pid;
  unsigned long long pid_start;   /* start time of pid (field 22 of /proc/PID/stat): guards against pid reuse */
  char *bundle;
  char *rootfs;
  char *created;
  char *cgroup_path;      /* on the unified hierarchy for the systemd driver: the unit's cgroup */
  char *systemd_unit;     /* the transient unit of the systemd cgroup driver, or NULL (cgroupfs) */
  int ns_flags;           /* CLONE_NEW* of every namespace the container has (new or joined) */
  char *annotations;      /* JSON text of the spec's annotations, or NULL */
  char *seccomp;          /* JSON text of linux.seccomp (exec applies it too), or NULL */
  char *process;          /* JSON text of the spec's process (exec inherits its capabilities), or NULL */
};

enum rt_status
{
  STATUS_CREATED,
  STATUS_RUNNING,
  STATUS_STOPPED,
};

int state_valid_id (const char *id, berth_error_t *err);

/* ROOT/ID, created (exclusively: "container with given ID already exists"). */
int state_create_dir (const char *root, const char *id, char **dir, berth_error_t *err);

int state_save (const struct rt_state *st, berth_error_t *err);

/* Reads ROOT/ID/state.json; a missing one is "container does not exist". */
int state_load (const char *root, const char *id, struct rt_state *st, berth_error_t *err);

void state_free (struct rt_state *st);

/* Removes the state directory and everything in it. */
int state_remove_dir (const char *dir, berth_error_t *err);

enum rt_status state_status (const struct rt_state *st);
const char *state_status_name (enum rt_status s);

/* Start time of a process (for st->pid_start); 0 when it is gone. */
unsigned long long proc_start_time (pid_t pid, char *state_char);

#endif
