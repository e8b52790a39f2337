// An established TCP connection over loopback between a parent and its child, with data in
// flight both ways at the checkpoint (meant for `cr_run --sandbox --net=none`).
//
//   sock_tcp_conn [pre_bytes=4194304] [post_bytes=1048576]
//
// The parent listens on 127.0.0.1, forks the child ("sock_tcp-kid"), which connects; both make
// their end non-blocking and write the stream of their direction (byte n of direction d is
// P(d, n)) until pre_bytes or until the connection takes no more, without reading: the bytes
// sit in send and receive queues. The child reports through a unix socketpair; the parent prints
// "pid=<pid>", "ready", then "tick <n>" every 200 ms. On SIGUSR1 both write post_bytes more,
// shut down their sending side, and read the other direction to its end, checking every byte
// and the count (nothing lost, nothing twice). The child sends its counts through the
// socketpair; the parent prints "tcpconn ok sent=<a>/<b>" or "tcpconn BAD <what>".
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check_signal.h"


static unsigned char P(int d, uint64_t n) { return (unsigned char)(((n * 2654435761u) >> 13) ^ (n >> 8) ^ (uint64_t)(d * 0x5a)); }

struct result {
  uint64_t wrote, read;
  int64_t bad_at;  // -1: every byte right
};

// Writes the stream of direction `d` from `*wrote` on, while it is taken, up to `limit`.
static int write_some(int s, int d, uint64_t* wrote, uint64_t limit) {
  static unsigned char buf[65536];
  while (*wrote < limit) {
    size_t len = sizeof buf;
    if (limit - *wrote < len) len = (size_t)(limit - *wrote);
    for (size_t i = 0; i < len; i++) buf[i] = P(d, *wrote + i);
    ssize_t n = send(s, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return 0;
    if (n <= 0) return -1;
    *wrote += (uint64_t)n;
  }
  return 0;
}

// Writes `post` more bytes then shuts the sending side down, while reading the other direction
// to its end and checking it.
static int pump(int s, int d, uint64_t post, struct result* r) {
  uint64_t limit = r->wrote + post;
  int shut = 0, eof = 0;
  static unsigned char buf[65536];
  while (!eof || !shut) {
    struct pollfd pf = {s, (short)((eof ? 0 : POLLIN) | (shut ? 0 : POLLOUT)), 0};
    int k = poll(&pf, 1, 20000);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    if (!shut && (pf.revents & (POLLOUT | POLLERR | POLLHUP))) {
      if (write_some(s, d, &r->wrote, limit) != 0) return -1;
      if (r->wrote == limit) {
        shutdown(s, SHUT_WR);
        shut = 1;
      }
    }
    if (!eof && (pf.revents & (POLLIN | POLLERR | POLLHUP))) {
      ssize_t n = recv(s, buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n < 0) return -1;
      if (n == 0) eof = 1;
      for (ssize_t i = 0; i < n; i++)
        if (r->bad_at < 0 && buf[i] != P(1 - d, r->read + (uint64_t)i)) r->bad_at = (int64_t)(r->read + (uint64_t)i);
      r->read += (uint64_t)n;
    }
  }
  return 0;
}

static int full_read(int s, void* p, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(s, (char*)p + got, len - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    got += (size_t)n;
  }
  return 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  uint64_t pre = argc > 1 ? strtoull(argv[1], NULL, 0) : 4194304, post = argc > 2 ? strtoull(argv[2], NULL, 0) : 1048576;
  handle_check_signal();
  signal(SIGPIPE, SIG_IGN);  // a peer gone shows as an error, reported
  int l = socket(AF_INET, SOCK_STREAM, 0), ctl[2];
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  if (l < 0 || bind(l, (struct sockaddr*)&a, sizeof a) != 0 || listen(l, 1) != 0 ||
      getsockname(l, (struct sockaddr*)&a, &alen) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, ctl) != 0) {
    printf("tcpconn BAD setup %s\n", strerror(errno));
    return 1;
  }
  pid_t kid = fork();
  if (kid == 0) {
    prctl(PR_SET_NAME, "sock_tcp-kid", 0, 0, 0);
    close(l);
    close(ctl[0]);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr*)&a, sizeof a) != 0) _exit(2);
    fcntl(c, F_SETFL, O_NONBLOCK);
    struct result r = {0, 0, -1};
    if (write_some(c, 1, &r.wrote, pre) != 0) _exit(2);
    if (write(ctl[1], &r.wrote, sizeof r.wrote) != sizeof r.wrote) _exit(2);
    char go;
    if (full_read(ctl[1], &go, 1) != 0) _exit(2);
    if (pump(c, 1, post, &r) != 0) r.bad_at = -2;
    if (write(ctl[1], &r, sizeof r) != sizeof r) _exit(2);
    _exit(0);
  }
  close(ctl[1]);
  int s = accept(l, NULL, NULL);
  if (s < 0) {
    printf("tcpconn BAD accept %s\n", strerror(errno));
    return 1;
  }
  fcntl(s, F_SETFL, O_NONBLOCK);
  struct result r = {0, 0, -1};
  uint64_t kid_pre = 0;
  if (write_some(s, 0, &r.wrote, pre) != 0 || full_read(ctl[0], &kid_pre, sizeof kid_pre) != 0) {
    printf("tcpconn BAD filling %s\n", strerror(errno));
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
    struct result k = {0, 0, -1};
    char go = 'g';
    const char* bad = NULL;
    if (write(ctl[0], &go, 1) != 1) bad = "go";
    else if (pump(s, 0, post, &r) != 0) bad = "pump";
    else if (full_read(ctl[0], &k, sizeof k) != 0) bad = "kid result";
    int st = 0;
    waitpid(kid, &st, 0);
    if (bad) printf("tcpconn BAD %s\n", bad);
    else if (k.bad_at == -2) printf("tcpconn BAD kid pump\n");
    else if (r.bad_at >= 0 || k.bad_at >= 0)
      printf("tcpconn BAD byte parent@%lld kid@%lld\n", (long long)r.bad_at, (long long)k.bad_at);
    else if (r.read != k.wrote || k.read != r.wrote)
      printf("tcpconn BAD counts parent wrote %llu kid read %llu, kid wrote %llu parent read %llu\n",
             (unsigned long long)r.wrote, (unsigned long long)k.read, (unsigned long long)k.wrote, (unsigned long long)r.read);
    else printf("tcpconn ok sent=%llu/%llu pre=%llu/%llu\n", (unsigned long long)r.wrote, (unsigned long long)k.wrote,
                (unsigned long long)(r.wrote - post), (unsigned long long)kid_pre);
    return 0;
  }
}
