#include "checkpoint/dump/sandbox.h"

#include <time.h>

#include "checkpoint/proc/misc.h"
#include "runtime/registry.h"
#include "util/files.h"

namespace crbox::dump {

std::optional<SandboxInfo> sandbox_of(pid_t pid) {
  auto rec = runtime::find_sandbox_of(pid);
  if (!rec) return std::nullopt;
  SandboxInfo info;
  info.sandbox.id = rec->id;
  info.sandbox.spec = rec->spec;
  info.cgroups = rec->cgroups;
  info.init_pid = rec->init_pid;
  info.app_inner_pid = rec->app_inner_pid;
  return info;
}

bool sandbox_init_of(pid_t pid) {
  auto rec = runtime::find_sandbox_of(pid);
  return rec && rec->init_pid == pid;
}

model::TimeState sandbox_clocks(pid_t pid) {
  // The namespace's clocks are the host's plus its offsets (time_namespaces(7)).
  model::TimeState t;
  auto text = try_read_file("/proc/" + std::to_string(pid) + "/timens_offsets");
  proc::TimensOffsets off;
  if (text) off = proc::parse_timens_offsets(*text);
  timespec m{}, b{};
  clock_gettime(CLOCK_MONOTONIC, &m);
  clock_gettime(CLOCK_BOOTTIME, &b);
  t.monotonic_ns = static_cast<int64_t>(m.tv_sec) * 1000000000 + m.tv_nsec + off.monotonic_ns;
  t.boottime_ns = static_cast<int64_t>(b.tv_sec) * 1000000000 + b.tv_nsec + off.boottime_ns;
  return t;
}

}  // namespace crbox::dump
