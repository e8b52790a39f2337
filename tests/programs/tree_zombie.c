// Zombies that must stay zombies, with their exit status, until their parent reaps them.
//
//   tree_zombie [period_ms=200]
//
// Forks two children: one exits with code 7 at once, the other dies of SIGTERM (default
// action). The parent waits until both are zombies (waitid with WNOWAIT, so nothing is reaped)
// and prints "pid=<pid>" first, then "zombies <pid7> <pidterm>", then "alive <k>" every period.
// On SIGUSR1 it reaps both with waitpid and prints
//   "reaped <pid> status 7 ok"  /  "reaped <pid> signal 15 ok"   (or "... BAD ...")
// then "zombies ok" and exits 42 (exit 1 after any BAD).
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t reap = 0;

static void on_usr1(int sig) {
  (void)sig;
  reap = 1;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int period = argc > 1 ? atoi(argv[1]) : 200;
  if (period < 1) period = 200;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  printf("pid=%d\n", getpid());
  pid_t a = fork();
  if (a == 0) _exit(7);
  pid_t b = fork();
  if (b == 0) {
    signal(SIGTERM, SIG_DFL);
    raise(SIGTERM);
    _exit(99);
  }
  pid_t kids[2] = {a, b};
  for (int i = 0; i < 2; i++) {
    siginfo_t si;
    for (;;) {
      memset(&si, 0, sizeof si);
      if (waitid(P_PID, (id_t)kids[i], &si, WEXITED | WNOWAIT) == 0) break;
      if (errno != EINTR) {
        printf("zombie BAD waitid %d: %s\n", kids[i], strerror(errno));
        return 1;
      }
    }
  }
  printf("zombies %d %d\n", a, b);
  for (long k = 1; !reap; k++) {
    printf("alive %ld\n", k);
    sleep_ms(period);
  }
  int bad = 0, st = 0;
  pid_t r = waitpid(a, &st, WNOHANG);
  if (r == a && WIFEXITED(st) && WEXITSTATUS(st) == 7) {
    printf("reaped %d status 7 ok\n", a);
  } else {
    printf("reaped %d BAD waitpid=%d status=0x%x (%s)\n", a, r, st, r < 0 ? strerror(errno) : "no zombie");
    bad++;
  }
  st = 0;
  r = waitpid(b, &st, WNOHANG);
  if (r == b && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM) {
    printf("reaped %d signal 15 ok\n", b);
  } else {
    printf("reaped %d BAD waitpid=%d status=0x%x (%s)\n", b, r, st, r < 0 ? strerror(errno) : "no zombie");
    bad++;
  }
  if (waitpid(-1, &st, WNOHANG) != -1 || errno != ECHILD) {
    printf("zombies BAD a child is left\n");
    bad++;
  }
  if (bad) return 1;
  printf("zombies ok\n");
  return 42;
}
