// x86_64 register sets as ptrace(2) exposes them (PTRACE_GETREGSET with NT_PRSTATUS and
// NT_X86_XSTATE), and the kernel's restartable-syscall convention.
#pragma once

#include <sys/types.h>
#include <sys/user.h>

#include <cstdint>
#include <vector>

namespace crbox::arch {

using GpRegs = user_regs_struct;

GpRegs get_gp(pid_t tid);
void set_gp(pid_t tid, const GpRegs& r);
// The XSAVE area; its size depends on the CPU's enabled features (xcr0), so it is read, never assumed.
std::vector<uint8_t> get_xstate(pid_t tid);
void set_xstate(pid_t tid, const std::vector<uint8_t>& xs);

std::vector<uint8_t> gp_to_bytes(const GpRegs& r);
GpRegs gp_from_bytes(const std::vector<uint8_t>& b);

// A task stopped inside an interrupted syscall has orig_rax = the syscall number and rax = one of
// the kernel's internal -ERESTART* codes (see signal(7), "Interruption of system call and library
// functions by signal handlers"). The original task resumes through the kernel's own restart
// logic; a restored task is brand new, so its registers are rewritten here to what the kernel
// would do without a handler: re-execute the syscall (rip -= 2) for ERESTARTSYS, ERESTARTNOINTR
// and ERESTARTNOHAND; for ERESTART_RESTARTBLOCK the restart block lives in the old task only, so
// the call returns -EINTR, as after a handled signal (nanosleep(2) documents EINTR).
// Returns true when the registers were changed.
bool fixup_interrupted_syscall(GpRegs& r);

inline constexpr long kErestartSys = 512;
inline constexpr long kErestartNoIntr = 513;
inline constexpr long kErestartNoHand = 514;
inline constexpr long kErestartRestartBlock = 516;

}  // namespace crbox::arch
