// POSIX timers (timer_create(2)) that must fire at the right time after a restart.
//
//   ev_timers
//
// Three timers on CLOCK_MONOTONIC, each with its own signal and sigev_value:
//   P: every 50 ms, SIGEV_SIGNAL to the process;
//   T: every 100 ms, SIGEV_THREAD_ID to a second thread;
//   O: once, 2 s after it is armed;
// and an interval timer (setitimer(2), ITIMER_REAL) every 100 ms.
// Prints "pid=<pid>", "ready", then "half" 0.5 s after O was armed, then "tick <n>" every second.
// When O fires it prints "fired <ms>": the CLOCK_MONOTONIC time from arming to firing (in a
// sandbox the time namespace continues the clock across the restart, so that is ~2000).
// On SIGUSR1 it checks, from inside:
//   - timer_gettime on P and T answers (the timers kept their ids) with their periods;
//   - over 500 ms P fired 6-15 times, T 2-8 times and the interval timer 2-8 times, T always in
//     the second thread, every POSIX timer's signal with its sigev_value and SI_TIMER;
// and prints "timers ok" or "timers BAD <what>".
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define V_P 0x5050
#define V_T 0x7070
#define V_O 0x0202

static volatile sig_atomic_t check = 0, count_p = 0, count_t = 0, count_alrm = 0, fired = 0, wrong = 0;
static volatile pid_t worker_tid = 0;
static struct timespec fired_at;

static void on_usr1(int sig) {
  (void)sig;
  check = 1;
}

static void on_alrm(int sig) {
  (void)sig;
  count_alrm++;
}

static void on_timer(int sig, siginfo_t* si, void* ctx) {
  (void)ctx;
  intptr_t v = (intptr_t)si->si_value.sival_ptr;
  if (si->si_code != SI_TIMER) wrong = 1;
  if (sig == SIGRTMIN && v == V_P) {
    count_p++;
  } else if (sig == SIGRTMIN + 1 && v == V_T) {
    if (gettid() != worker_tid) wrong = 2;
    count_t++;
  } else if (sig == SIGRTMIN + 2 && v == V_O) {
    clock_gettime(CLOCK_MONOTONIC, &fired_at);
    fired = 1;
  } else {
    wrong = 3;
  }
}

static void* worker(void* arg) {
  (void)arg;
  worker_tid = gettid();
  for (;;) pause();
  return NULL;
}

static long ms_between(struct timespec a, struct timespec b) {
  return (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
}

static int make(timer_t* t, int notify, int sig, intptr_t v, pid_t tid) {
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = notify;
  sev.sigev_signo = sig;
  sev.sigev_value.sival_ptr = (void*)v;
  if (notify == SIGEV_THREAD_ID) sev._sigev_un._tid = tid;
  return timer_create(CLOCK_MONOTONIC, &sev, t);
}

static void sleep_ms(long ms) {
  struct timespec end, now;
  clock_gettime(CLOCK_MONOTONIC, &end);
  end.tv_sec += ms / 1000;
  end.tv_nsec += (ms % 1000) * 1000000L;
  if (end.tv_nsec >= 1000000000L) end.tv_sec++, end.tv_nsec -= 1000000000L;
  do {
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end, NULL);
    clock_gettime(CLOCK_MONOTONIC, &now);
  } while (now.tv_sec < end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec < end.tv_nsec));
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_timer;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigaction(SIGRTMIN, &sa, NULL);
  sigaction(SIGRTMIN + 1, &sa, NULL);
  sigaction(SIGRTMIN + 2, &sa, NULL);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  sa.sa_handler = on_alrm;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);
  pthread_t th;
  pthread_create(&th, NULL, worker, NULL);
  while (!worker_tid) sched_yield();

  timer_t tp, tt, to;
  struct itimerspec p50 = {{0, 50000000L}, {0, 50000000L}}, p100 = {{0, 100000000L}, {0, 100000000L}};
  struct itimerspec once = {{0, 0}, {2, 0}};
  struct timespec armed;
  if (make(&tp, SIGEV_SIGNAL, SIGRTMIN, V_P, 0) || make(&tt, SIGEV_THREAD_ID, SIGRTMIN + 1, V_T, worker_tid) ||
      make(&to, SIGEV_SIGNAL, SIGRTMIN + 2, V_O, 0) || timer_settime(tp, 0, &p50, NULL) ||
      timer_settime(tt, 0, &p100, NULL)) {
    printf("timers BAD setup %s\n", strerror(errno));
    return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &armed);
  struct itimerval i100 = {{0, 100000}, {0, 100000}};
  if (timer_settime(to, 0, &once, NULL) || setitimer(ITIMER_REAL, &i100, NULL)) return 1;
  printf("pid=%d\nready\n", getpid());
  sleep_ms(500);
  printf("half\n");
  int reported = 0;
  for (long n = 0;; n++) {
    for (int i = 0; i < 10 && !check; i++) {
      sleep_ms(100);
      if (fired && !reported) {
        printf("fired %ld\n", ms_between(armed, fired_at));
        reported = 1;
      }
    }
    if (!check) {
      printf("tick %ld\n", n);
      continue;
    }
    check = 0;
    const char* bad = NULL;
    struct itimerspec cur;
    if (timer_gettime(tp, &cur) != 0 || cur.it_interval.tv_nsec != 50000000L) bad = "timer P lost its id or period";
    if (!bad && (timer_gettime(tt, &cur) != 0 || cur.it_interval.tv_nsec != 100000000L))
      bad = "timer T lost its id or period";
    int p0 = count_p, t0 = count_t, a0 = count_alrm;
    sleep_ms(500);
    int dp = count_p - p0, dt = count_t - t0, da = count_alrm - a0;
    if (!bad && (dp < 6 || dp > 15)) bad = "timer P fires at the wrong rate";
    if (!bad && (dt < 2 || dt > 8)) bad = "timer T fires at the wrong rate";
    if (!bad && (da < 2 || da > 8)) bad = "the interval timer fires at the wrong rate";
    if (!bad && wrong == 2) bad = "timer T signalled the wrong thread";
    if (!bad && wrong) bad = "a timer signal with the wrong value or code";
    if (bad) printf("timers BAD %s (P %d, T %d, interval %d)\n", bad, dp, dt, da);
    else printf("timers ok\n");
  }
}
