/* /proc/self/mountinfo, one callback per mount (fields unescaped). */
#ifndef BERTH_RUNTIME_MOUNTINFO_H
#define BERTH_RUNTIME_MOUNTINFO_H

#include "../common/error.h"

struct mountinfo_entry
{
  const char *root;        /* field 4: the root of the mount within its filesystem */
  const char *mountpoint;  /* field 5 */
  const char *fstype;
  const char *source;
  const char *super_options;
};

/* Calls fn for every mount until it returns non-zero (which is then returned). */
int mountinfo_foreach (int (*fn) (const struct mountinfo_entry *e, void *data), void *data, berth_error_t *err);

#endif
