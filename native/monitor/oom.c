#include "oom.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/util.h"

/* Finds the line "oom_kill N" in a flat-keyed cgroup file. */
static int
parse_count (const char *text, const char *path, long *count, berth_error_t *err)
{
  static const char key[] = "oom_kill ";
  for (const char *line = text; *line; )
    {
      if (strncmp (line, key, sizeof (key) - 1) == 0)
        {
          char *end;
          errno = 0;
          long v = strtol (line + sizeof (key) - 1, &end, 10);
          if (errno || end == line + sizeof (key) - 1 || v < 0)
            return berth_error (err, EINVAL, "%s: bad oom_kill line", path);
          *count = v;
          return 0;
        }
      const char *nl = strchr (line, '\n');
      if (nl == NULL)
        break;
      line = nl + 1;
    }
  return berth_error (err, ENOENT, "%s has no oom_kill line", path);
}

int
oom_kill_count (const char *dir, long *count, berth_error_t *err)
{
  static const char *const files[] = { "memory.events", "memory.oom_control" };
  for (size_t i = 0; i < sizeof (files) / sizeof (files[0]); i++)
    {
      cleanup_free char *path = NULL;
      if (asprintf (&path, "%s/%s", dir, files[i]) < 0)
        return berth_error (err, ENOMEM, "read %s", dir);
      cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC);
      if (fd < 0 && errno == ENOENT)
        continue;
      if (fd < 0)
        return berth_error (err, errno, "open %s", path);
      cleanup_free char *text = NULL;
      if (read_all_fd (fd, path, &text, NULL, err) < 0)
        return -1;
      return parse_count (text, path, count, err);
    }
  return berth_error (err, ENOENT, "%s has neither memory.events nor memory.oom_control", dir);
}
