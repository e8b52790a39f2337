// Smaller /proc files: auxv, children, timens_offsets, limits.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace crbox::proc {

// /proc/PID/auxv: (type, value) pairs up to and including AT_NULL.
std::vector<std::pair<uint64_t, uint64_t>> parse_auxv(std::string_view bytes);

// /proc/PID/task/TID/children: space-separated pids.
std::vector<pid_t> parse_children(std::string_view text);

// /proc/PID/timens_offsets: "monotonic <sec> <nsec>" / "boottime <sec> <nsec>" lines.
struct TimensOffsets {
  int64_t monotonic_ns = 0;
  int64_t boottime_ns = 0;
};
TimensOffsets parse_timens_offsets(std::string_view text);

// /proc/PID/limits: (resource, soft, hard) for every row, in RLIMIT_* order (the kernel prints
// one row per resource, by number); "unlimited" is RLIM_INFINITY. Throws crbox::Error when a row
// does not parse or there are fewer rows than RLIM_NLIMITS.
struct Limit {
  int resource = 0;
  uint64_t soft = 0, hard = 0;
};
std::vector<Limit> parse_limits(std::string_view text);

}  // namespace crbox::proc
