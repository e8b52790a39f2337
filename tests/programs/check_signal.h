// What the "check from inside" test programs share: SIGUSR1 asks the program to check its
// state and print one answer line; until it comes, the program prints "tick N" lines so the
// tests can see it run (and a restored copy run on).
#pragma once

#include <signal.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t check_asked = 0;

static inline void on_check_signal(int sig) {
  (void)sig;
  check_asked = 1;
}

// Installs the SIGUSR1 handler (before the program says "ready").
static inline void handle_check_signal(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_check_signal;
  sigaction(SIGUSR1, &sa, NULL);
}

// Sleeps up to `ms` in 100 ms steps, running `each_step` (may be NULL) after each one, and
// returns early when SIGUSR1 came. 1 when it came (and forgets it), 0 when the time ran out.
static inline int wait_for_check(int ms, void (*each_step)(void)) {
  struct timespec ts = {0, 100000000L};
  for (int waited = 0; waited < ms && !check_asked; waited += 100) {
    nanosleep(&ts, NULL);
    if (each_step) each_step();
  }
  if (!check_asked) return 0;
  check_asked = 0;
  return 1;
}
