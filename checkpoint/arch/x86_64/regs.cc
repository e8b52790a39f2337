#include "checkpoint/arch/x86_64/regs.h"

#include <elf.h>
#include <sys/ptrace.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "util/error.h"

namespace crbox::arch {

GpRegs get_gp(pid_t tid) {
  GpRegs r{};
  iovec iov{&r, sizeof r};
  if (ptrace(PTRACE_GETREGSET, tid, NT_PRSTATUS, &iov) != 0)
    throw_errno("reading the registers of task " + std::to_string(tid));
  return r;
}

void set_gp(pid_t tid, const GpRegs& r) {
  GpRegs copy = r;
  iovec iov{&copy, sizeof copy};
  if (ptrace(PTRACE_SETREGSET, tid, NT_PRSTATUS, &iov) != 0)
    throw_errno("setting the registers of task " + std::to_string(tid));
}

std::vector<uint8_t> get_xstate(pid_t tid) {
  // The kernel shrinks iov_len to the size of the area it filled (ptrace(2), PTRACE_GETREGSET).
  std::vector<uint8_t> buf(64 * 1024);
  iovec iov{buf.data(), buf.size()};
  if (ptrace(PTRACE_GETREGSET, tid, NT_X86_XSTATE, &iov) != 0)
    throw_errno("reading the vector registers of task " + std::to_string(tid));
  buf.resize(iov.iov_len);
  return buf;
}

void set_xstate(pid_t tid, const std::vector<uint8_t>& xs) {
  if (xs.empty()) return;
  std::vector<uint8_t> copy = xs;
  iovec iov{copy.data(), copy.size()};
  if (ptrace(PTRACE_SETREGSET, tid, NT_X86_XSTATE, &iov) != 0)
    throw_errno("setting the vector registers of task " + std::to_string(tid) +
                " (an image from a CPU with other vector extensions?)");
}

std::vector<uint8_t> gp_to_bytes(const GpRegs& r) {
  std::vector<uint8_t> b(sizeof r);
  std::memcpy(b.data(), &r, sizeof r);
  return b;
}

GpRegs gp_from_bytes(const std::vector<uint8_t>& b) {
  if (b.size() != sizeof(GpRegs))
    throw Error("the image's general registers are " + std::to_string(b.size()) + " bytes, expected " +
                std::to_string(sizeof(GpRegs)));
  GpRegs r;
  std::memcpy(&r, b.data(), sizeof r);
  return r;
}

bool fixup_interrupted_syscall(GpRegs& r) {
  if (static_cast<long>(r.orig_rax) < 0) return false;
  long ret = static_cast<long>(r.rax);
  switch (-ret) {
    case kErestartSys:
    case kErestartNoIntr:
    case kErestartNoHand:
      r.rax = r.orig_rax;
      r.rip -= 2;  // the syscall instruction is two bytes (0f 05)
      return true;
    case kErestartRestartBlock:
      r.rax = static_cast<unsigned long long>(-EINTR);
      return true;
    default:
      return false;
  }
}

}  // namespace crbox::arch
