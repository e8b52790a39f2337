// Blocks in one system call, over and over, and reports how each call ended.
//
//   ckpt_block MODE [block_ms=3000]      MODE: nanosleep | read | select | stdin
//
// Each round prints "blocking <mode> <n>", blocks, then prints
//   "woke <mode> ok <n> eintr=<k> ..."   or   "woke <mode> BAD <n> <why>".
// nanosleep: sleeps block_ms; ok when at least block_ms passed on CLOCK_MONOTONIC.
// read:      reads a pipe the program owns; a SIGUSR1 handler (SA_RESTART) writes one byte 'w'
//            into it, so the test wakes the reader with `kill -USR1`. ok when exactly "w" came.
// select:    waits on that pipe's read end with a block_ms timeout; ok when it timed out after
//            at least block_ms, or saw the handler's byte.
// stdin:     reads fd 0 (a pipe or terminal); ok when a non-empty line came.
// Like a real program, every call is retried after EINTR with what is left (eintr=<k> counts
// them): an interrupted sleep resumes with its remaining time, select with its updated timeout.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

static int pfd[2] = {-1, -1};

static void on_usr1(int sig) {
  (void)sig;
  int e = errno;
  if (write(pfd[1], "w", 1) != 1) {
  }
  errno = e;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char* mode = argc > 1 ? argv[1] : "";
  long block_ms = argc > 2 ? strtol(argv[2], NULL, 10) : 3000;
  int m = !strcmp(mode, "nanosleep") ? 1 : !strcmp(mode, "read") ? 2 : !strcmp(mode, "select") ? 3
        : !strcmp(mode, "stdin")     ? 4 : 0;
  if (!m) {
    fprintf(stderr, "usage: ckpt_block nanosleep|read|select|stdin [block_ms]\n");
    return 2;
  }
  if (pipe(pfd) != 0) return perror("pipe"), 2;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);

  printf("pid=%ld\n", (long)getpid());
  for (long n = 0;; n++) {
    printf("blocking %s %ld\n", mode, n);
    int eintr = 0;
    double t0 = now_ms();
    if (m == 1) {
      struct timespec req = {block_ms / 1000, (block_ms % 1000) * 1000000L}, rem;
      int r;
      while ((r = nanosleep(&req, &rem)) == -1 && errno == EINTR) eintr++, req = rem;
      double el = now_ms() - t0;
      if (r == 0 && el >= block_ms - 1)
        printf("woke nanosleep ok %ld eintr=%d elapsed_ms=%.0f\n", n, eintr, el);
      else
        printf("woke nanosleep BAD %ld r=%d errno=%d elapsed_ms=%.0f\n", n, r, r ? errno : 0, el);
    } else if (m == 2) {
      char buf[16];
      ssize_t r;
      while ((r = read(pfd[0], buf, sizeof buf)) == -1 && errno == EINTR) eintr++;
      if (r == 1 && buf[0] == 'w')
        printf("woke read ok %ld eintr=%d\n", n, eintr);
      else
        printf("woke read BAD %ld r=%zd errno=%d\n", n, r, r < 0 ? errno : 0);
    } else if (m == 3) {
      struct timeval tv = {block_ms / 1000, (block_ms % 1000) * 1000};
      fd_set set;
      int r;
      for (;;) {
        FD_ZERO(&set);
        FD_SET(pfd[0], &set);
        r = select(pfd[0] + 1, &set, NULL, NULL, &tv);  // Linux leaves the time left in tv
        if (r == -1 && errno == EINTR) {
          eintr++;
          continue;
        }
        break;
      }
      double el = now_ms() - t0;
      char c = 0;
      if (r == 1 && FD_ISSET(pfd[0], &set) && read(pfd[0], &c, 1) == 1 && c == 'w')
        printf("woke select ok %ld eintr=%d ret=1 elapsed_ms=%.0f\n", n, eintr, el);
      else if (r == 0 && el >= block_ms - 1)
        printf("woke select ok %ld eintr=%d ret=0 elapsed_ms=%.0f\n", n, eintr, el);
      else
        printf("woke select BAD %ld r=%d errno=%d elapsed_ms=%.0f\n", n, r, r < 0 ? errno : 0, el);
    } else {
      char buf[256];
      ssize_t r;
      while ((r = read(0, buf, sizeof buf - 1)) == -1 && errno == EINTR) eintr++;
      if (r > 0) {
        buf[r] = 0;
        buf[strcspn(buf, "\n")] = 0;
        printf("woke stdin ok %ld eintr=%d got=%s\n", n, eintr, buf);
      } else {
        printf("woke stdin BAD %ld r=%zd errno=%d\n", n, r, r < 0 ? errno : 0);
        return 1;
      }
    }
  }
}
