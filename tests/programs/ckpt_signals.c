// Signal state that a checkpoint must carry over, checked by the program itself.
//
//   ckpt_signals [period_ms=300]
//
// Installs: SIGUSR1 with SA_SIGINFO|SA_RESTART|SA_ONSTACK and SIGTERM in its sa_mask;
// SIGUSR2 with a plain handler, no SA_RESTART, SIGINT in its sa_mask; SIGPIPE ignored.
// Blocks SIGRTMIN (and SIGRTMIN+1), sets an alternate signal stack, and raises SIGRTMIN
// itself so it stays pending. Prints "pid=<pid>", "ready", then "tick <n>" every period.
// On SIGUSR1 (which runs on the alternate stack) it checks everything above and prints
//   "signals ok usr1=<count> usr2=<count>"  or  "signals BAD <what>".
// On SIGUSR2 it prints "usr2 <count>".
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ALT_SIZE (64 * 1024)
static char alt_stack[ALT_SIZE] __attribute__((aligned(16)));

static volatile sig_atomic_t usr1_count = 0, usr2_count = 0, usr2_seen = 0;
static volatile sig_atomic_t usr1_on_alt = -1, usr1_info_ok = -1;
static volatile sig_atomic_t check_now = 0;

static void on_usr1(int sig, siginfo_t* si, void* uc) {
  (void)uc;
  char here;
  uintptr_t a = (uintptr_t)&here, lo = (uintptr_t)alt_stack;
  usr1_on_alt = (a >= lo && a < lo + ALT_SIZE);
  usr1_info_ok = (sig == SIGUSR1 && si && si->si_signo == SIGUSR1);
  usr1_count++;
  check_now = 1;
}

static void on_usr2(int sig) {
  (void)sig;
  usr2_count++;
  usr2_seen = 1;
}

static int verify(char* what, size_t n) {
  struct sigaction sa;
  what[0] = 0;
  if (sigaction(SIGUSR1, NULL, &sa) != 0) return snprintf(what, n, "sigaction(SIGUSR1) failed"), 0;
  if (sa.sa_sigaction != on_usr1) return snprintf(what, n, "SIGUSR1 handler is %p", (void*)sa.sa_sigaction), 0;
  int want1 = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  if ((sa.sa_flags & want1) != want1 || (sa.sa_flags & SA_RESETHAND))
    return snprintf(what, n, "SIGUSR1 flags are %#x", (unsigned)sa.sa_flags), 0;
  if (!sigismember(&sa.sa_mask, SIGTERM) || sigismember(&sa.sa_mask, SIGINT))
    return snprintf(what, n, "SIGUSR1 sa_mask wrong"), 0;

  if (sigaction(SIGUSR2, NULL, &sa) != 0) return snprintf(what, n, "sigaction(SIGUSR2) failed"), 0;
  if (sa.sa_handler != on_usr2) return snprintf(what, n, "SIGUSR2 handler is %p", (void*)sa.sa_handler), 0;
  if (sa.sa_flags & (SA_SIGINFO | SA_RESTART | SA_ONSTACK))
    return snprintf(what, n, "SIGUSR2 flags are %#x", (unsigned)sa.sa_flags), 0;
  if (!sigismember(&sa.sa_mask, SIGINT) || sigismember(&sa.sa_mask, SIGTERM))
    return snprintf(what, n, "SIGUSR2 sa_mask wrong"), 0;

  if (sigaction(SIGPIPE, NULL, &sa) != 0 || sa.sa_handler != SIG_IGN)
    return snprintf(what, n, "SIGPIPE not ignored"), 0;
  if (sigaction(SIGHUP, NULL, &sa) != 0 || sa.sa_handler != SIG_DFL)
    return snprintf(what, n, "SIGHUP not default"), 0;

  sigset_t mask;
  sigprocmask(SIG_BLOCK, NULL, &mask);
  if (!sigismember(&mask, SIGRTMIN) || !sigismember(&mask, SIGRTMIN + 1))
    return snprintf(what, n, "SIGRTMIN no longer blocked"), 0;
  if (sigismember(&mask, SIGUSR1) || sigismember(&mask, SIGUSR2) || sigismember(&mask, SIGTERM))
    return snprintf(what, n, "unexpected signals blocked"), 0;

  sigset_t pend;
  sigpending(&pend);
  if (!sigismember(&pend, SIGRTMIN)) return snprintf(what, n, "SIGRTMIN no longer pending"), 0;
  if (sigismember(&pend, SIGRTMIN + 1)) return snprintf(what, n, "SIGRTMIN+1 pending"), 0;

  stack_t ss;
  if (sigaltstack(NULL, &ss) != 0) return snprintf(what, n, "sigaltstack failed"), 0;
  if (ss.ss_sp != alt_stack || ss.ss_size != ALT_SIZE || (ss.ss_flags & SS_DISABLE))
    return snprintf(what, n, "altstack is %p+%zu flags %#x", ss.ss_sp, ss.ss_size, (unsigned)ss.ss_flags), 0;

  if (usr1_on_alt != 1) return snprintf(what, n, "SIGUSR1 handler did not run on the alternate stack"), 0;
  if (usr1_info_ok != 1) return snprintf(what, n, "SIGUSR1 siginfo wrong"), 0;
  return 1;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  long period = argc > 1 ? strtol(argv[1], NULL, 10) : 300;

  stack_t ss = {.ss_sp = alt_stack, .ss_size = ALT_SIZE, .ss_flags = 0};
  if (sigaltstack(&ss, NULL) != 0) return perror("sigaltstack"), 2;

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_usr1;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGTERM);
  if (sigaction(SIGUSR1, &sa, NULL) != 0) return perror("sigaction"), 2;

  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr2;
  sa.sa_flags = 0;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGINT);
  if (sigaction(SIGUSR2, &sa, NULL) != 0) return perror("sigaction"), 2;
  signal(SIGPIPE, SIG_IGN);

  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGRTMIN);
  sigaddset(&block, SIGRTMIN + 1);
  sigprocmask(SIG_BLOCK, &block, NULL);
  raise(SIGRTMIN);

  printf("pid=%ld\n", (long)getpid());
  printf("ready\n");
  for (long tick = 0;; tick++) {
    printf("tick %ld\n", tick);
    struct timespec req = {period / 1000, (period % 1000) * 1000000L}, rem;
    for (;;) {
      int r = nanosleep(&req, &rem);
      if (check_now) {
        check_now = 0;
        char what[200];
        if (verify(what, sizeof what))
          printf("signals ok usr1=%d usr2=%d\n", (int)usr1_count, (int)usr2_count);
        else
          printf("signals BAD %s\n", what);
      }
      if (usr2_seen) {
        usr2_seen = 0;
        printf("usr2 %d\n", (int)usr2_count);
      }
      if (r == 0 || errno != EINTR) break;
      req = rem;
    }
  }
}
