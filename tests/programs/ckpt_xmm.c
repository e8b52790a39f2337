// Keeps distinctive values in vector and general registers across a sleep or a busy loop,
// and checks they are intact afterwards.
//
//   ckpt_xmm [sleep|spin] [auto|sse|avx|avx512] [period_ms=300]
//
// Each round, one asm block loads fresh values (derived from the round number) into
// xmm8-15 (sse), ymm8-15 (avx: all 256 bits) or zmm8-15 and zmm16-23 (avx512: all 512 bits),
// plus r12-r15; then either sleeps with a raw nanosleep syscall (the kernel keeps the user's
// vector and general registers across a syscall, except rax, rcx and r11) or spins without any
// syscall; then compares every register with the values in memory. Nothing between the load
// and the compare is C code, so no library call can clobber them: a checkpoint taken during
// the round must bring them back exactly. MXCSR and the x87 control word are set to
// non-default values once at start and checked every round.
// Prints "xmm level=<level> mode=<mode> pid=<pid>", then per round
//   "regs ok <round>"  or  "regs CORRUPT <round> mask=<bits> mxcsr=<hex> fpucw=<hex>"
// where mask bit N (8-23) is vector register N and bits 32-35 are r12-r15.
#include <cpuid.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { SSE = 1, AVX = 2, AVX512 = 3 };

static uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

static uint64_t xgetbv0(void) {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}

static int best_level(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return SSE;
  if (!(c & (1u << 27)) || !(c & (1u << 28))) return SSE;  // OSXSAVE, AVX
  uint64_t xcr0 = xgetbv0();
  if ((xcr0 & 6) != 6) return SSE;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 16)) && (xcr0 & 0xE6) == 0xE6) return AVX512;
  return AVX;
}

// 16 slots of 64 bytes: vector registers; then 4 words for r12-r15.
struct vals {
  uint64_t v[16][8];
  uint64_t gpr[4];
} __attribute__((aligned(64)));

#define SLEEP_OR_SPIN                                                        \
  "test %[spin], %[spin]\n\t"                                                \
  "jnz 3f\n\t"                                                               \
  "mov $" "35" ", %%eax\n\t" /* SYS_nanosleep; an EINTR return is fine */     \
  "syscall\n\t"                                                              \
  "jmp 4f\n\t"                                                               \
  "3: mov %[spin], %%rcx\n\t"                                                \
  "5: dec %%rcx\n\t"                                                         \
  "jnz 5b\n\t"                                                               \
  "4:\n\t"

#define LOAD_GPR                     \
  "mov 1024(%[v]), %%r12\n\t"        \
  "mov 1032(%[v]), %%r13\n\t"        \
  "mov 1040(%[v]), %%r14\n\t"        \
  "mov 1048(%[v]), %%r15\n\t"
#define CHECK_GPR(reg, off, bit)     \
  "cmp " #off "(%[v]), %%" #reg "\n\t" \
  "je 1f\n\t"                        \
  "bts $" #bit ", %[bad]\n\t"         \
  "1:\n\t"
#define CHECK_GPRS                                                                              \
  CHECK_GPR(r12, 1024, 32) CHECK_GPR(r13, 1032, 33) CHECK_GPR(r14, 1040, 34) CHECK_GPR(r15, 1048, 35)

#define SSE_LOAD(n) "movdqu " #n "*64(%[v]), %%xmm" #n "\n\t"
#define SSE_CHECK(n)                   \
  "movdqu " #n "*64(%[v]), %%xmm0\n\t" \
  "pcmpeqb %%xmm" #n ", %%xmm0\n\t"    \
  "pmovmskb %%xmm0, %%eax\n\t"         \
  "cmp $0xffff, %%eax\n\t"             \
  "je 1f\n\t"                          \
  "bts $" #n ", %[bad]\n\t"        \
  "1:\n\t"

