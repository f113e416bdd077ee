/* libFuzzer target: a registry's HTTP/1.1 answer (status line, headers, a body with a length, chunked
 * or to the end of the connection) read by berth-unpack's client from a pipe, and the URL a Location
 * header leads to. Includes http.c itself to reach its static parsers.
 *
 *   make -C native fuzz && native/build/fuzz/fuzz_http -max_len=60000 CORPUS_DIR */
#include "../http.c"

#include <stdint.h>

/* An answer longer than a pipe holds would block the write: libFuzzer is told -max_len=60000. */
#define MAX_ANSWER 60000

static void
follow_location (const char *location)
{
  struct url base, next;
  berth_error_t err = NULL;
  if (parse_url ("http://registry.example:5000/v2/app/blobs/sha256:0", &base, &err) < 0)
    abort ();
  char *target = resolve_location (&base, location);
  if (target && parse_url (target, &next, &err) == 0)
    {
      char *origin = origin_of (&next);
      (void) same_origin (&base, &next);
      free (origin);
    }
  url_release (&next);
  url_release (&base);
  free (target);
  berth_error_release (&err);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size > MAX_ANSWER)
    return 0;
  int p[2];
  if (pipe (p) < 0)
    abort ();
  for (size_t off = 0; off < size;)
    {
      ssize_t n = write (p[1], data + off, size - off);
      if (n <= 0)
        abort ();
      off += (size_t) n;
    }
  close (p[1]);
  struct http_body *b = calloc (1, sizeof *b);
  if (b == NULL)
    abort ();
  b->fd = p[0];
  berth_error_t err = NULL;
  int status;
  if (read_head (b, &status, &err) == 0)
    {
      if (b->location)
        follow_location (b->location);
      unsigned char buf[4096];
      while (http_body_read (b, buf, sizeof buf, &err) > 0)
        ;
    }
  berth_error_release (&err);
  body_destroy (b);
  return 0;
}
