/* A streaming tar reader written for hostile input. It reports names exactly as the archive gives them
 * (dirs.c decides what is allowed), verifies header checksums, and understands ustar, GNU long names
 * and links, PAX extended headers (path, linkpath, size, uid, gid, mtime, SCHILY.xattr.*) and base-256
 * numbers. Bodies are handed out as pieces of the reader's buffer, never held whole. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cleanup.h"
#include "unpack.h"

#define BLOCK 512
/* Decompressed data is handed out of this buffer: large, so each body write is large too. */
#define BUFFER_BYTES (1024 * 1024)
/* PAX headers and GNU long names are read into memory: nothing legitimate is near this size. */
#define MAX_META_BYTES (1024 * 1024)

/* What PAX headers ('x') said about the entry that follows them. */
struct pax_state
{
  char *path, *linkpath;
  int has_size, has_uid, has_gid, has_mtime;
  uint64_t size, uid, gid;
  struct timespec mtime;
  struct xattr *xattrs;
  size_t n_xattrs;
};

struct tar_reader
{
  struct layer_stream *src;
  unsigned char *buf;
  size_t len, pos;
  int eof;
  uint64_t body_left;   /* bytes of the current entry's body not handed out yet */
  uint64_t body_pad;    /* the padding after it, to skip */
  struct tar_entry entry;
  struct pax_state pax;
  char *long_name, *long_link;
};

static void
free_xattrs (struct xattr *x, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      free (x[i].name);
      free (x[i].value);
    }
  free (x);
}

static void
clear_entry (struct tar_reader *r)
{
  free (r->entry.path);
  free (r->entry.linkpath);
  free_xattrs (r->entry.xattrs, r->entry.n_xattrs);
  memset (&r->entry, 0, sizeof r->entry);
}

static void
clear_pax (struct tar_reader *r)
{
  free (r->pax.path);
  free (r->pax.linkpath);
  free_xattrs (r->pax.xattrs, r->pax.n_xattrs);
  memset (&r->pax, 0, sizeof r->pax);
  free (r->long_name);
  free (r->long_link);
  r->long_name = r->long_link = NULL;
}

int
tar_reader_new (struct tar_reader **out, struct layer_stream *src, berth_error_t *err)
{
  struct tar_reader *r = calloc (1, sizeof *r);
  if (r == NULL || (r->buf = malloc (BUFFER_BYTES)) == NULL)
    {
      free (r);
      return unpack_fail (err, FAULT_SYSTEM, "allocate the tar reader");
    }
  r->src = src;
  *out = r;
  return 0;
}

void
tar_reader_free (struct tar_reader *r)
{
  if (r == NULL)
    return;
  clear_entry (r);
  clear_pax (r);
  free (r->buf);
  free (r);
}

/* Makes at least `need` (<= BUFFER_BYTES) bytes available unless the stream ends first; returns
 * how many are available. */
static ssize_t
fill (struct tar_reader *r, size_t need, berth_error_t *err)
{
  if (r->len - r->pos >= need)
    return (ssize_t) (r->len - r->pos);
  memmove (r->buf, r->buf + r->pos, r->len - r->pos);
  r->len -= r->pos;
  r->pos = 0;
  while (r->len < need && !r->eof)
    {
      ssize_t n = layer_stream_read (r->src, r->buf + r->len, BUFFER_BYTES - r->len, err);
      if (n < 0)
        return -1;
      if (n == 0)
        r->eof = 1;
      r->len += (size_t) n;
    }
  return (ssize_t) r->len;
}

static int
skip (struct tar_reader *r, uint64_t n, const char *what, berth_error_t *err)
{
  while (n > 0)
    {
      ssize_t avail = fill (r, 1, err);
      if (avail < 0)
        return -1;
      if (avail == 0)
        return unpack_fail (err, FAULT_BAD_LAYER, "corrupt layer: archive ends inside %s", what);
      size_t take = (uint64_t) avail < n ? (size_t) avail : (size_t) n;
      r->pos += take;
      n -= take;
    }
  return 0;
}

static uint64_t
padding (uint64_t size)
{
  return (BLOCK - size % BLOCK) % BLOCK;
}

