// cr_restart: BLCR's command line over crbox's restore engine.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstring>
#include <iostream>

#include "checkpoint/restore/restorer.h"
#include "cli/after_options.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/files.h"

using namespace crbox;

namespace {

void run_hook(const std::string& cmd, const std::string& what) {
  if (cmd.empty()) return;
  setenv("CR_RESTART_RESULT", what.c_str(), 1);
  int r = system(cmd.c_str());
  (void)r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Restart a process (or a crbox sandbox) from a bundle written by cr_checkpoint.", "cr_restart"};
  app.set_version_flag("--version", std::string("cr_restart (crbox) ") + CRBOX_VERSION);
  std::string file, file_opt;
  int in_fd = -1;
  bool no_restore_pid = false, restore_pid = false, restore_pgid = false, no_restore_pgid = false;
  bool restore_sid = false, no_restore_sid = false;
  cli::AfterOptions after;
  std::string on_success, on_failure, on_fail_args, on_fail_temp, on_fail_env, on_fail_perm;
  bool detach = false, quiet = false, verbose = false;
  std::vector<std::string> relocate;
  bool accept_changed = false;
  bool omit_maybe = false, omit_always = false, omit_never = false;

  app.add_option("FILE", file, "the bundle ('-' for standard input)");
  auto* src = app.add_option_group("source", "");
  src->add_option("-f,--file", file_opt, "the bundle");
  src->add_option("-F,--fd", in_fd, "read the bundle from open file descriptor N");
  src->require_option(0, 1);
  app.add_flag("--restore-pid", restore_pid, "give the process its original pid (default)");
  app.add_flag("--no-restore-pid", no_restore_pid, "let the kernel choose a new pid");
  app.add_flag("--restore-pgid", restore_pgid, "restore the process group (when the process led it)");
  app.add_flag("--no-restore-pgid", no_restore_pgid, "join cr_restart's process group (default)");
  app.add_flag("--restore-sid", restore_sid, "restore the session (when the process led it)");
  app.add_flag("--no-restore-sid", no_restore_sid, "stay in cr_restart's session (default)");
  cli::add_after_options(app, after, "once restored");
  app.add_option("--run-on-success", on_success, "run CMD (with /bin/sh) once the process is restored");
  app.add_option("--run-on-failure", on_failure, "run CMD if the restart fails");
  app.add_option("--run-on-fail-args", on_fail_args, "run CMD if the restart fails for bad arguments");
  app.add_option("--run-on-fail-temp", on_fail_temp, "run CMD if the restart fails for a temporary reason (pid in use)");
  app.add_option("--run-on-fail-env", on_fail_env, "run CMD if the restart fails for this machine's environment");
  app.add_option("--run-on-fail-perm", on_fail_perm, "run CMD if the restart fails for good (corrupt bundle)");
  app.add_option("--relocate", relocate, "look for files under NEW that were under OLD at the checkpoint (OLD=NEW; repeatable)")
      ->allow_extra_args(false);  // one OLD=NEW per --relocate; the bundle may follow
  app.add_flag("--accept-changed-files", accept_changed, "use open or mapped files whose size or mtime changed since the checkpoint");
  app.add_flag("--omit-maybe", omit_maybe, "leave cr_restart out of later checkpoints of the restored processes unless they have their own session (default)");
  app.add_flag("--omit-always", omit_always, "always leave cr_restart out of later checkpoints");
  app.add_flag("--omit-never", omit_never, "never leave cr_restart out of later checkpoints");
  app.add_flag("--detach", detach, "return as soon as the process runs instead of waiting for it");
  app.add_flag("-q,--quiet", quiet, "print nothing but errors");
  app.add_flag("-v,--verbose", verbose, "say what is restored");
  app.footer("Exit status: the restored process's (128+N if killed by signal N); 1 if the restart fails; 2 on bad usage.");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "cr_restart: " << e.what() << "\n";
    run_hook(on_fail_args.empty() ? on_failure : on_fail_args, "args");
    return 2;
  }
  auto usage = [&](const std::string& msg) {
    std::cerr << "cr_restart: " << msg << "\n";
    run_hook(on_fail_args.empty() ? on_failure : on_fail_args, "args");
    return 2;
  };
  if (restore_pid && no_restore_pid) return usage("--restore-pid and --no-restore-pid contradict each other");
  if (restore_pgid && no_restore_pgid) return usage("--restore-pgid and --no-restore-pgid contradict each other");
  if (restore_sid && no_restore_sid) return usage("--restore-sid and --no-restore-sid contradict each other");
  if (!file.empty() && (!file_opt.empty() || in_fd >= 0)) return usage("give the bundle once: FILE, --file or --fd");
  if (!file_opt.empty()) file = file_opt;
  if (file.empty() && in_fd < 0) return usage("no bundle given (FILE, --file, --fd, or - for standard input)");

