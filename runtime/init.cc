#include "runtime/init.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "namespaces/mount.h"
#include "namespaces/net.h"
#include "namespaces/time.h"
#include "namespaces/uts.h"
#include "runtime/app.h"
#include "runtime/console.h"
#include "runtime/exec.h"
#include "runtime/request_server.h"
#include "runtime/signals.h"
#include "util/error.h"
#include "util/files.h"

namespace crbox::runtime {
namespace {

// Whether the user bound a directory of its own over the sandbox's /tmp (--bind X:/tmp, or over
// /). Then /tmp is not the sandbox's private tmpfs but maybe the host's /tmp, where a socket bound
// by root would be trusted by the host's libcr programs: the socket is not bound at all.
bool tmp_is_a_user_bind(const model::SandboxSpec& spec) {
  for (const auto& b : spec.binds) {
    std::string t = std::filesystem::path(b.target).lexically_normal().string();
    while (t.size() > 1 && t.back() == '/') t.pop_back();
    if (t == "/tmp" || t == "/") return true;
  }
  return false;
}

void noop_handler(int) {}

void report(int fd, const InitReport& r) {
  try {
    write_all(fd, &r, sizeof r, "init report");
  } catch (...) {
  }
}

[[noreturn]] void fail(int fd, const std::string& msg) {
  InitReport r;
  r.kind = InitReport::kError;
  std::strncpy(r.message, msg.c_str(), sizeof r.message - 1);
  report(fd, r);
  ::_exit(125);
}

bool read_byte(int fd, char want) {
  char c = 0;
  for (;;) {
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    return n == 1 && c == want;
  }
}

pid_t fork_default_app(const model::SandboxSpec& spec) {
  pid_t pid = ::fork();
  if (pid < 0) throw_errno("cannot start the application (fork)");
  if (pid == 0) {
    ::setpgid(0, 0);
    if (console_fd() >= 0) {
      try {
        attach_to_console();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, e.what());
        ::_exit(125);
      }
    }
    reset_signals();
    exec_sandboxed_app(spec);
  }
  return pid;
}

}  // namespace

void run_init(const LaunchOptions& opts, const InitChannels& ch) {
  for (int fd : ch.close_fds) {
    if (fd >= 0) ::close(fd);
  }
  // If the launcher dies, the sandbox goes with it: its registry entry would be stale anyway.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (!read_byte(ch.control_read, kInitGo)) ::_exit(125);

  const auto& spec = opts.spec;
  pid_t app = -1;
  try {
    if (::setsid() < 0) throw_errno("setsid");
    if (ch.console >= 0) take_console(ch.console);
    ns::setup_sandbox_mounts(spec);
    ns::set_hostname(spec.hostname);
    if (spec.net == model::NetMode::none) ns::bring_up_loopback();
    if (spec.time_namespace) {
      std::optional<ns::TimeOffsets> off;
      if (opts.time_offsets_ns) off = ns::TimeOffsets{opts.time_offsets_ns->first, opts.time_offsets_ns->second};
      ns::enter_time_namespace_for_children(off);
    }
    // In the sandbox's own /tmp, so every process of it (and of a restart of it) finds it at the
    // same path; the launcher, outside, keeps the listening socket.
    // Not when /tmp is a directory the user bound (then no program of the sandbox can ask for its
    // own checkpoint: docs/cli/cr_run.md).
    if (ch.request_socket >= 0) {
      if (!tmp_is_a_user_bind(spec)) bind_request_socket(ch.request_socket);
      else ::close(ch.request_socket);
    }
    struct sigaction sa = {};
    sa.sa_handler = noop_handler;
    sigemptyset(&sa.sa_mask);
    for (int s : forwarded_signals()) ::sigaction(s, &sa, nullptr);
    ::sigaction(SIGCHLD, &sa, nullptr);
    app = opts.start_app ? opts.start_app() : fork_default_app(spec);
    if (app <= 0) throw Error("the application could not be started");
  } catch (const std::exception& e) {
    fail(ch.report_write, e.what());
  }

  InitReport started;
  started.kind = InitReport::kAppStarted;
  started.app_inner_pid = app;
  report(ch.report_write, started);
  if (!read_byte(ch.control_read, kInitAck)) {
    ::kill(app, SIGKILL);
    ::_exit(125);
  }
  ::close(ch.control_read);
  ::close(ch.report_write);

  sigset_t set = forwarded_set(true);
  for (;;) {
    siginfo_t si;
    int sig = ::sigwaitinfo(&set, &si);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      ::kill(app, sig);
      continue;
    }
    for (;;) {
      int st = 0;
      pid_t p = ::waitpid(-1, &st, WNOHANG);
      if (p <= 0) break;
      if (p == app) ::_exit(exit_status_of(st));
    }
  }
}

}  // namespace crbox::runtime
