// Per-thread state: registers (PTRACE_GETREGSET), blocked mask (PTRACE_GETSIGMASK), private
// pending signals, rseq (PTRACE_GET_RSEQ_CONFIGURATION), robust futex list (get_robust_list(2)),
// and what only the thread can report: sigaltstack(2) and its clear_child_tid
// (prctl(2) PR_GET_TID_ADDRESS).
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "checkpoint/arch/x86_64/regs.h"
#include "checkpoint/dump/collect.h"
#include "checkpoint/dump/signals.h"
#include "util/error.h"
#include "util/files.h"
#include "util/strings.h"
#include "util/remote_mem.h"

namespace crbox::dump {

namespace {

constexpr int kPtraceGetRseqConfiguration = 0x420f;

struct RseqConfiguration {  // struct ptrace_rseq_configuration (linux/ptrace.h)
  uint64_t rseq_abi_pointer;
  uint32_t rseq_abi_size;
  uint32_t signature;
  uint32_t flags;
  uint32_t pad;
};

void injected_state(pid_t tid, arch::Injector& inj, uint64_t scratch, model::Thread& th) {
  inj.check("sigaltstack", SYS_sigaltstack, 0, scratch);
  stack_t ss{};
  remote_read(tid, scratch, &ss, sizeof ss);
  th.altstack_sp = reinterpret_cast<uint64_t>(ss.ss_sp);
  th.altstack_size = ss.ss_size;
  th.altstack_flags = ss.ss_flags;

  inj.check("PR_GET_TID_ADDRESS", SYS_prctl, PR_GET_TID_ADDRESS, scratch);
  uint64_t ctid = 0;
  remote_read(tid, scratch, &ctid, sizeof ctid);
  th.clear_child_tid = ctid;
}

}  // namespace

void collect_thread_registers(const FrozenProcess& fp, model::Process& p) {
  p.threads.clear();
  for (const auto& t : fp.tasks()) {
    model::Thread th;
    pid_t tid = t.tid;
    th.tid = tid;  // translated to the image's namespace by the caller
    if (auto c = try_read_file("/proc/" + std::to_string(fp.pid()) + "/task/" + std::to_string(tid) + "/comm"))
      th.comm = std::string(trim(*c));
    // The registers as they are at the stop; the restartable-syscall fix-up happens here so the
    // image holds what a fresh task must resume with.
    arch::GpRegs gp = arch::get_gp(tid);
    arch::fixup_interrupted_syscall(gp);
    th.regs.gp = arch::gp_to_bytes(gp);
    th.regs.xstate = arch::get_xstate(tid);
    if (ptrace(PTRACE_GETSIGMASK, tid, sizeof th.sigmask, &th.sigmask) != 0)
      throw_errno("reading the signal mask of task " + std::to_string(tid));
    th.pending = peek_pending(tid, false);
    if (!t.delivered_siginfo.empty()) th.pending.push_back({t.delivered_siginfo});

    RseqConfiguration rc{};
    if (ptrace(static_cast<__ptrace_request>(kPtraceGetRseqConfiguration), tid, sizeof rc, &rc) > 0) {
      th.rseq_addr = rc.rseq_abi_pointer;
      th.rseq_len = rc.rseq_abi_size;
      th.rseq_sig = rc.signature;
    }
    void* head = nullptr;
    size_t len = 0;
    if (syscall(SYS_get_robust_list, tid, &head, &len) != 0)
      throw_errno("reading the robust futex list of task " + std::to_string(tid));
    th.robust_list = reinterpret_cast<uint64_t>(head);
    th.robust_list_len = len;
    p.threads.push_back(std::move(th));
  }
}

void collect_thread_injected(const FrozenProcess& fp, RemoteSession& rs, model::Process& p) {
  for (size_t i = 0; i < fp.tasks().size(); i++) {
    pid_t tid = fp.tasks()[i].tid;
    if (tid == fp.pid()) {
      injected_state(tid, rs.injector(), rs.scratch(), p.threads[i]);
    } else {
      auto inj = rs.injector_for(tid);
      injected_state(tid, *inj, rs.scratch(), p.threads[i]);
    }
  }
}

}  // namespace crbox::dump
