#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "checkpoint/proc/fdinfo.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/files.h"

using namespace crbox;
using namespace crbox::proc;

TEST(ProcFdinfo, ParsesOctalFlagsAndExtras) {
  auto fi = parse_fdinfo(
      "pos:\t12345\nflags:\t02102002\nmnt_id:\t26\nino:\t987\n"
      "tfd:        5 events:       19 data:                5  pos:0 ino:1a dev:f\n"
      "tfd:        6 events:       19 data:                6  pos:0 ino:1b dev:f\n");
  EXPECT_EQ(fi.pos, 12345u);
  EXPECT_EQ(fi.flags, static_cast<uint32_t>(O_CLOEXEC | 0100000 /* kernel O_LARGEFILE */ | O_APPEND | O_RDWR));
  EXPECT_EQ(fi.mnt_id, 26u);
  EXPECT_EQ(fi.ino, 987u);
  ASSERT_EQ(fi.extra.count("tfd"), 1u);
  EXPECT_EQ(fi.extra["tfd"].substr(0, 6), "5 even");
}

TEST(ProcFdinfo, MissingOptionalLines) {
  auto fi = parse_fdinfo("pos:\t0\nflags:\t00\n");
  EXPECT_EQ(fi.flags, 0u);
  EXPECT_EQ(fi.mnt_id, 0u);
  EXPECT_TRUE(fi.extra.empty());
}

TEST(ProcFdinfo, RejectsMalformed) {
  EXPECT_THROW(parse_fdinfo("pos:\t0\nflags:\t0800\n"), Error);  // 8 is not octal
  EXPECT_THROW(parse_fdinfo("flags:\t0\n"), Error);
  EXPECT_THROW(parse_fdinfo("pos:\tx\nflags:\t0\n"), Error);
}

TEST(ProcFdinfo, ReadsOwnFds) {
  UniqueFd fd(open("/proc/self/stat", O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  ASSERT_TRUE(fd);
  char buf[10];
  ASSERT_EQ(read(fd.get(), buf, sizeof buf), 10);
  auto fi = parse_fdinfo(read_file("/proc/self/fdinfo/" + std::to_string(fd.get())));
  EXPECT_EQ(fi.pos, 10u);
  EXPECT_EQ(fi.flags & O_ACCMODE, static_cast<uint32_t>(O_RDONLY));
  EXPECT_TRUE(fi.flags & O_CLOEXEC);
  EXPECT_TRUE(fi.flags & O_NONBLOCK);
  EXPECT_NE(fi.mnt_id, 0u);

  UniqueFd ev(eventfd(7, EFD_CLOEXEC));
  ASSERT_TRUE(ev);
  auto e = parse_fdinfo(read_file("/proc/self/fdinfo/" + std::to_string(ev.get())));
  ASSERT_EQ(e.extra.count("eventfd-count"), 1u);
  EXPECT_EQ(std::stoull(e.extra["eventfd-count"], nullptr, 16), 7u);
}
