// The registry of live sandboxes: one directory per sandbox under /run/crbox/<id>/ holding
//   sandbox.json  the SandboxRecord, as cereal JSON, replaced atomically;
//   lock          flock(2)ed by the launcher for the sandbox's whole life.
// A sandbox is live while its lock is held and its init (pid + start time, so a reused pid does
// not count) exists. An entry whose lock is free belongs to a launcher that died: it is stale and
// is removed by whoever lists the registry. The lock also makes --name unique: entries are created
// complete in a temporary directory and renamed into place, which fails if the name is taken.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <cereal/types/string.hpp>

#include "checkpoint/model/sandbox_spec.h"
#include "runtime/cgroup.h"
#include "util/fd.h"

namespace crbox::runtime {

struct SandboxRecord {
  std::string id;
  pid_t init_pid = 0;               // host pid of the crbox init (PID 1 inside)
  pid_t app_pid = 0;                // host pid of the application (PID 2 inside, or what start_app made)
  pid_t app_inner_pid = 0;          // the application's pid inside the sandbox
  pid_t launcher_pid = 0;           // host pid of the cr_run / cr_restart that owns the sandbox
  uint64_t init_start_ticks = 0;    // /proc/<init_pid>/stat starttime (proc(5)), against pid reuse
  int64_t started_at = 0;           // wall clock, seconds since the epoch
  model::SandboxSpec spec;
  CgroupPaths cgroups;

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(id), CEREAL_NVP(init_pid), CEREAL_NVP(app_pid), CEREAL_NVP(app_inner_pid), CEREAL_NVP(launcher_pid),
      CEREAL_NVP(init_start_ticks), CEREAL_NVP(started_at), CEREAL_NVP(spec), CEREAL_NVP(cgroups));
  }
};

// /run/crbox, or $CRBOX_RUN_DIR when set (tests use a private one).
std::string registry_root();

// Sandbox ids and --name values: 1..64 characters of [A-Za-z0-9_.-], not starting with '.'.
bool valid_sandbox_id(const std::string& id);
// A fresh random id (12 hex digits).
std::string generate_sandbox_id();

// The launcher's hold on one registry entry: reserved at construction, removed by the destructor.
class RegistryEntry {
 public:
  // Reserves `id`. Throws crbox::Error ("a sandbox named X is already running") when a live
  // sandbox has it; a stale entry of that name is cleaned first.
  explicit RegistryEntry(const std::string& id, const std::string& root = registry_root());
  ~RegistryEntry();
  RegistryEntry(const RegistryEntry&) = delete;
  RegistryEntry& operator=(const RegistryEntry&) = delete;

  const std::string& dir() const { return dir_; }
  // Writes (or replaces) the record, atomically. Throws crbox::Error.
  void publish(const SandboxRecord& rec);
  // The lock's descriptor: close it in every child that is not the launcher (it is O_CLOEXEC,
  // but a forked child that does not exec would keep the entry locked).
  int lock_fd() const { return lock_.get(); }
  // Removes the entry now (also done by the destructor).
  void remove() noexcept;

 private:
  std::string dir_;
  UniqueFd lock_;
};

// Live sandboxes, sorted by id; stale entries are removed on the way.
std::vector<SandboxRecord> list_sandboxes(const std::string& root = registry_root());
// The live sandbox with this id.
std::optional<SandboxRecord> find_sandbox(const std::string& id, const std::string& root = registry_root());
// The live sandbox whose pid namespace holds `host_pid` (compares the /proc/PID/ns/pid inodes of
// that process and of the sandbox's init: namespaces(7)). Its init matches too.
std::optional<SandboxRecord> find_sandbox_of(pid_t host_pid, const std::string& root = registry_root());

// Serialization, for tests and tools: a record as cereal JSON and back. Throws crbox::Error.
std::string record_to_json(const SandboxRecord& rec);
SandboxRecord record_from_json(const std::string& json);

// starttime of /proc/PID/stat, or nullopt when the process is gone.
std::optional<uint64_t> process_start_ticks(pid_t pid);

}  // namespace crbox::runtime
