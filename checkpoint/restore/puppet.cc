#include "checkpoint/restore/puppet.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <time.h>

#include <cerrno>
#include <cstring>

#include "checkpoint/arch/x86_64/regs.h"
#include "checkpoint/proc/maps.h"
#include "checkpoint/proc/stat.h"
#include "util/error.h"
#include "util/files.h"
#include "util/remote_mem.h"

namespace crbox::restore {

namespace {

constexpr uint64_t kPage = 4096;

}  // namespace

pid_t clone_with_pid(pid_t pid) {
  clone_args args{};
  args.exit_signal = SIGCHLD;
  pid_t tid = pid;
  if (pid > 0) {
    args.set_tid = reinterpret_cast<uint64_t>(&tid);
    args.set_tid_size = 1;
  }
  long r = syscall(SYS_clone3, &args, sizeof args);
  // A process killed a moment ago (cr_checkpoint --kill) may still be a zombie waiting for its
  // parent to reap it: give the parent a moment.
  for (int i = 0; r < 0 && errno == EEXIST && i < 200 && proc::is_exited(pid); i++) {
    timespec ts{0, 10000000};
    nanosleep(&ts, nullptr);
    r = syscall(SYS_clone3, &args, sizeof args);
  }
  if (r < 0) {
    if (errno == EEXIST && proc::is_exited(pid))
      throw Error("pid " + std::to_string(pid) + " is still held by a zombie its parent has not reaped; restart with --no-restore-pid",
                  FailureKind::temporary);
    if (errno == EEXIST)
      throw Error("pid " + std::to_string(pid) + " is in use by another process; stop it, or restart with --no-restore-pid",
                  FailureKind::temporary);
    if (errno == EINVAL && pid > 0)
      throw Error("pid " + std::to_string(pid) + " cannot be created here (above pid_max?); restart with --no-restore-pid");
    throw_errno("creating the process" + (pid > 0 ? " with pid " + std::to_string(pid) : std::string()));
  }
  return static_cast<pid_t>(r);
}

void map_trampoline(uint64_t addr) {
  void* t = mmap(reinterpret_cast<void*>(addr), kTrampolinePages * kPage, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (t == MAP_FAILED || reinterpret_cast<uint64_t>(t) != addr)
    throw Error("cannot map the restore trampoline at its chosen address");
  std::memcpy(t, arch::kTrampolineCode, sizeof arch::kTrampolineCode);
  if (mprotect(t, kPage, PROT_READ | PROT_EXEC) != 0) throw_errno("mprotect trampoline");
}

uint64_t choose_trampoline(const model::Image& img) {
  auto own = proc::parse_maps(read_file("/proc/self/maps"));
  const uint64_t size = kTrampolinePages * kPage;
  auto busy = [&](uint64_t a) {
    for (const auto& p : img.processes)
      for (const auto& v : p.vmas)
        if (a < v.end && v.start < a + size) return true;
    for (const auto& m : own)
      if (a < m.end && m.start < a + size) return true;
    return false;
  };
  // Low addresses above mmap_min_addr are rarely used by either layout; walk up in 1 MiB steps.
  for (uint64_t a = 0x10000000; a < 0x7f0000000000ull; a += 0x100000)
    if (!busy(a)) return a;
  throw Error("no free place for the restore trampoline in the image's address space");
}

Puppet::Puppet(pid_t host_pid, uint64_t trampoline, UniqueFd sync_read_end, bool is_child)
    : pid_(host_pid), tramp_(trampoline), sync_(std::move(sync_read_end)), is_child_(is_child) {}

Puppet::~Puppet() {
  if (!released_) kill();
}

void Puppet::kill() {
  if (pid_ <= 0 || released_) return;
  for (auto& [t, inj] : threads_) inj->release();
  if (inj_) inj_->release();
  inj_.reset();
  ::kill(pid_, SIGKILL);
  // A traced task's death is reported to its tracer first, and it stays a zombie, holding up its
  // parent (and a pid namespace's teardown), until the tracer collects that report: collect it,
  // parent or not (ptrace(2), "Death under ptrace").
  for (auto& [t, inj] : threads_) waitpid(t, nullptr, __WALL);
  threads_.clear();
  waitpid(pid_, nullptr, __WALL);
  released_ = true;
}

void Puppet::take_control() {
  char buf[1024];
  std::string msg = sync_ ? "" : "ok";
  while (sync_) {
    ssize_t n = read(sync_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    msg.append(buf, static_cast<size_t>(n));
    if (msg == "ok") break;
  }
  if (msg != "ok") {
    if (msg.empty()) msg = "the new process died while setting itself up";
    throw Error(msg);
  }
  // Our read end stays open until release: the child's pause() keeps it alive; its end is closed
  // by injection.
  if (ptrace(PTRACE_SEIZE, pid_, 0, PTRACE_O_EXITKILL) != 0) throw_errno("seizing the new process " + std::to_string(pid_));
  if (ptrace(PTRACE_INTERRUPT, pid_, 0, 0) != 0) throw_errno("stopping the new process");
  for (;;) {
    int st = 0;
    if (waitpid(pid_, &st, __WALL) < 0) {
      if (errno == EINTR) continue;
      throw_errno("waiting for the new process to stop");
    }
    if (WIFEXITED(st) || WIFSIGNALED(st)) throw Error("the new process died before it could be restored");
    if (WIFSTOPPED(st) && (st >> 16) == PTRACE_EVENT_STOP) break;
    // Any other stop (a signal): continue it without the signal and wait for the interrupt.
    ptrace(PTRACE_CONT, pid_, 0, 0);
  }
  // Injected syscalls must pass the sandbox's seccomp filter, if the puppet got one already
  // (ptrace(2), PTRACE_O_SUSPEND_SECCOMP: settable only in a ptrace stop).
  ptrace(PTRACE_SETOPTIONS, pid_, 0, PTRACE_O_EXITKILL | PTRACE_O_SUSPEND_SECCOMP | PTRACE_O_TRACECLONE);
  inj_ = std::make_unique<arch::Injector>(pid_, tramp_);
}

uint64_t Puppet::put(const void* data, size_t len, size_t offset) {
  if (offset + len > scratch_size()) throw Error("restore scratch area too small (" + std::to_string(len) + " bytes)");
  remote_write(pid_, scratch() + offset, data, len);
  return scratch() + offset;
}

uint64_t Puppet::put_string(const std::string& s, size_t offset) { return put(s.c_str(), s.size() + 1, offset); }

namespace {

void set_final_state(pid_t tgid, pid_t tid, const model::Thread& t) {
  arch::GpRegs gp = arch::gp_from_bytes(t.regs.gp);
  // Not inside a syscall: the image's registers already encode any restart (fixed at dump time).
  gp.orig_rax = static_cast<uint64_t>(-1);
  arch::set_gp(tid, gp);
  arch::set_xstate(tid, t.regs.xstate);
  uint64_t mask = t.sigmask;
  if (ptrace(PTRACE_SETSIGMASK, tid, sizeof mask, &mask) != 0) throw_errno("setting the signal mask");
  for (const auto& ps : t.pending) {
    if (ps.siginfo.size() != sizeof(siginfo_t)) continue;
    siginfo_t si;
    std::memcpy(&si, ps.siginfo.data(), sizeof si);
    // A kernel-generated siginfo cannot be queued by another process (rt_tgsigqueueinfo(2), EPERM):
    // the signal itself is still delivered with tgkill.
    if (syscall(SYS_rt_tgsigqueueinfo, tgid, tid, si.si_signo, &si) != 0) syscall(SYS_tgkill, tgid, tid, si.si_signo);
  }
}

}  // namespace

pid_t Puppet::create_thread(int32_t image_tid) {
  // struct clone_args in the scratch area; the new thread shares everything a pthread does. Its
  // stack pointer is irrelevant: it is stopped before it runs and gets its own registers.
  clone_args args{};
  args.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
  pid_t tid = image_tid;
  uint64_t tid_addr = put(&tid, sizeof tid, 3072);
  args.set_tid = tid_addr;
  args.set_tid_size = 1;
  uint64_t a = put(&args, sizeof args, 2048);
  long r = inj_->call(SYS_clone3, a, sizeof args);
  if (r == -EEXIST)
    throw Error("thread id " + std::to_string(image_tid) + " is in use by another process; stop it, or restart with --no-restore-pid",
                FailureKind::temporary);
  if (r < 0) throw_errno("creating thread " + std::to_string(image_tid), static_cast<int>(-r));
  pid_t host = static_cast<pid_t>(inj_->event_msg());
  if (host <= 0) throw Error("the new thread " + std::to_string(image_tid) + " was not reported by the kernel");
  // The new thread starts with a PTRACE_EVENT_STOP (ptrace(2), PTRACE_O_TRACECLONE under SEIZE).
  for (;;) {
    int st = 0;
    if (waitpid(host, &st, __WALL) < 0) {
      if (errno == EINTR) continue;
      throw_errno("waiting for the new thread " + std::to_string(image_tid));
    }
    if (WIFEXITED(st) || WIFSIGNALED(st)) throw Error("the new thread " + std::to_string(image_tid) + " died");
    if (WIFSTOPPED(st)) break;
  }
  threads_.emplace_back(host, std::make_unique<arch::Injector>(host, tramp_));
  return host;
}

arch::Injector& Puppet::thread_injector(pid_t host_tid) {
  for (auto& [t, inj] : threads_)
    if (t == host_tid) return *inj;
  throw Error("no restored thread " + std::to_string(host_tid));
}

void Puppet::finish_thread(pid_t host_tid, const model::Thread& t) {
  thread_injector(host_tid).release();
  set_final_state(pid_, host_tid, t);
}

void Puppet::release(const model::Thread& t, int stop_signal) {
  // The last injected call unmaps the trampoline itself. The single-step trap arrives right after
  // the syscall returns, before the next (now unmapped) instruction is fetched, and the registers
  // are replaced at that stop, so nothing ever runs from the trampoline again. The other threads
  // already hold their final registers.
  long r = inj_->call(SYS_munmap, tramp_, kTrampolinePages * kPage);
  if (r < 0) throw_errno("unmapping the restore trampoline", static_cast<int>(-r));
  inj_->release();
  set_final_state(pid_, pid_, t);
  // A signal sent while the process is still stopped is acted on once it is detached (SIGKILL at
  // once: then there is nothing left to detach from).
  if (stop_signal) ::kill(pid_, stop_signal);
  for (auto& [tid, inj] : threads_) {
    if (ptrace(PTRACE_DETACH, tid, 0, 0) != 0 && !(errno == ESRCH && stop_signal == SIGKILL))
      throw_errno("detaching from a restored thread");
  }
  if (ptrace(PTRACE_DETACH, pid_, 0, 0) != 0 && !(errno == ESRCH && stop_signal == SIGKILL))
    throw_errno("detaching from the restored process");
  released_ = true;
  threads_.clear();
  inj_.reset();
}

}  // namespace crbox::restore
