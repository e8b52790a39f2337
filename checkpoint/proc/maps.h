// /proc/PID/maps: one VMA a line (proc(5)).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace crbox::proc {

struct MapsEntry {
  uint64_t start = 0, end = 0;
  bool read = false, write = false, exec = false, shared = false;  // "rwxs" / "rwxp"
  uint64_t offset = 0;
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t inode = 0;
  std::string path;  // "" for anonymous; "[heap]", "[stack]", "[vdso]", ...; may end in " (deleted)"
  bool deleted = false;  // path ended in " (deleted)" (the suffix is removed from path)
};

// Throws crbox::Error naming the bad line.
std::vector<MapsEntry> parse_maps(std::string_view text);

// /proc/PID/map_files/START-END, the link to the file behind a mapping (proc(5): the bounds in
// lowercase hexadecimal without a prefix).
std::string map_files_path(int pid, uint64_t start, uint64_t end);

}  // namespace crbox::proc