/* Extended data (PAX records, GNU long names) of `size` bytes, NUL-terminated, and its padding. */
static int
read_meta (struct tar_reader *r, uint64_t size, const char *what, char **out, berth_error_t *err)
{
  if (size > MAX_META_BYTES)
    return unpack_fail (err, FAULT_BAD_LAYER, "corrupt layer: %s of %llu bytes is too large", what, (unsigned long long) size);
  char *data = malloc ((size_t) size + 1);
  if (data == NULL)
    return unpack_fail (err, FAULT_SYSTEM, "allocate %s", what);
  size_t got = 0;
  while (got < size)
    {
      ssize_t avail = fill (r, 1, err);
      if (avail <= 0)
        {
          free (data);
          return avail < 0 ? -1 : unpack_fail (err, FAULT_BAD_LAYER, "corrupt layer: archive ends inside %s", what);
        }
      size_t take = (size_t) avail < size - got ? (size_t) avail : (size_t) (size - got);
      memcpy (data + got, r->buf + r->pos, take);
      r->pos += take;
      got += take;
    }
  data[size] = '\0';
  if (skip (r, padding (size), what, err) < 0)
    {
      free (data);
      return -1;
    }
  *out = data;
  return 0;
}

/* A numeric header field: octal text, or base-256 (big-endian, top bit of the first byte set). */
static int
header_number (const unsigned char *h, size_t off, size_t len, const char *what, uint64_t *out, berth_error_t *err)
{
  const unsigned char *f = h + off;
  uint64_t v = 0;
  if (f[0] & 0x80)
    {
      if (f[0] & 0x40)
        return unpack_fail (err, FAULT_BAD_LAYER, "corrupt layer: tar header %s is negative", what);
      for (size_t i = 0; i < len; i++)
        {
          if (v > (UINT64_MAX >> 8))
            return unpack_fail (err, FAULT_BAD_LAYER, "corrupt layer: tar header %s is too large", what);
          v = (v << 8) | (i == 0 ? (f[i] & 0x3f) : f[i]);
        }
      *out = v;
      return 0;
    }
  size_t i = 0, end = 0;
  while (end < len && f[end] != '\0')
    end++;
  while (i < end && f[i] == ' ')
    i++;
  while (end > i && f[end - 1] == ' ')
    end--;
  for (; i < end; i++)
    {
      if (f[i] < '0' || f[i] > '7')
        return unpack_fail (err, FAULT_BAD_LAYER, "corrupt layer: tar header %s is not an octal number", what);
      if (v > (UINT64_MAX >> 3))
        return unpack_fail (err, FAULT_BAD_LAYER, "corrupt layer: tar header %s is too large", what);
      v = (v << 3) | (uint64_t) (f[i] - '0');
    }
  *out = v;
  return 0;
}

static int
checksum_ok (const unsigned char *h, berth_error_t *err)
{
  uint64_t stored;
  if (header_number (h, 148, 8, "checksum", &stored, err) < 0)
    return -1;
  long unsigned_sum = 0, signed_sum = 0;
  for (size_t i = 0; i < BLOCK; i++)
    {
      unsigned char b = (i >= 148 && i < 156) ? 0x20 : h[i];
      unsigned_sum += b;
      signed_sum += (signed char) b;
    }
  if ((long) stored == unsigned_sum || (long) stored == signed_sum)
    return 0;
  return unpack_fail (err, FAULT_BAD_LAYER, "corrupt layer: tar header checksum mismatch (corrupt or not a tar archive)");
}

/* A NUL-terminated copy of a fixed-size text field. */
static char *
field_text (const unsigned char *h, size_t off, size_t len)
{
  return strndup ((const char *) h + off, len);
}

static int
pax_decimal (const char *v, size_t len, const char *key, uint64_t *out, berth_error_t *err)
{
  uint64_t n = 0;
  if (len == 0)
    return unpack_fail (err, FAULT_BAD_LAYER, "corrupt layer: PAX %s is not a number", key);
  for (size_t i = 0; i < len; i++)
    {
      if (v[i] < '0' || v[i] > '9' || n > (UINT64_MAX - 9) / 10)
        return unpack_fail (err, FAULT_BAD_LAYER, "corrupt layer: PAX %s is not a number", key);
      n = n * 10 + (uint64_t) (v[i] - '0');
    }
  *out = n;
  return 0;
}

