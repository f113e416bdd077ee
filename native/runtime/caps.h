/* Capabilities: names to numbers, and the five sets applied around the switch to the process's user. */
#ifndef BERTH_RUNTIME_CAPS_H
#define BERTH_RUNTIME_CAPS_H

#include "../common/error.h"
#include "spec.h"

/* "CAP_SYS_ADMIN" (any case, with or without CAP_) to its number; -1 when unknown to the kernel. */
int cap_number (const char *name);

/* Drops from the bounding set every capability not in caps->bounding. */
int caps_apply_bounding (const struct rt_caps *caps, berth_error_t *err);

/* Sets the effective, permitted and inheritable sets, then raises the ambient ones. */
int caps_apply (const struct rt_caps *caps, berth_error_t *err);

#endif
