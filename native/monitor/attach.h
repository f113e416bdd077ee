/* The attach socket: a SOCK_SEQPACKET unix socket serving any number of clients at once.
 *
 * To clients, one message per chunk of the container's output as the monitor reads it: 1 byte of
 * stream id (ATTACH_STDOUT, ATTACH_STDERR) followed by the bytes, the same bytes the log gets.
 * From clients, messages of raw bytes for the container's stdin (at most ATTACH_INPUT_MAX each).
 *
 * Output is sent without blocking: a client whose socket buffer (ATTACH_SNDBUF) is full, one that
 * fell that far behind, is disconnected (neither the container nor the log ever waits for it), so
 * a client never sees a gap in the stream: it sees all of it from when it was accepted, or it is
 * cut off. */
#ifndef BERTH_MONITOR_ATTACH_H
#define BERTH_MONITOR_ATTACH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "../common/error.h"

#define ATTACH_STDOUT 1
#define ATTACH_STDERR 2
#define ATTACH_INPUT_MAX 32768
/* The send buffer asked for each client (the kernel doubles it): how far it may fall behind. */
#define ATTACH_SNDBUF (2 << 20)

struct attach_client
{
  int fd;
  int pidx;                  /* its index in the monitor's pollfd array, -1 when not polled */
  struct attach_client *next;
};

struct attach
{
  const char *path;
  int listen_fd;
  struct attach_client *clients;
  /* Called just before a client is closed, e.g. for stdin-once. */
  void (*on_leave) (void *ctx, struct attach_client *c);
  void *ctx;
};

void attach_init (struct attach *a);
int attach_listen (struct attach *a, const char *path, berth_error_t *err);
/* Accepts every waiting client. */
int attach_accept (struct attach *a, berth_error_t *err);
/* Sends one chunk of output to every client, disconnecting those that cannot take it now. */
void attach_broadcast (struct attach *a, int stream, const char *data, size_t len);
/* Reads one message from a client: its length (> 0), 0 when the client left or broke the protocol
 * (then the caller drops it), -1 with errno EAGAIN when it has nothing now. */
ssize_t attach_recv (struct attach_client *c, char *buf, size_t size);
void attach_drop (struct attach *a, struct attach_client *c, const char *why);
/* Disconnects every client and removes the socket. */
void attach_close (struct attach *a);

#endif
