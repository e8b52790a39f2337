// producer | filter | consumer inside one program: three processes, two pipes (or a pipe and
// a FIFO), a deterministic stream checked byte by byte at the end.
//
//   tree_pipeline [total_bytes=0 (endless)] [fifo_path] [consumer_sleep_ms=10]
//
// The main process is the consumer; it forks the producer ("producer", PR_SET_NAME) and the
// filter ("filter"). Byte n of the producer's stream is P(n); the filter turns it into
// P(n) ^ K(n); the consumer checks every byte against that. The producer writes big uneven
// chunks as fast as the pipe takes them, the filter forwards quickly, and the consumer reads
// small chunks with a sleep in between, so both pipes are full (the producer and filter
// blocked in write) nearly all the time: a checkpoint catches bytes in flight in both.
// With fifo_path, the filter -> consumer link is a FIFO made there (mkfifo) instead of a pipe.
//
// Prints "pid=<pid>", "pipeline started producer=<pid> filter=<pid>", then about every 250 ms
//   "consumed <bytes> ok sum=<fnv1a hex>"   or, at the first wrong byte,
//   "pipeline BAD at <offset> got <x> want <y>" (and exits 1).
// With total_bytes, the producer stops there; at end of stream the consumer checks the length,
// prints "pipeline done <bytes> ok sum=<hex>", reaps both children and exits 0 (1 if wrong).
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static unsigned char produced(uint64_t n) { return (unsigned char)((n * 2654435761u) >> 13 ^ (n >> 8)); }
static unsigned char key(uint64_t n) { return (unsigned char)(n * 31 + 7); }

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int write_all(int fd, const unsigned char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static void producer(int out, uint64_t total) {
  prctl(PR_SET_NAME, "producer", 0, 0, 0);
  static unsigned char buf[16384];
  uint64_t n = 0;
  for (unsigned round = 0; total == 0 || n < total; round++) {
    size_t len = 1000 + (round * 7919u) % 12000u;  // uneven chunks, some above PIPE_BUF
    if (total && n + len > total) len = (size_t)(total - n);
    for (size_t i = 0; i < len; i++) buf[i] = produced(n + i);
    if (write_all(out, buf, len) != 0) _exit(3);
    n += len;
  }
  _exit(0);
}

static void filter(int in, int out) {
  prctl(PR_SET_NAME, "filter", 0, 0, 0);
  static unsigned char buf[3000];
  uint64_t n = 0;
  for (;;) {
    ssize_t k = read(in, buf, sizeof buf);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) _exit(3);
    if (k == 0) _exit(0);
    for (ssize_t i = 0; i < k; i++) buf[i] ^= key(n + (uint64_t)i);
    if (write_all(out, buf, (size_t)k) != 0) _exit(3);
    n += (uint64_t)k;
    sleep_ms(1);
  }
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  uint64_t total = argc > 1 ? strtoull(argv[1], NULL, 10) : 0;
  const char* fifo = argc > 2 && argv[2][0] && strcmp(argv[2], "-") != 0 ? argv[2] : NULL;
  int consumer_sleep = argc > 3 ? atoi(argv[3]) : 10;
  signal(SIGPIPE, SIG_IGN);
  printf("pid=%d\n", getpid());
  int a[2], b[2];
  if (pipe(a) != 0) return 1;
  if (fifo) {
    unlink(fifo);
    if (mkfifo(fifo, 0600) != 0) {
      printf("pipeline BAD mkfifo %s: %s\n", fifo, strerror(errno));
      return 1;
    }
  } else if (pipe(b) != 0) {
    return 1;
  }
  pid_t prod = fork();
  if (prod == 0) {
    close(a[0]);
    if (!fifo) close(b[0]), close(b[1]);
    producer(a[1], total);
  }
  pid_t filt = fork();
  if (filt == 0) {
    close(a[1]);
    int out = fifo ? open(fifo, O_WRONLY) : b[1];
    if (out < 0) _exit(3);
    if (!fifo) close(b[0]);
    filter(a[0], out);
  }
  close(a[0]);
  close(a[1]);
  int in;
  if (fifo) {
    in = open(fifo, O_RDONLY);
    if (in < 0) {
      printf("pipeline BAD open %s: %s\n", fifo, strerror(errno));
      return 1;
    }
  } else {
    close(b[1]);
    in = b[0];
  }
  printf("pipeline started producer=%d filter=%d\n", prod, filt);

  unsigned char buf[4096];
  uint64_t n = 0;
  uint64_t sum = 1469598103934665603ull;  // FNV-1a over the consumed stream
  long last = now_ms();
  for (unsigned round = 0;; round++) {
    size_t want = 256 + (round * 131u) % (sizeof buf - 256);
    ssize_t k = read(in, buf, want);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) {
      printf("pipeline BAD read at %llu: %s\n", (unsigned long long)n, strerror(errno));
      return 1;
    }
    if (k == 0) break;
    for (ssize_t i = 0; i < k; i++, n++) {
      unsigned char expect = produced(n) ^ key(n);
      if (buf[i] != expect) {
        printf("pipeline BAD at %llu got %u want %u\n", (unsigned long long)n, buf[i], expect);
        return 1;
      }
      sum = (sum ^ buf[i]) * 1099511628211ull;
    }
    if (now_ms() - last >= 250) {
      last = now_ms();
      printf("consumed %llu ok sum=%016llx\n", (unsigned long long)n, (unsigned long long)sum);
    }
    if (consumer_sleep > 0) sleep_ms(consumer_sleep);
  }
  int st1 = 0, st2 = 0;
  waitpid(prod, &st1, 0);
  waitpid(filt, &st2, 0);
  if (fifo) unlink(fifo);
  if (total && n != total) {
    printf("pipeline BAD end of stream at %llu, want %llu\n", (unsigned long long)n, (unsigned long long)total);
    return 1;
  }
  if (!WIFEXITED(st1) || WEXITSTATUS(st1) != 0 || !WIFEXITED(st2) || WEXITSTATUS(st2) != 0) {
    printf("pipeline BAD producer status %d filter status %d\n", st1, st2);
    return 1;
  }
  printf("pipeline done %llu ok sum=%016llx\n", (unsigned long long)n, (unsigned long long)sum);
  return 0;
}
