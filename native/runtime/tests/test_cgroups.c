/* Tests of berth-runtime's cgroup naming and delegation rules (no cgroup is touched): the systemd
 * driver's "slice:prefix:name" parsing, slice expansion and cpu bitmasks, and the controllers a
 * container needs on cgroup v2. Exit status 0 means every check held. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/cleanup.h"
#include "../cgroup_systemd.h"
#include "../cgroups.h"

#include "../../common/tests/check.h"

static void
expands_to (const char *slice, const char *want)
{
  berth_error_t err = NULL;
  cleanup_free char *got = NULL;
  int r = cgsd_slice_expand (slice, &got, &err);
  if (r < 0 || got == NULL || strcmp (got, want) != 0)
    {
      fprintf (stderr, "expand %s: got %s (%s), want %s\n", slice, got ? got : "-", err ? err->msg : "", want);
      failures++;
    }
  berth_error_release (&err);
}

static void
refused_slice (const char *slice)
{
  berth_error_t err = NULL;
  cleanup_free char *got = NULL;
  if (cgsd_slice_expand (slice, &got, &err) == 0)
    {
      fprintf (stderr, "expand %s: accepted (%s), want an error\n", slice, got);
      failures++;
    }
  CHECK (got == NULL);
  CHECK (err != NULL && strstr (err->msg, "invalid slice name") != NULL);
  berth_error_release (&err);
}

static void
test_slice_expand (void)
{
  expands_to ("-.slice", "/");
  expands_to ("system.slice", "/system.slice");
  expands_to ("a-b-c.slice", "/a.slice/a-b.slice/a-b-c.slice");
  expands_to ("kubepods-burstable-pod1234.slice", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice");
  refused_slice ("a--b.slice");
  refused_slice ("-a.slice");
  refused_slice ("a-.slice");
  refused_slice ("a/b.slice");
  refused_slice (".slice");
  refused_slice ("a.scope");
  refused_slice ("");
}

static void
parses (const char *path, const char *id, const char *slice, const char *unit, const char *cgpath, int is_slice)
{
  berth_error_t err = NULL;
  struct cgsd_unit u;
  if (cgsd_unit_parse (path, id, &u, &err) < 0)
    {
      fprintf (stderr, "parse \"%s\": %s\n", path ? path : "(null)", err->msg);
      failures++;
      berth_error_release (&err);
      return;
    }
  if (strcmp (u.slice, slice) || strcmp (u.unit, unit) || strcmp (u.path, cgpath) || u.is_slice != is_slice)
    {
      fprintf (stderr, "parse \"%s\": got %s %s %s %d\n", path ? path : "(null)", u.slice, u.unit, u.path, u.is_slice);
      failures++;
    }
  cgsd_unit_free (&u);
}

static void
refused_path (const char *path, const char *want_msg)
{
  berth_error_t err = NULL;
  struct cgsd_unit u;
  if (cgsd_unit_parse (path, "x", &u, &err) == 0)
    {
      fprintf (stderr, "parse \"%s\": accepted (%s), want an error\n", path, u.unit);
      failures++;
      cgsd_unit_free (&u);
      return;
    }
  CHECK (u.slice == NULL && u.unit == NULL && u.path == NULL);
  if (err == NULL || strstr (err->msg, want_msg) == NULL)
    {
      fprintf (stderr, "parse \"%s\": error \"%s\", want one with \"%s\"\n", path, err ? err->msg : "", want_msg);
      failures++;
    }
  berth_error_release (&err);
}

static void
test_unit_parse (void)
{
  const char *id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  parses ("kubepods-burstable-pod1234.slice:berth:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", id,
          "kubepods-burstable-pod1234.slice", "berth-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope",
          "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/"
          "berth-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope",
          0);
  parses (":runc:abc", id, "system.slice", "runc-abc.scope", "/system.slice/runc-abc.scope", 0);
  parses ("", "abc", "system.slice", "berth-abc.scope", "/system.slice/berth-abc.scope", 0);
  parses (NULL, "abc", "system.slice", "berth-abc.scope", "/system.slice/berth-abc.scope", 0);
  parses ("-.slice:p:n", id, "-.slice", "p-n.scope", "/p-n.scope", 0);
  /* A name ending in .slice is a slice unit: the prefix is ignored, its cgroup comes from its name. */
  parses ("kubepods.slice:ignored:kubepods-besteffort.slice", id, "kubepods.slice", "kubepods-besteffort.slice",
          "/kubepods.slice/kubepods-besteffort.slice", 1);
  refused_path ("/kubepods/pod1/ctr", "slice:prefix:name");
  refused_path ("a.slice:b", "slice:prefix:name");
  refused_path ("a.slice:b:c:d", "slice:prefix:name");
  refused_path ("a.slice:b:", "the name must be set");
  refused_path ("a.slice:b:c/d", "\"/\"");
  refused_path ("a--b.slice:p:n", "invalid slice name");
  refused_path ("notaslice:p:n", "invalid slice name");
  refused_path ("a.slice:p:-.slice", "root slice");
  refused_path ("a.slice:p:x--y.slice", "invalid slice name");
}

