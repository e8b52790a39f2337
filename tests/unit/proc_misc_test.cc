#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <gtest/gtest.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "checkpoint/proc/misc.h"
#include "checkpoint/proc/pagemap.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/files.h"

using namespace crbox;
using namespace crbox::proc;

TEST(ProcAuxv, ParsesPairsUpToAtNull) {
  uint64_t words[] = {AT_PAGESZ, 4096, AT_ENTRY, 0x401000, AT_NULL, 0, 99, 99};
  auto v = parse_auxv(std::string_view(reinterpret_cast<const char*>(words), sizeof words));
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0], std::make_pair(uint64_t{AT_PAGESZ}, uint64_t{4096}));
  EXPECT_EQ(v[2].first, uint64_t{AT_NULL});
  EXPECT_THROW(parse_auxv(std::string_view(reinterpret_cast<const char*>(words), 32)), Error);
  EXPECT_THROW(parse_auxv(""), Error);
}

TEST(ProcAuxv, ReadsOwnAuxv) {
  auto v = parse_auxv(read_file("/proc/self/auxv"));
  bool pagesz = false;
  for (auto [t, val] : v)
    if (t == AT_PAGESZ) {
      pagesz = true;
      EXPECT_EQ(val, getauxval(AT_PAGESZ));
    }
  EXPECT_TRUE(pagesz);
  EXPECT_EQ(v.back().first, uint64_t{AT_NULL});
}

TEST(ProcChildren, ParsesSpaceSeparated) {
  EXPECT_EQ(parse_children("12 345 6 "), (std::vector<pid_t>{12, 345, 6}));
  EXPECT_TRUE(parse_children("").empty());
  EXPECT_THROW(parse_children("12 x"), Error);
}

TEST(ProcChildren, ReadsOwnChildren) {
  pid_t c = fork();
  ASSERT_GE(c, 0);
  if (c == 0) {
    pause();
    _exit(0);
  }
  auto v = parse_children(read_file("/proc/self/task/" + std::to_string(gettid()) + "/children"));
  kill(c, SIGKILL);
  waitpid(c, nullptr, 0);
  EXPECT_NE(std::find(v.begin(), v.end(), c), v.end());
}

TEST(ProcTimens, ParsesNamesAndNumbers) {
  auto t = parse_timens_offsets("monotonic           5         7\nboottime           -2 500000000\n");
  EXPECT_EQ(t.monotonic_ns, 5000000007);
  EXPECT_EQ(t.boottime_ns, -1500000000);
  auto n = parse_timens_offsets("1 3 0\n7 0 1\n");
  EXPECT_EQ(n.monotonic_ns, 3000000000);
  EXPECT_EQ(n.boottime_ns, 1);
  EXPECT_THROW(parse_timens_offsets("monotonic 1\n"), Error);
  EXPECT_THROW(parse_timens_offsets("monotonic 1 1000000000\n"), Error);
}

TEST(ProcTimens, ReadsOwnOffsets) {
  auto text = try_read_file("/proc/self/timens_offsets");
  if (!text) GTEST_SKIP() << "kernel without time namespaces";
  EXPECT_NO_THROW(parse_timens_offsets(*text));
}

TEST(ProcPagemap, DecodesBits) {
  auto e = decode_pagemap((1ull << 63) | (1ull << 61) | (1ull << 56) | (1ull << 55) | 0x1234);
  EXPECT_TRUE(e.present);
  EXPECT_FALSE(e.swapped);
  EXPECT_TRUE(e.file_or_shared);
  EXPECT_TRUE(e.exclusive);
  EXPECT_TRUE(e.soft_dirty);
  EXPECT_EQ(e.pfn, 0x1234u);
  auto s = decode_pagemap((1ull << 62) | 0x55);
  EXPECT_FALSE(s.present);
  EXPECT_TRUE(s.swapped);
  EXPECT_EQ(s.pfn, 0u);  // swap type/offset, not a pfn
  auto z = decode_pagemap(0);
  EXPECT_FALSE(z.present || z.swapped || z.file_or_shared || z.exclusive || z.soft_dirty);
}

TEST(ProcPagemap, TouchedVersusUntouchedPages) {
  long ps = sysconf(_SC_PAGESIZE);
  constexpr int kPages = 8;
  auto* p = static_cast<char*>(mmap(nullptr, kPages * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  p[0 * ps] = 1;
  p[3 * ps + 17] = 2;
  p[7 * ps + ps - 1] = 3;
  UniqueFd fd(open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd);
  auto raw = read_pagemap(fd.get(), reinterpret_cast<uint64_t>(p), kPages);
  ASSERT_EQ(raw.size(), size_t{kPages});
  for (int i = 0; i < kPages; ++i) {
    bool touched = i == 0 || i == 3 || i == 7;
    auto e = decode_pagemap(raw[i]);
    EXPECT_EQ(e.present || e.swapped, touched) << "page " << i;
    if (touched) {
      EXPECT_FALSE(e.file_or_shared) << "page " << i;
    }
  }
  munmap(p, kPages * ps);
}

TEST(ProcPagemap, ReadBeyondAddressSpaceFails) {
  UniqueFd fd(open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd);
  EXPECT_THROW(read_pagemap(fd.get(), 0xfffffffffffff000ull, 4), Error);
}
