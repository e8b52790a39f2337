// Open files whose state a checkpoint must bring back: shared open file descriptions, locks, a
// file deleted while open, and a sealed memfd that is also mapped.
//
//   files_state        (run in a scratch directory; it creates its files there)
//
// Sets up, in its working directory:
//   shared.dat: 4096 bytes, opened as fd F at offset 100, dup'ed as G (one description), flock'ed
//     exclusively, with an fcntl record lock on bytes 0-9; a child inherits F (the description
//     again) and takes its own record lock on bytes 20-29;
//   gone.dat: 8192 bytes of a known pattern, opened at offset 5000, then unlinked;
//   a memfd of 3 pages of a pattern at offset 123, mapped shared, sealed against shrinking and
//   growing;
//   mapped.dat: 4 pages mapped both privately (page 1 then changed: copied on write) and shared
//   (page 2 changed: written to the file), its fd closed.
// Prints "pid=<pid>", "ready", then "tick <n>" every 100 ms. On SIGUSR1 it checks everything from
// inside and prints "files ok" or "files BAD <what>":
//   the dup'ed fd is at offset 100, a write through F moves G (one description), and the child
//   sees the new offset too (fork shares it);
//   gone.dat reads on at offset 5000 with its bytes, and has no name (st_nlink 0);
//   the memfd is at offset 123, its mapping shows its bytes and a write through the fd, its seals
//   are kept;
//   the private mapping shows its own page 1 and the file elsewhere; the shared one writes to the
//   file;
//   a fresh process cannot flock shared.dat, and F_GETLK names the parent for bytes 0-9 and the
//   child for bytes 20-29.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check_signal.h"


static unsigned char pat(size_t i) { return (unsigned char)(i * 7 + 3); }

static int fill(int fd, size_t n) {
  unsigned char buf[4096];
  for (size_t done = 0; done < n; done += sizeof buf) {
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = pat(done + i);
    if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) return -1;
  }
  return 0;
}

// Who holds a record lock on [start, start+len) of `path`, asked from a new process (-1: none).
static pid_t holder(const char* path, off_t start, off_t len) {
  int fd = open(path, O_RDWR);
  if (fd < 0) return -2;
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
  pid_t r = fcntl(fd, F_GETLK, &fl) != 0 ? -2 : fl.l_type == F_UNLCK ? -1 : fl.l_pid;
  close(fd);
  return r;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int f = open("shared.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (f < 0 || fill(f, 4096) != 0 || lseek(f, 100, SEEK_SET) != 100) return 1;
  int g = dup(f);
  if (flock(f, LOCK_EX) != 0) return 2;
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
  if (fcntl(f, F_SETLK, &fl) != 0) return 3;
  int d = open("gone.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (d < 0 || fill(d, 8192) != 0 || lseek(d, 5000, SEEK_SET) != 5000 || unlink("gone.dat") != 0) return 4;
  int m = memfd_create("crbox-test", MFD_ALLOW_SEALING);
  if (m < 0 || fill(m, 3 * 4096) != 0) return 5;
  unsigned char* map = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
  if (map == MAP_FAILED || fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0 || lseek(m, 123, SEEK_SET) != 123)
    return 6;

  int mf = open("mapped.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (mf < 0 || fill(mf, 4 * 4096) != 0) return 12;
  unsigned char* priv = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, mf, 0);
  unsigned char* shar = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mf, 0);
  if (priv == MAP_FAILED || shar == MAP_FAILED) return 13;
  close(mf);
  priv[4096] = 'P';
  shar[2 * 4096] = 'S';

  // The child: takes its own record lock, then answers "where is F?" on its pipe.
  int ask[2], answer[2];
  if (pipe(ask) != 0 || pipe(answer) != 0) return 7;
  pid_t child = fork();
  if (child == 0) {
    struct flock cl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 20, .l_len = 10};
    if (fcntl(f, F_SETLK, &cl) != 0) _exit(8);
    if (write(answer[1], "L", 1) != 1) _exit(9);
    char c;
    while (read(ask[0], &c, 1) == 1) {
      long off = (long)lseek(f, 0, SEEK_CUR);
      if (write(answer[1], &off, sizeof off) != sizeof off) _exit(10);
    }
    _exit(0);
  }
  char c;
  if (read(answer[0], &c, 1) != 1) return 11;

  handle_check_signal();
  printf("pid=%d\nready\n", getpid());
  for (long n = 0;; n++) {
    if (!wait_for_check(100, NULL)) {
      printf("tick %ld\n", n);
      continue;
    }
    const char* bad = NULL;
    // One description for F and G, shared with the child.
    if (lseek(g, 0, SEEK_CUR) != 100) bad = "dup offset";
    if (!bad && (write(f, "x", 1) != 1 || lseek(g, 0, SEEK_CUR) != 101)) bad = "dup not shared";
    long off = -1;
    if (!bad && (write(ask[1], "?", 1) != 1 || read(answer[0], &off, sizeof off) != sizeof off || off != 101))
      bad = "offset not shared with the child";
    // The deleted file.
    unsigned char buf[100];
    struct stat st;
    if (!bad && read(d, buf, sizeof buf) != sizeof buf) bad = "deleted file read";
    for (size_t i = 0; !bad && i < sizeof buf; i++)
      if (buf[i] != pat(5000 + i)) bad = "deleted file content";
    if (!bad && (fstat(d, &st) != 0 || st.st_nlink != 0 || st.st_size != 8192)) bad = "deleted file stat";
    // The memfd, through its fd and its mapping.
    if (!bad && lseek(m, 0, SEEK_CUR) != 123) bad = "memfd offset";
    for (size_t i = 1; !bad && i < 3 * 4096; i++)
      if (map[i] != pat(i)) bad = "memfd mapping content";
    if (!bad && (pwrite(m, "Z", 1, 0) != 1 || map[0] != 'Z')) bad = "memfd mapping not shared with its fd";
    if (!bad && fcntl(m, F_GET_SEALS) != (F_SEAL_SHRINK | F_SEAL_GROW)) bad = "memfd seals";
    if (!bad && ftruncate(m, 4096) == 0) bad = "memfd seal not enforced";
    // The data file's mappings.
    if (!bad && (priv[4096] != 'P' || priv[0] != pat(0) || priv[2 * 4096] != 'S' || priv[3 * 4096] != pat(3 * 4096)))
      bad = "private file mapping";
    if (!bad && (shar[4096] != pat(4096) || shar[2 * 4096] != 'S')) bad = "shared file mapping";
    if (!bad) {
      shar[3 * 4096] = 'T';
      int x = open("mapped.dat", O_RDONLY);
      char t = 0;
      if (x < 0 || pread(x, &t, 1, 3 * 4096) != 1 || t != 'T') bad = "shared file mapping does not write the file";
      if (x >= 0) close(x);
    }
    // Locks, seen from a new process.
    if (!bad) {
      pid_t me = getpid();
      pid_t k = fork();
      if (k == 0) {
        int x = open("shared.dat", O_RDWR);
        if (x < 0) _exit(20);
        if (flock(x, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK) _exit(21);
        if (holder("shared.dat", 0, 10) != me) _exit(22);
        if (holder("shared.dat", 20, 10) != child) _exit(23);
        if (holder("shared.dat", 40, 10) != -1) _exit(24);
        _exit(0);
      }
      int ws = 0;
      waitpid(k, &ws, 0);
      if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        static char why[64];
        snprintf(why, sizeof why, "locks (checker status %d)", WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
        bad = why;
      }
    }
    if (bad) printf("files BAD %s\n", bad);
    else printf("files ok\n");
  }
}
