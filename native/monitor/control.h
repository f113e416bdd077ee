/* The control socket: a SOCK_STREAM unix socket taking one command per line, from any number of
 * clients; each line gets one reply line, "ok" or "error <message>".
 *
 *   resize <rows> <cols>   set the size of the container's terminal (TIOCSWINSZ on the pty master)
 *   reopen                 reopen the log file (after the kubelet rotated it), as SIGUSR1 does */
#ifndef BERTH_MONITOR_CONTROL_H
#define BERTH_MONITOR_CONTROL_H

#include <stddef.h>

#include "../common/error.h"

#define CONTROL_LINE_MAX 256

enum control_kind
{
  CONTROL_RESIZE,
  CONTROL_REOPEN,
};

struct control_cmd
{
  enum control_kind kind;
  unsigned short rows, cols;
};

/* Carries out a command; a failure is told to the client as "error <err's message>". */
typedef int (*control_handler) (void *ctx, const struct control_cmd *cmd, berth_error_t *err);

struct control_client
{
  int fd;
  int pidx;
  size_t len;
  char line[CONTROL_LINE_MAX];
  struct control_client *next;
};

struct control
{
  const char *path;
  int listen_fd;
  struct control_client *clients;
  control_handler handler;
  void *ctx;
};

void control_init (struct control *c, control_handler handler, void *ctx);
int control_listen (struct control *c, const char *path, berth_error_t *err);
int control_accept (struct control *c, berth_error_t *err);
/* Reads what a client sent and carries out its complete lines; drops it when it leaves. */
void control_service (struct control *c, struct control_client *cl);
/* Parses one line (without its newline). */
int control_parse (const char *line, struct control_cmd *cmd, berth_error_t *err);
void control_close (struct control *c);

#endif
