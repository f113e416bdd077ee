/* berth-unpack: unpacks one image layer blob into an empty directory, for overlayfs.
 *
 *   berth-unpack --media-type TYPE --max-bytes N --max-entries N BLOB DIR
 *   berth-unpack --media-type TYPE --max-bytes N --max-entries N --copy-to FILE --blob-size N - DIR
 *   berth-unpack --media-type TYPE --max-bytes N --max-entries N --copy-to FILE --blob-size N
 *                [--ca-file FILE] [--insecure-tls] URL DIR
 *   berth-unpack --jobs --max-bytes N --max-entries N [--ca-file FILE] [--insecure-tls]
 *
 * The first form reads a blob from the content store. The others read one as it downloads, from
 * stdin (berthd pipes its download in) or fetched from an http(s):// URL (request headers such as
 * Authorization on stdin, never in argv), and also write it to FILE (a new file), so that downloading,
 * storing and unpacking are one pass. A URL that is not served (no answer, or not a 200) exits 5 with
 * {"status":N} on stdout, having written nothing.
 * On success prints {"diffId":"sha256:...","size":N,"entries":N} (the digest and size of the
 * uncompressed tar stream, and its entry count; with --copy-to also "blobDigest" and "blobSize", of
 * the blob as read, for berthd to check before it stores FILE) and exits 0. On failure prints one line to stderr and
 * exits 2 when the layer is bad (corrupt, hostile), 3 when it is over a limit, 4 when the disk is full,
 * 6 when the registry connection failed in the middle of the blob, 1 for any other failure. The caller owns DIR: it renames it into place on success and removes it on
 * failure, so a half-unpacked layer is never used.
 *
 * With --jobs it runs many URL downloads one after another, described on stdin (run_jobs below), over
 * one kept-alive connection: berthd keeps a few such workers per pull instead of one process per layer.
 *
 * berthd runs it as a process of its own so that decompression, hashing and file writes run on a core
 * of their own beside berthd's downloads, and cost berthd no memory. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/version.h"
#include "../common/cleanup.h"
#include "../common/util.h"
#include "unpack.h"

static int
parse_count (const char *text, const char *flag, uint64_t *out)
{
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull (text, &end, 10);
  if (errno || end == text || *end != '\0')
    {
      fprintf (stderr, "berth-unpack: %s wants a number, not \"%s\"\n", flag, text);
      return -1;
    }
  *out = v;
  return 0;
}

static void
usage (void)
{
  fprintf (stderr, "usage: berth-unpack --media-type TYPE --max-bytes N --max-entries N [--copy-to FILE --blob-size N]\n"
                   "                    [--ca-file FILE] [--insecure-tls] SOURCE DIR\n"
                   "       berth-unpack --jobs --max-bytes N --max-entries N [--ca-file FILE] [--insecure-tls] < JOBS\n");
}

/* Exit status when a URL was not served (no answer, or not a 200): berthd then fetches the blob its
 * own way, which knows redirects, authentication challenges and mirrors. Nothing was written. */
#define EXIT_NOT_SERVED 5
#define CONNECT_TIMEOUT_MS 30000

/* Extra request headers from stdin, one "Name: value" a line, as CRLF-terminated lines. */
static char *
read_headers (void)
{
  berth_error_t err = NULL;
  cleanup_free char *text = NULL;
  size_t len = 0;
  if (read_all_fd (STDIN_FILENO, "the request headers", &text, &len, &err) < 0)
    {
      berth_error_print (stderr, "berth-unpack", err);
      berth_error_release (&err);
      return NULL;
    }
  char *out = malloc (2 * len + 1), *o = out;
  if (out == NULL)
    return NULL;
  for (size_t i = 0; i < len; i++)
    {
      if (text[i] == '\r' || text[i] == '\0')
        {
          fprintf (stderr, "berth-unpack: a request header holds a CR or NUL byte\n");
          free (out);
          return NULL;
        }
      if (text[i] == '\n')
        *o++ = '\r';
      *o++ = text[i];
    }
  if (len > 0 && text[len - 1] != '\n')
    *o++ = '\r', *o++ = '\n';
  *o = '\0';
  return out;
}

static ssize_t
http_source_read (void *body, unsigned char *buf, size_t len, berth_error_t *err)
{
  return http_body_read (body, buf, len, err);
}

