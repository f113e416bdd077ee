/* berth-unpack: one image layer blob (gzip, zstd or plain tar) unpacked into a directory that is
 * ready to be an overlayfs lower dir. The pieces: stream.c (decompression, the diffID hash and the
 * size limit), tar.c (a tar reader for hostile input), dirs.c (entry paths and the walk to an entry's
 * parent that never follows a symlink), layer.c (writing entries). */
#ifndef BERTH_UNPACK_H
#define BERTH_UNPACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "../common/error.h"

/* Why an unpack failed, which decides berth-unpack's exit status (and so the gRPC code berthd
 * answers with): the layer itself is bad, or it is over a limit, or the machine failed (I/O, ENOSPC). */
enum unpack_fault
{
  FAULT_SYSTEM = 1,
  FAULT_BAD_LAYER = 2,
  FAULT_LIMIT = 3,
  FAULT_TRANSPORT = 6,   /* the registry connection failed in the middle of a body */
};

/* Records the fault (the first one wins, as with berth_error) and sets *err; returns -1. */
int unpack_fail (berth_error_t *err, enum unpack_fault fault, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
enum unpack_fault unpack_fault_of (void);
/* The errno of the first failure when it was FAULT_SYSTEM, else 0. */
int unpack_fault_errno (void);

/* ---- stream.c: the blob as its uncompressed tar stream ---- */

enum compression
{
  COMPRESSION_NONE,
  COMPRESSION_GZIP,
  COMPRESSION_ZSTD,
};

struct layer_stream;

/* Where the blob's bytes come from: a file or pipe (fd_source), or an HTTP body (http.c). */
struct blob_source
{
  ssize_t (*read) (void *ctx, unsigned char *buf, size_t len, berth_error_t *err);
  void *ctx;
};

ssize_t fd_source_read (void *fd, unsigned char *buf, size_t len, berth_error_t *err);

/* While a blob streams in (from a download), a copy of it goes to copy_fd, hashed and counted: it
 * becomes the content store's blob once berthd has checked its digest. */
struct blob_copy
{
  int fd;
  uint64_t max_bytes;   /* the size the manifest gives: more is an error at once */
};

/* Opens the blob, copying it as it is read when copy is not NULL. The compression comes from the
 * media type and must agree with the blob's first bytes; an unknown media type is decided by those
 * bytes. */
int layer_stream_open (struct layer_stream **out, const struct blob_source *src, const struct blob_copy *copy, const char *media_type,
                       uint64_t max_bytes, berth_error_t *err);
/* Up to len uncompressed bytes into buf: their count, 0 at the end, -1 on error. */
ssize_t layer_stream_read (struct layer_stream *s, unsigned char *buf, size_t len, berth_error_t *err);
/* The sha256 of everything read so far, as 64 hex digits, and its size. */
void layer_stream_digest (struct layer_stream *s, char hex[65], uint64_t *size);
/* The same for the blob as it was read (with a copy only); flushes the copy to disk first. */
int layer_stream_blob_digest (struct layer_stream *s, char hex[65], uint64_t *size, berth_error_t *err);
void layer_stream_free (struct layer_stream *s);

/* ---- tar.c: entries of the tar stream ---- */

enum entry_type
{
  ENTRY_FILE,
  ENTRY_HARDLINK,
  ENTRY_SYMLINK,
  ENTRY_CHAR,
  ENTRY_BLOCK,
  ENTRY_DIR,
  ENTRY_FIFO,
  ENTRY_OTHER,
};

struct xattr
{
  char *name;
  unsigned char *value;
  size_t len;
};

struct tar_entry
{
  char *path;
  char *linkpath;
  char typeflag;
  enum entry_type type;
  mode_t mode;
  uid_t uid;
  gid_t gid;
  uint64_t size;
  struct timespec mtime;
  unsigned int devmajor, devminor;
  struct xattr *xattrs;
  size_t n_xattrs;
};

struct tar_reader;

int tar_reader_new (struct tar_reader **out, struct layer_stream *src, berth_error_t *err);
/* The next entry (1), the end of the archive (0) or an error (-1). An unread body is skipped first.
 * The entry stays valid until the next call. */
int tar_next (struct tar_reader *r, const struct tar_entry **entry, berth_error_t *err);
/* The next piece of the current entry's body, pointing into the reader's buffer: 1 with *data and
 * *len set, 0 when the body is done, -1 on error. */
int tar_body_chunk (struct tar_reader *r, const unsigned char **data, size_t *len, berth_error_t *err);
/* Reads the stream to its end (the diffID covers the end-of-archive blocks and any padding after). */
int tar_drain (struct tar_reader *r, berth_error_t *err);
void tar_reader_free (struct tar_reader *r);

/* ---- dirs.c: entry paths and directories inside the layer ---- */

/* An entry's path split into components: never absolute, never "..", no "" or "." components. */
struct entry_path
{
  char *buf;
  char **parts;
  size_t n;
};

int entry_path_parse (struct entry_path *p, const char *name, berth_error_t *err);
void entry_path_release (struct entry_path *p);

/* The open directories from the layer root down to the last parent used. Consecutive entries mostly
 * share their parents, so each walk opens only the components that differ from the last one. Every
 * component is opened with O_NOFOLLOW: a parent that is a symlink is refused, whatever it points to. */
struct dir_chain;

int dir_chain_new (struct dir_chain **out, int root_fd, berth_error_t *err);
/* The directory parts[0..n) (n == 0: the root), made when missing if create is set; the fd belongs to
 * the chain and is valid until the next walk. `entry` names the entry in messages. */
int dir_chain_walk (struct dir_chain *c, char *const *parts, size_t n, int create, const char *entry, int *fd, berth_error_t *err);
void dir_chain_free (struct dir_chain *c);

/* Removes name under dir_fd, recursively when it is a directory, never following a symlink. */
int remove_tree_at (int dir_fd, const char *name, berth_error_t *err);

/* ---- http.c: a blob over plain HTTP/1.1 ---- */

struct http_body;

struct tls_options
{
  const char *ca_file;   /* NULL: the system's roots */
  int insecure;          /* no verification at all */
};

/* Sends GET url with the extra header lines given ("Name: value\r\n"...), following redirects, and
 * reads the final response's head: 0 with *status set (the body is ready to read when it is 200), -1
 * when no answer came. */
int http_get (struct http_body **out, const char *url, const char *headers, const struct tls_options *tls, int timeout_ms, int *status,
              berth_error_t *err);
ssize_t http_body_read (struct http_body *b, unsigned char *buf, size_t len, berth_error_t *err);
/* Frees the body; with keep-alive on, a connection whose response was read whole is kept for the next
 * http_get to the same origin instead of being closed. */
void http_body_free (struct http_body *b);
/* Keep-alive on (1) or off (0, the default: every GET on a connection of its own, Connection: close). */
void http_keep_alive (int on);

/* ---- layer.c: entries into the layer directory ---- */

struct layer_limits
{
  uint64_t max_bytes;
  uint64_t max_entries;
};

struct layer_result
{
  char diff_id[72];   /* "sha256:" + 64 hex digits */
  uint64_t size;
  uint64_t entries;
  char blob_digest[72];   /* with a copy only */
  uint64_t blob_size;
};

int unpack_layer (const struct blob_source *src, const struct blob_copy *copy, const char *media_type, int target_fd, const struct layer_limits *limits,
                  struct layer_result *result, berth_error_t *err);

#endif
