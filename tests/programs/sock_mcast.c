// A UDP socket bound to a multicast group with datagrams queued in it, which crbox refuses (a
// restart could only send them again to the group, off the machine). Meant for a sandbox with its
// own network namespace (loopback only): the group is joined on lo and sent to through lo.
//
//   sock_mcast
//
// R is bound to 239.255.77.1 (a port the kernel chose) and joins that group on lo; S sends it
// "one" and "two" there (IP_MULTICAST_IF lo). Prints "pid=<pid>", "fd=<n>" (R), "ready", then
// "tick <n>" every 200 ms. On SIGUSR1 R reads its queue dry: "mcast ok" (one, two, nothing more)
// or "mcast BAD <what>".
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
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
  int lo = (int)if_nametoindex("lo");
  struct sockaddr_in g;
  memset(&g, 0, sizeof g);
  g.sin_family = AF_INET;
  g.sin_addr.s_addr = inet_addr("239.255.77.1");
  int R = socket(AF_INET, SOCK_DGRAM, 0), S = socket(AF_INET, SOCK_DGRAM, 0);
  socklen_t len = sizeof g;
  struct ip_mreqn m;
  memset(&m, 0, sizeof m);
  m.imr_multiaddr = g.sin_addr;
  m.imr_ifindex = lo;
  struct ip_mreqn out;
  memset(&out, 0, sizeof out);
  out.imr_ifindex = lo;
  if (lo == 0 || bind(R, (struct sockaddr*)&g, sizeof g) != 0 || getsockname(R, (struct sockaddr*)&g, &len) != 0 ||
      setsockopt(R, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) != 0 ||
      setsockopt(S, IPPROTO_IP, IP_MULTICAST_IF, &out, sizeof out) != 0 ||
      sendto(S, "one", 3, 0, (struct sockaddr*)&g, sizeof g) != 3 || sendto(S, "two", 3, 0, (struct sockaddr*)&g, sizeof g) != 3) {
    printf("mcast BAD setup %s\n", strerror(errno));
    return 1;
  }
  struct pollfd p = {R, POLLIN, 0};
  if (poll(&p, 1, 5000) != 1) {
    printf("mcast BAD nothing arrived\n");
    return 1;
  }
  printf("pid=%d\nfd=%d\nready\n", getpid(), R);
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
    if (bad) printf("mcast BAD %s\n", bad);
    else printf("mcast ok\n");
    return 0;
  }
}
