// The time namespace (time_namespaces(7)). It is entered with unshare(CLONE_NEWTIME), which moves
// only the caller's future children into it; the offsets must be written to
// /proc/self/timens_offsets before any process enters it (afterwards the write fails with EACCES),
// and a namespace made by clone3(CLONE_NEWTIME) can no longer get offsets. CLOCK_REALTIME is never
// shifted. So the crbox init unshares, writes the offsets, and only then forks the application.
#pragma once

#include <cstdint>
#include <optional>

namespace crbox::ns {

struct TimeOffsets {
  int64_t monotonic_ns = 0;
  int64_t boottime_ns = 0;
};

// unshare(CLONE_NEWTIME) and, when given, writes the offsets for CLOCK_MONOTONIC and
// CLOCK_BOOTTIME. The caller's children forked afterwards live in the new namespace.
// Throws crbox::Error.
void enter_time_namespace_for_children(const std::optional<TimeOffsets>& offsets);

}  // namespace crbox::ns
