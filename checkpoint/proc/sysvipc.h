// /proc/sysvipc/{shm,sem,msg}: the System V IPC objects of the reader's ipc namespace, one a line
// under a header naming the columns (proc(5), sysvipc(7)).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace crbox::proc {

// The columns every kind shares. `mode` is the raw "perms" column: the permission bits plus, for
// shared memory, SHM_DEST (01000, removed once the last process detaches) and SHM_LOCKED (02000).
struct SysvIpcEntry {
  int32_t key = 0;  // printed signed; IPC_PRIVATE is 0
  int32_t id = 0;
  uint32_t mode = 0;
  uint32_t uid = 0, gid = 0, cuid = 0, cgid = 0;
  uint64_t size = 0;   // shm: "size" (bytes); sem: "nsems"; msg: "cbytes"
  uint64_t count = 0;  // shm: "nattch"; msg: "qnum"; sem: 0
};

// Parses one of the three files; the columns are found by their header names, so the files' widths
// and extra columns (rss, swap, times) do not matter. Throws crbox::Error naming the bad line.
std::vector<SysvIpcEntry> parse_sysvipc(std::string_view text);

}  // namespace crbox::proc
