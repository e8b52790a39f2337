// Many open descriptors of several kinds, for bench/fd_bench (and a check of them all).
//
//   fd_many N [DIR=.]
//
// Opens N regular files DIR/fd_many.I (created; each left at offset I), dup's every 4th one (a
// shared open file description), N/4 unix socketpairs with 100 bytes queued each way, and N/4
// eventfds with count I. Prints "pid=<pid>", then "ready fds=<count> setup_us=<how long making
// them took>". On SIGUSR1 it checks every one from inside and prints "fds ok <count>" or
// "fds BAD <what> <index>".
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check_signal.h"


static long long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int n = argc > 1 ? atoi(argv[1]) : 100;
  const char* dir = argc > 2 ? argv[2] : ".";
  int q = n / 4;
  int* files = calloc((size_t)n, sizeof(int));
  int* dups = calloc((size_t)n, sizeof(int));
  int(*pairs)[2] = calloc((size_t)q + 1, sizeof *pairs);
  int* events = calloc((size_t)q + 1, sizeof(int));
  char path[4096], msg[100];
  memset(msg, 'm', sizeof msg);
  printf("pid=%d\n", getpid());
  long long t0 = now_us();
  int count = 0;
  for (int i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/fd_many.%d", dir, i);
    files[i] = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (files[i] < 0 || ftruncate(files[i], n) != 0 || lseek(files[i], i, SEEK_SET) != i) return 1;
    count++;
    dups[i] = i % 4 == 0 ? dup(files[i]) : -1;
    count += dups[i] >= 0;
  }
  for (int i = 0; i < q; i++) {
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, pairs[i]) != 0) return 2;
    if (write(pairs[i][0], msg, sizeof msg) != sizeof msg || write(pairs[i][1], msg, sizeof msg) != sizeof msg) return 3;
    events[i] = eventfd((unsigned)i, EFD_NONBLOCK);
    if (events[i] < 0) return 4;
    count += 3;
  }
  long long setup = now_us() - t0;
  handle_check_signal();
  printf("ready fds=%d setup_us=%lld\n", count, setup);
  for (;;) {
    pause();
    if (!check_asked) continue;
    check_asked = 0;
    const char* bad = NULL;
    int at = 0;
    for (int i = 0; i < n && !bad; i++) {
      at = i;
      if (lseek(files[i], 0, SEEK_CUR) != i) bad = "offset";
      else if (dups[i] >= 0 && (lseek(dups[i], 0, SEEK_CUR) != i)) bad = "dup offset";
    }
    char buf[100];
    for (int i = 0; i < q && !bad; i++) {
      at = i;
      uint64_t v = 0;
      if (read(pairs[i][1], buf, sizeof buf) != sizeof buf || read(pairs[i][0], buf, sizeof buf) != sizeof buf) bad = "socket data";
      else if (i > 0 && (read(events[i], &v, sizeof v) != sizeof v || v != (uint64_t)i)) bad = "eventfd";
    }
    if (bad) printf("fds BAD %s %d\n", bad, at);
    else printf("fds ok %d\n", count);
  }
}
