/* libFuzzer target: an OCI runtime spec (config.json) as berth-runtime parses it: spec_parse (process,
 * mounts, namespaces, devices, sysctls, paths), an exec's --process object (process_parse), and the
 * seccomp profile compiled with libseccomp (never loaded). The bundle is a directory with a rootfs.
 *
 *   make -C native fuzz && native/build/fuzz/fuzz_spec CORPUS_DIR */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../seccomp.h"
#include "../spec.h"

static const char *
bundle (void)
{
  static char dir[4096];
  if (dir[0] == '\0')
    {
      char rootfs[4200];
      /* hack/fuzz.sh gives a scratch dir of its own (and removes it). */
      const char *scratch = getenv ("BERTH_FUZZ_DIR");
      snprintf (dir, sizeof dir, "%s/spec-%d", scratch ? scratch : "/dev/shm", (int) getpid ());
      snprintf (rootfs, sizeof rootfs, "%s/rootfs", dir);
      if ((mkdir (dir, 0700) < 0 && errno != EEXIST) || (mkdir (rootfs, 0755) < 0 && errno != EEXIST))
        abort ();
    }
  return dir;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  json_error_t jerr;
  json_t *json = json_loadb ((const char *) data, size, 0, &jerr);
  if (json == NULL)
    return 0;
  berth_error_t err = NULL;

  struct rt_process proc = { 0 };
  json_t *process = json_object_get (json, "process");
  if (process)
    (void) process_parse (process, &proc, &err);
  process_free (&proc);
  berth_error_release (&err);

  struct rt_seccomp *filter = NULL;
  json_t *seccomp = json_object_get (json_object_get (json, "linux"), "seccomp");
  if (seccomp)
    (void) rt_seccomp_compile (seccomp, &filter, &err);
  rt_seccomp_free (filter);
  berth_error_release (&err);

  struct rt_spec spec;
  (void) spec_parse (json, bundle (), &spec, &err); /* spec owns json now */
  spec_free (&spec);
  berth_error_release (&err);
  return 0;
}
