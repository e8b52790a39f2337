// Per-thread state other than registers: sigaltstack(2), rseq(2), set_robust_list(2),
// set_tid_address(2). Registers, mask and pending signals are set by Puppet::release().
#include <signal.h>
#include <sys/syscall.h>

#include "checkpoint/restore/apply.h"
#include "util/error.h"

namespace crbox::restore {

void apply_thread_state(Puppet& pp, const model::Thread& t) {
  stack_t ss{};
  ss.ss_sp = reinterpret_cast<void*>(t.altstack_sp);
  ss.ss_size = t.altstack_size;
  ss.ss_flags = t.altstack_flags & SS_DISABLE;  // SS_ONSTACK is a state, not a setting
  uint64_t addr = pp.put(&ss, sizeof ss);
  pp.check("restoring the alternate signal stack", SYS_sigaltstack, addr, 0);
  pp.call(SYS_set_tid_address, t.clear_child_tid);
  if (t.robust_list) pp.check("restoring the robust futex list", SYS_set_robust_list, t.robust_list, t.robust_list_len);
  if (t.rseq_addr)
    pp.check("registering rseq", SYS_rseq, t.rseq_addr, t.rseq_len, 0, t.rseq_sig);
}

}  // namespace crbox::restore
