// UDP sockets at the checkpoint: A bound to 127.0.0.1 (a port the kernel chose), B bound and
// connected to A, C neither.
//
//   sock_udp
//
// Prints "pid=<pid>", "ready", then "tick <n>" every 200 ms. On SIGUSR1 it checks the
// addresses are the same as before, B sends "ping" (A receives it from B's address), A answers
// "pong" with sendto (B receives it), C sends "hi" to A; then prints "udp ok" or "udp BAD <what>".
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check_signal.h"


static int same(struct sockaddr_in* x, struct sockaddr_in* y) {
  return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
}

static int name_of(int s, struct sockaddr_in* a, int peer) {
  socklen_t len = sizeof *a;
  return peer ? getpeername(s, (struct sockaddr*)a, &len) : getsockname(s, (struct sockaddr*)a, &len);
}

// One datagram within 5 s: its length, or -1.
static ssize_t recv_one(int s, char* buf, size_t len, struct sockaddr_in* from) {
  struct pollfd pf = {s, POLLIN, 0};
  int k;
  while ((k = poll(&pf, 1, 5000)) < 0 && errno == EINTR) {
  }
  if (k <= 0) return -1;
  socklen_t flen = sizeof *from;
  return recvfrom(s, buf, len, 0, (struct sockaddr*)from, &flen);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  handle_check_signal();
  int A = socket(AF_INET, SOCK_DGRAM, 0), B = socket(AF_INET, SOCK_DGRAM, 0), C = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in lo, a0, b0, bp0;
  memset(&lo, 0, sizeof lo);
  lo.sin_family = AF_INET;
  lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(A, (struct sockaddr*)&lo, sizeof lo) != 0 || name_of(A, &a0, 0) != 0 || bind(B, (struct sockaddr*)&lo, sizeof lo) != 0 ||
      connect(B, (struct sockaddr*)&a0, sizeof a0) != 0 || name_of(B, &b0, 0) != 0 || name_of(B, &bp0, 1) != 0) {
    printf("udp BAD setup %s\n", strerror(errno));
    return 1;
  }
  printf("pid=%d\nready\n", getpid());
  for (long n = 0;; n++) {
    struct timespec ts = {0, 200000000L};
    nanosleep(&ts, NULL);
    if (!check_asked) {
      printf("tick %ld\n", n);
      continue;
    }
    const char* bad = NULL;
    struct sockaddr_in x, from;
    char buf[16];
    if (name_of(A, &x, 0) != 0 || !same(&x, &a0)) bad = "A's address";
    else if (name_of(B, &x, 0) != 0 || !same(&x, &b0)) bad = "B's address";
    else if (name_of(B, &x, 1) != 0 || !same(&x, &bp0)) bad = "B's peer";
    else if (name_of(C, &x, 1) == 0) bad = "C connected";
    else if (send(B, "ping", 4, 0) != 4) bad = "send ping";
    else if (recv_one(A, buf, sizeof buf, &from) != 4 || memcmp(buf, "ping", 4) || !same(&from, &b0)) bad = "ping";
    else if (sendto(A, "pong", 4, 0, (struct sockaddr*)&b0, sizeof b0) != 4) bad = "send pong";
    else if (recv_one(B, buf, sizeof buf, &from) != 4 || memcmp(buf, "pong", 4) || !same(&from, &a0)) bad = "pong";
    else if (sendto(C, "hi", 2, 0, (struct sockaddr*)&a0, sizeof a0) != 2) bad = "send hi";
    else if (recv_one(A, buf, sizeof buf, &from) != 2 || memcmp(buf, "hi", 2)) bad = "hi";
    if (bad) printf("udp BAD %s\n", bad);
    else printf("udp ok\n");
    return 0;
  }
}