  restore::RestoreOptions opt;
  opt.restore_pid = !no_restore_pid;
  opt.restore_pgid = restore_pgid;
  opt.restore_sid = restore_sid;
  opt.after_signal = after.signal_number();
  opt.verbose = verbose;
  opt.accept_changed_files = accept_changed;
  if (omit_maybe + omit_always + omit_never > 1) return usage("choose one of --omit-maybe, --omit-always, --omit-never");
  opt.omit = omit_always ? restore::RestoreOptions::Omit::always
             : omit_never ? restore::RestoreOptions::Omit::never
                          : restore::RestoreOptions::Omit::maybe;
  for (const auto& r : relocate) {
    auto eq = r.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == r.size() || r[0] != '/' || r[eq + 1] != '/')
      return usage("--relocate takes OLD=NEW, two absolute paths (got '" + r + "')");
    std::string from = r.substr(0, eq), to = r.substr(eq + 1);
    while (from.size() > 1 && from.back() == '/') from.pop_back();
    while (to.size() > 1 && to.back() == '/') to.pop_back();
    opt.relocate.push_back({from, to});
  }

  UniqueFd owned;
  int fd = in_fd;
  std::string name = in_fd >= 0 ? "fd " + std::to_string(in_fd) : file;
  if (file == "-") {
    fd = STDIN_FILENO;
    name = "standard input";
  } else if (in_fd < 0) {
    owned.reset(open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!owned) {
      std::cerr << "cr_restart: cannot open " << file << ": " << strerror(errno) << "\n";
      run_hook(on_fail_args.empty() ? on_failure : on_fail_args, "args");
      return 1;
    }
    fd = owned.get();
  }
  // --detach: this process returns as soon as the restored processes run; a background copy of it
  // stays their parent (and, for a sandbox, its launcher, which the sandbox cannot outlive).
  UniqueFd detach_notify;
  if (detach) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
      std::cerr << "cr_restart: pipe: " << strerror(errno) << "\n";
      return 1;
    }
    pid_t bg = fork();
    if (bg < 0) {
      std::cerr << "cr_restart: fork: " << strerror(errno) << "\n";
      return 1;
    }
    if (bg > 0) {
      close(p[1]);
      char c = 0;
      ssize_t n;
      while ((n = read(p[0], &c, 1)) < 0 && errno == EINTR) {
      }
      return n == 1 && c == 'R' ? 0 : 1;  // the background copy printed why it failed
    }
    close(p[0]);
    setsid();
    detach_notify.reset(p[1]);
  }
  bool restored = false;
  try {
    int status = restore::restart(opt, fd, name, [&](const restore::Restored& r) {
      restored = true;
      owned.reset();
      if (verbose) std::cerr << "cr_restart: restored pid " << r.pid << "\n";
      run_hook(on_success, "success");
      if (detach_notify) {
        write_all(detach_notify.get(), "R", 1, "the detach pipe");
        detach_notify.reset();
      }
    });
    return status;
  } catch (const Error& e) {
    std::cerr << "cr_restart: " << e.what() << "\n";
    if (!restored) {
      const std::string& specific = e.kind() == FailureKind::temporary     ? on_fail_temp
                                    : e.kind() == FailureKind::environment ? on_fail_env
                                                                           : on_fail_perm;
      run_hook(specific.empty() ? on_failure : specific, "failure");
    }
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "cr_restart: " << e.what() << "\n";
    if (!restored) run_hook(on_fail_perm.empty() ? on_failure : on_fail_perm, "failure");
    return 1;
  }
}
