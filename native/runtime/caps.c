#include "caps.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "rtlog.h"

static int
last_cap (void)
{
  static int cached = -1;
  if (cached >= 0)
    return cached;
  cleanup_fclose FILE *f = fopen ("/proc/sys/kernel/cap_last_cap", "re");
  int v = CAP_LAST_CAP;
  if (f == NULL || fscanf (f, "%d", &v) != 1)
    v = CAP_LAST_CAP;
  cached = v > 63 ? 63 : v;
  return cached;
}

int
cap_number (const char *name)
{
  char lower[64];
  size_t n = strlen (name);
  if (n >= sizeof (lower))
    return -1;
  for (size_t i = 0; i <= n; i++)
    lower[i] = (char) tolower ((unsigned char) name[i]);
  char prefixed[80];
  snprintf (prefixed, sizeof (prefixed), "%s%s", strncmp (lower, "cap_", 4) == 0 ? "" : "cap_", lower);
  cap_value_t v;
  if (cap_from_name (prefixed, &v) < 0)
    return -1;
  if (v < 0 || v > last_cap ())
    return -1;
  return v;
}

int
caps_apply_bounding (const struct rt_caps *caps, berth_error_t *err)
{
  for (int c = 0; c <= last_cap (); c++)
    {
      if ((caps->bounding & (1ULL << c)) || prctl (PR_CAPBSET_READ, c, 0, 0, 0) == 0)
        continue;
      if (prctl (PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
        return berth_error (err, errno, "drop capability %d from the bounding set", c);
    }
  return 0;
}

int
caps_apply (const struct rt_caps *caps, berth_error_t *err)
{
  if (caps_apply_bounding (caps, err) < 0)
    return -1;
  cap_t c = cap_init ();
  if (c == NULL)
    return berth_error (err, errno, "cap_init");
  for (int v = 0; v <= last_cap (); v++)
    {
      cap_value_t one[1] = { v };
      if ((caps->effective & (1ULL << v)) && cap_set_flag (c, CAP_EFFECTIVE, 1, one, CAP_SET) < 0)
        goto fail;
      if ((caps->permitted & (1ULL << v)) && cap_set_flag (c, CAP_PERMITTED, 1, one, CAP_SET) < 0)
        goto fail;
      if ((caps->inheritable & (1ULL << v)) && cap_set_flag (c, CAP_INHERITABLE, 1, one, CAP_SET) < 0)
        goto fail;
    }
  if (cap_set_proc (c) < 0)
    goto fail;
  cap_free (c);
  if (prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    return berth_error (err, errno, "clear the ambient capabilities");
  for (int v = 0; v <= last_cap (); v++)
    if ((caps->ambient & (1ULL << v)) && prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, v, 0, 0) < 0)
      rtlog_warn ("cannot raise ambient capability %d: %s", v, strerror (errno));
  return 0;
fail:;
  int saved = errno;
  cap_free (c);
  return berth_error (err, saved, "set capabilities");
}
