// /proc/PID/fdinfo/N (proc(5)).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace crbox::proc {

struct FdInfo {
  uint64_t pos = 0;
  uint32_t flags = 0;  // printed in octal by the kernel; includes O_CLOEXEC
  uint64_t mnt_id = 0;
  uint64_t ino = 0;
  std::map<std::string, std::string> extra;  // every other "key: value" line, first occurrence
  // Every line but pos, flags, mnt_id and ino, in order: kinds that repeat a key (epoll's "tfd:",
  // inotify's "inotify wd:", "lock:") are read from here.
  std::vector<std::string> lines;
};

FdInfo parse_fdinfo(std::string_view text);

}  // namespace crbox::proc
