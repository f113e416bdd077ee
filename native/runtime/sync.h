/* Messages between the runtime and the processes it forks (a SOCK_SEQPACKET socketpair). */
#ifndef BERTH_RUNTIME_SYNC_H
#define BERTH_RUNTIME_SYNC_H

#include "../common/error.h"

enum sync_type
{
  SYNC_GO = 1,    /* parent -> child: in the cgroup now, go on */
  SYNC_PID,       /* child -> parent: value is the pid of the grandchild */
  SYNC_READY,     /* init -> parent: created, waiting for start */
  SYNC_ERROR,     /* child -> parent: text is the error, value its errno */
};

struct sync_msg
{
  int type;
  int value;
  char text[3072];
};

int sync_pair (int fds[2], berth_error_t *err);
int sync_send (int fd, int type, int value, const char *text, berth_error_t *err);
/* 1 with a message, 0 at end of file. */
int sync_recv (int fd, struct sync_msg *m, berth_error_t *err);
/* Expects a message of the given type; a SYNC_ERROR becomes err. */
int sync_expect (int fd, int type, struct sync_msg *m, const char *what, berth_error_t *err);

/* In a forked child: sends err to the parent and exits. */
void sync_fail (int fd, berth_error_t *err) __attribute__ ((noreturn));

#endif
