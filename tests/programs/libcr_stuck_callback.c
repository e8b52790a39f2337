// A program whose libcr callback never returns: a checkpoint of it can only end by cr_checkpoint's
// --time limit.
//
//   libcr_stuck_callback [interval_ms=200]
//
// Registers a thread-context callback that prints "callback entered" and then blocks forever
// (it never calls cr_checkpoint()). The main thread goes on printing "tick N" every interval_ms,
// checkpoint or not. Prints "ready pid=P" first.
#include <errno.h>
#include <libcr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int callback(void* arg) {
  (void)arg;
  (void)!write(1, "callback entered\n", 17);
  for (;;) pause();
  return 0;
}

int main(int argc, char** argv) {
  long interval = argc > 1 ? strtol(argv[1], NULL, 10) : 200;
  if (cr_init() < 0 || cr_register_callback(callback, NULL, CR_THREAD_CONTEXT) < 0) {
    fprintf(stderr, "libcr: %s\n", cr_strerror(errno));
    return 1;
  }
  char buf[64];
  int n = snprintf(buf, sizeof buf, "ready pid=%d\n", (int)getpid());
  (void)!write(1, buf, (size_t)n);
  for (long i = 0;; i++) {
    n = snprintf(buf, sizeof buf, "tick %ld\n", i);
    (void)!write(1, buf, (size_t)n);
    struct timespec req = {interval / 1000, (interval % 1000) * 1000000L}, rem;
    while (nanosleep(&req, &rem) == -1 && errno == EINTR) req = rem;
  }
}
