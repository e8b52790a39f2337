// Restarting an image taken in a crbox sandbox. A new sandbox is made from the saved spec by the
// same launcher cr_run uses; its init creates the puppet at the saved inner pid (clone3 set_tid in
// the new pid namespace) instead of exec'ing a program, and cr_restart, outside, drives the puppet.
// The time namespace's offsets are chosen so CLOCK_MONOTONIC and CLOCK_BOOTTIME continue from
// their values at the checkpoint (time_namespaces(7)).
#include "checkpoint/restore/sandbox.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint/restore/apply.h"
#include "runtime/launcher.h"
#include "runtime/seccomp.h"
#include "runtime/signals.h"
#include "util/error.h"
#include "util/fd.h"

namespace crbox::restore {

namespace {

int64_t clock_ns(clockid_t c) {
  timespec ts{};
  clock_gettime(c, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace

int restart_sandboxed(const RestoreOptions& opt, const model::Image& img, image::BundleReader& reader,
                      int stop_signal, const std::function<void(const Restored&)>& on_restored) {
  const model::Process& p = img.processes[0];
  const model::Sandbox& sb = *img.sandbox;
  if (!opt.restore_pid) throw Error("--no-restore-pid does not apply to a sandbox: its fresh pid namespace always has the original pids free");
  uint64_t tramp = choose_trampoline(p);

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe");
  UniqueFd sync_read(fds[0]);
  int child_end = fcntl(fds[1], F_DUPFD_CLOEXEC, 900);
  close(fds[1]);
  if (child_end < 0) throw_errno("fcntl F_DUPFD");
  UniqueFd child_end_owner(child_end);

  auto preopened = open_outside_files(p);
  int cwd_fd = -1;
  if (p.cwd_outside) {
    cwd_fd = open(p.cwd.c_str(), O_PATH | O_DIRECTORY);  // inherited by the puppet through the init
    if (cwd_fd < 0) throw_errno("the working directory " + p.cwd, errno);
  }
  UniqueFd cwd_owner(cwd_fd);
  runtime::LaunchOptions lo;
  lo.spec = sb.spec;
  if (sb.spec.time_namespace) {
    // Inside = host + offset; we want inside(now) = inside(checkpoint).
    lo.time_offsets_ns = std::make_pair(sb.time.monotonic_ns - clock_ns(CLOCK_MONOTONIC),
                                        sb.time.boottime_ns - clock_ns(CLOCK_BOOTTIME));
  }
  // Inside the new init: create the puppet at its original pid.
  lo.start_app = [&]() -> pid_t {
    pid_t c = clone_with_pid(p.pid);
    if (c == 0) {
      close(sync_read.get());
      runtime::reset_signals();
      fcntl(child_end, F_SETFD, 0);
      puppet_child_main(child_end, tramp, [&](int sync_fd) {
        // Sessions and groups inside the sandbox are the image's: the init leads session 1.
        if (p.sid == p.pid) {
          if (setsid() < 0) throw_errno("setsid");
        } else if (p.pgid == p.pid && setpgid(0, 0) < 0) {
          throw_errno("setpgid");
        }
        apply_task_in_child(p, cwd_fd);  // first: the file set-up closes what the image lacks
        apply_files_in_child(p, img.pipes, sync_fd, preopened);
        // The sandbox's seccomp policy, as cr_run gave it; the injected syscalls that follow pass
        // it because the puppet is traced with PTRACE_O_SUSPEND_SECCOMP.
        runtime::apply_seccomp(sb.spec);
      });
    }
    // The init keeps no end of the sync pipe, so the puppet's death reads as EOF in cr_restart.
    close(child_end);
    close(sync_read.get());
    for (auto& [image_fd, fd] : preopened) close(fd);
    if (cwd_fd >= 0) close(cwd_fd);
    return c;
  };
  lo.on_started = [&](const runtime::LaunchedSandbox& ls) {
    child_end_owner.reset();
    cwd_owner.reset();
    for (auto& [image_fd, fd] : preopened) close(fd);
    preopened.clear();
    Puppet pp(ls.app_pid, tramp, std::move(sync_read), /*is_child=*/false);
    pp.set_child_sync_fd(child_end);
    restore_into(pp, p, reader, stop_signal);
    if (on_restored) on_restored(Restored{ls.app_pid, ls.init_pid});
  };
  return runtime::run_sandbox(lo);
}

}  // namespace crbox::restore
