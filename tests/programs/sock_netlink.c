// A netlink socket, which crbox does not checkpoint.
//
//   sock_netlink
//
// Opens a NETLINK_ROUTE socket, prints "pid=<pid>", "fd=<n>" (the socket's descriptor), "ready",
// then "tick <n>" every 200 ms, forever; each tick also checks the socket still answers a
// request for the loopback link ("tick <n> BAD" if not).
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int ask(int s, unsigned seq) {
  struct {
    struct nlmsghdr h;
    struct ifinfomsg i;
  } req;
  memset(&req, 0, sizeof req);
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = RTM_GETLINK;
  req.h.nlmsg_flags = NLM_F_REQUEST;
  req.h.nlmsg_seq = seq;
  req.i.ifi_family = AF_UNSPEC;
  req.i.ifi_index = (int)if_nametoindex("lo");
  if (send(s, &req, sizeof req, 0) != sizeof req) return -1;
  char buf[8192];
  ssize_t n = recv(s, buf, sizeof buf, 0);
  struct nlmsghdr* h = (struct nlmsghdr*)buf;
  return n > 0 && h->nlmsg_type == RTM_NEWLINK && h->nlmsg_seq == seq ? 0 : -1;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int s = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
  if (s < 0 || ask(s, 1) != 0) {
    printf("netlink BAD setup\n");
    return 1;
  }
  printf("pid=%d\nfd=%d\nready\n", getpid(), s);
  for (unsigned n = 0;; n++) {
    struct timespec ts = {0, 200000000L};
    nanosleep(&ts, NULL);
    printf("tick %u%s\n", n, ask(s, n + 2) == 0 ? "" : " BAD");
  }
}
