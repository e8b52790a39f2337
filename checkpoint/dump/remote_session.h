// Asking a frozen task for state only it can report (sigaction, sigaltstack, getitimer, ...):
// syscalls injected through a `syscall` instruction found in the task's own vDSO, with a scratch
// page mapped in the task for their results and unmapped again afterwards.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "checkpoint/arch/x86_64/inject.h"

namespace crbox::dump {

class RemoteSession {
 public:
  // `tid` must be ptrace-stopped; `vdso_start`/`vdso_end` locate the task's [vdso].
  RemoteSession(pid_t tid, uint64_t vdso_start, uint64_t vdso_end);
  ~RemoteSession();  // unmaps the scratch page and restores registers and signal mask
  RemoteSession(const RemoteSession&) = delete;
  RemoteSession& operator=(const RemoteSession&) = delete;

  long call(long nr, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0, uint64_t a4 = 0, uint64_t a5 = 0,
            uint64_t a6 = 0) {
    return inj_->call(nr, a1, a2, a3, a4, a5, a6);
  }
  long check(const std::string& what, long nr, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0,
             uint64_t a4 = 0) {
    return inj_->check(what, nr, a1, a2, a3, a4);
  }
  arch::Injector& injector() { return *inj_; }
  // Scratch memory in the task (one page) and reading it back.
  uint64_t scratch() const { return scratch_; }
  void read_scratch(void* buf, size_t len, size_t offset = 0) const;
  // Runs the same injection in another thread of the same process (shares the scratch page).
  std::unique_ptr<arch::Injector> injector_for(pid_t tid) const;
  // Ends the session now (unmap scratch, restore registers); throws on failure.
  void close();

 private:
  pid_t tid_;
  uint64_t syscall_addr_ = 0;
  std::unique_ptr<arch::Injector> inj_;
  uint64_t scratch_ = 0;
};

}  // namespace crbox::dump
