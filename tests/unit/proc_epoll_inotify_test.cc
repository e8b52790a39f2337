#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "checkpoint/proc/events.h"
#include "checkpoint/proc/fdinfo.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/files.h"

using namespace crbox;
using namespace crbox::proc;

TEST(ProcEpollLines, ParsesEntries) {
  auto e = parse_epoll_entries({"tfd:        6 events: 40000019 data:                7  pos:0 ino:40e sdev:10",
                                "eventfd-count: 1",
                                "tfd:        3 events: 80000019 data:       1234567890  pos:0 ino:bbe00 sdev:f",
                                "tfd:       12 events:       1d data: ffffffffffffffff"});
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].tfd, 6);
  EXPECT_EQ(e[0].events, 0x40000019u);
  EXPECT_EQ(e[0].data, 7u);
  EXPECT_TRUE(e[0].has_file);
  EXPECT_EQ(e[0].ino, 0x40eu);
  EXPECT_EQ(e[0].sdev, 0x10u);
  EXPECT_EQ(e[1].data, 0x1234567890u);
  EXPECT_EQ(e[2].tfd, 12);
  EXPECT_EQ(e[2].data, ~0ull);
  EXPECT_FALSE(e[2].has_file);
  EXPECT_THROW(parse_epoll_entries({"tfd: x events: 1 data: 2"}), Error);
  EXPECT_THROW(parse_epoll_entries({"tfd: 5 events: 1"}), Error);
}

TEST(ProcInotifyLines, ParsesWatches) {
  auto w = parse_inotify_entries(
      {"inotify wd:2 ino:2dd sdev:fe00000 mask:4000002 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 "
       "f_handle:dd02000000000000",
       "inotify wd:1a ino:e6c002 sdev:29 mask:80000300 ignored_mask:0"});
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].wd, 2);
  EXPECT_EQ(w[0].ino, 0x2ddu);
  EXPECT_EQ(w[0].sdev, 0xfe00000u);
  EXPECT_EQ(w[0].mask, 0x4000002u);
  EXPECT_EQ(w[0].handle_type, 1);
  ASSERT_EQ(w[0].handle.size(), 8u);
  EXPECT_EQ(w[0].handle[0], 0xdd);
  EXPECT_EQ(w[0].handle[1], 0x02);
  EXPECT_EQ(w[1].wd, 0x1a);  // hexadecimal
  EXPECT_TRUE(w[1].handle.empty());
  EXPECT_THROW(parse_inotify_entries({"inotify wd:1 ino:2 sdev:3"}), Error);  // no mask
  EXPECT_THROW(parse_inotify_entries({"inotify wd:1 ino:2 sdev:3 mask:1 fhandle-bytes:4 f_handle:00"}), Error);
}

TEST(ProcEventLines, KernelDevToUser) {
  EXPECT_EQ(user_dev(0xfe00000), makedev(254, 0));
  EXPECT_EQ(user_dev(0x29), makedev(0, 41));
  EXPECT_EQ(user_dev((259u << 20) | 300u), makedev(259, 300));
}

// The kernel's own lines for this process's epoll set and inotify instance.
TEST(ProcEventLines, ReadsOwnDescriptors) {
  UniqueFd ep(epoll_create1(EPOLL_CLOEXEC)), ev(eventfd(0, EFD_CLOEXEC));
  ASSERT_TRUE(ep && ev);
  epoll_event e{};
  e.events = EPOLLIN | EPOLLET;
  e.data.u64 = 0xfeedface12345678ull;
  ASSERT_EQ(epoll_ctl(ep.get(), EPOLL_CTL_ADD, ev.get(), &e), 0);
  auto info = parse_fdinfo(read_file("/proc/self/fdinfo/" + std::to_string(ep.get())));
  auto entries = parse_epoll_entries(info.lines);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].tfd, ev.get());
  EXPECT_EQ(entries[0].data, 0xfeedface12345678ull);
  EXPECT_TRUE(entries[0].events & EPOLLET);
  struct stat st {};
  ASSERT_EQ(fstat(ev.get(), &st), 0);
  ASSERT_TRUE(entries[0].has_file);
  EXPECT_EQ(entries[0].ino, st.st_ino);
  EXPECT_EQ(user_dev(entries[0].sdev), st.st_dev);

  UniqueFd in(inotify_init1(IN_CLOEXEC));
  ASSERT_TRUE(in);
  int wd = inotify_add_watch(in.get(), "/proc/self/exe", IN_OPEN | IN_EXCL_UNLINK);
  ASSERT_GT(wd, 0);
  auto watches = parse_inotify_entries(parse_fdinfo(read_file("/proc/self/fdinfo/" + std::to_string(in.get()))).lines);
  ASSERT_EQ(watches.size(), 1u);
  EXPECT_EQ(watches[0].wd, wd);
  EXPECT_EQ(watches[0].mask & (IN_OPEN | IN_EXCL_UNLINK), static_cast<uint32_t>(IN_OPEN | IN_EXCL_UNLINK));
  ASSERT_EQ(stat("/proc/self/exe", &st), 0);
  EXPECT_EQ(watches[0].ino, st.st_ino);
  EXPECT_EQ(user_dev(watches[0].sdev), st.st_dev);
}
