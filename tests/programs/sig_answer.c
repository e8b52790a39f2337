// Answers SIGUSR1: prints "pid=<pid>", "ready", then "tick <n>" every second, and "answer <k>"
// for the k-th time it was asked (signals that come together count once).
#include <stdio.h>
#include <unistd.h>

#include "check_signal.h"

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  handle_check_signal();
  printf("pid=%d\nready\n", getpid());
  long asked = 0;
  for (long n = 0;; n++) {
    if (!wait_for_check(1000, NULL)) {
      printf("tick %ld\n", n);
      continue;
    }
    printf("answer %ld\n", ++asked);
  }
}
