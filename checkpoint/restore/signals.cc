// Signal dispositions, set with rt_sigaction(2) inside the puppet: every one, since the puppet
// inherited cr_restart's own handlers, which point into memory that no longer exists.
#include <signal.h>
#include <sys/syscall.h>

#include "checkpoint/restore/apply.h"
#include "util/error.h"

namespace crbox::restore {

void apply_signals(Puppet& pp, const model::Process& p) {
  for (int sig = 1; sig <= 64; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    model::SigAction a;
    if (static_cast<size_t>(sig - 1) < p.sigactions.size()) a = p.sigactions[sig - 1];
    uint64_t ka[4] = {a.handler, a.flags, a.restorer, a.mask};
    uint64_t addr = pp.put(ka, sizeof ka);
    long r = pp.call(SYS_rt_sigaction, static_cast<uint64_t>(sig), addr, 0, 8);
    if (r == -EINVAL) continue;  // signals the kernel reserves
    if (r < 0) throw_errno("restoring the handler of signal " + std::to_string(sig), static_cast<int>(-r));
  }
}

}  // namespace crbox::restore
