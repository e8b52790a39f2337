// An epoll set over descriptors of several kinds, checkpointed while some are ready.
//
//   ev_epoll [closed]
//
// The set: a pipe holding "hello" (ready, level-triggered), an empty pipe (edge-triggered), an
// eventfd with count 3 (ready) and a timerfd armed an hour ahead, each with its own 64-bit data.
// Prints "pid=<pid>", "ready", then "tick <n>" every second. On SIGUSR1 it checks, from inside:
//   - epoll_wait(0) reports exactly the full pipe and the eventfd, with their data;
//   - every fd is still in the set (adding it again gives EEXIST);
//   - a byte written to the empty pipe is reported with its data;
//   - the timerfd, re-armed for 50 ms, is reported with its data;
// and prints "epoll ok" or "epoll BAD <what>".
// With "closed", the empty pipe's read end is dup'ed and closed after it was added: the set keeps
// an entry under a closed number, which a checkpoint must refuse.
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "check_signal.h"

#define D_FULL 0xa1a1a1a1a1a1a101ull
#define D_EMPTY 0xb2b2b2b2b2b2b202ull
#define D_EVENT 0xe3e3e3e3e3e3e303ull
#define D_TIMER 0x7474747474747404ull


static int add(int ep, int fd, uint32_t events, uint64_t data) {
  struct epoll_event e;
  memset(&e, 0, sizeof e);
  e.events = events;
  e.data.u64 = data;
  return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}

static long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

// Waits up to ms for an event whose data is `want`; 1 if seen. (Other entries stay ready, so
// epoll_wait often returns at once: the time is measured, not counted in calls.)
static int wait_for(int ep, uint64_t want, int ms) {
  struct epoll_event evs[8];
  for (long end = now_ms() + ms; now_ms() <= end;) {
    int n = epoll_wait(ep, evs, 8, 10);
    for (int i = 0; i < n; i++)
      if (evs[i].data.u64 == want) return 1;
    if (n > 0) {
      struct timespec ts = {0, 5000000L};
      nanosleep(&ts, NULL);
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int closed = argc > 1 && strcmp(argv[1], "closed") == 0;
  int full[2], empty[2];
  if (pipe(full) != 0 || pipe(empty) != 0) return 1;
  if (write(full[1], "hello", 5) != 5) return 1;
  int efd = eventfd(3, EFD_NONBLOCK);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  struct itimerspec hour = {{0, 0}, {3600, 0}};
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (efd < 0 || tfd < 0 || ep < 0 || timerfd_settime(tfd, 0, &hour, NULL) != 0 ||
      add(ep, full[0], EPOLLIN, D_FULL) || add(ep, empty[0], EPOLLIN | EPOLLET, D_EMPTY) ||
      add(ep, efd, EPOLLIN, D_EVENT) || add(ep, tfd, EPOLLIN, D_TIMER)) {
    printf("epoll BAD setup %s\n", strerror(errno));
    return 1;
  }
  if (closed) {
    int keep = dup(empty[0]);
    close(empty[0]);
    empty[0] = keep;
  }
  handle_check_signal();
  printf("pid=%d\nready\n", getpid());
  for (long n = 0;; n++) {
    if (!wait_for_check(1000, NULL)) {
      printf("tick %ld\n", n);
      continue;
    }
    const char* bad = NULL;
    struct epoll_event evs[8];
    int k = epoll_wait(ep, evs, 8, 0);
    int seen_full = 0, seen_event = 0;
    for (int i = 0; i < k; i++) {
      if (evs[i].data.u64 == D_FULL && (evs[i].events & EPOLLIN)) seen_full++;
      else if (evs[i].data.u64 == D_EVENT && (evs[i].events & EPOLLIN)) seen_event++;
      else bad = "an unexpected fd is ready";
    }
    if (!bad && k < 0) bad = "epoll_wait failed";
    if (!bad && seen_full != 1) bad = "the pipe with data is not ready";
    if (!bad && seen_event != 1) bad = "the eventfd is not ready";
    int fds[4] = {full[0], empty[0], efd, tfd};
    for (int i = 0; i < 4 && !bad; i++)
      if (add(ep, fds[i], EPOLLIN, 0) == 0 || errno != EEXIST) bad = "an fd is missing from the set";
    if (!bad && write(empty[1], "x", 1) != 1) bad = "write";
    if (!bad && !wait_for(ep, D_EMPTY, 1000)) bad = "the empty pipe's new byte is not reported";
    struct itimerspec soon = {{0, 0}, {0, 50000000L}};
    if (!bad && timerfd_settime(tfd, 0, &soon, NULL) != 0) bad = "timerfd_settime";
    if (!bad && !wait_for(ep, D_TIMER, 2000)) bad = "the timerfd is not reported";
    if (bad) printf("epoll BAD %s\n", bad);
    else printf("epoll ok\n");
  }
}
