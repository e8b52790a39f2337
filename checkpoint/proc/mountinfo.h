// /proc/PID/mountinfo (proc(5)).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace crbox::proc {

struct MountInfo {
  uint64_t mount_id = 0, parent_id = 0;
  uint32_t major = 0, minor = 0;
  std::string root, mount_point, mount_options;  // octal escapes (\040) decoded
  std::vector<std::string> optional_fields;      // "shared:1", "master:2", ...
  std::string fs_type, source, super_options;
};

std::vector<MountInfo> parse_mountinfo(std::string_view text);

}  // namespace crbox::proc
