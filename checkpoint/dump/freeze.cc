#include "checkpoint/dump/freeze.h"

#include <dirent.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "checkpoint/proc/stat.h"
#include "runtime/cgroup.h"
#include "util/deadline.h"
#include "util/error.h"
#include "util/files.h"
#include "util/strings.h"

namespace crbox::dump {

namespace {

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::set<pid_t> list_tasks(pid_t pid) {
  std::set<pid_t> out;
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (!d) throw_errno("listing the threads of pid " + std::to_string(pid));
  while (dirent* e = readdir(d)) {
    if (auto v = parse_u64(e->d_name)) out.insert(static_cast<pid_t>(*v));
  }
  closedir(d);
  return out;
}

// Puts back a signal that the freeze took out of the queue. rt_tgsigqueueinfo(2) keeps its siginfo
// but refuses kernel-generated codes from another process (EPERM); tgkill(2) then still delivers it.
void requeue(const FrozenTask& t) {
  if (t.delivered_siginfo.size() == sizeof(siginfo_t)) {
    siginfo_t si;
    std::memcpy(&si, t.delivered_siginfo.data(), sizeof si);
    if (syscall(SYS_rt_tgsigqueueinfo, t.tgid, t.tid, t.delivered_signal, &si) == 0) return;
  }
  syscall(SYS_tgkill, t.tgid, t.tid, t.delivered_signal);
}

}  // namespace

FrozenProcess::FrozenProcess(pid_t pid, bool wait) : pid_(pid) {
  try {
    attach_listed(seen_);
    if (wait) complete();
  } catch (...) {
    release();
    throw;
  }
}

FrozenProcess::~FrozenProcess() {
  if (!released_) {
    try {
      release();
    } catch (...) {
    }
  }
}

uint64_t FrozenProcess::frozen_us() const { return frozen_at_ns_ ? (now_ns() - frozen_at_ns_) / 1000 : 0; }

bool FrozenProcess::attach(pid_t tid) {
  // PTRACE_SEIZE does not stop the task; PTRACE_INTERRUPT then makes it report a
  // PTRACE_EVENT_STOP (ptrace(2), "PTRACE_INTERRUPT").
  if (ptrace(PTRACE_SEIZE, tid, 0, 0) != 0) {
    if (errno == ESRCH) return false;  // exited meanwhile
    if (errno == EPERM)
      throw Error("cannot trace pid " + std::to_string(tid) + ": permission denied (is it traced already?)", EPERM);
    throw_errno("seizing pid " + std::to_string(tid));
  }
  FrozenTask t;
  t.tid = tid;
  t.tgid = pid_;
  tasks_.push_back(t);
  if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) != 0 && errno != ESRCH) throw_errno("interrupting pid " + std::to_string(tid));
  return true;
}

bool FrozenProcess::wait_stopped(FrozenTask& t) {
  pid_t tid = t.tid;
  for (unsigned spins = 0;; spins++) {
    int st = 0;
    // Poll rather than block: a task in uninterruptible sleep does not stop until it wakes, and
    // the caller's --time must still be honoured.
    pid_t r = waitpid(tid, &st, __WALL | WNOHANG);
    if (r == 0) {
      check_deadline("stopping pid " + std::to_string(tid));
      timespec ts{0, spins < 100 ? 20000L : 1000000L};
      nanosleep(&ts, nullptr);
      continue;
    }
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == ECHILD) return false;  // exited before stopping
      throw_errno("waiting for pid " + std::to_string(tid) + " to stop");
    }
    if (WIFEXITED(st) || WIFSIGNALED(st)) return false;
    if (!WIFSTOPPED(st)) continue;
    if ((st >> 16) == PTRACE_EVENT_STOP) break;
    // A signal-delivery-stop came first: the signal was dequeued. Keep it so it is both saved as
    // pending and delivered again when the task is released; the interrupt stop follows.
    int sig = WSTOPSIG(st);
    siginfo_t si{};
    if (ptrace(PTRACE_GETSIGINFO, tid, 0, &si) == 0) {
      t.delivered_signal = sig;
      t.delivered_siginfo.assign(reinterpret_cast<uint8_t*>(&si), reinterpret_cast<uint8_t*>(&si) + sizeof si);
    }
    if (ptrace(PTRACE_CONT, tid, 0, 0) != 0 && errno != ESRCH) throw_errno("resuming pid " + std::to_string(tid));
    if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) != 0 && errno != ESRCH)
      throw_errno("interrupting pid " + std::to_string(tid));
  }
  if (!frozen_at_ns_) frozen_at_ns_ = now_ns();
  return true;
}

