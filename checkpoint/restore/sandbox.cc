// Restarting an image taken in a crbox sandbox. A new sandbox is made from the saved spec by the
// same launcher cr_run uses; its init creates the image's top processes (those whose parent was
// the init) at their saved pids, each of which makes its own children (tree.cc), and cr_restart,
// outside, drives them all. The time namespace's offsets are chosen so CLOCK_MONOTONIC and
// CLOCK_BOOTTIME continue from their values at the checkpoint (time_namespaces(7)).
#include "checkpoint/restore/sandbox.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint/restore/tree.h"
#include "runtime/launcher.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/files.h"

namespace crbox::restore {

namespace {

int64_t clock_ns(clockid_t c) {
  timespec ts{};
  clock_gettime(c, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Refills the new sandbox's private /tmp (run inside its init, where that tmpfs is mounted).
void populate_tmp(const std::vector<model::TmpEntry>& entries) {
  for (const auto& e : entries) {
    // The new sandbox's init has bound libcr's request socket there already (its own, for the
    // new launcher): whatever an old bundle holds by that name is not put over it.
    if (e.path == ".crbox-libcr.sock") continue;
    std::string path = "/tmp/" + e.path;
    mode_t perm = e.mode & 07777;
    if (S_ISDIR(e.mode)) {
      if (mkdir(path.c_str(), perm) != 0 && errno != EEXIST) throw_errno("recreating " + path);
    } else if (S_ISREG(e.mode)) {
      UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, perm));
      if (!fd) throw_errno("recreating " + path);
      write_all(fd.get(), e.data.data(), e.data.size(), path);
    } else if (S_ISLNK(e.mode)) {
      if (symlink(e.link.c_str(), path.c_str()) != 0) throw_errno("recreating " + path);
    } else if (S_ISFIFO(e.mode)) {
      if (mkfifo(path.c_str(), perm) != 0) throw_errno("recreating " + path);
    } else {
      continue;
    }
    if (lchown(path.c_str(), e.uid, e.gid) != 0) throw_errno("chown " + path);
    if (!S_ISLNK(e.mode) && chmod(path.c_str(), perm) != 0) throw_errno("chmod " + path);
  }
  // Times last, deepest first: making an entry changes its folder's mtime.
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    timespec ts[2];
    ts[0].tv_sec = ts[1].tv_sec = static_cast<time_t>(it->mtime_ns / 1000000000);
    ts[0].tv_nsec = ts[1].tv_nsec = static_cast<long>(it->mtime_ns % 1000000000);
    utimensat(AT_FDCWD, ("/tmp/" + it->path).c_str(), ts, AT_SYMLINK_NOFOLLOW);
  }
}

}  // namespace

int restart_sandboxed(const RestoreOptions& opt, const model::Image& img, image::BundleReader& reader,
                      int stop_signal, const std::function<void(const Restored&)>& on_restored) {
  const model::Sandbox& sb = *img.sandbox;
  if (!opt.restore_pid) throw Error("--no-restore-pid does not apply to a sandbox: its fresh pid namespace always has the original pids free");
  TreePlan plan;
  plan.img = &img;
  plan.opt = opt;
  plan.sandboxed = true;
  plan.files.contents = receive_contents(img, reader);  // the file contents follow the model
  UniqueFd sync_read(prepare_tree(plan));
  std::set<int> inherited = plan.inherited_fds();
  auto close_inherited = [&inherited] {
    for (int fd : inherited) close(fd);
  };

  runtime::LaunchOptions lo;
  lo.spec = sb.spec;
  if (sb.spec.time_namespace) {
    // Inside = host + offset; we want inside(now) = inside(checkpoint).
    lo.time_offsets_ns = std::make_pair(sb.time.monotonic_ns - clock_ns(CLOCK_MONOTONIC),
                                        sb.time.boottime_ns - clock_ns(CLOCK_BOOTTIME));
  }
  // Inside the new init: make the processes whose parent was the init; they make the rest.
  lo.start_app = [&]() -> pid_t {
    close(sync_read.get());
    populate_tmp(sb.tmp);
    if (sb.console) restore_console_state(*sb.console);  // before any process: console.cc
    restore_sysv_ipc(img.ipc);
    restore_mqueues(img.ipc, true);
    open_shared_objects(plan);  // this copy of the plan is the init's, which its children inherit
    pid_t app = 0;
    auto top = plan.children.find(1);
    if (top == plan.children.end()) throw Error("the image holds no process whose parent is the sandbox's init");
    for (size_t idx : top->second) {
      pid_t c = spawn_process(plan, idx);
      if (img.processes[idx].pid == img.root_pid) app = c;
    }
    // The init keeps none of what was opened for the new processes, so a dead one reads as gone.
    close_inherited();
    for (auto& [path, fd] : plan.fifo_holders) close(fd);
    for (auto& [id, fd] : plan.files.objects)
      if (!inherited.count(fd)) close(fd);
    if (!app) throw Error("the sandbox's application (pid " + std::to_string(img.root_pid) + ") is not in the image");
    return app;
  };
  lo.on_started = [&](const runtime::LaunchedSandbox& ls) {
    close_inherited();
    inherited.clear();
    restore_tree(plan, sync_read.get(), reader, false, host_pid_in_tree, ls.init_pid, stop_signal);
    if (on_restored) on_restored(Restored{ls.app_pid, ls.init_pid});
  };
  return runtime::run_sandbox(lo);
}

}  // namespace crbox::restore
