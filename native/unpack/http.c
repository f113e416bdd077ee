/* A blob fetched over HTTP/1.1 or HTTPS (OpenSSL): the body goes straight from the socket into the
 * unpacker, never through berthd. Redirects are followed (registries send blobs to object storage),
 * the extra headers (Authorization) only as far as the origin they were meant for; TLS verifies the
 * server's name against the system's roots, or only the CA file given, as berthd's own client does, or
 * nothing for an insecure registry. No authentication dance: berthd passes the headers it would send
 * and falls back to its own client for any final answer but a 200. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "../common/cleanup.h"
#include "unpack.h"

#define MAX_REDIRECTS 5

/* Response headers, and chunk framing, are read through this buffer. */
#define HEAD_BYTES (64 * 1024)

struct http_body
{
  int fd;
  SSL *ssl;
  char *origin;        /* "http(s)://authority" of the connection, for keeping it alive */
  int server_close;    /* the response said Connection: close (or was HTTP/1.0) */
  char *location;      /* a redirect's Location */
  unsigned char buf[HEAD_BYTES];
  size_t len, pos;
  int chunked;
  int has_length;
  uint64_t left;       /* body bytes still to come (with a length), or in the current chunk */
  int chunks_done;     /* the last chunk (size 0) was read */
  int eof;
};

struct url
{
  int tls;
  char *host, *port, *authority;
  const char *path;   /* points into the URL text */
};

/* With keep-alive on (berth-unpack --jobs), a connection whose response was read to its end is kept
 * for the next GET to the same origin: one connection (and one TLS handshake) for a pull's layers. */
static int keep_alive;
static struct http_body *idle;
static void body_destroy (struct http_body *b);

void
http_keep_alive (int on)
{
  keep_alive = on;
}

static void
url_release (struct url *u)
{
  free (u->host);
  free (u->port);
  free (u->authority);
  memset (u, 0, sizeof *u);
}