#define AVX_LOAD(n) "vmovdqu " #n "*64(%[v]), %%ymm" #n "\n\t"
#define AVX_CHECK(n)                                \
  "vpcmpeqb " #n "*64(%[v]), %%ymm" #n ", %%ymm0\n\t" \
  "vpmovmskb %%ymm0, %%eax\n\t"                     \
  "cmp $-1, %%eax\n\t"                              \
  "je 1f\n\t"                                       \
  "bts $" #n ", %[bad]\n\t"                     \
  "1:\n\t"

// zmm8-15 live in slots 8-15; zmm16-23 in slots 0-7.
#define Z_LOAD(r, slot) "vmovdqu64 " #slot "*64(%[v]), %%zmm" #r "\n\t"
#define Z_CHECK(r, slot)                                   \
  "vpcmpeqq " #slot "*64(%[v]), %%zmm" #r ", %%k0\n\t"     \
  "kmovw %%k0, %%eax\n\t"                                  \
  "and $0xff, %%eax\n\t"                                   \
  "cmp $0xff, %%eax\n\t"                                   \
  "je 1f\n\t"                                              \
  "bts $" #r ", %[bad]\n\t"                            \
  "1:\n\t"

#define GPR_CLOBBERS "rax", "rcx", "r11", "r12", "r13", "r14", "r15", "memory", "cc"
#define XMM_CLOBBERS \
  "xmm0", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

static uint64_t round_sse(const struct vals* v, const struct timespec* ts, uint64_t spin) {
  uint64_t bad;
  __asm__ volatile(
      "xor %[bad], %[bad]\n\t" SSE_LOAD(8) SSE_LOAD(9) SSE_LOAD(10) SSE_LOAD(11) SSE_LOAD(12) SSE_LOAD(13)
          SSE_LOAD(14) SSE_LOAD(15) LOAD_GPR SLEEP_OR_SPIN SSE_CHECK(8) SSE_CHECK(9) SSE_CHECK(10)
              SSE_CHECK(11) SSE_CHECK(12) SSE_CHECK(13) SSE_CHECK(14) SSE_CHECK(15) CHECK_GPRS
      : [bad] "=&r"(bad)
      : [v] "r"(v), [spin] "r"(spin), "D"(ts), "S"(0L)
      : GPR_CLOBBERS, XMM_CLOBBERS);
  return bad;
}

static uint64_t round_avx(const struct vals* v, const struct timespec* ts, uint64_t spin) {
  uint64_t bad;
  __asm__ volatile(
      "xor %[bad], %[bad]\n\t" AVX_LOAD(8) AVX_LOAD(9) AVX_LOAD(10) AVX_LOAD(11) AVX_LOAD(12) AVX_LOAD(13)
          AVX_LOAD(14) AVX_LOAD(15) LOAD_GPR SLEEP_OR_SPIN AVX_CHECK(8) AVX_CHECK(9) AVX_CHECK(10)
              AVX_CHECK(11) AVX_CHECK(12) AVX_CHECK(13) AVX_CHECK(14) AVX_CHECK(15) CHECK_GPRS
                  "vzeroupper\n\t"
      : [bad] "=&r"(bad)
      : [v] "r"(v), [spin] "r"(spin), "D"(ts), "S"(0L)
      : GPR_CLOBBERS, XMM_CLOBBERS);
  return bad;
}

