// A program that keeps a checkpoint waiting in a critical section.
//
//   libcr_cs_hold SECONDS
//
// On SIGUSR1 the main thread enters a critical section (cr_enter_cs), prints "entered", stays in
// it for SECONDS seconds, prints "leaving" and leaves. A thread-context callback prints
// "callback" before its cr_checkpoint() and "continue" / "restart" / "failed rc=R" after, so a
// checkpoint requested during the section shows "leaving" before "callback". Between sections it
// prints "tick N" every 200 ms. Prints "ready pid=P" once set up.
#include <errno.h>
#include <libcr.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t asked;
static void on_usr1(int sig) {
  (void)sig;
  asked = 1;
}

static void say(const char* s) { (void)!write(1, s, strlen(s)); }

static void sleep_ms(long ms) {
  struct timespec req = {ms / 1000, (ms % 1000) * 1000000L}, rem;
  while (nanosleep(&req, &rem) == -1 && errno == EINTR) req = rem;
}

static int callback(void* arg) {
  (void)arg;
  say("callback\n");
  int rc = cr_checkpoint(CR_CHECKPOINT_READY);
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
  long seconds = argc > 1 ? strtol(argv[1], NULL, 10) : 3;
  cr_client_id_t id = cr_init();
  if (id < 0 || cr_register_callback(callback, NULL, CR_THREAD_CONTEXT) < 0) {
    fprintf(stderr, "libcr: %s\n", cr_strerror(errno));
    return 1;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  char buf[64];
  int n = snprintf(buf, sizeof buf, "ready pid=%d\n", (int)getpid());
  (void)!write(1, buf, (size_t)n);
  for (long i = 0;; i++) {
    if (asked) {
      asked = 0;
      cr_enter_cs(id);
      say("entered\n");
      sleep_ms(seconds * 1000);
      say("leaving\n");
      cr_leave_cs(id);
    }
    n = snprintf(buf, sizeof buf, "tick %ld\n", i);
    (void)!write(1, buf, (size_t)n);
    sleep_ms(200);
  }
}