/* The blob's bytes: a file, stdin ("-") or an http(s):// URL. Returns 0, 1 (failed) or EXIT_NOT_SERVED. */
static int
open_source (const char *source, const char *given_headers, const struct tls_options *tls, struct blob_source *src, struct http_body **body, int *fd)
{
  if (strncmp (source, "http://", 7) == 0 || strncmp (source, "https://", 8) == 0)
    {
      cleanup_free char *read = given_headers ? NULL : read_headers ();
      const char *headers = given_headers ? given_headers : read;
      if (headers == NULL)
        return 1;
      berth_error_t err = NULL;
      int status = 0;
      if (http_get (body, source, headers, tls, CONNECT_TIMEOUT_MS, &status, &err) < 0 || status != 200)
        {
          if (err)
            berth_error_print (stderr, "berth-unpack", err);
          else
            fprintf (stderr, "berth-unpack: HTTP %d\n", status);
          berth_error_release (&err);
          printf ("{\"status\":%d}\n", status);
          http_body_free (*body);
          *body = NULL;
          return EXIT_NOT_SERVED;
        }
      *src = (struct blob_source) { http_source_read, *body };
      return 0;
    }
  *fd = strcmp (source, "-") == 0 ? STDIN_FILENO : open (source, O_RDONLY | O_CLOEXEC);
  if (*fd < 0)
    {
      fprintf (stderr, "berth-unpack: open %s: %s\n", source, strerror (errno));
      return 1;
    }
  *src = (struct blob_source) { fd_source_read, (void *) (intptr_t) *fd };
  return 0;
}