static void
bits_are (const char *list, const unsigned char *want, size_t want_len)
{
  berth_error_t err = NULL;
  cleanup_free unsigned char *bits = NULL;
  size_t len = 0;
  if (cgsd_cpu_list_to_bits (list, &bits, &len, &err) < 0)
    {
      fprintf (stderr, "bits \"%s\": %s\n", list, err->msg);
      failures++;
      berth_error_release (&err);
      return;
    }
  if (len != want_len || memcmp (bits, want, len) != 0)
    {
      fprintf (stderr, "bits \"%s\": wrong mask (len %zu)\n", list, len);
      failures++;
    }
}

static void
test_cpu_bits (void)
{
  bits_are ("0", (const unsigned char[]) { 0x01 }, 1);
  bits_are ("0-3", (const unsigned char[]) { 0x0f }, 1);
  bits_are ("1,3", (const unsigned char[]) { 0x0a }, 1);
  bits_are ("7-9", (const unsigned char[]) { 0x80, 0x03 }, 2);
  bits_are ("0-1,16\n", (const unsigned char[]) { 0x03, 0x00, 0x01 }, 3);
  static const char *const bad[] = { "", "a", "3-1", "1-", "-1", "1;2", "99999999", NULL };
  for (int i = 0; bad[i]; i++)
    {
      berth_error_t err = NULL;
      unsigned char *bits = NULL;
      size_t len = 0;
      if (cgsd_cpu_list_to_bits (bad[i], &bits, &len, &err) == 0)
        {
          fprintf (stderr, "bits \"%s\": accepted\n", bad[i]);
          failures++;
        }
      CHECK (bits == NULL && len == 0);
      free (bits);
      berth_error_release (&err);
    }
}

static void
needs (const char *resources_json, const char *want)
{
  berth_error_t err = NULL;
  json_t *r = resources_json ? json_loads (resources_json, 0, NULL) : NULL;
  CHECK (resources_json == NULL || r != NULL);
  cleanup_free char *got = NULL;
  if (cg_needed_controllers (r, &got, &err) < 0 || got == NULL || strcmp (got, want) != 0)
    {
      fprintf (stderr, "needed controllers of %s: got \"%s\", want \"%s\"\n", resources_json ? resources_json : "(none)", got ? got : "-",
               want);
      failures++;
    }
  berth_error_release (&err);
  if (r)
    json_decref (r);
}

static void
test_needed_controllers (void)
{
  needs (NULL, "cpu memory pids");
  needs ("{}", "cpu memory pids");
  needs ("{\"cpu\":{\"shares\":512,\"cpus\":\"\",\"mems\":\"\"}}", "cpu memory pids");
  needs ("{\"cpu\":{\"cpus\":\"0-1\"}}", "cpu memory pids cpuset");
  needs ("{\"cpu\":{\"mems\":\"0\"}}", "cpu memory pids cpuset");
  needs ("{\"blockIO\":{\"weight\":100}}", "cpu memory pids io");
  needs ("{\"blockIO\":{}}", "cpu memory pids");
  needs ("{\"hugepageLimits\":[{\"pageSize\":\"2MB\",\"limit\":0}]}", "cpu memory pids hugetlb");
  needs ("{\"hugepageLimits\":[]}", "cpu memory pids");
  needs ("{\"unified\":{\"memory.high\":\"1M\",\"io.max\":\"8:0 rbps=1\",\"misc.max\":\"x 1\",\"cgroup.freeze\":\"0\",\"rdma.max\":\"\","
         "\"nodot\":\"1\",\"io.weight\":\"10\"}}",
         "cpu memory pids io misc rdma");
}

int
main (void)
{
  test_slice_expand ();
  test_unit_parse ();
  test_cpu_bits ();
  test_needed_controllers ();
  if (failures)
    fprintf (stderr, "%d checks failed\n", failures);
  else
    printf ("test_cgroups: ok\n");
  return failures ? 1 : 0;
}
