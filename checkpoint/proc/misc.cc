// Smaller /proc files (proc(5)): auxv, task/TID/children, timens_offsets.
#include "checkpoint/proc/misc.h"

#include <elf.h>
#include <sys/resource.h>

#include <cstring>

#include "util/error.h"
#include "util/strings.h"

namespace crbox::proc {

// /proc/PID/auxv is the binary auxiliary vector the kernel put on the initial stack: pairs of
// native unsigned longs (64-bit here), ending with an AT_NULL pair.
std::vector<std::pair<uint64_t, uint64_t>> parse_auxv(std::string_view bytes) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  constexpr size_t kPair = 2 * sizeof(uint64_t);
  for (size_t off = 0; off + kPair <= bytes.size(); off += kPair) {
    uint64_t type, value;
    std::memcpy(&type, bytes.data() + off, sizeof type);
    std::memcpy(&value, bytes.data() + off + sizeof type, sizeof value);
    out.emplace_back(type, value);
    if (type == AT_NULL) return out;
  }
  throw Error("malformed /proc/PID/auxv: no AT_NULL entry.");
}

// "/proc/PID/task/TID/children" (since 3.5, CONFIG_PROC_CHILDREN): the pids of that thread's
// children, each followed by a space.
std::vector<pid_t> parse_children(std::string_view text) {
  std::vector<pid_t> out;
  for (auto f : split(trim(text), ' ')) {
    f = trim(f);
    if (f.empty()) continue;
    auto v = parse_i64(f);
    if (!v || *v <= 0) throw Error("malformed /proc/PID/task/TID/children: \"" + std::string(f) + "\" is not a pid.");
    out.push_back(static_cast<pid_t>(*v));
  }
  return out;
}

// /proc/PID/timens_offsets (time_namespaces(7)): lines "<clock> <sec> <nsec>", where the kernel
// prints the clock by name ("monotonic", "boottime") and accepts its number too on write
// (CLOCK_MONOTONIC = 1, CLOCK_BOOTTIME = 7); both are accepted here. sec may be negative, nsec is
// in [0, 1e9).
TimensOffsets parse_timens_offsets(std::string_view text) {
  TimensOffsets t;
  for (std::string_view line : split(text, '\n')) {
    std::vector<std::string_view> f;
    for (auto x : split(trim(line), ' '))
      if (!x.empty()) f.push_back(x);
    if (f.empty()) continue;
    auto sec = f.size() == 3 ? parse_i64(f[1]) : std::nullopt;
    auto nsec = f.size() == 3 ? parse_u64(f[2]) : std::nullopt;
    if (!sec || !nsec || *nsec >= 1000000000ull)
      throw Error("malformed /proc/PID/timens_offsets line \"" + std::string(line) + "\".");
    int64_t ns = *sec * 1000000000ll + static_cast<int64_t>(*nsec);
    if (f[0] == "monotonic" || f[0] == "1")
      t.monotonic_ns = ns;
    else if (f[0] == "boottime" || f[0] == "7")
      t.boottime_ns = ns;
    // other clocks are not offset by time namespaces today; ignore them
  }
  return t;
}

// /proc/PID/limits (proc(5)): a header line, then one row per resource in RLIMIT_* order, the
// name padded to 25 columns, then the soft and hard limits ("unlimited" or a number), then the
// unit (which some rows leave empty). Names contain spaces, so the fields are taken from column
// 26 on. Readable by anyone, unlike prlimit(2) on another user's process.
std::vector<Limit> parse_limits(std::string_view text) {
  std::vector<Limit> out;
  auto value = [&](std::string_view f, std::string_view line) -> uint64_t {
    if (f == "unlimited") return RLIM_INFINITY;
    auto v = parse_u64(f);
    if (!v) throw Error("malformed /proc/PID/limits line \"" + std::string(line) + "\".");
    return *v;
  };
  bool header = true;
  for (std::string_view line : split(text, '\n')) {
    if (trim(line).empty()) continue;
    if (header) {
      header = false;
      continue;
    }
    if (line.size() <= 26) throw Error("malformed /proc/PID/limits line \"" + std::string(line) + "\".");
    std::vector<std::string_view> f;
    for (auto x : split(line.substr(26), ' '))
      if (!x.empty()) f.push_back(x);
    if (f.size() < 2) throw Error("malformed /proc/PID/limits line \"" + std::string(line) + "\".");
    out.push_back({static_cast<int>(out.size()), value(f[0], line), value(f[1], line)});
  }
  if (out.size() < RLIM_NLIMITS)
    throw Error("/proc/PID/limits lists " + std::to_string(out.size()) + " resources, fewer than the " +
                std::to_string(RLIM_NLIMITS) + " this program knows.");
  return out;
}

}  // namespace crbox::proc
