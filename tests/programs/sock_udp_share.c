// A UDP receiver that shares its port (SO_REUSEADDR), with datagrams queued in it from one sender.
//
//   sock_udp_share
//
// R (SO_REUSEADDR) and S are bound to 127.0.0.1, ports the kernel chose; S sends R "one" and
// "two". Prints "pid=<pid>", "ports=<R's port> from=<S's port>", "ready", then "tick <n>" every
// 200 ms. On SIGUSR1 R reads its queue dry: "share ok" (one, two, nothing more) or
// "share BAD <what>".
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


int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  handle_check_signal();
  struct sockaddr_in lo, r, s;
  memset(&lo, 0, sizeof lo);
  lo.sin_family = AF_INET;
  lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int R = socket(AF_INET, SOCK_DGRAM, 0), S = socket(AF_INET, SOCK_DGRAM, 0), on = 1;
  socklen_t rl = sizeof r, sl = sizeof s;
  if (setsockopt(R, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 || bind(R, (struct sockaddr*)&lo, sizeof lo) != 0 ||
      getsockname(R, (struct sockaddr*)&r, &rl) != 0 || bind(S, (struct sockaddr*)&lo, sizeof lo) != 0 ||
      getsockname(S, (struct sockaddr*)&s, &sl) != 0 || sendto(S, "one", 3, 0, (struct sockaddr*)&r, rl) != 3 ||
      sendto(S, "two", 3, 0, (struct sockaddr*)&r, rl) != 3) {
    printf("share BAD setup %s\n", strerror(errno));
    return 1;
  }
  struct pollfd p = {R, POLLIN, 0};
  if (poll(&p, 1, 5000) != 1) {
    printf("share BAD nothing arrived\n");
    return 1;
  }
  printf("pid=%d\nports=%d from=%d\nready\n", getpid(), ntohs(r.sin_port), ntohs(s.sin_port));
  for (long n = 0;; n++) {
    struct timespec ts = {0, 200000000L};
    nanosleep(&ts, NULL);
    if (!check_asked) {
      printf("tick %ld\n", n);
      continue;
    }
    char b[16];
    const char* bad = NULL;
    const char* want[2] = {"one", "two"};
    for (int i = 0; i < 2 && !bad; i++) {
      p.revents = 0;
      if (poll(&p, 1, 5000) != 1) bad = "a datagram is missing";
      else if (recv(R, b, sizeof b, MSG_DONTWAIT) != 3 || memcmp(b, want[i], 3)) bad = "a datagram differs";
    }
    if (!bad && recv(R, b, sizeof b, MSG_DONTWAIT) >= 0) bad = "a datagram more";
    if (bad) printf("share BAD %s\n", bad);
    else printf("share ok\n");
    return 0;
  }
}
