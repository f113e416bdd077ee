/* A blob fetched over plain HTTP/1.1, for registries and mirrors berthd reaches without TLS: the
 * body goes straight from the socket into the unpacker, never through berthd. One GET, no redirects,
 * no authentication dance: berthd passes the headers it would send (Authorization) and falls back to
 * its own client for anything but a 200 (see http_get's return values). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "unpack.h"

/* Response headers, and chunk framing, are read through this buffer. */
#define HEAD_BYTES (64 * 1024)

struct http_body
{
  int fd;
  unsigned char buf[HEAD_BYTES];
  size_t len, pos;
  int chunked;
  int has_length;
  uint64_t left;       /* body bytes still to come (with a length), or in the current chunk */
  int chunks_done;     /* the last chunk (size 0) was read */
  int eof;
};

static int
parse_url (const char *url, char **host, char **port, char **authority, const char **path, berth_error_t *err)
{
  if (strncmp (url, "http://", 7) != 0)
    return unpack_fail (err, FAULT_SYSTEM, "only http:// URLs are fetched directly, not %s", url);
  const char *start = url + 7;
  const char *slash = strchr (start, '/');
  *path = slash ? slash : "/";
  *authority = strndup (start, slash ? (size_t) (slash - start) : strlen (start));
  if (*authority == NULL)
    return unpack_fail (err, FAULT_SYSTEM, "allocate the URL");
  char *a = *authority, *colon;
  if (a[0] == '[')
    {
      char *close = strchr (a, ']');
      if (close == NULL)
        return unpack_fail (err, FAULT_SYSTEM, "malformed URL %s", url);
      *host = strndup (a + 1, (size_t) (close - a - 1));
      colon = close[1] == ':' ? close + 1 : NULL;
    }
  else
    {
      colon = strrchr (a, ':');
      *host = strndup (a, colon ? (size_t) (colon - a) : strlen (a));
    }
  *port = strdup (colon ? colon + 1 : "80");
  if (*host == NULL || *port == NULL)
    return unpack_fail (err, FAULT_SYSTEM, "allocate the URL");
  return 0;
}

/* A connected, blocking TCP socket, or -1 with errno. */
static int
connect_to (const char *host, const char *port, int timeout_ms)
{
  struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res = NULL;
  int rc = getaddrinfo (host, port, &hints, &res);
  if (rc != 0)
    {
      errno = rc == EAI_SYSTEM ? errno : EHOSTUNREACH;
      return -1;
    }
  int fd = -1, saved = ECONNREFUSED;
  for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
    {
      fd = socket (ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      if (fd < 0)
        {
          saved = errno;
          continue;
        }
      int ok = connect (fd, ai->ai_addr, ai->ai_addrlen) == 0;
      if (!ok && errno == EINPROGRESS)
        {
          struct pollfd p = { .fd = fd, .events = POLLOUT };
          int soerr = 0;
          socklen_t sl = sizeof soerr;
          if (poll (&p, 1, timeout_ms) == 1 && getsockopt (fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0)
            ok = soerr == 0, errno = soerr;
          else
            errno = ETIMEDOUT;
        }
      if (ok && fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) & ~O_NONBLOCK) == 0)
        break;
      saved = errno;
      close (fd);
      fd = -1;
    }
  freeaddrinfo (res);
  if (fd < 0)
    errno = saved;
  return fd;
}

