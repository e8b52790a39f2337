// Kernel objects without a path that a checkpoint must bring back: an eventfd, a signalfd and a
// timerfd.
//
//   fd_kinds [timer_ms=100]
//
// Makes an eventfd with count 5 in semaphore mode, a signalfd for SIGUSR2 (blocked), and a
// periodic CLOCK_MONOTONIC timerfd. Prints "pid=<pid>", "ready", then "tick <n>" every second.
// On SIGUSR1 it checks all three and prints "fdkinds ok" or "fdkinds BAD <what>":
//   eventfd: five reads each give 1 (semaphore), a sixth finds it empty (EAGAIN);
//   signalfd: SIGUSR2 sent to itself is read from it;
//   timerfd: a blocking read returns at least one expiration;
//   a second, 10 ms timerfd never read before: its expirations all count, so a read gives at least
//   5 per 100 ms tick printed (a restart keeps the unread count).
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "check_signal.h"


int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int ms = argc > 1 ? atoi(argv[1]) : 100;
  int efd = eventfd(5, EFD_NONBLOCK | EFD_SEMAPHORE);
  sigset_t m;
  sigemptyset(&m);
  sigaddset(&m, SIGUSR2);
  sigprocmask(SIG_BLOCK, &m, NULL);
  int sfd = signalfd(-1, &m, SFD_NONBLOCK);
  int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
  int fast = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  struct itimerspec fit = {{0, 10000000L}, {0, 10000000L}};
  if (fast < 0 || timerfd_settime(fast, 0, &fit, NULL) != 0) return 1;
  struct itimerspec it = {{ms / 1000, (ms % 1000) * 1000000L}, {ms / 1000, (ms % 1000) * 1000000L}};
  if (efd < 0 || sfd < 0 || tfd < 0 || timerfd_settime(tfd, 0, &it, NULL) != 0) {
    printf("fdkinds BAD setup %s\n", strerror(errno));
    return 1;
  }
  handle_check_signal();
  printf("pid=%d\nready\n", getpid());
  for (long n = 0;; n++) {
    if (!wait_for_check(1000, NULL)) {
      printf("tick %ld\n", n);
      continue;
    }
    const char* bad = NULL;
    uint64_t v = 0;
    for (int i = 0; i < 5 && !bad; i++)
      if (read(efd, &v, sizeof v) != sizeof v || v != 1) bad = "eventfd count";
    if (!bad && (read(efd, &v, sizeof v) != -1 || errno != EAGAIN)) bad = "eventfd not empty";
    struct signalfd_siginfo si;
    kill(getpid(), SIGUSR2);
    if (!bad && (read(sfd, &si, sizeof si) != sizeof si || si.ssi_signo != SIGUSR2)) bad = "signalfd";
    if (!bad && (read(tfd, &v, sizeof v) != sizeof v || v < 1)) bad = "timerfd";
    if (!bad && (read(fast, &v, sizeof v) != sizeof v || v < (uint64_t)(5 * n))) bad = "timerfd lost expirations";
    if (bad) printf("fdkinds BAD %s (n=%ld v=%llu)\n", bad, n, (unsigned long long)v);
    else printf("fdkinds ok\n");
  }
}
