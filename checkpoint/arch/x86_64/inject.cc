#include "checkpoint/arch/x86_64/inject.h"

#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>

#include "util/error.h"

namespace crbox::arch {

long find_syscall_insn(const uint8_t* code, size_t len) {
  for (size_t i = 0; i + 7 <= len; i++) {
    if (code[i] == 0xb8 && code[i + 5] == 0x0f && code[i + 6] == 0x05) return static_cast<long>(i + 5);
  }
  return -1;
}

Injector::Injector(pid_t tid, uint64_t syscall_addr) : tid_(tid), addr_(syscall_addr) {
  saved_ = get_gp(tid);
  if (ptrace(PTRACE_GETSIGMASK, tid, sizeof saved_mask_, &saved_mask_) != 0)
    throw_errno("reading the signal mask of task " + std::to_string(tid));
  // Block every signal while injecting so none is delivered on our borrowed registers.
  uint64_t all = ~0ull;
  if (ptrace(PTRACE_SETSIGMASK, tid, sizeof all, &all) != 0)
    throw_errno("blocking signals in task " + std::to_string(tid));
}

Injector::~Injector() {
  try {
    restore();
  } catch (...) {
  }
}

void Injector::restore() {
  if (restored_) return;
  restored_ = true;
  set_gp(tid_, saved_);
  if (ptrace(PTRACE_SETSIGMASK, tid_, sizeof saved_mask_, &saved_mask_) != 0)
    throw_errno("restoring the signal mask of task " + std::to_string(tid_));
  if (stepped_) park();
}

// A single step ends in a signal-delivery-stop for SIGTRAP. Were the tracer to die there, the
// kernel would resume the task with that SIGTRAP, whose default action kills it (ptrace(2): the
// tracees of a dead tracer are detached and restarted; "handling of restart from
// signal-delivery-stop is currently buggy"). PTRACE_INTERRUPT first queues a trap; PTRACE_CONT
// with signal 0 then discards the SIGTRAP, and the kernel's signal loop takes the queued trap
// before it dequeues anything or returns to user space, so the task reports PTRACE_EVENT_STOP
// without running one instruction: the stop a freeze leaves, which simply ends if we die.
void Injector::park() {
  stepped_ = false;
  if (ptrace(PTRACE_INTERRUPT, tid_, 0, 0) != 0) throw_errno("interrupting task " + std::to_string(tid_));
  if (ptrace(PTRACE_CONT, tid_, 0, 0) != 0) throw_errno("resuming task " + std::to_string(tid_));
  for (;;) {
    int st = 0;
    if (waitpid(tid_, &st, __WALL) < 0) {
      if (errno == EINTR) continue;
      throw_errno("waiting for task " + std::to_string(tid_));
    }
    if (WIFEXITED(st) || WIFSIGNALED(st)) throw Error("task " + std::to_string(tid_) + " died after an injected syscall");
    if (WIFSTOPPED(st) && (st >> 16) == PTRACE_EVENT_STOP) return;
    throw Error("task " + std::to_string(tid_) + " stopped with signal " + std::to_string(WSTOPSIG(st)) +
                " instead of the interrupt after an injected syscall");
  }
}

long Injector::call(long nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6) {
  GpRegs r = saved_;
  r.rip = addr_;
  r.rax = static_cast<uint64_t>(nr);
  // orig_rax = -1: the task is not inside a syscall as far as the kernel's restart logic is
  // concerned, or it would rewind rip to re-execute an interrupted call.
  r.orig_rax = static_cast<uint64_t>(-1);
  r.rdi = a1;
  r.rsi = a2;
  r.rdx = a3;
  r.r10 = a4;
  r.r8 = a5;
  r.r9 = a6;
  set_gp(tid_, r);
  if (ptrace(PTRACE_SINGLESTEP, tid_, 0, 0) != 0) throw_errno("single-stepping task " + std::to_string(tid_));
  stepped_ = true;
  for (;;) {
    int st = 0;
    if (waitpid(tid_, &st, __WALL) < 0) {
      if (errno == EINTR) continue;
      throw_errno("waiting for task " + std::to_string(tid_));
    }
    if (WIFEXITED(st) || WIFSIGNALED(st)) {
      restored_ = true;
      throw Error("task " + std::to_string(tid_) + " died while a syscall was injected into it");
    }
    if (WIFSTOPPED(st) && WSTOPSIG(st) == SIGTRAP && (st >> 16) != 0) {
      // A ptrace event inside the injected syscall (PTRACE_EVENT_CLONE from an injected clone3,
      // with PTRACE_O_TRACECLONE): note its message (the new task's id) and finish the syscall.
      unsigned long msg = 0;
      if (ptrace(PTRACE_GETEVENTMSG, tid_, 0, &msg) == 0) event_msg_ = msg;
      if (ptrace(PTRACE_SINGLESTEP, tid_, 0, 0) != 0) throw_errno("single-stepping task " + std::to_string(tid_));
      continue;
    }
    if (WIFSTOPPED(st) && WSTOPSIG(st) == SIGTRAP) break;
    // Any other stop (a signal that got through): keep stepping on the same instruction.
    GpRegs now = get_gp(tid_);
    if (now.rip != addr_) {
      throw Error("task " + std::to_string(tid_) + " stopped with signal " + std::to_string(WSTOPSIG(st)) +
                  " during an injected syscall");
    }
    if (ptrace(PTRACE_SINGLESTEP, tid_, 0, 0) != 0) throw_errno("single-stepping task " + std::to_string(tid_));
  }
  GpRegs out = get_gp(tid_);
  return static_cast<long>(out.rax);
}

long Injector::check(const std::string& what, long nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                     uint64_t a5, uint64_t a6) {
  long r = call(nr, a1, a2, a3, a4, a5, a6);
  if (r < 0 && r > -4096) throw_errno(what + " (in task " + std::to_string(tid_) + ")", static_cast<int>(-r));
  return r;
}

}  // namespace crbox::arch
