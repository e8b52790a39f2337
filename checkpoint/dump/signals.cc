// Signal dispositions (rt_sigaction(2) asked of the task itself) and the process-wide queue of
// pending signals (PTRACE_PEEKSIGINFO with PTRACE_PEEKSIGINFO_SHARED, ptrace(2)).
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include <cstring>

#include "checkpoint/dump/collect.h"
#include "checkpoint/dump/signals.h"
#include "util/error.h"

namespace crbox::dump {

std::vector<model::PendingSignal> peek_pending(pid_t tid, bool shared) {
  std::vector<model::PendingSignal> out;
  // struct ptrace_peeksiginfo_args (linux/ptrace.h): off, flags, nr.
  struct {
    uint64_t off;
    uint32_t flags;
    int32_t nr;
  } args{0, shared ? 1u : 0u, 32};
  siginfo_t buf[32];
  for (;;) {
    long n = ptrace(static_cast<__ptrace_request>(0x4209 /* PTRACE_PEEKSIGINFO */), tid, &args, buf);
    if (n < 0) throw_errno("reading the pending signals of task " + std::to_string(tid));
    for (long i = 0; i < n; i++) {
      model::PendingSignal ps;
      ps.siginfo.assign(reinterpret_cast<uint8_t*>(&buf[i]), reinterpret_cast<uint8_t*>(&buf[i]) + sizeof(siginfo_t));
      out.push_back(std::move(ps));
    }
    if (n < args.nr) break;
    args.off += static_cast<uint64_t>(n);
  }
  return out;
}

void collect_signals(pid_t pid, RemoteSession& rs, model::Process& p) {
  p.sigactions.assign(64, {});
  for (int sig = 1; sig <= 64; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    // struct kernel_sigaction: handler, flags, restorer, mask (8 bytes with sigsetsize 8).
    long r = rs.call(SYS_rt_sigaction, static_cast<uint64_t>(sig), 0, rs.scratch(), 8);
    if (r < 0) {
      if (r == -EINVAL) continue;  // signals reserved by the kernel
      throw_errno("reading the handler of signal " + std::to_string(sig) + " in pid " + std::to_string(pid),
                  static_cast<int>(-r));
    }
    uint64_t ka[4];
    rs.read_scratch(ka, sizeof ka);
    p.sigactions[sig - 1] = {ka[0], ka[1], ka[2], ka[3]};
  }
  p.shared_pending = peek_pending(pid, true);
}

}  // namespace crbox::dump
