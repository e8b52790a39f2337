// Prints "ready", waits for one of SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, prints
// "got <signo>" and exits with status 0.
// "sb_signals exit N" exits with N at once; "sb_signals kill N" kills itself with signal N.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc > 2 && !strcmp(argv[1], "exit")) return atoi(argv[2]);
  if (argc > 2 && !strcmp(argv[1], "kill")) {
    raise(atoi(argv[2]));
    return 99;
  }
  sigset_t set;
  sigemptyset(&set);
  int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2};
  for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaddset(&set, sigs[i]);
  sigprocmask(SIG_BLOCK, &set, NULL);
  printf("ready pid %d\n", getpid());
  fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  printf("got %d\n", sig);
  fflush(stdout);
  return 0;
}
