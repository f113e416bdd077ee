/* A layer blob as its uncompressed tar stream: gzip (also several members in a row), zstd (also
 * several frames) or none. Every byte handed out is counted against the size limit before it is
 * handed out, so a decompression bomb stops at the limit, and hashed, for the diffID. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zlib.h>
#include <zstd.h>

#include "unpack.h"

/* Compressed input is read in large pieces: fewer syscalls, and zlib/zstd work best on long runs. */
#define INPUT_BYTES (256 * 1024)

struct layer_stream
{
  struct blob_source src;
  enum compression kind;
  z_stream z;
  int z_ready;
  int z_member_done;   /* a gzip member ended: the next input starts a new one, or is the end */
  ZSTD_DStream *zstd;
  size_t zstd_last;    /* ZSTD_decompressStream's last hint: 0 means the last frame is complete */
  unsigned char *in;
  size_t in_len, in_pos;
  int in_eof;
  struct blob_copy copy;   /* copy.fd < 0: no copy */
  EVP_MD_CTX *copy_hash;
  uint64_t copy_bytes;
  EVP_MD_CTX *hash;
  uint64_t total;
  uint64_t max_bytes;
};

static const unsigned char GZIP_MAGIC[] = { 0x1f, 0x8b };
static const unsigned char ZSTD_MAGIC[] = { 0x28, 0xb5, 0x2f, 0xfd };

static int
ends_with (const char *s, const char *suffix)
{
  size_t a = strlen (s), b = strlen (suffix);
  return a >= b && strcmp (s + a - b, suffix) == 0;
}

/* The compression a media type declares, or -1 when it declares none berth knows. */
static int
declared_compression (const char *media_type)
{
  if (ends_with (media_type, "+gzip") || ends_with (media_type, ".gzip"))
    return COMPRESSION_GZIP;
  if (ends_with (media_type, "+zstd"))
    return COMPRESSION_ZSTD;
  if (ends_with (media_type, ".tar") || ends_with (media_type, "layer.v1.tar"))
    return COMPRESSION_NONE;
  return -1;
}

static enum compression
sniff (const unsigned char *head, size_t len)
{
  if (len >= sizeof GZIP_MAGIC && memcmp (head, GZIP_MAGIC, sizeof GZIP_MAGIC) == 0)
    return COMPRESSION_GZIP;
  if (len >= sizeof ZSTD_MAGIC && memcmp (head, ZSTD_MAGIC, sizeof ZSTD_MAGIC) == 0)
    return COMPRESSION_ZSTD;
  return COMPRESSION_NONE;
}

static const char *
compression_name (enum compression c)
{
  return c == COMPRESSION_GZIP ? "gzip" : c == COMPRESSION_ZSTD ? "zstd" : "none";
}

ssize_t
fd_source_read (void *fd, unsigned char *buf, size_t len, berth_error_t *err)
{
  ssize_t n;
  do
    n = read ((int) (intptr_t) fd, buf, len);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return unpack_fail (err, FAULT_SYSTEM, "read the layer blob: %s", strerror (errno));
  return n;
}

/* One read of the blob, copied (and hashed) on the way when there is a copy. */
static ssize_t
read_input (struct layer_stream *s, unsigned char *buf, size_t len, berth_error_t *err)
{
  ssize_t n = s->src.read (s->src.ctx, buf, len, err);
  if (n <= 0 || s->copy.fd < 0)
    return n;
  s->copy_bytes += (uint64_t) n;
  if (s->copy_bytes > s->copy.max_bytes)
    return unpack_fail (err, FAULT_BAD_LAYER, "the layer blob is larger than its expected %llu bytes", (unsigned long long) s->copy.max_bytes);
  if (EVP_DigestUpdate (s->copy_hash, buf, (size_t) n) != 1)
    return unpack_fail (err, FAULT_SYSTEM, "hash the layer blob");
  for (size_t done = 0; done < (size_t) n;)
    {
      ssize_t w = write (s->copy.fd, buf + done, (size_t) n - done);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        return unpack_fail (err, FAULT_SYSTEM, "write the layer blob: %s", strerror (errno));
      done += (size_t) w;
    }
  return n;
}

