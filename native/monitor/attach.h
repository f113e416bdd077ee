/* The attach socket: a SOCK_STREAM unix socket serving any number of clients at once.
 *
 * To clients, frames: 1 byte of stream id (ATTACH_STDOUT, ATTACH_STDERR, and ATTACH_EXIT last), 4
 * bytes of payload length (big-endian), the payload: one frame per chunk of the container's output
 * as the monitor reads it, the same bytes the log gets. From clients, raw bytes for the container's
 * stdin; a client that half-closes (shutdown SHUT_WR) has ended its stdin and still gets output.
 *
 * Output is sent without blocking. A send the socket takes only in part leaves the rest of the
 * frame pending (sent on POLLOUT). A client that cannot take a frame when it comes, its socket buffer
 * (ATTACH_SNDBUF) full or the rest of its last frame still pending, fell that far behind and is cut
 * off: it gets what remains of the frame it was sent, then EOF (neither the container nor the log
 * ever waits for it). So a client never sees a gap or a broken frame: it sees the whole stream from
 * when it was accepted, or a beginning of it and then EOF. */
#ifndef BERTH_MONITOR_ATTACH_H
#define BERTH_MONITOR_ATTACH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "../common/error.h"

#define ATTACH_STDOUT 1
#define ATTACH_STDERR 2
#define ATTACH_EXIT 3
#define ATTACH_HEADER 5
/* The most stdin read from a client at once. */
#define ATTACH_INPUT_MAX 32768
/* The send buffer asked for each client (the kernel doubles it): how far it may fall behind. (A
 * build with a small one, -DATTACH_SNDBUF=4096, sends frames in parts: a test of pending output.) */
#ifndef ATTACH_SNDBUF
#define ATTACH_SNDBUF (2 << 20)
#endif
/* attach_recv: the client closed its connection (or broke it); the caller drops it. */
#define ATTACH_GONE (-2)

struct attach_client
{
  int fd;
  int pidx;            /* its index in the monitor's pollfd array, -1 when not polled */
  bool half_closed;    /* it ended its stdin with a half-close (and wants output) */
  bool input_done;     /* no more stdin from it: half-closed, cut off or leaving */
  bool output_done;    /* it takes no more output (its side is closed for reading) */
  bool closing;        /* closed once its pending output is sent: cut off, or the end */
  char *pending;       /* the unsent rest of its frames (malloc'd), NULL when none */
  size_t pending_off, pending_len;
  struct attach_client *next;
};

struct attach
{
  const char *path;
  int listen_fd;
  struct attach_client *clients;
  /* Called once per client when its stdin ends: it half-closed (half_closed is set), was cut off,
   * or is dropped. For stdin-once. */
  void (*on_input_end) (void *ctx, struct attach_client *c);
  void *ctx;
  /* Hold the container's output while a client is behind, instead of cutting the client off: for
   * exec sessions, whose one client is the only reader (no log to keep up with). */
  bool backpressure;
};

void attach_init (struct attach *a);
int attach_listen (struct attach *a, const char *path, berth_error_t *err);
/* Accepts every waiting client. */
int attach_accept (struct attach *a, berth_error_t *err);
/* Sends one frame to every client, cutting off those that cannot take it now (with backpressure:
 * keeping it pending for them). */
void attach_broadcast (struct attach *a, int stream, const char *data, size_t len);
/* With backpressure: whether a client still has output pending, so no more should be read now. */
bool attach_blocked (const struct attach *a);
/* The poll events a client wants: POLLIN when want_input (the container's stdin can take input)
 * and its stdin has not ended, POLLOUT while output is pending, none (but POLLHUP) while it is
 * half-closed and waits for output; -1 when it needs no polling now. */
int attach_events (const struct attach_client *c, bool want_input);
/* Sends pending output on POLLOUT and drops a client that is done: true when c was dropped. */
bool attach_service (struct attach *a, struct attach_client *c, short revents);
/* Reads stdin from a client: its length (> 0); 0 when the client half-closed (its stdin ended,
 * on_input_end was called, it stays for output); -1 with errno EAGAIN when it has nothing now;
 * ATTACH_GONE when it closed its connection (then the caller drops it). */
ssize_t attach_recv (struct attach *a, struct attach_client *c, char *buf, size_t size);
void attach_drop (struct attach *a, struct attach_client *c, const char *why);
/* The end: stops accepting, sends a last frame (ATTACH_EXIT, payload data) to every client that
 * still takes output, waits up to timeout_ms for clients to take what is pending, then disconnects
 * every client and removes the socket. */
void attach_finish (struct attach *a, const char *data, size_t len, int timeout_ms);
/* Disconnects every client at once and removes the socket. */
void attach_close (struct attach *a);

#endif
