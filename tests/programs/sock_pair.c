// A unix socketpair between a parent and its child, with data queued in both directions at the
// checkpoint.
//
//   sock_pair stream|dgram|seqpacket
//
// The parent makes the pair and forks the child ("sock_pair-kid"). Each side sends the other
// N messages it does not read yet (message i: LEN(i) bytes of a pattern seeded by i and the
// direction), then the parent prints "pid=<pid>", "ready" and "tick <n>" every 200 ms.
// On SIGUSR1 the parent reads what is queued for it without blocking (exactly the child's N
// messages, then EAGAIN; a stream's bytes as one run), signals the child, which checks its own
// queue the same way and sends its verdict through the pair, then they exchange 200 requests and
// answers (answer = f(request)). The parent prints "sockpair ok" or
// "sockpair BAD <what>".
#include <errno.h>
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

#define N 6
static int type;

static size_t msg_len(int i) { return 100 + (size_t)i * 397; }
static unsigned char pat(int dir, int i, size_t k) { return (unsigned char)(dir * 91 + i * 31 + k * 7 + (k >> 8)); }

static int send_queue(int s, int dir) {
  unsigned char buf[4096];
  for (int i = 0; i < N; i++) {
    size_t len = msg_len(i);
    for (size_t k = 0; k < len; k++) buf[k] = pat(dir, i, k);
    if (send(s, buf, len, 0) != (ssize_t)len) return -1;
  }
  return 0;
}

// Reads without blocking what is queued: exactly the N messages of direction `dir`, then EAGAIN.
static const char* check_queue(int s, int dir) {
  static unsigned char buf[65536];
  if (type == SOCK_STREAM) {
    size_t total = 0, want = 0;
    for (int i = 0; i < N; i++) want += msg_len(i);
    for (;;) {
      ssize_t n = recv(s, buf + total, sizeof buf - total, MSG_DONTWAIT);
      if (n < 0 && errno == EAGAIN) break;
      if (n <= 0) return "stream read";
      total += (size_t)n;
    }
    if (total != want) return "stream length";
    size_t off = 0;
    for (int i = 0; i < N; i++)
      for (size_t k = 0; k < msg_len(i); k++)
        if (buf[off++] != pat(dir, i, k)) return "stream content";
    return NULL;
  }
  for (int i = 0; i < N; i++) {
    ssize_t n = recv(s, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) return "message missing";
    if ((size_t)n != msg_len(i)) return "message length";
    for (size_t k = 0; k < (size_t)n; k++)
      if (buf[k] != pat(dir, i, k)) return "message content";
  }
  if (recv(s, buf, sizeof buf, MSG_DONTWAIT) != -1 || errno != EAGAIN) return "more than was queued";
  return NULL;
}

static int recv_exact(int s, void* p, size_t len) {
  size_t got = 0;
  while (got < len) {
    struct pollfd pf = {s, POLLIN, 0};
    int k = poll(&pf, 1, 10000);
    if (k < 0 && errno == EINTR) continue;  // a signal (SIGUSR1 may come late)
    if (k <= 0) return -1;
    ssize_t n = recv(s, (char*)p + got, len - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    got += (size_t)n;
  }
  return 0;
}

static uint32_t answer(uint32_t x) { return x * 2654435761u + 12345; }

static void kid(int s, int ready) {
  prctl(PR_SET_NAME, "sock_pair-kid", 0, 0, 0);
  if (send_queue(s, 1) != 0) _exit(2);
  char b = 'r';
  if (write(ready, &b, 1) != 1) _exit(2);
  close(ready);
  while (!check_asked) pause();
  const char* bad = check_queue(s, 0);
  // Its verdict on the queue before anything else: the parent sends nothing new until then.
  char verdict[64] = {0};
  snprintf(verdict, sizeof verdict, "%s", bad ? bad : "ok");
  if (send(s, verdict, sizeof verdict, 0) != sizeof verdict) _exit(2);
  for (int i = 0; i < 200 && !bad; i++) {
    uint32_t x;
    if (recv_exact(s, &x, sizeof x) != 0) bad = "kid request";
    x = answer(x);
    if (!bad && send(s, &x, sizeof x, 0) != sizeof x) bad = "kid answer";
  }
  _exit(bad ? 1 : 0);
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char* t = argc > 1 ? argv[1] : "stream";
  type = !strcmp(t, "dgram") ? SOCK_DGRAM : !strcmp(t, "seqpacket") ? SOCK_SEQPACKET : SOCK_STREAM;
  handle_check_signal();
  signal(SIGPIPE, SIG_IGN);  // a peer gone shows as an error, reported
  int sv[2], rp[2];
  if (socketpair(AF_UNIX, type, 0, sv) != 0 || pipe(rp) != 0) {
    printf("sockpair BAD setup %s\n", strerror(errno));
    return 1;
  }
  pid_t child = fork();
  if (child == 0) {
    close(sv[0]);
    close(rp[0]);
    kid(sv[1], rp[1]);
  }
  close(sv[1]);
  close(rp[1]);
  if (send_queue(sv[0], 0) != 0) {
    printf("sockpair BAD send %s\n", strerror(errno));
    return 1;
  }
  // The kid's byte, then end of file: it has closed its end, so the pipe is gone from the tree.
  char b;
  if (read(rp[0], &b, 1) != 1 || read(rp[0], &b, 1) != 0) {
    printf("sockpair BAD kid\n");
    return 1;
  }
  close(rp[0]);
  printf("pid=%d\nready\n", getpid());
  for (long n = 0;; n++) {
    struct timespec ts = {0, 200000000L};
    nanosleep(&ts, NULL);
    if (!check_asked) {
      printf("tick %ld\n", n);
      continue;
    }
    const char* bad = check_queue(sv[0], 1);
    kill(child, SIGUSR1);
    char verdict[64] = {0};
    if (recv_exact(sv[0], verdict, sizeof verdict) != 0) snprintf(verdict, sizeof verdict, "no verdict");
    for (uint32_t i = 0; i < 200 && !bad && !strcmp(verdict, "ok"); i++) {
      uint32_t x = i * 7919 + 3, y;
      if (send(sv[0], &x, sizeof x, 0) != sizeof x) bad = "request";
      else if (recv_exact(sv[0], &y, sizeof y) != 0) bad = "no answer";
      else if (y != answer(x)) bad = "wrong answer";
    }
    int st = 0;
    waitpid(child, &st, 0);
    if (strcmp(verdict, "ok") != 0) printf("sockpair BAD kid: %s\n", verdict);
    else if (bad) printf("sockpair BAD %s\n", bad);
    else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) printf("sockpair BAD kid status %d\n", st);
    else printf("sockpair ok\n");
    return 0;
  }
}