static int
parse_url (const char *url, struct url *u, berth_error_t *err)
{
  memset (u, 0, sizeof *u);
  const char *start;
  if (strncmp (url, "http://", 7) == 0)
    start = url + 7;
  else if (strncmp (url, "https://", 8) == 0)
    start = url + 8, u->tls = 1;
  else
    return unpack_fail (err, FAULT_TRANSPORT, "not an http(s) URL: %.200s", url);
  const char *slash = strchr (start, '/');
  u->path = slash ? slash : "/";
  u->authority = strndup (start, slash ? (size_t) (slash - start) : strlen (start));
  if (u->authority == NULL)
    return unpack_fail (err, FAULT_SYSTEM, "allocate the URL");
  char *a = u->authority, *colon;
  if (a[0] == '[')
    {
      char *close = strchr (a, ']');
      if (close == NULL)
        return unpack_fail (err, FAULT_TRANSPORT, "malformed URL %.200s", url);
      u->host = strndup (a + 1, (size_t) (close - a - 1));
      colon = close[1] == ':' ? close + 1 : NULL;
    }
  else
    {
      colon = strrchr (a, ':');
      u->host = strndup (a, colon ? (size_t) (colon - a) : strlen (a));
    }
  u->port = strdup (colon ? colon + 1 : u->tls ? "443" : "80");
  if (u->host == NULL || u->port == NULL)
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

/* ---- the connection: plain or TLS ---- */

static SSL_CTX *
tls_context (const struct tls_options *o, berth_error_t *err)
{
  static SSL_CTX *ctx;
  if (ctx)
    return ctx;
  ctx = SSL_CTX_new (TLS_client_method ());
  if (ctx == NULL)
    return unpack_fail (err, FAULT_SYSTEM, "set up TLS"), NULL;
  SSL_CTX_set_min_proto_version (ctx, TLS1_2_VERSION);
  if (o->insecure)
    SSL_CTX_set_verify (ctx, SSL_VERIFY_NONE, NULL);
  else
    {
      SSL_CTX_set_verify (ctx, SSL_VERIFY_PEER, NULL);
      /* A registry's CA file replaces the system's roots, as it does for berthd's own client. */
      int ok = o->ca_file ? SSL_CTX_load_verify_locations (ctx, o->ca_file, NULL) : SSL_CTX_set_default_verify_paths (ctx);
      if (ok != 1)
        return unpack_fail (err, FAULT_SYSTEM, "load the CA certificates%s%s", o->ca_file ? " of " : "", o->ca_file ? o->ca_file : ""), NULL;
    }
  return ctx;
}

static int
is_ip_literal (const char *host)
{
  return strspn (host, "0123456789.") == strlen (host) || strchr (host, ':') != NULL;
}

static int
tls_start (struct http_body *b, const struct url *u, const struct tls_options *o, berth_error_t *err)
{
  SSL_CTX *ctx = tls_context (o, err);
  if (ctx == NULL)
    return -1;
  b->ssl = SSL_new (ctx);
  if (b->ssl == NULL || SSL_set_fd (b->ssl, b->fd) != 1)
    return unpack_fail (err, FAULT_SYSTEM, "set up TLS to %s", u->authority);
  /* The certificate must name the host: as an IP address for an address, else as a DNS name (SNI). */
  int named = is_ip_literal (u->host) ? X509_VERIFY_PARAM_set1_ip_asc (SSL_get0_param (b->ssl), u->host) : SSL_set1_host (b->ssl, u->host);
  if (!o->insecure && named != 1)
    return unpack_fail (err, FAULT_SYSTEM, "set the TLS host name %s", u->host);
  if (!is_ip_literal (u->host))
    SSL_set_tlsext_host_name (b->ssl, u->host);
  if (SSL_connect (b->ssl) != 1)
    {
      unsigned long e = ERR_get_error ();
      char why[256] = "handshake failed";
      if (e)
        ERR_error_string_n (e, why, sizeof why);
      return unpack_fail (err, FAULT_TRANSPORT, "TLS to %s: %s", u->authority, why);
    }
  return 0;
}

static int
conn_write (struct http_body *b, const char *data, size_t len)
{
  while (len > 0)
    {
      ssize_t n;
      if (b->ssl)
        n = SSL_write (b->ssl, data, (int) len) > 0 ? (ssize_t) len : -1;
      else
        n = send (b->fd, data, len, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR && !b->ssl)
        continue;
      if (n < 0)
        return -1;
      data += n;
      len -= (size_t) n;
    }
  return 0;
}

/* One read from the connection: bytes, 0 at its end, -1 with the error set. A TLS peer that closes
 * without close_notify is an end too: bodies with a length are checked against it. */
static ssize_t
conn_read (struct http_body *b, unsigned char *buf, size_t len, berth_error_t *err)
{
  if (b->ssl)
    {
      int n = SSL_read (b->ssl, buf, (int) (len > INT32_MAX ? INT32_MAX : len));
      if (n > 0)
        return n;
      int e = SSL_get_error (b->ssl, n);
      if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0) || (e == SSL_ERROR_SSL && ERR_GET_REASON (ERR_peek_error ()) == SSL_R_UNEXPECTED_EOF_WHILE_READING))
        return 0;
      return unpack_fail (err, FAULT_TRANSPORT, "read from the registry (TLS): error %d", e);
    }
  ssize_t n;
  do
    n = read (b->fd, buf, len);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return unpack_fail (err, FAULT_TRANSPORT, "read from the registry: %s", strerror (errno));
  return n;
}