/* PAX times: [-]seconds[.fraction]. */
static int
pax_time (const char *v, size_t len, struct timespec *out, berth_error_t *err)
{
  int negative = len > 0 && v[0] == '-';
  const char *p = v + negative, *end = v + len;
  const char *dot = memchr (p, '.', (size_t) (end - p));
  uint64_t sec;
  if (pax_decimal (p, (size_t) ((dot ? dot : end) - p), "mtime", &sec, err) < 0)
    return -1;
  long nsec = 0;
  if (dot)
    {
      long scale = 100000000;
      for (const char *q = dot + 1; q < end; q++, scale /= 10)
        {
          if (*q < '0' || *q > '9')
            return unpack_fail (err, FAULT_BAD_LAYER, "corrupt layer: PAX mtime is not a number");
          nsec += (*q - '0') * scale;
        }
    }
  if (sec > INT64_MAX / 2)
    return unpack_fail (err, FAULT_BAD_LAYER, "corrupt layer: PAX mtime is too large");
  out->tv_sec = negative ? -(time_t) sec : (time_t) sec;
  out->tv_nsec = nsec;
  if (negative && nsec)
    {
      out->tv_sec -= 1;
      out->tv_nsec = 1000000000 - nsec;
    }
  return 0;
}

static int
pax_string (const char *v, size_t len, const char *key, char **out, berth_error_t *err)
{
  if (memchr (v, '\0', len))
    return unpack_fail (err, FAULT_BAD_LAYER, "layer entry PAX %s contains a NUL byte", key);
  free (*out);
  *out = strndup (v, len);
  if (*out == NULL)
    return unpack_fail (err, FAULT_SYSTEM, "allocate PAX %s", key);
  return 0;
}

static int
pax_xattr (struct pax_state *pax, const char *name, size_t name_len, const char *v, size_t len, berth_error_t *err)
{
  struct xattr *grown = realloc (pax->xattrs, (pax->n_xattrs + 1) * sizeof *grown);
  if (grown == NULL)
    return unpack_fail (err, FAULT_SYSTEM, "allocate an xattr");
  pax->xattrs = grown;
  struct xattr *x = &pax->xattrs[pax->n_xattrs];
  x->name = strndup (name, name_len);
  x->value = malloc (len ? len : 1);
  x->len = len;
  if (x->name == NULL || x->value == NULL)
    {
      free (x->name);
      free (x->value);
      return unpack_fail (err, FAULT_SYSTEM, "allocate an xattr");
    }
  memcpy (x->value, v, len);
  pax->n_xattrs++;
  return 0;
}

#define XATTR_PREFIX "SCHILY.xattr."

static int
pax_record (struct pax_state *pax, const char *key, size_t key_len, const char *v, size_t len, berth_error_t *err)
{
#define KEY_IS(k) (key_len == sizeof (k) - 1 && memcmp (key, k, key_len) == 0)
  if (KEY_IS ("path"))
    return pax_string (v, len, "path", &pax->path, err);
  if (KEY_IS ("linkpath"))
    return pax_string (v, len, "linkpath", &pax->linkpath, err);
  if (KEY_IS ("size"))
    return (pax->has_size = 1, pax_decimal (v, len, "size", &pax->size, err));
  if (KEY_IS ("uid"))
    return (pax->has_uid = 1, pax_decimal (v, len, "uid", &pax->uid, err));
  if (KEY_IS ("gid"))
    return (pax->has_gid = 1, pax_decimal (v, len, "gid", &pax->gid, err));
  if (KEY_IS ("mtime"))
    return (pax->has_mtime = 1, pax_time (v, len, &pax->mtime, err));
  if (key_len > sizeof XATTR_PREFIX - 1 && memcmp (key, XATTR_PREFIX, sizeof XATTR_PREFIX - 1) == 0)
    {
      const char *name = key + sizeof XATTR_PREFIX - 1;
      size_t name_len = key_len - (sizeof XATTR_PREFIX - 1);
      if (memchr (name, '\0', name_len))
        return unpack_fail (err, FAULT_BAD_LAYER, "corrupt layer: an xattr name contains a NUL byte");
      return pax_xattr (pax, name, name_len, v, len, err);
    }
  return 0; /* atime, ctime, uname, gname, comments, vendor keys: nothing berth keeps */
#undef KEY_IS
}

