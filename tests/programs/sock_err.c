// Sockets with an error pending at the checkpoint, which a receive call (a peek too) would take.
//
//   sock_err keep        a connected UDP socket C whose peer is gone holds ECONNREFUSED (its queue
//                        empty), and a unix stream socket U whose peer closed with data unread
//                        holds "hello" then ECONNRESET
//   sock_err udpq        as C, with a datagram from its peer queued before the error: "data"
//   sock_err seqpacket   a unix seqpacket socket whose peer closed with data unread holds the
//                        message "hello" and ECONNRESET
//
// Prints "pid=<pid>", "fd=<n>" (C, or the seqpacket socket), "ready", then "tick <n>" every
// 200 ms. On SIGUSR1 it reads, nonblocking, and prints what it got, errors by name, "EAGAIN" for
// nothing, "EOF" for end of file:
//   keep:       "sockerr udp=<first recv on C> unix=<read 1>,<read 2>"
//   udpq:       "sockerr udpq=<recv 1>,<recv 2>"
//   seqpacket:  "sockerr seqpacket=<recv 1>,<recv 2>"
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


// What one nonblocking receive gives, as text.
static const char* got(int s) {
  static char out[4][64];
  static int k = 0;
  char* o = out[k++ & 3];
  char buf[64];
  ssize_t n = recv(s, buf, sizeof buf - 1, MSG_DONTWAIT);
  if (n < 0) snprintf(o, 64, "%s", errno == EAGAIN ? "EAGAIN" : errno == ECONNREFUSED ? "ECONNREFUSED" : errno == ECONNRESET ? "ECONNRESET" : strerror(errno));
  else if (n == 0) snprintf(o, 64, "EOF");
  else {
    buf[n] = 0;
    snprintf(o, 64, "%s", buf);
  }
  return o;
}

// Waits (5 s at most) until poll reports `ev` on `s`.
static int wait_for(int s, short ev) {
  struct pollfd p = {s, ev, 0};
  for (int i = 0; i < 500; i++) {
    if (poll(&p, 1, 10) == 1 && (p.revents & ev)) return 0;
  }
  return -1;
}

// A connected UDP socket on 127.0.0.1 whose peer's port was closed after sending it `data`
// (unless NULL); then C sends, the port is unreachable: ECONNREFUSED waits on C (udp(7)).
static int refused_udp(const char* data) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int S = socket(AF_INET, SOCK_DGRAM, 0), C = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in sa, ca;
  socklen_t len = sizeof sa;
  if (bind(S, (struct sockaddr*)&a, sizeof a) != 0 || getsockname(S, (struct sockaddr*)&sa, &len) != 0) return -1;
  len = sizeof ca;
  if (bind(C, (struct sockaddr*)&a, sizeof a) != 0 || getsockname(C, (struct sockaddr*)&ca, &len) != 0 ||
      connect(C, (struct sockaddr*)&sa, sizeof sa) != 0)
    return -1;
  if (data) {
    if (sendto(S, data, strlen(data), 0, (struct sockaddr*)&ca, sizeof ca) != (ssize_t)strlen(data) || wait_for(C, POLLIN) != 0)
      return -1;
  }
  close(S);
  if (send(C, "x", 1, 0) != 1 || wait_for(C, POLLERR) != 0) return -1;
  return C;
}

// A unix socket pair of `type`: "hello" sent to sv[0], a byte to sv[1], then sv[1] closed with it
// unread: sv[0] holds "hello" and ECONNRESET (unix(7)).
static int reset_unix(int type) {
  int sv[2];
  if (socketpair(AF_UNIX, type, 0, sv) != 0 || write(sv[1], "hello", 5) != 5 || write(sv[0], "x", 1) != 1) return -1;
  close(sv[1]);
  return wait_for(sv[0], POLLERR) == 0 ? sv[0] : -1;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) return 2;
  const char* mode = argv[1];
  handle_check_signal();
  int C = -1, U = -1;
  if (!strcmp(mode, "keep")) {
    C = refused_udp(NULL);
    U = reset_unix(SOCK_STREAM);
  } else if (!strcmp(mode, "udpq")) {
    C = refused_udp("data");
  } else if (!strcmp(mode, "seqpacket")) {
    C = reset_unix(SOCK_SEQPACKET);
  } else {
    return 2;
  }
  if (C < 0 || (!strcmp(mode, "keep") && U < 0)) {
    printf("sockerr BAD setup %s\n", strerror(errno));
    return 1;
  }
  printf("pid=%d\nfd=%d\nready\n", getpid(), C);
  for (long n = 0;; n++) {
    struct timespec ts = {0, 200000000L};
    nanosleep(&ts, NULL);
    if (!check_asked) {
      printf("tick %ld\n", n);
      continue;
    }
    if (!strcmp(mode, "keep")) {
      const char* u = got(C);
      const char* r1 = got(U);
      const char* r2 = got(U);
      printf("sockerr udp=%s unix=%s,%s\n", u, r1, r2);
    } else {
      const char* r1 = got(C);
      const char* r2 = got(C);
      printf("sockerr %s=%s,%s\n", mode, r1, r2);
    }
    return 0;
  }
}
