// Reads a file of known content slowly, so a checkpoint lands in the middle of it.
//
//   ckpt_fileoffset PATH [step=4] [period_ms=100] [LOG]
//
// PATH must hold bytes where byte n is 'A' + (n * 7) % 26 (the test writes it so).
// Every period it reads `step` bytes and prints
//   "offset=<n> byte=<c> ok"    or    "offset=<n> BAD <why>"
// where n is the offset those bytes came from: the kernel's file position
// (lseek(fd, 0, SEEK_CUR)) must equal the program's own count, and the bytes must be the
// expected ones. At the end of the file it prints "eof", seeks back to 0 and goes on.
// With LOG, it also appends "offset=<n>\n" to LOG through an O_APPEND descriptor and checks
// the descriptor still has O_APPEND.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char expected(long n) { return (char)('A' + (n * 7) % 26); }

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) {
    fprintf(stderr, "usage: ckpt_fileoffset PATH [step] [period_ms] [LOG]\n");
    return 2;
  }
  long step = argc > 2 ? strtol(argv[2], NULL, 10) : 4;
  long period = argc > 3 ? strtol(argv[3], NULL, 10) : 100;
  const char* logpath = argc > 4 ? argv[4] : NULL;
  if (step < 1 || step > 256) step = 4;
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) return perror("open"), 2;
  int logfd = -1;
  if (logpath) {
    logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (logfd < 0) return perror("open log"), 2;
  }
  printf("pid=%ld fd=%d logfd=%d\n", (long)getpid(), fd, logfd);
  long off = 0;
  for (;;) {
    off_t pos = lseek(fd, 0, SEEK_CUR);
    char buf[256];
    ssize_t r = read(fd, buf, (size_t)step);
    if (pos != off) {
      printf("offset=%ld BAD kernel position is %lld\n", off, (long long)pos);
    } else if (r < 0) {
      printf("offset=%ld BAD read: %s\n", off, strerror(errno));
    } else if (r == 0) {
      printf("eof\n");
      lseek(fd, 0, SEEK_SET);
      off = 0;
    } else {
      int good = 1;
      for (ssize_t i = 0; i < r; i++)
        if (buf[i] != expected(off + i)) good = 0;
      if (good)
        printf("offset=%ld byte=%c ok\n", off, buf[0]);
      else
        printf("offset=%ld BAD bytes %.*s\n", off, (int)r, buf);
      if (logfd >= 0) {
        int fl = fcntl(logfd, F_GETFL);
        if (fl < 0 || !(fl & O_APPEND) || (fl & O_ACCMODE) != O_WRONLY) printf("offset=%ld BAD log flags %#x\n", off, fl);
        char line[64];
        int k = snprintf(line, sizeof line, "offset=%ld\n", off);
        if (write(logfd, line, (size_t)k) != k) printf("offset=%ld BAD log write: %s\n", off, strerror(errno));
      }
      off += r;
    }
    struct timespec req = {period / 1000, (period % 1000) * 1000000L}, rem;
    while (nanosleep(&req, &rem) == -1 && errno == EINTR) req = rem;
  }
}
