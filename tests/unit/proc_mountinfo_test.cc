#include <gtest/gtest.h>

#include "checkpoint/proc/mountinfo.h"
#include "util/error.h"
#include "util/files.h"

using namespace crbox;
using namespace crbox::proc;

TEST(ProcMountinfo, ParsesProcManExample) {
  auto v = parse_mountinfo("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n");
  ASSERT_EQ(v.size(), 1u);
  auto& m = v[0];
  EXPECT_EQ(m.mount_id, 36u);
  EXPECT_EQ(m.parent_id, 35u);
  EXPECT_EQ(m.major, 98u);
  EXPECT_EQ(m.minor, 0u);
  EXPECT_EQ(m.root, "/mnt1");
  EXPECT_EQ(m.mount_point, "/mnt2");
  EXPECT_EQ(m.mount_options, "rw,noatime");
  EXPECT_EQ(m.optional_fields, (std::vector<std::string>{"master:1"}));
  EXPECT_EQ(m.fs_type, "ext3");
  EXPECT_EQ(m.source, "/dev/root");
  EXPECT_EQ(m.super_options, "rw,errors=continue");
}

TEST(ProcMountinfo, OctalEscapesAndOptionalFields) {
  auto v = parse_mountinfo(
      "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
      "100 27 8:1 /a\\040b /mnt/with\\040space\\011tab\\134x rw shared:5 master:2 propagate_from:1 - "
      "fuse.my\\040fs my\\040src rw,user_id=0\n"
      "101 27 0:50 / /mnt/unb rw unbindable - tmpfs  rw\n");
  ASSERT_EQ(v.size(), 3u);
  EXPECT_TRUE(v[0].optional_fields.empty());
  EXPECT_EQ(v[1].root, "/a b");
  EXPECT_EQ(v[1].mount_point, "/mnt/with space\ttab\\x");
  EXPECT_EQ(v[1].optional_fields, (std::vector<std::string>{"shared:5", "master:2", "propagate_from:1"}));
  EXPECT_EQ(v[1].fs_type, "fuse.my fs");
  EXPECT_EQ(v[1].source, "my src");
  EXPECT_EQ(v[2].optional_fields, (std::vector<std::string>{"unbindable"}));
  EXPECT_EQ(v[2].source, "");  // empty source field
  EXPECT_EQ(v[2].super_options, "rw");
}

TEST(ProcMountinfo, BackslashNotFollowedByThreeOctalDigitsIsKept) {
  auto v = parse_mountinfo("1 0 0:1 / /a\\b\\09 rw - tmpfs none rw\n");
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].mount_point, "/a\\b\\09");
}

TEST(ProcMountinfo, RejectsMalformed) {
  EXPECT_THROW(parse_mountinfo("36 35 98:0 /mnt1 /mnt2 rw master:1 ext3 /dev/root rw\n"), Error);  // no "-"
  EXPECT_THROW(parse_mountinfo("36 35 98-0 / / rw - ext3 /dev/root rw\n"), Error);
  EXPECT_THROW(parse_mountinfo("x 35 98:0 / / rw - ext3 /dev/root rw\n"), Error);
  EXPECT_THROW(parse_mountinfo("36 35 98:0 / / rw - ext3\n"), Error);
}

TEST(ProcMountinfo, ReadsOwnMountinfo) {
  auto v = parse_mountinfo(read_file("/proc/self/mountinfo"));
  ASSERT_FALSE(v.empty());
  bool root = false, proc = false;
  for (auto& m : v) {
    if (m.mount_point == "/") root = true;
    if (m.mount_point == "/proc" && m.fs_type == "proc") proc = true;
  }
  EXPECT_TRUE(root);
  EXPECT_TRUE(proc);
}
