/* libFuzzer target: an arbitrary blob (sniffed: plain tar, gzip or zstd) unpacked into a fresh
 * directory, under AddressSanitizer and UBSan. Besides memory errors it aborts when anything appears
 * beside the layer directory, i.e. when an entry escaped it.
 *
 *   make -C native fuzz && native/build/fuzz/fuzz_unpack -max_total_time=600 CORPUS_DIR */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../unpack.h"

struct memory
{
  const uint8_t *data;
  size_t size, off;
};

static ssize_t
memory_read (void *ctx, unsigned char *buf, size_t len, berth_error_t *err)
{
  (void) err;
  struct memory *m = ctx;
  size_t n = m->size - m->off < len ? m->size - m->off : len;
  memcpy (buf, m->data + m->off, n);
  m->off += n;
  return (ssize_t) n;
}

/* Entries of dir other than "." and "..". */
static int
count_entries (const char *dir)
{
  DIR *d = opendir (dir);
  int n = 0;
  if (d == NULL)
    abort ();
  for (struct dirent *de = readdir (d); de; de = readdir (d))
    if (strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, "..") != 0)
      n++;
  closedir (d);
  return n;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static char base[4096];
  if (base[0] == '\0')
    {
      /* hack/fuzz.sh gives a scratch dir of its own (and removes it). */
      const char *scratch = getenv ("BERTH_FUZZ_DIR");
      snprintf (base, sizeof base, "%s/unpack-%d", scratch ? scratch : "/dev/shm", (int) getpid ());
      if (mkdir (base, 0700) < 0 && errno != EEXIST)
        abort ();
    }
  int base_fd = open (base, O_RDONLY | O_DIRECTORY);
  if (base_fd < 0 || mkdirat (base_fd, "layer", 0755) < 0)
    abort ();
  int layer_fd = openat (base_fd, "layer", O_RDONLY | O_DIRECTORY);
  struct memory m = { data, size, 0 };
  struct blob_source src = { memory_read, &m };
  struct layer_limits limits = { 4 << 20, 2000 };
  struct layer_result result;
  berth_error_t err = NULL;
  unpack_layer (&src, NULL, "application/octet-stream", layer_fd, &limits, &result, &err);
  berth_error_release (&err);
  close (layer_fd);
  if (count_entries (base) != 1)
    abort (); /* something was written beside the layer */
  if (remove_tree_at (base_fd, "layer", &err) < 0)
    abort ();
  close (base_fd);
  return 0;
}
