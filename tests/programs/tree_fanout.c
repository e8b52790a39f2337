// A parent with many children, every one of which must come back with its pid and its parent.
//
//   tree_fanout [nchildren=50] [period_ms=100]
//
// Prints "pid=<pid>", forks the children (each named "fanout-child" with PR_SET_NAME), and
// prints "started <n>" once every child has said hello through the report pipe. Each child
// records getpid()/getppid() at start and counts, one step per period.
// On SIGUSR1 the parent signals every child; each child writes one fixed-size record (pid,
// ppid, the values at start, its count) into the shared report pipe (records are smaller than
// PIPE_BUF, so writes never interleave). The parent checks that every child answered, that
// getpid() and getppid() are what they were at start (the ppid being the parent itself), and
// that every count moved since the previous report, then prints
//   "tree ok <n> pids=<p1>,<p2>,..."   or   "tree BAD <why>"
// A child that finds itself with another parent (the parent died) says so and exits.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXC 4096

struct record {
  int index;
  int hello;  // 1: start record, 0: report
  pid_t pid, ppid, start_pid, start_ppid;
  long count;
};

static volatile sig_atomic_t report = 0;

static void on_usr1(int sig) {
  (void)sig;
  report = 1;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);  // a signal ends the sleep early: that is what we want
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int write_all(int fd, const void* p, size_t n) {
  const char* c = p;
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

// Reads one record, waiting at most until `deadline` (CLOCK_MONOTONIC ms). 0 on success.
static int read_record(int fd, struct record* r, long deadline) {
  size_t got = 0;
  while (got < sizeof *r) {
    long left = deadline - now_ms();
    if (left <= 0) return -1;
    struct pollfd p = {fd, POLLIN, 0};
    int n = poll(&p, 1, (int)left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    ssize_t k = read(fd, (char*)r + got, sizeof *r - got);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    got += (size_t)k;
  }
  return 0;
}

static void child_main(int index, int wfd, int period_ms) {
  prctl(PR_SET_NAME, "fanout-child", 0, 0, 0);
  struct record r = {0};
  r.index = index;
  r.start_pid = getpid();
  r.start_ppid = getppid();
  r.hello = 1;
  r.pid = r.start_pid;
  r.ppid = r.start_ppid;
  if (write_all(wfd, &r, sizeof r) != 0) _exit(1);
  r.hello = 0;
  long count = 0;
  for (;;) {
    count++;
    if (getppid() != r.start_ppid) {
      printf("child %d BAD ppid %d (was %d): orphaned, exiting\n", index, getppid(), r.start_ppid);
      _exit(1);
    }
    if (report) {
      report = 0;
      r.pid = getpid();
      r.ppid = getppid();
      r.count = count;
      if (write_all(wfd, &r, sizeof r) != 0) _exit(1);
    }
    sleep_ms(period_ms);
  }
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int n = argc > 1 ? atoi(argv[1]) : 50;
  int period_ms = argc > 2 ? atoi(argv[2]) : 100;
  if (n < 1 || n > MAXC || period_ms < 1) {
    fprintf(stderr, "usage: tree_fanout [nchildren=50] [period_ms=100]\n");
    return 2;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  printf("pid=%d\n", getpid());
  int p[2];
  if (pipe(p) != 0) return 1;
  static pid_t kids[MAXC];
  static long last_count[MAXC];
  static int seen[MAXC];
  for (int i = 0; i < n; i++) {
    pid_t c = fork();
    if (c < 0) {
      printf("tree BAD fork %d: %s\n", i, strerror(errno));
      return 1;
    }
    if (c == 0) {
      close(p[0]);
      child_main(i, p[1], period_ms);
    }
    kids[i] = c;
  }
  close(p[1]);
  pid_t self = getpid();
  long deadline = now_ms() + 30000;
  for (int k = 0; k < n; k++) {
    struct record r;
    if (read_record(p[0], &r, deadline) != 0 || r.index < 0 || r.index >= n || !r.hello) {
      printf("tree BAD only %d of %d children started\n", k, n);
      return 1;
    }
    if (r.start_pid != kids[r.index] || r.start_ppid != self)
      printf("tree BAD child %d started as pid %d ppid %d\n", r.index, r.start_pid, r.start_ppid);
  }
  printf("started %d\n", n);

  size_t cap = (size_t)n * 12 + 64;
  char* pids = malloc(cap);
  for (;;) {
    sleep_ms(1000);
    if (!report) continue;
    report = 0;
    for (int i = 0; i < n; i++) kill(kids[i], SIGUSR1);
    memset(seen, 0, sizeof(int) * (size_t)n);
    int answered = 0, bad = 0;
    deadline = now_ms() + 10000;
    while (answered < n) {
      struct record r;
      if (read_record(p[0], &r, deadline) != 0) break;
      if (r.hello || r.index < 0 || r.index >= n || seen[r.index]) continue;  // a late or repeated answer
      seen[r.index] = 1;
      answered++;
      if (r.pid != r.start_pid || r.pid != kids[r.index]) {
        printf("tree BAD child %d pid %d, was %d\n", r.index, r.pid, r.start_pid);
        bad++;
      } else if (r.ppid != r.start_ppid || r.ppid != getpid() || getpid() != self) {
        printf("tree BAD child %d ppid %d, was %d (parent is %d)\n", r.index, r.ppid, r.start_ppid, getpid());
        bad++;
      } else if (r.count <= last_count[r.index]) {
        printf("tree BAD child %d count %ld did not move (was %ld)\n", r.index, r.count, last_count[r.index]);
        bad++;
      }
      last_count[r.index] = r.count;
    }
    if (answered < n) {
      printf("tree BAD %d of %d children answered\n", answered, n);
      continue;
    }
    if (bad) {
      printf("tree BAD %d children wrong\n", bad);
      continue;
    }
    size_t len = 0;
    pids[0] = 0;
    for (int i = 0; i < n; i++) len += (size_t)snprintf(pids + len, cap - len, i ? ",%d" : "%d", kids[i]);
    printf("tree ok %d pids=%s\n", n, pids);
  }
}
