// Per-thread state other than registers: sigaltstack(2), rseq(2), set_robust_list(2),
// set_tid_address(2). Registers, mask and pending signals are set by Puppet::release().
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "checkpoint/restore/apply.h"
#include "util/error.h"

namespace crbox::restore {

void apply_thread_state(Puppet& pp, arch::Injector& inj, const model::Thread& t) {
  stack_t ss{};
  ss.ss_sp = reinterpret_cast<void*>(t.altstack_sp);
  ss.ss_size = t.altstack_size;
  ss.ss_flags = t.altstack_flags & SS_DISABLE;  // SS_ONSTACK is a state, not a setting
  uint64_t addr = pp.put(&ss, sizeof ss);
  inj.check("restoring the alternate signal stack", SYS_sigaltstack, addr, 0);
  inj.call(SYS_set_tid_address, t.clear_child_tid);
  if (t.robust_list) inj.check("restoring the robust futex list", SYS_set_robust_list, t.robust_list, t.robust_list_len);
  if (t.rseq_addr) inj.check("registering rseq", SYS_rseq, t.rseq_addr, t.rseq_len, 0, t.rseq_sig);
  // The thread's name (prctl(2) PR_SET_NAME names the calling thread).
  if (!t.comm.empty())
    inj.check("restoring a thread's name", SYS_prctl, PR_SET_NAME, pp.put_string(t.comm.substr(0, 15)));
}

}  // namespace crbox::restore
