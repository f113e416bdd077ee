#include "sync.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int
sync_pair (int fds[2], berth_error_t *err)
{
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
    return berth_error (err, errno, "socketpair");
  return 0;
}

int
sync_send (int fd, int type, int value, const char *text, berth_error_t *err)
{
  struct sync_msg m;
  memset (&m, 0, sizeof (m));
  m.type = type;
  m.value = value;
  if (text)
    snprintf (m.text, sizeof (m.text), "%s", text);
  ssize_t n;
  do
    n = send (fd, &m, sizeof (m), MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return berth_error (err, errno, "send to the sync socket");
  return 0;
}

int
sync_recv (int fd, struct sync_msg *m, berth_error_t *err)
{
  ssize_t n;
  memset (m, 0, sizeof (*m));
  do
    n = recv (fd, m, sizeof (*m), 0);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return berth_error (err, errno, "read from the sync socket");
  if (n == 0)
    return 0;
  if ((size_t) n != sizeof (*m))
    return berth_error (err, 0, "short message on the sync socket");
  m->text[sizeof (m->text) - 1] = '\0';
  return 1;
}

int
sync_expect (int fd, int type, struct sync_msg *m, const char *what, berth_error_t *err)
{
  int r = sync_recv (fd, m, err);
  if (r < 0)
    return -1;
  if (r == 0)
    return berth_error (err, 0, "%s: the child exited without a word", what);
  if (m->type == SYNC_ERROR)
    return berth_error (err, 0, "%s", m->text);
  if (m->type != type)
    return berth_error (err, 0, "%s: unexpected message %d on the sync socket", what, m->type);
  return 0;
}

void
sync_fail (int fd, berth_error_t *err)
{
  berth_error_t ignored = NULL;
  const char *text = err && *err && (*err)->msg ? (*err)->msg : "out of memory";
  if (sync_send (fd, SYNC_ERROR, err && *err ? (*err)->status : 0, text, &ignored) < 0)
    {
      fprintf (stderr, "berth-runtime: %s\n", text);
      berth_error_release (&ignored);
    }
  _exit (1);
}
