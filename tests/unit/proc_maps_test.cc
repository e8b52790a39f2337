#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "checkpoint/proc/maps.h"
#include "util/error.h"
#include "util/files.h"

using namespace crbox;
using namespace crbox::proc;

TEST(ProcMaps, ParsesTypicalLines) {
  const char* text =
      "55d1c0a00000-55d1c0a02000 r--p 00000000 fd:01 1835069                    /usr/bin/cat\n"
      "55d1c0a02000-55d1c0a07000 r-xp 00002000 fd:01 1835069                    /usr/bin/cat\n"
      "55d1c1c3e000-55d1c1c5f000 rw-p 00000000 00:00 0                          [heap]\n"
      "7f0e2c000000-7f0e2c021000 rw-s 00000000 00:01 4096                       /dev/zero (deleted)\n"
      "7f0e2d000000-7f0e2d001000 ---p 00000000 00:00 0 \n"
      "7ffd4a1f3000-7ffd4a214000 rw-p 00000000 00:00 0                          [stack]\n"
      "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";
  auto v = parse_maps(text);
  ASSERT_EQ(v.size(), 7u);
  EXPECT_EQ(v[0].start, 0x55d1c0a00000u);
  EXPECT_EQ(v[0].end, 0x55d1c0a02000u);
  EXPECT_TRUE(v[0].read);
  EXPECT_FALSE(v[0].write);
  EXPECT_FALSE(v[0].exec);
  EXPECT_FALSE(v[0].shared);
  EXPECT_EQ(v[0].dev_major, 0xfdu);
  EXPECT_EQ(v[0].dev_minor, 1u);
  EXPECT_EQ(v[0].inode, 1835069u);
  EXPECT_EQ(v[0].path, "/usr/bin/cat");
  EXPECT_EQ(v[1].offset, 0x2000u);
  EXPECT_TRUE(v[1].exec);
  EXPECT_EQ(v[2].path, "[heap]");
  EXPECT_TRUE(v[3].shared);
  EXPECT_TRUE(v[3].deleted);
  EXPECT_EQ(v[3].path, "/dev/zero");
  EXPECT_EQ(v[4].path, "");
  EXPECT_FALSE(v[4].read || v[4].write || v[4].exec);
  EXPECT_EQ(v[5].path, "[stack]");
  EXPECT_EQ(v[6].start, 0xffffffffff600000u);
  EXPECT_EQ(v[6].path, "[vsyscall]");
}

TEST(ProcMaps, PathWithSpacesAndDeletedSuffix) {
  auto v = parse_maps(
      "7f0000000000-7f0000001000 r--p 00001000 08:02 42     /tmp/my dir/a file (deleted)\n"
      "7f0000001000-7f0000002000 r--p 00000000 08:02 43     /tmp/  two  spaces\n");
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].path, "/tmp/my dir/a file");
  EXPECT_TRUE(v[0].deleted);
  EXPECT_EQ(v[0].offset, 0x1000u);
  EXPECT_EQ(v[1].path, "/tmp/  two  spaces");
  EXPECT_FALSE(v[1].deleted);
}

TEST(ProcMaps, RejectsMalformedLines) {
  EXPECT_THROW(parse_maps("garbage\n"), Error);
  EXPECT_THROW(parse_maps("1000-2000 rwzp 00000000 00:00 0\n"), Error);
  EXPECT_THROW(parse_maps("2000-1000 rw-p 00000000 00:00 0\n"), Error);
  EXPECT_THROW(parse_maps("1000-2000 rw-p 00000000 0000 0\n"), Error);
  try {
    parse_maps("1000-2000 rw-q 00000000 00:00 0\n");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("1000-2000 rw-q"), std::string::npos) << e.what();
  }
}

TEST(ProcMaps, ReadsOwnMaps) {
  long ps = sysconf(_SC_PAGESIZE);
  void* p = mmap(nullptr, 3 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  // Split it into three VMAs with distinct protections so none merges with a neighbour.
  ASSERT_EQ(mprotect(static_cast<char*>(p) + ps, ps, PROT_READ), 0);
  auto v = parse_maps(read_file("/proc/self/maps"));
  bool found = false, heap_or_stack = false;
  for (auto& e : v) {
    if (e.start == reinterpret_cast<uint64_t>(p) + ps) {
      found = true;
      EXPECT_EQ(e.end, e.start + ps);
      EXPECT_TRUE(e.read);
      EXPECT_FALSE(e.write);
      EXPECT_FALSE(e.shared);
    }
    if (e.path == "[stack]") heap_or_stack = true;
  }
  EXPECT_TRUE(found);
  EXPECT_TRUE(heap_or_stack);
  munmap(p, 3 * ps);
}
