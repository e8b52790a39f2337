// cr_checkpoint: BLCR's command line over crbox's dump engine.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "checkpoint/dump/dumper.h"
#include "cli/after_options.h"
#include "util/deadline.h"
#include "util/error.h"
#include "util/fd.h"

using namespace crbox;

namespace {

// Where the image goes, and how it replaces what is there (BLCR's --atomic/--backup/--clobber).
struct Destination {
  std::string final_path;  // "" when writing to an fd
  std::string temp_path;   // written, then renamed to final_path
  UniqueFd owned;
  int fd = -1;
  bool sync = true;
  std::string backup;  // "" none; otherwise the backup name ("" suffix → numbered)
  bool do_backup = false;
};

// Exit statuses beyond 0 (success), 1 (any other failure) and 2 (bad usage): what failed, so a
// caller (libcr's cr_request_checkpoint, a script) need not read the message. Never renumber:
// docs/cli/cr_checkpoint.md documents them and runtime/libcr/request.c maps them to BLCR's errnos.
constexpr int kExitFailure = 1;
constexpr int kExitNoProcess = 3;
constexpr int kExitPermission = 4;
constexpr int kExitPtraced = 5;
constexpr int kExitPtracer = 6;
constexpr int kExitTemporary = 7;
constexpr int kExitPermanent = 8;
constexpr int kExitNoSpace = 9;

int exit_status_for(Cause c) {
  switch (c) {
    case Cause::no_process:
      return kExitNoProcess;
    case Cause::permission:
      return kExitPermission;
    case Cause::ptraced:
      return kExitPtraced;
    case Cause::ptracer:
      return kExitPtracer;
    case Cause::temporary:
      return kExitTemporary;
    case Cause::permanent:
      return kExitPermanent;
    case Cause::no_space:
      return kExitNoSpace;
    case Cause::unspecified:
      break;
  }
  return kExitFailure;
}

std::string numbered_backup(const std::string& path) {
  for (int n = 1;; n++) {
    std::string b = path + ".~" + std::to_string(n) + "~";
    if (access(b.c_str(), F_OK) != 0) return b;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Checkpoint a running process (or a whole crbox sandbox) into a bundle file.", "cr_checkpoint"};
  app.set_version_flag("--version", std::string("cr_checkpoint (crbox) ") + CRBOX_VERSION);
  pid_t id = 0;
  bool s_tree = false, s_pid = false, s_pgid = false, s_sid = false;
  std::string file, dir;
  int out_fd = -1;
  bool atomic = false, clobber = false, noclobber = false, nosync = false, sync = false;
  std::string backup;
  cli::AfterOptions after;
  double time_limit = 0;
  bool quiet = false, verbose = false;
  bool ptraced_error = false, ptraced_skip = false, ptraced_allow = false, ptracer_error = false, ptracer_skip = false;
  bool save_exe = false, save_private = false, save_shared = false, save_all = false, save_none = false;

  app.add_option("ID", id, "the process (or process group / session) to checkpoint")->required();
  auto* scope = app.add_option_group("scope", "what ID names");
  scope->add_flag("-T,--tree", s_tree, "ID is a process; checkpoint it and its descendants (default)");
  scope->add_flag("-p,--pid", s_pid, "ID is a process; checkpoint it alone");
  scope->add_flag("-g,--pgid", s_pgid, "ID is a process group");
  scope->add_flag("-s,--sid", s_sid, "ID is a session");
  scope->require_option(0, 1);
  auto* dest = app.add_option_group("destination", "where the bundle goes (default: context.ID)");
  dest->add_option("-f,--file", file, "write to FILE ('-' for standard output)");
  dest->add_option("-F,--fd", out_fd, "write to the open file descriptor N");
  dest->add_option("-d,--dir", dir, "write context.ID in directory DIR");
  dest->require_option(0, 1);
  app.add_flag("--atomic", atomic, "write a temporary file, then rename it into place (default)");
  app.add_option("--backup", backup, "keep the replaced file as NAME (default: FILE.~N~)")->expected(0, 1)->default_str("");
  app.add_flag("--clobber", clobber, "overwrite the file in place");
  app.add_flag("--noclobber", noclobber, "fail if the file exists");
  app.add_flag("--sync", sync, "fsync the bundle before reporting success (default)");
  app.add_flag("--nosync", nosync, "do not fsync");
  cli::add_after_options(app, after, "after the checkpoint");
  app.add_option("-t,--time", time_limit, "give up after SEC seconds (the process is released untouched)")
      ->check(CLI::PositiveNumber);
  app.add_flag("-q,--quiet", quiet, "print nothing but errors");
  app.add_flag("-v,--verbose", verbose, "print what was saved and how long the process was frozen");
  auto* pt = app.add_option_group("ptrace", "processes traced by, or tracing, another");
  pt->add_flag("--ptraced-error", ptraced_error, "fail on a process traced by another (default)");
  pt->add_flag("--ptraced-skip", ptraced_skip, "leave such processes out");
  pt->add_flag("--ptraced-allow", ptraced_allow, "checkpoint them anyway");
  auto* ptr = app.add_option_group("ptracer", "");
  ptr->add_flag("--ptracer-error", ptracer_error, "fail on a process that traces another (default)");
  ptr->add_flag("--ptracer-skip", ptracer_skip, "leave such processes out");
  ptr->require_option(0, 1);
  auto* save = app.add_option_group("save", "file contents kept in the bundle (memfds and deleted files always are)");
  save->add_flag("--save-exe", save_exe, "keep the executable's content, so a restart works if it is replaced or missing");
  save->add_flag("--save-private", save_private, "keep the content of files mapped privately (shared libraries among them)");
  save->add_flag("--save-shared", save_shared, "keep the content of files mapped shared");
  save->add_flag("--save-all", save_all, "all of the above: the bundle needs no file of this machine to restart");
  save->add_flag("--save-none", save_none, "keep only what must be kept (default)");
  app.footer(
      "Exit status: 0 on success; 2 on bad usage; on failure (the process is then left exactly as it was) 3 no such "
      "process, 4 permission denied, 5 a process is traced by another, 6 a process traces another, 7 a callback asked "
      "for a temporary failure or --time ran out, 8 a callback asked for a permanent failure, 9 no space left, 1 "
      "anything else.");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "cr_checkpoint: " << e.what() << "\n";
    return 2;
  }
  if ((ptraced_error + ptraced_skip + ptraced_allow) > 1) {
    std::cerr << "cr_checkpoint: choose one of --ptraced-error, --ptraced-skip, --ptraced-allow\n";
    return 2;
  }
  if (clobber + noclobber + atomic > 1 || (clobber && app.count("--backup"))) {
    std::cerr << "cr_checkpoint: --atomic, --clobber, --noclobber and --backup contradict each other\n";
    return 2;
  }
  if (save_none && (save_exe || save_private || save_shared || save_all)) {
    std::cerr << "cr_checkpoint: --save-none contradicts the other --save options\n";
    return 2;
  }
  if (sync && nosync) {
    std::cerr << "cr_checkpoint: --sync and --nosync contradict each other\n";
    return 2;
  }

  dump::DumpOptions opt;
  opt.id = id;
  opt.scope = s_pid ? dump::Scope::pid : s_pgid ? dump::Scope::pgid : s_sid ? dump::Scope::sid : dump::Scope::tree;
  opt.after_signal = after.signal_number();
  opt.ptraced = ptraced_allow ? dump::TracedPolicy::allow : ptraced_skip ? dump::TracedPolicy::skip : dump::TracedPolicy::error;
  opt.ptracer = ptracer_skip ? dump::TracedPolicy::skip : dump::TracedPolicy::error;
  opt.verbose = verbose;
  opt.save_exe = save_exe || save_all;
  opt.save_private = save_private || save_all;
  opt.save_shared = save_shared || save_all;
  if (time_limit > 0) set_deadline(std::chrono::milliseconds(static_cast<int64_t>(time_limit * 1000)));
  // Ctrl-C (or SIGTERM, SIGHUP, SIGQUIT) mid-checkpoint: stop at the next check, release every
  // process as it was, remove the temporary file, instead of dying with processes frozen.
  cancel_on_signals();

  Destination d;
  d.sync = !nosync;
  std::string name;
  try {
    // Check the target before creating any file, so a bad pid leaves nothing behind.
    dump::check_dumpable(id, opt);
    if (out_fd >= 0) {
      if (fcntl(out_fd, F_GETFD) < 0) throw Error("--fd " + std::to_string(out_fd) + " is not an open file descriptor");
      d.fd = out_fd;
      name = "fd " + std::to_string(out_fd);
    } else if (file == "-") {
      d.fd = STDOUT_FILENO;
      name = "standard output";
      if (isatty(STDOUT_FILENO)) throw Error("refusing to write a bundle to a terminal; redirect standard output");
    } else {
      d.final_path = !file.empty() ? file : (dir.empty() ? "" : dir + "/") + "context." + std::to_string(id);
      name = d.final_path;
      bool exists = access(d.final_path.c_str(), F_OK) == 0;
      if (noclobber && exists) throw Error(d.final_path + " exists (--noclobber)");
      if (clobber) {
        d.owned.reset(open(d.final_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (!d.owned) throw_errno("cannot write " + d.final_path);
      } else {
        d.temp_path = d.final_path + ".crbox-tmp." + std::to_string(getpid());
        d.owned.reset(open(d.temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!d.owned) throw_errno("cannot write " + d.final_path);
        if (app.count("--backup") && exists) d.backup = backup.empty() ? numbered_backup(d.final_path) : backup;
      }
      d.fd = d.owned.get();
    }
    auto finalize = [&] {
      check_deadline("finishing " + name);
      if (d.sync && d.owned && fsync(d.fd) != 0) throw_errno("fsync " + name);
      if (!d.temp_path.empty()) {
        if (!d.backup.empty() && rename(d.final_path.c_str(), d.backup.c_str()) != 0)
          throw_errno("keeping a backup of " + d.final_path + " as " + d.backup);
        if (rename(d.temp_path.c_str(), d.final_path.c_str()) != 0) throw_errno("renaming into " + d.final_path);
        d.temp_path.clear();
        if (d.sync) {
          std::string parent = std::filesystem::path(d.final_path).parent_path().string();
          UniqueFd dfd(open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
          if (dfd) fsync(dfd.get());
        }
      }
    };
    auto stats = dump::checkpoint(opt, d.fd, name, finalize);
    if (verbose) {
      std::fprintf(stderr, "cr_checkpoint: pid %d: %llu pages, %.1f MiB written to %s in %.1f ms (frozen %.1f ms)\n", id,
                   static_cast<unsigned long long>(stats.pages), stats.bytes / 1048576.0, name.c_str(),
                   stats.total_us / 1000.0, stats.frozen_us / 1000.0);
      std::fprintf(stderr, "frozen_ms=%.3f total_ms=%.3f bytes=%llu pages=%llu\n", stats.frozen_us / 1000.0,
                   stats.total_us / 1000.0, static_cast<unsigned long long>(stats.bytes),
                   static_cast<unsigned long long>(stats.pages));
    }
    (void)quiet;
    return 0;
  } catch (const Error& e) {
    if (!d.temp_path.empty()) unlink(d.temp_path.c_str());
    std::cerr << "cr_checkpoint: " << e.what() << "\n";
    // Whatever gave up once --time ran out (a wait on callbacks, a stop) is the time limit's doing.
    Cause c = e.cause();
    if (c != Cause::permanent && deadline_passed()) c = Cause::temporary;
    return exit_status_for(c);
  } catch (const std::exception& e) {
    if (!d.temp_path.empty()) unlink(d.temp_path.c_str());
    std::cerr << "cr_checkpoint: " << e.what() << "\n";
    return deadline_passed() ? kExitTemporary : kExitFailure;
  }
}
