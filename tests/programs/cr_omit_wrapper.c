// An "mpirun-like" launcher linked with -lcr_omit (libcr_omit.so): checkpoints leave it out, and
// the worker it starts is checkpointed without it.
//
//   cr_omit_wrapper WORKER [ARGS...]
//
// Prints "wrapper pid=P omit=O" (O: the omit flag of its libcr page, 1 when libcr_omit works),
// forks and execs WORKER ARGS (the worker gets no libcr_omit: it is a program of its own), prints
// "worker pid=W", passes SIGTERM, SIGINT and SIGHUP on to it, waits for it and exits with its
// status (128+N when a signal N killed it).
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t worker = -1;

static void forward(int sig) {
  if (worker > 0) kill(worker, sig);
}

// The `omit` word of libcr's page (runtime/libcr/protocol.h: the third 32-bit word), read where
// /proc/self/maps shows the page, or -1 when the page is not there.
static int omit_flag(void) {
  FILE* f = fopen("/proc/self/maps", "r");
  if (!f) return -1;
  char line[512];
  int value = -1;
  while (fgets(line, sizeof line, f)) {
    if (!strstr(line, "/memfd:crbox-libcr")) continue;
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx", &lo, &hi) != 2) continue;
    const uint32_t* page = (const uint32_t*)lo;
    value = (int)page[2];
  }
  fclose(f);
  return value;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) {
    fprintf(stderr, "usage: cr_omit_wrapper WORKER [ARGS...]\n");
    return 2;
  }
  printf("wrapper pid=%d omit=%d\n", (int)getpid(), omit_flag());
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = forward;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 1;
  }
  if (pid == 0) {
    execv(argv[1], argv + 1);
    perror(argv[1]);
    _exit(127);
  }
  worker = pid;
  printf("worker pid=%d\n", (int)pid);
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return 1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
