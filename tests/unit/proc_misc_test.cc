#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <gtest/gtest.h>
#include <sys/auxv.h>
#include <sys/resource.h>
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

TEST(ProcLimits, ParsesRowsInResourceOrder) {
  const char* text =
      "Limit                     Soft Limit           Hard Limit           Units     \n"
      "Max cpu time              unlimited            unlimited            seconds   \n"
      "Max file size             unlimited            unlimited            bytes     \n"
      "Max data size             unlimited            unlimited            bytes     \n"
      "Max stack size            8388608              unlimited            bytes     \n"
      "Max core file size        0                    unlimited            bytes     \n"
      "Max resident set          unlimited            unlimited            bytes     \n"
      "Max processes             95312                95312                processes \n"
      "Max open files            1024                 524288               files     \n"
      "Max locked memory         8388608              8388608              bytes     \n"
      "Max address space         unlimited            unlimited            bytes     \n"
      "Max file locks            unlimited            unlimited            locks     \n"
      "Max pending signals       95312                95312                signals   \n"
      "Max msgqueue size         819200               819200               bytes     \n"
      "Max nice priority         0                    0                    \n"
      "Max realtime priority     0                    0                    \n"
      "Max realtime timeout      unlimited            unlimited            us        \n";
  auto l = parse_limits(text);
  ASSERT_EQ(l.size(), 16u);
  EXPECT_EQ(l[RLIMIT_STACK].resource, RLIMIT_STACK);
  EXPECT_EQ(l[RLIMIT_STACK].soft, 8388608u);
  EXPECT_EQ(l[RLIMIT_STACK].hard, RLIM_INFINITY);
  EXPECT_EQ(l[RLIMIT_NOFILE].soft, 1024u);
  EXPECT_EQ(l[RLIMIT_NOFILE].hard, 524288u);
  EXPECT_EQ(l[RLIMIT_NICE].soft, 0u);  // a row without a unit
  EXPECT_EQ(l[RLIMIT_RTTIME].hard, RLIM_INFINITY);
}

TEST(ProcLimits, MalformedOrShortIsAnError) {
  EXPECT_THROW(parse_limits("Limit  Soft Limit  Hard Limit  Units\nMax cpu time              lots                 unlimited\n"),
               Error);
  EXPECT_THROW(parse_limits("Limit                     Soft Limit           Hard Limit           Units     \n"
                            "Max cpu time              unlimited            unlimited            seconds   \n"),
               Error);
}

// What the kernel prints for this process is what getrlimit(2) says.
TEST(ProcLimits, ReadsOwnLimits) {
  auto l = parse_limits(read_file("/proc/self/limits"));
  ASSERT_GE(l.size(), static_cast<size_t>(RLIM_NLIMITS));
  for (int r = 0; r < RLIM_NLIMITS; r++) {
    rlimit lim{};
    ASSERT_EQ(getrlimit(static_cast<__rlimit_resource>(r), &lim), 0);
    EXPECT_EQ(l[r].soft, lim.rlim_cur) << "resource " << r;
    EXPECT_EQ(l[r].hard, lim.rlim_max) << "resource " << r;
  }
}
