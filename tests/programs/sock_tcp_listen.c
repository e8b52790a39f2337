// A TCP socket listening on 127.0.0.1 (a port the kernel chose), with SO_REUSEADDR and
// TCP_NODELAY set, at the checkpoint.
//
//   sock_tcp_listen
//
// Prints "pid=<pid>", "port=<port>", "ready", then "tick <n>" every 200 ms. On SIGUSR1 it
// checks the socket still listens on the same address with its options, forks a client
// ("sock_tcp-client") that connects to it and sends "hello", accepts it, answers "world", and
// prints "tcplisten ok" or "tcplisten BAD <what>".
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check_signal.h"


static int get(int s, int level, int name) {
  int v = -1;
  socklen_t len = sizeof v;
  getsockopt(s, level, name, &v, &len);
  return v;
}

static int recv_exact(int s, char* p, size_t len) {
  size_t got = 0;
  while (got < len) {
    struct pollfd pf = {s, POLLIN, 0};
    int k = poll(&pf, 1, 10000);
    if (k < 0 && errno == EINTR) continue;  // a signal (SIGUSR1 may come late)
    if (k <= 0) return -1;
    ssize_t n = recv(s, p + got, len - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    got += (size_t)n;
  }
  return 0;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  handle_check_signal();
  signal(SIGPIPE, SIG_IGN);  // a peer gone shows as an error, reported
  int l = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(l, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  if (bind(l, (struct sockaddr*)&a, sizeof a) != 0 || listen(l, 5) != 0 || getsockname(l, (struct sockaddr*)&a, &alen) != 0) {
    printf("tcplisten BAD setup %s\n", strerror(errno));
    return 1;
  }
  printf("pid=%d\nport=%d\nready\n", getpid(), ntohs(a.sin_port));
  for (long n = 0;; n++) {
    struct timespec ts = {0, 200000000L};
    nanosleep(&ts, NULL);
    if (!check_asked) {
      printf("tick %ld\n", n);
      continue;
    }
    const char* bad = NULL;
    struct sockaddr_in now;
    socklen_t nlen = sizeof now;
    if (getsockname(l, (struct sockaddr*)&now, &nlen) != 0 || now.sin_port != a.sin_port || now.sin_addr.s_addr != a.sin_addr.s_addr)
      bad = "address";
    else if (get(l, SOL_SOCKET, SO_ACCEPTCONN) != 1) bad = "not listening";
    else if (get(l, SOL_SOCKET, SO_REUSEADDR) != 1) bad = "SO_REUSEADDR";
    else if (get(l, IPPROTO_TCP, TCP_NODELAY) != 1) bad = "TCP_NODELAY";
    pid_t kid = -1;
    if (!bad) {
      kid = fork();
      if (kid == 0) {
        prctl(PR_SET_NAME, "sock_tcp-client", 0, 0, 0);
        int c = socket(AF_INET, SOCK_STREAM, 0);
        char buf[5];
        if (connect(c, (struct sockaddr*)&a, sizeof a) != 0 || send(c, "hello", 5, 0) != 5 || recv_exact(c, buf, 5) != 0 ||
            memcmp(buf, "world", 5) != 0)
          _exit(1);
        _exit(0);
      }
      int c = accept(l, NULL, NULL);
      char buf[5];
      if (c < 0) bad = "accept";
      else if (recv_exact(c, buf, 5) != 0 || memcmp(buf, "hello", 5) != 0) bad = "hello";
      else if (send(c, "world", 5, 0) != 5) bad = "world";
      int st = 0;
      waitpid(kid, &st, 0);
      if (!bad && (!WIFEXITED(st) || WEXITSTATUS(st) != 0)) bad = "client";
    }
    if (bad) printf("tcplisten BAD %s\n", bad);
    else printf("tcplisten ok\n");
    return 0;
  }
}
