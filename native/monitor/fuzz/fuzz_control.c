/* libFuzzer target: the bytes a client sends on berth-monitor's control socket (lines of "resize R C"
 * and "reopen", or anything else), through control_service's line buffer and control_parse, over a
 * real socketpair as the monitor reads them.
 *
 *   make -C native fuzz && native/build/fuzz/fuzz_control CORPUS_DIR */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../control.h"

/* What a socketpair takes without a reader: longer inputs are skipped (-max_len=65536). */
#define MAX_INPUT 65536

static int
accept_command (void *ctx, const struct control_cmd *cmd, berth_error_t *err)
{
  (void) ctx;
  (void) err;
  if (cmd->kind == CONTROL_RESIZE && (cmd->rows == 0 || cmd->cols == 0))
    abort (); /* control_parse promised 1..65535 */
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size > MAX_INPUT)
    return 0;
  int sv[2];
  if (socketpair (AF_UNIX, SOCK_STREAM, 0, sv) < 0)
    abort ();
  int bufsize = 4 * MAX_INPUT;
  setsockopt (sv[1], SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof bufsize);
  setsockopt (sv[0], SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof bufsize);
  for (size_t off = 0; off < size;)
    {
      ssize_t n = send (sv[1], data + off, size - off, MSG_DONTWAIT);
      if (n <= 0)
        break; /* the rest does not fit: fuzz what does */
      off += (size_t) n;
    }
  shutdown (sv[1], SHUT_WR);
  struct control c;
  control_init (&c, accept_command, NULL);
  struct control_client *cl = calloc (1, sizeof *cl);
  if (cl == NULL)
    abort ();
  cl->fd = sv[0];
  cl->pidx = -1;
  c.clients = cl;
  /* Each call reads what is there; the client is dropped at the end of its input (or on an error). */
  while (c.clients)
    control_service (&c, c.clients);
  close (sv[1]);
  return 0;
}