/* Records "LEN KEY=VALUE\n", LEN counting the whole record. */
static int
parse_pax (struct pax_state *pax, const char *data, size_t size, berth_error_t *err)
{
  size_t pos = 0;
  while (pos < size)
    {
      size_t len = 0, i = pos;
      while (i < size && data[i] >= '0' && data[i] <= '9' && len < size)
        len = len * 10 + (size_t) (data[i++] - '0');
      if (i >= size || data[i] != ' ' || len <= i - pos + 1 || len > size - pos || data[pos + len - 1] != '\n')
        return unpack_fail (err, FAULT_BAD_LAYER, "corrupt layer: malformed PAX record");
      const char *record = data + i + 1;
      size_t record_len = pos + len - 1 - (i + 1);
      const char *eq = memchr (record, '=', record_len);
      if (eq == NULL)
        return unpack_fail (err, FAULT_BAD_LAYER, "corrupt layer: malformed PAX record: no \"=\"");
      if (pax_record (pax, record, (size_t) (eq - record), eq + 1, record_len - (size_t) (eq - record) - 1, err) < 0)
        return -1;
      pos += len;
    }
  return 0;
}

static enum entry_type
type_of (char typeflag)
{
  switch (typeflag)
    {
    case '0':
    case '\0':
    case '7':
      return ENTRY_FILE;
    case '1':
      return ENTRY_HARDLINK;
    case '2':
      return ENTRY_SYMLINK;
    case '3':
      return ENTRY_CHAR;
    case '4':
      return ENTRY_BLOCK;
    case '5':
      return ENTRY_DIR;
    case '6':
      return ENTRY_FIFO;
    default:
      return ENTRY_OTHER;
    }
}

static char *
take (char **p)
{
  char *v = *p;
  *p = NULL;
  return v;
}

/* The entry a ustar header describes, with what PAX headers and GNU long names said before it. */
static int
build_entry (struct tar_reader *r, const unsigned char *h, uint64_t size, berth_error_t *err)
{
  struct tar_entry *e = &r->entry;
  struct pax_state *pax = &r->pax;
  uint64_t mode, uid, gid, mtime, major, minor;
  if (header_number (h, 100, 8, "mode", &mode, err) < 0 || header_number (h, 108, 8, "uid", &uid, err) < 0
      || header_number (h, 116, 8, "gid", &gid, err) < 0 || header_number (h, 136, 12, "mtime", &mtime, err) < 0
      || header_number (h, 329, 8, "devmajor", &major, err) < 0 || header_number (h, 337, 8, "devminor", &minor, err) < 0)
    return -1;
  e->typeflag = (char) h[156];
  e->type = type_of (e->typeflag);
  e->mode = (mode_t) (mode & 07777);
  uid = pax->has_uid ? pax->uid : uid;
  gid = pax->has_gid ? pax->gid : gid;
  if (uid >= UINT32_MAX || gid >= UINT32_MAX)
    return unpack_fail (err, FAULT_BAD_LAYER, "corrupt layer: an owner id is out of range");
  e->uid = (uid_t) uid;
  e->gid = (gid_t) gid;
  e->size = pax->has_size ? pax->size : size;
  if (pax->has_mtime)
    e->mtime = pax->mtime;
  else
    e->mtime = (struct timespec) { .tv_sec = (time_t) mtime, .tv_nsec = 0 };
  if (major > UINT32_MAX || minor > UINT32_MAX)
    return unpack_fail (err, FAULT_BAD_LAYER, "corrupt layer: a device number is out of range");
  e->devmajor = (unsigned) major;
  e->devminor = (unsigned) minor;

  if (pax->path)
    e->path = take (&pax->path);
  else if (r->long_name)
    e->path = take (&r->long_name);
  else
    {
      cleanup_free char *name = field_text (h, 0, 100);
      cleanup_free char *prefix = memcmp (h + 257, "ustar", 5) == 0 ? field_text (h, 345, 155) : strdup ("");
      if (name == NULL || prefix == NULL)
        return unpack_fail (err, FAULT_SYSTEM, "allocate an entry name");
      if (*prefix && asprintf (&e->path, "%s/%s", prefix, name) < 0)
        e->path = NULL;
      else if (!*prefix)
        e->path = take (&name);
    }
  if (pax->linkpath)
    e->linkpath = take (&pax->linkpath);
  else if (r->long_link)
    e->linkpath = take (&r->long_link);
  else
    e->linkpath = field_text (h, 157, 100);
  if (e->path == NULL || e->linkpath == NULL)
    return unpack_fail (err, FAULT_SYSTEM, "allocate an entry name");
  e->xattrs = pax->xattrs;
  e->n_xattrs = pax->n_xattrs;
  pax->xattrs = NULL;
  pax->n_xattrs = 0;
  return 0;
}

