// Freezing a process for a dump: every thread is seized and stopped with ptrace
// (PTRACE_SEIZE + PTRACE_INTERRUPT, ptrace(2)), repeating until no new thread appears, then
// released exactly as asked. A FrozenProcess that is destroyed without release() detaches and lets
// the process run on as it was: the "nothing lost" rule.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
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
  // Seizes every thread. With `wait`, also waits until all are stopped (complete()); without, the
  // caller calls complete() itself (after thawing a freezer cgroup, say).
  explicit FrozenProcess(pid_t pid, bool wait = true);
  // Waits for the seized threads to stop, then seizes threads created meanwhile until none appear.
  void complete();
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
  void attach_listed(std::set<pid_t>& seen);
  bool attach(pid_t tid);
  bool wait_stopped(FrozenTask& t);
  std::set<pid_t> seen_;
  size_t waited_ = 0;  // tasks_[0, waited_) are known to be stopped
  pid_t pid_;
  std::vector<FrozenTask> tasks_;
  uint64_t frozen_at_ns_ = 0;
  bool released_ = false;
};

// Several processes frozen together: a sandbox, or a process and its descendants.
class FrozenTree {
 public:
  // `list` gives the processes to stop, parents before children; it is asked again after each
  // round until every process it names is stopped (they may fork meanwhile). With `freezer`, that
  // cgroup is frozen while the first round is seized, so the whole group stops at one instant.
  FrozenTree(const std::function<std::vector<pid_t>()>& list, const runtime::CgroupPaths* freezer);
  ~FrozenTree();
  FrozenTree(const FrozenTree&) = delete;
  FrozenTree& operator=(const FrozenTree&) = delete;

  const std::vector<std::unique_ptr<FrozenProcess>>& processes() const { return procs_; }
  uint64_t frozen_us() const;
  // Releases every process; `signal` (0: none) is sent to each first.
  void release(int signal = 0);

 private:
  std::vector<std::unique_ptr<FrozenProcess>> procs_;
  bool released_ = false;
};

}  // namespace crbox::dump
