// A unix socket holding a descriptor in flight (SCM_RIGHTS), which crbox refuses.
//
//   sock_rights
//
// Sends the read end of a pipe over a socketpair to itself without receiving it, prints
// "pid=<pid>", "fd=<n>" (the receiving socket), "ready", then "tick <n>" every 200 ms. On
// SIGUSR1 it receives the descriptor and checks it is the pipe (a byte written into the pipe
// comes out of it): "rights ok" or "rights BAD <what>".
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check_signal.h"


int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  handle_check_signal();
  int sv[2], p[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || pipe(p) != 0) return 1;
  char c = 'x';
  struct iovec iov = {&c, 1};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } ctl;
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = ctl.buf;
  m.msg_controllen = sizeof ctl.buf;
  struct cmsghdr* h = CMSG_FIRSTHDR(&m);
  h->cmsg_level = SOL_SOCKET;
  h->cmsg_type = SCM_RIGHTS;
  h->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(h), &p[0], sizeof(int));
  if (sendmsg(sv[0], &m, 0) != 1) {
    printf("rights BAD sendmsg %s\n", strerror(errno));
    return 1;
  }
  close(p[0]);
  printf("pid=%d\nfd=%d\nready\n", getpid(), sv[1]);
  for (long n = 0;; n++) {
    struct timespec ts = {0, 200000000L};
    nanosleep(&ts, NULL);
    if (!check_asked) {
      printf("tick %ld\n", n);
      continue;
    }
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl.buf;
    m.msg_controllen = sizeof ctl.buf;
    int fd = -1;
    if (recvmsg(sv[1], &m, MSG_DONTWAIT) == 1 && (h = CMSG_FIRSTHDR(&m)) && h->cmsg_type == SCM_RIGHTS)
      memcpy(&fd, CMSG_DATA(h), sizeof fd);
    char b = 0;
    if (fd < 0) printf("rights BAD no descriptor\n");
    else if (write(p[1], "y", 1) != 1 || read(fd, &b, 1) != 1 || b != 'y') printf("rights BAD not the pipe\n");
    else if (recv(sv[1], &b, 1, MSG_DONTWAIT) != -1 || errno != EAGAIN) printf("rights BAD more data\n");
    else printf("rights ok\n");
    return 0;
  }
}