/* Refills the input buffer once its bytes are used up; sets in_eof at the end of the blob. */
static int
fill_input (struct layer_stream *s, berth_error_t *err)
{
  if (s->in_pos < s->in_len || s->in_eof)
    return 0;
  ssize_t n = read_input (s, s->in, INPUT_BYTES, err);
  if (n < 0)
    return -1;
  s->in_len = (size_t) n;
  s->in_pos = 0;
  s->in_eof = n == 0;
  return 0;
}

int
layer_stream_open (struct layer_stream **out, const struct blob_source *src, const struct blob_copy *copy, const char *media_type,
                   uint64_t max_bytes, berth_error_t *err)
{
  struct layer_stream *s = calloc (1, sizeof *s);
  if (s == NULL)
    return unpack_fail (err, FAULT_SYSTEM, "allocate the layer stream");
  s->src = *src;
  s->max_bytes = max_bytes;
  s->copy.fd = -1;
  *out = s;
  s->in = malloc (INPUT_BYTES);
  s->hash = EVP_MD_CTX_new ();
  if (s->in == NULL || s->hash == NULL || EVP_DigestInit_ex (s->hash, EVP_sha256 (), NULL) != 1)
    return unpack_fail (err, FAULT_SYSTEM, "set up the layer stream");
  if (copy)
    {
      s->copy = *copy;
      s->copy_hash = EVP_MD_CTX_new ();
      if (s->copy_hash == NULL || EVP_DigestInit_ex (s->copy_hash, EVP_sha256 (), NULL) != 1)
        return unpack_fail (err, FAULT_SYSTEM, "set up the blob hash");
    }
  if (fill_input (s, err) < 0)
    return -1;

  enum compression actual = sniff (s->in, s->in_len);
  int declared = declared_compression (media_type);
  if (declared >= 0 && declared != COMPRESSION_NONE && (int) actual != declared)
    return unpack_fail (err, FAULT_BAD_LAYER, "layer declared as %s is not %s-compressed", media_type,
                        compression_name ((enum compression) declared));
  /* An empty blob is an empty (and so truncated) tar stream, whatever it was declared as. */
  s->kind = s->in_len == 0 ? COMPRESSION_NONE : actual;

  if (s->kind == COMPRESSION_GZIP)
    {
      if (inflateInit2 (&s->z, 16 + MAX_WBITS) != Z_OK)
        return unpack_fail (err, FAULT_SYSTEM, "set up gzip decompression");
      s->z_ready = 1;
    }
  else if (s->kind == COMPRESSION_ZSTD)
    {
      s->zstd = ZSTD_createDStream ();
      if (s->zstd == NULL || ZSTD_isError (ZSTD_initDStream (s->zstd)))
        return unpack_fail (err, FAULT_SYSTEM, "set up zstd decompression");
      /* A frame may ask for a window of up to 128 MiB; zstd's own default cap (8 MiB for a frame that
       * does not announce its size) keeps a hostile frame from taking that much memory. */
    }
  return 0;
}

/* Uncompressed: what is left of the first read, then straight from the blob into buf. */
static ssize_t
read_plain (struct layer_stream *s, unsigned char *buf, size_t len, berth_error_t *err)
{
  size_t n = s->in_len - s->in_pos;
  if (n == 0)
    return read_input (s, buf, len, err);
  if (n > len)
    n = len;
  memcpy (buf, s->in + s->in_pos, n);
  s->in_pos += n;
  return (ssize_t) n;
}

static ssize_t
read_gzip (struct layer_stream *s, unsigned char *buf, size_t len, berth_error_t *err)
{
  for (;;)
    {
      if (fill_input (s, err) < 0)
        return -1;
      if (s->z_member_done)
        {
          if (s->in_eof)
            return 0;
          /* More bytes after a member: another member follows (multi-member gzip, as pigz writes). */
          if (inflateReset (&s->z) != Z_OK)
            return unpack_fail (err, FAULT_SYSTEM, "restart gzip decompression");
          s->z_member_done = 0;
        }
      else if (s->in_eof)
        return unpack_fail (err, FAULT_BAD_LAYER, "corrupt gzip layer: unexpected end of file");
      s->z.next_in = s->in + s->in_pos;
      s->z.avail_in = (uInt) (s->in_len - s->in_pos);
      s->z.next_out = buf;
      s->z.avail_out = (uInt) len;
      int rc = inflate (&s->z, Z_NO_FLUSH);
      s->in_pos = s->in_len - s->z.avail_in;
      if (rc == Z_STREAM_END)
        s->z_member_done = 1;
      else if (rc != Z_OK && rc != Z_BUF_ERROR)
        return unpack_fail (err, FAULT_BAD_LAYER, "corrupt gzip layer: %s", s->z.msg ? s->z.msg : zError (rc));
      size_t produced = len - s->z.avail_out;
      if (produced > 0)
        return (ssize_t) produced;
    }
}