static int
send_all (int fd, const char *data, size_t len)
{
  while (len > 0)
    {
      ssize_t n = send (fd, data, len, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return -1;
      data += n;
      len -= (size_t) n;
    }
  return 0;
}

/* Reads more into the buffer (compacting it first); 0 at EOF. */
static ssize_t
refill (struct http_body *b, berth_error_t *err)
{
  if (b->pos > 0)
    {
      memmove (b->buf, b->buf + b->pos, b->len - b->pos);
      b->len -= b->pos;
      b->pos = 0;
    }
  if (b->len == sizeof b->buf)
    return unpack_fail (err, FAULT_TRANSPORT, "the registry's response headers are too long");
  ssize_t n;
  do
    n = read (b->fd, b->buf + b->len, sizeof b->buf - b->len);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return unpack_fail (err, FAULT_TRANSPORT, "read from the registry: %s", strerror (errno));
  b->len += (size_t) n;
  return n;
}

/* The next CRLF-terminated line in the buffer (NUL-terminated in place), or NULL at EOF. */
static char *
next_line (struct http_body *b, berth_error_t *err)
{
  for (;;)
    {
      unsigned char *nl = memchr (b->buf + b->pos, '\n', b->len - b->pos);
      if (nl)
        {
          char *line = (char *) b->buf + b->pos;
          *nl = '\0';
          if (nl > b->buf + b->pos && nl[-1] == '\r')
            nl[-1] = '\0';
          b->pos = (size_t) (nl - b->buf) + 1;
          return line;
        }
      ssize_t n = refill (b, err);
      if (n <= 0)
        {
          if (n == 0)
            unpack_fail (err, FAULT_TRANSPORT, "the registry closed the connection in the middle of a response");
          return NULL;
        }
    }
}

static int
read_head (struct http_body *b, int *status, berth_error_t *err)
{
  char *line = next_line (b, err);
  if (line == NULL)
    return -1;
  if (strncmp (line, "HTTP/1.", 7) != 0 || strlen (line) < 12)
    return unpack_fail (err, FAULT_TRANSPORT, "the registry's answer is not HTTP/1.x");
  *status = atoi (line + 9);
  for (;;)
    {
      if ((line = next_line (b, err)) == NULL)
        return -1;
      if (*line == '\0')
        return 0;
      char *colon = strchr (line, ':');
      if (colon == NULL)
        continue;
      *colon = '\0';
      char *value = colon + 1;
      value += strspn (value, " \t");
      if (strcasecmp (line, "content-length") == 0)
        {
          char *end;
          errno = 0;
          b->left = strtoull (value, &end, 10);
          if (errno || end == value)
            return unpack_fail (err, FAULT_TRANSPORT, "the registry sent a malformed Content-Length");
          b->has_length = 1;
        }
      else if (strcasecmp (line, "transfer-encoding") == 0 && strcasestr (value, "chunked"))
        b->chunked = 1;
    }
}

int
http_get (struct http_body **out, const char *url, const char *headers, int timeout_ms, int *status, berth_error_t *err)
{
  cleanup_free char *host = NULL, *port = NULL, *authority = NULL;
  const char *path = "/";
  if (parse_url (url, &host, &port, &authority, &path, err) < 0)
    return -1;
  struct http_body *b = calloc (1, sizeof *b);
  if (b == NULL)
    return unpack_fail (err, FAULT_SYSTEM, "allocate the HTTP body");
  *out = b;
  b->fd = connect_to (host, port, timeout_ms);
  if (b->fd < 0)
    return unpack_fail (err, FAULT_TRANSPORT, "connect to %s: %s", authority, strerror (errno));
  cleanup_free char *req = NULL;
  if (asprintf (&req, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: berth\r\nAccept-Encoding: identity\r\nConnection: close\r\n%s\r\n", path,
                authority, headers)
      < 0)
    return unpack_fail (err, FAULT_SYSTEM, "allocate the request");
  if (send_all (b->fd, req, strlen (req)) < 0)
    return unpack_fail (err, FAULT_TRANSPORT, "send to %s: %s", authority, strerror (errno));
  /* The request must not wait forever on a registry that accepts and never answers: berthd watches
   * the body's progress, but not the headers'. */
  struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
  setsockopt (b->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (read_head (b, status, err) < 0)
    return -1;
  struct timeval none = { 0 };
  setsockopt (b->fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
  if (b->chunked)
    b->has_length = 0, b->left = 0;
  return 0;
}

/* Body bytes of the current chunk (or of a body with a length): the buffer's first, then the socket. */
static ssize_t
read_data (struct http_body *b, unsigned char *buf, size_t len, berth_error_t *err)
{
  if (len > b->left)
    len = (size_t) b->left;
  size_t buffered = b->len - b->pos;
  if (buffered > 0)
    {
      size_t n = buffered < len ? buffered : len;
      memcpy (buf, b->buf + b->pos, n);
      b->pos += n;
      b->left -= n;
      return (ssize_t) n;
    }
  ssize_t n;
  do
    n = read (b->fd, buf, len);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return unpack_fail (err, FAULT_TRANSPORT, "read from the registry: %s", strerror (errno));
  if (n == 0)
    return unpack_fail (err, FAULT_TRANSPORT, "the registry closed the connection %llu bytes before the end of the blob",
                        (unsigned long long) b->left);
  b->left -= (uint64_t) n;
  return n;
}

/* Starts the next chunk: its size line (and after the last chunk, the trailers). */
static int
next_chunk (struct http_body *b, berth_error_t *err)
{
  char *line = next_line (b, err);
  if (line && *line == '\0') /* the CRLF that ends the previous chunk's data */
    line = next_line (b, err);
  if (line == NULL)
    return -1;
  char *end;
  errno = 0;
  b->left = strtoull (line, &end, 16);
  if (errno || end == line)
    return unpack_fail (err, FAULT_TRANSPORT, "the registry sent a malformed chunk");
  if (b->left > 0)
    return 0;
  b->chunks_done = 1;
  while ((line = next_line (b, err)) != NULL && *line != '\0')
    ; /* trailers */
  return line ? 0 : -1;
}

ssize_t
http_body_read (struct http_body *b, unsigned char *buf, size_t len, berth_error_t *err)
{
  if (b->chunked)
    {
      if (b->chunks_done)
        return 0;
      if (b->left == 0 && next_chunk (b, err) < 0)
        return -1;
      return b->chunks_done ? 0 : read_data (b, buf, len, err);
    }
  if (b->has_length)
    return b->left == 0 ? 0 : read_data (b, buf, len, err);
  /* Neither: the body ends when the connection does. */
  b->left = UINT64_MAX;
  size_t buffered = b->len - b->pos;
  if (buffered > 0)
    return read_data (b, buf, len, err);
  ssize_t n;
  do
    n = read (b->fd, buf, len);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return unpack_fail (err, FAULT_TRANSPORT, "read from the registry: %s", strerror (errno));
  return n;
}

void
http_body_free (struct http_body *b)
{
  if (b == NULL)
    return;
  if (b->fd >= 0)
    close (b->fd);
  free (b);
}