void FrozenProcess::attach_listed(std::set<pid_t>& seen) {
  for (pid_t t : list_tasks(pid_)) {
    if (seen.insert(t).second) attach(t);
  }
}

void FrozenProcess::complete() {
  // Threads may be created while we stop others: list again until the set is stable.
  for (;;) {
    for (size_t i = waited_; i < tasks_.size();) {
      if (wait_stopped(tasks_[i])) {
        i++;
      } else {
        tasks_.erase(tasks_.begin() + static_cast<long>(i));
      }
    }
    waited_ = tasks_.size();
    attach_listed(seen_);
    if (tasks_.size() == waited_) break;
  }
  if (tasks_.empty()) throw Error("pid " + std::to_string(pid_) + " exited before it could be stopped", Cause::no_process);
  // The leader first, then threads by tid.
  std::sort(tasks_.begin(), tasks_.end(), [this](const FrozenTask& a, const FrozenTask& b) {
    if ((a.tid == pid_) != (b.tid == pid_)) return a.tid == pid_;
    return a.tid < b.tid;
  });
}

void FrozenProcess::release(int sig) {
  if (released_) return;
  released_ = true;
  // A signal sent while the tasks are still stopped is delivered once they are detached.
  if (sig) ::kill(pid_, sig);
  int err = 0;
  for (auto& t : tasks_) {
    if (t.delivered_signal) requeue(t);
    if (ptrace(PTRACE_DETACH, t.tid, 0, 0) != 0 && errno != ESRCH) err = errno;
  }
  if (err) throw_errno("detaching from pid " + std::to_string(pid_), err);
  if (sig == SIGKILL) {
    // Return only once the process is dead (a zombie or gone), so a restart that follows at once
    // does not find its pid still running. Reaping it is its parent's business.
    for (int i = 0; i < 2000; i++) {
      if (access(("/proc/" + std::to_string(pid_)).c_str(), F_OK) != 0 || proc::is_exited(pid_)) break;
      timespec ts{0, 1000000};
      nanosleep(&ts, nullptr);
    }
  }
}

FrozenTree::FrozenTree(const std::function<std::vector<pid_t>()>& list, const runtime::CgroupPaths* freezer) {
  bool use_freezer = freezer && !freezer->freezer.empty();
  std::set<pid_t> seen;
  try {
    for (bool first = true;; first = false) {
      if (first && use_freezer) runtime::set_frozen(*freezer, true);
      std::vector<FrozenProcess*> fresh;
      try {
        for (pid_t pid : list()) {
          if (!seen.insert(pid).second) continue;
          procs_.push_back(std::make_unique<FrozenProcess>(pid, /*wait=*/false));
          fresh.push_back(procs_.back().get());
        }
      } catch (...) {
        if (first && use_freezer) runtime::set_frozen(*freezer, false);
        throw;
      }
      if (first && use_freezer) runtime::set_frozen(*freezer, false);
      if (fresh.empty()) break;
      for (auto* fp : fresh) fp->complete();
    }
  } catch (...) {
    release();
    throw;
  }
}

FrozenTree::~FrozenTree() {
  try {
    release();
  } catch (...) {
  }
}

uint64_t FrozenTree::frozen_us() const {
  uint64_t m = 0;
  for (const auto& p : procs_) m = std::max(m, p->frozen_us());
  return m;
}

void FrozenTree::release(int signal) {
  if (released_) return;
  released_ = true;
  std::exception_ptr first;
  for (auto& p : procs_) {
    try {
      p->release(signal);
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
}

}  // namespace crbox::dump
