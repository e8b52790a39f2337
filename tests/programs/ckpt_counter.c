// The seed document's counter: prints "i = N" and sleeps, forever or up to a maximum.
//
//   ckpt_counter [interval_ms=2000] [max=-1 (no limit)] [exit_code=0]
//
// Prints "pid=<getpid()>" first (2 inside a crbox sandbox). On SIGUSR1 it prints
// "pid=<getpid()>" again, asked of the kernel at that moment, so a test can check from
// inside a restored process which pid it now has. The sleep between lines resumes after
// EINTR with the remaining time, as a careful program does, so the cadence survives signals
// and checkpoints. After `max` lines it exits with `exit_code`.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t want_pid = 0;

static void on_usr1(int sig) {
  (void)sig;
  want_pid = 1;
}

static void report_pid(void) {
  // The raw syscall, so no library cache can answer in place of the kernel.
  printf("pid=%ld\n", (long)syscall(SYS_getpid));
}

static void sleep_ms(long ms) {
  struct timespec req = {ms / 1000, (ms % 1000) * 1000000L}, rem;
  while (nanosleep(&req, &rem) == -1 && errno == EINTR) {
    if (want_pid) {
      want_pid = 0;
      report_pid();
    }
    req = rem;
  }
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  long interval = argc > 1 ? strtol(argv[1], NULL, 10) : 2000;
  long max = argc > 2 ? strtol(argv[2], NULL, 10) : -1;
  int code = argc > 3 ? atoi(argv[3]) : 0;
  if (interval < 0) interval = 0;

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);

  report_pid();
  for (long i = 0; max < 0 || i < max; i++) {
    if (want_pid) {
      want_pid = 0;
      report_pid();
    }
    printf("i = %ld\n", i);
    sleep_ms(interval);
  }
  printf("done\n");
  return code;
}
