// A busy loop that makes no system call between reports, so a checkpoint catches it in user
// mode with every register live. Also reads CLOCK_MONOTONIC through the vDSO.
//
//   ckpt_spin [period_ms=300]
//
// Two copies of the same recurrence advance in lockstep: one in registers (a local the
// compiler keeps there), one in memory. Every period it prints
//   "spin <n> steps=<count> t_ms=<monotonic ms> ok"   or   "spin <n> BAD <why>"
// ok when both copies agree, the step count matches them, and the clock did not go back.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static volatile uint64_t mem_x;
static volatile uint64_t mem_steps;

static uint64_t step(uint64_t x) { return x * 6364136223846793005ull + 1442695040888963407ull; }

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);  // the vDSO: no system call
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  long period = argc > 1 ? strtol(argv[1], NULL, 10) : 300;
  printf("pid=%ld\n", (long)getpid());
  uint64_t x = 12345, steps = 0;
  mem_x = x;
  mem_steps = 0;
  double last = now_ms(), start_period = last;
  for (long n = 0;;) {
    for (int i = 0; i < 100000; i++) {
      x = step(x);
      mem_x = step(mem_x);
      steps++;
      mem_steps = mem_steps + 1;
    }
    double t = now_ms();
    if (t < last) {
      printf("spin %ld BAD clock went back from %.3f to %.3f\n", n, last, t);
    }
    last = t;
    if (t - start_period >= period) {
      start_period = t;
      if (x != mem_x || steps != mem_steps)
        printf("spin %ld BAD x=%llx mem_x=%llx steps=%llu mem_steps=%llu\n", n, (unsigned long long)x,
               (unsigned long long)mem_x, (unsigned long long)steps, (unsigned long long)mem_steps);
      else
        printf("spin %ld steps=%llu t_ms=%.0f ok\n", n, (unsigned long long)steps, t);
      n++;
    }
  }
}