/* ---- the response head ---- */

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
  ssize_t n = conn_read (b, b->buf + b->len, sizeof b->buf - b->len, err);
  if (n > 0)
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
  if (strncmp (line, "HTTP/1.0", 8) == 0)
    b->server_close = 1;
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
          /* strtoull takes a sign ("-1" wraps to 2^64-1): only digits are a length. */
          b->left = strtoull (value, &end, 10);
          if (errno || end == value || !isdigit ((unsigned char) value[0]))
            return unpack_fail (err, FAULT_TRANSPORT, "the registry sent a malformed Content-Length");
          b->has_length = 1;
        }
      else if (strcasecmp (line, "transfer-encoding") == 0 && strcasestr (value, "chunked"))
        b->chunked = 1;
      else if (strcasecmp (line, "connection") == 0 && strcasestr (value, "close"))
        b->server_close = 1;
      else if (strcasecmp (line, "location") == 0 && b->location == NULL && (b->location = strdup (value)) == NULL)
        return unpack_fail (err, FAULT_SYSTEM, "allocate a Location");
    }
}

/* ---- requests and redirects ---- */

static int
same_origin (const struct url *a, const struct url *b)
{
  return a->tls == b->tls && strcasecmp (a->authority, b->authority) == 0;
}

/* The URL a redirect's Location names, relative to the URL that answered. */
static char *
resolve_location (const struct url *from, const char *location)
{
  char *out = NULL;
  const char *scheme = from->tls ? "https" : "http";
  if (strncmp (location, "http://", 7) == 0 || strncmp (location, "https://", 8) == 0)
    out = strdup (location);
  else if (strncmp (location, "//", 2) == 0)
    {
      if (asprintf (&out, "%s:%s", scheme, location) < 0)
        out = NULL;
    }
  else if (location[0] == '/')
    {
      if (asprintf (&out, "%s://%s%s", scheme, from->authority, location) < 0)
        out = NULL;
    }
  else
    {
      const char *slash = strrchr (from->path, '/');
      int dir = slash ? (int) (slash - from->path) + 1 : 0;
      if (asprintf (&out, "%s://%s%.*s%s", scheme, from->authority, dir, from->path, location) < 0)
        out = NULL;
    }
  return out;
}

static char *
origin_of (const struct url *u)
{
  char *out = NULL;
  if (asprintf (&out, "%s://%s", u->tls ? "https" : "http", u->authority) < 0)
    return NULL;
  return out;
}

static void
conn_close (struct http_body *b)
{
  if (b->ssl)
    SSL_free (b->ssl);
  if (b->fd >= 0)
    close (b->fd);
  b->ssl = NULL;
  b->fd = -1;
}

/* Sends the request on the idle connection to this origin, if there is one, and reads the first bytes
 * of the answer: 1 when that worked, 0 when there was no such connection or the server had closed it
 * meanwhile (then nothing is recorded as a fault, and the caller connects anew). */
