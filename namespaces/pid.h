// pid namespaces: creating the sandbox's init with clone3, and telling which namespace a pid is in.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace crbox::ns {

// Namespace flags for clone3. Time is not among them on purpose: see time.h.
struct CloneNamespaces {
  bool pid = true, mount = true, uts = true, ipc = true, net = false;
  uint64_t flags() const;
};

// Forks like fork(2) (returns 0 in the child, the child's pid in the parent), but the child starts
// in new namespaces: with a new pid namespace the child is its PID 1 (clone(2), pid_namespaces(7)).
// The child is signalled to its parent with SIGCHLD like an ordinary child. Throws crbox::Error.
pid_t fork_into_namespaces(const CloneNamespaces& which);

// (device, inode) of /proc/PID/ns/<kind> ("pid", "mnt", "time", ...): equal pairs mean the same
// namespace (namespaces(7)). nullopt when the process is gone.
struct NsId {
  uint64_t dev = 0, ino = 0;
  bool operator==(const NsId&) const = default;
};
std::optional<NsId> namespace_of(pid_t pid, const char* kind);

// The pid of `host_pid` as seen in its innermost pid namespace (last NSpid field of
// /proc/PID/status, proc(5)); nullopt when the process is gone.
std::optional<pid_t> innermost_pid(pid_t host_pid);

}  // namespace crbox::ns
