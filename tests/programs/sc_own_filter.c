// A program that installs a seccomp filter of its own, which a checkpoint must carry over.
//
//   sc_own_filter [period_ms=200]
//
// Sets no_new_privs and loads a BPF filter (seccomp(2)) under which mkdir(2) fails with EXDEV
// and everything else is allowed. Prints "pid=<pid>", "filters=<n>" (Seccomp_filters in
// /proc/self/status: the sandbox's policy counts too), then "tick <n>" every period. On SIGUSR1
// it checks the filter is still in force and the count unchanged:
//   "filter ok filters=<n>"  or  "filter BAD <why>"
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "check_signal.h"


static int filters_now(void) {
  FILE* f = fopen("/proc/self/status", "r");
  char line[256];
  int n = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "Seccomp_filters:", 16) == 0) n = atoi(line + 16);
  if (f) fclose(f);
  return n;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int period = argc > 1 ? atoi(argv[1]) : 200;
  struct sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mkdir, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EXDEV),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {sizeof code / sizeof code[0], code};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
    printf("filter BAD cannot install: %s\n", strerror(errno));
    return 1;
  }
  handle_check_signal();
  int n0 = filters_now();
  printf("pid=%d\nfilters=%d\n", getpid(), n0);
  for (long t = 0;; t++) {
    struct timespec ts = {period / 1000, (period % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    if (!check_asked) {
      printf("tick %ld\n", t);
      continue;
    }
    check_asked = 0;
    errno = 0;
    long r = syscall(SYS_mkdir, "/nonexistent/crbox-filter-probe", 0700);
    int n = filters_now();
    if (r == -1 && errno == EXDEV && n == n0)
      printf("filter ok filters=%d\n", n);
    else
      printf("filter BAD mkdir=%ld errno=%d filters=%d (was %d)\n", r, errno, n, n0);
  }
}