static int
open_copy (const char *copy_to, uint64_t blob_size, struct blob_copy *copy)
{
  if (blob_size == UINT64_MAX)
    return (usage (), -1);
  copy->fd = open (copy_to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  copy->max_bytes = blob_size;
  if (copy->fd < 0)
    fprintf (stderr, "berth-unpack: create %s: %s\n", copy_to, strerror (errno));
  return copy->fd;
}

static int
exit_status (void)
{
  enum unpack_fault fault = unpack_fault_of ();
  int saved = unpack_fault_errno ();
  if (fault == FAULT_SYSTEM && (saved == ENOSPC || saved == EDQUOT))
    return 4;
  return fault ? (int) fault : 1;
}

struct options
{
  const char *media_type;
  const char *copy_to;
  uint64_t blob_size;
  struct tls_options tls;
  struct layer_limits limits;
  const char *source;
  const char *dir;
  int jobs;
};

static int
parse_options (int argc, char **argv, struct options *o)
{
  static const struct option longopts[] = {
    { "media-type", required_argument, NULL, 't' },
    { "max-bytes", required_argument, NULL, 'b' },
    { "max-entries", required_argument, NULL, 'e' },
    { "copy-to", required_argument, NULL, 'c' },
    { "blob-size", required_argument, NULL, 's' },
    { "ca-file", required_argument, NULL, 'a' },
    { "insecure-tls", no_argument, NULL, 'k' },
    { "jobs", no_argument, NULL, 'j' },
    { NULL, 0, NULL, 0 },
  };
  *o = (struct options) { .blob_size = UINT64_MAX, .limits = { UINT64_MAX, UINT64_MAX } };
  int opt;
  while ((opt = getopt_long (argc, argv, "", longopts, NULL)) != -1)
    {
      if (opt == 't')
        o->media_type = optarg;
      else if (opt == 'c')
        o->copy_to = optarg;
      else if (opt == 'a')
        o->tls.ca_file = optarg;
      else if (opt == 'k')
        o->tls.insecure = 1;
      else if (opt == 'j')
        o->jobs = 1;
      else if (opt == 's' && parse_count (optarg, "--blob-size", &o->blob_size) == 0)
        continue;
      else if (opt == 'b' && parse_count (optarg, "--max-bytes", &o->limits.max_bytes) == 0)
        continue;
      else if (opt == 'e' && parse_count (optarg, "--max-entries", &o->limits.max_entries) == 0)
        continue;
      else
        return (usage (), -1);
    }
  if (o->jobs)
    return argc == optind ? 0 : (usage (), -1);
  if (o->media_type == NULL || argc - optind != 2)
    return (usage (), -1);
  o->source = argv[optind];
  o->dir = argv[optind + 1];
  return 0;
}

/* berth-unpack works for berthd alone: if berthd dies (kill -9), the restarted one removes the layer
 * dirs and downloads in progress, so an orphan would only write into deleted files. It goes too. */
static int
die_with_parent (void)
{
  pid_t parent = getppid ();
  if (prctl (PR_SET_PDEATHSIG, SIGKILL) < 0)
    {
      fprintf (stderr, "berth-unpack: prctl(PR_SET_PDEATHSIG): %s\n", strerror (errno));
      return -1;
    }
  if (getppid () != parent)
    {
      fprintf (stderr, "berth-unpack: berthd is gone\n");
      return -1;
    }
  return 0;
}

/* One blob from source into dir: prints the result line and returns 0, or EXIT_NOT_SERVED (its line
 * printed, nothing written), or the exit status of the failure (its message on stderr). headers: the
 * request's extra header lines, or NULL to read them from stdin. */
static int
unpack_one (const struct options *o, const char *source, const char *headers, const char *copy_to, uint64_t blob_size, const char *media_type,
            const char *dir)
{
  cleanup_close int dir_fd = open (dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir_fd < 0)
    {
      fprintf (stderr, "berth-unpack: open %s: %s\n", dir, strerror (errno));
      return 1;
    }
  struct blob_source src;
  struct http_body *body = NULL;
  cleanup_close int blob_fd = -1;
  int opened = open_source (source, headers, &o->tls, &src, &body, &blob_fd);
  if (opened != 0)
    {
      http_body_free (body);
      return opened;
    }
  /* The copy is made only once the source answers: a URL not served leaves nothing behind. */
  struct blob_copy copy = { .fd = -1 };
  if (copy_to && open_copy (copy_to, blob_size, &copy) < 0)
    {
      http_body_free (body);
      return 1;
    }
  berth_error_t err = NULL;
  struct layer_result result;
  int rc = unpack_layer (&src, copy_to ? &copy : NULL, media_type, dir_fd, &o->limits, &result, &err);
  http_body_free (body);
  if (copy.fd >= 0 && close (copy.fd) < 0 && rc == 0)
    rc = unpack_fail (&err, FAULT_SYSTEM, "close %s: %s", copy_to, strerror (errno));
  if (rc < 0)
    {
      berth_error_print (stderr, "berth-unpack", err);
      berth_error_release (&err);
      return exit_status ();
    }
  printf ("{\"diffId\":\"%s\",\"size\":%llu,\"entries\":%llu", result.diff_id, (unsigned long long) result.size,
          (unsigned long long) result.entries);
  if (copy_to)
    printf (",\"blobDigest\":\"%s\",\"blobSize\":%llu", result.blob_digest, (unsigned long long) result.blob_size);
  printf ("}\n");
  return fflush (stdout) == 0 ? 0 : 1;
}

/* --jobs: blobs fetched from URLs one after another, each described on stdin by lines "url URL",
 * "copy-to FILE", "blob-size N", "media-type TYPE", "dir DIR" and any number of "header Name: value",
 * ended by an empty line. Each job's result is one line on stdout, as for a single blob ({"status":N}
 * for a URL not served, and the next job follows); the first failure ends the process with its exit
 * status, the message on stderr. End of stdin: exit 0. One connection per origin is kept alive from
 * job to job, and the process start (libraries, OpenSSL) is paid once per pull, not per layer. */
static int
run_jobs (const struct options *o)
{
  http_keep_alive (1);
  /* A kept connection the registry closed must fail a write, not kill the process. */
  signal (SIGPIPE, SIG_IGN);
  char *line = NULL;
  size_t cap = 0;
  for (;;)
    {
      cleanup_free char *url = NULL, *copy_to = NULL, *media_type = NULL, *dir = NULL, *headers = strdup ("");
      uint64_t blob_size = UINT64_MAX;
      int fields = 0;
      ssize_t n;
      while ((n = getline (&line, &cap, stdin)) > 0)
        {
          if (line[n - 1] == '\n')
            line[--n] = '\0';
          if (n == 0)
            break;
          fields++;
          char *value = strchr (line, ' ');
          if (value == NULL || headers == NULL || strchr (line, '\r') != NULL)
            goto bad;
          *value++ = '\0';
          char **slot = strcmp (line, "url") == 0 ? &url : strcmp (line, "copy-to") == 0 ? &copy_to : strcmp (line, "media-type") == 0 ? &media_type
                        : strcmp (line, "dir") == 0 ? &dir : NULL;
          if (slot && *slot == NULL)
            {
              if ((*slot = strdup (value)) == NULL)
                goto bad;
            }
          else if (strcmp (line, "blob-size") == 0)
            {
              if (parse_count (value, "blob-size", &blob_size) < 0)
                goto bad;
            }
          else if (strcmp (line, "header") == 0)
            {
              char *more = NULL;
              if (asprintf (&more, "%s%s\r\n", headers, value) < 0)
                goto bad;
              free (headers);
              headers = more;
            }
          else
            goto bad;
        }
      if (fields == 0 && n <= 0)
        {
          free (line);
          return 0;
        }
      if (url == NULL || copy_to == NULL || media_type == NULL || dir == NULL || blob_size == UINT64_MAX || headers == NULL
          || (strncmp (url, "http://", 7) != 0 && strncmp (url, "https://", 8) != 0))
        goto bad;
      int rc = unpack_one (o, url, headers, copy_to, blob_size, media_type, dir);
      fflush (stdout);
      if (rc != 0 && rc != EXIT_NOT_SERVED)
        {
          free (line);
          return rc;
        }
      continue;
    bad:
      fprintf (stderr, "berth-unpack: a malformed job on stdin\n");
      free (line);
      return 1;
    }
}

int
main (int argc, char **argv)
{
  if (berth_print_version (argc, argv, "berth-unpack"))
    return 0;
  struct options o;
  if (parse_options (argc, argv, &o) < 0 || die_with_parent () < 0)
    return 1;
  /* Modes are set explicitly on every entry; this one decides the directories made for entries whose
   * parents the archive does not list. */
  umask (022);
  if (o.jobs)
    return run_jobs (&o);
  return unpack_one (&o, o.source, NULL, o.copy_to, o.blob_size, o.media_type, o.dir);
}
