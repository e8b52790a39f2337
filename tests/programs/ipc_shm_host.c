// A process attached to System V shared memory in the host's ipc namespace (not a sandbox's):
// crbox refuses to checkpoint it, and it must go on untouched.
//
//   ipc_shm_host
//
// Attaches a private segment, marks it for removal (it goes when the process exits), fills it.
// Prints "pid=<pid>", "ready", then "tick <n>" every second. On SIGUSR1 it checks the segment's
// content and prints "shmhost ok" or "shmhost BAD <what>".
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

#include "check_signal.h"


int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int id = shmget(IPC_PRIVATE, 16384, IPC_CREAT | 0600);
  unsigned char* p = id < 0 ? (void*)-1 : shmat(id, NULL, 0);
  if (p == (void*)-1) {
    printf("shmhost BAD setup %s\n", strerror(errno));
    return 1;
  }
  shmctl(id, IPC_RMID, NULL);
  for (int i = 0; i < 16384; i++) p[i] = (unsigned char)(i * 13 + 1);
  handle_check_signal();
  printf("pid=%d\nready\n", getpid());
  for (long n = 0;; n++) {
    if (!wait_for_check(1000, NULL)) {
      printf("tick %ld\n", n);
      continue;
    }
    int bad = 0;
    for (int i = 0; i < 16384; i++) bad |= p[i] != (unsigned char)(i * 13 + 1);
    printf(bad ? "shmhost BAD content\n" : "shmhost ok\n");
  }
}
