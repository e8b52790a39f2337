// What a dump needs to know about crbox sandboxes: whether a pid lives in one (then the bundle
// carries the sandbox's spec and clocks) or is one's init (never dumped itself).
#pragma once

#include <sys/types.h>

#include <optional>

#include "checkpoint/model/process.h"
#include "runtime/cgroup.h"

namespace crbox::dump {

struct SandboxInfo {
  model::Sandbox sandbox;       // what goes into the bundle
  runtime::CgroupPaths cgroups;  // its freezer, for the dump
  pid_t init_pid = 0;           // host pid of its init
  pid_t app_inner_pid = 0;      // the application cr_run started (the sandbox's exit status)
};
std::optional<SandboxInfo> sandbox_of(pid_t pid);
bool sandbox_init_of(pid_t pid);
// The content of a sandbox's private /tmp, read through its init's root (/proc/PID/root).
std::vector<model::TmpEntry> sandbox_tmp(pid_t init_pid);
// CLOCK_MONOTONIC and CLOCK_BOOTTIME as seen inside the pid's time namespace, now.
model::TimeState sandbox_clocks(pid_t pid);

}  // namespace crbox::dump
