#include "runtime/launcher.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "checkpoint/proc/misc.h"
#include "namespaces/pid.h"
#include "runtime/console.h"
#include "runtime/exec.h"
#include "runtime/init.h"
#include "runtime/privileges.h"
#include "runtime/registry.h"
#include "runtime/request_server.h"
#include "runtime/signals.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/files.h"

namespace crbox::runtime {
namespace {

struct Pipe {
  UniqueFd read, write;
  Pipe() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe");
    read.reset(p[0]);
    write.reset(p[1]);
  }
};

// Blocks the forwarded signals and SIGCHLD for the launcher's lifetime in this function, so none
// is lost between fork and the wait loop; restores the old mask at the end.
class SignalBlock {
 public:
  SignalBlock() {
    sigset_t set = forwarded_set(true);
    ::sigprocmask(SIG_BLOCK, &set, &old_);
  }
  ~SignalBlock() { ::sigprocmask(SIG_SETMASK, &old_, nullptr); }
  SignalBlock(const SignalBlock&) = delete;
  SignalBlock& operator=(const SignalBlock&) = delete;

 private:
  sigset_t old_;
};

// Kills and reaps the init unless released: killing a pid namespace's init makes the kernel kill
// every process in it (pid_namespaces(7)), and the init is reaped only after they are gone.
class InitGuard {
 public:
  InitGuard(pid_t pid, const SandboxCgroup& cg) : pid_(pid), cg_(cg) {}
  ~InitGuard() {
    if (pid_ <= 0) return;
    try {
      if (!cg_.paths().freezer.empty()) set_frozen(cg_.paths(), false);  // a frozen task cannot die
    } catch (...) {
    }
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  InitGuard(const InitGuard&) = delete;
  InitGuard& operator=(const InitGuard&) = delete;
  void release() { pid_ = -1; }

 private:
  pid_t pid_;
  const SandboxCgroup& cg_;
};

// The host pid of the init's child whose innermost pid is `inner`: /proc/PID/task/TID/children
// lists the children of each thread (proc(5)), zombies included, and the application cannot be
// reaped before the init gets kInitAck.
pid_t host_pid_of_child(pid_t init, pid_t inner) {
  std::string tasks = "/proc/" + std::to_string(init) + "/task";
  DIR* d = ::opendir(tasks.c_str());
  if (!d) throw_errno("cannot read " + tasks);
  std::vector<std::string> tids;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') tids.push_back(e->d_name);
  }
  ::closedir(d);
  for (const auto& tid : tids) {
    auto text = try_read_file(tasks + "/" + tid + "/children");
    if (!text) continue;
    for (pid_t child : proc::parse_children(*text)) {
      auto in = ns::innermost_pid(child);
      if (in && *in == inner) return child;
    }
  }
  throw Error("cannot find the sandbox's application (pid " + std::to_string(inner) + " inside) among its init's children");
}

// Waits for `child`, passing on forwarded signals (all of them, or only those not sent by the
// kernel). Returns its wait status.
int wait_forwarding(pid_t child, bool forward_kernel_signals) {
  sigset_t set = forwarded_set(true);
  for (;;) {
    siginfo_t si;
    int sig = ::sigwaitinfo(&set, &si);
    if (sig < 0) continue;
    if (sig == SIGCHLD) {
      int st = 0;
      pid_t p = ::waitpid(child, &st, WNOHANG);
      if (p == child) return st;
      continue;
    }
    if (!forward_kernel_signals && si.si_code == SI_KERNEL) continue;
    ::kill(child, sig);
  }
}

}  // namespace

int run_sandbox(const LaunchOptions& opts) {
  require_sandbox_privileges();
  const std::string id = opts.id.empty() ? generate_sandbox_id() : opts.id;
  if (!valid_sandbox_id(id)) throw Error("invalid sandbox name '" + id + "'");

  RegistryEntry entry(id);
  SandboxCgroup cg = SandboxCgroup::create(id, opts.spec.memory_limit, opts.spec.pids_limit);
  Pipe control, reports;
  UniqueFd request_socket = make_request_socket();
  std::optional<Pty> pty;
  if (opts.spec.tty) pty = open_pty();
  SignalBlock block;

  ns::CloneNamespaces which;
  which.net = opts.spec.net == model::NetMode::none;
  std::fflush(nullptr);  // the init must not flush the launcher's buffered output a second time
  pid_t init = ns::fork_into_namespaces(which);
  if (init == 0) {
    InitChannels ch;
    ch.control_read = control.read.get();
    ch.report_write = reports.write.get();
    ch.close_fds[0] = control.write.get();
    ch.close_fds[1] = reports.read.get();
    ch.close_fds[2] = entry.lock_fd();
    if (pty) {
      ch.close_fds[3] = pty->master.get();
      ch.console = pty->slave.get();
    }
    ch.request_socket = request_socket.get();
    run_init(opts, ch);
  }
  InitGuard guard(init, cg);
  control.read.reset();
  reports.write.reset();
  if (pty) pty->slave.reset();  // the init holds it; once it is gone, reading the master says so

  cg.add(init);
  write_all(control.write.get(), &kInitGo, 1, "init control pipe");

  InitReport rep;
  if (!read_exact(reports.read.get(), &rep, sizeof rep, "init report")) {
    throw Error("the sandbox's init ended during set-up");
  }
  if (rep.kind == InitReport::kError) {
    rep.message[sizeof rep.message - 1] = 0;
    throw Error(rep.message);
  }
  if (rep.kind != InitReport::kAppStarted) throw Error("unexpected report from the sandbox's init");

  SandboxRecord rec;
  rec.id = id;
  rec.init_pid = init;
  rec.app_inner_pid = rep.app_inner_pid;
  rec.app_pid = host_pid_of_child(init, rep.app_inner_pid);
  rec.launcher_pid = ::getpid();
  rec.init_start_ticks = process_start_ticks(init).value_or(0);
  rec.started_at = static_cast<int64_t>(::time(nullptr));
  rec.spec = opts.spec;
  rec.cgroups = cg.paths();
  entry.publish(rec);
  write_all(control.write.get(), &kInitAck, 1, "init control pipe");

  if (opts.on_started) {
    LaunchedSandbox ls{id, init, rec.app_pid, rec.app_inner_pid, cg.paths(), entry.dir()};
    opts.on_started(ls);  // if it throws, guard, cg and entry tear everything down
  }
  // libcr's requests from inside (self-checkpoints), served by a thread of ours from now on, so
  // a restored sandbox is complete before its first request is taken. Stopped before the
  // sandbox is torn down.
  RequestServer requests(std::move(request_socket), init);

  // The init runs in a session of its own, so terminal signals reach only the launcher: pass on
  // everything, kernel-sent or not. With --tty, relay the pty meanwhile (console.h).
  int st = pty ? relay_console(pty->master.get(), init) : wait_forwarding(init, true);
  guard.release();
  return exit_status_of(st);
}

int run_plain(const std::vector<std::string>& argv, const std::string& preload) {
  SignalBlock block;
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    reset_signals();
    // BLCR's cr_run: the program gets libcr_run.so (or libcr_omit.so) preloaded, with libcr's page
    // and signal handler (docs/libcr.md); cr_run computed the value (runtime/libcr_preload.h).
    if (!preload.empty()) ::setenv("LD_PRELOAD", preload.c_str(), 1);
    exec_or_exit(argv);
  }
  return exit_status_of(wait_forwarding(pid, false));
}

}  // namespace crbox::runtime