int
tar_next (struct tar_reader *r, const struct tar_entry **entry, berth_error_t *err)
{
  if (skip (r, r->body_left + r->body_pad, "an entry's data", err) < 0)
    return -1;
  r->body_left = r->body_pad = 0;
  clear_entry (r);
  clear_pax (r);
  for (;;)
    {
      ssize_t avail = fill (r, BLOCK, err);
      if (avail < 0)
        return -1;
      if (avail == 0)
        return 0; /* the stream ends without end-of-archive blocks: taken as the end, as tar does */
      if (avail < BLOCK)
        return unpack_fail (err, FAULT_BAD_LAYER, "corrupt layer: archive ends inside a tar header");
      const unsigned char *h = r->buf + r->pos;
      int zero = 1;
      for (size_t i = 0; i < BLOCK && zero; i++)
        zero = h[i] == 0;
      if (zero)
        return 0;
      if (checksum_ok (h, err) < 0)
        return -1;
      uint64_t size;
      if (header_number (h, 124, 12, "size", &size, err) < 0)
        return -1;
      char typeflag = (char) h[156];
      unsigned char header[BLOCK];
      memcpy (header, h, BLOCK);
      r->pos += BLOCK;
      if (typeflag == 'x' || typeflag == 'g' || typeflag == 'L' || typeflag == 'K')
        {
          cleanup_free char *meta = NULL;
          if (read_meta (r, size, typeflag == 'L' || typeflag == 'K' ? "a GNU long name" : "a PAX header", &meta, err) < 0)
            return -1;
          if (typeflag == 'x' && parse_pax (&r->pax, meta, (size_t) size, err) < 0)
            return -1;
          if (typeflag == 'L')
            {
              free (r->long_name);
              r->long_name = take (&meta);
            }
          else if (typeflag == 'K')
            {
              free (r->long_link);
              r->long_link = take (&meta);
            }
          continue; /* 'g' (global PAX) is read and ignored */
        }
      if (build_entry (r, header, size, err) < 0)
        return -1;
      /* Only regular files carry data; a size on anything else is skipped, never written. */
      r->body_left = r->entry.size;
      r->body_pad = padding (r->entry.size);
      *entry = &r->entry;
      return 1;
    }
}

int
tar_body_chunk (struct tar_reader *r, const unsigned char **data, size_t *len, berth_error_t *err)
{
  if (r->body_left == 0)
    {
      uint64_t pad = r->body_pad;
      r->body_pad = 0;
      return skip (r, pad, "an entry's padding", err) < 0 ? -1 : 0;
    }
  ssize_t avail = fill (r, 1, err);
  if (avail < 0)
    return -1;
  if (avail == 0)
    return unpack_fail (err, FAULT_BAD_LAYER, "corrupt layer: archive ends inside the data of %s", r->entry.path);
  size_t n = (uint64_t) avail < r->body_left ? (size_t) avail : (size_t) r->body_left;
  *data = r->buf + r->pos;
  *len = n;
  r->pos += n;
  r->body_left -= n;
  return 1;
}

int
tar_drain (struct tar_reader *r, berth_error_t *err)
{
  r->pos = r->len = 0;
  while (!r->eof)
    {
      ssize_t n = layer_stream_read (r->src, r->buf, BUFFER_BYTES, err);
      if (n < 0)
        return -1;
      if (n == 0)
        r->eof = 1;
    }
  return 0;
}
