// System V objects a checkpoint of a sandbox must bring back at their ids: a shared memory segment
// (key 0x5eed0001) attached by a parent and its child, a second segment already marked for removal
// (IPC_RMID while both have it attached), a semaphore set (key 0x5eed0002) with values 3, 7, 42
// and a message queue (key 0x5eed0003) holding messages of types 1, 2, 3, 1 and a 1000-byte one of
// type 7.
//
//   ipc_sysv
//
// The parent also attaches the first segment twice more: read-only (SHM_RDONLY), and read-write
// with its second page unmapped, its third made read-only (mprotect) and its last page unmapped;
// after a restart these must look the same in /proc/self/maps and share the content.
//
// The child (named "ipc_sysv_kid") waits for commands on a pipe. Prints "pid=<pid>",
// "ids shm=<id> sem=<id> msg=<id>", "ready", then "tick <n>" every second. On SIGUSR1 it checks:
// the keys still give the same ids; the segment's content (checksum of the pattern written at the
// start); that a byte the parent writes in each segment is seen by the child and one the child
// writes is seen by the parent; the removed segment is still marked SHM_DEST with 2 attachments;
// the semaphore values; and the messages (type 3 first by type, then the rest in order, then
// none). Prints "sysv ok ids shm=<id> sem=<id> msg=<id>" or "sysv BAD <what>". The messages are
// consumed, so it checks once.
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

#include "check_signal.h"

#define SHM_KEY 0x5eed0001
#define SEM_KEY 0x5eed0002
#define MSG_KEY 0x5eed0003
#define SHM_SIZE 65536
#define PATTERN_LEN 60000  // the rest stays zero


static uint64_t fnv(const unsigned char* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

struct msgbuf_big {
  long type;
  char text[1000];
};

static const struct {
  long type;
  const char* text;
} kMsgs[] = {{1, "a1"}, {2, "b2"}, {3, "c3"}, {1, "d1"}};

// The permissions of the mapping holding `addr` in /proc/self/maps ("rw-s"), or "none".
static const char* perms_at(const void* addr) {
  static char perms[8];
  strcpy(perms, "none");
  FILE* f = fopen("/proc/self/maps", "r");
  if (!f) return perms;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    char p[8];
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, p) == 3 && (unsigned long)addr >= lo && (unsigned long)addr < hi) {
      strcpy(perms, p);
      break;
    }
  }
  fclose(f);
  return perms;
}

// The extra attachments look as they were made: holes, protections, read-only.
static const char* check_layout(const unsigned char* ro, const unsigned char* cut) {
  if (strcmp(perms_at(ro), "r--s") != 0) return "read-only attachment";
  if (strcmp(perms_at(cut), "rw-s") != 0) return "cut attachment first page";
  if (strcmp(perms_at(cut + 4096), "none") != 0) return "cut attachment hole";
  if (strcmp(perms_at(cut + 8192), "r--s") != 0) return "cut attachment read-only page";
  if (strcmp(perms_at(cut + 12288), "rw-s") != 0) return "cut attachment fourth page";
  if (strcmp(perms_at(cut + SHM_SIZE - 4096), "none") != 0) return "cut attachment end";
  return NULL;
}

static int send_msg(int q, long type, const void* data, size_t len) {
  struct msgbuf_big m;
  m.type = type;
  memcpy(m.text, data, len);
  return msgsnd(q, &m, len, IPC_NOWAIT);
}

// The child: for each command byte, reads the byte the parent put at offset 0x100 of both
// segments, checks it against the command, writes command+1 at 0x101, and answers 1 (ok) or 0.
static void child_loop(int cmd_fd, int reply_fd, unsigned char* a, unsigned char* b) {
  prctl(PR_SET_NAME, "ipc_sysv_kid");
  char one = 1;
  if (write(reply_fd, &one, 1) != 1) _exit(1);
  for (;;) {
    unsigned char c;
    ssize_t n = read(cmd_fd, &c, 1);
    if (n == 0) _exit(0);
    if (n < 0) {
      if (errno == EINTR) continue;
      _exit(1);
    }
    char ok = a[0x100] == c && b[0x100] == c;
    a[0x101] = (unsigned char)(c + 1);
    b[0x101] = (unsigned char)(c + 1);
    if (write(reply_fd, &ok, 1) != 1) _exit(1);
  }
}

