/* Tests of native/common: atomic writes and error reporting. Exit status 0 means every check held. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cleanup.h"
#include "../error.h"
#include "../util.h"

#include "check.h"

static void
test_atomic_write (void)
{
  char dir[] = "/tmp/berth-native-test-XXXXXX";
  CHECK (mkdtemp (dir) != NULL);
  cleanup_free char *file = NULL;
  CHECK (asprintf (&file, "%s/record", dir) > 0);
  berth_error_t err = NULL;
  CHECK (write_file_atomic (file, "first", 5, 0600, &err) == 0);
  CHECK (write_file_atomic (file, "second", 6, 0600, &err) == 0);
  CHECK (err == NULL);

  cleanup_close int fd = open (file, O_RDONLY);
  CHECK (fd >= 0);
  cleanup_free char *content = NULL;
  size_t len = 0;
  CHECK (read_all_fd (fd, file, &content, &len, &err) == 0);
  CHECK (len == 6 && strcmp (content, "second") == 0);

  /* No temp file is left beside the record. */
  cleanup_dir DIR *d = opendir (dir);
  int entries = 0;
  struct dirent *de;
  while (d && (de = readdir (d)) != NULL)
    if (de->d_name[0] != '.')
      entries++;
  CHECK (entries == 1);
  unlink (file);
  rmdir (dir);
}

static void
test_error_wrap (void)
{
  berth_error_t err = NULL;
  CHECK (berth_error (&err, ENOSPC, "write %s", "/x") < 0);
  CHECK (berth_error_wrap (&err, "sysctl %s", "net.a") < 0);
  CHECK (err != NULL && err->status == ENOSPC);
  CHECK (strcmp (err->msg, "sysctl net.a: write /x: No space left on device") == 0);
  /* A second berth_error never replaces the first cause. */
  CHECK (berth_error (&err, EPERM, "other") < 0 && err->status == ENOSPC);
  berth_error_release (&err);
  CHECK (berth_error_wrap (&err, "no cause %d", 7) < 0);
  CHECK (err != NULL && err->status == 0 && strcmp (err->msg, "no cause 7") == 0);
  berth_error_release (&err);
}

static void
test_errors (void)
{
  berth_error_t err = NULL;
  CHECK (write_file_atomic ("/nonexistent-dir/x", "a", 1, 0600, &err) < 0);
  CHECK (err != NULL && err->status == ENOENT);
  CHECK (err != NULL && strstr (err->msg, "/nonexistent-dir/x") != NULL);
  CHECK (err != NULL && strstr (err->msg, strerror (ENOENT)) != NULL);
  /* The first error is kept: later failures do not overwrite the root cause. */
  berth_error (&err, EPERM, "second");
  CHECK (err != NULL && err->status == ENOENT);
  berth_error_release (&err);
  CHECK (err == NULL);
}

int
main (void)
{
  test_atomic_write ();
  test_error_wrap ();
  test_errors ();
  if (failures)
    fprintf (stderr, "%d checks failed\n", failures);
  return failures ? 1 : 0;
}