static ssize_t
read_zstd (struct layer_stream *s, unsigned char *buf, size_t len, berth_error_t *err)
{
  for (;;)
    {
      if (fill_input (s, err) < 0)
        return -1;
      if (s->in_eof)
        {
          if (s->zstd_last != 0)
            return unpack_fail (err, FAULT_BAD_LAYER, "corrupt zstd layer: unexpected end of file");
          return 0;
        }
      ZSTD_inBuffer in = { s->in, s->in_len, s->in_pos };
      ZSTD_outBuffer outb = { buf, len, 0 };
      size_t rc = ZSTD_decompressStream (s->zstd, &outb, &in);
      if (ZSTD_isError (rc))
        return unpack_fail (err, FAULT_BAD_LAYER, "corrupt zstd layer: %s", ZSTD_getErrorName (rc));
      s->zstd_last = rc;
      s->in_pos = in.pos;
      if (outb.pos > 0)
        return (ssize_t) outb.pos;
    }
}

ssize_t
layer_stream_read (struct layer_stream *s, unsigned char *buf, size_t len, berth_error_t *err)
{
  ssize_t n;
  if (s->kind == COMPRESSION_GZIP)
    n = read_gzip (s, buf, len, err);
  else if (s->kind == COMPRESSION_ZSTD)
    n = read_zstd (s, buf, len, err);
  else
    n = read_plain (s, buf, len, err);
  if (n <= 0)
    return n;
  s->total += (uint64_t) n;
  if (s->total > s->max_bytes)
    return unpack_fail (err, FAULT_LIMIT, "layer is larger than the limit of %llu uncompressed bytes (image.max_layer_bytes)",
                        (unsigned long long) s->max_bytes);
  if (EVP_DigestUpdate (s->hash, buf, (size_t) n) != 1)
    return unpack_fail (err, FAULT_SYSTEM, "hash the layer");
  return n;
}

static void
hex_digest (EVP_MD_CTX *ctx, char hex[65])
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  static const char digits[] = "0123456789abcdef";
  if (EVP_DigestFinal_ex (ctx, md, &md_len) != 1 || md_len != 32)
    {
      hex[0] = '\0';
      return;
    }
  for (unsigned int i = 0; i < 32; i++)
    {
      hex[2 * i] = digits[md[i] >> 4];
      hex[2 * i + 1] = digits[md[i] & 0xf];
    }
  hex[64] = '\0';
}

void
layer_stream_digest (struct layer_stream *s, char hex[65], uint64_t *size)
{
  hex_digest (s->hash, hex);
  *size = s->total;
}

int
layer_stream_blob_digest (struct layer_stream *s, char hex[65], uint64_t *size, berth_error_t *err)
{
  if (s->copy.fd < 0)
    return unpack_fail (err, FAULT_SYSTEM, "no copy of the blob was made");
  /* The blob must be on disk before berthd renames it into the content store. */
  if (fdatasync (s->copy.fd) < 0)
    return unpack_fail (err, FAULT_SYSTEM, "sync the layer blob: %s", strerror (errno));
  hex_digest (s->copy_hash, hex);
  *size = s->copy_bytes;
  return 0;
}

void
layer_stream_free (struct layer_stream *s)
{
  if (s == NULL)
    return;
  if (s->z_ready)
    inflateEnd (&s->z);
  ZSTD_freeDStream (s->zstd);
  EVP_MD_CTX_free (s->hash);
  EVP_MD_CTX_free (s->copy_hash);
  free (s->in);
  free (s);
}
