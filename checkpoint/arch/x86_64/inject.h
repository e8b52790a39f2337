// Running a syscall inside a ptrace-stopped task: point its registers at a `syscall` instruction,
// single-step over it, read the result, put the registers back (ptrace(2), PTRACE_SINGLESTEP).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "checkpoint/arch/x86_64/regs.h"

namespace crbox::arch {

// Finds a real `syscall` instruction in a code image: the pattern `mov $imm32, %eax; syscall`
// (b8 xx xx xx xx 0f 05), which the vDSO uses for its fallback paths, so the two bytes are known to
// start an instruction. Returns the offset of `0f 05`, or -1.
long find_syscall_insn(const uint8_t* code, size_t len);

// The bytes of the restore trampoline: `syscall; int3`.
inline constexpr uint8_t kTrampolineCode[] = {0x0f, 0x05, 0xcc};

class Injector {
 public:
  // `tid` must be in a ptrace stop; `syscall_addr` is the address of a `syscall` instruction in it.
  // The task's registers and signal mask are saved here and put back by restore() or the destructor.
  Injector(pid_t tid, uint64_t syscall_addr);
  ~Injector();
  Injector(const Injector&) = delete;
  Injector& operator=(const Injector&) = delete;

  // Runs syscall `nr` in the task; returns the raw result (-errno on failure).
  long call(long nr, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0, uint64_t a4 = 0, uint64_t a5 = 0,
            uint64_t a6 = 0);
  // Like call(), but throws crbox::Error("<what>: <strerror>") on a negative result.
  long check(const std::string& what, long nr, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0,
             uint64_t a4 = 0, uint64_t a5 = 0, uint64_t a6 = 0);

  void set_syscall_addr(uint64_t a) { addr_ = a; }
  // PTRACE_GETEVENTMSG of the last ptrace event seen during call() (a cloned task's id).
  uint64_t event_msg() const { return event_msg_; }
  const GpRegs& saved_regs() const { return saved_; }
  // Puts back the registers and signal mask saved at construction (idempotent). After call(),
  // it also leaves the task in a PTRACE_EVENT_STOP again rather than in the signal-delivery-stop
  // of the last step's SIGTRAP (see park()).
  void restore();
  // Forget the saved state: the caller sets the final registers itself.
  void release() { restored_ = true; }

 private:
  pid_t tid_;
  uint64_t addr_;
  GpRegs saved_{};
  uint64_t saved_mask_ = 0;
  bool restored_ = false;
  uint64_t event_msg_ = 0;
  bool stepped_ = false;  // call() single-stepped the task: it sits in a SIGTRAP signal-delivery-stop
  void park();
};

}  // namespace crbox::arch
