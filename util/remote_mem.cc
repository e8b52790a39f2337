#include "util/remote_mem.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

#include "util/error.h"
#include "util/fd.h"

namespace crbox {

namespace {

void via_proc_mem(pid_t pid, uint64_t addr, void* buf, size_t len, bool write) {
  std::string path = "/proc/" + std::to_string(pid) + "/mem";
  UniqueFd fd(::open(path.c_str(), (write ? O_WRONLY : O_RDONLY) | O_CLOEXEC));
  if (!fd) throw_errno(path);
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    ssize_t n = write ? ::pwrite(fd.get(), p, len, static_cast<off_t>(addr)) : ::pread(fd.get(), p, len, static_cast<off_t>(addr));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw_errno((write ? "writing " : "reading ") + std::to_string(len) + " bytes at 0x" +
                            std::to_string(addr) + " in pid " + std::to_string(pid), n < 0 ? errno : EIO);
    p += n;
    addr += static_cast<uint64_t>(n);
    len -= static_cast<size_t>(n);
  }
}

void transfer(pid_t pid, uint64_t addr, void* buf, size_t len, bool write) {
  size_t done = 0;
  while (done < len) {
    iovec local{static_cast<char*>(buf) + done, len - done};
    iovec remote{reinterpret_cast<void*>(addr + done), len - done};
    ssize_t n = write ? process_vm_writev(pid, &local, 1, &remote, 1, 0) : process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n <= 0) {
      // EFAULT: a page without the needed permission; /proc/PID/mem goes through it (FOLL_FORCE).
      via_proc_mem(pid, addr + done, static_cast<char*>(buf) + done, len - done, write);
      return;
    }
    done += static_cast<size_t>(n);
  }
}

}  // namespace

void remote_read(pid_t pid, uint64_t addr, void* buf, size_t len) { transfer(pid, addr, buf, len, false); }

void remote_write(pid_t pid, uint64_t addr, const void* buf, size_t len) {
  transfer(pid, addr, const_cast<void*>(buf), len, true);
}

size_t remote_write_string(pid_t pid, uint64_t addr, const std::string& s) {
  remote_write(pid, addr, s.c_str(), s.size() + 1);
  return s.size() + 1;
}

}  // namespace crbox
