#include "mountinfo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cleanup.h"

/* Undoes the octal escapes (\040 for a space) of mountinfo, in place. */
static void
unescape (char *s)
{
  char *w = s;
  for (char *r = s; *r; r++)
    {
      if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7')
        {
          *w++ = (char) (((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
          r += 3;
        }
      else
        *w++ = *r;
    }
  *w = '\0';
}

int
mountinfo_foreach (int (*fn) (const struct mountinfo_entry *e, void *data), void *data, berth_error_t *err)
{
  cleanup_fclose FILE *f = fopen ("/proc/self/mountinfo", "re");
  if (f == NULL)
    return berth_error (err, errno, "open /proc/self/mountinfo");
  cleanup_free char *line = NULL;
  size_t cap = 0;
  while (getline (&line, &cap, f) > 0)
    {
      char *fields[32];
      int n = 0;
      char *save = NULL;
      for (char *tok = strtok_r (line, " \n", &save); tok && n < 32; tok = strtok_r (NULL, " \n", &save))
        fields[n++] = tok;
      int sep = -1;
      for (int i = 6; i < n; i++)
        if (strcmp (fields[i], "-") == 0)
          {
            sep = i;
            break;
          }
      if (sep < 0 || sep + 3 >= n)
        continue;
      unescape (fields[3]);
      unescape (fields[4]);
      unescape (fields[sep + 2]);
      struct mountinfo_entry e = {
        .root = fields[3],
        .mountpoint = fields[4],
        .fstype = fields[sep + 1],
        .source = fields[sep + 2],
        .super_options = fields[sep + 3],
      };
      int r = fn (&e, data);
      if (r != 0)
        return r;
    }
  return 0;
}
