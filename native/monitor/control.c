#include "control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sock.h"

void
control_init (struct control *c, control_handler handler, void *ctx)
{
  memset (c, 0, sizeof (*c));
  c->listen_fd = -1;
  c->handler = handler;
  c->ctx = ctx;
}

int
control_listen (struct control *c, const char *path, berth_error_t *err)
{
  c->path = path;
  c->listen_fd = sock_listen (path, SOCK_STREAM, err);
  return c->listen_fd < 0 ? -1 : 0;
}

int
control_accept (struct control *c, berth_error_t *err)
{
  while (c->listen_fd >= 0)
    {
      int fd = sock_accept (c->listen_fd);
      if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
      if (fd < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM))
        {
          fprintf (stderr, "berth-monitor: accept a control client: %s\n", strerror (errno));
          return 0;
        }
      if (fd < 0)
        return berth_error (err, errno, "accept on %s", c->path);
      struct control_client *cl = calloc (1, sizeof (*cl));
      if (cl == NULL)
        {
          close (fd);
          fprintf (stderr, "berth-monitor: accept a control client: out of memory\n");
          return 0;
        }
      cl->fd = fd;
      cl->pidx = -1;
      cl->next = c->clients;
      c->clients = cl;
    }
  return 0;
}

static void
drop (struct control *c, struct control_client *cl)
{
  for (struct control_client **p = &c->clients; *p; p = &(*p)->next)
    if (*p == cl)
      {
        *p = cl->next;
        break;
      }
  close (cl->fd);
  free (cl);
}

static int
parse_dim (const char *s, unsigned short *out)
{
  char *end;
  errno = 0;
  unsigned long v = strtoul (s, &end, 10);
  if (errno || end == s || *end || *s == '-' || *s == '+' || v == 0 || v > 65535)
    return -1;
  *out = (unsigned short) v;
  return 0;
}

int
control_parse (const char *line, struct control_cmd *cmd, berth_error_t *err)
{
  char word[3][16];
  int n = 0;
  const char *p = line;
  while (*p)
    {
      while (*p == ' ' || *p == '\t' || *p == '\r')
        p++;
      if (!*p)
        break;
      size_t len = strcspn (p, " \t\r");
      if (n == 3 || len >= sizeof (word[0]))
        return berth_error (err, 0, "unknown command: %s", line);
      memcpy (word[n], p, len);
      word[n][len] = '\0';
      n++;
      p += len;
    }
  if (n == 1 && strcmp (word[0], "reopen") == 0)
    {
      cmd->kind = CONTROL_REOPEN;
      return 0;
    }
  if (n == 3 && strcmp (word[0], "resize") == 0)
    {
      if (parse_dim (word[1], &cmd->rows) < 0 || parse_dim (word[2], &cmd->cols) < 0)
        return berth_error (err, 0, "resize wants two numbers from 1 to 65535: %s", line);
      cmd->kind = CONTROL_RESIZE;
      return 0;
    }
  return berth_error (err, 0, "unknown command: %s", line);
}

/* Sends a reply line; a client that cannot take it at once is dropped. */
static int
reply (struct control_client *cl, const char *status, const char *msg)
{
  char buf[CONTROL_LINE_MAX + 64];
  int n = msg ? snprintf (buf, sizeof (buf), "%s %s\n", status, msg) : snprintf (buf, sizeof (buf), "%s\n", status);
  if (n < 0)
    return -1;
  if ((size_t) n >= sizeof (buf))
    {
      n = sizeof (buf) - 1;
      buf[n - 1] = '\n';
    }
  ssize_t w;
  do
    w = send (cl->fd, buf, (size_t) n, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (w < 0 && errno == EINTR);
  return w == n ? 0 : -1;
}

static int
run_line (struct control *c, struct control_client *cl)
{
  struct control_cmd cmd;
  berth_error_t err = NULL;
  int ret = control_parse (cl->line, &cmd, &err);
  if (ret == 0)
    ret = c->handler (c->ctx, &cmd, &err);
  if (ret < 0)
    {
      ret = reply (cl, "error", err && err->msg ? err->msg : "out of memory");
      berth_error_release (&err);
      return ret;
    }
  return reply (cl, "ok", NULL);
}

void
control_service (struct control *c, struct control_client *cl)
{
  for (;;)
    {
      char buf[CONTROL_LINE_MAX];
      ssize_t n = recv (cl->fd, buf, sizeof (buf), MSG_DONTWAIT);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
      if (n <= 0)
        {
          drop (c, cl);
          return;
        }
      for (ssize_t i = 0; i < n; i++)
        {
          if (buf[i] != '\n')
            {
              if (cl->len == sizeof (cl->line) - 1)
                {
                  reply (cl, "error", "line too long");
                  drop (c, cl);
                  return;
                }
              cl->line[cl->len++] = buf[i];
              continue;
            }
          cl->line[cl->len] = '\0';
          cl->len = 0;
          if (run_line (c, cl) < 0)
            {
              drop (c, cl);
              return;
            }
        }
    }
}

void
control_close (struct control *c)
{
  while (c->clients)
    drop (c, c->clients);
  sock_close (&c->listen_fd, c->path);
}
