// A program whose libcr callback widens its own checkpoint to another process
// (cr_forward_checkpoint, BLCR's way for a launcher to bring its workers along).
//
//   libcr_forward PID [interval_ms=100]
//
// The thread-context callback calls cr_forward_checkpoint(CR_SCOPE_PROC, PID), prints
// "forwarded rc=R", then cr_checkpoint(0), and prints "continue" / "restart" / "failed rc=R".
// Prints "ready pid=P" once set up, then "tick N" every interval_ms.
#include <errno.h>
#include <libcr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pid_t target;

static int callback(void* arg) {
  (void)arg;
  int rc = cr_forward_checkpoint(CR_SCOPE_PROC, target);
  printf("forwarded rc=%d\n", rc);
  rc = cr_checkpoint(0);
  if (rc == 0) printf("continue\n");
  else if (rc > 0) printf("restart\n");
  else printf("failed rc=%d\n", rc);
  return 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) {
    fprintf(stderr, "usage: libcr_forward PID [interval_ms]\n");
    return 2;
  }
  target = (pid_t)strtol(argv[1], NULL, 10);
  long interval = argc > 2 ? strtol(argv[2], NULL, 10) : 100;
  if (cr_init() < 0 || cr_register_callback(callback, NULL, CR_THREAD_CONTEXT) < 0) {
    fprintf(stderr, "libcr: %s\n", cr_strerror(errno));
    return 1;
  }
  printf("ready pid=%d\n", (int)getpid());
  for (long i = 0;; i++) {
    printf("tick %ld\n", i);
    struct timespec req = {interval / 1000, (interval % 1000) * 1000000L}, rem;
    while (nanosleep(&req, &rem) == -1 && errno == EINTR) req = rem;
  }
}
