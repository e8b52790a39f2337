// The fdinfo lines of epoll and inotify descriptors (proc(5), /proc/PID/fdinfo/N): one "tfd:" line
// per entry of an epoll set, one "inotify wd:" line per watch.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace crbox::proc {

// "tfd:        5 events:       19 data:                5  pos:0 ino:1a sdev:f" (fs/eventpoll.c;
// events, data, ino and sdev are hexadecimal). `has_file` is false on kernels that print only
// tfd, events and data.
struct EpollEntry {
  int32_t tfd = -1;
  uint32_t events = 0;
  uint64_t data = 0;
  bool has_file = false;
  uint64_t ino = 0;
  uint32_t sdev = 0;  // the kernel's internal dev_t: see user_dev()
};

// "inotify wd:1 ino:e6c002 sdev:fe00000 mask:100 ignored_mask:0 fhandle-bytes:8 fhandle-type:1
// f_handle:02c0e6006b8a5033" (fs/notify/fdinfo.c; every number hexadecimal). The file handle is
// absent when the kernel lacks CONFIG_EXPORTFS.
struct InotifyEntry {
  int32_t wd = 0;
  uint64_t ino = 0;
  uint32_t sdev = 0;
  uint32_t mask = 0;
  uint32_t ignored_mask = 0;
  int32_t handle_type = 0;
  std::vector<uint8_t> handle;  // f_handle bytes
};

// Every "tfd:" / "inotify" line among `lines` (FdInfo::lines); other lines are skipped. Throws
// crbox::Error on a malformed line of that kind.
std::vector<EpollEntry> parse_epoll_entries(const std::vector<std::string>& lines);
std::vector<InotifyEntry> parse_inotify_entries(const std::vector<std::string>& lines);

// The kernel prints a super block's dev_t in its internal form (major << 20 | minor); stat(2)
// reports st_dev in the user-space form. This converts the first to the second.
dev_t user_dev(uint32_t kernel_dev);

}  // namespace crbox::proc