// zmm16-31 are not named as clobbers: this file is compiled without -mavx512f, so the
// compiler never allocates them (and may not know their names).
static uint64_t round_avx512(const struct vals* v, const struct timespec* ts, uint64_t spin) {
  uint64_t bad;
  __asm__ volatile(
      "xor %[bad], %[bad]\n\t" Z_LOAD(8, 8) Z_LOAD(9, 9) Z_LOAD(10, 10) Z_LOAD(11, 11) Z_LOAD(12, 12)
          Z_LOAD(13, 13) Z_LOAD(14, 14) Z_LOAD(15, 15) Z_LOAD(16, 0) Z_LOAD(17, 1) Z_LOAD(18, 2)
              Z_LOAD(19, 3) Z_LOAD(20, 4) Z_LOAD(21, 5) Z_LOAD(22, 6) Z_LOAD(23, 7) LOAD_GPR SLEEP_OR_SPIN
                  Z_CHECK(8, 8) Z_CHECK(9, 9) Z_CHECK(10, 10) Z_CHECK(11, 11) Z_CHECK(12, 12) Z_CHECK(13, 13)
                      Z_CHECK(14, 14) Z_CHECK(15, 15) Z_CHECK(16, 0) Z_CHECK(17, 1) Z_CHECK(18, 2)
                          Z_CHECK(19, 3) Z_CHECK(20, 4) Z_CHECK(21, 5) Z_CHECK(22, 6) Z_CHECK(23, 7)
                              CHECK_GPRS "vzeroupper\n\t"
      : [bad] "=&r"(bad)
      : [v] "r"(v), [spin] "r"(spin), "D"(ts), "S"(0L)
      : GPR_CLOBBERS, XMM_CLOBBERS);
  return bad;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char* mode = argc > 1 ? argv[1] : "sleep";
  const char* lvl = argc > 2 ? argv[2] : "auto";
  long period = argc > 3 ? strtol(argv[3], NULL, 10) : 300;
  int spin_mode = strcmp(mode, "spin") == 0;
  if (!spin_mode && strcmp(mode, "sleep") != 0) {
    fprintf(stderr, "usage: ckpt_xmm [sleep|spin] [auto|sse|avx|avx512] [period_ms]\n");
    return 2;
  }
  int best = best_level(), level = best;
  if (strcmp(lvl, "sse") == 0) level = SSE;
  else if (strcmp(lvl, "avx") == 0) level = AVX;
  else if (strcmp(lvl, "avx512") == 0) level = AVX512;
  if (level > best) {
    fprintf(stderr, "ckpt_xmm: this CPU does not support level %s\n", lvl);
    return 2;
  }
  static const char* names[] = {"", "sse", "avx", "avx512"};

  // Non-default floating-point control state: round toward zero, flush-to-zero,
  // denormals-are-zero; x87 round toward zero.
  const uint32_t want_mxcsr = 0x1F80u | 0x6000u | 0x8000u | 0x40u;
  const uint16_t want_cw = 0x0F7F;
  __asm__ volatile("ldmxcsr %0" ::"m"(want_mxcsr));
  __asm__ volatile("fldcw %0" ::"m"(want_cw));

  // Calibrate the spin so one round takes about `period` ms.
  uint64_t spin = 0;
  if (spin_mode) {
    struct timespec t0, t1;
    uint64_t n = 1u << 24;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    __asm__ volatile("mov %0, %%rcx\n\t1: dec %%rcx\n\tjnz 1b" ::"r"(n) : "rcx", "cc");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
    if (ns < 1) ns = 1;
    spin = (uint64_t)((double)n * (period * 1e6) / ns);
    if (spin == 0) spin = 1;
  }
  struct timespec ts = {period / 1000, (period % 1000) * 1000000L};

  printf("xmm level=%s mode=%s pid=%ld\n", names[level], mode, (long)getpid());
  static struct vals v;
  for (uint64_t round = 0;; round++) {
    for (int s = 0; s < 16; s++)
      for (int w = 0; w < 8; w++) v.v[s][w] = mix(round * 1000 + (uint64_t)(s * 8 + w));
    for (int g = 0; g < 4; g++) v.gpr[g] = mix(round * 1000 + 500 + (uint64_t)g);
    uint64_t bad = level == SSE ? round_sse(&v, &ts, spin)
                   : level == AVX ? round_avx(&v, &ts, spin)
                                  : round_avx512(&v, &ts, spin);
    uint32_t mxcsr;
    uint16_t cw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    // The exception flag bits (0-5) of MXCSR may be set by arithmetic; ignore them.
    if (bad == 0 && (mxcsr & ~0x3Fu) == want_mxcsr && cw == want_cw)
      printf("regs ok %llu\n", (unsigned long long)round);
    else
      printf("regs CORRUPT %llu mask=%#llx mxcsr=%#x fpucw=%#x\n", (unsigned long long)round,
             (unsigned long long)bad, mxcsr, cw);
  }
}
