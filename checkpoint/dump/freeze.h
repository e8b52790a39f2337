// Freezing a process for a dump: every thread is seized and stopped with ptrace
// (PTRACE_SEIZE + PTRACE_INTERRUPT, ptrace(2)), repeating until no new thread appears, then
// released exactly as asked. A FrozenProcess that is destroyed without release() detaches and lets
// the process run on as it was: the "nothing lost" rule.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/cgroup.h"

namespace crbox::dump {

struct FrozenTask {
  pid_t tid = 0;
  pid_t tgid = 0;
  // Signal taken out of the queue because the task reported a signal-delivery-stop instead of the
  // interrupt: it must be delivered again on release, and is part of the task's pending signals.
  int delivered_signal = 0;
  std::vector<uint8_t> delivered_siginfo;
};

class FrozenProcess {
 public:
  // With `freezer`, the sandbox's freezer cgroup is frozen while the tasks are seized.
  explicit FrozenProcess(pid_t pid, const runtime::CgroupPaths* freezer = nullptr);
  ~FrozenProcess();
  FrozenProcess(const FrozenProcess&) = delete;
  FrozenProcess& operator=(const FrozenProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::vector<FrozenTask>& tasks() const { return tasks_; }
  // Microseconds since the first task was stopped.
  uint64_t frozen_us() const;

  // Lets the tasks go, detaching from every one; `signal` (0: none) is sent first, so it is acted
  // on as they leave the stop (SIGSTOP keeps the process stopped, SIGKILL ends it).
  void release(int signal = 0);

 private:
  void seize_all();
  bool attach(pid_t tid);
  bool wait_stopped(FrozenTask& t);
  std::optional<runtime::CgroupPaths> freezer_;
  pid_t pid_;
  std::vector<FrozenTask> tasks_;
  uint64_t frozen_at_ns_ = 0;
  bool released_ = false;
};

}  // namespace crbox::dump
