// Large file contents a bundle must carry: a file deleted while open and a memfd, each of a few
// hundred MiB, far more than fits in the bundle's model section (docs/image-format.md).
//
//   big_contents [MIB]        (default 300; run in a scratch directory: it creates big.dat there)
//
// Sets up, in its working directory:
//   big.dat: MIB MiB of a known pattern, opened at offset MIB*1MiB/3 + 5, then unlinked;
//   a memfd "crbox-big" of MIB MiB of another pattern, at offset MIB*1MiB/2 + 7, with 1 MiB of it
//   (from MIB/2 MiB) mapped shared and one byte then written through the mapping.
// Prints "pid=<pid>", "ready sums=<file hash>,<memfd hash>", then "tick <n>" every 100 ms. On
// SIGUSR1 it checks everything from inside and prints "big ok sums=<file>,<memfd>" or
// "big BAD <what>": both contents hash as they did (every byte read back with pread), their sizes
// and read offsets are as they were, big.dat has no name (st_nlink 0), the mapping shows the
// memfd's bytes and a write through it reaches the memfd.
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check_signal.h"

#define MIB (1024u * 1024u)


// 8 bytes of the pattern at 8-byte word `w` of content `seed`: every word differs.
static uint64_t word(uint64_t w, uint64_t seed) {
  uint64_t x = (w + 1) * 0x9E3779B97F4A7C15ull ^ seed;
  x ^= x >> 31;
  return x * 0xBF58476D1CE4E5B9ull;
}

static int fill(int fd, size_t size, uint64_t seed) {
  static uint64_t buf[MIB / 8];
  for (size_t done = 0; done < size; done += MIB) {
    for (size_t i = 0; i < MIB / 8; i++) buf[i] = word(done / 8 + i, seed);
    if (write(fd, buf, MIB) != (ssize_t)MIB) return -1;
  }
  return 0;
}

// FNV-1a over 64-bit words of the whole content, read with pread (the offset stays put).
static uint64_t hash(int fd, size_t size) {
  static uint64_t buf[MIB / 8];
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t done = 0; done < size; done += MIB) {
    if (pread(fd, buf, MIB, (off_t)done) != (ssize_t)MIB) return 0;
    for (size_t i = 0; i < MIB / 8; i++) h = (h ^ buf[i]) * 0x100000001b3ull;
  }
  return h;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 300;
  const size_t size = mib * MIB;
  const off_t file_off = (off_t)(size / 3 + 5), memfd_off = (off_t)(size / 2 + 7);
  const size_t win = (mib / 2) * MIB;  // the mapped window's offset in the memfd

  int d = open("big.dat", O_RDWR | O_CREAT | O_TRUNC, 0640);
  if (d < 0 || fill(d, size, 1) != 0 || lseek(d, file_off, SEEK_SET) != file_off || unlink("big.dat") != 0) return 1;
  int m = memfd_create("crbox-big", 0);
  if (m < 0 || fill(m, size, 2) != 0 || lseek(m, memfd_off, SEEK_SET) != memfd_off) return 2;
  unsigned char* map = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_SHARED, m, (off_t)win);
  if (map == MAP_FAILED) return 3;
  map[100] ^= 0x5a;  // the memfd changes through the mapping; the hashes below include it
  const uint64_t file_sum = hash(d, size), memfd_sum = hash(m, size);

  handle_check_signal();
  printf("pid=%d\nready sums=%016llx,%016llx\n", getpid(), (unsigned long long)file_sum,
         (unsigned long long)memfd_sum);
  for (long n = 0;; n++) {
    struct timespec ts = {0, 100000000L};
    nanosleep(&ts, NULL);
    if (!check_asked) {
      printf("tick %ld\n", n);
      continue;
    }
    check_asked = 0;
    const char* bad = NULL;
    struct stat st;
    uint64_t fs = hash(d, size), ms = hash(m, size);
    unsigned char b = 0;
    if (fstat(d, &st) != 0 || (size_t)st.st_size != size)
      bad = "big.dat has the wrong size";
    else if (st.st_nlink != 0)
      bad = "big.dat has a name again";
    else if ((st.st_mode & 07777) != 0640)
      bad = "big.dat lost its mode";
    else if (lseek(d, 0, SEEK_CUR) != file_off)
      bad = "big.dat is at the wrong offset";
    else if (fs != file_sum)
      bad = "big.dat's content differs";
    else if (fstat(m, &st) != 0 || (size_t)st.st_size != size)
      bad = "the memfd has the wrong size";
    else if (lseek(m, 0, SEEK_CUR) != memfd_off)
      bad = "the memfd is at the wrong offset";
    else if (ms != memfd_sum)
      bad = "the memfd's content differs";
    else if (pread(m, &b, 1, (off_t)win + 100) != 1 || b != map[100])
      bad = "the mapping does not show the memfd";
    else {
      map[200] ^= 0xff;  // a write through the mapping reaches the memfd; undone after
      if (pread(m, &b, 1, (off_t)win + 200) != 1 || b != map[200]) bad = "the mapping is not shared with the memfd";
      map[200] ^= 0xff;
    }
    if (bad)
      printf("big BAD %s\n", bad);
    else
      printf("big ok sums=%016llx,%016llx\n", (unsigned long long)fs, (unsigned long long)ms);
  }
}