// Makes and removes objects of each kind first, so the ids used are not the ones a fresh
// namespace hands out first (a restore that ignored ids would give those).
static void use_up_ids(void) {
  for (int i = 0; i < 3; i++) {
    int s = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600), m = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600),
        q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    shmctl(s, IPC_RMID, NULL);
    semctl(m, 0, IPC_RMID);
    msgctl(q, IPC_RMID, NULL);
  }
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  use_up_ids();
  int shm = shmget(SHM_KEY, SHM_SIZE, IPC_CREAT | IPC_EXCL | 0640);
  int gone = shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0600);
  int sem = semget(SEM_KEY, 3, IPC_CREAT | IPC_EXCL | 0660);
  int msg = msgget(MSG_KEY, IPC_CREAT | IPC_EXCL | 0620);
  if (shm < 0 || gone < 0 || sem < 0 || msg < 0) {
    printf("sysv BAD setup %s\n", strerror(errno));
    return 1;
  }
  unsigned char* a = shmat(shm, NULL, 0);
  unsigned char* b = shmat(gone, NULL, 0);
  if (a == (void*)-1 || b == (void*)-1) {
    printf("sysv BAD shmat %s\n", strerror(errno));
    return 1;
  }
  unsigned char* ro = shmat(shm, NULL, SHM_RDONLY);
  unsigned char* cut = shmat(shm, NULL, 0);
  if (ro == (void*)-1 || cut == (void*)-1 || munmap(cut + 4096, 4096) != 0 || mprotect(cut + 8192, 4096, PROT_READ) != 0 ||
      munmap(cut + SHM_SIZE - 4096, 4096) != 0) {
    printf("sysv BAD extra attachments %s\n", strerror(errno));
    return 1;
  }
  for (size_t i = 0; i < PATTERN_LEN; i++) a[i] = (unsigned char)(i * 31 + 7);
  a[0x100] = a[0x101] = 0;  // the handshake bytes are outside the checksum
  const uint64_t sum = fnv(a + 0x200, SHM_SIZE - 0x200);
  memset(b, 0x11, 8192);
  unsigned short vals[3] = {3, 7, 42};
  if (semctl(sem, 0, SETALL, vals) != 0) {
    printf("sysv BAD semctl %s\n", strerror(errno));
    return 1;
  }
  for (size_t i = 0; i < sizeof kMsgs / sizeof kMsgs[0]; i++)
    if (send_msg(msg, kMsgs[i].type, kMsgs[i].text, strlen(kMsgs[i].text) + 1) != 0) {
      printf("sysv BAD msgsnd %s\n", strerror(errno));
      return 1;
    }
  char big[1000];
  for (int i = 0; i < 1000; i++) big[i] = (char)(i % 7 == 0 ? 0 : i);
  if (send_msg(msg, 7, big, sizeof big) != 0) {
    printf("sysv BAD msgsnd big %s\n", strerror(errno));
    return 1;
  }

  int cmd[2], reply[2];
  if (pipe(cmd) != 0 || pipe(reply) != 0) return 1;
  pid_t kid = fork();
  if (kid == 0) {
    close(cmd[1]);
    close(reply[0]);
    child_loop(cmd[0], reply[1], a, b);
  }
  close(cmd[0]);
  close(reply[1]);
  char c;
  if (read(reply[0], &c, 1) != 1) return 1;  // the child has its name
  // Both attach it; now it goes once both detach (shmctl(2) IPC_RMID).
  shmctl(gone, IPC_RMID, NULL);

  handle_check_signal();
  printf("pid=%d\nids shm=%d sem=%d msg=%d\nready\n", getpid(), shm, sem, msg);
  unsigned char token = 0x40;
  for (long n = 0;; n++) {
    if (!wait_for_check(1000, NULL)) {
      printf("tick %ld\n", n);
      continue;
    }
    const char* bad = NULL;
    char why[160] = "";
    int shm2 = shmget(SHM_KEY, 0, 0), sem2 = semget(SEM_KEY, 0, 0), msg2 = msgget(MSG_KEY, 0);
    if (shm2 != shm || sem2 != sem || msg2 != msg) {
      snprintf(why, sizeof why, "ids shm=%d sem=%d msg=%d", shm2, sem2, msg2);
      bad = why;
    }
    if (!bad && fnv(a + 0x200, SHM_SIZE - 0x200) != sum) bad = "shm content";
    if (!bad) bad = check_layout(ro, cut);
    if (!bad && (memcmp(ro + 0x200, a + 0x200, SHM_SIZE - 0x200) != 0 || memcmp(cut, a, 4096) != 0 ||
                 memcmp(cut + 8192, a + 8192, SHM_SIZE - 12288) != 0))
      bad = "extra attachments content";
    if (!bad) {
      token++;
      a[0x100] = b[0x100] = token;
      char ok = 0;
      if (write(cmd[1], &token, 1) != 1 || read(reply[0], &ok, 1) != 1) bad = "child gone";
      else if (!ok) bad = "child does not see the parent's writes";
      else if (a[0x101] != (unsigned char)(token + 1) || b[0x101] != (unsigned char)(token + 1) ||
               ro[0x101] != (unsigned char)(token + 1) || cut[0x101] != (unsigned char)(token + 1))
        bad = "parent does not see the child's writes";
    }
    struct shmid_ds ds;
    if (!bad && (shmctl(gone, IPC_STAT, &ds) != 0 || !(ds.shm_perm.mode & SHM_DEST) || ds.shm_nattch != 2)) {
      snprintf(why, sizeof why, "removed segment mode %o nattch %lu", ds.shm_perm.mode, (unsigned long)ds.shm_nattch);
      bad = why;
    }
    if (!bad) {
      for (int i = 0; i < 8192 && !bad; i++)
        if (i != 0x100 && i != 0x101 && b[i] != 0x11) bad = "removed segment content";
    }
    unsigned short got[3] = {0, 0, 0};
    if (!bad && (semctl(sem, 0, GETALL, got) != 0 || got[0] != 3 || got[1] != 7 || got[2] != 42)) {
      snprintf(why, sizeof why, "semaphores %u %u %u", got[0], got[1], got[2]);
      bad = why;
    }
    struct msgbuf_big m;
    if (!bad && (msgrcv(msg, &m, sizeof m.text, 3, IPC_NOWAIT) != 3 || strcmp(m.text, "c3") != 0))
      bad = "message of type 3";
    for (size_t i = 0; i < sizeof kMsgs / sizeof kMsgs[0] && !bad; i++) {
      if (kMsgs[i].type == 3) continue;
      ssize_t len = msgrcv(msg, &m, sizeof m.text, 0, IPC_NOWAIT);
      if (len != (ssize_t)strlen(kMsgs[i].text) + 1 || m.type != kMsgs[i].type || strcmp(m.text, kMsgs[i].text) != 0) {
        snprintf(why, sizeof why, "message %zu: len %zd type %ld", i, len, m.type);
        bad = why;
      }
    }
    if (!bad && (msgrcv(msg, &m, sizeof m.text, 0, IPC_NOWAIT) != 1000 || m.type != 7 || memcmp(m.text, big, 1000) != 0))
      bad = "the big message";
    if (!bad && (msgrcv(msg, &m, sizeof m.text, 0, IPC_NOWAIT) != -1 || errno != ENOMSG)) bad = "a message too many";
    if (bad) printf("sysv BAD %s\n", bad);
    else printf("sysv ok ids shm=%d sem=%d msg=%d\n", shm, sem, msg);
  }
}
