// Credentials not visible in /proc/PID/status: the securebits (prctl(2), PR_GET_SECUREBITS).
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include <cerrno>

#include "checkpoint/dump/collect.h"
#include "checkpoint/proc/status.h"
#include "util/error.h"
#include "util/files.h"

namespace crbox::dump {

void collect_securebits(RemoteSession& rs, model::Process& p) {
  long r = rs.check("PR_GET_SECUREBITS", SYS_prctl, PR_GET_SECUREBITS);
  p.creds.securebits = static_cast<uint32_t>(r);
}

void collect_seccomp(pid_t pid, model::Process& p) {
  auto st = proc::parse_status(read_file("/proc/" + std::to_string(pid) + "/status"));
  p.seccomp_filters.clear();
  if (st.seccomp == 0) return;
  if (st.seccomp == 1) throw Error("pid " + std::to_string(pid) + " runs in seccomp strict mode, which is not supported");
  // PTRACE_SECCOMP_GET_FILTER (ptrace(2)): filter 0 is the newest; with a null buffer it returns
  // the number of instructions, then fills the buffer.
  constexpr int kGetFilter = 0x420c;
  for (long i = 0;; i++) {
    long n = ptrace(static_cast<__ptrace_request>(kGetFilter), pid, i, nullptr);
    if (n < 0) {
      if (errno == ENOENT) break;
      throw_errno("reading the seccomp filters of pid " + std::to_string(pid));
    }
    std::vector<uint8_t> prog(static_cast<size_t>(n) * 8);
    if (ptrace(static_cast<__ptrace_request>(kGetFilter), pid, i, prog.data()) != n)
      throw_errno("reading seccomp filter " + std::to_string(i) + " of pid " + std::to_string(pid));
    p.seccomp_filters.insert(p.seccomp_filters.begin(), std::move(prog));
  }
}

}  // namespace crbox::dump
