// The cgroups of one sandbox: a freezer-capable group always (the checkpoint engine freezes it),
// plus memory and pids limits on request.
//
// Layout. crbox's groups live under a `crbox/` parent, one `<id>` below it per sandbox:
//  - cgroup v1 (here: memory, pids, freezer mounted under /sys/fs/cgroup): in each hierarchy, below
//    the cgroup the launcher itself is in, e.g. /sys/fs/cgroup/freezer/crbox/<id> or
//    /sys/fs/cgroup/memory/<launcher's group>/crbox/<id>, so limits set on the launcher still hold
//    (v1 allows groups with both processes and children);
//  - cgroup2 only (no v1 freezer mounted): <mount>/crbox/<id> below the root, because cgroup2's
//    "no internal processes" rule (cgroups(7)) forbids enabling controllers below a group that
//    holds processes, which the launcher's own group does.
// Which one: v1 when a v1 freezer hierarchy is mounted (v1 controllers cannot be used on cgroup2
// at the same time); a limit whose v1 controller is not mounted then fails with a clear error.
// Otherwise cgroup2, whose root's cgroup.controllers must list each controller a limit needs.
// Only processes crbox started are ever moved into these groups.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>

namespace crbox::runtime {

// Where a sandbox's groups are. Empty strings for controllers not used.
struct CgroupPaths {
  int version = 1;          // 1: v1 hierarchies; 2: one cgroup2 directory (all fields equal)
  std::string freezer;      // v1: freezer.state (FROZEN/THAWED); v2: cgroup.freeze (1/0)
  std::string memory;       // set only with a memory limit
  std::string pids;         // set only with a pids limit
  std::vector<std::string> all;  // every directory created, for teardown

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(version), CEREAL_NVP(freezer), CEREAL_NVP(memory), CEREAL_NVP(pids), CEREAL_NVP(all));
  }
};

// A sandbox's cgroups, created by create() and removed by the destructor (or destroy()).
class SandboxCgroup {
 public:
  // Creates crbox/<id> where needed and writes the limits (memory_limit bytes, 0 = none; pids_limit,
  // 0 = none, counting the application's processes: one more is allowed for crbox's init).
  // Throws crbox::Error, leaving nothing behind.
  static SandboxCgroup create(const std::string& id, uint64_t memory_limit, uint64_t pids_limit);

  SandboxCgroup() = default;
  SandboxCgroup(SandboxCgroup&& o) noexcept;
  SandboxCgroup& operator=(SandboxCgroup&& o) noexcept;
  SandboxCgroup(const SandboxCgroup&) = delete;
  SandboxCgroup& operator=(const SandboxCgroup&) = delete;
  ~SandboxCgroup();

  const CgroupPaths& paths() const { return paths_; }
  // Moves `pid` (a process crbox started) into every group. Throws crbox::Error.
  void add(pid_t pid) const;
  // Thaws, SIGKILLs whatever is still in the groups (only crbox's processes are there), and removes
  // the directories, retrying while the kernel finishes the exits. Never throws.
  void destroy() noexcept;

 private:
  CgroupPaths paths_;
};

// Freezes (true) or thaws (false) a sandbox's freezer group and waits until the state is reached.
// For the checkpoint engine. Throws crbox::Error.
void set_frozen(const CgroupPaths& paths, bool frozen);

// The pids currently in a group directory (cgroup.procs).
std::vector<pid_t> cgroup_pids(const std::string& dir);

}  // namespace crbox::runtime
