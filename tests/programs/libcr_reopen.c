// A program whose libcr callback closes its log file before a checkpoint and reopens it after,
// telling which way it came back.
//
//   libcr_reopen FILE [interval_ms=100] [signal]
//
// Appends "line N" to FILE every interval_ms (and prints "i=N"), each time inside a critical
// section, so a checkpoint never splits a write. The callback (thread context; a signal-context
// one with "signal") prints "closing", closes FILE, calls cr_checkpoint(0), reopens FILE for
// appending and prints "continue" (rc 0: the process went on), "restart" (rc > 0: this is the
// copy restarted from the image) or "failed rc=R". The image never holds FILE open, so a restart
// does not depend on its content. Prints "ready pid=P" once set up.
#include <errno.h>
#include <fcntl.h>
#include <libcr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char* path;
static int fd = -1;

static void say(const char* s) { (void)!write(1, s, strlen(s)); }

static int reopen(void) {
  fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  return fd;
}

static int callback(void* arg) {
  (void)arg;
  say("closing\n");
  close(fd);
  fd = -1;
  int rc = cr_checkpoint(CR_CHECKPOINT_READY);
  if (reopen() < 0) say("reopen failed\n");
  if (rc == 0) say("continue\n");
  else if (rc > 0) say("restart\n");
  else {
    char buf[64];
    int n = snprintf(buf, sizeof buf, "failed rc=%d\n", rc);
    (void)!write(1, buf, (size_t)n);
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: libcr_reopen FILE [interval_ms] [signal]\n");
    return 2;
  }
  path = argv[1];
  long interval = argc > 2 ? strtol(argv[2], NULL, 10) : 100;
  int signal_ctx = argc > 3 && strcmp(argv[3], "signal") == 0;
  cr_client_id_t id = cr_init();
  if (id < 0 || reopen() < 0) {
    perror("libcr_reopen");
    return 1;
  }
  if (cr_register_callback(callback, NULL, signal_ctx ? CR_SIGNAL_CONTEXT : CR_THREAD_CONTEXT) < 0) {
    fprintf(stderr, "cr_register_callback: %s\n", cr_strerror(errno));
    return 1;
  }
  char buf[64];
  int n = snprintf(buf, sizeof buf, "ready pid=%d\n", (int)getpid());
  (void)!write(1, buf, (size_t)n);
  for (long i = 0;; i++) {
    cr_enter_cs(id);
    n = snprintf(buf, sizeof buf, "line %ld\n", i);
    if (fd < 0 || write(fd, buf, (size_t)n) != n) say("write failed\n");
    cr_leave_cs(id);
    n = snprintf(buf, sizeof buf, "i=%ld\n", i);
    (void)!write(1, buf, (size_t)n);
    struct timespec req = {interval / 1000, (interval % 1000) * 1000000L}, rem;
    while (nanosleep(&req, &rem) == -1 && errno == EINTR) req = rem;
  }
}
