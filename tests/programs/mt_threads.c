// Threads that must all come back: each counts, and checks that its tid, its TLS and a value
// on its stack survived.
//
//   mt_threads [nthreads=8] [period_ms=200]
//
// Prints "pid=<pid>", then "started <n>" once every thread runs. Each thread, every period,
// checks gettid() against the tid it saw at start, a __thread variable against its index, and a
// stack canary, then bumps its counter. On SIGUSR1 the main thread prints one line per thread:
//   "thread <i> tid=<tid> count=<n> ok"  or  "thread <i> BAD <why>"
// and "threads ok <n>" when every counter moved since the previous report.
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAXT 256

static int nthreads = 8;
static int period_ms = 200;
static volatile long counts[MAXT];
static volatile pid_t tids[MAXT];
static volatile int bad[MAXT];
static __thread int my_index = -1;
static volatile sig_atomic_t report = 0;

static void on_usr1(int sig) {
  (void)sig;
  report = 1;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static void* worker(void* arg) {
  int i = (int)(long)arg;
  my_index = i;
  volatile unsigned long canary = 0xC0FFEE00UL + (unsigned long)i;
  tids[i] = (pid_t)syscall(SYS_gettid);
  for (;;) {
    if ((pid_t)syscall(SYS_gettid) != tids[i]) bad[i] = 1;
    if (my_index != i) bad[i] = 2;
    if (canary != 0xC0FFEE00UL + (unsigned long)i) bad[i] = 3;
    counts[i]++;
    sleep_ms(period_ms);
  }
  return NULL;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc > 1) nthreads = atoi(argv[1]);
  if (argc > 2) period_ms = atoi(argv[2]);
  if (nthreads < 1 || nthreads > MAXT) return 2;
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);
  // Only the main thread takes SIGUSR1.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  printf("pid=%d\n", getpid());
  pthread_t th[MAXT];
  for (int i = 0; i < nthreads; i++) pthread_create(&th[i], NULL, worker, (void*)(long)i);
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  for (int i = 0; i < nthreads; i++)
    while (!tids[i]) sleep_ms(1);
  printf("started %d\n", nthreads);
  long last[MAXT] = {0};
  for (;;) {
    sleep_ms(50);
    if (!report) continue;
    report = 0;
    int moved = 0, allok = 1;
    for (int i = 0; i < nthreads; i++) {
      if (bad[i]) {
        printf("thread %d BAD %d\n", i, bad[i]);
        allok = 0;
      } else {
        printf("thread %d tid=%d count=%ld ok\n", i, tids[i], counts[i]);
      }
      if (counts[i] != last[i]) moved++;
      last[i] = counts[i];
    }
    if (allok && moved == nthreads) printf("threads ok %d\n", nthreads);
    else printf("threads BAD moved=%d\n", moved);
  }
}