static int
send_on_idle (struct http_body *b, const char *req)
{
  if (idle == NULL || strcmp (idle->origin, b->origin) != 0)
    return 0;
  b->fd = idle->fd, b->ssl = idle->ssl;
  idle->fd = -1, idle->ssl = NULL;
  body_destroy (idle);
  idle = NULL;
  struct timeval tv = { .tv_sec = 30, .tv_usec = 0 };
  setsockopt (b->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ssize_t n = -1;
  if (conn_write (b, req, strlen (req)) == 0)
    n = conn_read (b, b->buf, sizeof b->buf, NULL);
  if (n > 0)
    {
      b->len = (size_t) n;
      return 1;
    }
  ERR_clear_error ();
  conn_close (b);
  return 0;
}

/* One GET, on the idle connection to the same origin or a new one; the head is read, the body is ready. */
static int
get_once (struct http_body **out, const struct url *u, const char *headers, const struct tls_options *tls, int timeout_ms, int *status,
          berth_error_t *err)
{
  struct http_body *b = calloc (1, sizeof *b);
  if (b == NULL)
    return unpack_fail (err, FAULT_SYSTEM, "allocate the HTTP body");
  b->fd = -1;
  *out = b;
  if ((b->origin = origin_of (u)) == NULL)
    return unpack_fail (err, FAULT_SYSTEM, "allocate the URL");
  cleanup_free char *req = NULL;
  if (asprintf (&req, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: berth\r\nAccept-Encoding: identity\r\nConnection: %s\r\n%s\r\n", u->path,
                u->authority, keep_alive ? "keep-alive" : "close", headers)
      < 0)
    return unpack_fail (err, FAULT_SYSTEM, "allocate the request");
  if (!send_on_idle (b, req))
    {
      b->fd = connect_to (u->host, u->port, timeout_ms);
      if (b->fd < 0)
        return unpack_fail (err, FAULT_TRANSPORT, "connect to %s: %s", u->authority, strerror (errno));
      /* Neither the handshake nor the head may wait forever on a registry that accepts and never
       * answers: berthd watches the body's progress, but not this. */
      struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
      setsockopt (b->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      setsockopt (b->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      if (u->tls && tls_start (b, u, tls, err) < 0)
        return -1;
      if (conn_write (b, req, strlen (req)) < 0)
        return unpack_fail (err, FAULT_TRANSPORT, "send to %s: %s", u->authority, strerror (errno));
    }
  if (read_head (b, status, err) < 0)
    return -1;
  struct timeval none = { 0 };
  setsockopt (b->fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
  if (b->chunked)
    b->has_length = 0, b->left = 0;
  return 0;
}

static int
is_redirect (int status)
{
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

int
http_get (struct http_body **out, const char *url, const char *headers, const struct tls_options *tls, int timeout_ms, int *status,
          berth_error_t *err)
{
  struct url origin __attribute__ ((cleanup (url_release))) = { 0 };
  if (parse_url (url, &origin, err) < 0)
    return -1;
  cleanup_free char *current = strdup (url);
  if (current == NULL)
    return unpack_fail (err, FAULT_SYSTEM, "allocate the URL");
  for (int hop = 0;; hop++)
    {
      struct url u __attribute__ ((cleanup (url_release))) = { 0 };
      if (parse_url (current, &u, err) < 0)
        return -1;
      /* Credentials are for the registry, never for the storage it redirects to. */
      const char *extra = same_origin (&u, &origin) ? headers : "";
      if (get_once (out, &u, extra, tls, timeout_ms, status, err) < 0)
        return -1;
      struct http_body *b = *out;
      if (!is_redirect (*status) || b->location == NULL || hop >= MAX_REDIRECTS)
        return 0;
      char *next = resolve_location (&u, b->location);
      if (next == NULL)
        return unpack_fail (err, FAULT_SYSTEM, "allocate the URL");
      free (current);
      current = next;
      http_body_free (b);
      *out = NULL;
    }
}

/* ---- the body ---- */

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
  ssize_t n = conn_read (b, buf, len, err);
  if (n < 0)
    return -1;
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
  if (errno || end == line || !isxdigit ((unsigned char) line[0]))
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
  if (b->len > b->pos)
    {
      b->left = UINT64_MAX;
      return read_data (b, buf, len, err);
    }
  return conn_read (b, buf, len, err);
}

/* The response was read to its end, and nothing else came: the connection can carry another request. */
static int
reusable (const struct http_body *b)
{
  if (!keep_alive || b->server_close || b->fd < 0 || b->origin == NULL || b->len != b->pos)
    return 0;
  return b->chunked ? b->chunks_done : b->has_length && b->left == 0;
}

static void
body_destroy (struct http_body *b)
{
  if (b == NULL)
    return;
  conn_close (b);
  free (b->origin);
  free (b->location);
  free (b);
}

void
http_body_free (struct http_body *b)
{
  if (b == NULL)
    return;
  if (!reusable (b))
    {
      body_destroy (b);
      return;
    }
  body_destroy (idle);
  idle = b;
  free (b->location);
  b->location = NULL;
  b->len = b->pos = 0;
  b->chunked = b->has_length = b->chunks_done = b->eof = 0;
  b->left = 0;
}
