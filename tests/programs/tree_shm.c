// A parent and a child taking turns on counters in memory they share, and checking private
// memory inherited across fork.
//
//   tree_shm [shm_name|-] [period_ms=5]
//
// Two shared regions, each holding {turn, parent count, child count}: one MAP_SHARED|
// MAP_ANONYMOUS, one a /dev/shm file (shm_open). With a name ("/crbox-xyz"), that file stays
// linked (the caller removes it); with "-" (the default) a unique name is used and unlinked as
// soon as both processes have it mapped, so only the mappings keep it alive.
// The two take turns on each region: the parent waits for turn 0, checks that the child's count
// equals its own (the child did its step), bumps its count and passes the turn; the child waits
// for turn 1, checks its count is one behind the parent's, bumps it and passes the turn back. A
// write that the other process does not see stalls the protocol, which is reported after 3 s.
// Private memory: 1 MiB filled with a pattern before fork; the child overwrites its copy with
// another pattern; each side checks its own copy every round (copy-on-write kept apart).
// The child (named "shm-child") publishes its own verdict in the shared region.
//
// Prints "pid=<pid>", "child=<pid>", then about every 200 ms
//   "shm parent=<n> child=<m> fparent=<n> fchild=<m> ok"   or "shm BAD <why>".
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct region {
  atomic_int turn;  // 0: parent's turn, 1: child's
  atomic_long parent_count, child_count;
  atomic_int child_bad;  // the child's verdict on this region and its private memory
  atomic_long child_rounds;
};

#define PRIV_WORDS (1u << 17)  // 1 MiB of uint64

static unsigned long long* priv;

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

static unsigned long long pattern(unsigned i, int who) { return ((unsigned long long)i * 0x9E3779B97F4A7C15ull) ^ (who ? 0xC4C4ull : 0x5A5Aull); }

static int priv_ok(int who) {
  for (unsigned i = 0; i < PRIV_WORDS; i += 61)
    if (priv[i] != pattern(i, who)) return 0;
  return 1;
}

// One step on a region for `who` (0 parent, 1 child); returns 1 when the step was taken,
// 0 when it is not our turn yet, -1 on a broken invariant.
static int step(struct region* r, int who) {
  if (atomic_load(&r->turn) != who) return 0;
  long p = atomic_load(&r->parent_count), c = atomic_load(&r->child_count);
  if (who == 0) {
    if (c != p) return -1;
    atomic_store(&r->parent_count, p + 1);
  } else {
    if (c != p - 1) return -1;
    atomic_store(&r->child_count, c + 1);
  }
  atomic_store(&r->turn, !who);
  return 1;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char* given = argc > 1 && strcmp(argv[1], "-") != 0 ? argv[1] : NULL;
  int period = argc > 2 ? atoi(argv[2]) : 5;
  if (period < 1) period = 1;
  printf("pid=%d\n", getpid());

  struct region* anon = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  char name[128];
  if (given) {
    snprintf(name, sizeof name, "%s", given);
  } else {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(name, sizeof name, "/crbox-tree-shm-%d-%ld", getpid(), (long)ts.tv_nsec);
  }
  int fd = shm_open(name, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (anon == MAP_FAILED || fd < 0 || ftruncate(fd, 8192) != 0) {
    printf("shm BAD setup: %s\n", strerror(errno));
    return 1;
  }
  struct region* file = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (file == MAP_FAILED) {
    printf("shm BAD mmap %s: %s\n", name, strerror(errno));
    return 1;
  }
  priv = mmap(NULL, PRIV_WORDS * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (priv == MAP_FAILED) return 1;
  for (unsigned i = 0; i < PRIV_WORDS; i++) priv[i] = pattern(i, 0);

  pid_t child = fork();
  if (child < 0) return 1;
  if (child == 0) {
    prctl(PR_SET_NAME, "shm-child", 0, 0, 0);
    pid_t parent = getppid();
    for (unsigned i = 0; i < PRIV_WORDS; i++) priv[i] = pattern(i, 1);
    for (;;) {
      int sa = step(anon, 1), sf = step(file, 1);
      int bad = 0;
      if (sa < 0) bad |= 1;
      if (sf < 0) bad |= 2;
      if (!priv_ok(1)) bad |= 4;
      if (bad) atomic_fetch_or(&anon->child_bad, bad);
      atomic_fetch_add(&anon->child_rounds, 1);
      if (getppid() != parent) _exit(1);  // the parent is gone
      sleep_ms(period);
    }
  }
  printf("child=%d\n", child);
  // Both have the file mapped now (the child inherited the mapping).
  if (!given) shm_unlink(name);

  long last_print = now_ms();
  long seen_a = 0, seen_f = 0;
  int idle_a = 0, idle_f = 0;  // rounds without progress per region (counted, not timed: clocks may jump across a restart)
  for (;;) {
    int sa = step(anon, 0), sf = step(file, 0);
    if (sa < 0 || sf < 0) {
      printf("shm BAD parent sees no step from the child: anon parent=%ld child=%ld, file parent=%ld child=%ld\n",
             atomic_load(&anon->parent_count), atomic_load(&anon->child_count), atomic_load(&file->parent_count),
             atomic_load(&file->child_count));
      sleep_ms(200);
      continue;
    }
    long pa = atomic_load(&anon->parent_count), pf = atomic_load(&file->parent_count);
    idle_a = pa != seen_a ? 0 : idle_a + 1;
    idle_f = pf != seen_f ? 0 : idle_f + 1;
    seen_a = pa;
    seen_f = pf;
    if (now_ms() - last_print >= 200) {
      last_print = now_ms();
      int cb = atomic_load(&anon->child_bad);
      int mine = priv_ok(0);
      if ((idle_a > idle_f ? idle_a : idle_f) * period > 2000)
        printf("shm BAD stalled: anon parent=%ld child=%ld turn=%d, file parent=%ld child=%ld turn=%d\n", pa,
               atomic_load(&anon->child_count), atomic_load(&anon->turn), pf, atomic_load(&file->child_count),
               atomic_load(&file->turn));
      else if (cb || !mine)
        printf("shm BAD child_bad=%d (1 anon, 2 file, 4 private) parent_private=%s\n", cb, mine ? "ok" : "bad");
      else
        printf("shm parent=%ld child=%ld fparent=%ld fchild=%ld ok\n", pa, atomic_load(&anon->child_count), pf,
               atomic_load(&file->child_count));
    }
    sleep_ms(period);
  }
}
