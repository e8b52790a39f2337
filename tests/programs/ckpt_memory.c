// Holds a known pattern in anonymous memory and checks it again and again.
//
//   ckpt_memory MiB [seed=1] [interval_ms=200]
//
// Maps MiB MiB of anonymous memory and fills every 64-bit word with a value derived from the
// seed and the word's index. Around it, three smaller regions exercise what a checkpoint may
// treat specially: a sparse region where only every 4th page was ever touched (the others
// must still read as zero), a region explicitly written with zeros, and a small malloc'd
// block on the heap. Prints "pid=<pid>", then "ready sum=<checksum>".
// Every interval_ms (0: never), and on SIGUSR1, it re-reads everything and prints
//   sum=<checksum> pid=<pid> check=ok        or        sum=<checksum> pid=<pid> check=BAD <where>
// The checksum covers the main region only, so a test compares it with the "ready" line.
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SPARSE_BYTES (8u << 20)
#define ZERO_BYTES (4u << 20)
#define HEAP_BYTES (64u << 10)
#define PAGE 4096u

static volatile sig_atomic_t want_check = 0;
static void on_usr1(int sig) {
  (void)sig;
  want_check = 1;
}

static inline uint64_t word_at(uint64_t seed, uint64_t i) {
  uint64_t x = (seed * 0x9E3779B97F4A7C15ull) ^ (i * 0xBF58476D1CE4E5B9ull);
  return x ^ (x >> 29);
}

static uint64_t* map_anon(size_t bytes) {
  void* p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    exit(2);
  }
  return (uint64_t*)p;
}

static size_t main_words, sparse_words, zero_words, heap_words;
static uint64_t *mainbuf, *sparse, *zeros, *heap;
static uint64_t seed;

static uint64_t fill(void) {
  uint64_t sum = 0;
  for (size_t i = 0; i < main_words; i++) {
    uint64_t w = word_at(seed, i);
    mainbuf[i] = w;
    sum += w * (i | 1);
  }
  size_t per_page = PAGE / 8;
  for (size_t i = 0; i < sparse_words; i += 4 * per_page) sparse[i] = word_at(seed + 1, i);
  memset(zeros, 0, ZERO_BYTES);
  for (size_t i = 0; i < heap_words; i++) heap[i] = word_at(seed + 2, i);
  return sum;
}

// Returns the main checksum; writes a description of the first mismatch into `bad`.
static uint64_t check(char* bad, size_t badlen) {
  uint64_t sum = 0;
  bad[0] = 0;
  for (size_t i = 0; i < main_words; i++) {
    uint64_t w = mainbuf[i];
    sum += w * (i | 1);
    if (!bad[0] && w != word_at(seed, i))
      snprintf(bad, badlen, "main word %zu (offset %zu) is %#llx", i, i * 8, (unsigned long long)w);
  }
  size_t per_page = PAGE / 8;
  for (size_t i = 0; i < sparse_words && !bad[0]; i++) {
    uint64_t want = (i % (4 * per_page) == 0) ? word_at(seed + 1, i) : 0;
    if (sparse[i] != want) snprintf(bad, badlen, "sparse word %zu is %#llx", i, (unsigned long long)sparse[i]);
  }
  for (size_t i = 0; i < zero_words && !bad[0]; i++)
    if (zeros[i] != 0) snprintf(bad, badlen, "zero word %zu is %#llx", i, (unsigned long long)zeros[i]);
  for (size_t i = 0; i < heap_words && !bad[0]; i++)
    if (heap[i] != word_at(seed + 2, i)) snprintf(bad, badlen, "heap word %zu", i);
  return sum;
}

static void report(void) {
  char bad[160];
  uint64_t sum = check(bad, sizeof bad);
  if (bad[0])
    printf("sum=%llu pid=%ld check=BAD %s\n", (unsigned long long)sum, (long)syscall(SYS_getpid), bad);
  else
    printf("sum=%llu pid=%ld check=ok\n", (unsigned long long)sum, (long)syscall(SYS_getpid));
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) {
    fprintf(stderr, "usage: ckpt_memory MiB [seed] [interval_ms]\n");
    return 2;
  }
  size_t mib = strtoull(argv[1], NULL, 10);
  seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
  long interval = argc > 3 ? strtol(argv[3], NULL, 10) : 200;

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);

  main_words = mib * (1u << 20) / 8;
  sparse_words = SPARSE_BYTES / 8;
  zero_words = ZERO_BYTES / 8;
  heap_words = HEAP_BYTES / 8;
  mainbuf = main_words ? map_anon(main_words * 8) : NULL;
  sparse = map_anon(SPARSE_BYTES);
  zeros = map_anon(ZERO_BYTES);
  heap = malloc(HEAP_BYTES);
  if (!heap) return 2;

  printf("pid=%ld\n", (long)getpid());
  uint64_t sum = fill();
  printf("ready sum=%llu\n", (unsigned long long)sum);

  for (;;) {
    struct timespec req, rem;
    if (interval > 0) {
      req.tv_sec = interval / 1000;
      req.tv_nsec = (interval % 1000) * 1000000L;
    } else {
      req.tv_sec = 3600;
      req.tv_nsec = 0;
    }
    while (nanosleep(&req, &rem) == -1 && errno == EINTR) {
      if (want_check) break;
      req = rem;
    }
    if (want_check || interval > 0) {
      want_check = 0;
      report();
    }
  }
}
