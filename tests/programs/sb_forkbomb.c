// A bounded fork bomb: tries to create N children (default 64) that wait on a pipe, counts the
// forks that fail with EAGAIN, prints "forked X failed Y", then releases and reaps the children.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 64;
  int p[2];
  if (pipe(p) != 0) return 1;
  int forked = 0, failed = 0, other = 0;
  for (int i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid == 0) {
      close(p[1]);
      char c;
      if (read(p[0], &c, 1) < 0) _exit(1);  // returns at EOF, when the parent closes its end
      _exit(0);
    }
    if (pid > 0) forked++;
    else if (errno == EAGAIN) failed++;
    else other++;
  }
  close(p[1]);
  while (wait(NULL) > 0) {
  }
  printf("forked %d failed %d other %d\n", forked, failed, other);
  return 0;
}
