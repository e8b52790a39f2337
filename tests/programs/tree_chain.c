// A chain of processes, each the parent of the next: depth D means D+1 processes.
//
//   tree_chain [depth=10] [period_ms=100]
//
// The root prints "pid=<pid>"; every process (named "chain-<level>") forks the next level,
// records its pid and ppid, and counts. The leaf prints "chain ready <depth>" once it runs.
// On SIGUSR1 a process first forwards the signal to its child, then prints
//   "chain <level> pid=<pid> ppid=<ppid> count=<n> ok"   or   "chain <level> BAD <why>"
// ("chain 0 pid=<pid> root count=<n> ok" for the root, whose parent is its launcher's choice)
// where ok means getpid() and getppid() are what they were at start and the count moved since
// the last report. A process whose parent changed (the parent died) says so and exits.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t report = 0;

static void on_usr1(int sig) {
  (void)sig;
  report = 1;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int depth = argc > 1 ? atoi(argv[1]) : 10;
  int period = argc > 2 ? atoi(argv[2]) : 100;
  if (depth < 0 || depth > 1000 || period < 1) return 2;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  printf("pid=%d\n", getpid());
  int level = 0;
  pid_t child = -1;
  for (;;) {
    char name[32];
    snprintf(name, sizeof name, "chain-%d", level);
    prctl(PR_SET_NAME, name, 0, 0, 0);
    if (level == depth) break;
    pid_t c = fork();
    if (c < 0) {
      printf("chain %d BAD fork: %s\n", level, strerror(errno));
      return 1;
    }
    if (c > 0) {
      child = c;
      break;
    }
    level++;
  }
  pid_t me = getpid(), parent = getppid();
  if (level == depth) printf("chain ready %d\n", depth);
  long count = 0, last = 0;
  for (;;) {
    count++;
    if (level > 0 && getppid() != parent) {
      printf("chain %d BAD ppid %d (was %d): orphaned, exiting\n", level, getppid(), parent);
      return 1;
    }
    if (report) {
      report = 0;
      if (child > 0) kill(child, SIGUSR1);
      if (getpid() != me)
        printf("chain %d BAD pid %d, was %d\n", level, getpid(), me);
      else if (level > 0 && getppid() != parent)
        printf("chain %d BAD ppid %d, was %d\n", level, getppid(), parent);
      else if (count == last)
        printf("chain %d BAD count %ld did not move\n", level, count);
      else if (level == 0)  // the root's parent is whatever launched it
        printf("chain 0 pid=%d root count=%ld ok\n", me, count);
      else
        printf("chain %d pid=%d ppid=%d count=%ld ok\n", level, me, parent, count);
      last = count;
    }
    sleep_ms(period);
  }
}
