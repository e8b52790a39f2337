#include "checkpoint/dump/remote_session.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vector>

#include "util/error.h"
#include "util/remote_mem.h"

namespace crbox::dump {

RemoteSession::RemoteSession(pid_t tid, uint64_t vdso_start, uint64_t vdso_end) : tid_(tid) {
  if (vdso_end <= vdso_start) throw Error("pid " + std::to_string(tid) + " has no vDSO; crbox needs one to query it");
  std::vector<uint8_t> code(vdso_end - vdso_start);
  remote_read(tid, vdso_start, code.data(), code.size());
  long off = arch::find_syscall_insn(code.data(), code.size());
  if (off < 0) throw Error("no syscall instruction found in the vDSO of pid " + std::to_string(tid));
  syscall_addr_ = vdso_start + static_cast<uint64_t>(off);
  inj_ = std::make_unique<arch::Injector>(tid, syscall_addr_);
  long r = inj_->call(SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, static_cast<uint64_t>(-1), 0);
  if (r < 0 && r > -4096) throw_errno("mapping a scratch page in pid " + std::to_string(tid), static_cast<int>(-r));
  scratch_ = static_cast<uint64_t>(r);
}

RemoteSession::~RemoteSession() {
  try {
    close();
  } catch (...) {
  }
}

void RemoteSession::close() {
  if (!inj_) return;
  if (scratch_) {
    long r = inj_->call(SYS_munmap, scratch_, 4096);
    scratch_ = 0;
    if (r < 0) {
      inj_->restore();
      inj_.reset();
      throw_errno("unmapping the scratch page in pid " + std::to_string(tid_), static_cast<int>(-r));
    }
  }
  inj_->restore();
  inj_.reset();
}

void RemoteSession::read_scratch(void* buf, size_t len, size_t offset) const {
  remote_read(tid_, scratch_ + offset, buf, len);
}

std::unique_ptr<arch::Injector> RemoteSession::injector_for(pid_t tid) const {
  return std::make_unique<arch::Injector>(tid, syscall_addr_);
}

}  // namespace crbox::dump
