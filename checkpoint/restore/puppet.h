// The puppet: a new process created at the image's pid (clone3(2) with set_tid), which sets up its
// plain state itself, maps a one-page trampoline (`syscall; int3`) plus scratch pages where the
// image has a hole, and stops. cr_restart then drives it with injected syscalls until it is the
// image's process, and lets it go.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "checkpoint/arch/x86_64/inject.h"
#include "checkpoint/model/process.h"
#include "util/fd.h"

namespace crbox::restore {

inline constexpr uint64_t kTrampolinePages = 16;  // page 0: code; the rest: scratch for arguments

class Puppet {
 public:
  // Adopts a new process (made by tree.cc) that mapped its trampoline at `trampoline` and waits
  // to be seized. With `sync_read_end`, take_control() first waits for its "ok" there; `is_child`:
  // it is cr_restart's own child (reaped here if it has to be killed).
  Puppet(pid_t host_pid, uint64_t trampoline, UniqueFd sync_read_end, bool is_child);
  ~Puppet();  // kills the process unless released
  Puppet(const Puppet&) = delete;
  Puppet& operator=(const Puppet&) = delete;

  pid_t pid() const { return pid_; }
  uint64_t trampoline() const { return tramp_; }
  uint64_t scratch() const { return tramp_ + 4096; }
  uint64_t scratch_size() const { return (kTrampolinePages - 1) * 4096; }
  int child_sync_fd() const { return child_sync_fd_; }
  void set_child_sync_fd(int fd) { child_sync_fd_ = fd; }

  // Waits for the process to report ready on its own sync pipe (if it has one), then seizes and
  // stops it.
  void take_control();
  long call(long nr, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0, uint64_t a4 = 0, uint64_t a5 = 0,
            uint64_t a6 = 0) {
    return inj_->call(nr, a1, a2, a3, a4, a5, a6);
  }
  long check(const std::string& what, long nr, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0,
             uint64_t a4 = 0, uint64_t a5 = 0, uint64_t a6 = 0) {
    return inj_->check(what, nr, a1, a2, a3, a4, a5, a6);
  }
  // Writes bytes into the scratch area at `offset`; returns their address in the puppet.
  uint64_t put(const void* data, size_t len, size_t offset = 0);
  uint64_t put_string(const std::string& s, size_t offset = 0);

  arch::Injector& injector() { return *inj_; }

  // Creates a thread of the puppet at the image's tid (clone3(2) with CLONE_THREAD and set_tid,
  // injected into the leader, the new thread traced from birth by PTRACE_O_TRACECLONE). It is left
  // stopped; returns its host tid. Its injector runs syscalls in it through the same trampoline.
  pid_t create_thread(int32_t image_tid);
  arch::Injector& thread_injector(pid_t host_tid);
  // Sets a stopped thread's final registers and signal mask and queues its pending signals; it is
  // detached with the leader in release().
  void finish_thread(pid_t host_tid, const model::Thread& t);

  // Unmaps the trampoline from inside it, sets the leader's registers and signal mask, queues the
  // pending signals and detaches every task: from here on the process runs as the image's.
  // `stop_signal`, if nonzero, is sent before detaching (cr_restart --stop/--term/--kill).
  void release(const model::Thread& t, int stop_signal);
  // Kills the process (failure path).
  void kill();
  bool released() const { return released_; }

 private:
  pid_t pid_ = -1;
  uint64_t tramp_ = 0;
  UniqueFd sync_;
  int child_sync_fd_ = -1;
  bool is_child_ = true;
  bool released_ = false;
  std::unique_ptr<arch::Injector> inj_;
  std::vector<std::pair<pid_t, std::unique_ptr<arch::Injector>>> threads_;
};

// Chooses the trampoline's address: a hole in every process's layout of the image that is also
// free in this process (every puppet starts as a copy of it).
uint64_t choose_trampoline(const model::Image& img);
// In a new process: maps the trampoline (code page, then scratch pages) at `addr`. Throws.
void map_trampoline(uint64_t addr);

// clone3(2) with CLONE_PARENT-free fork semantics and, when `pid` > 0, set_tid = {pid}: in the
// caller's pid namespace, the child gets exactly that pid. Returns like fork().
pid_t clone_with_pid(pid_t pid);

}  // namespace crbox::restore
